"""RecursiveServer over real loopback sockets, resolving the signed test hierarchy served by our
authoritative servers (tests/support/federation.py): UDP, TCP pipelining, the rendered-response
cache, CNAMEs, bogus data, hostile bytes, overload and idle connections."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
import time

import dns.asyncquery
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdatatype
import pytest

from resolver import Resolver
from resolver.service import RecursiveServer
from support import federation as F
from support.net import free_port

N = dns.name.from_text


@pytest.fixture(scope="module")
def fed():
    return F.build(now=time.time())


def query(name: str, rdtype: str, *, do: bool = False, cd: bool = False) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=do)
    if cd:
        q.flags |= dns.flags.CD
    return q


async def udp(addr, q: dns.message.Message, timeout: float = 5.0) -> dns.message.Message:
    return await dns.asyncquery.udp(q, addr[0], port=addr[1], timeout=timeout)


async def tcp(addr, q: dns.message.Message) -> dns.message.Message:
    return await dns.asyncquery.tcp(q, addr[0], port=addr[1], timeout=5)


async def read_frame(reader: asyncio.StreamReader) -> dns.message.Message:
    length = struct.unpack("!H", await reader.readexactly(2))[0]
    return dns.message.from_wire(await reader.readexactly(length))


class _Service:
    def __init__(self, fed, **server_options):
        self.fed = fed
        self.server_options = server_options

    async def __aenter__(self):
        self._serving = F.serving(self.fed)
        port = await self._serving.__aenter__()
        self.resolver = Resolver(self.fed.hints(), self.fed.anchor(), port=port, timeout=1.0)
        self.server = RecursiveServer(self.resolver, [("127.0.0.1", 0)], tcp_idle_timeout=0.5,
                                      **self.server_options)
        await self.server.start()
        self.addr = self.server.addresses[0]
        return self

    async def __aexit__(self, *exc):
        await self.server.close()
        await self._serving.__aexit__(*exc)

    @property
    def lookups(self) -> int:
        """Times the engine was consulted: hits (``lookup`` or, without a task, ``lookup_now``)
        and misses."""
        return self.resolver.hits + self.resolver.stats["misses"]


async def test_udp_and_tcp_answers_are_validated(fed):
    async with _Service(fed) as svc:
        over_udp = await udp(svc.addr, query("pool-7.bj.cmcc.cid.", "TYPE65380", do=True))
        over_tcp = await tcp(svc.addr, query("pool-7.bj.cmcc.cid.", "TYPE65380", do=True))
    for response in (over_udp, over_tcp):
        assert response.rcode() == dns.rcode.NOERROR
        assert response.flags & dns.flags.AD and response.flags & dns.flags.RA
        assert sorted(r.rdtype for r in response.answer) == [dns.rdatatype.RRSIG, 65380]
        assert response.answer[0][0].data.value == {"accel_count": 8, "accel_kind": "gpu"}


async def test_repeat_question_is_answered_from_the_rendered_cache(fed):
    async with _Service(fed) as svc:
        first = await udp(svc.addr, query("pool-7.bj.cmcc.cid.", "A", do=True))
        q = query("pool-7.bj.cmcc.cid.", "A", do=True)
        second = await udp(svc.addr, q)
        assert svc.lookups == 1  # no engine, no validation for the repeat
        assert second.id == q.id != first.id and second.answer == first.answer
        assert second.answer[0].ttl <= first.answer[0].ttl
        other_flags = await udp(svc.addr, query("pool-7.bj.cmcc.cid.", "A"))  # DO=0: other bytes
        assert svc.lookups == 2 and [r.rdtype for r in other_flags.answer] == [dns.rdatatype.A]
        await tcp(svc.addr, query("pool-7.bj.cmcc.cid.", "A", do=True))
        await tcp(svc.addr, query("pool-7.bj.cmcc.cid.", "A", do=True))
        assert svc.lookups == 3  # TCP has its own cache (sizes differ), filled once


async def test_identical_queries_in_flight_share_one_answer_each_with_its_id(fed):
    async with _Service(fed) as svc:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.connect(svc.addr)
        ids = list(range(500, 520))
        for qid in ids:
            q = query("pool-7.bj.cmcc.cid.", "SVCB", do=True)
            q.id = qid
            sock.send(q.to_wire())  # all before the first (cold) resolution can finish
        responses = [dns.message.from_wire(await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)) for _ in ids]
        sock.close()
        assert svc.lookups == 1
    assert sorted(r.id for r in responses) == ids
    assert all(r.answer == responses[0].answer and r.flags & dns.flags.AD for r in responses)


async def test_ttls_count_down_between_renderings(fed):
    now = [time.time()]
    async with F.serving(fed) as port:
        resolver = Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0, clock=lambda: now[0])
        async with RecursiveServer(resolver, [("127.0.0.1", 0)], clock=lambda: now[0]) as server:
            addr = server.addresses[0]
            first = await udp(addr, query("pool-7.bj.cmcc.cid.", "A"))
            now[0] += 0.5
            same = await udp(addr, query("pool-7.bj.cmcc.cid.", "A"))  # the rendered bytes
            now[0] += 100
            later = await udp(addr, query("pool-7.bj.cmcc.cid.", "A"))  # re-rendered from the cache
            now[0] += 250
            expired = await udp(addr, query("pool-7.bj.cmcc.cid.", "A"))  # past the TTL: fetched again
    assert first.answer[0].ttl == same.answer[0].ttl == 300
    assert later.answer[0].ttl == 199  # 300 - 100.5, rounded down
    assert expired.answer[0].ttl == 300


async def test_tcp_pipelined_queries_each_get_their_answer(fed):
    names = ["pool-7.bj.cmcc.cid.", "backup.bj.cmcc.cid.", "nothing.bj.cmcc.cid.", "pool-1.open.cid."]
    async with _Service(fed) as svc:
        reader, writer = await asyncio.open_connection(*svc.addr)
        queries = {}
        frames = b""
        for i, name in enumerate(names):
            q = query(name, "A")
            q.id = 1000 + i
            queries[q.id] = name
            wire = q.to_wire()
            frames += struct.pack("!H", len(wire)) + wire
        writer.write(frames)  # all at once: RFC 7766 pipelining
        responses = [await asyncio.wait_for(read_frame(reader), 5) for _ in names]
        writer.close()
    by_id = {r.id: r for r in responses}
    assert set(by_id) == set(queries)
    for qid, name in queries.items():
        assert by_id[qid].question[0].name == N(name)
    assert by_id[1002].rcode() == dns.rcode.NXDOMAIN
    assert by_id[1002].authority[0].rdtype == dns.rdatatype.SOA


async def test_cname_chains_insecure_and_negative_answers(fed):
    async with _Service(fed) as svc:
        chain = await udp(svc.addr, query("c3.bj.cmcc.cid.", "A", do=True))
        too_long = await udp(svc.addr, query("c9.bj.cmcc.cid.", "A"))
        insecure = await udp(svc.addr, query("pool-1.open.cid.", "A", do=True))
        nodata = await udp(svc.addr, query("pool-7.bj.cmcc.cid.", "TXT", do=True))
        wildcard = await udp(svc.addr, query("any.wild.bj.cmcc.cid.", "A", do=True))
    cnames = [r for r in chain.answer if r.rdtype == dns.rdatatype.CNAME]
    assert [r.name.to_text() for r in cnames] == ["c3.bj.cmcc.cid.", "c2.bj.cmcc.cid.",
                                                 "c1.bj.cmcc.cid.", "c0.bj.cmcc.cid."]
    assert len([r for r in chain.answer if r.rdtype == dns.rdatatype.RRSIG]) == 5
    assert chain.flags & dns.flags.AD and chain.answer[-2][0].address == "192.0.2.7"
    assert too_long.rcode() == dns.rcode.SERVFAIL  # longer than the engine's CNAME limit
    assert insecure.rcode() == dns.rcode.NOERROR and not insecure.flags & dns.flags.AD
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer and nodata.flags & dns.flags.AD
    assert {r.rdtype for r in nodata.authority} == {dns.rdatatype.SOA, dns.rdatatype.NSEC, dns.rdatatype.RRSIG}
    assert wildcard.flags & dns.flags.AD and any(r.rdtype == dns.rdatatype.NSEC for r in wildcard.authority)


async def test_bogus_data_is_servfail_unless_checking_disabled():
    bad = F.build(now=time.time())
    node = bad.zones["bj.cmcc.cid."].find_node(N("pool-7.bj.cmcc.cid."))
    a = node.find_rdataset(1, dns.rdatatype.A)
    a.clear()
    a.add(dns.rdata.from_text("IN", "A", "203.0.113.66"), 300)  # changed after signing
    async with _Service(bad) as svc:
        refused = await udp(svc.addr, query("pool-7.bj.cmcc.cid.", "A", do=True))
        again = await udp(svc.addr, query("pool-7.bj.cmcc.cid.", "A", do=True))
        unchecked = await udp(svc.addr, query("pool-7.bj.cmcc.cid.", "A", do=True, cd=True))
        assert svc.lookups == 2  # the SERVFAIL was reused, not re-validated
    assert refused.rcode() == again.rcode() == dns.rcode.SERVFAIL and not refused.answer
    assert unchecked.rcode() == dns.rcode.NOERROR and not unchecked.flags & dns.flags.AD
    assert unchecked.answer[0][0].address == "203.0.113.66"


async def test_hostile_bytes_cost_nothing_but_their_own_answer(fed):
    async with _Service(fed) as svc:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        for data in (b"", b"\x01", b"\xff" * 12, b"\x00\x01\x01\x00\x00\x01" + b"\x00" * 6 + b"\x3f",
                     bytes(range(256)) * 2):
            sock.sendto(data, svc.addr)
        sock.close()
        reader, writer = await asyncio.open_connection(*svc.addr)
        writer.write(b"\x00\x03abc")  # a frame too short to be a message: the stream is closed
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        response = await udp(svc.addr, query("pool-7.bj.cmcc.cid.", "A"))
    assert response.rcode() == dns.rcode.NOERROR


async def test_fuzzed_datagrams_and_frames_log_no_errors(fed, caplog):
    rng = random.Random(7766)
    seeds = [query(n, t, do=rng.random() < 0.5).to_wire()
             for n in ("pool-7.bj.cmcc.cid.", "c3.bj.cmcc.cid.", "x.open.cid.") for t in ("A", "SVCB", "DS")]
    mutated = []
    for _ in range(300):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 4)):
            pos = rng.randrange(len(data))
            data[pos] = rng.randrange(256)
        mutated.append(bytes(data))
    with caplog.at_level(logging.ERROR, logger="resolver.service"):
        async with _Service(fed) as svc:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            for data in mutated:
                sock.sendto(data, svc.addr)
            sock.close()
            reader, writer = await asyncio.open_connection(*svc.addr)
            writer.write(b"".join(struct.pack("!H", len(d)) + d for d in mutated[:50]))
            await writer.drain()
            for _ in range(200):  # bounded: until every resolution started has finished
                await asyncio.sleep(0.05)
                if not svc.server._tasks:
                    break
            writer.close()
            response = await udp(svc.addr, query("pool-7.bj.cmcc.cid.", "A"))
    assert response.rcode() == dns.rcode.NOERROR
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_tcp_connections_beyond_the_limit_are_closed(fed):
    async with _Service(fed, max_tcp_connections=2) as svc:
        kept = [await asyncio.open_connection(*svc.addr) for _ in range(2)]
        await asyncio.sleep(0.05)
        reader, writer = await asyncio.open_connection(*svc.addr)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        reader, writer = kept[0]
        wire = query("pool-1.open.cid.", "A").to_wire()
        writer.write(struct.pack("!H", len(wire)) + wire)
        assert (await asyncio.wait_for(read_frame(reader), 5)).answer
        for _, w in kept:
            w.close()


async def test_formerr_and_refused_over_the_wire(fed):
    async with _Service(fed) as svc:
        norec = query("pool-7.bj.cmcc.cid.", "A")
        norec.flags &= ~dns.flags.RD
        refused = await udp(svc.addr, norec)
        transfer = await tcp(svc.addr, query("bj.cmcc.cid.", "AXFR"))
    assert refused.rcode() == dns.rcode.REFUSED and transfer.rcode() == dns.rcode.REFUSED
    assert svc.lookups == 0


async def test_overload_drops_new_queries(fed):
    async with _Service(fed, max_pending=0) as svc:
        with pytest.raises(dns.exception.Timeout):
            await udp(svc.addr, query("pool-7.bj.cmcc.cid.", "A"), timeout=0.3)
        assert svc.server.dropped == 1 and svc.lookups == 0


async def test_upstream_failure_is_servfail_and_not_reused():
    dead = free_port("127.0.0.1")
    resolver = Resolver({"cid.": [f"127.0.0.1:{dead}"]}, port=dead, timeout=0.2, max_time=1.0)
    async with RecursiveServer(resolver, [("127.0.0.1", 0)]) as server:
        response = await udp(server.addresses[0], query("pool-7.bj.cmcc.cid.", "A"))
        assert response.rcode() == dns.rcode.SERVFAIL and len(server.udp_responses) == 0


async def test_idle_tcp_connections_are_closed(fed):
    async with _Service(fed) as svc:
        reader, writer = await asyncio.open_connection(*svc.addr)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # tcp_idle_timeout=0.5
        writer.close()


async def test_port_zero_binds_udp_and_tcp_on_one_port(fed):
    async with _Service(fed) as svc:
        host, port = svc.addr
        assert host == "127.0.0.1" and port > 0
        assert (await tcp(svc.addr, query("pool-1.open.cid.", "A"))).answer


# --- NSEC3 zones -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fed_nsec3():
    from support.nsec3_chain import nsec3_federation
    return nsec3_federation(F.build(now=time.time()))


async def test_nsec3_denials_and_wildcards_carry_their_proofs(fed_nsec3):
    """Answers from NSEC3 zones as a validating stub expects them (RFC 5155 §7.2): SOA and the
    NSEC3s of the proof with RRSIGs, also for a denial synthesised from the cache (RFC 8198),
    and the next-closer NSEC3 beside a wildcard expansion."""
    nsec3 = dns.rdatatype.NSEC3
    async with _Service(fed_nsec3) as s:
        first = await udp(s.addr, query("nope.bj.cmcc.cid.", "A", do=True))
        synthesised = await udp(s.addr, query("nope2.bj.cmcc.cid.", "A", do=True))
        for response in (first, synthesised):
            assert response.rcode() == dns.rcode.NXDOMAIN and response.flags & dns.flags.AD
            types = {(r.rdtype, r.covers) for r in response.authority}
            assert (dns.rdatatype.SOA, 0) in types and (nsec3, 0) in types
            assert (dns.rdatatype.RRSIG, nsec3) in types and (dns.rdatatype.RRSIG, dns.rdatatype.SOA) in types
        wild = await udp(s.addr, query("x.wild.bj.cmcc.cid.", "A", do=True))
        assert wild.rcode() == dns.rcode.NOERROR and wild.flags & dns.flags.AD and wild.answer
        assert any(r.rdtype == nsec3 for r in wild.authority)
        unsigned = await udp(s.addr, query("pool-1.open.cid.", "A", do=True))
        assert unsigned.rcode() == dns.rcode.NOERROR and not unsigned.flags & dns.flags.AD and unsigned.answer


async def test_rrsig_queries_are_answered_from_the_cache_without_ad(fed):
    """QTYPE RRSIG (spec/service.md §2): REFUSED with an EDE until an RRset of the name is cached,
    then the cached RRsets' signatures, never with AD (as Unbound gives them out)."""
    async with _Service(fed) as s:
        first = await udp(s.addr, query("pool-7.bj.cmcc.cid.", "RRSIG", do=True))
        assert first.rcode() == dns.rcode.REFUSED
        assert any(o.otype == 15 for o in first.options)  # EDE
        await udp(s.addr, query("pool-7.bj.cmcc.cid.", "A", do=True))
        await udp(s.addr, query("pool-7.bj.cmcc.cid.", "AAAA", do=True))
        again = await tcp(s.addr, query("pool-7.bj.cmcc.cid.", "RRSIG", do=True))
        assert again.rcode() == dns.rcode.NOERROR and not again.flags & dns.flags.AD
        covered = {r.covers for r in again.answer if r.rdtype == dns.rdatatype.RRSIG}
        assert {dns.rdatatype.A, dns.rdatatype.AAAA} <= covered
        assert all(r.rdtype == dns.rdatatype.RRSIG for r in again.answer)
