"""The engine against misbehaving authorities (scripted per server address, no sockets):
lame and failing servers among working ones, AA referrals, parent glue versus child data,
replies without a question, stray answers, bogus RRsets inside signed negative answers, DS
for the root, DNAME. Each test asserts the final answer and which servers were asked.

The world: the test federation with bj.cmcc.cid. served by three name servers,
    ns.bj.cmcc.cid.        127.0.0.4  (glue in cmcc.cid.)
    ns2.bj.cmcc.cid.       127.0.0.8  (glue in cmcc.cid.)
    nsbj.far-ops.net.      127.0.0.9  (no glue: resolved through far-ops.net., 127.0.0.7)
"""

from __future__ import annotations

from collections.abc import Callable

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from resolver.engine.cache import Cache
from resolver.engine.engine import Engine
from resolver.status import Status
from support import federation as F
from support.signing import flip_signature_byte

N = dns.name.from_text
A, AAAA, NS, SOA, DS, RRSIG, NSEC = (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.NS, dns.rdatatype.SOA,
                                     dns.rdatatype.DS, dns.rdatatype.RRSIG, dns.rdatatype.NSEC)
BJ_SERVERS = ("127.0.0.4", "127.0.0.8", "127.0.0.9")

CMCC = """
@ 3600 SOA ns hostmaster 1 7200 900 1209600 300
@ 3600 NS ns
ns 3600 A 127.0.0.3
bj 3600 NS ns.bj
bj 3600 NS ns2.bj
bj 3600 NS nsbj.far-ops.net.
ns.bj 3600 A 127.0.0.4
ns2.bj 3600 A 127.0.0.8
"""
BJ = F.ZONES["bj.cmcc.cid."][1].replace("@ 3600 NS ns\n", "@ 3600 NS ns\n@ 3600 NS ns2\n@ 3600 NS nsbj.far-ops.net.\n"
                                        "ns2 3600 A 127.0.0.8\n") + """
here 300 DNAME bj.cmcc.cid.
moved 300 DNAME open.cid.
"""
FAR_OPS = F.ZONES["far-ops.net."][1] + "nsbj 3600 A 127.0.0.9\n"


@pytest.fixture(scope="module")
def fed():
    return F.build(overrides={"cmcc.cid.": CMCC, "bj.cmcc.cid.": BJ, "far-ops.net.": FAR_OPS})


Script = Callable[[dns.message.Message, dns.message.Message], dns.message.Message | None]


def run(fed, qname, qtype="A", scripts: dict[str, Script] | None = None, down=(), cache=None):
    """(Lookup, servers asked in order, the network). ``scripts``: address → fn(query, genuine
    response) returning the response to send (None: no reply, a timeout)."""
    scripts = scripts or {}
    stores = fed.stores()
    stores["127.0.0.8"] = stores["127.0.0.9"] = stores["127.0.0.4"]

    def tamper(server, query, response, tcp):
        script = scripts.get(server[0])
        return script(query, response) if script is not None else response
    net = F.FakeNetwork(stores, down=set(down), tamper=tamper)
    cache = cache if cache is not None else Cache(lambda: fed.now)
    e = Engine(qname, qtype, fed.hints(), fed.anchor(), cache, now=lambda: fed.now)
    result = net.run(e)
    return result, [s[0][0] for s in net.sent], net


def reply(query: dns.message.Message, rcode=dns.rcode.NOERROR, *, aa=False, answer=(), authority=(), additional=()):
    r = dns.message.make_response(query)
    r.set_rcode(rcode)
    if aa:
        r.flags |= dns.flags.AA
    r.answer, r.authority, r.additional = list(answer), list(authority), list(additional)
    return r


def rr(text: str) -> dns.rrset.RRset:
    name, ttl, rdclass, rdtype, rdata = text.split(maxsplit=4)
    return dns.rrset.from_text(name, int(ttl), rdclass, rdtype, rdata)


def servfail(query, response):
    return reply(query, dns.rcode.SERVFAIL)


def refused(query, response):
    return reply(query, dns.rcode.REFUSED)


def self_referral(query, response):
    return reply(query, authority=[rr("bj.cmcc.cid. 3600 IN NS ns.bj.cmcc.cid.")],
                 additional=[rr("ns.bj.cmcc.cid. 3600 IN A 127.0.0.4")])


def upward_referral(query, response):
    return reply(query, authority=[rr("cmcc.cid. 3600 IN NS ns.cmcc.cid.")],
                 additional=[rr("ns.cmcc.cid. 3600 IN A 127.0.0.3")])


def secure_pool7(result):
    assert (result.rcode, result.status) == ("NOERROR", Status.SECURE), result.why
    assert [rd.address for rd in result.rrset] == ["192.0.2.7"]


# --- 1. lame and failing servers -------------------------------------------------------------------

@pytest.mark.parametrize("first,second", [(servfail, refused), (self_referral, upward_referral),
                                          (refused, self_referral), (upward_referral, servfail)])
def test_failing_glued_servers_fall_back_to_the_glueless_one(fed, first, second):
    result, asked, _ = run(fed, "pool-7.bj.cmcc.cid.", scripts={"127.0.0.4": first, "127.0.0.8": second})
    secure_pool7(result)
    assert {"127.0.0.4", "127.0.0.8", "127.0.0.7", "127.0.0.9"} <= set(asked)


def test_one_lame_server_among_working_ones_is_skipped(fed):
    for lame in (servfail, refused, self_referral, upward_referral):
        result, asked, _ = run(fed, "pool-7.bj.cmcc.cid.", scripts={"127.0.0.4": lame})
        secure_pool7(result)
        assert set(asked) & {"127.0.0.8", "127.0.0.9"}, lame.__name__


def test_every_server_failing_is_servfail_naming_them(fed):
    scripts = dict.fromkeys(BJ_SERVERS, servfail)
    result, asked, _ = run(fed, "pool-7.bj.cmcc.cid.", scripts=scripts)
    assert result.rcode == "SERVFAIL"
    assert all(server in result.why for server in BJ_SERVERS), result.why
    assert set(BJ_SERVERS) <= set(asked)


# --- 2. an AA=1 response that is a referral ---------------------------------------------------------

def test_aa_referral_pointing_down_is_followed(fed):
    def aa_referral(query, response):
        if response.authority and any(r.rdtype == NS for r in response.authority):
            response.flags |= dns.flags.AA
        return response
    result, asked, _ = run(fed, "pool-7.bj.cmcc.cid.", scripts={"127.0.0.3": aa_referral})
    secure_pool7(result)
    assert "127.0.0.4" in asked or "127.0.0.8" in asked


def test_aa_referral_pointing_up_is_lame(fed):
    def aa_upward(query, response):
        return reply(query, aa=True, authority=[rr("cmcc.cid. 3600 IN NS ns.cmcc.cid.")])
    result, asked, _ = run(fed, "pool-7.bj.cmcc.cid.", scripts={"127.0.0.4": aa_upward, "127.0.0.8": aa_upward})
    secure_pool7(result)
    assert "127.0.0.9" in asked


def test_aa_referral_sideways_is_lame(fed):
    def aa_sideways(query, response):
        return reply(query, aa=True, authority=[rr("sh.cmcc.cid. 3600 IN NS ns.sh.cmcc.cid.")])
    result, _, _ = run(fed, "pool-7.bj.cmcc.cid.", scripts={"127.0.0.4": aa_sideways, "127.0.0.8": aa_sideways})
    secure_pool7(result)


# --- 3. parent glue versus child data ----------------------------------------------------------------

def test_parent_glue_is_used_when_the_childs_address_for_its_server_is_dead(fed):
    """bj.cmcc.cid. says its ns2 is at 127.0.0.10 (dead); the parent's glue says 127.0.0.8."""
    def child_moves_ns2(query, response):
        for section in (response.answer, response.additional):
            for i, rrset in enumerate(section):
                if rrset.name == N("ns2.bj.cmcc.cid.") and rrset.rdtype == A:
                    section[i] = rr("ns2.bj.cmcc.cid. 3600 IN A 127.0.0.10")
        return response
    cache = Cache(lambda: fed.now)
    scripts = {a: child_moves_ns2 for a in BJ_SERVERS}
    run(fed, "ns2.bj.cmcc.cid.", scripts=scripts, cache=cache)  # learns the child's (dead) address
    scripts["127.0.0.4"] = servfail
    scripts["127.0.0.9"] = servfail
    cache.flush(name="pool-7.bj.cmcc.cid.")
    result, asked, _ = run(fed, "pool-7.bj.cmcc.cid.", scripts=scripts, down={"127.0.0.10"}, cache=cache)
    secure_pool7(result)
    assert "127.0.0.8" in asked


# --- 5. every RRset of a signed negative answer must validate ---------------------------------------

def corrupt_soa_sig(query, response):
    response.authority = [flip_signature_byte(r) if r.rdtype == RRSIG and r.covers == SOA else r
                          for r in response.authority]
    return response


def strip_soa_sig(query, response):
    response.authority = [r for r in response.authority if not (r.rdtype == RRSIG and r.covers == SOA)]
    return response


@pytest.mark.parametrize("tamper", [corrupt_soa_sig, strip_soa_sig])
@pytest.mark.parametrize("qname,qtype,server", [
    ("open.cid.", "DS", "127.0.0.2"),  # DS NODATA at an unsigned delegation
    ("nope.cid.", "A", "127.0.0.2"),  # NXDOMAIN
    ("pool-7.bj.cmcc.cid.", "TXT", "127.0.0.4"),  # NODATA
])
def test_bogus_soa_in_a_signed_negative_answer_is_bogus(fed, tamper, qname, qtype, server):
    scripts = {server: tamper}
    if server == "127.0.0.4":
        scripts.update({"127.0.0.8": tamper, "127.0.0.9": tamper})
    result, _, _ = run(fed, qname, qtype, scripts=scripts)
    assert (result.rcode, result.status) == ("SERVFAIL", Status.BOGUS), result.why
    assert "SOA" in result.why


def test_bogus_soa_cannot_make_an_unsigned_child_insecure(fed):
    """The DS denial for open.cid. rides in the referral: its SOA (if any) is checked too,
    and a forged NSEC signature there is bogus, not a proof."""
    def corrupt_nsec(query, response):
        response.authority = [flip_signature_byte(r) if r.rdtype == RRSIG and r.covers == NSEC else r
                              for r in response.authority]
        return response
    result, _, _ = run(fed, "pool-1.open.cid.", scripts={"127.0.0.2": corrupt_nsec})
    assert result.status is Status.BOGUS


# --- 7. a reply without a question --------------------------------------------------------------------

def test_reply_without_question_is_a_failed_try_at_once(fed):
    """The first server asked for pool-7 replies without a question (its answer records must
    not be used); the next one is asked at once and the first is not asked again."""
    broken = []

    def no_question(query, response):
        if query.question[0].name == N("pool-7.bj.cmcc.cid.") and not broken:
            broken.append(True)
            response.question = []
            response.answer = [rr("pool-7.bj.cmcc.cid. 300 IN A 203.0.113.66")]
        return response
    result, _, net = run(fed, "pool-7.bj.cmcc.cid.", scripts=dict.fromkeys(BJ_SERVERS, no_question))
    secure_pool7(result)
    to_pool7 = [s[0][0] for s in net.sent if s[1] == "pool-7.bj.cmcc.cid."]
    assert len(to_pool7) == 2 and to_pool7[0] != to_pool7[1], to_pool7
    assert any("without a question" in str(e) for e in result.trace)


# --- 8. a non-authoritative answer with only an unrelated RRset --------------------------------------

def test_stray_rrset_in_a_non_authoritative_answer_is_nodata_and_not_cached(fed):
    def stray(query, response):
        if query.question[0].rdtype == AAAA:
            return reply(query, answer=[rr("pool-1.open.cid. 300 IN A 198.51.100.66")])
        return response
    cache = Cache(lambda: fed.now)
    result, _, _ = run(fed, "pool-1.open.cid.", "AAAA", scripts={"127.0.0.5": stray}, cache=cache)
    assert (result.rcode, result.rrset) == ("NOERROR", None), result.why
    assert result.status is Status.INSECURE
    assert cache.get_rrset(N("pool-1.open.cid."), A) is None  # the stray A was not kept
    a, _, _ = run(fed, "pool-1.open.cid.", "A", cache=cache)
    assert [rd.address for rd in a.rrset] == ["192.0.2.21"]


# --- 6. DS for the root ------------------------------------------------------------------------------

def test_root_ds_is_answered_from_the_root_zone():
    """The root has no parent: `. DS` is NODATA from the root zone itself, secure by the
    root's apex NSEC (which has SOA — for any other zone that would be the child's record)."""
    import dns.zone

    from resolver.auth.keys import generate_key
    from resolver.auth.signer import sign_zone
    from resolver.auth.store import ZoneStore
    from resolver.dnssec.anchors import TrustAnchor
    from support.signing import NOW
    root = dns.zone.from_text("""
@ 3600 SOA a.root hostmaster 1 7200 900 1209600 300
@ 3600 NS a.root
a.root 3600 A 127.0.0.30
""", origin=dns.name.root, relativize=False)
    key = generate_key(".", 15)
    sign_zone(root, [key], now=NOW)
    anchor = TrustAnchor.from_text(f". 3600 IN DNSKEY {key.dnskey.to_text()}\n")
    net = F.FakeNetwork({"127.0.0.30": ZoneStore([root])})
    for qtype, rcode in (("DS", "NOERROR"), ("SOA", "NOERROR")):
        e = Engine(".", qtype, {".": ["127.0.0.30"]}, anchor, Cache(lambda: NOW), now=lambda: NOW)
        result = net.run(e)
        assert (result.rcode, result.status) == (rcode, Status.SECURE), (qtype, result.why)
    assert result.rrset is not None  # SOA: data


# --- 4. DNAME (RFC 6672) --------------------------------------------------------------------------------

def test_dname_is_validated_synthesised_and_followed(fed):
    result, _, _ = run(fed, "pool-7.here.bj.cmcc.cid.")
    assert (result.rcode, result.status) == ("NOERROR", Status.SECURE), result.why
    assert [rd.address for rd in result.rrset] == ["192.0.2.7"]
    dname, cname = result.chain
    assert dname.rdtype == dns.rdatatype.DNAME and dname.name == N("here.bj.cmcc.cid.")
    assert cname.rdtype == dns.rdatatype.CNAME and cname[0].target == N("pool-7.bj.cmcc.cid.")
    assert cname.ttl <= dname.ttl and result.chain_rrsigs[0] is not None and result.chain_rrsigs[1] is None


def test_dname_query_gets_the_dname(fed):
    result, _, _ = run(fed, "here.bj.cmcc.cid.", "DNAME")
    assert (result.rcode, result.status) == ("NOERROR", Status.SECURE), result.why
    assert result.rrset is not None and result.rrset[0].target == N("bj.cmcc.cid.")


def test_cached_dname_applies_to_other_names_below_it(fed):
    cache = Cache(lambda: fed.now)
    run(fed, "pool-7.here.bj.cmcc.cid.", cache=cache)
    result, _, net = run(fed, "backup.here.bj.cmcc.cid.", cache=cache)
    assert (result.rcode, result.status) == ("NOERROR", Status.SECURE), result.why
    assert [rd.address for rd in result.rrset] == ["192.0.2.8"]
    asked = {name for _, name, _, _ in net.sent}
    assert not any(n.endswith("here.bj.cmcc.cid.") for n in asked), asked  # rewritten from the cache
    assert not any(n == "cid." or n == "cmcc.cid." for n in asked)  # never back to the top


def test_dname_into_an_unsigned_zone_is_insecure(fed):
    result, _, _ = run(fed, "pool-1.moved.bj.cmcc.cid.")
    assert (result.rcode, result.status) == ("NOERROR", Status.INSECURE), result.why
    assert [rd.address for rd in result.rrset] == ["192.0.2.21"]


def test_forged_dname_is_bogus_and_the_unsigned_cname_never_trusted(fed):
    def forge(query, response):
        out = []
        for r in response.answer:
            if r.rdtype == RRSIG and r.covers == dns.rdatatype.DNAME:
                r = flip_signature_byte(r)
            out.append(r)
        response.answer = out
        return response
    result, _, _ = run(fed, "pool-7.here.bj.cmcc.cid.", scripts=dict.fromkeys(BJ_SERVERS, forge))
    assert (result.rcode, result.status) == ("SERVFAIL", Status.BOGUS), result.why

    def redirect(query, response):  # a genuine DNAME with a lying synthesised CNAME beside it
        response.answer = [rr(f"{query.question[0].name} 300 IN CNAME backup.bj.cmcc.cid.") if r.rdtype == dns.rdatatype.CNAME
                           else r for r in response.answer]
        return response
    result, _, _ = run(fed, "pool-7.here.bj.cmcc.cid.", scripts=dict.fromkeys(BJ_SERVERS, redirect))
    assert result.status is Status.SECURE and [rd.address for rd in result.rrset] == ["192.0.2.7"]


# --- one server with a broken copy: the others are asked (Unbound's "blacklist and retry") --------------

@pytest.mark.parametrize("qname,qtype", [("pool-7.bj.cmcc.cid.", "A"), ("nope.bj.cmcc.cid.", "A"),
                                         ("pool-7.bj.cmcc.cid.", "TXT")])
def test_a_server_with_a_forged_copy_is_passed_over(fed, qname, qtype):
    def forged(query, response):
        sections = (response.answer, response.authority)
        for section in sections:
            section[:] = [flip_signature_byte(r) if r.rdtype == RRSIG and r.covers != dns.rdatatype.DNSKEY else r
                          for r in section]
        return response
    result, asked, net = run(fed, qname, qtype, scripts={"127.0.0.4": forged})
    assert result.status is Status.SECURE, result.why
    asked_for = [s[0][0] for s in net.sent if s[1] == qname]
    assert asked_for[0] == "127.0.0.4" and len(asked_for) == 2, asked_for  # never-measured servers: referral order
    assert any("failed validation" in str(e) for e in result.trace)


def test_every_server_forged_stays_bogus_and_bounded(fed):
    def forged(query, response):
        response.answer = [flip_signature_byte(r) if r.rdtype == RRSIG and r.covers == A else r
                           for r in response.answer]
        return response
    result, _, net = run(fed, "pool-7.bj.cmcc.cid.", scripts=dict.fromkeys(BJ_SERVERS, forged))
    assert result.status is Status.BOGUS and result.rcode == "SERVFAIL"
    to_pool7 = [s for s in net.sent if s[1] == "pool-7.bj.cmcc.cid."]
    assert len(to_pool7) <= 3  # the first try and at most MAX_BOGUS_RETRIES more
