"""One DNS exchange over UDP or TCP with asyncio: the only place the resolver touches sockets.

UDP: a fresh connected socket per query, so the kernel picks a new random source port each
time (RFC 5452 §9.2; Linux draws ephemeral UDP ports at random) and drops datagrams from
other addresses; a datagram is accepted only if its source address and port, ID and question
match the query byte for byte, 0x20 case included (``engine.case.match``) — anything else is
ignored and we keep waiting until the deadline (a spoofer must guess ID, port *and* case).
A datagram that differs from the question only in letter case is held back: if no exact
reply follows within about two more round trips it is handed over (the engine then counts
it against the server's 0x20 support and never uses its data). TCP: RFC 1035 §4.2.2 two-byte
length framing, one query per connection.
"""

from __future__ import annotations

import asyncio
import _socket
import errno
import socket
import struct

import dns.exception
import dns.message

from ..engine.case import Match, exact_echo, match, parse_reply

MAX_TCP_MESSAGE = 65535


class TransportError(OSError):
    """The exchange failed in a way other than a timeout (refused, reset, malformed); ``str``
    is the reason (see ``reason``). An OSError, as the socket errors it stands for."""


# errno -> the reason reported (dig's words). Refused and unreachable come back at once (ICMP on
# the connected UDP socket, RST or no route for TCP): the server is not there, so the engine
# moves on without waiting and holds the server down (engine/selection.py UNREACHABLE).
_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.EHOSTDOWN: "host unreachable",
    errno.ECONNRESET: "connection reset",
    errno.EPIPE: "connection reset",
    errno.EADDRNOTAVAIL: "address not available",
}


def reason(exc: OSError) -> str:
    """One short lower-case reason for a failed exchange, as dig words it."""
    text = _REASONS.get(exc.errno)
    if text is not None:
        return text
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


_NONBLOCK_FLAG = getattr(socket, "SOCK_NONBLOCK", 0)  # Linux: the socket is made non-blocking
_UDP_NONBLOCKING = socket.SOCK_DGRAM | _NONBLOCK_FLAG
MIN_CASE_GRACE = 0.05  # seconds to wait for an exact reply after a case-only mismatch


class _UdpExchange:
    """One query on its own connected, non-blocking UDP socket, read straight from the event
    loop's reader callback. (An asyncio DatagramTransport per query costs about twice as much
    CPU as the exchange itself on loopback; the checks are the same.)"""

    def __init__(self, query: dns.message.Message, server: tuple[str, int], sock: _socket.socket, wire: bytes):
        self.query = query
        self.wire = wire
        self.server = server
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future = self.loop.create_future()
        self.sent_at = self.loop.time()
        self._held: asyncio.TimerHandle | None = None

    def readable(self) -> None:
        for _ in range(64):  # bounded: a flood of junk cannot keep the loop here
            try:
                data, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ICMP port unreachable etc. on the connected socket
                if not self.done.done():
                    self.done.set_exception(TransportError(reason(exc)))
                return
            self.datagram_received(data, addr)
            if self.done.done():
                return

    def datagram_received(self, data: bytes, addr) -> None:
        if self.done.done() or (addr[0], addr[1]) != self.server:
            return
        try:
            response = parse_reply(data, self.query, self.wire)
        except (dns.exception.DNSException, ValueError):
            return  # garbage, perhaps spoofed: keep waiting for the real answer
        verdict = Match.EXACT if exact_echo(self.wire, data) else match(self.query, response)
        if verdict in (Match.EXACT, Match.NO_QUESTION):
            if self._held is not None:
                self._held.cancel()
            self.done.set_result(response)
        elif verdict is Match.CASE and self._held is None:
            # Probably a spoof racing the real reply: give the real one a moment. If none
            # comes, the server does not echo case and the engine must learn that.
            grace = max(MIN_CASE_GRACE, 2 * (self.loop.time() - self.sent_at))
            self._held = self.loop.call_later(grace, self._release, response)

    def expire(self) -> None:
        if not self.done.done():
            self.done.set_exception(TimeoutError())

    def _release(self, response: dns.message.Message) -> None:
        if not self.done.done():
            self.done.set_result(response)


def start_udp(query: dns.message.Message, server: tuple[str, int], timeout: float,
              wire: bytes | None = None) -> asyncio.Future:
    """Send ``query`` over UDP and return the future of its reply: a response, or
    TimeoutError, or TransportError (refused, unreachable, ...). No coroutine and no task:
    the socket, reader and timer are released by the future's own done callback, also when
    the caller cancels it (an unused prefetch)."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    wire = query.to_wire() if wire is None else wire
    # A fresh socket per query: connect() makes the kernel pick a random ephemeral source
    # port (RFC 5452 §9.2) and drop datagrams from any other address or port. The C socket
    # type itself: socket.socket's Python layer (makefile reference counts) is not used here.
    try:
        sock = _socket.socket(family, _UDP_NONBLOCKING)  # non-blocking from birth: no fcntl call
    except OSError as exc:
        failed = loop.create_future()
        failed.set_exception(TransportError(reason(exc)))
        return failed
    exchange = _UdpExchange(query, server, sock, wire)
    done = exchange.done
    fd = -1
    timer: asyncio.TimerHandle | None = None

    def release(_: asyncio.Future) -> None:
        if timer is not None:
            timer.cancel()
        if fd >= 0:
            loop.remove_reader(fd)
        if exchange._held is not None:
            exchange._held.cancel()
        sock.close()

    done.add_done_callback(release)
    try:
        if not _NONBLOCK_FLAG:
            sock.setblocking(False)
        sock.connect(server)
        fd = sock.fileno()
        loop.add_reader(fd, exchange.readable)
        # The deadline as a plain timer on the exchange's future (what asyncio.timeout does
        # around one await, at a fraction of its cost per query).
        timer = loop.call_later(timeout, exchange.expire)
        sock.send(wire)
    except OSError as exc:  # refused, unreachable
        if not done.done():
            done.set_exception(TransportError(reason(exc)))
    return done


async def query_udp(query: dns.message.Message, server: tuple[str, int], timeout: float,
                    wire: bytes | None = None) -> dns.message.Message:
    return await start_udp(query, server, timeout, wire)


async def query_tcp(query: dns.message.Message, server: tuple[str, int], timeout: float,
                    wire: bytes | None = None) -> dns.message.Message:
    async with asyncio.timeout(timeout):
        try:
            reader, writer = await asyncio.open_connection(server[0], server[1])
        except TimeoutError:
            raise
        except OSError as exc:  # refused (RST), no route: at once, never waited on
            raise TransportError(reason(exc)) from None
        try:
            wire = query.to_wire() if wire is None else wire
            writer.write(struct.pack("!H", len(wire)) + wire)
            await writer.drain()
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            data = await reader.readexactly(length)
        except asyncio.IncompleteReadError:
            raise TransportError("connection closed before a full response") from None
        except (TimeoutError, TransportError):
            raise
        except OSError as exc:
            raise TransportError(reason(exc)) from None
        finally:
            writer.close()
    try:
        response = parse_reply(data, query, wire)
    except (dns.exception.DNSException, ValueError) as exc:
        raise TransportError(f"malformed response: {exc}") from None
    if match(query, response) is Match.MISMATCH:  # a case-only difference is the engine's to judge
        raise TransportError("response does not match the query")
    return response


async def exchange(query: dns.message.Message, server: tuple[str, int], *, tcp: bool,
                   timeout: float, wire: bytes | None = None) -> dns.message.Message:
    """Raises TimeoutError on timeout, TransportError / OSError on other failures. ``wire``:
    ``query.to_wire()`` when the caller already has it."""
    if tcp:
        return await query_tcp(query, server, timeout, wire)
    return await query_udp(query, server, timeout, wire)
