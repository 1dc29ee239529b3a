"""AuthServer over real loopback sockets: UDP, TCP framing, TC → TCP, garbage, timeouts."""

from __future__ import annotations

import asyncio
import socket
import struct

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import pytest

from resolver.auth.server import AuthServer
from resolver.auth.store import ZoneStore
from support import zones
from support.net import free_port


@pytest.fixture(scope="module")
def signed() -> zones.SignedZones:
    return zones.build()


@pytest.fixture
async def server(signed):
    async with AuthServer(ZoneStore([signed.parent]), [("127.0.0.1", 0)],
                          tcp_idle_timeout=0.5) as srv:
        yield srv


def query(name: str, rdtype: str, **kw) -> dns.message.Message:
    return dns.message.make_query(name, rdtype, use_edns=0, payload=1232, **kw)


async def read_frame(reader: asyncio.StreamReader) -> dns.message.Message:
    length = struct.unpack("!H", await reader.readexactly(2))[0]
    return dns.message.from_wire(await reader.readexactly(length))


async def test_addresses_report_the_bound_port(server):
    [(host, port)] = server.addresses
    assert host == "127.0.0.1" and port > 0


async def test_udp_and_tcp_answer(server):
    host, port = server.addresses[0]
    r = await dns.asyncquery.udp(query("pool-7.ex.cid.", "SVCB"), host, port=port, timeout=5)
    assert r.flags & dns.flags.AA and r.answer[0][0].params
    r = await dns.asyncquery.tcp(query("pool-7.ex.cid.", "CAPS", want_dnssec=True), host,
                                 port=port, timeout=5)
    assert r.flags & dns.flags.AA and len(r.answer) == 2


async def test_truncated_udp_then_tcp(server):
    host, port = server.addresses[0]
    q = query("big.ex.cid.", "TXT")
    r = await dns.asyncquery.udp(q, host, port=port, timeout=5)
    assert r.flags & dns.flags.TC and not r.answer
    r = await dns.asyncquery.tcp(q, host, port=port, timeout=5)
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == 40


async def test_several_queries_on_one_tcp_connection(server):
    host, port = server.addresses[0]
    reader, writer = await asyncio.open_connection(host, port)
    try:
        queries = [query(n, "A") for n in ("pool-7.ex.cid.", "nope.ex.cid.", "ns1.ex.cid.")]
        # Pipelined, and the second frame split across writes (RFC 7766 §6.2.1).
        wires = [q.to_wire() for q in queries]
        blob = b"".join(struct.pack("!H", len(w)) + w for w in wires)
        writer.write(blob[:5])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(blob[5:])
        await writer.drain()
        answers = [await asyncio.wait_for(read_frame(reader), 5) for _ in queries]
        assert [a.id for a in answers] == [q.id for q in queries]
        assert [a.rcode() for a in answers] == [dns.rcode.NOERROR, dns.rcode.NXDOMAIN,
                                                dns.rcode.NOERROR]
    finally:
        writer.close()


async def test_udp_garbage_does_not_stop_the_server(server):
    host, port = server.addresses[0]
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect((host, port))
        for junk in (b"", b"\x00", b"\xff" * 11, b"\x12\x34" + b"\xff" * 40):
            sock.send(junk)
        sock.send(b"\x12\x34\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00")  # header, no question
        reply = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
        r = dns.message.from_wire(reply)
        assert r.id == 0x1234 and r.rcode() == dns.rcode.FORMERR
    r = await dns.asyncquery.udp(query("ns1.ex.cid.", "A"), host, port=port, timeout=5)
    assert r.answer


async def test_tcp_garbage_closes_only_that_connection(server):
    host, port = server.addresses[0]
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"\x00\x03abc")  # a frame too short to hold a header: dropped, conn closed
    await writer.drain()
    assert await asyncio.wait_for(reader.read(100), 5) == b""
    writer.close()
    r = await dns.asyncquery.tcp(query("ns1.ex.cid.", "A"), host, port=port, timeout=5)
    assert r.answer


async def test_idle_tcp_connection_is_closed(server):
    host, port = server.addresses[0]
    reader, writer = await asyncio.open_connection(host, port)
    try:
        # Idle timeout is 0.5 s here; EOF must arrive well within the 5 s bound.
        assert await asyncio.wait_for(reader.read(100), 5) == b""
    finally:
        writer.close()


async def test_connection_limit(signed):
    async with AuthServer(ZoneStore([signed.parent]), [("127.0.0.1", 0)],
                          max_tcp_connections=1) as srv:
        host, port = srv.addresses[0]
        _, w1 = await asyncio.open_connection(host, port)
        await asyncio.sleep(0.05)
        r2, w2 = await asyncio.open_connection(host, port)
        assert await asyncio.wait_for(r2.read(10), 5) == b""  # second one refused
        w1.close()
        w2.close()


async def test_two_servers_in_one_loop_and_fixed_port(signed):
    port = free_port()
    async with AuthServer(ZoneStore([signed.parent]), [("127.0.0.1", port)]) as a, \
            AuthServer(ZoneStore([signed.child]), [("127.0.0.2", 0)]) as b:
        assert a.addresses == [("127.0.0.1", port)]
        ra = await dns.asyncquery.udp(query("ex.cid.", "SOA"), "127.0.0.1", port=port,
                                      timeout=5)
        rb = await dns.asyncquery.udp(query("sub.ex.cid.", "SOA"), *b.addresses[0][:1],
                                      port=b.addresses[0][1], timeout=5)
        assert ra.answer[0].name.to_text() == "ex.cid."
        assert rb.answer[0].name.to_text() == "sub.ex.cid."


async def test_port_in_use_is_an_error(server):
    host, port = server.addresses[0]
    other = AuthServer(ZoneStore(), [(host, port)])
    with pytest.raises(OSError):
        await other.start()
    assert other.addresses == []


async def test_zone_replaced_while_serving(signed, server):
    host, port = server.addresses[0]
    q = query("node-1.sub.ex.cid.", "A")
    r = await dns.asyncquery.udp(q, host, port=port, timeout=5)
    assert not r.flags & dns.flags.AA  # referral
    server.store.add(signed.child)
    r = await dns.asyncquery.udp(q, host, port=port, timeout=5)
    assert r.flags & dns.flags.AA and r.answer
