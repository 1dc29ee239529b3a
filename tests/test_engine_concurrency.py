"""The engine's concurrent surface (next_actions) without sockets: several queries in flight,
outcomes reported in any order, DNSKEY prefetch into each signed zone — and the same verdicts,
budgets and hardening as the serial surface. Also the hand-rendered query wire form."""

from __future__ import annotations

import random

import dns.flags
import dns.message
import dns.name
import dns.rdatatype
import pytest

from resolver.engine import trace as ev
from resolver.engine.actions import Done, EngineStateError, Send
from resolver.engine.cache import Cache
from resolver.engine.engine import Budget, Engine
from resolver.engine.querywire import build_query
from resolver.status import Status
from support import federation as F

N = dns.name.from_text
DNSKEY = dns.rdatatype.DNSKEY


@pytest.fixture(scope="module")
def fed():
    return F.build()


def engine(fed, qname, qtype="A", *, anchor=True, cache=None, **kw):
    return Engine(qname, qtype, fed.hints(), fed.anchor() if anchor else None,
                  cache if cache is not None else Cache(lambda: fed.now), now=lambda: fed.now,
                  rng=random.Random(7), **kw)


class ConcurrentNet:
    """Answers every Send of a batch from the zone stores, reporting the outcomes in the order
    ``order`` picks ("fifo", "reverse" or "shuffle"); ``lose`` (server host, qname, qtype)
    triples time out once; ``tamper(send, response)`` may rewrite a response."""

    def __init__(self, fed, order="fifo", lose=(), tamper=None):
        self.stores = fed.stores()
        self.order = order
        self.lose = set(lose)
        self.tamper = tamper
        self.batches: list[list[tuple[str, str, str]]] = []
        self.rng = random.Random(3)

    def run(self, e: Engine, max_rounds: int = 200):
        inflight: list[Send] = []
        for _ in range(max_rounds):
            actions = e.next_actions()
            if actions and isinstance(actions[0], Done):
                assert len(actions) == 1
                return actions[0].result
            self.batches.append([(a.server[0], str(a.query.question[0].name).lower(),
                                  dns.rdatatype.to_text(a.query.question[0].rdtype)) for a in actions])
            inflight += actions
            assert inflight, "the engine waits with nothing in flight"
            if self.order == "reverse":
                inflight.reverse()
            elif self.order == "shuffle":
                self.rng.shuffle(inflight)
            # Deliver one outcome per round so the engine sees every interleaving step.
            send = inflight.pop(0)
            self._deliver(e, send)
        raise AssertionError("engine did not finish")

    def _deliver(self, e: Engine, send: Send) -> None:
        q = send.query.question[0]
        key = (send.server[0], str(q.name).lower(), dns.rdatatype.to_text(q.rdtype))
        if key in self.lose:
            self.lose.discard(key)
            e.on_timeout(send.token)
            return
        wire = F.answer_query(self.stores[send.server[0]], send.wire or send.query.to_wire(), tcp=send.tcp)
        response = dns.message.from_wire(wire)
        if self.tamper is not None:
            response = self.tamper(send, response)
        e.on_response(send.token, response, send.server)


def queries(batches):
    return [q for batch in batches for q in batch]


@pytest.mark.parametrize("order", ["fifo", "reverse", "shuffle"])
def test_concurrent_resolution_is_secure_in_any_delivery_order(fed, order):
    net = ConcurrentNet(fed, order)
    result = net.run(engine(fed, "pool-7.bj.cmcc.cid.", "SVCB"))
    assert result.rcode == "NOERROR" and result.status is Status.SECURE
    assert {rd.priority for rd in result.rrset} == {1, 2}
    verdicts = {e.zone: e.status for e in result.trace if isinstance(e, ev.ZoneVerdict)}
    assert verdicts == {"cid.": Status.SECURE, "cmcc.cid.": Status.SECURE, "bj.cmcc.cid.": Status.SECURE}


def test_each_signed_zones_keys_go_out_with_the_next_query_into_it(fed):
    net = ConcurrentNet(fed)
    result = net.run(engine(fed, "pool-7.bj.cmcc.cid.", "SVCB"))
    assert result.status is Status.SECURE
    multi = [sorted(batch) for batch in net.batches if len(batch) > 1]
    assert ["127.0.0.2", "cid.", "DNSKEY"] in [list(q) for batch in multi for q in batch]
    for zone, host in (("cid.", "127.0.0.2"), ("cmcc.cid.", "127.0.0.3"), ("bj.cmcc.cid.", "127.0.0.4")):
        batch = next(b for b in net.batches if (host, zone, "DNSKEY") in b)
        assert len(batch) == 2  # the DNSKEY query and the next query into the zone, together
        assert batch[0][2] != "DNSKEY" and batch[0][0] == host  # the one the lookup waits on leaves first
    # No question is asked twice, and no more than serially.
    serial = F.network(fed)
    serial_result = serial.run(engine(fed, "pool-7.bj.cmcc.cid.", "SVCB"))
    asked = queries(net.batches)
    assert len(asked) == len(set(asked)) == len(serial.sent)
    assert serial_result.status is result.status and serial_result.rrset == result.rrset


def test_unsigned_zone_gets_no_key_prefetch(fed):
    net = ConcurrentNet(fed)
    result = net.run(engine(fed, "pool-1.open.cid."))
    assert result.status is Status.INSECURE
    assert not [q for q in queries(net.batches) if q[1] == "open.cid." and q[2] == "DNSKEY"]


def test_no_prefetch_without_a_trust_anchor(fed):
    net = ConcurrentNet(fed)
    result = net.run(engine(fed, "pool-7.bj.cmcc.cid.", anchor=False))
    assert result.status is Status.INDETERMINATE
    assert not [q for q in queries(net.batches) if q[2] == "DNSKEY"]
    assert all(len(b) == 1 for b in net.batches)


def test_a_lost_prefetch_is_asked_again_and_still_validates(fed):
    net = ConcurrentNet(fed, lose={("127.0.0.3", "cmcc.cid.", "DNSKEY")})
    result = net.run(engine(fed, "pool-7.bj.cmcc.cid."))
    assert result.status is Status.SECURE
    assert queries(net.batches).count(("127.0.0.3", "cmcc.cid.", "DNSKEY")) == 2


def test_a_forged_key_set_in_a_prefetch_is_bogus(fed):
    evil = F.build()  # same names, other keys: what an on-path attacker could sign with

    def tamper(send, response):
        q = send.query.question[0]
        if q.rdtype == DNSKEY and q.name == N("bj.cmcc.cid."):
            forged = dns.message.from_wire(F.answer_query(evil.stores()["127.0.0.4"], send.wire, tcp=False))
            response.answer = forged.answer
        return response
    net = ConcurrentNet(fed, tamper=tamper)
    result = net.run(engine(fed, "pool-7.bj.cmcc.cid."))
    assert result.status is Status.BOGUS and result.rcode == "SERVFAIL"


def test_a_spoofed_reply_to_a_prefetch_is_not_taken(fed):
    def tamper(send, response):
        if send.query.question[0].rdtype == DNSKEY:
            response.id ^= 0x5555  # a blind spoofer's guess
        return response
    net = ConcurrentNet(fed, tamper=tamper)
    result = net.run(engine(fed, "pool-7.bj.cmcc.cid."))
    # Every DNSKEY reply fails to match: the keys are never had, so nothing validates.
    assert result.status is not Status.SECURE
    assert any("ID does not match" in str(e) for e in result.trace)


def test_prefetches_stay_within_the_query_budget(fed):
    for limit in range(1, 9):
        net = ConcurrentNet(fed)
        e = engine(fed, "pool-7.bj.cmcc.cid.", budget=Budget.start(lambda: fed.now, limit, 10.0))
        result = net.run(e)
        assert len(queries(net.batches)) <= limit
        assert result.status is Status.SECURE or "budget" in result.why


def test_surfaces_do_not_mix_and_tokens_are_checked(fed):
    e = engine(fed, "pool-7.bj.cmcc.cid.")
    first = e.next_actions()
    assert len(first) == 2 and all(isinstance(a, Send) for a in first)
    assert e.next_actions() == []  # nothing new until an outcome is reported
    with pytest.raises(EngineStateError):
        e.next_action()
    with pytest.raises(EngineStateError):
        e.on_timeout(max(a.token for a in first) + 1)
    e.on_timeout(first[0].token)
    with pytest.raises(EngineStateError):
        e.on_timeout(first[0].token)  # twice
    serial = engine(fed, "pool-7.bj.cmcc.cid.")
    assert isinstance(serial.next_action(), Send)
    with pytest.raises(EngineStateError):
        serial.next_actions()


def test_outcomes_after_done_are_refused(fed):
    e = engine(fed, "pool-7.bj.cmcc.cid.", budget=Budget.start(lambda: fed.now, 1, 10.0))
    first = e.next_actions()
    assert len(first) == 1  # no room for a prefetch in a budget of one
    e.on_timeout(first[0].token)
    done = e.next_actions()
    assert isinstance(done[0], Done)
    assert e.next_actions() == done


@pytest.mark.parametrize("edns", [True, False])
@pytest.mark.parametrize("name", ["pOOl-7.Bj.cmcc.CID.", "cid.", ".", "a.b.c.d.e.f.example."])
def test_query_wire_is_what_dnspython_renders(name, edns):
    for qtype in (dns.rdatatype.A, dns.rdatatype.DNSKEY, dns.rdatatype.DS, 64, 65380):
        for payload in (512, 1232, 4096):
            query, wire = build_query(N(name), qtype, 0xBEEF, edns, payload)
            reference = dns.message.make_query(N(name), qtype, use_edns=0 if edns else False, want_dnssec=edns,
                                               payload=payload, id=0xBEEF, flags=dns.flags.CD)
            assert wire == query.to_wire() == reference.to_wire()
            assert query == reference


async def test_the_asyncio_driver_overlaps_key_queries_over_loopback(fed):
    from resolver.drivers.asyncio_driver import drive
    async with F.serving(fed) as port:
        e = Engine("pool-7.bj.cmcc.cid.", "SVCB", fed.hints(port), fed.anchor(), Cache(lambda: fed.now),
                   now=lambda: fed.now, port=port, timeout=2.0)
        result = await drive(e)
    assert result.status is Status.SECURE and {rd.priority for rd in result.rrset} == {1, 2}
    sent = [(q.server, q.qname.lower(), q.qtype) for q in result.trace if isinstance(q, ev.QuerySent)]
    assert len(sent) == len(set(sent))  # every prefetched reply was used, none asked again
    assert {q[1] for q in sent if q[2] == "DNSKEY"} == {"cid.", "cmcc.cid.", "bj.cmcc.cid."}
    # Each zone's keys were asked together with the first query into it, not after its answer
    # (serially, a zone's DNSKEY query follows the first reply that needs the keys).
    zone_of = {q.server: q.zone for q in result.trace if isinstance(q, ev.QuerySent)}
    for zone in ("cid.", "cmcc.cid.", "bj.cmcc.cid."):
        into = [i for i, (server, _, _) in enumerate(sent) if zone_of[server] == zone]
        keys = sent.index(next(q for q in sent if q[1] == zone and q[2] == "DNSKEY"))
        assert keys == into[0], (zone, sent)
