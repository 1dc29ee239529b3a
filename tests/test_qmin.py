"""QNAME minimisation (RFC 9156, relaxed) without sockets: what each server gets to see, empty
non-terminals, RFC 8020 NXDOMAIN cuts, the fallbacks for broken servers and the step bound."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from resolver.engine import trace as ev
from resolver.engine.cache import Cache
from resolver.engine.engine import Engine
from resolver.engine.qmin import MAX_MINIMISE_COUNT, Minimiser
from resolver.status import Status
from support import federation as F

N = dns.name.from_text
CID, CMCC, BJ, OPEN = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"
DEEP = ".".join(f"l{i}" for i in range(1, 21))  # 20 labels below bj.cmcc.cid.


@pytest.fixture(scope="module")
def fed():
    return F.build(overrides={
        "bj.cmcc.cid.": F.ZONES["bj.cmcc.cid."][1] + f"a.b.c 300 A 192.0.2.55\n{DEEP} 300 A 192.0.2.56\n",
    })


def run(fed, qname, qtype="A", *, cache=None, tamper=None, **kw):
    net = F.network(fed, tamper=tamper)
    e = Engine(qname, qtype, fed.hints(), fed.anchor(), cache if cache is not None else Cache(lambda: fed.now),
               now=lambda: fed.now, **kw)
    return net.run(e), net


def seen_by(net, host):
    return [(name, rdtype) for (server, name, rdtype, _) in net.sent if server[0] == host]


# --- the step rule -------------------------------------------------------------------------------

def test_one_label_at_a_time_then_grouped_and_at_most_ten_steps():
    qname = N(DEEP + ".bj.cmcc.cid.")
    zone = N("bj.cmcc.cid.")
    m = Minimiser(qname, dns.rdatatype.SVCB)
    sizes = []
    for _ in range(30):
        name, rdtype, minimised = m.next(zone)
        if not minimised:
            assert (name, rdtype) == (qname, dns.rdatatype.SVCB)
            break
        assert rdtype == dns.rdatatype.A and qname.is_subdomain(name)
        sizes.append(len(name))
        m.asked(name)  # an empty non-terminal: no cut, go deeper
    # RFC 9156 §2.3: MINIMISE_ONE_LAB (4) single labels, then the rest spread over the steps left.
    assert sizes == [5, 6, 7, 8, 10, 12, 15, 18, 21]
    assert len(sizes) <= MAX_MINIMISE_COUNT


def test_names_one_label_below_the_cut_and_disabled_minimisation_ask_the_full_question():
    q = N("pool-7.bj.cmcc.cid.")
    assert Minimiser(q, dns.rdatatype.A).next(N("bj.cmcc.cid.")) == (q, dns.rdatatype.A, False)
    assert Minimiser(q, dns.rdatatype.A, enabled=False).next(N("cid.")) == (q, dns.rdatatype.A, False)
    assert Minimiser(q, dns.rdatatype.SVCB).next(N("cid.")) == (N("cmcc.cid."), dns.rdatatype.A, True)


# --- what the servers see ------------------------------------------------------------------------

def test_each_server_sees_only_the_next_label_and_never_the_real_type(fed):
    result, net = run(fed, "pool-7.bj.cmcc.cid.", "SVCB")
    assert result.status is Status.SECURE and result.rrset is not None
    assert ("cmcc.cid.", "A") in seen_by(net, CID)
    assert all("pool-7" not in name and "bj" not in name and t != "SVCB" for name, t in seen_by(net, CID))
    assert all("pool-7" not in name and t != "SVCB" for name, t in seen_by(net, CMCC))
    assert ("pool-7.bj.cmcc.cid.", "SVCB") in seen_by(net, BJ)


def test_minimisation_can_be_turned_off(fed):
    result, net = run(fed, "pool-7.bj.cmcc.cid.", "SVCB", qname_minimisation=False)
    assert result.status is Status.SECURE
    assert ("pool-7.bj.cmcc.cid.", "SVCB") in seen_by(net, CID)


def test_empty_non_terminals_are_walked_label_by_label(fed):
    result, net = run(fed, "a.b.c.bj.cmcc.cid.")
    assert result.status is Status.SECURE and [rd.address for rd in result.rrset] == ["192.0.2.55"]
    assert seen_by(net, BJ)[:3] == [("c.bj.cmcc.cid.", "A"), ("b.c.bj.cmcc.cid.", "A"), ("a.b.c.bj.cmcc.cid.", "A")]


def test_deep_names_cost_at_most_max_minimise_count_extra_queries(fed):
    result, net = run(fed, DEEP + ".bj.cmcc.cid.", "AAAA")
    assert result.status is Status.SECURE and result.rcode == "NOERROR" and result.rrset is None  # NODATA
    minimised = [n for _, n, t, _ in net.sent if t == "A"]
    assert minimised[:2] == ["cmcc.cid.", "bj.cmcc.cid."]  # two steps spent on the way down
    # ... so below bj.cmcc.cid. two more single labels, then the rest spread over the steps left
    assert [len(N(n)) for n in minimised[2:]] == [5, 6, 9, 12, 15, 18, 21]
    assert len(minimised) <= MAX_MINIMISE_COUNT


# --- NXDOMAIN on the way (RFC 8020) ------------------------------------------------------------------

def test_validated_nxdomain_of_an_ancestor_ends_the_lookup(fed):
    cache = Cache(lambda: fed.now)
    result, net = run(fed, "x.y.missing.bj.cmcc.cid.", cache=cache)
    assert (result.rcode, result.status) == ("NXDOMAIN", Status.SECURE)
    assert "RFC 8020" in result.why and "missing.bj.cmcc.cid." in result.why
    assert all("x.y." not in name for _, name, _, _ in net.sent)  # the full name never left
    again, net = run(fed, "x.y.missing.bj.cmcc.cid.", cache=cache)
    assert again.rcode == "NXDOMAIN" and net.sent == []  # cached


def test_unvalidated_nxdomain_of_an_ancestor_falls_back_to_the_full_name(fed):
    """open.cid. is unsigned: its NXDOMAIN for an intermediate name proves nothing, and some
    servers deny empty non-terminals, so the full name is asked (relaxed mode)."""
    result, net = run(fed, "x.y.missing.open.cid.")
    assert (result.rcode, result.status) == ("NXDOMAIN", Status.INSECURE)
    assert seen_by(net, OPEN)[-1] == ("x.y.missing.open.cid.", "A")
    assert any(isinstance(t, ev.Fallback) and "missing.open.cid." in t.reason for t in result.trace)


def test_server_denying_empty_non_terminals_does_not_break_signed_names(fed):
    """A broken (or hostile) server says NXDOMAIN, without proof, for the empty non-terminal:
    the answer is bogus, so it cannot end the lookup; the full name is asked instead."""
    def deny_ent(server, query, response, tcp):
        if server[0] == BJ and query.question[0].name.canonicalize() == N("c.bj.cmcc.cid."):
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority = []
        return response
    result, net = run(fed, "a.b.c.bj.cmcc.cid.", tamper=deny_ent)
    assert result.status is Status.SECURE and [rd.address for rd in result.rrset] == ["192.0.2.55"]
    assert [q for q in seen_by(net, BJ) if q[1] == "A"] == [("c.bj.cmcc.cid.", "A"), ("a.b.c.bj.cmcc.cid.", "A")]


@pytest.mark.parametrize("failure", ["REFUSED", "SERVFAIL", "timeout", "lame"])
def test_servers_failing_minimised_queries_get_the_full_name(fed, failure):
    def break_minimised(server, query, response, tcp):
        q = query.question[0]
        if server[0] == CID and q.rdtype == dns.rdatatype.A and q.name.canonicalize() == N("cmcc.cid."):
            if failure == "timeout":
                return None
            if failure == "lame":
                response.authority, response.additional = [], []
                response.flags &= ~dns.flags.AA
                return response
            response.set_rcode(dns.rcode.from_text(failure))
            response.authority, response.additional = [], []
        return response
    result, net = run(fed, "pool-7.bj.cmcc.cid.", "SVCB", tamper=break_minimised, retries=0)
    assert result.status is Status.SECURE and result.rrset is not None
    assert ("pool-7.bj.cmcc.cid.", "SVCB") in seen_by(net, CID)  # relaxed: the full question
    assert any(isinstance(t, ev.Fallback) for t in result.trace)


def test_ds_and_dnskey_lookups_work_with_minimisation(fed):
    for name, rdtype in (("bj.cmcc.cid.", "DS"), ("bj.cmcc.cid.", "DNSKEY")):
        result, net = run(fed, name, rdtype)
        assert result.status is Status.SECURE and result.rrset is not None, (name, rdtype, result.why)
