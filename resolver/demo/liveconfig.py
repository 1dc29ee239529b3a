"""The ``cid serve auth --config`` file of each demo zone (spec/registration.md §2).

Every demo zone is served by the live primary. A zone that lists compute gets one TSIG key
(hmac-sha256) for its providers, granted the names of its resources and only the types a
registration writes; its providers register there by signed UPDATE with leases. The demo sets
``min_lease`` to 1 s (the server's default is 30 s) so that the provider the demo stops
disappears within seconds; see SHORT_LEASE in providers.py.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from pathlib import Path

MIN_LEASE = 1
KEY_ALGORITHM = "hmac-sha256"
GRANTED_TYPES = ("SVCB", "A", "AAAA", "CAPS", "LOAD")


@dataclass(frozen=True)
class ProviderKey:
    name: str
    algorithm: str
    secret: str  # base64, as `nsupdate -y` and `cid register --key NAME:SECRET` take it

    def to_json(self) -> dict:
        return {"name": self.name, "algorithm": self.algorithm, "secret": self.secret}

    @property
    def spec(self) -> str:
        """``NAME:SECRET`` for ``cid register --key``."""
        return f"{self.name}:{self.secret}"


def provider_key(zone: str) -> ProviderKey:
    """A fresh key for the providers of ``zone`` (new on every build: the journal is too)."""
    return ProviderKey(f"providers.{zone}", KEY_ALGORITHM, base64.b64encode(secrets.token_bytes(32)).decode())


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rel(path: Path, start: Path) -> str:
    import os
    return os.path.relpath(path, start)


def config_text(zone: str, listen: str, zone_file: Path, key_dir: Path, journal: Path, config: Path,
                key: ProviderKey | None, labels: list[str]) -> str:
    here = config.parent
    lines = [
        f"# cid serve auth --config for the demo zone {zone} (written by cid demo); standalone:",
        f"#   cid serve auth --config {config.name}",
        f"listen = [{toml_string(listen)}]",
        f"journal = {toml_string(_rel(journal, here))}",
        f"min_lease = {MIN_LEASE}",
        "",
        "[[zone]]",
        f"file = {toml_string(_rel(zone_file, here))}",
        f"name = {toml_string(zone)}",
        f"keys = {toml_string(_rel(key_dir, here))}",
    ]
    if key is not None:
        lines += [
            "",
            "[[key]]",
            f"name = {toml_string(key.name)}",
            f"algorithm = {toml_string(key.algorithm)}",
            f"secret = {toml_string(key.secret)}",
            "  [[key.grant]]",
            f"  zone = {toml_string(zone)}",
            "  subtree = [" + ", ".join(toml_string(label) for label in labels) + "]",
            "  types = [" + ", ".join(toml_string(t) for t in GRANTED_TYPES) + "]",
        ]
    return "\n".join(lines) + "\n"
