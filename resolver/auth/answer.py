"""Sans-I/O authoritative answering: query bytes in, response bytes out.

The lookup follows RFC 1034 §4.3.2 (zone cut → referral, exact match, CNAME, wildcard, name
error) with the DNSSEC additions of RFC 4035 §3.1 (RRSIGs, NSEC proofs, DS at the parent side),
NSEC3 proofs (RFC 5155 §7.2) for zones whose apex has an NSEC3PARAM (``store.ZoneIndex.nsec3``,
chosen in ``nsec3``), and EDNS0 (RFC 6891). Hostile input never raises: what cannot be read as
a header is dropped, what can is answered FORMERR.

Zones are ``zonedb.ZoneData``: names are canonical keys (``wirename``) and RRsets records in
wire form, so a lookup is dict and bisection work and rendering is joining bytes.

Identical query bytes (after the ID) always get identical response bytes while the zone is
unchanged, so rendered responses are cached on the store by those bytes (``respcache``), each
with the names it was decided by (``Answer.deps``), so that a change drops exactly those.
Plain queries are read by ``wire.parse_query``; dnspython parses whatever else arrives.
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
from . import wirename
from .nsec3 import NSEC3
from .respcache import soa_dependency
from .store import ZoneStore
from .wire import CompressingWriter, Query
from .zonedb import IN, RR_HEAD, Node, RRset, ZoneData

ADVERTISED_PAYLOAD = 1232  # DNS flag day 2020: avoids IP fragmentation on common paths
MIN_PAYLOAD = 512  # RFC 6891 §6.2.3: smaller values are treated as 512
MAX_CNAME_CHAIN = 8

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
MX, SRV = dns.rdatatype.MX, dns.rdatatype.SRV
_ADDRESS_TYPES = (A, AAAA)
_FORMERR_QTYPES = frozenset({dns.rdatatype.OPT, dns.rdatatype.TSIG, dns.rdatatype.TKEY})
_TRANSFER_QTYPES = frozenset({dns.rdatatype.AXFR, dns.rdatatype.IXFR})
_WILDCARD = b"*"
_END = wirename.END
_MAX_NAME = 255

Section = list[tuple[bytes, RRset]]  # (owner in wire form, RRset)


@dataclass
class Answer:
    """What a lookup decided, before rendering."""

    rcode: int = dns.rcode.NOERROR
    authoritative: bool = True
    # (owner wire, RRset) pairs: the owner is the query name for exact and wildcard matches.
    answer: Section = field(default_factory=list)
    authority: Section = field(default_factory=list)
    additional: Section = field(default_factory=list)
    # Set for referrals: all glue must fit or the response is truncated (see _render).
    glue_required: bool = False
    # Canonical keys of the names this answer was decided by (respcache module text).
    deps: list[bytes] = field(default_factory=list)


def answer_query(store: ZoneStore, wire: bytes, *, tcp: bool) -> bytes | None:
    """Answer one DNS query. Returns response bytes, or None to drop the packet silently."""
    if len(wire) < 12:
        return None  # not even a header: nothing to address a reply to
    flags = (wire[2] << 8) | wire[3]
    if flags & _QR:
        return None  # never answer a response (reflection loops between servers)
    key = wire[2:]
    # Separate caches: a TCP response may be larger than any UDP client may receive.
    cache = store.cache
    cached = cache.get(key, tcp)
    if cached is not None:
        return wire[:2] + cached
    query = wirefmt.parse_query(wire)
    if query is None:
        parsed = _parse_with_dnspython(wire, flags)
        if isinstance(parsed, bytes):
            return parsed  # never cached: garbage variety must not evict answers
        query = parsed
    deps: list[bytes] = []
    response = _answer(store, query, tcp, deps)
    cache.put(key, response[2:], deps, tcp)
    return response


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


def _answer(store: ZoneStore, query: Query, tcp: bool, deps: list[bytes]) -> bytes:
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

    qkey = wirename.key_of_labels(qname.labels)
    zone = store.find_key(qkey)
    if zone is not None and qtype == DS and qkey == zone.apex and qkey:
        # DS lives on the parent side of a cut (RFC 4035 §3.1.4.1): answer from the parent
        # zone when we serve it.
        parent = store.find_key(wirename.parent_key(qkey))
        if parent is not None:
            zone = parent
    if zone is None:
        return reply(dns.rcode.REFUSED)
    result = resolve(zone, qkey, query.qwire or qname.to_wire(), qtype, query.do)
    deps.extend(result.deps)
    return reply(result.rcode, result)


def resolve(zone: ZoneData, qkey: bytes, qwire: bytes, qtype: int, do: bool) -> Answer:
    """The RFC 1034 §4.3.2 lookup of qname/qtype inside one zone, following in-zone CNAMEs."""
    result = Answer()
    seen: set[bytes] = set()
    key, wire = qkey, qwire
    apex = zone.apex
    for _ in range(MAX_CNAME_CHAIN + 1):
        seen.add(key)
        # A cut or DNAME appearing at any ancestor below the apex changes this answer.
        result.deps.extend(wirename.ancestor_keys(key, apex)[:-1] or (key,))
        target = _lookup(zone, key, wire, qtype, do, result)
        if target is None:
            break
        key, wire = target
        if key in seen or not key.startswith(apex):
            break  # a loop, or out of zone: the resolver follows from here
    return result


def _lookup(zone: ZoneData, qkey: bytes, qwire: bytes, qtype: int, do: bool,
            result: Answer) -> tuple[bytes, bytes] | None:
    """One step of the lookup; returns a CNAME target (key, wire) to continue with, else None."""
    cut = zone.find_cut(qkey)
    if cut is not None and not (cut == qkey and qtype == DS):
        _referral(zone, zone.node(cut), do, result)
        return None
    if zone.dnames:
        # RFC 6672 §2.3: a DNAME occludes whatever lies below it, even data in the file.
        for ancestor in reversed(wirename.ancestor_keys(qkey, zone.apex)[1:]):
            if ancestor in zone.dnames:
                return _dname(zone, zone.node(ancestor), qkey, qwire, qtype, do, result)

    node = zone.node(qkey)
    if node is not None:
        return _from_node(zone, node, qkey, qwire, qtype, do, result, wildcard=None)
    if zone.exists_key(qkey):
        if zone.nsec3 is not None:
            # RFC 5155 §7.2.3: NSEC3 chains hold empty non-terminals too.
            _add_negative_soa(zone, do, result)
            if do:
                _add_nsec3(zone, zone.nsec3.no_data(qkey), result)
        else:
            _nodata(zone, zone.covering_nsec(qkey), do, result)  # empty non-terminal
        return None

    encloser = zone.closest_encloser(qkey)
    source = encloser + _WILDCARD + _END
    result.deps.append(source)
    wildcard = zone.node(source)
    if wildcard is not None:
        return _from_node(zone, wildcard, qkey, qwire, qtype, do, result, wildcard=source)

    # Name error: SOA, the NSEC covering qname and the one covering the wildcard that
    # could have matched (RFC 4035 §3.1.3.2).
    result.rcode = dns.rcode.NXDOMAIN
    _add_negative_soa(zone, do, result)
    if do:
        if zone.nsec3 is not None:
            # RFC 5155 §7.2.2: closest encloser proof and the NSEC3 covering its wildcard.
            _add_nsec3(zone, zone.nsec3.name_error(qkey), result)
        else:
            _add_nsec(zone, zone.covering_nsec(qkey), result)
            _add_nsec(zone, zone.covering_nsec(source), result)
    return None


def _from_node(zone: ZoneData, node: Node, qkey: bytes, qwire: bytes, qtype: int, do: bool,
               result: Answer, wildcard: bytes | None) -> tuple[bytes, bytes] | None:
    rrsets = node.rrsets
    if qtype == ANY:
        # RFC 8482 §4.1: answer ANY with one RRset of the owner's choice.
        qtype = next((t for t in sorted(rrsets) if t not in (NSEC, RRSIG)), NSEC)
    if qtype == RRSIG:
        found = list(node.sigs.values()) if wildcard is None else []
        if not found:
            if wildcard is not None and zone.nsec3 is not None:
                _wildcard_nodata3(zone, qkey, wildcard, do, result)
            else:
                _nodata_at(zone, node, do, result)
            return None
        result.answer.extend((qwire, sig) for sig in found)
        return None

    rrset = rrsets.get(qtype)
    target: tuple[bytes, bytes] | None = None
    if rrset is None and CNAME in rrsets:
        rrset, qtype = rrsets[CNAME], CNAME
        target_wire = rrset.chunks[0][10:]
        target = (wirename.key_of_wire(target_wire), target_wire)
    if rrset is None:
        if wildcard is None:
            _nodata_at(zone, node, do, result)
        elif zone.nsec3 is not None:
            _wildcard_nodata3(zone, qkey, wildcard, do, result)
        else:
            # Wildcard NODATA: no closer match for qname, and no qtype at the wildcard
            # (RFC 4035 §3.1.3.4).
            _add_negative_soa(zone, do, result)
            if do:
                _add_nsec(zone, zone.covering_nsec(qkey), result)
                _add_nsec_of(node, result)
        return None

    sig = node.sig(qtype) if do else None
    # A wildcard expansion keeps the source's records and RRSIG (whose labels field tells
    # validators it was synthesized, RFC 4035 §5.3.4) under the query name.
    result.answer.append((qwire, rrset))
    if sig is not None:
        result.answer.append((qwire, sig))
    if wildcard is not None and do:
        # Prove that qname itself does not exist, so the expansion was legitimate
        # (RFC 4035 §3.1.3.3, RFC 5155 §7.2.6: the NSEC3 covering the next closer name); the
        # RRSIG's labels field tells the validator the source.
        if zone.nsec3 is not None:
            _add_nsec3(zone, zone.nsec3.wildcard_answer(qkey, wirename.parent_key(wildcard)), result)
        else:
            _add_nsec(zone, zone.covering_nsec(qkey), result)
    if target is None:
        _add_additional(zone, qwire, rrset, do, result)
    return target


def _dname(zone: ZoneData, node: Node, qkey: bytes, qwire: bytes, qtype: int, do: bool,
           result: Answer) -> tuple[bytes, bytes] | None:
    """RFC 6672 §3.2: qname lies below a DNAME: the DNAME (signed) and the CNAME it implies
    (unsigned, TTL of the DNAME), then on to the new name — unless the question was for the
    CNAME, which is then answered (as Knot and NSD do); YXDOMAIN if it would be too long."""
    dname = node.rrsets[DNAME]
    result.answer.append((node.wire, dname))
    sig = node.sig(DNAME) if do else None
    if sig is not None:
        result.answer.append((node.wire, sig))
    # qname = <prefix>.<owner>: the prefix labels come first in qwire, then the owner's.
    prefix = qwire[:len(qwire) - len(node.wire)]
    target_wire = prefix + dname.chunks[0][10:]
    if len(target_wire) > _MAX_NAME:
        result.rcode = dns.rcode.YXDOMAIN
        return None
    cname = RRset(CNAME, 0, dname.ttl,
                  [RR_HEAD.pack(CNAME, IN, dname.ttl, len(target_wire)) + target_wire])
    result.answer.append((qwire, cname))
    if qtype == CNAME:
        return None
    return wirename.key_of_wire(target_wire), target_wire


def _nodata(zone: ZoneData, nsec_owner: bytes | None, do: bool, result: Answer) -> None:
    """NODATA: SOA plus the NSEC at (or, for an empty non-terminal, covering) the name."""
    _add_negative_soa(zone, do, result)
    if do:
        _add_nsec(zone, nsec_owner, result)


def _nodata_at(zone: ZoneData, node: Node, do: bool, result: Answer) -> None:
    """NODATA at a name with data: NSEC, or NSEC3 matching it (RFC 5155 §7.2.3, §7.2.4 for
    DS at a delegation: under opt-out an unsigned delegation has none, and the closest
    provable encloser proof is given instead)."""
    _add_negative_soa(zone, do, result)
    if not do:
        return
    if zone.nsec3 is None:
        _add_nsec_of(node, result)
    else:
        _add_nsec3(zone, zone.nsec3.no_data(node.key), result)


def _wildcard_nodata3(zone: ZoneData, qkey: bytes, wildcard: bytes, do: bool,
                      result: Answer) -> None:
    """Wildcard NODATA in an NSEC3 zone (RFC 5155 §7.2.5)."""
    _add_negative_soa(zone, do, result)
    if do:
        assert zone.nsec3 is not None
        _add_nsec3(zone, zone.nsec3.wildcard_no_data(qkey, wirename.parent_key(wildcard), wildcard),
                   result)


def _referral(zone: ZoneData, cut: Node, do: bool, result: Answer) -> None:
    """Delegation (RFC 1034 §4.3.2 step 3b, RFC 4035 §3.1.4): not authoritative — unless a CNAME
    or DNAME of ours led here, which the answer's first RRset is (AA stays, as Knot and NSD)."""
    if not result.answer:
        result.authoritative = False
    ns = cut.rrsets[NS]
    result.authority.append((cut.wire, ns))
    if do and zone.signed:
        # Unsigned zones send no DS with referrals (as Knot and NSD): nothing could prove it.
        ds = cut.rrsets.get(DS)
        if ds is not None:
            result.authority.append((cut.wire, ds))
            ds_sig = cut.sig(DS)
            if ds_sig is not None:
                result.authority.append((cut.wire, ds_sig))
        elif zone.nsec3 is not None:
            # RFC 5155 §7.2.7: the NSEC3 matching the cut (no DS bit), or under opt-out the
            # closest provable encloser proof with an opt-out NSEC3 covering the next closer.
            _add_nsec3(zone, zone.nsec3.no_data(cut.key), result)
        else:
            _add_nsec_of(cut, result)  # proves the child is unsigned (no DS bit)
    result.glue_required = True
    apex = zone.apex
    for chunk in ns.chunks:
        target = chunk[10:]
        key = wirename.key_of_wire(target)
        # Only in-bailiwick glue: anything else would let us speak for names we do not serve.
        if not key.startswith(apex):
            continue
        result.deps.append(key)
        node = zone.node(key)
        if node is not None:
            for rdtype in _ADDRESS_TYPES:
                glue = node.rrsets.get(rdtype)
                if glue is not None:
                    result.additional.append((node.wire, glue))


def _svcb_target(rdata: bytes) -> bytes:
    """TargetName of SVCB/HTTPS RDATA (after SvcPriority), uncompressed (RFC 9460 §2.2)."""
    pos = 2
    while rdata[pos]:
        pos += 1 + rdata[pos]
    return rdata[2:pos + 1]


def _add_additional(zone: ZoneData, owner: bytes, rrset: RRset, do: bool, result: Answer) -> None:
    """Addresses of NS, MX, SRV and SVCB/HTTPS targets we are authoritative for (RFC 1035
    §3.3.9, RFC 2782, RFC 9460 §4.2)."""
    rdtype = rrset.rdtype
    if rdtype == NS:
        names = [c[10:] for c in rrset.chunks]
    elif rdtype == MX:  # RFC 1035 §3.3.9: preference, exchange
        names = [c[12:] for c in rrset.chunks]
    elif rdtype == SRV:  # RFC 2782: priority, weight, port, target
        names = [c[16:] for c in rrset.chunks if c[16:] != b"\x00"]
    elif rdtype in (SVCB, HTTPS):
        names = []
        for chunk in rrset.chunks:
            target = _svcb_target(chunk[10:])
            names.append(owner if target == b"\x00" else target)
    else:
        return
    done: set[bytes] = set()
    apex = zone.apex
    for wire in names:
        key = wirename.key_of_wire(wire)
        if key in done or not key.startswith(apex):
            continue
        done.add(key)
        result.deps.append(key)
        if zone.find_cut(key):
            continue
        node = zone.node(key)
        if node is None:
            continue
        for addr_type in _ADDRESS_TYPES:
            addrs = node.rrsets.get(addr_type)
            if addrs is not None:
                result.additional.append((wire, addrs))
                sig = node.sig(addr_type) if do else None
                if sig is not None:
                    result.additional.append((wire, sig))


def _add_negative_soa(zone: ZoneData, do: bool, result: Answer) -> None:
    result.deps.append(soa_dependency(zone.apex))
    result.authority.append((zone.apex_wire, zone.negative_soa))
    if do and zone.negative_soa_sig is not None:
        result.authority.append((zone.apex_wire, zone.negative_soa_sig))


def _add_nsec(zone: ZoneData, owner: bytes | None, result: Answer) -> None:
    if owner is None:
        return  # unsigned zone
    node = zone.node(owner)
    if node is not None:
        _add_nsec_of(node, result)


def _add_nsec_of(node: Node, result: Answer) -> None:
    nsec = node.rrsets.get(NSEC)
    if nsec is None:
        return
    result.deps.append(node.key)
    if any(r.rdtype == NSEC and o == node.wire for o, r in result.authority):
        return
    result.authority.append((node.wire, nsec))
    sig = node.sig(NSEC)
    if sig is not None:
        result.authority.append((node.wire, sig))


def _add_nsec3(zone: ZoneData, owners: list[bytes], result: Answer) -> None:
    for owner in owners:
        result.deps.append(owner)
        node = zone.hashed_node(owner)
        if node is None:
            continue
        nsec3 = node.rrsets[NSEC3]
        if any(r.rdtype == NSEC3 and o == node.wire for o, r in result.authority):
            continue  # one NSEC3 can serve two parts of a proof (RFC 5155 §7.2: once)
        result.authority.append((node.wire, nsec3))
        sig = node.sig(NSEC3)
        if sig is not None:
            result.authority.append((node.wire, sig))


def _header_only(qid: int, flags: int, rcode: int) -> bytes:
    out_flags = _QR | (flags & (_COPIED_FLAGS | 0x7800)) | (rcode & 0xF)
    return struct.pack("!6H", qid, out_flags, 0, 0, 0, 0)


def _render(query: Query, flags: int, rcode: int, result: Answer | None, max_size: int) -> bytes:
    """Response bytes; TC with the question only when answer and authority do not fit."""
    qwire = query.qwire or query.qname.to_wire()
    writer = CompressingWriter(qwire, query.qtype, query.qclass, max_size, query.edns >= 0)
    counts = [1, 0, 0, 0]
    if result is not None:
        if result.authoritative:
            flags |= _AA
        counts[1] = writer.records(result.answer)
        counts[2] = writer.records(result.authority)
        truncated = writer.size > writer.limit
        for entry in result.additional if not truncated else ():
            mark = writer.mark()
            count = writer.records([entry])
            if writer.size > writer.limit:
                # Glue for in-domain servers must be complete or the response truncated
                # (RFC 9471 §3); other additional data is simply left out.
                writer.rollback(mark)
                truncated = result.glue_required
                break
            counts[3] += count
        if truncated:
            # RFC 2181 §9: the client retries over TCP instead of using a partial RRset.
            flags |= _TC
            counts[1:] = [0, 0, 0]
            writer.rollback((0, 0, 0))
    opt = b""
    if query.edns >= 0:
        opt = wirefmt.opt_record(ADVERTISED_PAYLOAD, rcode >> 4, query.do)
        counts[3] += 1
    head = wirefmt.header(query.qid, flags | (rcode & 0xF), tuple(counts))
    return head + writer.question + writer.body() + opt
