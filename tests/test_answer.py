"""resolver.auth.answer with scripted query bytes: no sockets."""

from __future__ import annotations

import random
import struct
import time

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsigkeyring
import dns.zone
import pytest

from resolver.auth.answer import answer_query
from resolver.auth.store import ZoneStore
from support import zones

N = dns.name.from_text
T = dns.rdatatype


@pytest.fixture(scope="module")
def signed() -> zones.SignedZones:
    return zones.build()


@pytest.fixture(scope="module")
def store(signed) -> ZoneStore:
    return ZoneStore([signed.parent])  # parent only: sub.ex.cid. is a delegation


@pytest.fixture(scope="module")
def both(signed) -> ZoneStore:
    return ZoneStore([signed.parent, signed.child])


def ask(store: ZoneStore, name: str, rdtype: str | int = "A", *, do: bool = True,
        tcp: bool = False, payload: int = 1232, use_edns: int | bool = 0,
        flags: int = dns.flags.RD) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, use_edns=use_edns, want_dnssec=do,
                                   payload=payload)
    query.flags = flags
    wire = answer_query(store, query.to_wire(), tcp=tcp)
    assert wire is not None
    response = dns.message.from_wire(wire)
    assert response.id == query.id
    return response


def raw(store: ZoneStore, wire: bytes, tcp: bool = False) -> dns.message.Message | None:
    out = answer_query(store, wire, tcp=tcp)
    return None if out is None else dns.message.from_wire(out)


def rrset(section, name: str, rdtype: int, covers: int = 0) -> dns.rrset.RRset | None:
    for r in section:
        if r.name == N(name) and r.rdtype == rdtype and r.covers == covers:
            return r
    return None


def types(section) -> list[tuple[str, str]]:
    return [(r.name.to_text(), T.to_text(r.covers if r.rdtype == T.RRSIG else r.rdtype)
             + ("/sig" if r.rdtype == T.RRSIG else "")) for r in section]


def covers(nsec: dns.rrset.RRset, name: dns.name.Name) -> bool:
    """NSEC owner < name < next in canonical order (the last NSEC wraps to the apex)."""
    owner, nxt = nsec.name, nsec[0].next
    if owner < nxt:
        return owner < name < nxt
    return name > owner or name < nxt


def validate(response: dns.message.Message, dnskey: dns.rrset.RRset, zone: str = "ex.cid.") -> None:
    """Every RRset with an RRSIG in the response verifies under the zone key."""
    keys = {N(zone): dnskey}
    checked = 0
    for section in (response.answer, response.authority, response.additional):
        for sig in section:
            if sig.rdtype != T.RRSIG:
                continue
            data = rrset(section, sig.name.to_text(), sig.covers)
            assert data is not None, f"RRSIG without data at {sig.name}"
            dns.dnssec.validate(data, sig, keys, now=time.time())
            checked += 1
    assert checked


def apex_dnskey(signed) -> dns.rrset.RRset:
    node = signed.parent.find_rrset(N("ex.cid."), T.DNSKEY)
    return node


# --- positive answers -----------------------------------------------------------------

def test_positive_answer_is_authoritative_and_signed(store, signed):
    r = ask(store, "pool-7.ex.cid.", "CAPS")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA and not r.flags & dns.flags.AD and not r.flags & dns.flags.RA
    assert types(r.answer) == [("pool-7.ex.cid.", "CAPS"), ("pool-7.ex.cid.", "CAPS/sig")]
    assert r.answer[0][0].mapping["accel_count"] == 8
    assert r.ednsflags & dns.flags.DO and r.payload == 1232
    validate(r, apex_dnskey(signed))


def test_no_rrsig_without_do(store):
    r = ask(store, "pool-7.ex.cid.", "SVCB", do=False)
    assert [x.rdtype for x in r.answer] == [T.SVCB]
    assert all(x.rdtype != T.RRSIG for x in r.additional)
    assert not r.ednsflags & dns.flags.DO


def test_ad_never_set_and_rd_cd_copied(store):
    r = ask(store, "pool-7.ex.cid.", "A", flags=dns.flags.RD | dns.flags.CD | dns.flags.AD)
    assert r.flags & dns.flags.RD and r.flags & dns.flags.CD
    assert not r.flags & (dns.flags.AD | dns.flags.RA)
    r = ask(store, "pool-7.ex.cid.", "A", flags=0)
    assert not r.flags & (dns.flags.RD | dns.flags.CD)


def test_question_case_is_echoed(store):
    r = ask(store, "PoOl-7.Ex.CiD.", "A")
    assert r.question[0].name.to_text() == "PoOl-7.Ex.CiD."
    assert r.answer[0].rdtype == T.A


def test_svcb_additional_addresses(store, signed):
    r = ask(store, "pool-7.ex.cid.", "SVCB")  # TargetName "." = the owner's addresses
    assert ("pool-7.ex.cid.", "A") in types(r.additional)
    assert ("pool-7.ex.cid.", "AAAA") in types(r.additional)
    validate(r, apex_dnskey(signed))
    r = ask(store, "svc.ex.cid.", "SVCB", do=False)
    assert types(r.additional) == [("pool-7.ex.cid.", "A"), ("pool-7.ex.cid.", "AAAA")]


def test_apex_ns_additional_only_in_zone(store):
    r = ask(store, "ex.cid.", "NS", do=False)
    assert {rd.target.to_text() for rd in r.answer[0]} == {"ns1.ex.cid.", "ns2.other.net."}
    assert types(r.additional) == [("ns1.ex.cid.", "A"), ("ns1.ex.cid.", "AAAA")]


def test_apex_dnskey(store, signed):
    r = ask(store, "ex.cid.", "DNSKEY")
    assert types(r.answer) == [("ex.cid.", "DNSKEY"), ("ex.cid.", "DNSKEY/sig")]
    assert r.flags & dns.flags.AA
    validate(r, r.answer[0])


def test_any_is_answered_with_one_rrset(store):
    r = ask(store, "pool-7.ex.cid.", "ANY")
    data = [x for x in r.answer if x.rdtype != T.RRSIG]
    assert len(data) == 1
    assert len([x for x in r.answer if x.rdtype == T.RRSIG]) == 1


def test_rrsig_query_returns_signatures(store):
    r = ask(store, "pool-7.ex.cid.", "RRSIG")
    assert r.answer and all(x.rdtype == T.RRSIG for x in r.answer)
    assert {x.covers for x in r.answer} >= {T.A, T.AAAA, T.SVCB, 65380, 65381, T.NSEC}


# --- CNAME ------------------------------------------------------------------------------

def test_cname_chain_followed_in_zone(store, signed):
    r = ask(store, "chain.ex.cid.", "A")
    assert types(r.answer) == [
        ("chain.ex.cid.", "CNAME"), ("chain.ex.cid.", "CNAME/sig"),
        ("alias.ex.cid.", "CNAME"), ("alias.ex.cid.", "CNAME/sig"),
        ("pool-7.ex.cid.", "A"), ("pool-7.ex.cid.", "A/sig"),
    ]
    assert r.flags & dns.flags.AA
    validate(r, apex_dnskey(signed))


def test_cname_query_returns_the_cname_only(store):
    r = ask(store, "alias.ex.cid.", "CNAME", do=False)
    assert types(r.answer) == [("alias.ex.cid.", "CNAME")]


def test_cname_out_of_zone_stops(store):
    r = ask(store, "outside.ex.cid.", "A", do=False)
    assert r.rcode() == dns.rcode.NOERROR
    assert types(r.answer) == [("outside.ex.cid.", "CNAME")]
    assert not r.authority


def test_cname_to_missing_name_is_nxdomain(store):
    r = ask(store, "deadend.ex.cid.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN  # RFC 6604: the rcode of the last name
    assert types(r.answer)[0] == ("deadend.ex.cid.", "CNAME")
    nsecs = [x for x in r.authority if x.rdtype == T.NSEC]
    assert any(covers(n, N("nothere.ex.cid.")) for n in nsecs)


def test_cname_loop_is_bounded(store):
    r = ask(store, "loop1.ex.cid.", "A", do=False)
    assert types(r.answer) == [("loop1.ex.cid.", "CNAME"), ("loop2.ex.cid.", "CNAME")]


# --- negative answers -----------------------------------------------------------------

def test_nxdomain_with_soa_and_nsec_proofs(store, signed):
    r = ask(store, "nope.ex.cid.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and r.flags & dns.flags.AA and not r.answer
    soa = rrset(r.authority, "ex.cid.", T.SOA)
    assert soa is not None and soa.ttl == 300  # min(SOA TTL 3600, MINIMUM 300)
    nsecs = [x for x in r.authority if x.rdtype == T.NSEC]
    assert any(covers(n, N("nope.ex.cid.")) for n in nsecs)
    assert any(covers(n, N("*.ex.cid.")) for n in nsecs)  # no wildcard at the encloser
    assert len({n.name for n in nsecs}) == len(nsecs)  # no duplicate proofs
    validate(r, apex_dnskey(signed))


def test_nxdomain_without_do_has_soa_only(store):
    r = ask(store, "nope.ex.cid.", "A", do=False)
    assert types(r.authority) == [("ex.cid.", "SOA")]


def test_nxdomain_below_existing_name_uses_its_wildcard(store):
    r = ask(store, "x.y.pool-7.ex.cid.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN
    nsecs = [x for x in r.authority if x.rdtype == T.NSEC]
    assert any(covers(n, N("*.pool-7.ex.cid.")) for n in nsecs)


def test_nodata_with_nsec_of_the_name(store, signed):
    r = ask(store, "pool-7.ex.cid.", "TXT")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and r.flags & dns.flags.AA
    nsec = rrset(r.authority, "pool-7.ex.cid.", T.NSEC)
    assert nsec is not None
    assert not any(t == T.TXT for w in nsec[0].windows for t in _bitmap_types(w))
    validate(r, apex_dnskey(signed))


def test_empty_non_terminal_is_nodata(store):
    r = ask(store, "b.c.ex.cid.", "A")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    nsecs = [x for x in r.authority if x.rdtype == T.NSEC]
    assert len(nsecs) == 1 and covers(nsecs[0], N("b.c.ex.cid."))
    assert nsecs[0][0].next.is_subdomain(N("b.c.ex.cid."))  # proves the name is an ENT


def _bitmap_types(window):
    number, bitmap = window
    return [number * 256 + i * 8 + b for i, byte in enumerate(bitmap) for b in range(8)
            if byte & (0x80 >> b)]


# --- wildcards ---------------------------------------------------------------------------

def test_wildcard_synthesis(store, signed):
    r = ask(store, "anything.w.ex.cid.", "TXT")
    assert r.flags & dns.flags.AA
    assert types(r.answer) == [("anything.w.ex.cid.", "TXT"), ("anything.w.ex.cid.", "TXT/sig")]
    assert r.answer[1][0].labels == 3  # the signature is of *.w.ex.cid.
    nsecs = [x for x in r.authority if x.rdtype == T.NSEC]
    assert len(nsecs) == 1 and covers(nsecs[0], N("anything.w.ex.cid."))
    validate(r, apex_dnskey(signed))


def test_wildcard_nodata(store):
    r = ask(store, "anything.w.ex.cid.", "A")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    nsecs = {x.name.to_text(): x for x in r.authority if x.rdtype == T.NSEC}
    assert "*.w.ex.cid." in nsecs
    assert any(covers(n, N("anything.w.ex.cid.")) for n in nsecs.values())


def test_wildcard_cname_is_followed(store):
    r = ask(store, "q.wc.ex.cid.", "A", do=False)
    assert types(r.answer) == [("q.wc.ex.cid.", "CNAME"), ("pool-7.ex.cid.", "A")]


# --- delegations -------------------------------------------------------------------------

def test_referral_to_signed_child(store, signed):
    r = ask(store, "node-1.sub.ex.cid.", "A")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    assert not r.flags & dns.flags.AA
    assert types(r.authority) == [("sub.ex.cid.", "NS"), ("sub.ex.cid.", "DS"),
                                  ("sub.ex.cid.", "DS/sig")]
    assert types(r.additional) == [("ns.sub.ex.cid.", "A")]  # glue, unsigned
    validate(r, apex_dnskey(signed))


def test_referral_without_do_has_no_ds(store):
    r = ask(store, "sub.ex.cid.", "A", do=False)
    assert types(r.authority) == [("sub.ex.cid.", "NS")]


def test_referral_to_unsigned_child_proves_no_ds(store):
    r = ask(store, "x.unsigned.ex.cid.", "A")
    assert not r.flags & dns.flags.AA
    nsec = rrset(r.authority, "unsigned.ex.cid.", T.NSEC)
    assert nsec is not None
    bitmap = {t for w in nsec[0].windows for t in _bitmap_types(w)}
    assert T.NS in bitmap and T.DS not in bitmap and T.SOA not in bitmap
    # Only in-bailiwick glue; ns.elsewhere.net. is not ours to vouch for.
    assert types(r.additional) == [("ns.unsigned.ex.cid.", "A")]


def test_ds_answered_from_parent_side(store, signed):
    r = ask(store, "sub.ex.cid.", "DS")
    assert r.flags & dns.flags.AA
    assert types(r.answer) == [("sub.ex.cid.", "DS"), ("sub.ex.cid.", "DS/sig")]
    validate(r, apex_dnskey(signed))
    r = ask(store, "unsigned.ex.cid.", "DS")
    assert not r.answer and r.flags & dns.flags.AA
    assert rrset(r.authority, "unsigned.ex.cid.", T.NSEC) is not None


def test_ds_prefers_parent_when_both_served(both, signed):
    r = ask(both, "sub.ex.cid.", "DS")
    assert types(r.answer) == [("sub.ex.cid.", "DS"), ("sub.ex.cid.", "DS/sig")]
    assert r.answer[1][0].signer == N("ex.cid.")
    # Other types at the child apex come from the child.
    r = ask(both, "sub.ex.cid.", "SOA")
    assert r.flags & dns.flags.AA and r.answer[0].name == N("sub.ex.cid.")


def test_ds_at_child_apex_without_parent_is_nodata(signed):
    child_only = ZoneStore([signed.child])
    r = ask(child_only, "sub.ex.cid.", "DS")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    assert rrset(r.authority, "sub.ex.cid.", T.SOA) is not None


def test_unsigned_zone_has_no_proofs():
    store = ZoneStore([zones.unsigned_parent()])
    r = ask(store, "nope.ex.cid.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and types(r.authority) == [("ex.cid.", "SOA")]
    r = ask(store, "x.sub.ex.cid.", "A")
    assert types(r.authority) == [("sub.ex.cid.", "NS")]


# --- EDNS, truncation, rcodes ------------------------------------------------------------

def test_no_edns_in_no_edns_out(store):
    r = ask(store, "pool-7.ex.cid.", "A", use_edns=False, do=False)
    assert r.edns == -1 and r.answer


def test_badvers(store):
    r = ask(store, "pool-7.ex.cid.", "A", use_edns=1)
    assert r.rcode() == dns.rcode.BADVERS and r.edns == 0 and not r.answer


def test_truncation_keeps_question_and_opt(store):
    r = ask(store, "big.ex.cid.", "TXT", payload=1232)
    assert r.flags & dns.flags.TC
    assert len(r.question) == 1 and not r.answer and not r.authority and not r.additional
    assert r.edns == 0
    r = ask(store, "big.ex.cid.", "TXT", tcp=True)
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == 40


def test_requested_udp_size_is_honoured(store):
    # All signatures at pool-7 (~800 bytes): fit in 1232, not in 512.
    r = ask(store, "pool-7.ex.cid.", "RRSIG", payload=1232)
    assert not r.flags & dns.flags.TC and len(r.to_wire()) > 512
    for payload in (512, 100):  # below 512 counts as 512 (RFC 6891 §6.2.3)
        r = ask(store, "pool-7.ex.cid.", "RRSIG", payload=payload)
        assert r.flags & dns.flags.TC and not r.answer


def test_additional_that_does_not_fit_is_dropped_without_tc():
    addresses = "\n".join(f"pool A 192.0.2.{i}" for i in range(1, 41))
    zone = dns.zone.from_text(
        "$ORIGIN t.cid.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 127.0.0.1\n"
        f"svc SVCB 1 pool alpn=h2\n{addresses}\n", relativize=False)
    store = ZoneStore([zone])
    r = ask(store, "svc.t.cid.", "SVCB", payload=512, do=False)
    assert not r.flags & dns.flags.TC and r.answer and not r.additional
    r = ask(store, "svc.t.cid.", "SVCB", payload=1232, do=False)
    assert len(r.additional[0]) == 40


def test_huge_requested_payload_is_capped(store):
    r = ask(store, "big.ex.cid.", "TXT", payload=65535)
    assert r.flags & dns.flags.TC  # our limit on UDP is 1232 whatever the client says


def test_no_edns_limits_to_512(store):
    r = ask(store, "big.ex.cid.", "TXT", use_edns=False, do=False)
    assert r.flags & dns.flags.TC and r.edns == -1


def test_refused_outside_served_zones(store):
    r = ask(store, "www.example.org.", "A")
    assert r.rcode() == dns.rcode.REFUSED and not r.flags & dns.flags.AA
    assert len(r.question) == 1 and r.edns == 0


def test_refused_for_other_classes_and_transfers(store):
    q = dns.message.make_query("pool-7.ex.cid.", "A", rdclass="CH")
    assert raw(store, q.to_wire()).rcode() == dns.rcode.REFUSED
    q = dns.message.make_query("ex.cid.", "AXFR")
    assert raw(store, q.to_wire(), tcp=True).rcode() == dns.rcode.REFUSED
    q = dns.message.make_query("ex.cid.", 1000)  # an unknown data type is just NODATA
    assert raw(store, q.to_wire()).rcode() == dns.rcode.NOERROR


def test_notimp_for_other_opcodes(store):
    for opcode in (dns.opcode.NOTIFY, dns.opcode.STATUS, dns.opcode.UPDATE, 3, 15):
        q = dns.message.make_query("ex.cid.", "SOA")
        q.set_opcode(opcode)
        r = raw(store, q.to_wire())
        assert r is not None and r.rcode() == dns.rcode.NOTIMP and r.opcode() == opcode


def test_meta_qtypes(store):
    q = dns.message.make_query("ex.cid.", "OPT")
    assert raw(store, q.to_wire()).rcode() == dns.rcode.FORMERR
    q = dns.message.make_query("ex.cid.", "MAILB")
    assert raw(store, q.to_wire()).rcode() == dns.rcode.NOTIMP


def test_unknown_tsig_key_is_notauth(store):
    q = dns.message.make_query("ex.cid.", "SOA")
    q.use_tsig(dns.tsigkeyring.from_text({"k.": "c2VjcmV0c2VjcmV0c2VjcmV0"}), keyname="k.")
    r = raw(store, q.to_wire())
    assert r.rcode() == dns.rcode.NOTAUTH


def test_responses_are_cached_per_query_bytes_and_invalidated(signed):
    store = ZoneStore([signed.parent])
    q = dns.message.make_query("pool-7.ex.cid.", "A")
    first = answer_query(store, q.to_wire(), tcp=False)
    q.id = (q.id + 1) % 65536
    second = answer_query(store, q.to_wire(), tcp=False)
    assert second[:2] == struct.pack("!H", q.id) and first[2:] == second[2:]
    store.add(signed.child)  # any change empties the cache
    assert not store.responses


# --- hostile input --------------------------------------------------------------------

HEADER = struct.pack("!6H", 0x1234, 0x0100, 1, 0, 0, 0)
QUESTION = b"\x06pool-7\x02ex\x03cid\x00\x00\x01\x00\x01"


def test_short_packets_and_responses_are_dropped(store):
    for wire in (b"", b"\x12", HEADER[:11]):
        assert answer_query(store, wire, tcp=False) is None
    response = struct.pack("!6H", 1, 0x8100, 1, 0, 0, 0) + QUESTION
    assert answer_query(store, response, tcp=False) is None  # QR set: never answer


@pytest.mark.parametrize("wire, what", [
    (struct.pack("!6H", 7, 0x0100, 0, 0, 0, 0), "no question"),
    (struct.pack("!6H", 7, 0x0100, 2, 0, 0, 0) + QUESTION * 2, "two questions"),
    (struct.pack("!6H", 7, 0x0100, 1, 0, 0, 0) + QUESTION[:9], "truncated question"),
    (struct.pack("!6H", 7, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01", "pointer loop"),
    (struct.pack("!6H", 7, 0x0100, 1, 0, 0, 0) + b"\x01a\xc0\x0c\x00\x01\x00\x01", "loop 2"),
    (struct.pack("!6H", 7, 0x0100, 1, 0, 0, 0) + b"\x41" + b"a" * 65 + b"\x00\x00\x01\x00\x01",
     "label too long"),
    (struct.pack("!6H", 7, 0x0100, 1, 0, 0, 0) + QUESTION + b"junk", "trailing bytes"),
    (struct.pack("!6H", 7, 0x0100, 1, 0, 0, 2) + QUESTION
     + (b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00") * 2, "two OPT records"),
    (struct.pack("!6H", 7, 0x0100, 1, 0, 0, 1) + QUESTION
     + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x08\x00\x0a\x00\x10abcd", "OPT option overrun"),
    (struct.pack("!6H", 7, 0x0100, 1, 0, 0, 1) + QUESTION + b"\x00\x00\x29", "cut OPT"),
])
def test_malformed_queries_get_formerr(store, wire, what):
    r = raw(store, wire)
    assert r is not None, what
    assert r.id == 7 and r.rcode() == dns.rcode.FORMERR and r.flags & dns.flags.QR, what


def test_answer_section_in_query_is_formerr(store):
    q = dns.message.make_query("ex.cid.", "SOA")
    q.answer.append(dns.rrset.from_text("ex.cid.", 60, "IN", "A", "192.0.2.1"))
    assert raw(store, q.to_wire()).rcode() == dns.rcode.FORMERR


def test_unknown_class_and_big_edns_option(store):
    wire = struct.pack("!6H", 9, 0x0100, 1, 0, 0, 1) + QUESTION[:-2] + b"\x01\x2c"  # class 300
    wire += b"\x00\x00\x29\xff\xff\x00\x00\x00\x00\x0f\xa4" + b"\x00\x0c\x0f\xa0" + b"\x00" * 4000
    r = raw(store, wire)
    assert r.rcode() == dns.rcode.REFUSED and r.payload == 1232


def test_fuzz_random_and_mutated_queries_never_raise(store):
    rng = random.Random(20261125)
    seeds = [dns.message.make_query(n, t, want_dnssec=rng.random() < 0.5).to_wire()
             for n, t in (("pool-7.ex.cid.", "SVCB"), ("x.w.ex.cid.", "TXT"),
                          ("nope.ex.cid.", "A"), ("sub.ex.cid.", "DS"))]
    answered = 0
    for i in range(4000):
        if i % 2:
            wire = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 80)))
        else:
            buf = bytearray(rng.choice(seeds))
            for _ in range(rng.randrange(1, 6)):
                op = rng.random()
                if op < 0.6:
                    buf[rng.randrange(len(buf))] = rng.getrandbits(8)
                elif op < 0.8 and len(buf) > 12:
                    del buf[rng.randrange(12, len(buf)):]
                else:
                    buf.insert(rng.randrange(len(buf)), rng.getrandbits(8))
            wire = bytes(buf)
        for tcp in (False, True):
            out = answer_query(store, wire, tcp=tcp)
            if out is None:
                continue
            answered += 1
            assert len(out) <= (65535 if tcp else 1232)
            assert out[:2] == wire[:2]
            dns.message.from_wire(out)  # every response we send is well-formed
    assert answered > 1000


def test_fast_parser_agrees_with_dnspython():
    """Whatever resolver.auth.wire.parse_query accepts, dnspython reads the same way."""
    from resolver.auth.wire import parse_query

    rng = random.Random(4035)
    seeds = [dns.message.make_query(n, t, use_edns=e, want_dnssec=d, payload=p).to_wire()
             for n, t, e, d, p in (("Pool-7.ex.cid.", "SVCB", 0, True, 1232),
                                   ("x.cid.", "A", False, False, 512),
                                   (".", "NS", 0, False, 4096))]
    seeds.append(seeds[0][:-11] + b"\x00\x00\x29\x10\x00\x00\x00\x80\x00\x00\x0c"
                 b"\x00\x0a\x00\x08clientck")  # OPT with a client COOKIE
    accepted = 0
    for i in range(3000):
        buf = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(0, 3)):
            buf[rng.randrange(len(buf))] = rng.getrandbits(8)
        wire = bytes(buf)
        fast = parse_query(wire)
        if fast is None or (fast.flags >> 11) & 0xF:
            continue  # other opcodes are answered NOTIMP whatever their body
        accepted += 1
        msg = dns.message.from_wire(wire)  # must not raise
        q = msg.question[0]
        assert fast.qid == msg.id
        assert fast.qname == q.name and fast.qname.labels == q.name.labels
        assert (fast.qtype, fast.qclass) == (q.rdtype, q.rdclass)
        assert fast.edns == msg.edns
        if msg.edns >= 0:
            assert fast.payload == msg.payload
            assert fast.do == bool(msg.ednsflags & dns.flags.DO)
    assert accepted > 500
