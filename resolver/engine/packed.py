"""Compact form of cached RRsets: one ``bytes`` per entry instead of dnspython objects.

A parsed RRset with its RRSIGs costs several KiB of Python objects (a Name per owner and
signer, an object per record and field); the same records as DNS wire bytes cost a tenth of
that. The cache keeps this form and rebuilds dnspython objects (``unpack``) only on the paths
that need them; hot cache hits are served from a small materialised layer (cache.py).

Layout, per RRset (or None): a header (how the owner is given, type, class, covers, TTL,
record count), the owner's wire name only when it differs from the entry's owner and the
previous RRset's, then each record as a 16-bit length and its uncompressed RDATA (names in
it keep their case, as received). ``unpack(pack(x)) == x``, with the owner case noted below.
The RRSIGs that follow the RRset they cover (same owner, class and TTL) take the short SIGS
form: a 3-byte header, and a signer that is an ancestor of the owner (the zone) given as its
label count instead of its name. Bytes packed before that form existed read the same.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import dns.name
import dns.rdata
import dns.rdatatype
import dns.rrset

from ..nametext import same_name

_HEAD = struct.Struct("!BHHHIH")  # owner form, type, class, covers, TTL, records
_SIGS = struct.Struct("!BH")  # SIGS, records: the RRSIGs of the RRset just before (see pack)
_LEN = struct.Struct("!H")
NONE, OWNER, PREVIOUS, NAMED, SIGS = range(5)
_RRSIG = int(dns.rdatatype.RRSIG)
_FIXED = 18  # RRSIG RDATA before the signer's name (RFC 4034 §3.1)
EXPLICIT = 255  # a SIGS record whose signer is written out


def pack(rrsets: Iterable[dns.rrset.RRset | None], owner: dns.name.Name | None = None) -> bytes:
    """``rrsets`` as bytes. An RRset whose owner equals ``owner`` (case-insensitively, as DNS
    compares names) is rebuilt with ``owner`` itself — the cache's one shared spelling."""
    out = bytearray()
    previous: dns.name.Name | None = None
    before: dns.rrset.RRset | None = None  # the RRset packed just before, if any
    for rrset in rrsets:
        if rrset is None:
            out += _HEAD.pack(NONE, 0, 0, 0, 0, 0)
            before = None
            continue
        name = rrset.name
        if owner is not None and same_name(name, owner):
            how = OWNER
        elif previous is not None and name.labels == previous.labels:  # same spelling: exact
            how = PREVIOUS
        else:
            how = NAMED
        if (before is not None and rrset.rdtype == _RRSIG and rrset.covers == before.rdtype
                and rrset.rdclass == before.rdclass and rrset.ttl == before.ttl
                and (how == PREVIOUS or (how == OWNER and previous is owner))):
            _pack_sigs(out, rrset, previous)
            before = None
            continue
        before = rrset
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


def _pack_sigs(out: bytearray, rrsigs: dns.rrset.RRset, owner: dns.name.Name) -> None:
    """The RRSIGs of the RRset packed just before (same owner, class and TTL, covering its
    type), with a 3-byte header instead of 13, and each signer that is the owner or one of
    its ancestors, spelled alike (the usual case: the zone), given as its label count."""
    out += _SIGS.pack(SIGS, len(rrsigs))
    for rd in rrsigs:
        data = rd.to_wire(origin=dns.name.root)
        signer = rd.signer
        labels = len(signer.labels)
        wire = signer.to_wire() if signer.is_absolute() else b""
        if (0 < labels < EXPLICIT and owner.labels[len(owner.labels) - labels:] == signer.labels
                and data[_FIXED:_FIXED + len(wire)] == wire):
            out.append(labels)
            rest = data[:_FIXED] + data[_FIXED + len(wire):]
        else:
            out.append(EXPLICIT)
            rest = data
        out += _LEN.pack(len(rest))
        out += rest


def _unpack_sigs(wire: bytes, pos: int, count: int, owner: dns.name.Name, rdclass: int,
                 covers: int, ttl: int) -> tuple[dns.rrset.RRset, int]:
    rrset = dns.rrset.RRset(owner, rdclass, _RRSIG, covers)
    rrset.update_ttl(ttl)
    for _ in range(count):
        labels = wire[pos]
        (length,) = _LEN.unpack_from(wire, pos + 1)
        pos += 3
        data = wire[pos:pos + length]
        pos += length
        if labels != EXPLICIT:  # the signer's name put back where RFC 4034 §3.1 has it
            signer = dns.name.Name(owner.labels[len(owner.labels) - labels:])
            data = data[:_FIXED] + signer.to_wire() + data[_FIXED:]
        rrset.add(dns.rdata.from_wire(rdclass, _RRSIG, data, 0, len(data)))
    return rrset, pos


def unpack(wire: bytes, owner: dns.name.Name | None = None, limit: int = 1 << 16) -> list[dns.rrset.RRset | None]:
    """The (first ``limit``) RRsets, None where None was packed, as fresh dnspython objects."""
    out: list[dns.rrset.RRset | None] = []
    pos, end = 0, len(wire)
    previous: dns.name.Name | None = None
    while pos < end and len(out) < limit:
        if wire[pos] == SIGS:
            (_, count), before = _SIGS.unpack_from(wire, pos), out[-1]
            rrset, pos = _unpack_sigs(wire, pos + _SIGS.size, count, previous, before.rdclass, before.rdtype,
                                      before.ttl)
            out.append(rrset)
            continue
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

