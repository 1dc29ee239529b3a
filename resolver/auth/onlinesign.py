"""Signing one RRset at a time, from wire form: what a live zone does for each change.

``RRsetSigner(keys)`` signs an RRset given as (owner, type, TTL, RDATAs in wire form) and
returns RRSIG RDATAs in wire form — the ``sign`` callback ``zonechange.apply`` takes for the
NSEC/NSEC3 RRsets it recomputes, and what the UPDATE path uses for the RRsets it changes.
The signed data is laid out as RFC 4034 §3.1.8.1 says (RRSIG RDATA without the signature,
then the RRs in canonical form and order, §6.2–6.3), the same bytes ``dns.dnssec.sign``
builds (the tests check equality); Ed25519 signs through libsodium (``sign_crypto``).

Key roles are the signer's (``signer._roles``): per algorithm, KSKs sign DNSKEY and ZSKs the
rest; an algorithm with one kind of key uses it for everything. CDS and CDNSKEY are signed like
DNSKEY, by the KSKs: a parent accepts them only when signed by a key its DS set names (RFC 7344
§4.1). Validity: inception now − 1 h, expiration now + ``validity`` (14 days by default,
spec/dnssec.md §1), from an injectable clock. ``on_sign(owner_canonical, type, inception,
expiration)``, when set, hears of every RRset signed (the re-signing index, ``resign.py``).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Any

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
from dns.dnssecalgs import get_algorithm_cls_from_dnskey

from . import sign_crypto
from .keys import ZoneKey
from .signer import INCEPTION_BACKDATE, VALIDITY

DNSKEY = 48
CDS = 59
CDNSKEY = 60
_BY_KSK = frozenset({DNSKEY, CDS, CDNSKEY})
_IN = 1
# Types whose RDATA holds no domain name that RFC 4034 §6.2 (as RFC 6840 §5.1 left it)
# lower-cases: their canonical RDATA is their wire RDATA. Every other type goes through
# dnspython's ``to_digestable``.
_AS_IS = frozenset({1, 28, 16, 99, 64, 65, 43, 48, 59, 60, 47, 50, 51, 52, 44, 257, 13,
                    65380, 65381, 10, 25, 29, 45, 53, 61, 62, 108, 109})
_ONE_NAME = frozenset({2, 5, 12, 39})  # NS, CNAME, PTR, DNAME: the RDATA is one name
_HEAD = struct.Struct("!HBBIIIH")
_RR = struct.Struct("!HHIH")


def canonical_rdata(rdtype: int, rdata: bytes) -> bytes:
    """RDATA in canonical form (RFC 4034 §6.2)."""
    if rdtype in _AS_IS:
        return rdata
    if rdtype in _ONE_NAME:
        # One uncompressed name: length octets are below 64, so only letters change.
        return rdata.lower()
    rd = dns.rdata.from_wire(dns.rdataclass.IN, rdtype, rdata, 0, len(rdata))
    return rd.to_digestable()


def label_count(owner: dns.name.Name) -> int:
    """RRSIG Labels field: labels of the owner, root and a leading ``*`` not counted."""
    labels = [label for label in owner.labels if label]
    if labels and labels[0] == b"*":
        labels = labels[1:]
    return len(labels)


class RRsetSigner:
    """``sign(owner, rdtype, ttl, rdatas) -> [RRSIG RDATA]`` with a zone's keys."""

    def __init__(self, keys: list[ZoneKey], *, clock: Callable[[], float] = time.time,
                 validity: int = VALIDITY):
        if not keys:
            raise ValueError("no keys to sign with")
        zones = {k.zone for k in keys}
        if len(zones) != 1:
            raise ValueError(f"keys of several zones: {', '.join(sorted(z.to_text() for z in zones))}")
        self.zone = next(iter(zones))
        self.signer_wire = self.zone.canonicalize().to_wire()
        self.clock = clock
        self.validity = validity
        self.on_sign: Callable[[bytes, int, int, int], None] | None = None
        self.keys = list(keys)
        self.ksks: list[tuple[Any, int, int]] = []
        self.zsks: list[tuple[Any, int, int]] = []
        for algorithm in sorted({k.algorithm for k in keys}):
            group = [k for k in keys if k.algorithm == algorithm]
            sep = [k for k in group if k.is_ksk] or group
            other = [k for k in group if not k.is_ksk] or group
            self.ksks += [self._wrapped(k) for k in sep]
            self.zsks += [self._wrapped(k) for k in other]
        self.signatures = 0  # made so far (for status and benchmarks)

    @staticmethod
    def _wrapped(key: ZoneKey) -> tuple[Any, int, int]:
        private = get_algorithm_cls_from_dnskey(key.dnskey)(key=key.private_key)
        return sign_crypto.signer_for(private, key.algorithm), key.algorithm, dns.dnssec.key_id(key.dnskey)

    def window(self) -> tuple[int, int]:
        now = int(self.clock())
        return now - INCEPTION_BACKDATE, now + self.validity

    def sign(self, owner: dns.name.Name, rdtype: int, ttl: int, rdatas) -> list[bytes]:
        return self.sign_wire(owner.canonicalize().to_wire(), label_count(owner), rdtype, ttl,
                              list(rdatas))

    __call__ = sign

    def sign_wire(self, owner_canonical: bytes, labels: int, rdtype: int, ttl: int,
                  rdatas: list[bytes]) -> list[bytes]:
        """Signatures over the RRset; ``owner_canonical`` is the owner's lower-cased wire form."""
        if rdtype in _AS_IS:
            canon = sorted(set(rdatas))
        else:
            canon = sorted({canonical_rdata(rdtype, rd) for rd in rdatas})
        prefix = owner_canonical + struct.pack("!HHI", rdtype, _IN, ttl)
        body = b"".join([prefix + struct.pack("!H", len(rd)) + rd for rd in canon])
        start, end = self.window()
        out = []
        for signer, algorithm, tag in (self.ksks if rdtype in _BY_KSK else self.zsks):
            head = _HEAD.pack(rdtype, algorithm, labels, ttl, end, start, tag) + self.signer_wire
            out.append(head + signer.sign(head + body))
        self.signatures += len(out)
        if self.on_sign is not None:
            self.on_sign(owner_canonical, rdtype, start, end)
        return out


__all__ = ["RRsetSigner", "canonical_rdata", "label_count"]
