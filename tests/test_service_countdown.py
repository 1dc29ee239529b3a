"""Rendered responses counted down instead of rendered again (service/responses.py).

A response kept for identical queries expires after a second; while the cache entries it was
rendered from still answer its question, its bytes are reused with every TTL lowered to the
answer's remaining TTL. The claim is that this gives exactly the bytes a fresh rendering would,
so the tests compare the two: the unit rule (``count_down`` of a rendering at ``cap`` equals the
rendering at ``cap' <= cap``, for records whose own TTLs are below, at and above the cap), the
TTL offsets against dnspython's reading of the same bytes, hostile bytes (never an exception,
never counted down), and the server end to end on the federation: counted down while the same
entries answer, rendered again (never counted down) once they are replaced or flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
import time

import dns.asyncquery
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from resolver.engine.result import Lookup
from resolver.service import RecursiveServer
from resolver.service.answer import Request, respond
from resolver.service.responses import REFRESH, ResponseCache, Source, count_down, ttl_fields
from resolver.status import Status
from support import federation as F
from support.recursive_front import QUESTIONS, served
from support.recursive_front import request as _request

C3 = dns.name.from_text("c3.bj.cmcc.cid.")  # a CNAME
# The rule itself, on hand-made lookups ------------------------------------------------------------
def _rrset(name: str, ttl: int, rdtype: str, *texts: str) -> dns.rrset.RRset:
    return dns.rrset.from_text(name, ttl, "IN", rdtype, *texts)


def _lookups() -> list[tuple[Lookup, Lookup | None]]:
    """Answers whose records' own TTLs lie below, at and above the answer's TTL."""
    soa = _rrset("bj.cmcc.cid.", 3600, "SOA", "ns.bj.cmcc.cid. hostmaster.bj.cmcc.cid. 1 7200 900 1209600 45")
    nsec = _rrset("nothing.bj.cmcc.cid.", 20, "NSEC", "pool-1.bj.cmcc.cid. A RRSIG NSEC")
    return [
        (Lookup(dns.name.from_text("a.cid."), 1, "NOERROR", Status.SECURE, "", 250,
                rrset=_rrset("a.cid.", 90, "A", "192.0.2.1", "192.0.2.2")), None),
        (Lookup(dns.name.from_text("a.cid."), 1, "NOERROR", Status.INSECURE, "", 250,
                rrset=_rrset("a.cid.", 250, "A", "192.0.2.1"),
                chain=(_rrset("b.cid.", 400, "CNAME", "a.cid."), _rrset("c.cid.", 30, "CNAME", "b.cid.")),
                chain_rrsigs=(None, None)), None),
        # NODATA with the SOA looked up on its own: its TTL is min(cap, SOA TTL, MINIMUM 45).
        (Lookup(dns.name.from_text("nothing.bj.cmcc.cid."), 1, "NOERROR", Status.SECURE, "", 250,
                authority=(nsec,)),
         Lookup(dns.name.from_text("bj.cmcc.cid."), 6, "NOERROR", Status.SECURE, "", 999, rrset=soa)),
        (Lookup(dns.name.from_text("nothing.bj.cmcc.cid."), 1, "NXDOMAIN", Status.INSECURE, "", 250,
                authority=(_rrset("bj.cmcc.cid.", 10, "SOA", "ns.bj.cmcc.cid. hostmaster.bj.cmcc.cid. 1 7200 900 1209600 300"),)), None),
    ]


@pytest.mark.parametrize("shape", range(4))
@pytest.mark.parametrize("edns,do,tcp", [(-1, False, False), (0, False, False), (0, True, True)])
def test_counting_down_a_rendering_is_rendering_at_the_lower_ttl(shape, edns, do, tcp):
    lookup, soa = _lookups()[shape]
    request, _ = _request(str(lookup.qname), dns.rdatatype.to_text(lookup.rdtype), do=do, edns=edns, tcp=tcp)
    first, cap = respond(request, lookup, soa)
    body = first[2:]
    fields = ttl_fields(body)
    assert fields is not None and len(fields) >= 1
    ttls = {struct.unpack_from("!I", body, at)[0] for at in fields}
    assert min(ttls) < cap  # some record's own TTL is below the cap: min(old, cap'), not cap'
    for later in (cap, cap - 1, 200, 89, 45, 44, 30, 10, 1):
        again, _ = respond(request, lookup.replaced(ttl=later), soa)
        assert count_down(body, fields, later) == again[2:], later


def test_ttl_fields_are_where_dnspython_reads_the_ttls():
    for shape in range(4):
        lookup, soa = _lookups()[shape]
        for edns, do in ((-1, False), (0, False), (0, True)):
            request, _ = _request(str(lookup.qname), "A", do=do, edns=edns, tcp=False)
            response, _ = respond(request, lookup, soa)
            body = response[2:]
            fields = ttl_fields(body)
            message = dns.message.from_wire(response)
            expected = [rrset.ttl for section in (message.answer, message.authority, message.additional)
                        for rrset in section for _ in rrset]
            assert [struct.unpack_from("!I", body, at)[0] for at in fields] == expected
            # Every other byte is left alone, the OPT (DO in its TTL field) included.
            marked = bytearray(body)
            for at in fields:
                marked[at:at + 4] = struct.pack("!I", 0x7FFFFFF0)
            parsed = dns.message.from_wire(response[:2] + bytes(marked))
            assert all(rrset.ttl == 0x7FFFFFF0 for section in (parsed.answer, parsed.authority)
                       for rrset in section)
            assert parsed.edns == message.edns and parsed.ednsflags == message.ednsflags


def test_hostile_bytes_are_never_counted_down():
    lookup, soa = _lookups()[2]
    request, _ = _request("nothing.bj.cmcc.cid.", "A", do=True, edns=0, tcp=False)
    body = respond(request, lookup, soa)[0][2:]
    rng = random.Random(5)
    cases = [body[:n] for n in range(len(body))]  # every truncation
    cases += [body + b"\x00"]  # trailing bytes
    cases += [bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 80))) for _ in range(500)]
    for _ in range(500):  # single-byte corruptions of a real response
        bad = bytearray(body)
        bad[rng.randrange(len(bad))] = rng.getrandbits(8)
        cases.append(bytes(bad))
    cases.append(body[:10] + b"\x40\x00" + body[12:])  # a label of the reserved 01 kind
    read = 0
    for case in cases:
        fields = ttl_fields(case)  # never raises
        if fields is None:
            continue
        read += 1
        assert all(0 <= at and at + 4 <= len(case) for at in fields)
        with contextlib.suppress(dns.exception.DNSException, ValueError, struct.error):
            ours = count_down(case, fields, 1)
            assert len(ours) == len(case)
    assert ttl_fields(body[:-1]) is None and ttl_fields(body + b"\x00") is None
    assert ttl_fields(body) is not None and read < len(cases)


def test_response_cache_counts_down_only_its_own_source_within_its_cap():
    now = [100.0]
    cache = ResponseCache(clock=lambda: now[0])
    lookup, soa = _lookups()[0]
    request, wire = _request("a.cid.", "A", do=False, edns=0, tcp=False)
    response, cap = respond(request, lookup, soa)
    source = Source(lookup.qname, 1, object())
    cache.put(wire[2:], response, cap, source)
    assert cache.source(wire[2:]) is source
    assert cache.counted_down(wire[2:], Source(lookup.qname, 1, source.entry), cap - 1) is None  # not its source
    assert cache.counted_down(wire[2:], source, cap + 1) is None  # TTLs never go up
    assert cache.counted_down(wire[2:], source, 0) is None  # an expired answer is not reused
    now[0] += 1.5
    assert cache.get(wire[2:]) is None  # expired, its Source kept
    assert cache.source(wire[2:]) is source
    body = cache.counted_down(wire[2:], source, cap - 1)
    assert body == respond(request, lookup.replaced(ttl=cap - 1), soa)[0][2:]
    assert cache.get(wire[2:]) == body and cache.counted == 1
    now[0] += REFRESH
    assert cache.get(wire[2:]) is None  # kept one second more, as a rendering is
    cache.put(wire[2:], response, cap)  # without a source: never counted down
    assert cache.source(wire[2:]) is None and cache.counted_down(wire[2:], source, 1) is None
    now[0] += 1.5
    assert cache.get(wire[2:]) is None and len(cache) == 0  # expired and dropped


# The server, end to end -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fed():
    return F.build(now=time.time())


def _served(fed, now: list[float]):
    return served(fed, now, "127.0.114.44")


async def _fresh(server: RecursiveServer, request: Request, wire: bytes) -> bytes:
    """The task path's rendering now, from empty response caches (the caches put back after)."""
    kept = dict(server.udp_responses._entries), dict(server.tcp_responses._entries)
    server.udp_responses.clear()
    server.tcp_responses.clear()
    try:
        return await server.answer(request, wire[2:])
    finally:
        server.udp_responses._entries, server.tcp_responses._entries = kept


async def _handled(server: RecursiveServer, wire: bytes, tcp: bool) -> tuple[bytes, bool]:
    """``handle``'s response, and whether it came at once (else from a task: CNAME chains,
    NSEC-proven denials go through the engine, which answers them from its cache)."""
    later = asyncio.get_running_loop().create_future()
    got = server.handle(wire, tcp, later.set_result)
    return (got, True) if isinstance(got, bytes) else (await asyncio.wait_for(later, 5), False)


async def test_server_counts_down_exactly_what_it_would_render(fed):
    now = [time.time()]
    async with _served(fed, now) as (resolver, server):
        cases = [_request(name, rdtype, do=do, edns=edns, tcp=tcp, qid=i)
                 for i, (name, rdtype) in enumerate(QUESTIONS)
                 for do in (False, True) for edns in (-1, 0) for tcp in (False, True) if not (do and edns < 0)]
        for request, wire in cases:
            await server.answer(request, wire[2:])  # resolves: the engine's cache is filled
        for request, wire in cases:
            now[0] += 0.001
            server.handle(wire, request.tcp, lambda response: None)  # rendered from hot hits, with a Source
        counted = 0
        for step in (1.5, 1.0, 40.0, 0.25, 100.0):
            now[0] += step
            for request, wire in cases:
                cache = server.tcp_responses if request.tcp else server.udp_responses
                before, misses = cache.counted, resolver.stats["misses"]
                got, now_ = await _handled(server, wire, request.tcp)
                assert not now_ or resolver.stats["misses"] == misses  # never a resolution
                assert now_ or cache.counted == before
                assert got == await _fresh(server, request, wire), (request, dns.message.from_wire(got))
                counted += cache.counted - before
        # Every shape but the CNAME chain (never in the hot layer: rendered again from the
        # engine's task) is counted down each time its second is up: 4 of the 5 steps.
        assert counted == 4 * sum(1 for request, _ in cases if request.query.qname != C3)
        last = dns.message.from_wire(got)
        assert (last.answer or last.authority)[0].ttl < 300 - 140


async def test_replaced_or_flushed_entries_are_rendered_again(fed):
    now = [time.time()]
    async with _served(fed, now) as (resolver, server):
        request, wire = _request("pool-7.bj.cmcc.cid.", "SVCB", do=True, edns=0, tcp=False)
        negative, nwire = _request("pool-7.bj.cmcc.cid.", "TXT", do=False, edns=0, tcp=False)
        for r, w in ((request, wire), (negative, nwire)):
            await server.answer(r, w[2:])
            server.handle(w, False, lambda response: None)
        assert server.udp_responses.source(wire[2:]) is not None
        # The answer's entry flushed: the same question is resolved again, not counted down.
        now[0] += 1.5
        resolver.cache.flush("pool-7.bj.cmcc.cid.")
        counted = server.udp_responses.counted
        assert server.handle(wire, False, lambda response: None) is not None
        assert server.udp_responses.counted == counted
        assert resolver.stats["misses"] > 0
        # Past the TTL: new entries, new bytes (TTL 300 again), never the old ones counted down.
        for r, w in ((request, wire), (negative, nwire)):
            await server.answer(r, w[2:])
            server.handle(w, False, lambda response: None)
        now[0] += 301
        fresh = await _fresh(server, request, wire)
        counted = server.udp_responses.counted
        for r, w in ((request, wire), (negative, nwire)):
            server.handle(w, False, lambda response: None)
        assert server.udp_responses.counted == counted
        assert dns.message.from_wire(fresh).answer[0].ttl == 300
        # The entry replaced by other data with a lower TTL (within the old bytes' cap): the
        # new records are rendered, the old bytes are not counted down to the new TTL.
        a, awire = _request("pool-7.bj.cmcc.cid.", "A", do=False, edns=0, tcp=False)
        await server.answer(a, awire[2:])
        server.handle(awire, False, lambda response: None)
        assert server.udp_responses.source(awire[2:]) is not None
        now[0] += 1.5
        resolver.cache.put_rrset(dns.rrset.from_text("pool-7.bj.cmcc.cid.", 100, "IN", "A", "192.0.2.99"), None,
                                 Status.INSECURE, "replaced")
        counted = server.udp_responses.counted
        got = server.handle(awire, False, lambda response: None)
        assert server.udp_responses.counted == counted
        assert got == await _fresh(server, a, awire)
        assert [r.to_text() for r in dns.message.from_wire(got).answer] == ["pool-7.bj.cmcc.cid. 100 IN A 192.0.2.99"]


async def test_a_negative_answer_overtaken_by_data_is_rendered_again(fed):
    """NODATA counted down only while the negative entry still answers: once an RRset of the
    type is stored at the name, the new data is rendered, the old denial never counted down."""
    now = [time.time()]
    async with _served(fed, now) as (resolver, server):
        negative, wire = _request("pool-7.bj.cmcc.cid.", "TXT", do=False, edns=0, tcp=False)
        await server.answer(negative, wire[2:])
        server.handle(wire, False, lambda response: None)
        assert server.udp_responses.source(wire[2:]) is not None
        now[0] += 1.5
        assert (await _handled(server, wire, False))[1] and server.udp_responses.counted == 1
        now[0] += 1.5
        resolver.cache.put_rrset(dns.rrset.from_text("pool-7.bj.cmcc.cid.", 100, "IN", "TXT", '"now here"'), None,
                                 Status.INSECURE, "stored since")
        got, _ = await _handled(server, wire, False)
        assert server.udp_responses.counted == 1
        assert got == await _fresh(server, negative, wire)
        assert [r.to_text() for r in dns.message.from_wire(got).answer] == ['pool-7.bj.cmcc.cid. 100 IN TXT "now here"']


async def test_an_answer_due_for_prefetch_is_not_counted_down(fed):
    """In its last 10 % of TTL a hit triggers a prefetch (cache.near_expiry): the count-down must
    leave that to the lookup path, as the rendering it stands in for does."""
    now = [time.time()]
    async with _served(fed, now) as (resolver, server):
        request, wire = _request("pool-7.bj.cmcc.cid.", "SVCB", do=False, edns=0, tcp=False)
        await server.answer(request, wire[2:])
        server.handle(wire, False, lambda response: None)
        now[0] += 1.5
        got, at_once = await _handled(server, wire, False)
        assert at_once and server.udp_responses.counted == 1
        now[0] += 300 - 1.5 - 20  # 20 s left of 300: within the last 30
        prefetches = resolver.stats["prefetch"]
        got, at_once = await _handled(server, wire, False)
        assert server.udp_responses.counted == 1 and not at_once
        assert resolver.stats["prefetch"] == prefetches + 1
        assert dns.message.from_wire(got).answer[0].ttl <= 20


async def test_udp_listener_counts_down_in_the_batch(fed):
    now = [time.time()]
    async with _served(fed, now) as (resolver, server):
        host, port = server.addresses[0]
        q = dns.message.make_query("pool-7.bj.cmcc.cid.", "SVCB", use_edns=0)
        first = await dns.asyncquery.udp(q, host, port=port, timeout=5)  # resolved
        await dns.asyncquery.udp(q, host, port=port, timeout=5)  # in the response cache: no Source yet
        now[0] += 1.5
        await dns.asyncquery.udp(q, host, port=port, timeout=5)  # rendered again, from a hot hit
        now[0] += 9.0
        spawned = []
        original = server.spawn
        server.spawn = lambda *args: spawned.append(args) or original(*args)  # observe only
        counted = server.udp_responses.counted
        again = await dns.asyncquery.udp(q, host, port=port, timeout=5)
        assert spawned == [] and server.udp_responses.counted == counted + 1
    assert first.answer[0].ttl == 300
    assert [r.to_text() for r in again.answer] == [r.to_text().replace(" 300 ", " 289 ") for r in first.answer]
