"""querywire.build_query builds the Message dnspython's make_query + use_edns would build (every
EDNS attribute, the OPT RRset and rdata objects field by field) and its exact wire form."""

from __future__ import annotations

import random

import dns.flags
import dns.message
import dns.name
import dns.rdataclass

from resolver.engine.querywire import build_query


def _oracle(qname: dns.name.Name, qtype: int, qid: int, edns: bool, payload: int) -> dns.message.Message:
    query = dns.message.QueryMessage(id=qid)
    query.flags = dns.flags.CD
    query.find_rrset(query.question, qname, dns.rdataclass.IN, qtype, create=True, force_unique=True)
    if edns:
        query.use_edns(0, dns.flags.DO, payload)
    return query


def _attributes(m: dns.message.Message) -> tuple:
    opt = None
    if m.opt is not None:
        opt = (m.opt.name, m.opt.ttl, type(m.opt.rdclass), m.opt.rdclass, m.opt.rdtype, m.opt.covers,
               [(type(rd), type(rd.rdclass), rd.rdclass, rd.rdtype, rd.options, rd.rdcomment) for rd in m.opt])
    return (m.id, m.flags, m.edns, m.ednsflags, m.payload, m.request_payload, m.pad, m.options, opt,
            [(q.name.labels, q.rdclass, q.rdtype) for q in m.question])


def test_queries_match_dnspythons():
    rng = random.Random(2)
    for _ in range(300):
        qname = dns.name.from_text(rng.choice(("cid.", "Pool-7.bJ.cmcc.CID.", ".", "x.y.z.example.")))
        qtype, qid = rng.choice((1, 2, 28, 43, 48, 64, 65380)), rng.getrandbits(16)
        edns, payload = rng.random() < 0.8, rng.choice((512, 1232, 1400, 4096))
        query, wire = build_query(qname, qtype, qid, edns, payload)
        oracle = _oracle(qname, qtype, qid, edns, payload)
        assert _attributes(query) == _attributes(oracle)
        assert query == oracle
        assert wire == oracle.to_wire() == query.to_wire()
