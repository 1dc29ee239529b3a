"""Our upstream queries, built cheaply: the Message (for matching replies) and its wire form.

``dns.message.make_query`` plus ``to_wire`` cost about 160 µs per query on a slow core —
more than a loopback round trip — because the general renderer handles compression,
TSIG and every section. An iterative query is always the same shape: a 12-byte header
(random ID, CD=1, RD=0; RFC 4035 §3.2.2), one question, and optionally one OPT RR at the
root with our payload size and the DO bit (RFC 6891 §6.1.2, RFC 3225). The wire form is
therefore rendered here directly; tests/test_engine_concurrency.py checks it byte for byte
against dnspython's own rendering of the same Message, and tests/test_querywire.py that the
Message is the one ``make_query``/``use_edns`` would build.
"""

from __future__ import annotations

import struct

import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rrset

from .wire_reader import opt_rrset

_OPT = 41
_IN = dns.rdataclass.IN


def build_query(qname: dns.name.Name, qtype: int, qid: int, edns: bool,
                payload: int) -> tuple[dns.message.QueryMessage, bytes]:
    """The query (qname exactly as given, 0x20 case included) and ``query.to_wire()``."""
    query = dns.message.QueryMessage(id=qid)
    query.flags = dns.flags.CD
    query.question = [dns.rrset.RRset(qname, _IN, qtype)]
    if edns:
        # What query.use_edns(0, dns.flags.DO, payload) sets, with the OPT RRset built directly
        # (dnspython's generic path costs as much as the rest of the query; test_querywire).
        query.opt = opt_rrset(payload, dns.flags.DO)
        query.request_payload = payload
        query.pad = 0
    # Header: ID, flags, QDCOUNT=1, ANCOUNT=0, NSCOUNT=0, ARCOUNT (the OPT RR).
    wire = struct.pack("!HHHHHH", qid, dns.flags.CD, 1, 0, 0, 1 if edns else 0)
    wire += qname.to_wire() + struct.pack("!HH", qtype, _IN)
    if edns:
        # OPT: root owner, TYPE 41, CLASS = payload, TTL = extended RCODE 0, version 0, DO; no options.
        wire += b"\x00" + struct.pack("!HHIH", _OPT, payload, dns.flags.DO, 0)
    return query, wire
