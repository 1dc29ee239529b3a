"""The asyncio transport over loopback: matching responses to queries, TCP, timeouts."""

from __future__ import annotations

import asyncio
import struct

import dns.flags
import dns.message
import dns.name
import dns.rrset
import pytest

from resolver.drivers.transport import TransportError, exchange
from support.net import free_port


class Responder(asyncio.DatagramProtocol):
    """A UDP server that answers each query with the replies ``script(query)`` returns."""

    def __init__(self, script):
        self.script = script
        self.sources: list[tuple[str, int]] = []

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.sources.append(addr)
        query = dns.message.from_wire(data)
        for reply in self.script(query):
            self.transport.sendto(reply if isinstance(reply, bytes) else reply.to_wire(), addr)


def answer(query, address="192.0.2.1", id_delta=0, name=None):
    response = dns.message.make_response(query)
    response.id = (query.id + id_delta) & 0xFFFF
    qname = name or query.question[0].name
    if name is not None:
        response.question = [dns.rrset.RRset(dns.name.from_text(name), 1, 1)]
    response.answer.append(dns.rrset.from_text(qname, 60, "IN", "A", address))
    return response


async def serve_udp(script, host="127.0.0.1"):
    loop = asyncio.get_running_loop()
    port = free_port(host)
    transport, protocol = await loop.create_datagram_endpoint(lambda: Responder(script), local_addr=(host, port))
    return transport, protocol, (host, port)


async def test_spoofed_replies_are_ignored_until_the_real_one():
    def script(query):
        return [answer(query, "203.0.113.1", id_delta=1),        # wrong ID
                answer(query, "203.0.113.2", name="evil.cid."),  # wrong question
                b"\x00\x01not dns at all",                      # garbage
                answer(query, "192.0.2.1")]
    transport, _, server = await serve_udp(script)
    try:
        query = dns.message.make_query("pool.cid.", "A")
        response = await exchange(query, server, tcp=False, timeout=2.0)
        assert [rd.address for rd in response.answer[0]] == ["192.0.2.1"]
    finally:
        transport.close()


async def test_only_spoofed_replies_time_out():
    transport, _, server = await serve_udp(lambda q: [answer(q, id_delta=7)])
    try:
        with pytest.raises(TimeoutError):
            await exchange(dns.message.make_query("pool.cid.", "A"), server, tcp=False, timeout=0.3)
    finally:
        transport.close()


async def test_reply_from_another_port_is_not_accepted():
    host = "127.0.0.1"
    other = free_port(host)
    loop = asyncio.get_running_loop()
    side, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=(host, other))

    def script(query):
        side.sendto(answer(query).to_wire(), responder.sources[-1])
        return []
    transport, responder, server = await serve_udp(script)
    try:
        with pytest.raises(TimeoutError):
            await exchange(dns.message.make_query("pool.cid.", "A"), server, tcp=False, timeout=0.3)
    finally:
        transport.close()
        side.close()


async def test_each_query_uses_a_new_source_port():
    transport, responder, server = await serve_udp(lambda q: [answer(q)])
    try:
        for _ in range(4):
            await exchange(dns.message.make_query("pool.cid.", "A"), server, tcp=False, timeout=2.0)
        assert len({port for _, port in responder.sources}) == 4
    finally:
        transport.close()


async def test_tcp_exchange_and_mismatch():
    host = "127.0.0.1"
    port = free_port(host)
    mismatch = {"on": False}

    async def handle(reader, writer):
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        query = dns.message.from_wire(await reader.readexactly(length))
        wire = answer(query, id_delta=1 if mismatch["on"] else 0).to_wire()
        writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(handle, host, port)
    try:
        response = await exchange(dns.message.make_query("pool.cid.", "A"), (host, port), tcp=True, timeout=2.0)
        assert response.answer[0][0].address == "192.0.2.1"
        mismatch["on"] = True
        with pytest.raises(TransportError):
            await exchange(dns.message.make_query("pool.cid.", "A"), (host, port), tcp=True, timeout=2.0)
    finally:
        server.close()
        await server.wait_closed()


async def test_nothing_listening_fails_fast_or_times_out():
    port = free_port("127.0.0.1")
    with pytest.raises((TimeoutError, TransportError, OSError)):
        await exchange(dns.message.make_query("pool.cid.", "A"), ("127.0.0.1", port), tcp=False, timeout=0.5)
    with pytest.raises((TimeoutError, OSError)):
        await exchange(dns.message.make_query("pool.cid.", "A"), ("127.0.0.1", port), tcp=True, timeout=0.5)
