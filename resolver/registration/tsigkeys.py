"""TSIG keys for signed updates (RFC 8945): from the command line or a key file.

Accepted, so that keys made for BIND, Knot and nsupdate work unchanged:

* ``NAME:SECRET`` or ``ALGORITHM:NAME:SECRET`` (nsupdate ``-y``; the algorithm defaults to
  hmac-sha256), on the command line or as the only line of a file;
* BIND's ``key "NAME" { algorithm hmac-sha256; secret "BASE64"; };`` (``tsig-keygen`` output),
  one or more clauses, with ``//``, ``#`` and ``/* */`` comments;
* Knot's ``key:`` section (``keymgr -t NAME`` output): ``- id: NAME``, ``algorithm:``, ``secret:``.

A file with several keys needs the key's name (``--key-name``). The secret is base64 and must
decode to at least one octet; the algorithm is one of the HMAC-SHA2 family dnspython signs with.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.name
import dns.tsig

ALGORITHMS = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
}
DEFAULT_ALGORITHM = "hmac-sha256"
MAX_KEY_FILE = 64 * 1024


class TsigKeyError(ValueError):
    """A TSIG key that cannot be read; str() is one line naming the source."""


@dataclass(frozen=True)
class TsigKey:
    name: dns.name.Name
    algorithm: str  # "hmac-sha256", ...
    secret: str  # base64, as written

    @property
    def key(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.name, base64.b64decode(self.secret), ALGORITHMS[self.algorithm])

    def to_json(self) -> dict:
        """``{"name", "algorithm", "secret"}`` as federation.json lists a zone's keys."""
        return {"name": self.name.to_text(), "algorithm": self.algorithm, "secret": self.secret}

    def nsupdate_arg(self) -> str:
        return f"{self.algorithm}:{self.name.to_text(omit_final_dot=True)}:{self.secret}"


def make_key(name: str, secret: str, algorithm: str = DEFAULT_ALGORITHM, *, where: str = "key") -> TsigKey:
    algorithm = algorithm.lower().rstrip(".")
    if algorithm not in ALGORITHMS:
        raise TsigKeyError(f"{where}: algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    if not name:
        raise TsigKeyError(f"{where}: empty key name")
    try:
        key_name = dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        raise TsigKeyError(f"{where}: bad key name {name!r}: {exc}") from None
    try:
        raw = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise TsigKeyError(f"{where}: the secret of {name} is not base64") from None
    if not raw:
        raise TsigKeyError(f"{where}: the secret of {name} is empty")
    return TsigKey(key_name, algorithm, secret)


def parse_key(text: str, *, where: str = "--key") -> TsigKey:
    """``NAME:SECRET`` or ``ALGORITHM:NAME:SECRET``."""
    parts = text.strip().split(":")
    if len(parts) == 2:
        return make_key(parts[0], parts[1], where=where)
    if len(parts) == 3:
        return make_key(parts[1], parts[2], parts[0], where=where)
    raise TsigKeyError(f"{where}: expected NAME:SECRET or ALGORITHM:NAME:SECRET (as nsupdate -y)")


_COMMENTS_OR_STRINGS = re.compile(r'"[^"]*"|/\*.*?\*/|//[^\n]*|#[^\n]*', re.S)


def _uncomment(text: str) -> str:
    """named.conf comments removed; quoted strings (a secret may hold ``//``) kept as they are."""
    return _COMMENTS_OR_STRINGS.sub(lambda m: m.group(0) if m.group(0).startswith('"') else " ", text)
_BIND_KEY = re.compile(r'key\s+("([^"]*)"|([^\s{]+))\s*\{(.*?)\}\s*;', re.S)
_BIND_FIELD = re.compile(r'(\w+)\s+("([^"]*)"|([^\s;]+))\s*;')


def _bind_keys(text: str, where: str) -> list[TsigKey]:
    body = _uncomment(text)
    keys = []
    for match in _BIND_KEY.finditer(body):
        name = match.group(2) if match.group(2) is not None else match.group(3)
        fields = {f.group(1).lower(): f.group(3) if f.group(3) is not None else f.group(4)
                  for f in _BIND_FIELD.finditer(match.group(4))}
        if "secret" not in fields:
            raise TsigKeyError(f"{where}: key {name!r} has no secret")
        keys.append(make_key(name, fields["secret"], fields.get("algorithm", DEFAULT_ALGORITHM), where=where))
    rest = _BIND_KEY.sub(" ", body).strip()
    if keys and rest:
        raise TsigKeyError(f"{where}: unexpected text outside the key clauses: {rest[:40]!r}")
    return keys


def _knot_keys(text: str, where: str) -> list[TsigKey]:
    keys: list[TsigKey] = []
    current: dict[str, str] | None = None
    entries: list[dict[str, str]] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].rstrip()
        if not line.strip() or line.strip() == "key:":
            continue
        stripped = line.strip()
        if stripped.startswith("- "):
            current = {}
            entries.append(current)
            stripped = stripped[2:].strip()
        if current is None or ":" not in stripped:
            raise TsigKeyError(f"{where}: not a Knot key section (line {line.strip()[:40]!r})")
        field, _, value = stripped.partition(":")
        current[field.strip().lower()] = value.strip().strip('"')
    for entry in entries:
        if "id" not in entry or "secret" not in entry:
            raise TsigKeyError(f"{where}: a Knot key needs id and secret")
        keys.append(make_key(entry["id"], entry["secret"], entry.get("algorithm", DEFAULT_ALGORITHM), where=where))
    return keys


def parse_key_file_text(text: str, *, where: str = "key file") -> list[TsigKey]:
    """Every key in a key file's text (BIND clauses, a Knot key section, or one NAME:SECRET line)."""
    if re.search(r"\bkey\s+(\"[^\"]*\"|[^\s{]+)\s*\{", _uncomment(text)):
        keys = _bind_keys(text, where)
    elif re.search(r"^\s*key:\s*$", text, re.M):
        keys = _knot_keys(text, where)
    else:
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
        if len(lines) != 1:
            raise TsigKeyError(f"{where}: expected BIND key clauses (tsig-keygen), a Knot key section "
                               "(keymgr -t) or one NAME:SECRET line")
        keys = [parse_key(lines[0], where=where)]
    if not keys:
        raise TsigKeyError(f"{where}: no key found")
    return keys


def read_key_file(path: str | Path, name: str | None = None) -> TsigKey:
    """The key in ``path`` (the one called ``name`` when the file has several)."""
    where = str(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise TsigKeyError(f"{where}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_KEY_FILE:
        raise TsigKeyError(f"{where}: too large to be a key file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TsigKeyError(f"{where}: not a key file (not UTF-8 text)") from None
    keys = parse_key_file_text(text, where=where)
    if name is not None:
        wanted = dns.name.from_text(name)
        chosen = [k for k in keys if k.name == wanted]
        if not chosen:
            raise TsigKeyError(f"{where}: no key named {name} (it has {', '.join(k.name.to_text() for k in keys)})")
        return chosen[0]
    if len(keys) > 1:
        raise TsigKeyError(f"{where}: {len(keys)} keys ({', '.join(k.name.to_text() for k in keys)}); "
                           "say which with --key-name")
    return keys[0]


def bind_key_text(key: TsigKey) -> str:
    """The key as a BIND clause (what ``tsig-keygen`` prints)."""
    return f'key "{key.name.to_text(omit_final_dot=True)}" {{\n\talgorithm {key.algorithm};\n\tsecret "{key.secret}";\n}};\n'


def generate_key(name: str, algorithm: str = DEFAULT_ALGORITHM) -> TsigKey:
    """A new random key (32 octets, as tsig-keygen makes for hmac-sha256)."""
    import secrets
    return make_key(name, base64.b64encode(secrets.token_bytes(32)).decode(), algorithm)
