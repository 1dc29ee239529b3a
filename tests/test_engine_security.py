"""Hostile-input tests of the engine: an on-path attacker rewrites responses (FakeNetwork.tamper).
Every attack must end BOGUS/SERVFAIL or be scrubbed away — never a secure or insecure pass."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from resolver.engine.cache import Cache
from resolver.engine.engine import Engine
from resolver.engine.scrub import scrub
from resolver.status import Status
from support import federation as F
from support.signing import flip_signature_byte

N = dns.name.from_text
A, DS, NSEC, RRSIG, DNSKEY = (dns.rdatatype.A, dns.rdatatype.DS, dns.rdatatype.NSEC,
                              dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)


@pytest.fixture(scope="module")
def fed():
    return F.build()


def run(fed, qname, qtype="A", tamper=None, cache=None, anchor=None):
    cache = cache if cache is not None else Cache(lambda: fed.now)
    e = Engine(qname, qtype, fed.hints(), anchor or fed.anchor(), cache, now=lambda: fed.now)
    net = F.network(fed, tamper=tamper)
    return net.run(e), net, cache


def from_server(host):
    def wrap(fn):
        def tamper(server, query, response, tcp):
            return fn(response) if server[0] == host else response
        return tamper
    return wrap


# --- signatures --------------------------------------------------------------------------------

def test_bad_signature_on_answer_is_bogus(fed):
    @from_server("127.0.0.4")
    def corrupt(response):
        response.answer = [flip_signature_byte(r) if r.rdtype == RRSIG else r for r in response.answer]
        return response
    result, _, _ = run(fed, "pool-7.bj.cmcc.cid.", tamper=corrupt)
    assert result.status is Status.BOGUS and result.rcode == "SERVFAIL" and result.rrset is None


def test_changed_data_under_a_valid_signature_is_bogus(fed):
    @from_server("127.0.0.4")
    def redirect(response):
        response.answer = [dns.rrset.from_text(r.name, r.ttl, "IN", "A", "203.0.113.66")
                           if r.rdtype == A else r for r in response.answer]
        return response
    result, _, _ = run(fed, "pool-7.bj.cmcc.cid.", tamper=redirect)
    assert result.status is Status.BOGUS and result.rrset is None


def test_stripped_rrsig_is_bogus_not_insecure(fed):
    @from_server("127.0.0.4")
    def strip_sigs(response):
        return F.strip(response, "answer", RRSIG)
    result, _, _ = run(fed, "pool-7.bj.cmcc.cid.", tamper=strip_sigs)
    assert result.status is Status.BOGUS


def test_stripped_ds_is_a_downgrade_and_bogus(fed):
    """Removing DS from the referral and from the DS answer must not make the child insecure:
    without a signed NSEC proving there is no DS, it is BOGUS (RFC 4035 §5.2)."""
    @from_server("127.0.0.3")
    def strip_ds(response):
        for section in ("answer", "authority"):
            F.strip(response, section, DS)
            F.strip(response, section, RRSIG, DS)
        return response
    result, net, _ = run(fed, "pool-7.bj.cmcc.cid.", tamper=strip_ds)
    assert result.status is Status.BOGUS, result.why
    assert any(name == "bj.cmcc.cid." and t == "DS" for _, name, t, _ in net.sent)  # it asked


def test_stripped_nsec_proof_of_unsigned_child_is_bogus(fed):
    @from_server("127.0.0.2")
    def strip_nsec(response):
        for section in ("answer", "authority"):
            F.strip(response, section, NSEC)
            F.strip(response, section, RRSIG, NSEC)
        return response
    result, _, _ = run(fed, "pool-1.open.cid.", tamper=strip_nsec)
    assert result.status is Status.BOGUS


@pytest.mark.parametrize("replay_proof", [False, True])
def test_forged_nxdomain_is_bogus(fed, replay_proof):
    """NXDOMAIN for a name that exists: with no proof, or replaying the genuine signed NSEC proof
    of another name's NXDOMAIN (which does not cover this name)."""
    genuine = dns.message.from_wire(F.answer_query(
        fed.stores()["127.0.0.4"], dns.message.make_query("missing.bj.cmcc.cid.", "A", want_dnssec=True).to_wire(),
        tcp=False))

    @from_server("127.0.0.4")
    def deny(response):
        if response.question[0].name == N("pool-7.bj.cmcc.cid."):
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.answer = []
            response.authority = list(genuine.authority) if replay_proof else []
        return response
    result, _, _ = run(fed, "pool-7.bj.cmcc.cid.", tamper=deny)
    assert result.status is Status.BOGUS and result.rcode == "SERVFAIL"
    assert "pool-7.bj.cmcc.cid." in result.why


def test_dnskey_not_matching_anchor_is_bogus(fed):
    other = F.build()  # same shape, different keys
    result, _, _ = run(fed, "pool-7.bj.cmcc.cid.", anchor=other.anchor())
    assert result.status is Status.BOGUS and "cid." in result.why


def test_substituted_child_keys_are_bogus(fed):
    """An attacker serving its own signed copy of the child (keys not in the parent's DS)."""
    impostor = F.build()

    def swap(server, query, response, tcp):
        if server[0] != "127.0.0.4":
            return response
        wire = F.answer_query(impostor.stores()["127.0.0.4"], query.to_wire(), tcp=tcp)
        return dns.message.from_wire(wire)
    result, _, _ = run(fed, "pool-7.bj.cmcc.cid.", tamper=swap)
    assert result.status is Status.BOGUS


def test_bogus_results_are_cached_briefly_and_not_served_as_data(fed):
    @from_server("127.0.0.4")
    def strip_sigs(response):
        return F.strip(response, "answer", RRSIG)
    result, _, cache = run(fed, "pool-7.bj.cmcc.cid.", tamper=strip_sigs)
    entry = cache.get_rrset(N("pool-7.bj.cmcc.cid."), A)
    assert entry is not None and entry.status is Status.BOGUS
    assert entry.expires - fed.now <= 60
    again, net, _ = run(fed, "pool-7.bj.cmcc.cid.", cache=cache)
    assert again.status is Status.BOGUS and again.rrset is None and net.sent == []


# --- the scrubber ---------------------------------------------------------------------------------

def test_out_of_bailiwick_glue_and_answers_are_scrubbed(fed):
    """The cid. server adds records it has no authority for; none may reach the cache."""
    @from_server("127.0.0.2")
    def poison(response):
        response.answer.append(dns.rrset.from_text("www.bank.example.", 86400, "IN", "A", "203.0.113.1"))
        response.authority.append(dns.rrset.from_text("example.", 86400, "IN", "NS", "ns.evil.example."))
        response.additional.append(dns.rrset.from_text("ns.evil.example.", 86400, "IN", "A", "203.0.113.2"))
        response.additional.append(dns.rrset.from_text("ns.far-ops.net.", 86400, "IN", "A", "203.0.113.3"))
        return response
    result, net, cache = run(fed, "node.far.cid.", tamper=poison)
    assert result.status is Status.SECURE
    assert cache.get_rrset(N("www.bank.example."), A) is None
    assert cache.get_delegation(N("example.")) is None
    assert cache.get_rrset(N("ns.far-ops.net."), A).rrset[0].address == "127.0.0.6"
    assert not any(host.startswith("203.0.113.") for (host, _), *_ in net.sent)


def test_referral_to_sibling_or_parent_is_ignored(fed):
    """NS records for a zone not on the path to the query name cannot redirect the resolution."""
    @from_server("127.0.0.3")
    def hijack(response):
        response.authority = [dns.rrset.from_text("cid.", 3600, "IN", "NS", "ns.cmcc.cid.")] + response.authority
        response.authority.append(dns.rrset.from_text("other.cid.", 3600, "IN", "NS", "ns.cmcc.cid."))
        return response
    result, _, cache = run(fed, "pool-7.bj.cmcc.cid.", tamper=hijack)
    assert result.status is Status.SECURE
    assert cache.get_delegation(N("other.cid.")) is None


def test_scrubber_keeps_only_the_cname_chain_and_ns_glue():
    import dns.message
    q = dns.message.make_query("a.z.cid.", "A")
    r = dns.message.make_response(q)
    r.answer = [dns.rrset.from_text("a.z.cid.", 60, "IN", "CNAME", "b.z.cid."),
                dns.rrset.from_text("b.z.cid.", 60, "IN", "A", "192.0.2.1"),
                dns.rrset.from_text("c.z.cid.", 60, "IN", "A", "192.0.2.2"),       # unrelated
                dns.rrset.from_text("a.z.cid.", 60, "IN", "DNAME", "x.cid.")]      # never used
    r.authority = [dns.rrset.from_text("z.cid.", 60, "IN", "NS", "ns.z.cid."),
                   dns.rrset.from_text("sub.z.cid.", 60, "IN", "SOA", ". . 1 1 1 1 1")]  # SOA not at apex
    r.additional = [dns.rrset.from_text("ns.z.cid.", 60, "IN", "A", "192.0.2.53"),
                    dns.rrset.from_text("other.z.cid.", 60, "IN", "A", "192.0.2.54"),  # not a name server
                    dns.rrset.from_text("ns.z.cid.", 60, "IN", "TXT", "x")]
    s = scrub(r, N("z.cid."), N("a.z.cid."))
    assert [(str(x.name), x.rdtype) for x in s.answer] == [("a.z.cid.", dns.rdatatype.CNAME), ("b.z.cid.", A)]
    assert [str(x.name) for x in s.authority] == ["z.cid."]
    assert [(str(x.name), x.rdtype) for x in s.additional] == [("ns.z.cid.", A)]
    assert s.dropped == 5


def test_ds_signed_by_the_child_itself_is_not_accepted(fed):
    """DS may only be signed by the parent; a child-signed DS set must not bootstrap trust."""
    child_key = fed.keys["bj.cmcc.cid."]

    @from_server("127.0.0.3")
    def self_signed_ds(response):
        for section in ("answer", "authority"):
            rrsets = getattr(response, section)
            ds = [r for r in rrsets if r.rdtype == DS]
            if ds:
                F.strip(response, section, RRSIG, DS)
                from support.signing import Key, sign
                k = Key(child_key.zone, child_key.algorithm, child_key.private_key, child_key.dnskey)
                getattr(response, section).append(sign(ds[0], k))
        return response
    result, _, _ = run(fed, "pool-7.bj.cmcc.cid.", tamper=self_signed_ds)
    assert result.status is Status.BOGUS


def test_forged_referral_to_a_name_the_parent_proves_absent_is_bogus(fed):
    """An attacker answers for a name that does not exist in the signed bj.cmcc.cid. with a
    referral to it (its server: the attacker's, 127.0.0.9), carrying bj's genuine NSEC covering
    the name (replayed from an NXDOMAIN) and no DS. NSEC has no opt-out, so that NSEC proves
    there is no delegation at all: the child must not become 'provably unsigned' (insecure),
    and the attacker's unsigned data must not be used."""
    fake = N("fake.bj.cmcc.cid.")
    denial = {}

    def learn(server, query, response, tcp):
        if server[0] == "127.0.0.4" and response.rcode() == dns.rcode.NXDOMAIN:
            denial["authority"] = [r for r in response.authority if NSEC in (r.rdtype, r.covers)]
        return response

    first, _, _ = run(fed, "fakf.bj.cmcc.cid.", tamper=learn)
    assert first.rcode == "NXDOMAIN" and denial["authority"]

    def forge(server, query, response, tcp):
        qname = query.question[0].name
        if not qname.is_subdomain(fake):
            return response
        forged = dns.message.make_response(query)
        if server[0] == "127.0.0.9":  # the attacker's own server for the fake zone
            forged.flags |= dns.flags.AA
            forged.answer = [dns.rrset.from_text(qname, 300, "IN", "A", "203.0.113.66")]
        elif query.question[0].rdtype == DS:  # asked of bj: the replayed NSEC again
            forged.flags |= dns.flags.AA
            forged.authority = list(denial["authority"])
        else:  # bj "refers" to the fake zone
            forged.authority = [dns.rrset.from_text(fake, 300, "IN", "NS", "ns.fake.bj.cmcc.cid."),
                                *denial["authority"]]
            forged.additional = [dns.rrset.from_text("ns.fake.bj.cmcc.cid.", 300, "IN", "A", "127.0.0.9")]
        return forged

    stores = fed.stores()
    net = F.FakeNetwork({**stores, "127.0.0.9": stores["127.0.0.4"]}, tamper=forge)
    for qname in ("fake.bj.cmcc.cid.", "www.fake.bj.cmcc.cid."):
        e = Engine(qname, "A", fed.hints(), fed.anchor(), Cache(lambda: fed.now), now=lambda: fed.now)
        result = net.run(e)
        assert result.status is Status.BOGUS and result.rrset is None, (qname, result.why)
