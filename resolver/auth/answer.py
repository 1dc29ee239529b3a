"""Sans-I/O authoritative answering: query bytes in, response bytes out.

The lookup follows RFC 1034 §4.3.2 (zone cut → referral, exact match, CNAME, wildcard, name
error) with the DNSSEC additions of RFC 4035 §3.1 (RRSIGs, NSEC proofs, DS at the parent side),
NSEC3 proofs (RFC 5155 §7.2) for zones whose apex has an NSEC3PARAM (``store.ZoneIndex.nsec3``,
chosen in ``nsec3``), and EDNS0 (RFC 6891). Hostile input never raises: what cannot be read as
a header is dropped, what can is answered FORMERR.

Identical query bytes (after the ID) always get identical response bytes while the store is
unchanged, so rendered responses are cached on the store by those bytes; only the ID differs.
Plain queries are read and responses written by ``wire`` (pre-rendered records); dnspython
parses whatever else arrives.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdataset

from . import wire as wirefmt
from .nsec3 import NSEC3, key_of
from .store import NodeData, ZoneIndex, ZoneStore
from .wire import Query, ResponseWriter, Section, WireMemo

ADVERTISED_PAYLOAD = 1232  # DNS flag day 2020: avoids IP fragmentation on common paths
MIN_PAYLOAD = 512  # RFC 6891 §6.2.3: smaller values are treated as 512
MAX_CNAME_CHAIN = 8
CACHE_LIMIT = 50_000

# Plain ints: enum arithmetic on the hot path costs more than the lookup itself.
_QR = int(dns.flags.QR)
_AA = int(dns.flags.AA)
_TC = int(dns.flags.TC)
_COPIED_FLAGS = int(dns.flags.RD | dns.flags.CD)  # RFC 1035 §4.1.1, RFC 4035 §3.1.6; never AD, RA
_DO = int(dns.flags.DO)

A, AAAA, ANY, CNAME, DS, NS, NSEC, RRSIG, SOA = (
    dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.ANY, dns.rdatatype.CNAME,
    dns.rdatatype.DS, dns.rdatatype.NS, dns.rdatatype.NSEC, dns.rdatatype.RRSIG,
    dns.rdatatype.SOA,
)
SVCB, HTTPS, DNAME = dns.rdatatype.SVCB, dns.rdatatype.HTTPS, dns.rdatatype.DNAME
_ADDRESS_TYPES = (A, AAAA)
_FORMERR_QTYPES = frozenset({dns.rdatatype.OPT, dns.rdatatype.TSIG, dns.rdatatype.TKEY})
_TRANSFER_QTYPES = frozenset({dns.rdatatype.AXFR, dns.rdatatype.IXFR})
_WILDCARD = b"*"



@dataclass
class Answer:
    """What a lookup decided, before rendering."""

    memo: WireMemo
    rcode: int = dns.rcode.NOERROR
    authoritative: bool = True
    # (owner, Rdataset) pairs: the owner is the query name for wildcard expansions.
    answer: Section = field(default_factory=list)
    authority: Section = field(default_factory=list)
    additional: Section = field(default_factory=list)
    # Set for referrals: all glue must fit or the response is truncated (see _render).
    glue_required: bool = False


def answer_query(store: ZoneStore, wire: bytes, *, tcp: bool) -> bytes | None:
    """Answer one DNS query. Returns response bytes, or None to drop the packet silently."""
    if len(wire) < 12:
        return None  # not even a header: nothing to address a reply to
    flags = (wire[2] << 8) | wire[3]
    if flags & _QR:
        return None  # never answer a response (reflection loops between servers)
    key = wire[2:]
    # Separate caches: a TCP response may be larger than any UDP client may receive.
    cache = store.tcp_responses if tcp else store.responses
    cached = cache.get(key)
    if cached is not None:
        return wire[:2] + cached
    response, cacheable = _answer_uncached(store, wire, tcp, flags)
    if cacheable:
        if len(cache) >= CACHE_LIMIT:
            cache.clear()  # bounded: hostile query variety cannot grow memory
        cache[key] = response[2:]
    return response


def _answer_uncached(store: ZoneStore, wire: bytes, tcp: bool, flags: int) -> tuple[bytes, bool]:
    """The response, and whether it may be cached (garbage variety must not evict answers)."""
    query = wirefmt.parse_query(wire)
    if query is None:
        parsed = _parse_with_dnspython(wire, flags)
        if isinstance(parsed, bytes):
            return parsed, False
        query = parsed
    return _answer(store, query, tcp), True


def _parse_with_dnspython(wire: bytes, flags: int) -> Query | bytes:
    """Queries of unusual shape: a Query if answerable, else the error response bytes."""
    qid = struct.unpack_from("!H", wire)[0]
    try:
        message = dns.message.from_wire(wire)
    except dns.message.UnknownTSIGKey:
        # RFC 8945 §5.2: a query signed with a key we do not know gets NOTAUTH.
        return _header_only(qid, flags, dns.rcode.NOTAUTH)
    except Exception:  # noqa: BLE001 - any malformed packet, whatever dnspython raised
        return _header_only(qid, flags, dns.rcode.FORMERR)
    opcode = dns.opcode.from_flags(flags)
    if len(message.question) != 1:
        return _header_only(qid, flags, dns.rcode.NOTIMP if opcode else dns.rcode.FORMERR)
    if opcode == dns.opcode.QUERY and (message.answer or message.authority):
        return _header_only(qid, flags, dns.rcode.FORMERR)
    question = message.question[0]
    return Query(
        qid, flags, question.name, question.rdtype, question.rdclass, message.edns,
        message.payload, message.edns >= 0 and bool(message.ednsflags & _DO),
    )


def _answer(store: ZoneStore, query: Query, tcp: bool) -> bytes:
    flags = query.flags
    if tcp:
        max_size = 65535
    elif query.edns >= 0:
        max_size = max(MIN_PAYLOAD, min(query.payload, ADVERTISED_PAYLOAD))
    else:
        max_size = MIN_PAYLOAD
    base_flags = _QR | (flags & (_COPIED_FLAGS | 0x7800))  # 0x7800: opcode bits

    def reply(rcode: int, result: Answer | None = None) -> bytes:
        return _render(query, base_flags, rcode, result, max_size)

    if dns.opcode.from_flags(flags) != dns.opcode.QUERY:
        return reply(dns.rcode.NOTIMP)
    if query.edns > 0:
        return reply(dns.rcode.BADVERS)  # RFC 6891 §6.1.3: we speak version 0 only
    qname, qtype = query.qname, query.qtype
    if qtype in _FORMERR_QTYPES:
        return reply(dns.rcode.FORMERR)
    if query.qclass != dns.rdataclass.IN or qtype in _TRANSFER_QTYPES:
        return reply(dns.rcode.REFUSED)
    if dns.rdatatype.is_metatype(qtype) and qtype != ANY:
        return reply(dns.rcode.NOTIMP)

    index = store.find_index(qname)
    if index is not None and qtype == DS and qname == index.origin and len(qname) > 1:
        # DS lives on the parent side of a cut (RFC 4035 §3.1.4.1): answer from the parent
        # zone when we serve it.
        parent = store.find_index(qname.parent())
        if parent is not None:
            index = parent
    if index is None:
        return reply(dns.rcode.REFUSED)
    result = resolve(index, qname, qtype, query.do)
    return reply(result.rcode, result)


def resolve(index: ZoneIndex, qname: dns.name.Name, qtype: int, do: bool) -> Answer:
    """The RFC 1034 §4.3.2 lookup of qname/qtype inside one zone, following in-zone CNAMEs."""
    result = Answer(index.wire)
    seen: set[dns.name.Name] = set()
    name = qname
    for _ in range(MAX_CNAME_CHAIN + 1):
        seen.add(name)
        target = _lookup(index, name, qtype, do, result)
        if target is None or target in seen or not target.is_subdomain(index.origin):
            break  # done, a loop, or out of zone: the resolver follows from here
        name = target
    return result


def _lookup(
    index: ZoneIndex, qname: dns.name.Name, qtype: int, do: bool, result: Answer
) -> dns.name.Name | None:
    """One step of the lookup; returns a CNAME target to continue with, else None."""
    cut = index.find_cut(qname)
    if cut is not None and not (cut == qname and qtype == DS):
        _referral(index, index.nodes[cut], do, result)
        return None

    node = index.nodes.get(qname)
    if node is not None:
        return _from_node(index, node, qname, qtype, do, result, wildcard=None)
    if index.exists(qname):
        if index.nsec3 is not None:
            # RFC 5155 §7.2.3: NSEC3 chains hold empty non-terminals too.
            _add_negative_soa(index, do, result)
            if do:
                _add_nsec3(index.nsec3.no_data(key_of(qname)), result)
        else:
            _nodata(index, index.covering_nsec(qname), do, result)  # empty non-terminal
        return None

    encloser = index.closest_encloser(qname)
    enclosing = index.nodes.get(encloser)
    if enclosing is not None and DNAME in enclosing.rrsets and encloser != qname:
        return _dname(index, enclosing, qname, do, result)
    source = dns.name.Name((_WILDCARD, *encloser.labels))
    wildcard = index.nodes.get(source)
    if wildcard is not None:
        return _from_node(index, wildcard, qname, qtype, do, result, wildcard=source)

    # Name error: SOA, the NSEC covering qname and the one covering the wildcard that
    # could have matched (RFC 4035 §3.1.3.2).
    result.rcode = dns.rcode.NXDOMAIN
    _add_negative_soa(index, do, result)
    if do:
        if index.nsec3 is not None:
            # RFC 5155 §7.2.2: closest encloser proof and the NSEC3 covering its wildcard.
            _add_nsec3(index.nsec3.name_error(key_of(qname)), result)
        else:
            _add_nsec(index.covering_nsec(qname), result)
            _add_nsec(index.covering_nsec(source), result)
    return None


def _from_node(
    index: ZoneIndex, node: NodeData, qname: dns.name.Name, qtype: int, do: bool,
    result: Answer, wildcard: dns.name.Name | None,
) -> dns.name.Name | None:
    rrsets = node.rrsets
    if qtype == ANY:
        # RFC 8482 §4.1: answer ANY with one RRset of the owner's choice.
        qtype = next((t for t in sorted(rrsets) if t not in (NSEC, RRSIG)), NSEC)
    if qtype == RRSIG:
        found = list(node.sigs.values()) if wildcard is None else []
        if not found:
            if wildcard is not None and index.nsec3 is not None:
                _wildcard_nodata3(index, qname, wildcard, do, result)
            else:
                _nodata_at(index, node, do, result)
            return None
        result.answer.extend((qname, sig) for sig in found)
        return None

    rrset = rrsets.get(qtype)
    target: dns.name.Name | None = None
    if rrset is None and CNAME in rrsets:
        rrset, qtype = rrsets[CNAME], CNAME
        target = rrset[0].target
    if rrset is None:
        if wildcard is None:
            _nodata_at(index, node, do, result)
        elif index.nsec3 is not None:
            _wildcard_nodata3(index, qname, wildcard, do, result)
        else:
            # Wildcard NODATA: no closer match for qname, and no qtype at the wildcard
            # (RFC 4035 §3.1.3.4).
            _add_negative_soa(index, do, result)
            if do:
                _add_nsec(index.covering_nsec(qname), result)
                _add_nsec(node, result)
        return None

    sig = node.sigs.get(qtype) if do else None
    # A wildcard expansion keeps the source's records and RRSIG (whose labels field tells
    # validators it was synthesized, RFC 4035 §5.3.4) under the query name.
    result.answer.append((qname, rrset))
    if sig is not None:
        result.answer.append((qname, sig))
    if wildcard is not None and do:
        # Prove that qname itself does not exist, so the expansion was legitimate
        # (RFC 4035 §3.1.3.3, RFC 5155 §7.2.6: the NSEC3 covering the next closer name); the
        # RRSIG's labels field tells the validator the source.
        if index.nsec3 is not None:
            _add_nsec3(index.nsec3.wildcard_answer(key_of(qname), key_of(wildcard)[1:]), result)
        else:
            _add_nsec(index.covering_nsec(qname), result)
    if target is None:
        _add_additional(index, qname, rrset, do, result)
    return target


class _SynthMemo(WireMemo):
    """The zone's memo plus records made for one response (a CNAME synthesised from a DNAME):
    those are keyed by id() too, so they are kept alive here while the response is rendered."""

    __slots__ = ("_zone", "_kept")

    def __init__(self, zone: WireMemo):
        super().__init__()
        self._zone = zone
        self._kept: list[dns.rdataset.Rdataset] = []

    def add(self, rdataset: dns.rdataset.Rdataset) -> None:
        self._kept.append(rdataset)
        self._by_id[id(rdataset)] = wirefmt.RRsetWire(rdataset)

    def get(self, rrset: dns.rdataset.Rdataset) -> wirefmt.RRsetWire:
        found = self._by_id.get(id(rrset))
        return found if found is not None else self._zone.get(rrset)


def _dname(index: ZoneIndex, node: NodeData, qname: dns.name.Name, do: bool, result: Answer) -> dns.name.Name | None:
    """RFC 6672 §3.2: qname lies below a DNAME: the DNAME (signed) and the CNAME it implies
    (unsigned, TTL of the DNAME), then on to the new name; YXDOMAIN if it would be too long."""
    dname = node.rrsets[DNAME]
    result.answer.append((node.name, dname))
    sig = node.sigs.get(DNAME) if do else None
    if sig is not None:
        result.answer.append((node.name, sig))
    try:
        target = qname.relativize(node.name).concatenate(dname[0].target)
    except dns.name.NameTooLong:
        result.rcode = dns.rcode.YXDOMAIN
        return None
    cname = dns.rdataset.from_text(dns.rdataclass.IN, CNAME, dname.ttl, target.to_text())
    if not isinstance(result.memo, _SynthMemo):
        result.memo = _SynthMemo(result.memo)
    result.memo.add(cname)
    result.answer.append((qname, cname))
    return target


def _nodata(index: ZoneIndex, node: NodeData | None, do: bool, result: Answer) -> None:
    """NODATA: SOA plus the NSEC at (or, for an empty non-terminal, covering) the name."""
    _add_negative_soa(index, do, result)
    if do:
        _add_nsec(node, result)


def _nodata_at(index: ZoneIndex, node: NodeData, do: bool, result: Answer) -> None:
    """NODATA at a name with data: NSEC, or NSEC3 matching it (RFC 5155 §7.2.3, §7.2.4 for
    DS at a delegation: under opt-out an unsigned delegation has none, and the closest
    provable encloser proof is given instead)."""
    if index.nsec3 is None:
        _nodata(index, node, do, result)
        return
    _add_negative_soa(index, do, result)
    if do:
        _add_nsec3(index.nsec3.no_data(key_of(node.name)), result)


def _wildcard_nodata3(index: ZoneIndex, qname: dns.name.Name, wildcard: dns.name.Name, do: bool,
                      result: Answer) -> None:
    """Wildcard NODATA in an NSEC3 zone (RFC 5155 §7.2.5)."""
    _add_negative_soa(index, do, result)
    if do:
        assert index.nsec3 is not None
        source = key_of(wildcard)
        _add_nsec3(index.nsec3.wildcard_no_data(key_of(qname), source[1:], source), result)


def _referral(index: ZoneIndex, cut: NodeData, do: bool, result: Answer) -> None:
    """Delegation (RFC 1034 §4.3.2 step 3b, RFC 4035 §3.1.4): not authoritative."""
    result.authoritative = False
    ns = cut.rrsets[NS]
    result.authority.append((cut.name, ns))
    if do:
        ds = cut.rrsets.get(DS)
        if ds is not None:
            result.authority.append((cut.name, ds))
            if DS in cut.sigs:
                result.authority.append((cut.name, cut.sigs[DS]))
        elif index.nsec3 is not None:
            # RFC 5155 §7.2.7: the NSEC3 matching the cut (no DS bit), or under opt-out the
            # closest provable encloser proof with an opt-out NSEC3 covering the next closer.
            _add_nsec3(index.nsec3.no_data(key_of(cut.name)), result)
        else:
            _add_nsec(cut, result)  # proves the child is unsigned (no DS bit)
    result.glue_required = True
    for rdata in ns:
        target = rdata.target
        # Only in-bailiwick glue: anything else would let us speak for names we do not serve.
        if not target.is_subdomain(index.origin):
            continue
        node = index.nodes.get(target)
        if node is not None:
            for rdtype in _ADDRESS_TYPES:
                glue = node.rrsets.get(rdtype)
                if glue is not None:
                    result.additional.append((target, glue))


def _add_additional(
    index: ZoneIndex, owner: dns.name.Name, rrset: dns.rdataset.Rdataset, do: bool, result: Answer
) -> None:
    """Addresses of NS and SVCB/HTTPS targets we are authoritative for (RFC 9460 §4.2)."""
    rdtype = rrset.rdtype
    if rdtype == NS:
        names = [rd.target for rd in rrset]
    elif rdtype in (SVCB, HTTPS):
        names = [owner if rd.target == dns.name.root else rd.target for rd in rrset]
    else:
        return
    done: set[dns.name.Name] = set()
    for name in names:
        if name in done or not name.is_subdomain(index.origin) or index.find_cut(name):
            continue
        done.add(name)
        node = index.nodes.get(name)
        if node is None:
            continue
        for addr_type in _ADDRESS_TYPES:
            addrs = node.rrsets.get(addr_type)
            if addrs is not None:
                result.additional.append((name, addrs))
                if do and addr_type in node.sigs:
                    result.additional.append((name, node.sigs[addr_type]))


def _add_negative_soa(index: ZoneIndex, do: bool, result: Answer) -> None:
    result.authority.append((index.origin, index.negative_soa))
    if do and index.negative_soa_sig is not None:
        result.authority.append((index.origin, index.negative_soa_sig))


def _add_nsec(node: NodeData | None, result: Answer) -> None:
    if node is None:
        return  # unsigned zone
    nsec = node.rrsets.get(NSEC)
    if nsec is None or any(r is nsec for _, r in result.authority):
        return
    result.authority.append((node.name, nsec))
    sig = node.sigs.get(NSEC)
    if sig is not None:
        result.authority.append((node.name, sig))


def _add_nsec3(nodes: list[NodeData], result: Answer) -> None:
    for node in nodes:
        nsec3 = node.rrsets[NSEC3]
        if any(r is nsec3 for _, r in result.authority):
            continue  # one NSEC3 can serve two parts of a proof (RFC 5155 §7.2: once)
        result.authority.append((node.name, nsec3))
        sig = node.sigs.get(NSEC3)
        if sig is not None:
            result.authority.append((node.name, sig))


def _header_only(qid: int, flags: int, rcode: int) -> bytes:
    out_flags = _QR | (flags & (_COPIED_FLAGS | 0x7800)) | (rcode & 0xF)
    return struct.pack("!6H", qid, out_flags, 0, 0, 0, 0)


def _render(query: Query, flags: int, rcode: int, result: Answer | None, max_size: int) -> bytes:
    """Response bytes; TC with the question only when answer and authority do not fit."""
    writer = ResponseWriter(query.qname, query.qtype, query.qclass, max_size, query.edns >= 0)
    counts = [1, 0, 0, 0]
    body = b""
    if result is not None:
        if result.authoritative:
            flags |= _AA
        answer, counts[1] = writer.records(result.answer, result.memo)
        authority, counts[2] = writer.records(result.authority, result.memo)
        body = answer + authority
        truncated = len(body) > writer.limit
        for entry in result.additional if not truncated else ():
            records, count = writer.records([entry], result.memo)
            if len(body) + len(records) > writer.limit:
                # Glue for in-domain servers must be complete or the response truncated
                # (RFC 9471 §3); other additional data is simply left out.
                truncated = result.glue_required
                break
            body += records
            counts[3] += count
        if truncated:
            # RFC 2181 §9: the client retries over TCP instead of using a partial RRset.
            flags |= _TC
            counts[1:] = [0, 0, 0]
            body = b""
    opt = b""
    if query.edns >= 0:
        opt = wirefmt.opt_record(ADVERTISED_PAYLOAD, rcode >> 4, query.do)
        counts[3] += 1
    head = wirefmt.header(query.qid, flags | (rcode & 0xF), tuple(counts))
    return head + writer.question + body + opt
