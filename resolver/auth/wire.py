"""Wire format for the authoritative hot path: reading the common query shape, writing responses.

dnspython's general parser and renderer cost hundreds of microseconds per message; a server
answers one shape of query (one question, at most an OPT record) and writes RRs whose bytes
never change, so both ends are done here directly:

* ``parse_query`` reads only that shape and returns None for anything else, which the caller
  then hands to dnspython (so odd but legal queries still get dnspython's verdict);
* ``CompressingWriter`` writes authoritative responses from records kept in wire form by the
  zone store (``zonedb.RRset``), compressing owners and the names inside RFC 1035 RDATA against
  every earlier name, as NSD does (RFC 3597 §4 forbids it for other types);
* ``ResponseWriter`` writes dnspython names for the recursive front end, compressing owner names
  only against the question and leaving RDATA names uncompressed, which every type allows.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from typing import TYPE_CHECKING

import dns.name
import dns.rdataset

if TYPE_CHECKING:
    from .zonedb import RRset

_HEADER = struct.Struct("!6H")
_RR_FIXED = struct.Struct("!HHIH")
_TYPE_CLASS = struct.Struct("!HH")
_OPT = 41
_COOKIE = 10
_DO = 0x8000
_POINTER = 0xC000


@dataclass(frozen=True, slots=True)
class Query:
    """The fields of a plain query that answering depends on."""

    qid: int
    flags: int
    qname: dns.name.Name
    qtype: int
    qclass: int
    edns: int  # -1: no OPT record
    payload: int
    do: bool
    qwire: bytes = b""  # the question name as sent (uncompressed wire), when read by parse_query


def parse_query(wire: bytes) -> Query | None:
    """Read a query with one uncompressed question and at most an OPT record; None otherwise.

    Returns None both for malformed packets and for legal shapes it does not handle (TSIG,
    several additional records, non-empty answer/authority): the caller falls back to the
    full parser, which decides between an answer and FORMERR.
    """
    if len(wire) < 17:
        return None
    qid, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    if qdcount != 1 or ancount or nscount or arcount > 1:
        return None
    labels = []
    pos = 12
    end = len(wire)
    while True:
        if pos >= end:
            return None
        length = wire[pos]
        if length == 0:
            pos += 1
            break
        if length > 63:
            return None  # a pointer (nothing precedes it to point to) or a reserved label type
        labels.append(wire[pos + 1 : pos + 1 + length])
        pos += 1 + length
        if pos - 12 > 254:
            return None  # RFC 1035 §2.3.4: names are at most 255 octets
    labels.append(b"")
    name_end = pos - 12
    if pos + 4 > end:
        return None
    qtype, qclass = _TYPE_CLASS.unpack_from(wire, pos)
    pos += 4
    edns, payload, do = -1, 0, False
    if arcount:
        # OPT: root owner, TYPE 41, CLASS = payload, TTL = ext-rcode/version/flags, RDLEN.
        if pos + 11 > end or wire[pos] != 0:
            return None
        rtype, payload, ttl, rdlen = _RR_FIXED.unpack_from(wire, pos + 1)
        if rtype != _OPT:
            return None
        pos += 11
        if pos + rdlen != end:
            return None
        while pos < end:
            # Only well-formed COOKIEs (RFC 7873 §4: 8, or 16 to 40 octets) stay on the fast
            # path; any other option goes to dnspython, which checks its structure.
            if pos + 4 > end or wire[pos] != 0 or wire[pos + 1] != _COOKIE:
                return None
            length = (wire[pos + 2] << 8) | wire[pos + 3]
            if not (length == 8 or 16 <= length <= 40):
                return None
            pos += 4 + length
        if pos != end:
            return None
        edns = (ttl >> 16) & 0xFF
        do = bool(ttl & _DO)
    elif pos != end:
        return None
    try:
        qname = dns.name.Name(labels)
    except dns.name.NameTooLong:
        return None
    return Query(qid, flags, qname, qtype, qclass, edns, payload, do, wire[12:12 + name_end])


class TooBig(Exception):
    """The answer and authority sections do not fit the size limit."""


Section = list[tuple[dns.name.Name, dns.rdataset.Rdataset]]


class ResponseWriter:
    """Builds one response: header, question, sections, optional OPT."""

    def __init__(self, qname: dns.name.Name, qtype: int, qclass: int, max_size: int,
                 edns: bool):
        labels = qname.labels
        self.question = qname.to_wire() + _TYPE_CLASS.pack(qtype, qclass)
        # Offsets of every suffix of the question name, for owner-name compression.
        offsets: dict[tuple[bytes, ...], int] = {}
        position = 12
        lowered = tuple(label.lower() for label in labels)
        for i in range(len(labels) - 1):
            offsets[lowered[i:]] = position
            position += len(labels[i]) + 1
        self._offsets = offsets
        self._owners: dict[dns.name.Name, bytes] = {}
        self.limit = max_size - 12 - len(self.question) - (11 if edns else 0)

    def owner(self, name: dns.name.Name) -> bytes:
        found = self._owners.get(name)
        if found is not None:
            return found
        labels = name.labels
        lowered = tuple(label.lower() for label in labels)
        out = None
        for i in range(len(labels) - 1):
            offset = self._offsets.get(lowered[i:])
            if offset is not None:
                out = b"".join(bytes((len(l),)) + l for l in labels[:i])
                out += struct.pack("!H", _POINTER | offset)
                break
        if out is None:
            out = name.to_wire()
        self._owners[name] = out
        return out



# RFC 3597 §4: only the RFC 1035 types may have names inside their RDATA compressed (never
# SRV, DNAME, RRSIG, NSEC or SVCB targets, RFC 2782, RFC 6672 §2.5, RFC 4034, RFC 9460 §2.2).
# type → (offset of the first name in the RDATA, how many names follow back to back)
_COMPRESSIBLE = {2: (0, 1), 3: (0, 1), 4: (0, 1), 5: (0, 1), 6: (0, 2), 7: (0, 1), 8: (0, 1),
                 9: (0, 1), 12: (0, 1), 14: (0, 2), 15: (2, 1)}
_MAX_POINTER = 0x3FFF


class CompressingWriter:
    """Builds an authoritative response from sections of (owner in wire form, ``zonedb.RRset``),
    compressing names as NSD does (RFC 1035 §4.1.4): every owner, and the names inside the RDATA
    of the RFC 1035 types, point to the longest earlier occurrence of a suffix (matched without
    regard to case); the rest of a name is written as given. Owners and those RDATA names are
    written lower-cased (their canonical form, RFC 4034 §6.2, as Knot and NSD load them), so
    a name spells as the question where its pointer leads there, else in lower case, as theirs.

    ``records`` appends to the message; ``mark``/``rollback`` undo an RRset that did not fit,
    forgetting the names it taught the compression table.
    """

    def __init__(self, qwire: bytes, qtype: int, qclass: int, max_size: int, edns: bool):
        self.question = qwire + _TYPE_CLASS.pack(qtype, qclass)
        table: dict[bytes, int] = {}
        lowered = qwire.lower()  # length octets are below 64, so only letters change
        pos = 0
        while qwire[pos]:
            table[lowered[pos:]] = 12 + pos
            pos += 1 + qwire[pos]
        self._table = table
        self._added: list[bytes] = []
        self.parts: list[bytes] = []
        self.size = 0  # bytes written after the question
        self._base = 12 + len(self.question)
        self.limit = max_size - self._base - (11 if edns else 0)

    def _name(self, wire: bytes, at: int) -> bytes:
        """``wire`` to be written at message offset ``at``: compressed, its new suffixes learnt."""
        table = self._table
        lowered = wire.lower()
        pos = 0
        out = wire
        while wire[pos]:
            offset = table.get(lowered[pos:])
            if offset is not None:
                out = wire[:pos] + struct.pack("!H", _POINTER | offset)
                break
            pos += 1 + wire[pos]
        stop, p = pos, 0
        added = self._added
        while p < stop and at + p <= _MAX_POINTER:
            suffix = lowered[p:]
            table[suffix] = at + p
            added.append(suffix)
            p += 1 + wire[p]
        return out

    def records(self, section: "list[tuple[bytes, RRset]]") -> int:
        """Append every record of ``section``; returns how many."""
        parts = self.parts
        count = 0
        for owner, rrset in section:
            owner = owner.lower()
            names = _COMPRESSIBLE.get(rrset.rdtype)
            for chunk in rrset.chunks:
                at = self._base + self.size
                head = self._name(owner, at)
                at += len(head) + 10
                if names is None:
                    parts.append(head)
                    parts.append(chunk)
                    self.size += len(head) + len(chunk)
                else:
                    rdata = self._rdata(chunk, names, at)
                    parts.append(head)
                    parts.append(chunk[:8])
                    parts.append(struct.pack("!H", len(rdata)))
                    parts.append(rdata)
                    self.size += len(head) + 10 + len(rdata)
                count += 1
        return count

    def _rdata(self, chunk: bytes, names: tuple[int, int], at: int) -> bytes:
        first, count = names
        pos = 10 + first
        out = [chunk[10:pos]]
        at += first
        for _ in range(count):
            end = pos
            while chunk[end]:
                end += 1 + chunk[end]
            name = self._name(chunk[pos:end + 1].lower(), at)
            out.append(name)
            at += len(name)
            pos = end + 1
        out.append(chunk[pos:])
        return b"".join(out)

    def mark(self) -> tuple[int, int, int]:
        return len(self.parts), self.size, len(self._added)

    def rollback(self, mark: tuple[int, int, int]) -> None:
        parts, self.size, added = mark
        del self.parts[parts:]
        table = self._table
        for suffix in self._added[added:]:
            del table[suffix]
        del self._added[added:]

    def body(self) -> bytes:
        return b"".join(self.parts)


def opt_record(payload: int, ext_rcode: int, do: bool) -> bytes:
    """OPT pseudo-RR, EDNS version 0, no options (RFC 6891 §6.1.2)."""
    ttl = (ext_rcode << 24) | (_DO if do else 0)
    return b"\x00" + _RR_FIXED.pack(_OPT, payload, ttl, 0)


def header(qid: int, flags: int, counts: tuple[int, int, int, int]) -> bytes:
    return _HEADER.pack(qid, flags, *counts)
