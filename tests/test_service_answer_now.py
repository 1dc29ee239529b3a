"""Answers made without a task (RecursiveServer.answer_now, Resolver.lookup_now) and rdata wire
made once (answer._rdata_wire): the same bytes as the task path and as dnspython.

Once a second every popular question's rendered response expires and is rendered again from
the same cached RRsets; ``answer_now`` does that at once when the engine's hot layer holds the
data. Its bytes must be exactly those ``answer`` (the task path) gives at the same moment, for
every shape of answer: validated, with DO and RRSIGs, CNAME chains, NODATA and NXDOMAIN with
their proofs, wildcards, insecure data, EDNS or not, TCP or UDP.
"""

from __future__ import annotations

import time

import dns.asyncquery
import dns.flags
import dns.message
import dns.rdatatype
import pytest

from resolver.service import answer as answer_module
from resolver.service.answer import Request
from support import federation as F
from support.recursive_front import QUESTIONS, served
from support.recursive_front import request as make_request


@pytest.fixture(scope="module")
def fed():
    return F.build(now=time.time())


def _served(fed, now: list[float]):
    return served(fed, now, "127.0.114.43")


def _request(name: str, rdtype: str, *, do: bool, edns: int, tcp: bool, qid: int) -> tuple[Request, bytes]:
    parsed, wire = make_request(name, rdtype, do=do, edns=edns, tcp=tcp, qid=qid)
    return parsed, wire[2:]


async def test_answers_without_a_task_are_the_task_paths_bytes(fed):
    now = [time.time()]
    async with _served(fed, now) as (resolver, server):
        cases = [_request(name, rdtype, do=do, edns=edns, tcp=tcp, qid=i)
                 for i, (name, rdtype) in enumerate(QUESTIONS)
                 for do in (False, True) for edns in (-1, 0) for tcp in (False, True)
                 if not (do and edns < 0)]
        assert all(server.answer_now(request, key) is None for request, key in cases)  # cold
        for request, key in cases:
            await server.answer(request, key)  # resolves and fills the engine's cache
        answered, last = 0, b""
        for step in (1.5, 40.0):  # past the rendered responses' second, TTLs lower
            now[0] += step
            for request, key in cases:
                server.udp_responses.clear()
                server.tcp_responses.clear()
                misses = resolver.stats["misses"]
                fast = server.answer_now(request, key)
                assert resolver.stats["misses"] == misses  # never a resolution
                server.udp_responses.clear()
                server.tcp_responses.clear()
                slow = await server.answer(request, key)
                if fast is None:
                    continue  # not in the hot layer (CNAME chains, NSEC-proven denials)
                answered += 1
                last = fast
                assert fast == slow, (request, dns.message.from_wire(fast), dns.message.from_wire(slow))
                assert (server.tcp_responses if request.tcp else server.udp_responses).get(key) == fast[2:]
        assert answered >= len(cases)  # most shapes are answered without a task, both steps
    later = dns.message.from_wire(last)
    assert (later.answer or later.authority)[0].ttl < 300 - 40


async def test_udp_repeat_after_expiry_is_answered_in_its_batch_without_a_task(fed):
    now = [time.time()]
    async with _served(fed, now) as (resolver, server):
        addr = server.addresses[0]
        q = dns.message.make_query("pool-7.bj.cmcc.cid.", "SVCB", use_edns=0)
        first = await dns.asyncquery.udp(q, addr[0], port=addr[1], timeout=5)
        now[0] += 10.5
        spawned = []
        original = server.spawn
        server.spawn = lambda *args: spawned.append(args) or original(*args)  # observe only
        again = await dns.asyncquery.udp(q, addr[0], port=addr[1], timeout=5)
        assert spawned == []
    assert first.answer[0].ttl == 300  # 300 - 10.5 s, rounded down:
    assert [r.to_text() for r in again.answer] == [r.to_text().replace(" 300 ", " 289 ") for r in first.answer]


def test_rdata_wire_is_dnspythons_and_bounded(fed):
    rdatas = [rdata for zone in fed.zones.values() for node in zone.nodes.values()
              for rdataset in node.rdatasets for rdata in rdataset]
    assert len({r.rdtype for r in rdatas}) >= 8  # SVCB, RRSIG, NSEC, DNSKEY, SOA, CAPS, ...
    for rdata in rdatas:
        assert answer_module._rdata_wire(rdata) == rdata.to_wire()
        assert answer_module._rdata_wire(rdata) == rdata.to_wire()  # the kept bytes
    limit = answer_module.MAX_RDATA_WIRE
    answer_module.MAX_RDATA_WIRE = 16
    answer_module._RDATA_WIRE.clear()
    try:
        for rdata in rdatas[:40]:
            answer_module._rdata_wire(rdata)
            assert len(answer_module._RDATA_WIRE) <= 16
    finally:
        answer_module.MAX_RDATA_WIRE = limit
