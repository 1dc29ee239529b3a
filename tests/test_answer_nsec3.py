"""NSEC3 proof selection of resolver.auth.answer (RFC 5155 §7.2) on BIND-signed zones: no sockets.

Every expected record is found independently of ``resolver.auth.nsec3``: hashes come from
dnspython's ``dns.dnssec.nsec3_hash`` and the matching or covering NSEC3 is looked up in the
zone file BIND wrote. Every RRSIG in every response is validated with the zone's key.
"""

from __future__ import annotations

import random
import time

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest

from resolver.auth import nsec3
from resolver.dnssec.nsec3 import b32
from resolver.auth.answer import answer_query
from resolver.auth.store import ZoneStore
from resolver.auth.zonefile import load_zone
from support import nsec3_zones, zones
from support.nsec3_zones import covers, matches, oracle_hash

N = dns.name.from_text
T = dns.rdatatype


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> nsec3_zones.SignedZone:
    return nsec3_zones.bind_sign(tmp_path_factory.mktemp("n3"), "n3.cid.")


@pytest.fixture(scope="module")
def optout(tmp_path_factory) -> nsec3_zones.SignedZone:
    return nsec3_zones.bind_sign(tmp_path_factory.mktemp("oo"), "oo.cid.", opt_out=True)


class Served:
    """A zone loaded from BIND's file, its store, and its NSEC3 records as BIND wrote them."""

    def __init__(self, signed: nsec3_zones.SignedZone):
        self.signed = signed
        self.zone = load_zone(signed.path)
        self.store = ZoneStore([self.zone])
        self.chain = [dns.rrset.from_rdata_list(name, rds.ttl, list(rds))
                      for name, node in self.zone.nodes.items()
                      for rds in node.rdatasets if rds.rdtype == T.NSEC3]
        assert self.chain

    def name(self, relative: str) -> str:
        return f"{relative}.{self.signed.origin}" if relative != "@" else str(self.signed.origin)

    def matching(self, relative: str) -> str | None:
        found = [r for r in self.chain if matches(r, self.name(relative))]
        return found[0].name.to_text().lower() if found else None

    def covering(self, relative: str) -> str:
        found = [r for r in self.chain if covers(r, self.name(relative))]
        assert len(found) == 1, (relative, found)
        return found[0].name.to_text().lower()

    def ask(self, relative: str, rdtype: str, *, do: bool = True, tcp: bool = False) -> dns.message.Message:
        query = dns.message.make_query(self.name(relative), rdtype, want_dnssec=do, payload=1232)
        wire = answer_query(self.store, query.to_wire(), tcp=tcp)
        assert wire is not None
        response = dns.message.from_wire(wire)
        validate(response, self.signed.dnskey)
        return response


@pytest.fixture(scope="module")
def n3(plain) -> Served:
    return Served(plain)


@pytest.fixture(scope="module")
def oo(optout) -> Served:
    return Served(optout)


def validate(response: dns.message.Message, dnskey: dns.rrset.RRset) -> None:
    """Every RRSIG verifies over its RRset; every NSEC3 comes with its RRSIG."""
    keys = {dnskey.name: dnskey}
    for section in (response.answer, response.authority, response.additional):
        for sig in (r for r in section if r.rdtype == T.RRSIG):
            data = next(r for r in section if r.name == sig.name and r.rdtype == sig.covers)
            # A wildcard expansion is owned by the query name; dnspython checks the labels.
            dns.dnssec.validate(data, sig, keys, now=time.time())
        for record in nsec3_zones.nsec3s(section):
            assert any(r.rdtype == T.RRSIG and r.covers == T.NSEC3 and r.name == record.name
                       for r in section), f"NSEC3 {record.name} without RRSIG"


def proof(response: dns.message.Message) -> set[str]:
    owners = [r.name.to_text().lower() for r in nsec3_zones.nsec3s(response.authority)]
    assert len(owners) == len(set(owners)), "an NSEC3 appears twice"
    return set(owners)


def soa_only_negative(response: dns.message.Message, origin: dns.name.Name) -> None:
    soa = [r for r in response.authority if r.rdtype == T.SOA]
    assert len(soa) == 1 and soa[0].name == origin and soa[0].ttl == 300  # min(SOA TTL, MINIMUM)


def bitmap(served: Served, owner: str) -> set[str]:
    record = next(r for r in served.chain if r.name.to_text().lower() == owner)
    return {T.to_text(t) for window, bits in record[0].windows
            for i, byte in enumerate(bits) for b in range(8) if byte & (0x80 >> b)
            for t in (window * 256 + i * 8 + b,)}


# --- hashing ----------------------------------------------------------------------------------

def test_digest_equals_dnspython_on_zone_names_and_random_names(n3):
    rng = random.Random(5155)
    names = [n for n in n3.zone.nodes] + [N("*.w.n3.cid."), N("Pool-7.N3.CID."), dns.name.root]
    for _ in range(300):
        labels = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 20)))
                  for _ in range(rng.randrange(1, 6))]
        names.append(dns.name.Name([*labels, b""]))
    for name in names:
        salt = bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 8, 255))))
        iterations = rng.choice((0, 1, 2, 17))
        ours = b32(nsec3.name_digest(name, salt, iterations))
        assert ours == dns.dnssec.nsec3_hash(name, salt, iterations, 1).lower(), name
        assert nsec3.owner_digest(ours.upper().encode()) == nsec3.name_digest(name, salt, iterations)
    assert nsec3.owner_digest(b"not-base32hex!") is None


def test_index_holds_the_chain_and_no_hashed_names(n3, oo):
    for served in (n3, oo):
        index = served.store.find_index(served.signed.origin)
        assert index.nsec3 is not None and len(index.nsec3) == len(served.chain)
        assert index.nsec3.params == (1, 0, b"")
        hashed = {r.name for r in served.chain}
        assert not hashed & set(index.nodes)
        assert not any(index.exists(name) for name in hashed)


# --- RFC 5155 §7.2.2 name error -----------------------------------------------------------------

@pytest.mark.parametrize("qname, encloser", [
    ("nope", "@"),            # one label below the apex
    ("x.y.nope", "@"),        # several labels deep: next closer is still nope.<apex>
    ("nope.c", "c"),          # below an empty non-terminal
    ("a.*.w", "*.w"),         # below the wildcard owner itself
])
def test_name_error_is_closest_encloser_proof_plus_wildcard(n3, qname, encloser):
    r = n3.ask(qname, "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and r.flags & dns.flags.AA and not r.answer
    soa_only_negative(r, n3.signed.origin)
    depth = len(N(n3.name(encloser)).labels)
    next_closer = N(n3.name(qname)).split(depth + 1)[1].relativize(n3.signed.origin).to_text()
    expected = {n3.matching(encloser), n3.covering(next_closer),
                n3.covering(f"*.{encloser}" if encloser != "@" else "*")}
    assert None not in expected and proof(r) == expected


def test_hashed_owner_names_are_not_zone_names(n3):
    """A query for an NSEC3 owner name is a name error (Knot and NSD agree)."""
    for record in n3.chain[:3]:
        label = record.name.labels[0].decode()
        for rdtype in ("NSEC3", "A"):
            r = n3.ask(label.upper(), rdtype)
            assert r.rcode() == dns.rcode.NXDOMAIN
            assert n3.matching("@") in proof(r) and n3.covering(label) in proof(r)


# --- §7.2.3 / §7.2.4 no data ---------------------------------------------------------------------

@pytest.mark.parametrize("qname, rdtype", [
    ("pool-7", "TXT"), ("pool-7", "NSEC3"), ("pool-7", "DS"), ("@", "NSEC3"), ("@", "DS"),
    ("b.c", "A"), ("c", "TXT"), ("w", "TXT"),      # empty non-terminals are in the chain
    ("*.w", "A"),                                   # the wildcard owner asked literally
])
def test_no_data_is_the_matching_nsec3(n3, qname, rdtype):
    r = n3.ask(qname, rdtype)
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA and not r.answer
    soa_only_negative(r, n3.signed.origin)
    owner = n3.matching(qname)
    assert owner is not None and proof(r) == {owner}
    assert rdtype not in bitmap(n3, owner)


def test_ds_at_unsigned_delegation_without_opt_out(n3):
    for cut in ("unsigned", "x.ent", "far"):
        r = n3.ask(cut, "DS")
        assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA and not r.answer
        owner = n3.matching(cut)
        assert proof(r) == {owner} and bitmap(n3, owner) == {"NS"}


def test_ds_at_signed_delegation_is_data(n3, oo):
    for served in (n3, oo):
        r = served.ask("sec", "DS")
        assert [x.rdtype for x in r.answer] == [T.DS, T.RRSIG] and not proof(r)


def test_nsec3param_is_apex_data(n3):
    r = n3.ask("@", "NSEC3PARAM")
    assert [x.rdtype for x in r.answer] == [T.NSEC3PARAM, T.RRSIG]
    assert r.answer[0][0].to_text() == "1 0 0 -" and not r.authority


# --- §7.2.7 referrals ------------------------------------------------------------------------------

@pytest.mark.parametrize("qname, cut", [("a.unsigned", "unsigned"), ("unsigned", "unsigned"),
                                        ("a.b.x.ent", "x.ent"), ("host.far", "far")])
def test_referral_to_unsigned_child_has_matching_nsec3(n3, qname, cut):
    r = n3.ask(qname, "A")
    assert r.rcode() == dns.rcode.NOERROR and not r.flags & dns.flags.AA and not r.answer
    ns = [x for x in r.authority if x.rdtype == T.NS]
    assert len(ns) == 1 and ns[0].name == N(n3.name(cut))
    assert proof(r) == {n3.matching(cut)}
    assert not any(x.rdtype == T.DS for x in r.authority)


def test_referral_to_signed_child_has_ds_and_no_nsec3(n3, oo):
    for served in (n3, oo):
        r = served.ask("a.sec", "A")
        assert {(x.rdtype, x.covers) for x in r.authority} == {(T.NS, 0), (T.DS, 0), (T.RRSIG, T.DS)}


# --- opt-out (§7.2.3, §7.2.4, §7.2.7): closest provable encloser proofs ----------------------------

def test_opt_out_zone_omits_unsigned_delegations_and_their_ents(oo):
    for relative in ("unsigned", "x.ent", "ent", "far"):
        assert oo.matching(relative) is None
    for relative in ("@", "sec", "pool-7", "b.c", "c", "w"):
        assert oo.matching(relative) is not None


@pytest.mark.parametrize("qname, rdtype, next_closer", [
    ("unsigned", "DS", "unsigned"),     # DS NODATA at an opt-out delegation (§7.2.4)
    ("a.unsigned", "A", "unsigned"),    # referral (§7.2.7)
    ("unsigned", "A", "unsigned"),
    ("x.ent", "DS", "ent"),             # the closest provable encloser is the apex, not ent
    ("a.x.ent", "A", "ent"),
    ("ent", "A", "ent"),                # an ENT left out by opt-out: no matching NSEC3 exists
    ("ent", "DS", "ent"),               # Knot's answer; NSD sends the apex NSEC3 alone
    ("far", "DS", "far"),
])
def test_opt_out_gives_closest_provable_encloser_proof(oo, qname, rdtype, next_closer):
    r = oo.ask(qname, rdtype)
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    cover = oo.covering(next_closer)
    assert proof(r) == {oo.matching("@"), cover}
    record = next(x for x in r.authority if x.rdtype == T.NSEC3 and x.name.to_text().lower() == cover)
    assert record[0].flags & nsec3.OPT_OUT


def test_opt_out_name_error_below_an_omitted_ent(oo):
    # ent exists but has no NSEC3: the proof is from the apex (Knot); NSD gives only the wildcard.
    r = oo.ask("b.ent", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert proof(r) == {oo.matching("@"), oo.covering("ent"), oo.covering("*")}


# --- §7.2.5 / §7.2.6 wildcards -----------------------------------------------------------------------

@pytest.mark.parametrize("qname, next_closer", [("foo.w", "foo.w"), ("x.y.w", "y.w")])
def test_wildcard_answer_proves_next_closer_absent(n3, qname, next_closer):
    r = n3.ask(qname, "TXT")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert [(x.name, x.rdtype) for x in r.answer] == [(N(n3.name(qname)), T.TXT),
                                                     (N(n3.name(qname)), T.RRSIG)]
    assert r.answer[1][0].labels == 3  # *.w.n3.cid.: the validator sees the expansion
    assert not any(x.rdtype == T.SOA for x in r.authority)
    assert proof(r) == {n3.covering(next_closer)}


def test_wildcard_no_data(n3):
    r = n3.ask("foo.w", "A")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    soa_only_negative(r, n3.signed.origin)
    assert proof(r) == {n3.matching("w"), n3.covering("foo.w"), n3.matching("*.w")}
    assert "A" not in bitmap(n3, n3.matching("*.w"))


def test_wildcard_cname_followed_in_zone(n3):
    r = n3.ask("foo.wc", "A")
    assert [(x.name.to_text(), x.rdtype) for x in r.answer if x.rdtype != T.RRSIG] == [
        ("foo.wc.n3.cid.", T.CNAME), ("pool-7.n3.cid.", T.A)]
    assert proof(r) == {n3.covering("foo.wc")}
    r = n3.ask("foo.wc", "TXT")  # the CNAME target has no TXT: its NODATA proof joins
    assert proof(r) == {n3.covering("foo.wc"), n3.matching("pool-7")}


def test_cname_to_no_data(n3):
    r = n3.ask("alias", "TXT")
    assert [x.rdtype for x in r.answer] == [T.CNAME, T.RRSIG]
    assert proof(r) == {n3.matching("pool-7")}


# --- DO, work per query, NSEC zones --------------------------------------------------------------

def test_no_nsec3_without_do(n3):
    for qname, rdtype in (("nope", "A"), ("pool-7", "TXT"), ("foo.w", "TXT"), ("a.unsigned", "A")):
        r = n3.ask(qname, rdtype, do=False)
        assert not any(x.rdtype in (T.NSEC3, T.RRSIG) for x in r.authority + r.answer)


def test_hashing_per_query_is_bounded(n3, monkeypatch):
    calls = []
    real = nsec3.digest
    monkeypatch.setattr(nsec3, "digest", lambda *a: calls.append(a) or real(*a))
    deep = ".".join(["a"] * 123)  # 126 labels with n3.cid. and the root: 255 octets, the most
    r = n3.ask(deep, "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and len(proof(r)) == 3
    assert len(calls) <= 2  # next closer and wildcard; the encloser's hash was indexed
    calls.clear()
    for qname, rdtype in (("pool-7", "TXT"), ("b.c", "A"), ("a.unsigned", "A")):
        n3.ask(qname, rdtype)
    assert calls == []  # existing names: no hashing at query time


def test_nsec_zone_pays_nothing_for_nsec3(monkeypatch):
    monkeypatch.setattr(nsec3, "digest", lambda *a: pytest.fail("NSEC3 hashing in an NSEC zone"))
    signed = zones.build()
    store = ZoneStore([signed.parent])
    assert store.find_index(zones.PARENT).nsec3 is None
    query = dns.message.make_query("nope.ex.cid.", "A", want_dnssec=True)
    r = dns.message.from_wire(answer_query(store, query.to_wire(), tcp=False))
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert [x.rdtype for x in r.authority].count(T.NSEC) == 2


# --- which chain (RFC 5155 §7.3) ----------------------------------------------------------------

def _with_apex(served: Served, *params: str) -> ZoneStore:
    zone = load_zone(served.signed.path)
    node = zone.find_node(zone.origin)
    rds = node.find_rdataset(zone.rdclass, T.NSEC3PARAM)
    ttl = rds.ttl
    rds.clear()
    for text in params:
        rds.add(dns.rdata.from_text("IN", "NSEC3PARAM", text), ttl)
    return ZoneStore([zone])


def test_chain_named_by_nsec3param(n3):
    origin = n3.signed.origin
    # A second NSEC3PARAM without a chain (a new chain being built), and one with flags set
    # (RFC 5155 §4.1.2: ignored by servers): the existing chain is still used.
    store = _with_apex(n3, "1 0 5 abcdef", "1 1 0 -", "1 0 0 -")
    assert store.find_index(origin).nsec3.params == (1, 0, b"")
    # Only NSEC3PARAMs that cannot be used: no chain, negative answers carry the SOA only.
    for params in (("1 1 0 -",), ("2 0 0 -",), ("1 0 5 abcdef",)):
        store = _with_apex(n3, *params)
        assert store.find_index(origin).nsec3 is None
        query = dns.message.make_query(n3.name("nope"), "A", want_dnssec=True)
        r = dns.message.from_wire(answer_query(store, query.to_wire(), tcp=False))
        assert r.rcode() == dns.rcode.NXDOMAIN and not nsec3_zones.nsec3s(r.authority)


def test_nsec3_of_another_chain_is_not_served(n3):
    zone = load_zone(n3.signed.path)
    # An NSEC3 with a different salt at the hash (under that salt) of a name being queried.
    salted = b32(nsec3.name_digest(N(n3.name("nope")), b"\xab", 0))
    owner = N(f"{salted}.{n3.signed.origin}")
    zone.find_rdataset(owner, T.NSEC3, create=True).add(
        dns.rdata.from_text("IN", "NSEC3", f"1 0 0 AB {salted.upper()} A"), 300)
    store = ZoneStore([zone])
    assert len(store.find_index(zone.origin).nsec3) == len(n3.chain)
    query = dns.message.make_query(n3.name("nope"), "A", want_dnssec=True)
    r = dns.message.from_wire(answer_query(store, query.to_wire(), tcp=False))
    assert owner not in {x.name for x in r.authority}
    assert {x.name.to_text().lower() for x in nsec3_zones.nsec3s(r.authority)} == \
        {n3.matching("@"), n3.covering("nope"), n3.covering("*")}
