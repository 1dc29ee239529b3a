"""``cid serve auth --config FILE``: the TOML configuration of an authoritative server.

The schema (spec/registration.md §2)::

    listen = ["127.0.74.1:5300"]      # ADDR:PORT, [V6]:PORT or ADDR (port 53); UDP and TCP
    journal = "journal"               # directory of the zones' journals (relative to this file)
    min_lease = 30                    # seconds: shorter requested leases are raised to this
    max_lease = 604800                # seconds: the longest lease granted (optional)
    strict = false                    # CAPS/LOAD registry problems in zone files are errors

    [[zone]]
    file = "ex.cid.zone.signed"       # master file (relative to this file)
    name = "ex.cid."                  # optional; checked against the file
    keys = "keys"                     # key directory (K<zone>+<alg>+<tag>.key/.private);
                                      # default: the zone file's directory
    browse = true                     # maintain _compute / sub-type / _children PTRs
    caps_check = "strict"             # "strict": CAPS/LOAD breaking the registry are refused;
                                      # "warn": accepted (logged)
    notify = ["127.0.74.2:53", "127.0.74.3:53 key xfr-key."]  # secondaries to NOTIFY (RFC 1996),
                                      # TSIG-signed with the named [[key]] when given (notify.py)
    allow_transfer = ["xfr-key.", "127.0.74.2"]  # AXFR/IXFR by these TSIG keys or from these
                                      # addresses/prefixes; empty: none (transfer.py)
    # Signatures and key rollover (spec/dnssec.md §6; times in seconds):
    signature_validity = 1209600      # RRSIG validity of online signatures (14 days)
    resign_refresh = 0.5              # re-sign when this fraction of a signature's validity is left
    resign_batch = 500                # RRsets per re-signing change (one journaled change each)
    propagation_delay = 3600          # time for a change to reach every secondary
    parent_ds_ttl = 86400             # the parent's DS TTL when the parent zone is not served here
    parent = "127.0.74.9:53"          # the parent's primary, for DS changes by signed UPDATE
    parent_key = "child-ds."          # the TSIG key (a [[key]] below) for those UPDATEs

    [[key]]
    name = "provider-a."
    algorithm = "hmac-sha256"         # hmac-sha224/256/384/512
    secret = "base64..."              # or secret_file = "path" (the base64 text)
      [[key.grant]]
      zone = "ex.cid."
      subtree = ["pool-7.ex.cid."]    # one name or a list; relative names are relative to the zone
      types = ["SVCB", "A", "AAAA", "CAPS", "LOAD"]   # default: every type
      max_lease = 300                 # seconds (optional)

Errors are ``ConfigError`` naming the file and the entry.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.name

from .policy import Grant, Keyring, PolicyError, TsigKey, make_key, parse_types


class ConfigError(ValueError):
    """The configuration cannot be used; str() names the file and what is wrong."""


@dataclass
class ZoneConfig:
    file: Path
    name: dns.name.Name | None = None
    keys: Path | None = None
    browse: bool = True
    caps_strict: bool = True
    notify: list[str] = field(default_factory=list)
    allow_transfer: list[str] = field(default_factory=list)
    signature_validity: int = 14 * 86400
    resign_refresh: float = 0.5
    resign_batch: int = 500
    propagation_delay: int = 3600
    parent_ds_ttl: int = 86400
    parent: str | None = None
    parent_key: dns.name.Name | None = None

    @property
    def key_directory(self) -> Path:
        return self.keys if self.keys is not None else self.file.parent


@dataclass
class AuthConfig:
    path: Path
    listen: list[str] = field(default_factory=list)
    journal: Path | None = None
    zones: list[ZoneConfig] = field(default_factory=list)
    keys: list[TsigKey] = field(default_factory=list)
    min_lease: int = 30
    max_lease: int | None = None
    strict: bool = False

    def keyring(self) -> Keyring:
        return Keyring({key.name: key for key in self.keys})

    def zone(self, name: dns.name.Name | str) -> ZoneConfig | None:
        wanted = dns.name.from_text(name) if isinstance(name, str) else name
        return next((z for z in self.zones if z.name == wanted), None)


_TOP = {"listen", "journal", "zone", "key", "min_lease", "max_lease", "strict"}
_ZONE = {"file", "name", "keys", "browse", "caps_check", "notify", "allow_transfer", "signature_validity",
         "resign_refresh", "resign_batch", "propagation_delay", "parent_ds_ttl", "parent", "parent_key"}
_KEY = {"name", "algorithm", "secret", "secret_file", "grant"}
_GRANT = {"zone", "subtree", "types", "max_lease"}


def load(path: str | Path) -> AuthConfig:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return parse(raw, path)


def parse(raw: dict, path: Path) -> AuthConfig:
    base = path.parent
    _unknown(raw, _TOP, f"{path}")
    config = AuthConfig(path)
    listen = raw.get("listen", [])
    config.listen = [listen] if isinstance(listen, str) else [str(x) for x in _list(listen, f"{path}: listen")]
    if "journal" in raw:
        config.journal = _path(base, raw["journal"], f"{path}: journal")
    config.min_lease = _int(raw.get("min_lease", 30), f"{path}: min_lease", 1)
    if "max_lease" in raw:
        config.max_lease = _int(raw["max_lease"], f"{path}: max_lease", 1)
    config.strict = _bool(raw.get("strict", False), f"{path}: strict")
    for i, entry in enumerate(_list(raw.get("zone", []), f"{path}: zone")):
        where = f"{path}: zone #{i + 1}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a table")
        _unknown(entry, _ZONE, where)
        if "file" not in entry:
            raise ConfigError(f"{where}: 'file' is required")
        zone = ZoneConfig(_path(base, entry["file"], f"{where}: file"))
        if "name" in entry:
            zone.name = _name(entry["name"], f"{where}: name")
        if "keys" in entry:
            zone.keys = _path(base, entry["keys"], f"{where}: keys")
        zone.browse = _bool(entry.get("browse", True), f"{where}: browse")
        check = entry.get("caps_check", "strict")
        if check not in ("strict", "warn"):
            raise ConfigError(f"{where}: caps_check must be \"strict\" or \"warn\", not {check!r}")
        zone.caps_strict = check == "strict"
        zone.notify = [str(x) for x in _list(entry.get("notify", []), f"{where}: notify")]
        zone.allow_transfer = [str(x) for x in _list(entry.get("allow_transfer", []), f"{where}: allow_transfer")]
        _signing(zone, entry, where)
        config.zones.append(zone)
    names = set()
    for i, entry in enumerate(_list(raw.get("key", []), f"{path}: key")):
        where = f"{path}: key #{i + 1}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a table")
        _unknown(entry, _KEY, where)
        if "name" not in entry:
            raise ConfigError(f"{where}: 'name' is required")
        where = f"{path}: key {entry['name']}"
        secret = entry.get("secret")
        if secret is None and "secret_file" in entry:
            secret_path = _path(base, entry["secret_file"], f"{where}: secret_file")
            try:
                secret = secret_path.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"{where}: secret_file: {exc.strerror or exc}") from None
        if secret is None:
            raise ConfigError(f"{where}: 'secret' or 'secret_file' is required")
        grants = [_grant(g, f"{where}: grant #{j + 1}") for j, g in
                  enumerate(_list(entry.get("grant", []), f"{where}: grant"))]
        try:
            key = make_key(str(entry["name"]), str(entry.get("algorithm", "hmac-sha256")), str(secret), grants)
        except PolicyError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        if key.name in names:
            raise ConfigError(f"{where}: defined twice")
        names.add(key.name)
        config.keys.append(key)
    for i, zone in enumerate(config.zones):
        if (zone.parent is None) != (zone.parent_key is None):
            raise ConfigError(f"{path}: zone #{i + 1}: parent and parent_key go together (DS changes "
                              "are sent as TSIG-signed UPDATEs)")
        if zone.parent_key is not None and zone.parent_key not in names:
            raise ConfigError(f"{path}: zone #{i + 1}: parent_key {zone.parent_key} is not a [[key]]")
    _check_replication(config, path, names)
    return config


def _check_replication(config: AuthConfig, path: Path, names: set) -> None:
    from .notify import NotifyError, parse_target
    from .transfer import AclError, TransferAcl
    for i, zone in enumerate(config.zones):
        try:
            TransferAcl(zone.allow_transfer, names)
            for entry in zone.notify:
                target = parse_target(entry)
                if target.key is not None and target.key not in names:
                    raise NotifyError(f"notify: {entry!r}: no [[key]] named {target.key}")
        except (AclError, NotifyError) as exc:
            raise ConfigError(f"{path}: zone #{i + 1}: {exc}") from None


def _signing(zone: ZoneConfig, entry: dict, where: str) -> None:
    """The signature and rollover settings of a zone table."""
    zone.signature_validity = _int(entry.get("signature_validity", zone.signature_validity),
                                   f"{where}: signature_validity", 2)
    refresh = entry.get("resign_refresh", zone.resign_refresh)
    if isinstance(refresh, bool) or not isinstance(refresh, (int, float)) or not 0 < refresh < 1:
        raise ConfigError(f"{where}: resign_refresh must be a fraction between 0 and 1, not {refresh!r}")
    zone.resign_refresh = float(refresh)
    zone.resign_batch = _int(entry.get("resign_batch", zone.resign_batch), f"{where}: resign_batch", 1)
    zone.propagation_delay = _int(entry.get("propagation_delay", zone.propagation_delay),
                                  f"{where}: propagation_delay", 0)
    zone.parent_ds_ttl = _int(entry.get("parent_ds_ttl", zone.parent_ds_ttl), f"{where}: parent_ds_ttl", 0)
    if "parent" in entry:
        if not isinstance(entry["parent"], str) or not entry["parent"]:
            raise ConfigError(f"{where}: parent must be \"ADDR:PORT\"")
        zone.parent = entry["parent"]
    if "parent_key" in entry:
        zone.parent_key = _name(entry["parent_key"], f"{where}: parent_key")


def _grant(entry, where: str) -> Grant:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a table")
    _unknown(entry, _GRANT, where)
    if "zone" not in entry:
        raise ConfigError(f"{where}: 'zone' is required")
    zone = _name(entry["zone"], f"{where}: zone")
    subtrees = entry.get("subtree", [zone.to_text()])
    subtrees = [subtrees] if isinstance(subtrees, str) else _list(subtrees, f"{where}: subtree")
    names = []
    for text in subtrees:
        try:
            name = dns.name.from_text(str(text), origin=zone)
        except dns.exception.DNSException as exc:
            raise ConfigError(f"{where}: subtree {text!r}: {exc}") from None
        if not name.is_subdomain(zone):
            raise ConfigError(f"{where}: subtree {name} is not in zone {zone}")
        names.append(name)
    try:
        types = parse_types(entry.get("types"), where)
    except PolicyError as exc:
        raise ConfigError(str(exc)) from None
    max_lease = _int(entry["max_lease"], f"{where}: max_lease", 1) if "max_lease" in entry else None
    return Grant(zone, tuple(names), types, max_lease)


def _unknown(entry: dict, allowed: set[str], where: str) -> None:
    extra = sorted(set(entry) - allowed)
    if extra:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(extra)} (known: {', '.join(sorted(allowed))})")


def _list(value, where: str) -> list:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list")
    return value


def _path(base: Path, value, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a path")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _name(value, where: str) -> dns.name.Name:
    try:
        name = dns.name.from_text(str(value))
    except dns.exception.DNSException as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return name


def _int(value, where: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{where}: expected an integer ≥ {minimum}, not {value!r}")
    return value


def _bool(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, not {value!r}")
    return value


__all__ = ["AuthConfig", "ConfigError", "ZoneConfig", "load", "parse"]
