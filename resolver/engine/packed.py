"""Compact form of cached RRsets: one ``bytes`` per entry instead of dnspython objects.

A parsed RRset with its RRSIGs costs several KiB of Python objects (a Name per owner and
signer, an object per record and field); the same records as DNS wire bytes cost a tenth of
that. The cache keeps this form and rebuilds dnspython objects (``unpack``) only on the paths
that need them; hot cache hits are served from a small materialised layer (cache.py).

Layout, per RRset (or None): a header (how the owner is given, type, class, covers, TTL,
record count), the owner's wire name only when it differs from the entry's owner and the
previous RRset's, then each record as a 16-bit length and its uncompressed RDATA (names in
it keep their case, as received). ``unpack(pack(x)) == x``, with the owner case noted below.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import dns.name
import dns.rdata
import dns.rrset

_HEAD = struct.Struct("!BHHHIH")  # owner form, type, class, covers, TTL, records
_LEN = struct.Struct("!H")
NONE, OWNER, PREVIOUS, NAMED = range(4)


def pack(rrsets: Iterable[dns.rrset.RRset | None], owner: dns.name.Name | None = None) -> bytes:
    """``rrsets`` as bytes. An RRset whose owner equals ``owner`` (case-insensitively, as DNS
    compares names) is rebuilt with ``owner`` itself — the cache's one shared spelling."""
    out = bytearray()
    previous: dns.name.Name | None = None
    for rrset in rrsets:
        if rrset is None:
            out += _HEAD.pack(NONE, 0, 0, 0, 0, 0)
            continue
        name = rrset.name
        if owner is not None and name == owner:
            how = OWNER
        elif previous is not None and name.labels == previous.labels:  # same spelling: exact
            how = PREVIOUS
        else:
            how = NAMED
        out += _HEAD.pack(how, rrset.rdtype, rrset.rdclass, rrset.covers, rrset.ttl, len(rrset))
        if how == NAMED:
            out += name.to_wire(origin=dns.name.root)
        previous = owner if how == OWNER else name
        for rd in rrset:
            # origin: relative names in hand-made records become absolute, as on the wire.
            data = rd.to_wire(origin=dns.name.root)
            out += _LEN.pack(len(data))
            out += data
    return bytes(out)


def unpack(wire: bytes, owner: dns.name.Name | None = None, limit: int = 1 << 16) -> list[dns.rrset.RRset | None]:
    """The (first ``limit``) RRsets, None where None was packed, as fresh dnspython objects."""
    out: list[dns.rrset.RRset | None] = []
    pos, end = 0, len(wire)
    previous: dns.name.Name | None = None
    while pos < end and len(out) < limit:
        how, rdtype, rdclass, covers, ttl, count = _HEAD.unpack_from(wire, pos)
        pos += _HEAD.size
        if how == NONE:
            out.append(None)
            continue
        if how == OWNER:
            name = owner
        elif how == PREVIOUS:
            name = previous
        else:
            name, used = dns.name.from_wire(wire, pos)
            pos += used
        previous = name
        rrset = dns.rrset.RRset(name, rdclass, rdtype, covers)
        rrset.update_ttl(ttl)  # an empty RRset keeps its TTL too
        for _ in range(count):
            (length,) = _LEN.unpack_from(wire, pos)
            pos += 2
            rrset.add(dns.rdata.from_wire(rdclass, rdtype, wire, pos, length))
            pos += length
        out.append(rrset)
    return out

