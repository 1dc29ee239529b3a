"""A lean reader of DNS response wire format for the resolver's cold path (issue 11).

``dns.message.from_wire`` is the oracle: ``read`` returns a ``dns.message.Message`` equal to
what it builds (every section and field; tests/test_wire_reader.py compares them on real and
fuzzed responses) or raises where it raises. It is the same algorithm with the generic parts
cut: an owner that is a bare compression pointer to a name already read (the question, an
earlier owner) reuses that name when dnspython's decompression rules (pointers backwards only,
no overlap, chain length) would accept it; every other name is read by dnspython's parser;
RRsets are grouped in a dict instead of ``find_rrset``'s keyword and enum normalisation;
records join their RRset with ``Rdataset.add``'s rules inlined (TTL minimisation, singleton
types keeping the last record, one set insertion: an rdata's hash is its canonical wire form
and ``Set.add`` computes it twice); the question is built directly. RDATA is still parsed by
dnspython (``dns.rdata.from_wire_parser``), so canonical forms and DNSSEC verification see the
very same objects. Messages this reader does not handle itself (not a QUERY opcode, TSIG) go
to ``dns.message.from_wire``.
"""

from __future__ import annotations

import struct

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.wire

_OPT, _TSIG, _RRSIG, _SIG = dns.rdatatype.OPT, dns.rdatatype.TSIG, dns.rdatatype.RRSIG, dns.rdatatype.SIG
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_Q = struct.Struct("!HH")
_MAX_HOPS = dns.name.MAX_COMPRESSION_POINTER_CHAIN
_TYPES = {int(t): t for t in dns.rdatatype.RdataType}
_CLASSES = {int(c): c for c in dns.rdataclass.RdataClass}
_SINGLETONS = frozenset(int(t) for t in dns.rdatatype._singletons)  # noqa: SLF001 - is_singleton's set


def _rdtype(value: int):
    return _TYPES.get(value) or dns.rdatatype.RdataType.make(value)


def _rdclass(value: int):
    return _CLASSES.get(value) or dns.rdataclass.RdataClass.make(value)


def _wire_length(name: dns.name.Name) -> int:
    return sum(len(label) + 1 for label in name.labels)


def read(wire: bytes) -> dns.message.Message:
    """Parse a response as ``dns.message.from_wire(wire)`` would (same result or same failure)."""
    if len(wire) < 12:
        raise dns.message.ShortHeader
    qid, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    if dns.opcode.from_flags(flags) != dns.opcode.QUERY:
        return dns.message.from_wire(wire)
    message = dns.message.QueryMessage(id=qid)
    message.flags = dns.flags.Flag(flags)
    message.wire = wire
    parser = dns.wire.Parser(wire)
    parser.seek(12)
    # offset -> (name, end of its first segment, pointer hops): names read from that offset
    names: dict[int, tuple[dns.name.Name, int, int]] = {}
    size = len(wire)

    def owner() -> dns.name.Name:
        start = parser.current
        if start + 1 < size and wire[start] >= 0xC0:
            # A bare pointer to a name already read from its offset gives that same name when
            # dnspython's rules hold: the target lies before the pointer, its first segment ends
            # by the pointer (restrict_end), and one more hop stays within the chain limit.
            target = (wire[start] & 0x3F) << 8 | wire[start + 1]
            hit = names.get(target)
            if hit is not None and target < start and hit[1] <= start and hit[2] < _MAX_HOPS:
                parser.seek(start + 2)
                names[start] = (hit[0], start + 2, hit[2] + 1)
                return hit[0]
        name = parser.get_name(None, True)
        if parser.current - start == _wire_length(name) and wire[parser.current - 1] == 0:
            names[start] = (name, parser.current, 0)  # read uncompressed: no hops
        return name

    for _ in range(qdcount):
        qname = owner()
        rdtype, rdclass = parser.get_struct("!HH")
        # force_unique: every question entry is its own RRset, as find_rrset(force_unique=True).
        message.question.append(dns.rrset.RRset(qname, _rdclass(rdclass), _rdtype(rdtype)))
    for number, count in ((1, ancount), (2, nscount), (3, arcount)):
        section = message.sections[number]
        index: dict[tuple, dns.rrset.RRset] = {}
        for i in range(count):
            name = owner()
            rdtype, rdclass, ttl, rdlen = parser.get_struct("!HHIH")
            if rdtype == _TSIG:
                return dns.message.from_wire(wire)  # TSIG needs a keyring: dnspython's way
            if rdtype == _OPT and (number != 3 or message.opt or name != dns.name.root):
                raise dns.message.BadEDNS
            with parser.restrict_to(rdlen):
                rd = dns.rdata.from_wire_parser(rdclass, rdtype, parser, None)
            if rdtype == _OPT:
                message.opt = dns.rrset.from_rdata(name, ttl, rd)
                continue
            covers = rd.covers()
            key = (name, rdclass, rdtype, covers)
            rrset = index.get(key)
            ttl = 0 if ttl > 0x7FFFFFFF else ttl
            # Rdataset.add's rules, inlined: class, type and covers already match by the key,
            # so what is left is TTL minimisation, singleton replacement and one set insertion
            # (Set.add hashes an rdata twice, and an rdata's hash is its canonical wire form).
            if rrset is None:
                rrset = index[key] = dns.rrset.RRset(name, rd.rdclass, rd.rdtype, _rdtype(covers))
                rrset.ttl = ttl
                section.append(rrset)
            elif ttl < rrset.ttl:
                rrset.ttl = ttl
            items = rrset.items
            if items and rdtype in _SINGLETONS:
                items.clear()
            items.setdefault(rd, None)
    if parser.remaining() != 0:
        raise dns.message.TrailingJunk
    return message
