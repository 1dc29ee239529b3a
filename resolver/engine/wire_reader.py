"""A lean reader of DNS response wire format for the resolver's cold path (issue 11).

``dns.message.from_wire`` is the oracle: ``read`` returns a ``dns.message.Message`` equal to
what it builds (every section and field, each rdata's every attribute and its type;
tests/test_wire_reader.py compares them on real and fuzzed responses) or raises where it raises
(the exception class may differ). It is the same algorithm with the generic parts cut:

* owner names are walked by ``decode``, dnspython's decompression rules restated (pointers
  strictly backwards, a target never overlapping the segment that points to it, at most
  ``MAX_COMPRESSION_POINTER_CHAIN`` hops, labels below 64 octets, 255 octets in all), each
  offset walked once per message, and one ``Name`` per distinct spelling;
* RRSIGs of class IN are built from their fixed-size fields and an uncompressed signer
  (RFC 4034 §3.1.7) the way their ``__init__`` builds them, minus range checks that integers
  read from the wire cannot fail; any other shape (short RDATA, a pointer or a bad label in
  the signer) goes to dnspython, which then raises as it must;
* RRsets are grouped in a dict instead of ``find_rrset``'s keyword and enum normalisation, and
  records join them with ``Rdataset.add``'s rules inlined (TTL minimisation, singleton types
  keeping the last record, one set insertion: an rdata's hash is its canonical wire form and
  ``Set.add`` computes it twice); the question is built directly.

Every other RDATA is parsed by dnspython (``dns.rdata.from_wire_parser``). Messages this
reader does not handle itself (not a QUERY opcode, TSIG) go to ``dns.message.from_wire``.
"""

from __future__ import annotations

import struct

import dns.dnssectypes
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
from dns.rdtypes.ANY.RRSIG import RRSIG

_OPT, _TSIG, _RRSIG, _SIG = dns.rdatatype.OPT, dns.rdatatype.TSIG, dns.rdatatype.RRSIG, dns.rdatatype.SIG
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_Q = struct.Struct("!HH")
_MAX_HOPS = dns.name.MAX_COMPRESSION_POINTER_CHAIN
_TYPES = {int(t): t for t in dns.rdatatype.RdataType}
_CLASSES = {int(c): c for c in dns.rdataclass.RdataClass}
_ALGORITHMS = {int(a): a for a in dns.dnssectypes.Algorithm}
_IN, _IN_CLASS = int(dns.rdataclass.IN), dns.rdataclass.IN
_RRSIG_CLASS, _RRSIG_TYPE = RRSIG, dns.rdatatype.RRSIG
_SIG_HEAD = struct.Struct("!HBBIIIH")
# An RRSIG is built as its __init__ would build it, minus the checks that wire integers always
# pass: dnspython's immutable objects take their fields through object.__setattr__ there too.
_new, _set = object.__new__, object.__setattr__
_SINGLETONS = frozenset(int(t) for t in dns.rdatatype._singletons)  # noqa: SLF001 - is_singleton's set


def _rdtype(value: int):
    found = _TYPES.get(value)  # not `or`: RdataType.NONE (0, every covers but RRSIG's) is falsy
    return dns.rdatatype.RdataType.make(value) if found is None else found


def _algorithm(value: int):
    found = _ALGORITHMS.get(value)
    return dns.dnssectypes.Algorithm.make(value) if found is None else found


def _rdclass(value: int):
    found = _CLASSES.get(value)
    return dns.rdataclass.RdataClass.make(value) if found is None else found


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
    size = len(wire)
    # offset -> (labels, end of the first segment, pointer hops) of the name dnspython reads
    # when it starts at that offset on its own; and one Name object per distinct spelling.
    decoded: dict[int, tuple[tuple[bytes, ...], int, int]] = {}
    interned: dict[tuple[bytes, ...], dns.name.Name] = {}

    def decode(start: int, depth: int) -> tuple[tuple[bytes, ...], int, int]:
        """dns.name.from_wire_parser's walk: pointers strictly backwards (BadPointer), the
        target not overlapping the segment that points to it (restrict_end), at most
        MAX_COMPRESSION_POINTER_CHAIN hops; what a name read from an offset is never depends
        on who points there, so each offset is walked once."""
        hit = decoded.get(start)
        if hit is not None:
            return hit
        labels: list[bytes] = []
        pos = start
        while True:
            if pos >= size:
                raise dns.exception.FormError
            count = wire[pos]
            if count == 0:
                labels.append(b"")
                result = (tuple(labels), pos + 1, 0)
                break
            if count < 64:
                pos += 1 + count
                if pos > size:
                    raise dns.exception.FormError
                labels.append(wire[pos - count:pos])
            elif count >= 192:
                if pos + 1 >= size:
                    raise dns.exception.FormError
                target = (count & 0x3F) << 8 | wire[pos + 1]
                if target >= start:
                    raise dns.name.BadPointer
                if depth >= _MAX_HOPS:
                    raise dns.name.PointerChainTooLong
                tail, tail_end, hops = decode(target, depth + 1)
                if tail_end > start:
                    raise dns.exception.FormError  # the target runs into this segment
                if hops >= _MAX_HOPS:
                    raise dns.name.PointerChainTooLong
                result = (tuple(labels) + tail, pos + 2, hops + 1)
                break
            else:
                raise dns.name.BadLabelType
        decoded[start] = result
        return result

    def name_of(labels: tuple[bytes, ...]) -> dns.name.Name:
        name = interned.get(labels)
        if name is None:
            name = interned[labels] = dns.name.Name(labels)  # NameTooLong as dnspython
        return name

    def owner() -> dns.name.Name:
        labels, end, _ = decode(parser.current, 0)
        parser.seek(end)
        return name_of(labels)

    def rrsig(rdclass: int, start: int, end: int):
        """An RRSIG read from wire[start:end] without dnspython's generic path (the same
        object: every field comes from fixed-size integers, so its range checks cannot fail,
        and the signer may not be compressed, RFC 4034 §3.1.7); None when dnspython must
        judge it (short RDATA, a pointer or bad label in the signer, a name too long)."""
        if rdclass != _IN or end - start < 19:
            return None
        labels = []
        pos = start + 18
        while True:
            count = wire[pos] if pos < end else 64
            if count == 0:
                break
            if count >= 64 or pos + 1 + count > end:
                return None
            labels.append(wire[pos + 1:pos + 1 + count])
            pos += 1 + count
        labels.append(b"")
        key = tuple(labels)
        if pos - start - 18 + 1 > 255:
            return None
        covered, algorithm, count, original_ttl, expiration, inception, key_tag = _SIG_HEAD.unpack_from(wire, start)
        rd = _new(_RRSIG_CLASS)
        for slot, value in (("rdclass", _IN_CLASS), ("rdtype", _RRSIG_TYPE), ("rdcomment", None),
                            ("type_covered", _rdtype(covered)), ("algorithm", _algorithm(algorithm)),
                            ("labels", count), ("original_ttl", original_ttl), ("expiration", expiration),
                            ("inception", inception), ("key_tag", key_tag), ("signer", name_of(key)),
                            ("signature", wire[pos + 1:end])):
            _set(rd, slot, value)
        return rd

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
            rd = rrsig(rdclass, parser.current, parser.current + rdlen) if rdtype == _RRSIG else None
            if rd is not None:
                parser.seek(parser.current + rdlen)
            else:
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
