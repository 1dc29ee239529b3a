"""DNS listeners shared by the authoritative server and the recursive front end: UDP and TCP on
one port per listen address, moving bytes between sockets and a server's ``handle``.

A server subclasses ``DnsServer`` and supplies two things:

* ``handle(wire, tcp, later)`` — one query's bytes in; out come the response bytes now, ``None``
  (unreadable: the datagram is dropped, the TCP stream closed because its framing can no longer
  be trusted), ``LATER`` (the server calls ``later(response)`` once, when it has the answer) or
  ``DROPPED`` (overloaded: no answer; the client times out and retries);
* ``handle_from(wire, tcp, later, peer)`` — the same with the client's (host, port); by default
  it calls ``handle``. It may also return a ``Stream`` on TCP: several responses to one query
  (zone transfers, RFC 5936 §2.2), written in order while the connection reads nothing else;
* ``udp_cache()`` — asked once per UDP wake-up: ``(responses, now)``, a dict from query bytes
  after the ID to a rendered response without its ID — or, when ``now`` is not None, to an
  ``(expiry, response)`` pair that holds while ``expiry > now``. Those bytes hold everything a
  response depends on (question with its 0x20 case, flags, EDNS payload and DO), so a repeat
  is answered with one dict lookup and one ``sendto``, without a call into the server.

What strangers can cost is bounded here: TCP connections (beyond the limit new ones are closed
at once, RFC 7766 §6.2.2), queries outstanding per connection and a client that does not read
its answers (reading pauses, RFC 7766 §6.2.1.1), idle connections (RFC 7766 §6.2.3: seconds,
not minutes). UDP sends that would block are dropped (the client retries), never buffered.
"""

from __future__ import annotations

import asyncio
import ctypes
import enum
import logging
import socket
import struct
from collections.abc import AsyncIterator, Callable
from typing import Self

from . import udp_batch

log = logging.getLogger(__name__)

TCP_IDLE_TIMEOUT = 10.0  # RFC 7766 §6.2.3: seconds, not minutes
MAX_TCP_CONNECTIONS = 256
MAX_TCP_OUTSTANDING = 32  # per connection; reading pauses beyond this (RFC 7766 §6.2.1.1)
UDP_BUFFER = 4 * 1024 * 1024  # absorb bursts instead of dropping them in the kernel
UDP_BATCH = 64  # datagrams handled per wake-up before other work gets the loop
BIND_ATTEMPTS = 20  # port 0: tries to find a port whose UDP twin is free too
TCP_BACKLOG = 1024


class Outcome(enum.Enum):
    """What ``handle`` returns when it has no response bytes right now."""

    LATER = "later"  # ``later(response)`` will be called once
    DROPPED = "dropped"  # overloaded: no answer, the connection stays open


LATER, DROPPED = Outcome.LATER, Outcome.DROPPED

class Stream:
    """Several responses to one TCP query, in order (zone transfers, RFC 5936 §2.2): an async
    iterator of response messages. The connection reads no further query until it ends."""

    def __init__(self, messages: AsyncIterator[bytes]):
        self.messages = messages


Reply = Callable[[bytes], None]
Handled = bytes | Outcome | Stream | None


# Rendered responses without their ID, or (expiry, response) pairs, by query bytes after the ID.
ResponseDict = dict[bytes, bytes] | dict[bytes, tuple[float, bytes]]
_NO_RESPONSES: dict[bytes, bytes] = {}


class DnsServer:
    """UDP and TCP on every (host, port) in ``listen``; port 0 picks a port free for both."""

    def __init__(self, listen: list[tuple[str, int]], *, tcp_idle_timeout: float = TCP_IDLE_TIMEOUT,
                 max_tcp_connections: int = MAX_TCP_CONNECTIONS,
                 max_tcp_outstanding: int = MAX_TCP_OUTSTANDING):
        self.listen = list(listen)
        self.tcp_idle_timeout = tcp_idle_timeout
        self.max_tcp_connections = max_tcp_connections
        self.max_tcp_outstanding = max_tcp_outstanding
        self._udp: list[_UdpListener] = []
        self._tcp: list[asyncio.base_events.Server] = []
        self._tcp_connections: set[_TcpConnection] = set()
        self._addresses: list[tuple[str, int]] = []
        # Responses sent, by header RCODE (/metrics): one list increment per answer.
        self.udp_rcodes = [0] * 16
        self.tcp_rcodes = [0] * 16
        # SO_REUSEPORT on every socket: several worker processes share the addresses and the
        # kernel spreads clients over them (``cid serve resolver --workers N``).
        self.reuse_port = False

    # What a server supplies -----------------------------------------------------------------
    def handle(self, wire: bytes, tcp: bool, later: Reply) -> Handled:
        raise NotImplementedError

    def handle_from(self, wire: bytes, tcp: bool, later: Reply, peer) -> Handled:
        """``handle`` for a client at ``peer`` (host, port), for servers whose answer depends on
        who asks (transfer ACLs)."""
        return self.handle(wire, tcp, later)

    def udp_cache(self) -> tuple[ResponseDict, float | None]:
        return _NO_RESPONSES, None

    def udp_fast(self, wire: bytes) -> bytes | None:
        """A complete answer to a UDP query that needs no task (the recursive front end's
        denials from cached NSECs), or None for the usual path; must not raise."""
        return None

    async def _stop_work(self) -> None:
        """Called by ``close`` once no new queries arrive: end work still in progress."""

    # Lifecycle ------------------------------------------------------------------------------
    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The (host, port) pairs actually bound, one per listen entry."""
        return list(self._addresses)

    async def start(self) -> None:
        try:
            for host, port in self.listen:
                self._addresses.append(await self._bind(host, port))
        except BaseException:
            await self.close()
            raise

    def _udp_socket(self, host: str, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if self.reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        if self.reuse_port:
            spread(sock)
        return sock

    async def _bind(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        for attempt in range(BIND_ATTEMPTS if port == 0 else 1):
            tcp = await loop.create_server(lambda: _TcpConnection(self), host, port,
                                           reuse_address=True, reuse_port=self.reuse_port or None,
                                           backlog=TCP_BACKLOG)
            bound = tcp.sockets[0].getsockname()[1]
            try:
                sock = self._udp_socket(host, bound)
            except OSError:
                tcp.close()
                await tcp.wait_closed()
                if port != 0:
                    raise
                continue  # the TCP port's UDP twin is taken: try another port
            self._tcp.append(tcp)
            self._udp.append(_UdpListener(self, sock))
            return host, bound
        raise OSError(f"could not bind UDP and TCP to one free port on {host}")

    async def drain(self, timeout: float = 5.0) -> None:
        """SIGTERM: stop reading new queries and accepting connections, give the work in
        progress up to ``timeout`` seconds to answer (the sockets stay open for those answers),
        then close."""
        for udp in self._udp:
            udp.pause()
        for tcp in self._tcp:
            tcp.close()
        await self._finish_work(timeout)
        await self.close()

    async def _finish_work(self, timeout: float) -> None:
        """Wait (bounded) for answers still being made; a server without such work has none."""

    async def close(self) -> None:
        for udp in self._udp:
            udp.close()
        for tcp in self._tcp:
            tcp.close()
        for conn in list(self._tcp_connections):
            conn.close()
        await self._stop_work()
        for tcp in self._tcp:
            await tcp.wait_closed()
        self._udp.clear()
        self._tcp.clear()
        self._addresses.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()


SO_ATTACH_REUSEPORT_CBPF = 51  # Linux <asm-generic/socket.h>
_SKF_AD_RANDOM = (-0x1000 + 56) & 0xFFFFFFFF  # SKF_AD_OFF + SKF_AD_RANDOM
_BPF_FILTER = struct.Struct("HBBI")  # struct sock_filter: code, jt, jf, k
_BPF_PROG = struct.Struct("HxxxxxxQ")  # struct sock_fprog on 64-bit: len, filter pointer


def spread(sock: socket.socket) -> bool:
    """Spread the datagrams sent to ``sock``'s SO_REUSEPORT group over its sockets at random,
    one by one, instead of by the kernel's hash of each client's address and port: with the
    hash, every datagram of one client socket goes to one worker (dnsperf -c 8 was seen to put
    all 8 on one of 2 workers). The program (ld random; mod N; ret) is the group's; N is the
    group's size now, counted in /proc/net/udp{,6}. The last socket to join sets it, so it
    counts every earlier one; once a worker is gone, a choice past the end falls back to the
    hash (the kernel's rule), so nothing is lost. False where it cannot be attached."""
    try:
        size = _group_size(sock)
        code = b"".join(_BPF_FILTER.pack(*ins) for ins in (
            (0x20, 0, 0, _SKF_AD_RANDOM),  # BPF_LD|BPF_W|BPF_ABS: A = a random number
            (0x94, 0, 0, size),  # BPF_ALU|BPF_MOD|BPF_K: A %= size
            (0x16, 0, 0, 0)))  # BPF_RET|BPF_A: the socket at index A
        program = ctypes.create_string_buffer(code, len(code))  # the kernel copies it at once
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF,
                        _BPF_PROG.pack(len(code) // _BPF_FILTER.size, ctypes.addressof(program)))
    except (OSError, ValueError, struct.error) as exc:
        log.debug("SO_REUSEPORT spreading not attached: %s", exc)
        return False
    return True


def _group_size(sock: socket.socket) -> int:
    """UDP sockets bound to ``sock``'s address and port (its SO_REUSEPORT group)."""
    host, port = sock.getsockname()[:2]
    if sock.family == socket.AF_INET6:
        words = struct.unpack("=4I", socket.inet_pton(socket.AF_INET6, host))
        local, table = "".join(f"{w:08X}" for w in words), "/proc/net/udp6"
    else:
        local, table = f"{struct.unpack('=I', socket.inet_aton(host))[0]:08X}", "/proc/net/udp"
    local += f":{port:04X}"
    with open(table) as f:
        next(f)  # the heading
        return max(1, sum(1 for line in f if line.split(None, 2)[1] == local))


class _UdpListener:
    """UDP on a plain non-blocking socket read straight from the loop's reader callback: each
    wake-up drains up to ``UDP_BATCH`` datagrams (one recvmmsg where there is one,
    ``udp_batch``) and answers repeats from the server's response cache, without a protocol
    object or transport buffer per packet."""

    def __init__(self, server: DnsServer, sock: socket.socket):
        self.server = server
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.closed = False
        self.paused = False
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER)
            except OSError:
                pass
        sock.setblocking(False)
        # recvmmsg/sendmmsg where the system has them: two system calls per batch, not per query.
        self.batch = udp_batch.Batch(sock, UDP_BATCH) if udp_batch.available() else None
        self.loop.add_reader(sock.fileno(), self._readable)

    def pause(self) -> None:
        """No more reading (draining); the socket stays open for answers in progress."""
        if not self.closed and not self.paused:
            self.paused = True
            self.loop.remove_reader(self.sock.fileno())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if not self.paused:
                self.loop.remove_reader(self.sock.fileno())
            self.sock.close()

    def _readable(self) -> None:
        if self.batch is not None:
            self._readable_batched(self.batch)
            return
        sock = self.sock
        responses, now = self.server.udp_cache()  # once per wake-up: nothing changes it meanwhile
        fast = self.server.udp_fast
        rcodes = self.server.udp_rcodes
        for _ in range(UDP_BATCH):
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable reported for an earlier send
                log.debug("UDP socket error: %s", exc)
                continue
            cached = self._quick(data, responses, now, fast, addr)
            if cached is not None:
                rcodes[cached[3] & 15] += 1
                try:
                    sock.sendto(cached, addr)
                except OSError as exc:  # full send buffer, unreachable client: drop this answer
                    log.debug("UDP send to %s failed: %s", addr, exc)
                continue
            self._slow(data, addr)

    @staticmethod
    def _quick(data: bytes, responses: ResponseDict, now: float | None,
               fast: Callable[[bytes], bytes | None], addr) -> bytes | None:
        """The answer from the response cache or the server's ``udp_fast``, else None."""
        cached = responses.get(data[2:])  # the hot path: a repeat question
        if cached is not None and now is not None:
            cached = cached[1] if cached[0] > now else None  # type: ignore[index]
        if cached is not None:
            return data[:2] + cached  # type: ignore[operator]
        try:
            return fast(data)  # the next hottest: e.g. a random-subdomain flood's denials
        except Exception:  # noqa: BLE001 - a bug must cost one answer, not the server
            log.exception("failed to answer a UDP query from %s", addr)
            return None

    def _readable_batched(self, batch: udp_batch.Batch) -> None:
        # One recvmmsg for up to UDP_BATCH datagrams, one sendmmsg for every answer ready now
        # (cached, or made by the server at once); answers made later go by sendto.
        responses, now = self.server.udp_cache()
        fast = self.server.udp_fast
        rcodes = self.server.udp_rcodes
        try:
            count = batch.receive()
        except OSError as exc:  # e.g. ICMP port unreachable reported for an earlier send
            log.debug("UDP socket error: %s", exc)
            return
        # Repeats answered inside the batch itself; the rest one by one.
        for i in batch.answer_repeats(count, responses, now, rcodes):
            data = batch.data(i)
            if data is None:
                continue
            response = self._quick(data, responses, now, fast, None)
            if response is None:
                response = self._handled(data, batch.peer(i))
                if response is None:
                    continue
            if len(response) > 3:  # a handler's bytes are sent as given, even shorter than a header
                rcodes[response[3] & 15] += 1
            batch.reply(i, response)
        batch.flush()

    def _send(self, response: bytes, addr) -> None:
        if self.closed:
            return
        if len(response) > 3:  # a handler's bytes are sent as given, even shorter than a header
            self.server.udp_rcodes[response[3] & 15] += 1
        try:
            self.sock.sendto(response, addr)
        except OSError as exc:  # full send buffer, unreachable client: drop this answer
            log.debug("UDP send to %s failed: %s", addr, exc)

    def _slow(self, data: bytes, addr) -> None:
        response = self._handled(data, addr)
        if response is not None:
            self._send(response, addr)

    def _handled(self, data: bytes, addr) -> bytes | None:
        """The server's response now, or None (none, or one sent later by ``_send``)."""
        try:
            outcome = self.server.handle_from(data, False, lambda response: self._send(response, addr), addr)
        except Exception:  # noqa: BLE001 - a bug must cost one answer, not the server
            log.exception("failed to answer a UDP query from %s", addr)
            return None
        return outcome if isinstance(outcome, bytes) else None


class _TcpConnection(asyncio.Protocol):
    """RFC 7766: 2-byte length framing, pipelined queries answered as they complete (out of
    order, matched by ID), a bound on outstanding queries, an idle timeout."""

    def __init__(self, server: DnsServer):
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.idle: asyncio.TimerHandle | None = None
        self.outstanding = 0
        self.reading_paused = False
        self.writing_paused = False
        self.streaming: asyncio.Task | None = None
        self.drained: asyncio.Event | None = None

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
        while len(buffer) >= 2 and self.streaming is None:
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
        try:
            peer = self.transport.get_extra_info("peername") if self.transport is not None else None
            outcome = self.server.handle_from(wire, True, self._delivered, peer)
        except Exception:  # noqa: BLE001 - a bug must cost one connection, not the server
            log.exception("failed to answer a TCP query")
            return False
        if outcome is None:
            return False
        if isinstance(outcome, bytes):
            self._write(outcome)
        elif isinstance(outcome, Stream):
            self.outstanding += 1
            if self.transport is not None and not self.reading_paused:
                self.reading_paused = True
                self.transport.pause_reading()
            self.streaming = asyncio.ensure_future(self._pump(outcome))
        elif outcome is LATER:
            self.outstanding += 1
            if self.outstanding >= self.server.max_tcp_outstanding and not self.reading_paused \
                    and self.transport is not None:
                self.reading_paused = True
                self.transport.pause_reading()
        return True  # DROPPED: the client times out and retries

    def _delivered(self, response: bytes) -> None:
        self.outstanding -= 1
        self._write(response)
        if self.reading_paused and self.outstanding < self.server.max_tcp_outstanding \
                and not self.writing_paused and self.streaming is None:
            self.reading_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
        if self.transport is not None and not self.transport.is_closing():
            self._arm_idle_timer()

    async def _pump(self, stream: Stream) -> None:
        try:
            async for response in stream.messages:
                if self.transport is None or self.transport.is_closing():
                    return
                self._write(response)
                if self.writing_paused:  # the client reads slower than we make messages
                    self.drained = asyncio.Event()
                    await self.drained.wait()
        except Exception:  # noqa: BLE001 - a bug must cost one connection, not the server
            log.exception("failed to stream a TCP response")
            self.close()
            return
        finally:
            self.outstanding -= 1
            self.streaming = None
        if self.transport is not None and not self.transport.is_closing():
            if not self.writing_paused and self.outstanding < self.server.max_tcp_outstanding:
                self.reading_paused = False
                self.transport.resume_reading()
            self.data_received(b"")  # queries pipelined behind the stream; re-arms the idle timer

    def _write(self, response: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if len(response) > 3:
                self.server.tcp_rcodes[response[3] & 15] += 1
            self.transport.write(struct.pack("!H", len(response)) + response)

    def pause_writing(self) -> None:
        # A client that sends queries but does not read answers must not grow our buffers.
        self.writing_paused = True
        if self.transport is not None and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.drained is not None:
            self.drained.set()
        if self.reading_paused and self.outstanding < self.server.max_tcp_outstanding \
                and self.streaming is None:
            self.reading_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle is not None:
            self.idle.cancel()
        if self.streaming is not None:
            self.streaming.cancel()
        self.server._tcp_connections.discard(self)
