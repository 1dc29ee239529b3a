"""``cid serve resolver`` answers what Unbound answers.

One signed hierarchy on 127.0.41.x port 53 (so both resolvers follow referrals to glue on the
standard port), served by our authoritative servers in a background thread; Unbound (stub zone
to the apex, same DS trust anchor) and our front end (a ``cid serve resolver`` subprocess, as a
user runs it) are asked the same queries, and their responses are compared: rcode, AD, TC,
answer RRsets (names, types, rdata; TTL no more than the zone's), and which negative proofs
(SOA, NSEC, RRSIG) come back.

    cid.            signed (trust anchor)       127.0.41.1
    ├─ ops.cid.     signed, DS in cid.           127.0.41.2
    ├─ plain.cid.   unsigned (NSEC proves no DS) 127.0.41.3
    └─ bad.cid.     signed, one RRSIG corrupted  127.0.41.4
"""

from __future__ import annotations

import socket
import time

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.zone
import pytest

import resolver  # noqa: F401  (CAPS/LOAD)
from resolver.auth.keys import generate_key
from resolver.auth.signer import ds_records, sign_zone
from resolver.auth.store import ZoneStore
from support import demo_proc, peer_servers
from support import federation as F
from support.net import free_port

PREFIX = "127.0.41."
UNBOUND_ADDR, OURS_ADDR, FORWARDER_ADDR = "127.0.41.100", "127.0.41.101", "127.0.41.102"
N = dns.name.from_text

ZONES = {
    "cid.": (1, True, """
@ 3600 SOA ns1 hostmaster 1 7200 900 1209600 300
@ 3600 NS ns1
ns1 3600 A {p}1
ops 3600 NS ns1.ops
ns1.ops 3600 A {p}2
plain 3600 NS ns1.plain
ns1.plain 3600 A {p}3
bad 3600 NS ns1.bad
ns1.bad 3600 A {p}4
"""),
    "ops.cid.": (2, True, """
@ 3600 SOA ns1 hostmaster 1 7200 900 1209600 300
@ 3600 NS ns1
ns1 3600 A {p}2
pool-7 300 SVCB 1 . alpn=h2 port=8443
pool-7 300 SVCB 2 gw alpn=h3
pool-7 300 A 192.0.2.7
pool-7 300 AAAA 2001:db8::7
pool-7 3600 CAPS accel_kind=gpu accel_count=8 accel_vendor=nvidia
pool-7 15 LOAD accel_free=3 util=0.5
gw 300 A 192.0.2.9
www 300 CNAME pool-7
www2 300 CNAME www
ext 300 CNAME pool-1.plain.cid.
dangling 300 CNAME nothing
*.wild 300 A 192.0.2.77
big 300 TXT "{filler}00"
"""),
    "plain.cid.": (3, False, """
@ 3600 SOA ns1 hostmaster 1 7200 900 1209600 300
@ 3600 NS ns1
ns1 3600 A {p}3
pool-1 300 SVCB 1 . alpn=h2
pool-1 300 A 192.0.2.21
pool-1 3600 CAPS accel_kind=cpu
"""),
    "bad.cid.": (4, True, """
@ 3600 SOA ns1 hostmaster 1 7200 900 1209600 300
@ 3600 NS ns1
ns1 3600 A {p}4
pool-8 300 A 192.0.2.8
pool-9 300 A 192.0.2.9
pool-9 3600 CAPS accel_kind=gpu
"""),
}


def _zone_text(name: str) -> str:
    text = ZONES[name][2].format(p=PREFIX, filler="x" * 200)
    if name == "ops.cid.":
        # A TXT RRset of ~2.5 KB: too big for 512 or 1232 octets, fine over TCP.
        text += "".join(f'big 300 TXT "{i:02d}{"x" * 200}"\n' for i in range(1, 12))
    return text


def build_hierarchy(now: float) -> tuple[dict[str, dns.zone.Zone], str]:
    """Sign children first so each parent carries its child's DS; corrupt one signature."""
    zones: dict[str, dns.zone.Zone] = {}
    ds: dict[str, list] = {}
    for name in sorted(ZONES, key=lambda n: -len(N(n))):
        text = _zone_text(name)
        for child, rdatas in ds.items():
            if N(child).parent() == N(name):
                text += "".join(f"{N(child).relativize(N(name))} 3600 DS {rd.to_text()}\n" for rd in rdatas)
        zone = dns.zone.from_text(text, origin=N(name), relativize=False)
        if ZONES[name][1]:
            ksk, zsk = generate_key(name, flags=257), generate_key(name, flags=256)
            sign_zone(zone, [ksk, zsk], now=now)
            ds[name] = ds_records(name, [ksk])
        zones[name] = zone
    _corrupt_signature(zones["bad.cid."], N("pool-9.bad.cid."), dns.rdatatype.A)
    anchor = "".join(f"cid. 3600 IN DS {rd.to_text()}\n" for rd in ds["cid."])
    return zones, anchor


def _corrupt_signature(zone: dns.zone.Zone, owner: dns.name.Name, covered: int) -> None:
    sigs = zone.find_node(owner).find_rdataset(1, dns.rdatatype.RRSIG, covered)
    bad = []
    for rd in sigs:
        signature = bytearray(rd.signature)
        signature[0] ^= 0xFF
        bad.append(rd.replace(signature=bytes(signature)))
    ttl = sigs.ttl
    sigs.clear()
    for rd in bad:
        sigs.add(rd, ttl)


def stores(zones: dict[str, dns.zone.Zone]) -> dict[str, ZoneStore]:
    """One AuthServer per zone, each on its own 127.0.41.x address."""
    return {f"{PREFIX}{ZONES[name][0]}": ZoneStore([zone]) for name, zone in zones.items()}


@pytest.fixture(scope="module")
def resolvers(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("resolver-vs-unbound")
    zones, anchor_text = build_hierarchy(time.time())
    anchor = base / "trust-anchor.ds"
    anchor.write_text(anchor_text)
    unbound_port, ours_port = free_port(UNBOUND_ADDR), free_port(OURS_ADDR)
    forwarder_port = free_port(FORWARDER_ADDR)
    ours_args = ["--hint", f"cid.={PREFIX}1", "--trust-anchor", str(anchor), "--port", "53", "--timeout", "1"]
    with F.stores_serving_in_thread(stores(zones), port=53), \
            peer_servers.unbound(base / "unbound", UNBOUND_ADDR, unbound_port, trust_anchor=anchor,
                                 stubs={"cid.": [f"{PREFIX}1@53"]}), \
            demo_proc.serving_resolver(ours_args, OURS_ADDR, ours_port,
                                       base / "cid-serve-resolver.log") as proc, \
            peer_servers.unbound(base / "forwarder", FORWARDER_ADDR, forwarder_port, trust_anchor=anchor,
                                 forwards={"cid.": [f"{OURS_ADDR}@{ours_port}"]}):
        # The forwarder: a validating Unbound fed only by our front end, checking every answer
        # itself, so our responses must carry the RRSIGs and NSEC proofs a validator needs.
        yield {"unbound": (UNBOUND_ADDR, unbound_port), "ours": (OURS_ADDR, ours_port),
               "forwarder": (FORWARDER_ADDR, forwarder_port)}, zones, proc


def _query(name: str, rdtype: str, *, do: bool, cd: bool, ad: bool, edns: bool = True,
           rd: bool = True) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, use_edns=0 if edns or do else False, want_dnssec=do)
    if cd:
        query.flags |= dns.flags.CD
    if ad:
        query.flags |= dns.flags.AD
    if not rd:
        query.flags &= ~dns.flags.RD
    return query


def ask(server: tuple[str, int], query: dns.message.Message, tcp: bool = False) -> dns.message.Message:
    query.id = dns.message.make_query("x.", "A").id  # fresh ID, same question
    if tcp:
        return dns.query.tcp(query, server[0], port=server[1], timeout=15)
    return dns.query.udp(query, server[0], port=server[1], timeout=15, ignore_trailing=False)


def _original_ttl(zones, rrset) -> int | None:
    """The TTL the zone gives this RRset (its wildcard source for an expansion), if any."""
    zone = max((z for n, z in zones.items() if rrset.name.is_subdomain(N(n))), key=lambda z: len(z.origin))
    node = zone.get_node(rrset.name) or zone.get_node(N("*." + rrset.name.parent().to_text()))
    found = node.get_rdataset(1, rrset.rdtype, rrset.covers) if node is not None else None
    return found.ttl if found is not None else None


def _rrsets(section) -> set:
    """Name (case-folded), type, covered type and the set of rdata wire forms of each RRset."""
    return {(r.name.canonicalize(), r.rdtype, r.covers,
             frozenset(rd.to_digestable() for rd in r)) for r in section}


def _proof_kinds(section) -> set:
    return {(r.name.canonicalize(), r.rdtype, r.covers) for r in section}


# name, type, expected rcode (a sanity anchor for the comparison: both could be wrong together)
CASES = [
    ("pool-7.ops.cid.", "TYPE65380", "NOERROR"),     # secure CAPS
    ("pool-7.ops.cid.", "SVCB", "NOERROR"),          # secure SVCB, two records
    ("pool-7.ops.cid.", "A", "NOERROR"),
    ("pool-7.ops.cid.", "AAAA", "NOERROR"),
    ("pool-7.ops.cid.", "TYPE65381", "NOERROR"),     # LOAD, short TTL
    ("POOL-7.Ops.CID.", "A", "NOERROR"),             # 0x20 case
    ("nope.ops.cid.", "SVCB", "NXDOMAIN"),           # NSEC-proven name error
    ("pool-7.ops.cid.", "TXT", "NOERROR"),           # NODATA
    ("www.ops.cid.", "A", "NOERROR"),                # CNAME in a signed zone
    ("www2.ops.cid.", "SVCB", "NOERROR"),            # two CNAMEs
    ("ext.ops.cid.", "A", "NOERROR"),                # CNAME from secure into insecure
    ("dangling.ops.cid.", "A", "NXDOMAIN"),          # CNAME to a name that does not exist
    ("www.ops.cid.", "CNAME", "NOERROR"),            # the alias itself
    ("anything.wild.ops.cid.", "A", "NOERROR"),      # wildcard expansion, proven
    ("ops.cid.", "DNSKEY", "NOERROR"),
    ("cid.", "DNSKEY", "NOERROR"),                   # the trust anchor's own keys
    ("cid.", "NS", "NOERROR"),
    ("ops.cid.", "SOA", "NOERROR"),
    ("ns1.ops.cid.", "A", "NOERROR"),
    ("plain.cid.", "NS", "NOERROR"),                 # apex of the unsigned child
    ("gw.ops.cid.", "NSEC", "NOERROR"),
    ("ops.cid.", "DS", "NOERROR"),
    ("plain.cid.", "DS", "NOERROR"),                 # no DS: signed proof of insecurity
    ("pool-1.plain.cid.", "A", "NOERROR"),           # insecure
    ("pool-1.plain.cid.", "TYPE65380", "NOERROR"),
    ("nope.plain.cid.", "A", "NXDOMAIN"),            # insecure NXDOMAIN
    ("pool-1.plain.cid.", "TXT", "NOERROR"),         # insecure NODATA
    ("pool-8.bad.cid.", "A", "NOERROR"),             # good data in the zone with a bad signature
    ("pool-9.bad.cid.", "A", "SERVFAIL"),            # bogus
    ("pool-9.bad.cid.", "TYPE65380", "NOERROR"),     # other RRsets at that name are fine
]
FLAGS = [  # (DO, CD, AD)
    (False, False, False), (False, False, True), (True, False, False), (True, True, False),
    (False, True, False),
]


def _compare(resolvers, query: dns.message.Message, expected: str | None, tcp: bool = False):
    servers, zones, _ = resolvers
    theirs = ask(servers["unbound"], query, tcp)
    ours = ask(servers["ours"], query, tcp)
    where = f"{query.question[0]} flags={dns.flags.to_text(query.flags)} do={query.ednsflags != 0}"
    detail = f"{where}\n--- unbound\n{theirs}\n--- ours\n{ours}"
    assert ours.rcode() == theirs.rcode(), detail
    if expected is not None:
        assert dns.rcode.to_text(ours.rcode()) == expected, detail
    for flag in (dns.flags.AD, dns.flags.TC, dns.flags.RA, dns.flags.CD, dns.flags.RD):
        assert bool(ours.flags & flag) == bool(theirs.flags & flag), f"{dns.flags.to_text(flag)}: {detail}"
    assert _rrsets(ours.answer) == _rrsets(theirs.answer), detail
    assert _proof_kinds(ours.authority) == _proof_kinds(theirs.authority), detail
    assert (ours.edns, ours.ednsflags & dns.flags.DO) == (theirs.edns, theirs.ednsflags & dns.flags.DO), detail
    assert ours.question[0].name.labels == query.question[0].name.labels  # case echoed
    for rrset in ours.answer + ours.authority:
        original = _original_ttl(zones, rrset)
        if rrset.rdtype != dns.rdatatype.SOA and original is not None:
            assert rrset.ttl <= original, detail
    return ours, theirs


@pytest.mark.parametrize("do,cd,ad", FLAGS, ids=lambda v: str(int(v)))
@pytest.mark.parametrize("name,rdtype,rcode", CASES, ids=lambda v: str(v))
def test_same_answers_as_unbound(resolvers, name, rdtype, rcode, do, cd, ad) -> None:
    if rcode == "SERVFAIL" and cd:
        rcode = "NOERROR"  # checking disabled: the bogus data itself, AD clear
    _compare(resolvers, _query(name, rdtype, do=do, cd=cd, ad=ad), rcode)


def test_bogus_is_servfail_and_cd_returns_the_data_without_ad(resolvers) -> None:
    plain, _ = _compare(resolvers, _query("pool-9.bad.cid.", "A", do=True, cd=False, ad=True), "SERVFAIL")
    assert not plain.answer
    unchecked, _ = _compare(resolvers, _query("pool-9.bad.cid.", "A", do=True, cd=True, ad=True), "NOERROR")
    assert [rd.address for rd in unchecked.answer[0]] == ["192.0.2.9"]
    assert not unchecked.flags & dns.flags.AD


def test_large_answer_truncates_over_udp_and_comes_whole_over_tcp(resolvers) -> None:
    for edns in (False, True):
        ours, _ = _compare(resolvers, _query("big.ops.cid.", "TXT", do=False, cd=False, ad=False, edns=edns), None)
        assert ours.flags & dns.flags.TC
    whole, _ = _compare(resolvers, _query("big.ops.cid.", "TXT", do=True, cd=False, ad=False), "NOERROR", tcp=True)
    assert len(whole.answer[0]) == 12 and whole.flags & dns.flags.AD


def test_no_edns_no_opt_and_no_recursion_refused(resolvers) -> None:
    ours, _ = _compare(resolvers, _query("pool-7.ops.cid.", "A", do=False, cd=False, ad=False, edns=False),
                       "NOERROR")
    assert ours.edns == -1
    _compare(resolvers, _query("pool-7.ops.cid.", "A", do=False, cd=False, ad=False, rd=False), "REFUSED")


def test_tcp_answers_match(resolvers) -> None:
    for name, rdtype, rcode in CASES[:8]:
        _compare(resolvers, _query(name, rdtype, do=True, cd=False, ad=False), rcode, tcp=True)


def test_front_end_survived(resolvers) -> None:
    _, _, proc = resolvers
    assert proc.poll() is None  # no crash after everything above


def _raw(server: tuple[str, int], wire: bytes) -> dns.message.Message:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)
        sock.sendto(wire, server)
        return dns.message.from_wire(sock.recv(65535))


@pytest.mark.parametrize("case", ["badvers", "no-question", "axfr", "unknown-option", "notify"])
def test_protocol_errors_match_unbound(resolvers, case) -> None:
    servers, _, _ = resolvers
    if case == "badvers":
        wire = dns.message.make_query("pool-7.ops.cid.", "A", use_edns=1).to_wire()
    elif case == "no-question":
        wire = bytes.fromhex("abcd01000000000000000000")
    elif case == "axfr":
        wire = dns.message.make_query("ops.cid.", "AXFR").to_wire()
    elif case == "notify":
        notify = dns.message.make_query("ops.cid.", "SOA")
        notify.set_opcode(dns.opcode.NOTIFY)
        wire = notify.to_wire()
    else:
        wire = dns.message.make_query("pool-7.ops.cid.", "A", use_edns=0,
                                      options=[dns.edns.GenericOption(65001, b"hi")]).to_wire()
    theirs, ours = _raw(servers["unbound"], wire), _raw(servers["ours"], wire)
    assert ours.rcode() == theirs.rcode(), f"--- unbound\n{theirs}\n--- ours\n{ours}"
    assert ours.edns == theirs.edns and ours.id == theirs.id
    assert _rrsets(ours.answer) == _rrsets(theirs.answer)


@pytest.mark.parametrize("name,rdtype,rcode", CASES, ids=lambda v: str(v))
def test_unbound_forwarding_to_us_validates_what_we_pass_on(resolvers, name, rdtype, rcode) -> None:
    """Unbound validating on its own, fed only by our front end, reaches the same verdicts as
    Unbound iterating the zones itself: our answers carry what a validator needs."""
    servers, _, _ = resolvers
    query = _query(name, rdtype, do=True, cd=False, ad=False)
    direct = ask(servers["unbound"], query)
    forwarded = ask(servers["forwarder"], query)
    detail = f"--- unbound\n{direct}\n--- unbound forwarding to us\n{forwarded}"
    assert forwarded.rcode() == direct.rcode() and dns.rcode.to_text(direct.rcode()) == rcode, detail
    assert bool(forwarded.flags & dns.flags.AD) == bool(direct.flags & dns.flags.AD), detail
    assert _rrsets(forwarded.answer) == _rrsets(direct.answer), detail
