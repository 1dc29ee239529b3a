"""Build signed DNSSEC test data with dnspython: deterministic keys (alg 15, 13, 8), RRsets,
RRSIGs with fixed validity, DS records, NSEC chains, and tampered copies for hostile tests.

Everything is deterministic for a given (zone, seed) except RSA keys, which are generated once
per process and cached (RSA has no cheap seed derivation; 2048-bit keygen costs ~0.1 s).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import resolver  # noqa: F401  (registers CAPS/LOAD)

# A fixed clock for every test: 2026-01-01T00:00:00Z, signatures valid 30 days around it.
NOW = 1767225600
INCEPTION = NOW - 86400
EXPIRATION = NOW + 29 * 86400

ED25519, ECDSAP256, RSASHA256 = 15, 13, 8
ALGORITHMS = (ED25519, ECDSAP256, RSASHA256)

_rsa_cache: dict[tuple[str, int], rsa.RSAPrivateKey] = {}


def name(text: str | dns.name.Name) -> dns.name.Name:
    return text if isinstance(text, dns.name.Name) else dns.name.from_text(text)


@dataclass(frozen=True)
class Key:
    zone: dns.name.Name
    algorithm: int
    private: Any
    dnskey: Any

    @property
    def tag(self) -> int:
        return dns.dnssec.key_id(self.dnskey)

    def ds(self, digest: str | int = "SHA256") -> Any:
        return dns.dnssec.make_ds(self.zone, self.dnskey, digest, policy=dns.dnssec.allow_all_policy)


def _seed_bytes(zone: dns.name.Name, algorithm: int, seed: int | bytes) -> bytes:
    if isinstance(seed, bytes):
        return seed
    return hashlib.sha256(f"{zone.to_text().lower()}/{algorithm}/{seed}".encode()).digest()


def private_key(algorithm: int, zone: dns.name.Name, seed: int | bytes = 0) -> Any:
    raw = _seed_bytes(zone, algorithm, seed)
    if algorithm == ED25519:
        return ed25519.Ed25519PrivateKey.from_private_bytes(raw)
    if algorithm == ECDSAP256:
        order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
        return ec.derive_private_key(int.from_bytes(raw, "big") % (order - 1) + 1, ec.SECP256R1())
    if algorithm == RSASHA256:
        cache_key = (zone.to_text().lower(), int.from_bytes(raw[:8], "big"))
        if cache_key not in _rsa_cache:
            _rsa_cache[cache_key] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _rsa_cache[cache_key]
    raise ValueError(f"no test key generator for algorithm {algorithm}")


def make_key(zone: str | dns.name.Name, algorithm: int = ED25519, flags: int = 257, seed: int | bytes = 0) -> Key:
    zone = name(zone)
    priv = private_key(algorithm, zone, seed)
    dnskey = dns.dnssec.make_dnskey(priv.public_key(), algorithm, flags)
    return Key(zone, algorithm, priv, dnskey)


def key_with_flags(key: Key, flags: int) -> Key:
    """Same key material, other flags (e.g. REVOKE 0x80 or no ZONE bit); the tag changes."""
    return Key(key.zone, key.algorithm, key.private, key.dnskey.replace(flags=flags))


def colliding_keys(zone: str | dns.name.Name, algorithm: int = ED25519, limit: int = 5000) -> tuple[Key, Key]:
    """Two different keys of ``zone`` with the same key tag (birthday search, ~300 keys)."""
    zone = name(zone)
    seen: dict[int, Key] = {}
    for i in range(limit):
        k = make_key(zone, algorithm, seed=10_000 + i)
        if k.tag in seen:
            return seen[k.tag], k
        seen[k.tag] = k
    raise RuntimeError("no key tag collision found")


def rrset(owner: str | dns.name.Name, rdtype: str | int, *rdatas: str, ttl: int = 3600) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(name(owner), ttl, dns.rdataclass.IN, rdtype, list(rdatas))


def dnskey_rrset(*keys: Key, ttl: int = 3600) -> dns.rrset.RRset:
    rs = dns.rrset.RRset(keys[0].zone, dns.rdataclass.IN, dns.rdatatype.DNSKEY)
    for k in keys:
        rs.add(k.dnskey, ttl)
    return rs


def ds_rdataset(*items: Any, ttl: int = 3600) -> dns.rdataset.Rdataset:
    """Rdataset of DS rdatas; Keys are turned into SHA-256 DS."""
    rds = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.DS)
    for item in items:
        rds.add(item.ds() if isinstance(item, Key) else item, ttl)
    return rds


def sign(
    target: dns.rrset.RRset,
    *keys: Key,
    inception: int = INCEPTION,
    expiration: int = EXPIRATION,
    signer: str | dns.name.Name | None = None,
) -> dns.rrset.RRset:
    """RRSIG RRset over ``target`` by each key (signer defaults to the key's zone)."""
    sigs = dns.rrset.RRset(target.name, dns.rdataclass.IN, dns.rdatatype.RRSIG, target.rdtype)
    for k in keys:
        rd = dns.dnssec.sign(
            target,
            k.private,
            name(signer) if signer is not None else k.zone,
            k.dnskey,
            inception=inception,
            expiration=expiration,
            policy=dns.dnssec.allow_all_policy,
        )
        sigs.add(rd, target.ttl)
    return sigs


def tamper(sigs: dns.rrset.RRset, **changes: Any) -> dns.rrset.RRset:
    """Copy of an RRSIG RRset with fields replaced in every RRSIG (labels=, signer=, ...)."""
    out = dns.rrset.RRset(sigs.name, sigs.rdclass, sigs.rdtype, sigs.covers)
    for rd in sigs:
        out.add(rd.replace(**changes), sigs.ttl)
    return out


def flip_signature_byte(sigs: dns.rrset.RRset, index: int = 0) -> dns.rrset.RRset:
    out = dns.rrset.RRset(sigs.name, sigs.rdclass, sigs.rdtype, sigs.covers)
    for rd in sigs:
        sig = bytearray(rd.signature)
        sig[index] ^= 0x01
        out.add(rd.replace(signature=bytes(sig)), sigs.ttl)
    return out


def nsec(owner: str | dns.name.Name, next_name: str | dns.name.Name, *types: str, ttl: int = 3600) -> dns.rrset.RRset:
    return rrset(owner, "NSEC", f"{name(next_name)} {' '.join(types)}".strip(), ttl=ttl)


def nsec_chain(zone: str | dns.name.Name, names: Mapping[str, Iterable[str]]) -> dict[dns.name.Name, dns.rrset.RRset]:
    """Complete NSEC chain of a zone: names (absolute or relative to zone) -> their RR types.

    RRSIG and NSEC are added to each bitmap (RFC 4034 §4.1.2); the last NSEC points at the apex.
    """
    zone = name(zone)
    owners = {dns.name.from_text(n, zone): list(t) for n, t in names.items()}
    owners.setdefault(zone, ["SOA", "NS"])
    ordered = sorted(owners)
    chain: dict[dns.name.Name, dns.rrset.RRset] = {}
    for i, owner in enumerate(ordered):
        nxt = ordered[(i + 1) % len(ordered)]
        types = sorted(set(owners[owner]) | {"RRSIG", "NSEC"}, key=dns.rdatatype.from_text)
        chain[owner] = nsec(owner, nxt, *types)
    return chain
