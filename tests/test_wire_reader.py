"""wire_reader.read agrees with dns.message.from_wire (the oracle) on every section and field,
or both reject: real responses from NSD and Knot serving a signed three-level hierarchy
(Knot serves only the apex: referrals with glue, REFUSED; NSEC denials, DNSKEY/DS/RRSIG, SVCB/CAPS/LOAD, TC over a small EDNS
buffer — NSD and Knot fit these in 512 octets, so TC is only met in the fuzz slice), then a bounded fuzz slice of mutated, truncated and pointer-tricked copies."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rrset
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools" / "bench"))
import hierarchy  # noqa: E402

from resolver.engine import wire_reader  # noqa: E402
from support import peer_servers  # noqa: E402
from support.net import free_port  # noqa: E402

NET = "127.0.158"
QTYPES = ("SOA", "NS", "DNSKEY", "DS", "A", "AAAA", "SVCB", "TYPE65380", "TYPE65381", "TXT", "NSEC", "ANY")


def _fields(m: dns.message.Message) -> tuple:
    def section(rrsets):
        return [(r.name.labels, r.rdclass, r.rdtype, r.covers, r.ttl,
                 sorted(rd.to_wire() for rd in r), [type(rd) for rd in r]) for r in rrsets]
    opt = None if m.opt is None else (m.opt.name, m.opt.ttl, [rd.to_wire() for rd in m.opt])
    return (type(m), m.id, m.flags, m.rcode(), m.opcode(), m.edns, m.ednsflags, m.payload,
            [o.to_wire() for o in m.options], opt, m.wire,
            section(m.question), section(m.answer), section(m.authority), section(m.additional))


def _outcome(parse, wire: bytes):
    try:
        return ("ok", _fields(parse(wire)))
    except Exception as exc:  # both must reject; the exception class may differ
        return ("reject", None)


def agree(wire: bytes) -> bool:
    ours, oracle = _outcome(wire_reader.read, wire), _outcome(dns.message.from_wire, wire)
    assert ours == oracle, wire.hex()
    return ours[0] == "ok"


@pytest.fixture(scope="module")
def captured(tmp_path_factory) -> list[bytes]:
    work = tmp_path_factory.mktemp("wire_reader")
    h = hierarchy.build(work / "zones", 4, net=NET)
    out: list[bytes] = []
    port = free_port(f"{NET}.1")
    with peer_servers.nsd(work / "nsd", f"{NET}.1", port, h.files), \
            peer_servers.knot(work / "knot", f"{NET}.2", port, {hierarchy.APEX: h.files[hierarchy.APEX]}):
        for server in (f"{NET}.1", f"{NET}.2"):
            for zone in h.files:
                for owner in (zone, f"pool-0.{zone}", f"nx.{zone}", f"cmcc.{zone}", f"ns1.cmcc.{zone}",
                              f"x.bj.cmcc.{zone}", f"pool-1.bj.cmcc.{zone}"):
                    for qtype in QTYPES:
                        q = dns.message.make_query(owner, qtype, want_dnssec=True, payload=1232)
                        out.append(dns.query.udp(q, server, port=port, timeout=3).to_wire())
                q = dns.message.make_query(zone, "ANY", want_dnssec=True, payload=512)
                out.append(dns.query.udp(q, server, port=port, timeout=3, raise_on_truncation=False).to_wire())
    return out



def test_real_responses_agree(captured):
    assert len(captured) > 300
    assert all(agree(w) for w in captured)
    parsed = [dns.message.from_wire(w) for w in captured]
    assert any(m.authority and not m.answer and not m.flags & dns.flags.AA for m in parsed)  # referral


def _mutations(wire: bytes, rng: random.Random):
    yield wire[:rng.randrange(len(wire))]                       # truncation
    b = bytearray(wire)
    for _ in range(rng.randint(1, 4)):
        b[rng.randrange(len(b))] = rng.randrange(256)           # byte flips
    yield bytes(b)
    if len(wire) > 14:
        b = bytearray(wire)
        at = rng.randrange(12, len(b) - 1)
        target = rng.choice((at, at + 1, rng.randrange(len(b)), rng.randrange(0x4000), 12))
        b[at:at + 2] = bytes((0xC0 | target >> 8 & 0x3F, target & 0xFF))  # pointer tricks
        yield bytes(b)
    yield wire + bytes(rng.randrange(1, 4))                     # trailing garbage
    b = bytearray(wire)
    b[rng.choice((4, 6, 8, 10)) + 1] += rng.randint(1, 3)        # counts larger than the message
    yield bytes(b)


def test_fuzzed_responses_agree_or_both_reject(captured):
    rng = random.Random(11)
    cases = accepted = 0
    while cases < 2500:
        for wire in _mutations(rng.choice(captured), rng):
            accepted += agree(wire)
            cases += 1
    assert 0 < accepted < cases  # both outcomes exercised


@pytest.mark.slow
def test_fuzzed_long(captured):
    rng = random.Random(1)
    for _ in range(40_000):
        for wire in _mutations(rng.choice(captured), rng):
            agree(wire)


def _split_rrsets_wire(records: list[tuple[str, int, str, str]]) -> bytes:
    """A response whose answer holds each (owner, ttl, type, rdata) as its own RR, in the given
    order, so one RRset arrives in pieces: the grouping rules (TTL minimisation, duplicates,
    singleton types keeping only the last record) are then the reader's own to get right."""
    m = dns.message.make_response(dns.message.make_query("a.example.", "A"))
    for owner, ttl, rdtype, text in records:
        m.answer.append(dns.rrset.from_text(owner, ttl, "IN", rdtype, text))
    return m.to_wire(max_size=65535)


def test_rrsets_in_pieces_agree():
    rng = random.Random(5)
    pool = [("a.example.", "A", "192.0.2.1"), ("a.example.", "A", "192.0.2.2"), ("A.EXAMPLE.", "A", "192.0.2.1"),
            ("a.example.", "CNAME", "b.example."), ("a.example.", "CNAME", "C.example."),
            ("a.example.", "NSEC", "b.example. A RRSIG NSEC"), ("a.example.", "NSEC", "c.example. A"),
            ("a.example.", "RRSIG", "A 15 2 300 20300101000000 20200101000000 1 example. AAAA"),
            ("a.example.", "RRSIG", "NSEC 15 2 300 20300101000000 20200101000000 1 example. AAAA"),
            ("a.example.", "RRSIG", "A 15 2 300 20300101000000 20200101000000 2 Example. AAAA"),
            ("a.example.", "TYPE65380", r"\# 2 8000"), ("a.example.", "TYPE65380", r"\# 2 8000")]
    for _ in range(400):
        records = [(owner, rng.choice((0, 1, 300, 60, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)), rdtype, text)
                   for owner, rdtype, text in rng.choices(pool, k=rng.randint(1, 6))]
        try:
            wire = _split_rrsets_wire(records)
        except Exception:
            continue  # dnspython will not render it (e.g. a TTL it refuses): nothing to compare
        assert agree(wire)
