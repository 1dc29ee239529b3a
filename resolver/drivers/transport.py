"""One DNS exchange over UDP or TCP with asyncio: the only place the resolver touches sockets.

UDP: a fresh connected socket per query, so the kernel picks a new random source port each
time (RFC 5452 §9.2) and drops datagrams from other addresses; a datagram is accepted only if
its source address and port, ID and question match the query — anything else is ignored and
we keep waiting until the deadline (a spoofer must guess ID *and* port). TCP: RFC 1035 §4.2.2
two-byte length framing, one query per connection.
"""

from __future__ import annotations

import asyncio
import socket
import struct

import dns.exception
import dns.message

MAX_TCP_MESSAGE = 65535


class TransportError(Exception):
    """The exchange failed in a way other than a timeout (refused, reset, malformed)."""


class _UdpExchange(asyncio.DatagramProtocol):
    def __init__(self, query: dns.message.Message, server: tuple[str, int]):
        self.query = query
        self.server = server
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr) -> None:
        if self.done.done() or (addr[0], addr[1]) != self.server:
            return
        try:
            response = dns.message.from_wire(data)
        except (dns.exception.DNSException, ValueError):
            return  # garbage, perhaps spoofed: keep waiting for the real answer
        if response.id == self.query.id and response.question == self.query.question:
            self.done.set_result(response)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(TransportError(f"{exc.strerror or exc}"))

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_exception(TransportError("socket closed"))


async def query_udp(query: dns.message.Message, server: tuple[str, int], timeout: float) -> dns.message.Message:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    async with asyncio.timeout(timeout):
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _UdpExchange(query, server), remote_addr=server, family=family)
        try:
            transport.sendto(query.to_wire())
            return await protocol.done
        finally:
            transport.close()


async def query_tcp(query: dns.message.Message, server: tuple[str, int], timeout: float) -> dns.message.Message:
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(server[0], server[1])
        try:
            wire = query.to_wire()
            writer.write(struct.pack("!H", len(wire)) + wire)
            await writer.drain()
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            data = await reader.readexactly(length)
        except asyncio.IncompleteReadError:
            raise TransportError("connection closed before a full response") from None
        finally:
            writer.close()
    try:
        response = dns.message.from_wire(data)
    except (dns.exception.DNSException, ValueError) as exc:
        raise TransportError(f"malformed response: {exc}") from None
    if response.id != query.id or response.question != query.question:
        raise TransportError("response does not match the query")
    return response


async def exchange(query: dns.message.Message, server: tuple[str, int], *, tcp: bool,
                   timeout: float) -> dns.message.Message:
    """Raises TimeoutError on timeout, TransportError / OSError on other failures."""
    if tcp:
        return await query_tcp(query, server, timeout)
    return await query_udp(query, server, timeout)
