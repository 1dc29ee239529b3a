"""Engine unit tests without sockets: a signed hierarchy answered by the real authoritative
answering code through FakeNetwork, responses rewritten by an on-path attacker where needed."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from resolver.engine import trace as ev
from resolver.engine.actions import Done, EngineStateError, Send
from resolver.engine.cache import Cache
from resolver.engine.engine import Engine
from resolver.status import Status
from support import federation as F

N = dns.name.from_text


@pytest.fixture(scope="module")
def fed():
    return F.build()


def engine(fed, qname, qtype="A", *, anchor=True, cache=None, hints=None, **kw):
    return Engine(qname, qtype, hints or fed.hints(), fed.anchor() if anchor else None,
                  cache if cache is not None else Cache(lambda: fed.now), now=lambda: fed.now, **kw)


def resolve(fed, qname, qtype="A", net=None, **kw):
    net = net or F.network(fed)
    return net.run(engine(fed, qname, qtype, **kw)), net


# --- following delegations -------------------------------------------------------------------

def test_secure_answer_three_levels_down(fed):
    result, net = resolve(fed, "pool-7.bj.cmcc.cid.", "SVCB")
    assert result.rcode == "NOERROR" and result.status is Status.SECURE
    assert {rd.priority for rd in result.rrset} == {1, 2}
    assert result.rrsigs is not None
    referrals = [e for e in result.trace if isinstance(e, ev.Referral)]
    assert [(r.zone, r.child) for r in referrals] == [("cid.", "cmcc.cid."), ("cmcc.cid.", "bj.cmcc.cid.")]
    verdicts = {e.zone: e.status for e in result.trace if isinstance(e, ev.ZoneVerdict)}
    assert verdicts == {"cid.": Status.SECURE, "cmcc.cid.": Status.SECURE, "bj.cmcc.cid.": Status.SECURE}
    # Every query went to the server of the zone it was about, never recursion desired.
    servers = {host for (host, _), *_ in net.sent}
    assert servers == {"127.0.0.2", "127.0.0.3", "127.0.0.4"}
    assert result.ttl == 300


def test_queries_are_iterative_with_do_and_cd(fed):
    e = engine(fed, "pool-7.bj.cmcc.cid.")
    action = e.next_action()
    assert isinstance(action, Send) and action.server == ("127.0.0.2", 53) and not action.tcp
    q = action.query
    assert not q.flags & dns.flags.RD and q.flags & dns.flags.CD
    assert q.ednsflags & dns.flags.DO and q.payload == 1232


def test_out_of_zone_name_server_is_resolved_by_sub_resolution(fed):
    result, net = resolve(fed, "node.far.cid.")
    assert result.rcode == "NOERROR" and result.status is Status.SECURE
    assert [str(rd) for rd in result.rrset] == ["192.0.2.31"]
    assert (("127.0.0.7", 53), "ns.far-ops.net.", "A", False) in net.sent


def test_unsigned_child_proven_by_nsec_is_insecure(fed):
    result, _ = resolve(fed, "pool-1.open.cid.")
    assert result.rcode == "NOERROR" and result.status is Status.INSECURE
    assert "open.cid." in result.why and "no DS" in result.why


def test_no_trust_anchor_is_indeterminate(fed):
    result, _ = resolve(fed, "pool-7.bj.cmcc.cid.", anchor=False)
    assert result.rcode == "NOERROR" and result.status is Status.INDETERMINATE
    assert "no trust anchor" in result.why


def test_secure_nxdomain_and_nodata(fed):
    nx, _ = resolve(fed, "missing.bj.cmcc.cid.")
    assert nx.rcode == "NXDOMAIN" and nx.status is Status.SECURE and nx.rrset is None
    nodata, _ = resolve(fed, "pool-7.bj.cmcc.cid.", "TXT")
    assert nodata.rcode == "NOERROR" and nodata.rrset is None and nodata.status is Status.SECURE


def test_wildcard_expansion_is_validated(fed):
    result, _ = resolve(fed, "anything.wild.bj.cmcc.cid.")
    assert result.status is Status.SECURE and [str(rd) for rd in result.rrset] == ["192.0.2.77"]


# --- CNAMEs --------------------------------------------------------------------------------

def test_cname_chain_of_eight_is_followed(fed):
    result, _ = resolve(fed, "c7.bj.cmcc.cid.")
    assert result.rcode == "NOERROR" and result.status is Status.SECURE
    assert len(result.chain) == 8 and str(result.rrset.name) == "pool-7.bj.cmcc.cid."


def test_cname_chain_of_nine_fails(fed):
    result, _ = resolve(fed, "c8.bj.cmcc.cid.")
    assert result.rcode == "SERVFAIL" and "longer than 8" in result.why


def test_cname_loop_fails(fed):
    result, _ = resolve(fed, "loop1.bj.cmcc.cid.")
    assert result.rcode == "SERVFAIL" and "loop" in result.why


# --- failures and budgets --------------------------------------------------------------------

def test_all_servers_timing_out_gives_servfail_naming_zone_and_servers(fed):
    net = F.network(fed, down={"127.0.0.4"})
    result, _ = resolve(fed, "pool-7.bj.cmcc.cid.", net=net)
    assert result.rcode == "SERVFAIL"
    assert "bj.cmcc.cid." in result.why and "127.0.0.4:53 timeout" in result.why


def test_second_server_used_when_first_times_out(fed):
    hints = {"cid.": ["127.0.0.99", "127.0.0.2"], "far-ops.net.": ["127.0.0.7"]}
    result, net = resolve(fed, "pool-7.bj.cmcc.cid.", hints=hints)
    assert result.status is Status.SECURE
    assert any(isinstance(e, ev.ServerFailed) and e.server == ("127.0.0.99", 53) for e in result.trace)


def test_refused_and_servfail_servers_are_skipped(fed):
    def refuse(server, query, response, tcp):
        if server[0] == "127.0.0.98":
            response.set_rcode(dns.rcode.REFUSED)
            response.answer = response.authority = response.additional = []
        return response
    stores = fed.stores()
    stores["127.0.0.98"] = stores["127.0.0.2"]
    net = F.FakeNetwork(stores, tamper=refuse)
    result, _ = resolve(fed, "pool-7.bj.cmcc.cid.", net=net,
                        hints={"cid.": ["127.0.0.98", "127.0.0.2"]})
    assert result.status is Status.SECURE
    assert any(isinstance(e, ev.ServerFailed) and e.reason == "REFUSED" for e in result.trace)


def test_query_budget_bounds_a_resolution(fed):
    result, net = resolve(fed, "pool-7.bj.cmcc.cid.", max_queries=3)
    assert result.rcode == "SERVFAIL" and "budget of 3" in result.why
    assert len(net.sent) == 3


def test_time_budget_bounds_a_resolution(fed):
    clock = [fed.now]

    def tick():
        clock[0] += 1.0
        return clock[0]
    e = Engine("pool-7.bj.cmcc.cid.", "A", fed.hints(), fed.anchor(), Cache(lambda: fed.now),
               now=tick, max_time=3.0)
    result = F.network(fed).run(e)
    assert result.rcode == "SERVFAIL" and "time budget" in result.why


def test_unreachable_namespace_without_hint(fed):
    result, net = resolve(fed, "example.org.")
    assert result.rcode == "SERVFAIL" and "no hint covers" in result.why and net.sent == []


def test_truncated_udp_response_is_retried_over_tcp(fed):
    def truncate(server, query, response, tcp):
        if server[0] == "127.0.0.4" and not tcp:
            response.flags |= dns.flags.TC
            response.answer = response.authority = response.additional = []
        return response

    result, net = resolve(fed, "pool-7.bj.cmcc.cid.", net=F.network(fed, tamper=truncate))
    assert result.status is Status.SECURE
    to_bj = [tcp for (host, _), _, _, tcp in net.sent if host == "127.0.0.4"]
    assert to_bj[0] is False and True in to_bj


# --- the sans-I/O contract -------------------------------------------------------------------

def test_driver_protocol_errors_are_typed(fed):
    e = engine(fed, "pool-7.bj.cmcc.cid.")
    action = e.next_action()
    with pytest.raises(EngineStateError):
        e.next_action()  # no response yet
    with pytest.raises(EngineStateError):
        e.on_timeout(action.token + 1)
    e.on_timeout(action.token)
    with pytest.raises(EngineStateError):
        e.on_timeout(action.token)  # twice


def test_mismatched_responses_are_not_accepted(fed):
    """A response with the wrong ID, question or source is a failure of that server, whatever it says."""
    for mutate in ("id", "question", "source", "garbage"):
        # Without QNAME minimisation, whose relaxed fallback would ask once more (test_qmin).
        e = engine(fed, "pool-7.bj.cmcc.cid.", qname_minimisation=False)
        action = e.next_action()
        wire = F.answer_query(fed.stores()["127.0.0.2"], action.query.to_wire(), tcp=False)
        response = dns.message.from_wire(wire)
        source = action.server
        if mutate == "id":
            response.id ^= 1
        elif mutate == "question":
            response.question = [dns.rrset.RRset(N("evil.cid."), 1, 1)]
        elif mutate == "source":
            source = ("127.0.0.66", 53)
        if mutate == "garbage":
            e.on_response(action.token, b"\x00\x01garbage", source)
        else:
            e.on_response(action.token, response, source)
        done = e.next_action()
        assert isinstance(done, Done), mutate  # the only server failed
        assert done.result.rcode == "SERVFAIL", mutate


def test_wire_bytes_are_accepted(fed):
    e = engine(fed, "pool-7.bj.cmcc.cid.")
    stores = fed.stores()
    for _ in range(50):
        action = e.next_action()
        if isinstance(action, Done):
            break
        e.on_response(action.token, F.answer_query(stores[action.server[0]], action.query.to_wire(), tcp=False),
                      action.server)
    assert action.result.status is Status.SECURE


# --- the cache -------------------------------------------------------------------------------

def test_cache_answers_repeat_lookups_until_ttl_expires(fed):
    clock = [fed.now]
    cache = Cache(lambda: clock[0])
    net = F.network(fed)

    def run(name):
        e = Engine(name, "A", fed.hints(), fed.anchor(), cache, now=lambda: clock[0])
        before = len(net.sent)
        return net.run(e), len(net.sent) - before

    first, cold = run("pool-7.bj.cmcc.cid.")
    again, warm = run("pool-7.bj.cmcc.cid.")
    assert cold >= 5 and warm == 0 and again.status is Status.SECURE
    sibling, n = run("backup.bj.cmcc.cid.")
    assert n == 1 and sibling.status is Status.SECURE  # keys and delegations are cached
    nx, _ = run("gone.bj.cmcc.cid.")
    nx2, n = run("gone.bj.cmcc.cid.")
    assert nx2.rcode == "NXDOMAIN" and n == 0
    clock[0] += 301  # A TTL 300 expired, keys (3600) not
    _, n = run("pool-7.bj.cmcc.cid.")
    assert n == 1


# --- one server serving parent and child (the referral is skipped) --------------------------------

def shared(fed, address, child, tamper=None):
    stores = fed.stores()
    stores[address].add(fed.zones[child])
    return F.FakeNetwork(stores, tamper=tamper)


def test_unsigned_child_on_the_parents_server_is_insecure_not_bogus(fed):
    result, net = resolve(fed, "pool-1.open.cid.", net=shared(fed, "127.0.0.2", "open.cid."))
    assert result.rcode == "NOERROR" and result.status is Status.INSECURE, result.why
    assert "open.cid." in result.why
    assert not any(host == "127.0.0.5" for (host, _), *_ in net.sent)


def test_signed_child_on_the_parents_server_is_secure(fed):
    result, net = resolve(fed, "pool-7.bj.cmcc.cid.", net=shared(fed, "127.0.0.3", "bj.cmcc.cid."))
    assert result.status is Status.SECURE, result.why
    assert not any(host == "127.0.0.4" for (host, _), *_ in net.sent)


def test_stripped_signatures_from_a_shared_server_stay_bogus(fed):
    def strip(server, query, response, tcp):
        if response.question[0].name == N("pool-7.bj.cmcc.cid."):
            F.strip(response, "answer", dns.rdatatype.RRSIG)
        return response
    result, _ = resolve(fed, "pool-7.bj.cmcc.cid.", net=shared(fed, "127.0.0.3", "bj.cmcc.cid.", tamper=strip))
    assert result.status is Status.BOGUS
    assert "pool-7.bj.cmcc.cid. A" in result.why


def test_chain_through_ecdsa_and_rsa_zones():
    mixed = F.build(algorithms={"cmcc.cid.": 13, "bj.cmcc.cid.": 8})
    result, _ = resolve(mixed, "pool-7.bj.cmcc.cid.", "CAPS")
    assert result.status is Status.SECURE and "alg 8" in result.why
    assert result.rrset[0].mapping == {"accel_count": 8, "accel_kind": "gpu"}


def test_name_server_dependency_loop_ends_in_servfail():
    looped = F.build(overrides={"cid.": F.ZONES["cid."][1] + "loop 3600 NS ns.loop2\nloop2 3600 NS ns.loop\n"})
    result, net = resolve(looped, "x.loop.cid.")
    assert result.rcode == "SERVFAIL" and "loop.cid." in result.why
    assert len(net.sent) < 20


def test_anchor_below_the_hinted_zone(fed):
    """Anchored at cmcc.cid.: cid. above it is indeterminate, but the chain from cmcc.cid. down
    is validated, and zones outside the anchor stay indeterminate."""
    from resolver.dnssec.anchors import TrustAnchor
    anchor = TrustAnchor.from_text(f"cmcc.cid. 3600 IN DNSKEY {fed.keys['cmcc.cid.'].dnskey.to_text()}\n")
    net = F.network(fed)
    cache = Cache(lambda: fed.now)
    deep = net.run(Engine("pool-7.bj.cmcc.cid.", "A", fed.hints(), anchor, cache, now=lambda: fed.now))
    other = net.run(Engine("pool-1.open.cid.", "A", fed.hints(), anchor, cache, now=lambda: fed.now))
    assert deep.status is Status.SECURE
    assert other.status is Status.INDETERMINATE


def test_anchor_above_the_only_hint_cannot_be_reached(fed):
    result, net = resolve(fed, "pool-7.bj.cmcc.cid.", hints={"bj.cmcc.cid.": ["127.0.0.4"]})
    assert result.rcode == "SERVFAIL" and result.status is not Status.SECURE
    assert "bj.cmcc.cid." in result.why


def test_a_lost_datagram_is_retried_once(fed):
    lost = []

    def drop_first(server, query, response, tcp):
        if server[0] == "127.0.0.4" and not lost:
            lost.append(query)
            return None  # the network ate it: the engine sees a timeout
        return response
    result, net = resolve(fed, "pool-7.bj.cmcc.cid.", net=F.network(fed, tamper=drop_first))
    assert lost and result.status is Status.SECURE
    assert any(isinstance(e, ev.ServerFailed) and e.reason == "timeout" for e in result.trace)


def test_a_server_that_timed_out_is_asked_last_by_later_lookups(fed):
    hints = {"cid.": ["127.0.0.99", "127.0.0.2"], "far-ops.net.": ["127.0.0.7"]}
    cache = Cache(lambda: fed.now)
    net = F.network(fed)
    first = net.run(engine(fed, "pool-7.bj.cmcc.cid.", hints=hints, cache=cache))
    second = net.run(engine(fed, "pool-1.open.cid.", hints=hints, cache=cache))
    assert first.status is Status.SECURE and second.status is Status.INSECURE
    assert any(isinstance(e, ev.ServerFailed) for e in first.trace)
    assert not any(isinstance(e, ev.ServerFailed) for e in second.trace)
