"""Asyncio transport for the authoritative answerer: UDP and TCP on each listen address.

All DNS decisions live in ``answer.answer_query``; this module only moves bytes. It runs on
whatever loop is current (the CLI installs uvloop), and several servers can share one loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct

from .answer import answer_query
from .store import ZoneStore

log = logging.getLogger(__name__)

TCP_IDLE_TIMEOUT = 10.0  # RFC 7766 §6.2.3: close idle connections, seconds not minutes
MAX_TCP_CONNECTIONS = 512  # beyond this, new connections are closed at once (RFC 7766 §6.2.2)
_BIND_ATTEMPTS = 20
UDP_BUFFER = 4 * 1024 * 1024


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, store: ZoneStore):
        self.store = store
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Absorb bursts instead of dropping them in the kernel.
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER)
                except OSError:
                    pass

    def datagram_received(self, data: bytes, addr) -> None:
        # Fast path, same contract as answer_query's cache: identical bytes after the ID get
        # the identical response (only ever stored for well-formed queries, never for QR=1).
        cached = self.store.responses.get(data[2:])
        if cached is not None:
            self.transport.sendto(data[:2] + cached, addr)  # type: ignore[union-attr]
            return
        try:
            response = answer_query(self.store, data, tcp=False)
        except Exception:  # noqa: BLE001 - a bug must cost one answer, not the server
            log.exception("failed to answer a UDP query from %s", addr)
            return
        if response is not None and self.transport is not None:
            self.transport.sendto(response, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP socket error: %s", exc)  # e.g. ICMP port unreachable from a client


class _TcpProtocol(asyncio.Protocol):
    """RFC 7766 framing: 2-byte length, any number of queries per connection, idle timeout."""

    def __init__(self, server: AuthServer):
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.idle: asyncio.TimerHandle | None = None

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
        loop = asyncio.get_running_loop()
        self.idle = loop.call_later(self.server.tcp_idle_timeout, self._close)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._arm_idle_timer()
        buffer = self.buffer
        while len(buffer) >= 2:
            length = (buffer[0] << 8) | buffer[1]
            if len(buffer) < 2 + length:
                break  # at most 64 KiB + 2 buffered: the length prefix bounds it
            query = bytes(buffer[2 : 2 + length])
            del buffer[: 2 + length]
            try:
                response = answer_query(self.server.store, query, tcp=True)
            except Exception:  # noqa: BLE001
                log.exception("failed to answer a TCP query")
                response = None
            if response is None:
                self._close()  # unparseable stream: framing can no longer be trusted
                return
            assert self.transport is not None
            self.transport.write(struct.pack("!H", len(response)) + response)

    def pause_writing(self) -> None:
        # A client that sends queries but does not read answers must not grow our buffers.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle is not None:
            self.idle.cancel()
        self.server._tcp_connections.discard(self)


class AuthServer:
    """Serve ``store`` over UDP and TCP on every (host, port) in ``listen``; port 0 picks one."""

    def __init__(
        self,
        store: ZoneStore,
        listen: list[tuple[str, int]],
        *,
        tcp_idle_timeout: float = TCP_IDLE_TIMEOUT,
        max_tcp_connections: int = MAX_TCP_CONNECTIONS,
    ):
        self.store = store
        self.listen = list(listen)
        self.tcp_idle_timeout = tcp_idle_timeout
        self.max_tcp_connections = max_tcp_connections
        self._udp: list[asyncio.DatagramTransport] = []
        self._tcp: list[asyncio.base_events.Server] = []
        self._tcp_connections: set[_TcpProtocol] = set()
        self._addresses: list[tuple[str, int]] = []

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

    async def _bind(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        for attempt in range(_BIND_ATTEMPTS if port == 0 else 1):
            tcp = await loop.create_server(
                lambda: _TcpProtocol(self), host, port, reuse_address=True, backlog=1024,
            )
            bound = tcp.sockets[0].getsockname()[1]
            try:
                udp, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self.store), local_addr=(host, bound),
                    family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                )
            except OSError:
                tcp.close()
                await tcp.wait_closed()
                if port != 0 and attempt == 0:
                    raise
                continue  # the TCP port's UDP twin is taken: try another port
            self._tcp.append(tcp)
            self._udp.append(udp)
            return host, bound
        raise OSError(f"could not bind UDP and TCP to one free port on {host}")

    async def close(self) -> None:
        for udp in self._udp:
            udp.close()
        for tcp in self._tcp:
            tcp.close()
        for conn in list(self._tcp_connections):
            conn._close()
        for tcp in self._tcp:
            await tcp.wait_closed()
        self._udp.clear()
        self._tcp.clear()
        self._addresses.clear()

    async def __aenter__(self) -> AuthServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()
