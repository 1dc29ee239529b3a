"""DNSSEC zone keys: generation and BIND's key-file pair (``K<zone>.+<alg>+<tag>.key``/``.private``).

Using BIND's format means keys made by ``cid zone keygen`` sign with ``dnssec-signzone`` and keys
made by ``dnssec-keygen`` sign with ``cid zone sign``. The ``.private`` file is ``Private-key-format:
v1.3`` with one ``Field: value`` per line: ``PrivateKey`` (raw Ed25519 seed or P-256 scalar, base64)
or, for RSA, ``Modulus``, ``PublicExponent``, ``PrivateExponent``, ``Prime1``, ``Prime2``,
``Exponent1``, ``Exponent2``, ``Coefficient`` (big-endian integers, base64). The ``.key`` file is the
DNSKEY record in master-file form; its flags decide KSK (257) or ZSK (256).

Supported: Ed25519 (15, our default), ECDSA P-256/SHA-256 (13), RSA/SHA-256 (8, 2048-bit keys).
Every key read back is checked against its DNSKEY, so a mismatched or tampered pair is refused
rather than producing signatures no resolver can verify.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.dnssec
import dns.exception
import dns.name
import dns.rdatatype
import dns.zonefile
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ED25519 = 15
ECDSAP256SHA256 = 13
RSASHA256 = 8
KSK_FLAGS = 257  # ZONE | SEP (RFC 4034 §2.1.1, RFC 3757)
ZSK_FLAGS = 256  # ZONE
ALGORITHM_NAMES = {ED25519: "ED25519", ECDSAP256SHA256: "ECDSAP256SHA256", RSASHA256: "RSASHA256"}
RSA_BITS = 2048
MAX_KEY_FILE = 64 * 1024  # key files are small; refuse anything that is clearly not one
_RSA_FIELDS = ("Modulus", "PublicExponent", "PrivateExponent", "Prime1", "Prime2",
               "Exponent1", "Exponent2", "Coefficient")


class KeyFileError(Exception):
    """A key file is missing, unreadable or inconsistent; str() names the file."""


@dataclass(frozen=True)
class ZoneKey:
    zone: dns.name.Name
    algorithm: int
    flags: int
    private_key: Any  # a cryptography private key object
    dnskey: Any  # dns.rdtypes.ANY.DNSKEY.DNSKEY
    key_tag: int

    @property
    def is_ksk(self) -> bool:
        return bool(self.flags & 0x0001)

    @property
    def basename(self) -> str:
        """BIND's file base name, e.g. ``Kexample.com.+015+12345``."""
        return f"K{self.zone.to_text().lower()}+{self.algorithm:03d}+{self.key_tag:05d}"


def _as_name(zone: str | dns.name.Name) -> dns.name.Name:
    return zone if isinstance(zone, dns.name.Name) else dns.name.from_text(zone)


def _make(zone: dns.name.Name, algorithm: int, flags: int, private_key: Any) -> ZoneKey:
    dnskey = dns.dnssec.make_dnskey(private_key.public_key(), algorithm, flags=flags)
    return ZoneKey(zone, algorithm, flags, private_key, dnskey, dns.dnssec.key_id(dnskey))


def generate_key(zone: str | dns.name.Name, algorithm: int = ED25519, flags: int = KSK_FLAGS) -> ZoneKey:
    """A new key pair for ``zone``; flags 257 makes a KSK/CSK, 256 a ZSK."""
    if flags not in (KSK_FLAGS, ZSK_FLAGS):
        raise ValueError(f"flags must be {KSK_FLAGS} (KSK) or {ZSK_FLAGS} (ZSK), not {flags}")
    if algorithm == ED25519:
        private_key: Any = ed25519.Ed25519PrivateKey.generate()
    elif algorithm == ECDSAP256SHA256:
        private_key = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == RSASHA256:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    else:
        raise ValueError(f"unsupported algorithm {algorithm}; use 15, 13 or 8")
    return _make(_as_name(zone).canonicalize(), algorithm, flags, private_key)


def _b64int(value: int) -> str:
    return base64.b64encode(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")).decode()


def _private_fields(key: ZoneKey) -> list[tuple[str, str]]:
    pk = key.private_key
    if key.algorithm == ED25519:
        raw = pk.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                               serialization.NoEncryption())
        return [("PrivateKey", base64.b64encode(raw).decode())]
    if key.algorithm == ECDSAP256SHA256:
        raw = pk.private_numbers().private_value.to_bytes(32, "big")
        return [("PrivateKey", base64.b64encode(raw).decode())]
    n = pk.private_numbers()
    values = (n.public_numbers.n, n.public_numbers.e, n.d, n.p, n.q, n.dmp1, n.dmq1, n.iqmp)
    return [(field, _b64int(v)) for field, v in zip(_RSA_FIELDS, values)]


def write_key_files(key: ZoneKey, directory: str | Path) -> tuple[Path, Path]:
    """Write ``<base>.key`` and ``<base>.private`` (mode 0600); refuse to overwrite existing files."""
    directory = Path(directory)
    base = directory / key.basename
    public_path, private_path = base.with_name(base.name + ".key"), base.with_name(base.name + ".private")
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    role = "key-signing" if key.is_ksk else "zone-signing"
    public_text = (
        f"; This is a {role} key, keyid {key.key_tag}, for {key.zone}\n"
        f"; Created: {stamp}\n"
        f"{key.zone} IN DNSKEY {key.dnskey.to_text()}\n"
    )
    lines = ["Private-key-format: v1.3", f"Algorithm: {key.algorithm} ({ALGORITHM_NAMES[key.algorithm]})"]
    lines += [f"{field}: {value}" for field, value in _private_fields(key)]
    lines += [f"Created: {stamp}", f"Publish: {stamp}", f"Activate: {stamp}", ""]
    # O_EXCL: a key tag collision must never overwrite another key's secret.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write("\n".join(lines))
        fd = os.open(public_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(public_text)
    except BaseException:
        private_path.unlink(missing_ok=True)
        raise
    return public_path, private_path


def _read_small(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_KEY_FILE:
        raise KeyFileError(f"{path}: too large to be a key file")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise KeyFileError(f"{path}: not a key file (non-ASCII bytes)") from None


def _parse_private(path: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    for lineno, line in enumerate(_read_small(path).splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        field, sep, value = line.partition(":")
        if not sep:
            raise KeyFileError(f"{path}:{lineno}: expected 'Field: value'")
        fields[field.strip()] = value.strip()
    fmt = fields.get("Private-key-format", "")
    if not fmt.startswith("v1."):
        raise KeyFileError(f"{path}: not a BIND private key file (Private-key-format v1.x missing)")
    return fields


def _b64(path: Path, fields: dict[str, str], name: str) -> bytes:
    if name not in fields:
        raise KeyFileError(f"{path}: missing field {name}")
    try:
        return base64.b64decode(fields[name], validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{path}: field {name} is not valid base64") from None


def _private_key(path: Path, fields: dict[str, str], algorithm: int) -> Any:
    try:
        if algorithm == ED25519:
            raw = _b64(path, fields, "PrivateKey")
            if len(raw) != 32:
                raise KeyFileError(f"{path}: Ed25519 PrivateKey must be 32 bytes, not {len(raw)}")
            return ed25519.Ed25519PrivateKey.from_private_bytes(raw)
        if algorithm == ECDSAP256SHA256:
            raw = _b64(path, fields, "PrivateKey")
            if len(raw) != 32:
                raise KeyFileError(f"{path}: P-256 PrivateKey must be 32 bytes, not {len(raw)}")
            return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
        if algorithm == RSASHA256:
            n, e, d, p, q, dmp1, dmq1, iqmp = (
                int.from_bytes(_b64(path, fields, f), "big") for f in _RSA_FIELDS)
            if not 1024 <= n.bit_length() <= 4096:
                raise KeyFileError(f"{path}: RSA modulus of {n.bit_length()} bits (1024..4096 supported)")
            numbers = rsa.RSAPrivateNumbers(p, q, d, dmp1, dmq1, iqmp, rsa.RSAPublicNumbers(e, n))
            return numbers.private_key()
    except KeyFileError:
        raise
    except (ValueError, TypeError) as exc:  # cryptography rejects out-of-range or inconsistent values
        raise KeyFileError(f"{path}: invalid private key: {exc}") from None
    raise KeyFileError(f"{path}: unsupported algorithm {algorithm}; 15, 13 and 8 are supported")


def _read_dnskey(path: Path):
    try:
        rrsets = dns.zonefile.read_rrsets(_read_small(path), rdclass=None, origin=dns.name.root, relativize=False,
                                          default_ttl=3600)
    except dns.exception.DNSException as exc:
        raise KeyFileError(f"{path}: {exc}") from None
    dnskeys = [rs for rs in rrsets if rs.rdtype == dns.rdatatype.DNSKEY]
    if len(dnskeys) != 1 or len(dnskeys[0]) != 1 or len(rrsets) != 1:
        raise KeyFileError(f"{path}: expected exactly one DNSKEY record")
    return dnskeys[0].name, dnskeys[0][0]


def _pair_paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    name = path.name
    for suffix in (".key", ".private"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(name + ".key"), path.with_name(name + ".private")


def read_key_files(path: str | Path) -> ZoneKey:
    """Read a key pair given either file (or the base name); the two halves must match."""
    public_path, private_path = _pair_paths(path)
    fields = _parse_private(private_path)
    try:
        algorithm = int(fields.get("Algorithm", "").split()[0])
    except (ValueError, IndexError):
        raise KeyFileError(f"{private_path}: missing or bad Algorithm field") from None
    private_key = _private_key(private_path, fields, algorithm)
    zone, dnskey = _read_dnskey(public_path)
    if dnskey.algorithm != algorithm:
        raise KeyFileError(f"{public_path}: DNSKEY algorithm {dnskey.algorithm} but private key is {algorithm}")
    if not dnskey.flags & 0x0100:
        raise KeyFileError(f"{public_path}: DNSKEY lacks the ZONE flag (flags {dnskey.flags})")
    key = _make(zone, algorithm, dnskey.flags, private_key)
    if key.dnskey.key != dnskey.key or key.dnskey.protocol != dnskey.protocol:
        raise KeyFileError(f"{private_path}: private key does not match the DNSKEY in {public_path.name}")
    # Keep the DNSKEY as published (flags such as REVOKE are part of the key tag).
    return ZoneKey(zone, algorithm, dnskey.flags, private_key, dnskey, dns.dnssec.key_id(dnskey))


def load_zone_keys(directory: str | Path, zone: str | dns.name.Name) -> list[ZoneKey]:
    """Every key pair for ``zone`` in ``directory`` (KSKs first, then by key tag).

    All pairs found are used; BIND's timing metadata (Activate/Inactive/Delete) is not consulted.
    """
    zone = _as_name(zone)
    prefix = f"{zone.to_text().lower()}+"
    try:
        entries = sorted(os.listdir(directory))
    except OSError as exc:
        raise KeyFileError(f"{directory}: cannot list: {exc.strerror or exc}") from None
    keys = []
    for entry in entries:
        if entry.startswith("K") and entry[1:].lower().startswith(prefix) and entry.endswith(".private"):
            key = read_key_files(Path(directory, entry))
            if key.zone != zone:
                raise KeyFileError(f"{Path(directory, entry)}: key is for {key.zone}, not {zone}")
            keys.append(key)
    keys.sort(key=lambda k: (not k.is_ksk, k.algorithm, k.key_tag))
    return keys
