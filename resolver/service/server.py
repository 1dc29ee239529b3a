"""Asyncio transport of the recursive front end: UDP and TCP on each listen address, all
answered by one Resolver (one cache, one in-flight table, one engine configuration).

DNS decisions live in ``answer``; this module moves bytes, keeps the rendered-response cache
and bounds the work strangers can cause: pending resolutions (beyond the bound new queries
are dropped, as Unbound drops when its query list is full), TCP connections, queries
outstanding per connection and idle time (RFC 7766 §6.2).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from collections.abc import Callable

import dns.rcode
import dns.rdatatype

from ..client import Resolver
from .answer import Request, error, read_query, respond, soa_wanted
from .responses import ResponseCache

log = logging.getLogger(__name__)

MAX_PENDING = 2048  # resolutions in progress across all clients
MAX_WAITERS = 512  # identical queries waiting for one answer in progress
TCP_IDLE_TIMEOUT = 10.0  # RFC 7766 §6.2.3: seconds, not minutes
MAX_TCP_CONNECTIONS = 256
MAX_TCP_OUTSTANDING = 32  # per connection; reading pauses beyond this (RFC 7766 §6.2.1.1)
UDP_BUFFER = 4 * 1024 * 1024
UDP_BATCH = 64  # datagrams handled per wake-up before other work gets the loop
_BIND_ATTEMPTS = 20


class RecursiveServer:
    """Serve ``resolver`` over UDP and TCP on every (host, port) in ``listen``; port 0 picks one."""

    def __init__(self, resolver: Resolver, listen: list[tuple[str, int]], *,
                 max_pending: int = MAX_PENDING, tcp_idle_timeout: float = TCP_IDLE_TIMEOUT,
                 max_tcp_connections: int = MAX_TCP_CONNECTIONS,
                 clock: Callable[[], float] = time.monotonic):
        """``clock`` times the rendered-response cache (monotonic: a wall-clock step must not
        keep old bytes alive)."""
        self.resolver = resolver
        self.listen = list(listen)
        self.max_pending = max_pending
        self.tcp_idle_timeout = tcp_idle_timeout
        self.max_tcp_connections = max_tcp_connections
        self.udp_responses = ResponseCache(clock)
        self.tcp_responses = ResponseCache(clock)  # a TCP response may be larger than UDP allows
        self.dropped = 0  # queries dropped because MAX_PENDING resolutions were running
        self._tasks: set[asyncio.Task] = set()
        self._waiting: dict[tuple[bytes, bool], list] = {}  # (query bytes after ID, tcp) → [(id, deliver)]
        self._udp: list[_UdpListener] = []
        self._tcp: list[asyncio.base_events.Server] = []
        self._tcp_connections: set[_TcpProtocol] = set()
        self._addresses: list[tuple[str, int]] = []

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The (host, port) pairs actually bound, one per listen entry."""
        return list(self._addresses)

    # Answering -----------------------------------------------------------------------------
    async def answer(self, request: Request, key: bytes) -> bytes:
        """Resolve one request and render it; never raises (a bug costs a SERVFAIL)."""
        cache = self.tcp_responses if request.tcp else self.udp_responses
        cached = cache.get(key)  # filled while this request waited for its turn
        if cached is not None:
            return struct.pack("!H", request.query.qid) + cached
        try:
            lookup = await self.resolver.lookup(request.query.qname, request.query.qtype, cd=request.cd)
            zone = soa_wanted(lookup)
            soa = await self.resolver.lookup(zone, dns.rdatatype.SOA, cd=request.cd) if zone is not None else None
            response, reuse = respond(request, lookup, soa)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001
            log.exception("failed to resolve %s %s", request.query.qname, request.query.qtype)
            return error(request, dns.rcode.SERVFAIL)
        cache.put(key, response, reuse)
        return response

    def spawn(self, request: Request, key: bytes, deliver) -> bool:
        """Start answering in a task that hands the bytes to ``deliver``; False when dropped.

        Byte-identical queries (after the ID) that arrive while one is being answered wait for
        that answer instead of starting their own (each gets it with its own ID), so a burst of
        one question — e.g. when its rendered response is refreshed — costs one render."""
        slot = (key, request.tcp)
        waiting = self._waiting.get(slot)
        if waiting is not None:
            if len(waiting) >= MAX_WAITERS:
                self.dropped += 1
                return False
            waiting.append((request.query.qid, deliver))
            return True
        if len(self._tasks) >= self.max_pending:
            self.dropped += 1
            return False
        self._waiting[slot] = [(request.query.qid, deliver)]
        task = asyncio.get_running_loop().create_task(self.answer(request, key))
        self._tasks.add(task)

        def done(finished: asyncio.Task) -> None:
            self._tasks.discard(finished)
            waiters = self._waiting.pop(slot, [])
            if finished.cancelled():
                return
            body = finished.result()[2:]
            for qid, callback in waiters:
                callback(struct.pack("!H", qid) + body)

        task.add_done_callback(done)
        return True

    # Lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            for host, port in self.listen:
                self._addresses.append(await self._bind(host, port))
        except BaseException:
            await self.close()
            raise

    async def _bind(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        for attempt in range(_BIND_ATTEMPTS if port == 0 else 1):
            tcp = await loop.create_server(lambda: _TcpProtocol(self), host, port,
                                           reuse_address=True, backlog=1024)
            bound = tcp.sockets[0].getsockname()[1]
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((host, bound))
            except OSError:
                sock.close()
                tcp.close()
                await tcp.wait_closed()
                if port != 0 and attempt == 0:
                    raise
                continue  # the TCP port's UDP twin is taken: try another port
            self._tcp.append(tcp)
            self._udp.append(_UdpListener(self, sock))
            return host, bound
        raise OSError(f"could not bind UDP and TCP to one free port on {host}")

    async def close(self) -> None:
        for udp in self._udp:
            udp.close()
        for tcp in self._tcp:
            tcp.close()
        for conn in list(self._tcp_connections):
            conn.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for tcp in self._tcp:
            await tcp.wait_closed()
        self._udp.clear()
        self._tcp.clear()
        self._addresses.clear()

    async def __aenter__(self) -> RecursiveServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()


class _UdpListener:
    """UDP on a plain non-blocking socket read straight from the loop's reader callback: each
    wake-up drains up to ``UDP_BATCH`` datagrams and answers repeats from the response cache
    with one dict lookup and one ``sendto``, without a protocol object or transport buffer per
    packet. A send that would block drops that answer (UDP; the client retries)."""

    def __init__(self, server: RecursiveServer, sock: socket.socket):
        self.server = server
        self.sock = sock
        self.entries = server.udp_responses._entries
        self.clock = server.udp_responses.clock
        self.loop = asyncio.get_running_loop()
        self.closed = False
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):  # absorb bursts
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER)
            except OSError:
                pass
        sock.setblocking(False)
        self.loop.add_reader(sock.fileno(), self._readable)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()

    def _readable(self) -> None:
        sock, entries = self.sock, self.entries
        now = self.clock()
        for _ in range(UDP_BATCH):
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable reported for an earlier send
                log.debug("UDP socket error: %s", exc)
                continue
            entry = entries.get(data[2:])  # the hot path: a repeat question
            if entry is not None and entry[0] > now:
                try:
                    sock.sendto(data[:2] + entry[1], addr)
                except OSError as exc:  # full send buffer, unreachable client: drop this answer
                    log.debug("UDP send to %s failed: %s", addr, exc)
                continue
            self._slow(data, addr)

    def _send(self, response: bytes, addr) -> None:
        if self.closed:
            return
        try:
            self.sock.sendto(response, addr)
        except OSError as exc:  # full send buffer, unreachable client: drop this answer
            log.debug("UDP send to %s failed: %s", addr, exc)

    def _slow(self, data: bytes, addr) -> None:
        try:
            outcome = read_query(data, tcp=False)
        except Exception:  # noqa: BLE001 - a bug must cost one answer, not the server
            log.exception("failed to read a UDP query from %s", addr)
            return
        if outcome is None:
            return
        if isinstance(outcome, bytes):
            self._send(outcome, addr)
            return
        self.server.spawn(outcome, data[2:], lambda response: self._send(response, addr))


class _TcpProtocol(asyncio.Protocol):
    """RFC 7766: 2-byte length framing, pipelined queries answered as they complete (out of
    order, matched by ID), a bound on outstanding queries, an idle timeout."""

    def __init__(self, server: RecursiveServer):
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.idle: asyncio.TimerHandle | None = None
        self.outstanding = 0
        self.reading_paused = False
        self.writing_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        connections = self.server._tcp_connections
        if len(connections) >= self.server.max_tcp_connections:
            transport.close()
            return
        connections.add(self)
        self._arm_idle_timer()

    def _arm_idle_timer(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None
        if self.outstanding == 0:  # never cut a connection that still waits for answers
            loop = asyncio.get_running_loop()
            self.idle = loop.call_later(self.server.tcp_idle_timeout, self.close)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        buffer = self.buffer
        while len(buffer) >= 2:
            length = (buffer[0] << 8) | buffer[1]
            if len(buffer) < 2 + length:
                break  # at most 64 KiB + 2 buffered: the length prefix bounds it
            wire = bytes(buffer[2 : 2 + length])
            del buffer[: 2 + length]
            if not self._handle(wire):
                self.close()  # unreadable stream: framing can no longer be trusted
                return
        self._arm_idle_timer()

    def _handle(self, wire: bytes) -> bool:
        key = wire[2:]
        cached = self.server.tcp_responses.get(key)
        if cached is not None:
            self._write(wire[:2] + cached)
            return True
        try:
            outcome = read_query(wire, tcp=True)
        except Exception:  # noqa: BLE001
            log.exception("failed to read a TCP query")
            return False
        if outcome is None:
            return False
        if isinstance(outcome, bytes):
            self._write(outcome)
            return True
        if not self.server.spawn(outcome, key, self._delivered):
            return True  # overloaded: dropped, the client times out and retries
        self.outstanding += 1
        if self.outstanding >= MAX_TCP_OUTSTANDING and not self.reading_paused and self.transport:
            self.reading_paused = True
            self.transport.pause_reading()
        return True

    def _delivered(self, response: bytes) -> None:
        self.outstanding -= 1
        self._write(response)
        if self.reading_paused and self.outstanding < MAX_TCP_OUTSTANDING and not self.writing_paused:
            self.reading_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
        if self.transport is not None and not self.transport.is_closing():
            self._arm_idle_timer()

    def _write(self, response: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(struct.pack("!H", len(response)) + response)

    def pause_writing(self) -> None:
        # A client that sends queries but does not read answers must not grow our buffers.
        self.writing_paused = True
        if self.transport is not None and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.reading_paused and self.outstanding < MAX_TCP_OUTSTANDING:
            self.reading_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle is not None:
            self.idle.cancel()
        self.server._tcp_connections.discard(self)
