"""Sans-I/O answering for the recursive front end: query bytes in, a Request (or an immediate
response) out; a Request and the engine's Lookup in, response bytes out.

What a stub sees follows a validating recursive resolver (Unbound's defaults):

* RA always; RD and CD copied (RFC 1035 §4.1.1, RFC 4035 §3.2.2); RD=0 is REFUSED, as
  Unbound's ``access-control: allow`` refuses non-recursive queries for cached data;
* AD only for SECURE data and only when the query set DO or AD (RFC 6840 §5.7 — a client
  that asks neither may not understand it);
* bogus data is SERVFAIL unless CD=1, then it is returned with AD clear (RFC 4035 §3.2.2);
* RRSIGs only when DO=1 (RFC 3225 §3); negative answers carry the SOA, and with DO also the
  NSEC records and their RRSIGs (RFC 4035 §3.1.3);
* EDNS(0): an OPT is returned iff the query had one, advertising 1232 octets (DNS flag day
  2020); a version above 0 gets BADVERS (RFC 6891 §6.1.3); UDP responses over the client's
  size (512 without EDNS) are TC=1 with empty sections, so the client retries over TCP
  (RFC 2181 §9 — never a partial RRset);
* what cannot be parsed is FORMERR (header echoed), what cannot even be addressed (shorter
  than a header, or QR=1) is dropped; nothing raises on hostile bytes.

Query parsing reuses the authoritative server's fast reader (``auth.wire.parse_query``) and
its owner-name compression against the question; dnspython decides every unusual shape.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from ..auth import wire as wirefmt
from ..auth.wire import Query, ResponseWriter
from ..engine.result import Lookup
from ..status import Status

ADVERTISED_PAYLOAD = 1232  # DNS flag day 2020: avoids IP fragmentation
MIN_PAYLOAD = 512  # RFC 6891 §6.2.5: smaller advertised sizes count as 512
TCP_MAX = 65535

_QR, _AA, _TC = int(dns.flags.QR), int(dns.flags.AA), int(dns.flags.TC)
_RD, _RA, _AD, _CD = int(dns.flags.RD), int(dns.flags.RA), int(dns.flags.AD), int(dns.flags.CD)
_OPCODE_BITS = 0x7800
_COPIED = _RD | _CD | _OPCODE_BITS
_RR_FIXED = struct.Struct("!HHIH")

RRSIG, NSEC, NSEC3, SOA = dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3, dns.rdatatype.SOA
_FORMERR_QTYPES = frozenset({dns.rdatatype.OPT, dns.rdatatype.TSIG, dns.rdatatype.TKEY})
_REFUSED_QTYPES = frozenset({dns.rdatatype.AXFR, dns.rdatatype.IXFR})  # zone transfers: ask the primary
# ANY, MAILA/MAILB: no single RRset a validator can vouch for (RFC 8482 lets us decline ANY).
# RRSIG is answered from the cache (rrsig_response).
_NOTIMP_QTYPES = frozenset({dns.rdatatype.ANY, dns.rdatatype.MAILA, dns.rdatatype.MAILB})
_NEGATIVE_PROOF = frozenset({SOA, NSEC, NSEC3})  # what a negative answer's authority section holds
# RFC 8914 §4 info-codes. Texts are cut to fit small UDP responses.
_EDE = 15
EDE_OTHER, EDE_STALE, EDE_BOGUS, EDE_STALE_NXDOMAIN = 0, 3, 6, 19
MAX_EDE_TEXT = 300
_PLAIN_OPT = 11  # an OPT without options, which ResponseWriter's limit already counts
_RCODES = {"NOERROR": dns.rcode.NOERROR, "NXDOMAIN": dns.rcode.NXDOMAIN, "SERVFAIL": dns.rcode.SERVFAIL}


@dataclass(frozen=True, slots=True)
class Request:
    """A well-formed recursive query to resolve; ``max_size`` is what the response may use."""

    query: Query
    tcp: bool

    @property
    def do(self) -> bool:
        return self.query.do

    @property
    def cd(self) -> bool:
        return bool(self.query.flags & _CD)

    @property
    def wants_ad(self) -> bool:
        """RFC 6840 §5.7: set AD only for clients that signalled they understand it."""
        return self.query.do or bool(self.query.flags & _AD)

    @property
    def max_size(self) -> int:
        if self.tcp:
            return TCP_MAX
        if self.query.edns >= 0:
            return max(MIN_PAYLOAD, min(self.query.payload, ADVERTISED_PAYLOAD))
        return MIN_PAYLOAD


def read_query(wire: bytes, *, tcp: bool) -> Request | bytes | None:
    """A Request to resolve, the bytes of an immediate response (FORMERR, REFUSED, NOTIMP,
    BADVERS), or None to drop the packet silently."""
    if len(wire) < 12:
        return None  # not even a header: nothing to address a reply to
    flags = (wire[2] << 8) | wire[3]
    if flags & _QR:
        return None  # never answer a response (reflection loops)
    opcode = (flags >> 11) & 0xF
    if opcode not in (dns.opcode.QUERY, dns.opcode.NOTIFY):
        # Header only: other opcodes give the sections other meanings (UPDATE's zone section).
        return header_only(struct.unpack_from("!H", wire)[0], flags, dns.rcode.NOTIMP)
    query = wirefmt.parse_query(wire)
    if query is None:
        parsed = _parse_with_dnspython(wire, flags)
        if isinstance(parsed, bytes):
            return parsed
        query = parsed
    request = Request(query, tcp)
    if opcode == dns.opcode.NOTIFY:
        return error(request, dns.rcode.REFUSED)  # understood, but a resolver has no zones to refresh
    if query.edns > 0:
        return error(request, dns.rcode.BADVERS)  # we speak EDNS version 0 only
    if query.qtype in _FORMERR_QTYPES:
        return error(request, dns.rcode.FORMERR)
    if query.qclass != dns.rdataclass.IN or query.qtype in _REFUSED_QTYPES:
        return error(request, dns.rcode.REFUSED)
    if query.qtype in _NOTIMP_QTYPES:
        return error(request, dns.rcode.NOTIMP)
    if not flags & _RD:
        return error(request, dns.rcode.REFUSED)  # no cache snooping (see module docstring)
    return request


def _parse_with_dnspython(wire: bytes, flags: int) -> Query | bytes:
    qid = struct.unpack_from("!H", wire)[0]
    try:
        message = dns.message.from_wire(wire)
    except Exception:  # noqa: BLE001 - any malformed packet, whatever dnspython raised
        return header_only(qid, flags, dns.rcode.FORMERR)
    if len(message.question) != 1 or message.answer or message.authority:
        return header_only(qid, flags, dns.rcode.FORMERR)
    question = message.question[0]
    do = message.edns >= 0 and bool(message.ednsflags & dns.flags.DO)
    return Query(qid, flags, question.name, question.rdtype, question.rdclass, message.edns,
                 message.payload, do)


def header_only(qid: int, flags: int, rcode: int) -> bytes:
    return struct.pack("!6H", qid, _QR | _RA | (flags & _COPIED) | (rcode & 0xF), 0, 0, 0, 0)


def error(request: Request, rcode: int) -> bytes:
    """A response with the question and (if the query had EDNS) an OPT, no records."""
    return _render(request, _base_flags(request) | (rcode & 0xF), rcode, [], [])


def soa_wanted(lookup: Lookup) -> dns.name.Name | None:
    """The zone whose SOA a negative answer lacks, if any. Denials the engine proves from
    cached NSEC/NSEC3 records (RFC 8198) carry only those; stubs expect the SOA too, for the
    negative TTL (RFC 2308 §3), so the server looks it up and passes it to ``respond``."""
    if lookup.rrset is not None or lookup.rcode not in ("NOERROR", "NXDOMAIN"):
        return None
    if any(r.rdtype == SOA for r in lookup.authority):
        return None
    for rrset in lookup.authority:
        if rrset.rdtype == RRSIG and rrset.covers in (NSEC, NSEC3):
            return rrset[0].signer
    return None


def respond(request: Request, lookup: Lookup, soa: Lookup | None = None) -> tuple[bytes, int]:
    """The response to ``request`` from the engine's ``lookup`` (and, for a negative answer
    without one, the SOA lookup that ``soa_wanted`` asked for), and for how many seconds the
    same bytes may answer an identical query (0: do not reuse)."""
    rcode = _RCODES.get(lookup.rcode, dns.rcode.SERVFAIL)
    flags = _base_flags(request)
    if rcode == dns.rcode.SERVFAIL:
        # Bogus results are cached briefly by the engine so attackers cannot force work;
        # upstream failures are not reused (the engine's server selection holds them down).
        reuse = lookup.ttl if lookup.status is Status.BOGUS else 0
        ede = (EDE_BOGUS if lookup.status is Status.BOGUS else EDE_OTHER, lookup.why)
        return _render(request, flags | rcode, rcode, [], [], ede), reuse
    if lookup.status is Status.SECURE and request.wants_ad:
        flags |= _AD
    do = request.do
    cap = max(0, lookup.ttl)
    answer: list[tuple[dns.rrset.RRset, int]] = []
    for cname, sigs in itertools.zip_longest(lookup.chain, lookup.chain_rrsigs):
        answer.append((cname, cap))
        if do and sigs is not None:
            answer.append((sigs, cap))
    authority: list[tuple[dns.rrset.RRset, int]] = []
    if lookup.rrset is not None:
        answer.append((lookup.rrset, cap))
        if do and lookup.rrsigs is not None:
            answer.append((lookup.rrsigs, cap))
            # A wildcard expansion comes with the NSEC (NSEC3: the one covering the next
            # closer name) proving the name itself does not exist, or a validating client
            # cannot accept it (RFC 4035 §3.1.3.3, RFC 5155 §7.2.6).
            authority.extend((r, cap) for r in lookup.authority
                             if NSEC in (r.rdtype, r.covers) or NSEC3 in (r.rdtype, r.covers))
    else:
        if soa is not None and soa.rrset is not None:
            # RFC 2308 §5: the negative TTL is the lesser of the SOA's TTL and MINIMUM.
            negative = min(cap, soa.rrset.ttl, soa.rrset[0].minimum)
            authority.append((soa.rrset, negative))
            if do and soa.rrsigs is not None:
                authority.append((soa.rrsigs, negative))
        for rrset in lookup.authority:
            kind = rrset.covers if rrset.rdtype == RRSIG else rrset.rdtype
            if kind in _NEGATIVE_PROOF and (do or rrset.rdtype == SOA):
                authority.append((rrset, cap))
    ede = None
    if lookup.stale:  # RFC 8767 §6 / RFC 8914 §4.4: tell the client the data is stale
        ede = (EDE_STALE_NXDOMAIN if rcode == dns.rcode.NXDOMAIN else EDE_STALE, "")
    return _render(request, flags | rcode, rcode, answer, authority, ede), cap


def _base_flags(request: Request) -> int:
    return _QR | _RA | (request.query.flags & _COPIED)


# Rdata wire forms by id(rdata), each beside the rdata it was made from (kept alive, so its id
# cannot be reused while the entry stands). A rendered response lives one second; then, unless
# it can be counted down (responses.py), the same cached RRsets are rendered again with lower
# TTLs: dnspython's to_wire is the bulk of that (an SVCB's ~100 µs), and rdatas are immutable,
# so their bytes are made once.
_RDATA_WIRE: dict[int, tuple[dns.rdata.Rdata, bytes]] = {}
MAX_RDATA_WIRE = 8192  # cleared when full: a bound on what it keeps alive, not an LRU


def _rdata_wire(rdata: dns.rdata.Rdata) -> bytes:
    found = _RDATA_WIRE.get(id(rdata))
    if found is not None and found[0] is rdata:
        return found[1]
    data = rdata.to_wire()
    if len(_RDATA_WIRE) >= MAX_RDATA_WIRE:
        _RDATA_WIRE.clear()
    _RDATA_WIRE[id(rdata)] = (rdata, data)
    return data


def _records(writer: ResponseWriter, section: list[tuple[dns.rrset.RRset, int]]) -> tuple[bytes, int]:
    parts = []
    count = 0
    for rrset, cap in section:
        owner = writer.owner(rrset.name)
        # Cached data is handed out with its remaining TTL, never more than it came with.
        ttl = min(rrset.ttl, cap)
        for rdata in rrset:
            data = _rdata_wire(rdata)
            parts.append(owner + _RR_FIXED.pack(rdata.rdtype, rdata.rdclass, ttl, len(data)) + data)
            count += 1
    return b"".join(parts), count


def _render(request: Request, flags: int, rcode: int, answer, authority,
            ede: tuple[int, str] | None = None) -> bytes:
    query = request.query
    writer = ResponseWriter(query.qname, query.qtype, query.qclass, request.max_size, query.edns >= 0)
    arcount, opt = 0, b""
    if query.edns >= 0:
        opt = _opt_record(rcode >> 4, query.do, ede)
        arcount = 1
    answer_wire, ancount = _records(writer, answer)
    authority_wire, nscount = _records(writer, authority)
    body = answer_wire + authority_wire
    if len(body) > writer.limit - (len(opt) - _PLAIN_OPT):
        flags |= _TC  # RFC 2181 §9: the client retries over TCP rather than use part of it
        body, ancount, nscount = b"", 0, 0
    head = wirefmt.header(query.qid, (flags & ~0xF) | (rcode & 0xF), (1, ancount, nscount, arcount))
    return head + writer.question + body + opt


def _opt_record(ext_rcode: int, do: bool, ede: tuple[int, str] | None) -> bytes:
    """OPT, version 0, our payload size, DO echoed (RFC 3225 §3), and an Extended DNS Error
    (RFC 8914) saying why, when there is one."""
    rdata = b""
    if ede is not None:
        code, text = ede
        extra = text.encode("utf-8")[:MAX_EDE_TEXT].decode("utf-8", "ignore").encode("utf-8")
        rdata = struct.pack("!HHH", _EDE, 2 + len(extra), code) + extra
    ttl = (ext_rcode << 24) | (int(dns.flags.DO) if do else 0)
    return b"\x00" + _RR_FIXED.pack(dns.rdatatype.OPT, ADVERTISED_PAYLOAD, ttl, len(rdata)) + rdata


EDE_PROHIBITED = 18  # RFC 8914 §4.19


def rrsig_response(request: Request, cache) -> bytes:
    """QTYPE RRSIG: the signatures of the RRsets cached at the name, without AD — RRSIGs are
    validated together with the RRsets they cover (RFC 4035 §5.3), never on their own — as
    Unbound hands them out; REFUSED when none is cached (we do not go and fetch signatures
    nobody asked the data of). Bogus RRsets' signatures are never given."""
    entries = [e for e in cache.rrsets_at(request.query.qname)
               if e.rrsigs is not None and e.status is not Status.BOGUS]
    if not entries:
        return _render(request, _base_flags(request) | dns.rcode.REFUSED, dns.rcode.REFUSED, [], [],
                       (EDE_PROHIBITED, "RRSIG is answered from the cache only: ask for the type with DO"))
    answer = [(e.rrsigs, cache.remaining(e)) for e in entries]
    return _render(request, _base_flags(request), dns.rcode.NOERROR, answer, [])
