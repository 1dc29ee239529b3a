"""The recursive front end's sans-I/O part (resolver.service.answer): reading queries, hostile
bytes, and turning engine Lookups into responses — no sockets."""

from __future__ import annotations

import random
import struct

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

import resolver  # noqa: F401  (CAPS/LOAD)
from resolver.engine.result import Lookup
from resolver.service.answer import Request, read_query, respond, soa_wanted
from resolver.status import Status

N = dns.name.from_text
SIG = "{covered} 15 4 300 20300101000000 20200101000000 12345 ops.cid. " + "A" * 86 + "=="


def rrset(name: str, ttl: int, rdtype: str, *rdatas: str) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(name, ttl, "IN", rdtype, list(rdatas))


def sig(name: str, covered: str, ttl: int = 300) -> dns.rrset.RRset:
    return rrset(name, ttl, "RRSIG", SIG.format(covered=covered))


A_SET = rrset("pool-7.ops.cid.", 300, "A", "192.0.2.7")
SOA_SET = rrset("ops.cid.", 3600, "SOA", "ns1.ops.cid. hostmaster.ops.cid. 1 7200 900 1209600 300")
NSEC_SET = rrset("gw.ops.cid.", 300, "NSEC", "www.ops.cid. A RRSIG NSEC")


def wire(name="pool-7.ops.cid.", rdtype="A", *, do=False, cd=False, ad=False, rd=True, edns=0,
         payload=1232, qid=4242) -> bytes:
    query = dns.message.make_query(name, rdtype, use_edns=edns, want_dnssec=do, payload=payload)
    query.id = qid
    for flag, on in ((dns.flags.CD, cd), (dns.flags.AD, ad), (dns.flags.RD, rd)):
        query.flags = query.flags | flag if on else query.flags & ~flag
    return query.to_wire()


def request(tcp: bool = False, **kw) -> Request:
    parsed = read_query(wire(**kw), tcp=tcp)
    assert isinstance(parsed, Request)
    return parsed


def parse(response: bytes) -> dns.message.Message:
    return dns.message.from_wire(response)


def lookup(rcode="NOERROR", status=Status.SECURE, ttl=300, **kw) -> Lookup:
    return Lookup(N("pool-7.ops.cid."), dns.rdatatype.A, rcode, status, "test", ttl, **kw)


# Reading queries ---------------------------------------------------------------------------------
def test_a_plain_query_becomes_a_request():
    req = request(do=True, cd=True, payload=4096)
    assert (req.query.qname, req.query.qtype, req.do, req.cd, req.wants_ad) == (
        N("pool-7.ops.cid."), dns.rdatatype.A, True, True, True)
    assert req.max_size == 1232  # our advertised size caps what the client offers
    assert request(payload=100).max_size == 512 and request(edns=False).max_size == 512
    assert request(tcp=True).max_size == 65535
    assert not request().wants_ad and request(ad=True).wants_ad


@pytest.mark.parametrize("data", [b"", b"\x12", b"\x00" * 11])
def test_shorter_than_a_header_is_dropped(data):
    assert read_query(data, tcp=False) is None


def test_responses_are_never_answered():
    response = dns.message.make_response(dns.message.make_query("a.cid.", "A")).to_wire()
    assert read_query(response, tcp=False) is None  # no reflection loops


def _rcode(response: bytes) -> int:
    return parse(response).rcode()


def test_errors_echo_the_id_and_say_why():
    garbage = struct.pack("!6H", 777, 0x0100, 1, 0, 0, 0) + b"\x07pool"  # question cut short
    response = read_query(garbage, tcp=False)
    assert isinstance(response, bytes)
    assert struct.unpack("!H", response[:2])[0] == 777 and _rcode(response) == dns.rcode.FORMERR
    assert parse(response).flags & dns.flags.QR and parse(response).flags & dns.flags.RD
    two = dns.message.make_query("a.cid.", "A")
    two.question.append(two.question[0])
    assert _rcode(read_query(two.to_wire(), tcp=False)) == dns.rcode.FORMERR
    none = struct.pack("!6H", 5, 0x0100, 0, 0, 0, 0)
    assert _rcode(read_query(none, tcp=False)) == dns.rcode.FORMERR


@pytest.mark.parametrize("kw,rdtype,rcode", [
    ({"rd": False}, "A", dns.rcode.REFUSED),       # no cache snooping (Unbound's access-control allow)
    ({}, "AXFR", dns.rcode.REFUSED),
    ({}, "IXFR", dns.rcode.REFUSED),
    ({}, "ANY", dns.rcode.NOTIMP),
    ({}, "OPT", dns.rcode.FORMERR),
    ({}, "TSIG", dns.rcode.FORMERR),
])
def test_queries_we_do_not_resolve(kw, rdtype, rcode):
    response = read_query(wire(rdtype=rdtype, **kw), tcp=False)
    assert isinstance(response, bytes)
    message = parse(response)
    assert message.rcode() == rcode and message.flags & dns.flags.RA
    assert message.question[0].name == N("pool-7.ops.cid.") and message.edns == 0


def test_other_classes_and_opcodes():
    chaos = dns.message.make_query("version.bind.", "TXT", rdclass=dns.rdataclass.CH)
    assert _rcode(read_query(chaos.to_wire(), tcp=False)) == dns.rcode.REFUSED
    notify = dns.message.make_query("ops.cid.", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    response = parse(read_query(notify.to_wire(), tcp=False))
    assert response.rcode() == dns.rcode.REFUSED and response.opcode() == dns.opcode.NOTIFY
    update = dns.message.make_query("ops.cid.", "SOA")
    update.set_opcode(dns.opcode.UPDATE)
    response = parse(read_query(update.to_wire(), tcp=False))
    assert response.rcode() == dns.rcode.NOTIMP and response.opcode() == dns.opcode.UPDATE


def test_edns_version_above_zero_is_badvers():
    response = parse(read_query(wire(edns=1), tcp=False))
    assert response.rcode() == dns.rcode.BADVERS and response.edns == 0


def test_unknown_edns_options_are_ignored():
    query = dns.message.make_query("pool-7.ops.cid.", "A", use_edns=0,
                                   options=[dns.edns.GenericOption(65001, b"xyz"),
                                            dns.edns.GenericOption(dns.edns.OptionType.PADDING, b"\0" * 20)])
    req = read_query(query.to_wire(), tcp=False)
    assert isinstance(req, Request) and req.query.edns == 0


def test_fuzz_random_and_mutated_queries_never_raise():
    """Hostile bytes: every outcome is a drop, a Request, or a parseable response."""
    rng = random.Random(20261125)
    seeds = [wire(n, t, do=rng.random() < 0.5, cd=rng.random() < 0.3, edns=rng.choice([0, False]))
             for n in ("pool-7.ops.cid.", "a.b.c.d.e.cid.", ".") for t in ("A", "SVCB", "TYPE65380", "DS")]
    for i in range(4000):
        if i % 4 == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80)))
        else:
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randrange(1, 6)):
                op = rng.random()
                pos = rng.randrange(len(data))
                if op < 0.5:
                    data[pos] = rng.randrange(256)
                elif op < 0.75:
                    del data[pos:pos + rng.randrange(1, 8)]
                else:
                    data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
                if not data:
                    break
            data = bytes(data)
        outcome = read_query(data, tcp=bool(i & 1))
        if isinstance(outcome, bytes):
            message = dns.message.from_wire(outcome)
            assert message.flags & dns.flags.QR and outcome[:2] == data[:2]
        elif outcome is not None:
            assert isinstance(outcome, Request)
            response, _ = respond(outcome, lookup(rrset=A_SET, rrsigs=sig("pool-7.ops.cid.", "A")))
            assert dns.message.from_wire(response).id == outcome.query.qid


# Responses from Lookups --------------------------------------------------------------------------
def test_secure_answer_ad_only_when_asked_rrsigs_only_with_do():
    secure = lookup(rrset=A_SET, rrsigs=sig("pool-7.ops.cid.", "A"))
    plain = parse(respond(request(), secure)[0])
    assert plain.flags & dns.flags.RA and not plain.flags & dns.flags.AD  # RFC 6840 §5.7
    assert [r.rdtype for r in plain.answer] == [dns.rdatatype.A] and not plain.flags & dns.flags.AA
    assert parse(respond(request(ad=True), secure)[0]).flags & dns.flags.AD
    signed = parse(respond(request(do=True), secure)[0])
    assert signed.flags & dns.flags.AD and signed.ednsflags & dns.flags.DO
    assert [r.rdtype for r in signed.answer] == [dns.rdatatype.A, dns.rdatatype.RRSIG]


@pytest.mark.parametrize("status", [Status.INSECURE, Status.INDETERMINATE])
def test_unvalidated_answers_never_get_ad(status):
    message = parse(respond(request(do=True, ad=True), lookup(status=status, rrset=A_SET))[0])
    assert message.rcode() == dns.rcode.NOERROR and not message.flags & dns.flags.AD


def test_ttls_count_down_from_the_lookup_never_up():
    response, reuse = respond(request(do=True), lookup(ttl=42, rrset=A_SET, rrsigs=sig("pool-7.ops.cid.", "A")))
    assert reuse == 42 and {r.ttl for r in parse(response).answer} == {42}
    response, _ = respond(request(), lookup(ttl=10_000, rrset=A_SET))
    assert parse(response).answer[0].ttl == 300


def test_bogus_is_servfail_and_reused_briefly_upstream_failure_not_at_all():
    response, reuse = respond(request(do=True), lookup("SERVFAIL", Status.BOGUS, ttl=60))
    message = parse(response)
    assert message.rcode() == dns.rcode.SERVFAIL and not message.answer and reuse == 60
    assert not message.flags & dns.flags.AD
    _, reuse = respond(request(), lookup("SERVFAIL", Status.INDETERMINATE, ttl=0))
    assert reuse == 0


def test_checking_disabled_bogus_data_without_ad():
    bogus = lookup(status=Status.BOGUS, rrset=A_SET, rrsigs=sig("pool-7.ops.cid.", "A"))
    message = parse(respond(request(do=True, cd=True), bogus)[0])
    assert message.rcode() == dns.rcode.NOERROR and message.flags & dns.flags.CD
    assert not message.flags & dns.flags.AD and len(message.answer) == 2


def test_negative_answers_carry_soa_and_with_do_the_nsec_proof():
    authority = (SOA_SET, sig("ops.cid.", "SOA", 3600), NSEC_SET, sig("gw.ops.cid.", "NSEC"),
                 rrset("ops.cid.", 3600, "NS", "ns1.ops.cid."))
    nx = lookup("NXDOMAIN", ttl=300, authority=authority)
    plain = parse(respond(request(), nx)[0])
    assert plain.rcode() == dns.rcode.NXDOMAIN and [r.rdtype for r in plain.authority] == [dns.rdatatype.SOA]
    assert plain.authority[0].ttl == 300
    signed = parse(respond(request(do=True), nx)[0])
    assert sorted((r.rdtype, r.covers) for r in signed.authority) == [
        (dns.rdatatype.SOA, 0), (dns.rdatatype.RRSIG, dns.rdatatype.SOA),
        (dns.rdatatype.RRSIG, dns.rdatatype.NSEC), (dns.rdatatype.NSEC, 0)]
    assert signed.flags & dns.flags.AD


def test_denial_from_cached_nsec_gets_the_zone_soa():
    denial = lookup("NXDOMAIN", authority=(NSEC_SET, sig("gw.ops.cid.", "NSEC")))
    assert soa_wanted(denial) == N("ops.cid.")
    assert soa_wanted(lookup("NXDOMAIN", authority=(SOA_SET,))) is None
    assert soa_wanted(lookup(rrset=A_SET)) is None
    soa = Lookup(N("ops.cid."), dns.rdatatype.SOA, "NOERROR", Status.SECURE, "", 3000, SOA_SET,
                 sig("ops.cid.", "SOA", 3600))
    message = parse(respond(request(do=True), denial, soa)[0])
    soa_rr = message.find_rrset(message.authority, N("ops.cid."), dns.rdataclass.IN, dns.rdatatype.SOA)
    assert soa_rr.ttl == 300  # RFC 2308 §5: min(SOA TTL, MINIMUM)
    assert len(message.authority) == 4


def test_cname_chain_with_its_signatures():
    cname = rrset("www.ops.cid.", 300, "CNAME", "pool-7.ops.cid.")
    chained = lookup(rrset=A_SET, rrsigs=sig("pool-7.ops.cid.", "A"), chain=(cname,),
                     chain_rrsigs=(sig("www.ops.cid.", "CNAME"),))
    message = parse(respond(request(name="www.ops.cid.", do=True), chained)[0])
    assert [(r.name.to_text(), r.rdtype) for r in message.answer] == [
        ("www.ops.cid.", dns.rdatatype.CNAME), ("www.ops.cid.", dns.rdatatype.RRSIG),
        ("pool-7.ops.cid.", dns.rdatatype.A), ("pool-7.ops.cid.", dns.rdatatype.RRSIG)]
    dangling = lookup("NXDOMAIN", chain=(cname,), authority=(SOA_SET,))
    message = parse(respond(request(name="www.ops.cid."), dangling)[0])
    assert message.rcode() == dns.rcode.NXDOMAIN and len(message.answer) == 1 and message.authority


def test_wildcard_answer_brings_its_nsec_with_do():
    wild = lookup(rrset=A_SET, rrsigs=sig("pool-7.ops.cid.", "A"),
                  authority=(NSEC_SET, sig("gw.ops.cid.", "NSEC")))
    assert len(parse(respond(request(do=True), wild)[0]).authority) == 2
    assert not parse(respond(request(), wild)[0]).authority


def test_large_answer_truncated_over_udp_whole_over_tcp():
    big = rrset("pool-7.ops.cid.", 300, "TXT", *(f'"{i:02d}{"x" * 200}"' for i in range(12)))
    found = Lookup(N("pool-7.ops.cid."), dns.rdatatype.TXT, "NOERROR", Status.SECURE, "", 300, big)
    for kw in ({"edns": False}, {"payload": 1232}):
        response = respond(request(rdtype="TXT", **kw), found)[0]
        message = parse(response)
        assert message.flags & dns.flags.TC and not message.answer and len(response) <= 1232
    message = parse(respond(request(tcp=True, rdtype="TXT"), found)[0])
    assert not message.flags & dns.flags.TC and len(message.answer[0]) == 12


def test_question_case_is_echoed_and_names_compressed():
    req = request(name="POOL-7.Ops.CID.")
    response = respond(req, lookup(rrset=A_SET))[0]
    assert parse(response).question[0].name.labels == (b"POOL-7", b"Ops", b"CID", b"")
    assert len(response) < 12 + 2 * 20 + 20  # the owner is a pointer to the question


def _ede(message: dns.message.Message) -> list[tuple[int, str | None]]:
    return [(o.code, o.text) for o in message.options if o.otype == dns.edns.OptionType.EDE]


def test_servfail_says_why_in_an_extended_dns_error():
    bogus = lookup("SERVFAIL", Status.BOGUS, ttl=60)
    assert _ede(parse(respond(request(), bogus)[0])) == [(6, "test")]  # DNSSEC Bogus
    failed = Lookup(N("pool-7.ops.cid."), 1, "SERVFAIL", Status.INDETERMINATE, "no usable response " * 40, 0)
    message = parse(respond(request(payload=512), failed)[0])
    [(code, text)] = _ede(message)
    assert code == 0 and text.startswith("no usable response") and len(text) == 300
    assert not parse(respond(request(edns=False), bogus)[0]).options  # no OPT, no EDE


def test_stale_answers_are_marked():
    stale = lookup(ttl=30, rrset=A_SET, stale=True)
    message = parse(respond(request(), stale)[0])
    assert _ede(message) == [(3, None)] and message.answer[0].ttl == 30
    assert _ede(parse(respond(request(), lookup("NXDOMAIN", stale=True, authority=(SOA_SET,)))[0])) == [(19, None)]
    assert not _ede(parse(respond(request(), lookup(rrset=A_SET))[0]))
