"""Sending one message to one server and getting the raw answer back: UDP (TCP when the answer
is truncated or asked for), blocking or asyncio.

The answer is returned as bytes so that the caller can read an error answer whose TSIG it
cannot verify (messages.parse_answer). Our UPDATE messages replace whole RRsets, so sending
one again after a lost answer is harmless.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import time

import dns.message

DEFAULT_PORT = 53
TIMEOUT = 3.0
TRIES = 3


class TransportError(OSError):
    """The server could not be reached or gave no answer; str() is one line."""


def parse_server(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``ADDR``, ``ADDR:PORT``, ``[V6]:PORT`` or ``V6`` (an address; names are not looked up)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else None
        if rest and not rest.startswith(":"):
            raise ValueError(f"{text}: expected [ADDRESS]:PORT")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, None
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(f"{text}: not an IP address (ADDR[:PORT])") from None
    if port_text is None:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{text}: bad port {port_text!r}")
    return host, int(port_text)


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _truncated(wire: bytes) -> bool:
    return len(wire) >= 4 and bool(wire[2] & 0x02)


def _matches(wire: bytes, qid: int) -> bool:
    return len(wire) >= 12 and struct.unpack("!H", wire[:2])[0] == qid and bool(wire[2] & 0x80)


def _where(server: tuple[str, int]) -> str:
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def exchange(message: dns.message.Message, server: tuple[str, int], *, timeout: float = TIMEOUT,
             tcp: bool = False, tries: int = TRIES) -> bytes:
    """Send ``message`` and return the answer's wire form (blocking)."""
    wire = message.to_wire()
    if not tcp:
        answer = _udp(wire, message.id, server, timeout, tries)
        if not _truncated(answer):
            return answer
    return _tcp(wire, server, timeout)


def _udp(wire: bytes, qid: int, server: tuple[str, int], timeout: float, tries: int) -> bytes:
    with socket.socket(_family(server[0]), socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(server)
        except OSError as exc:
            raise TransportError(f"cannot reach {_where(server)}: {exc.strerror or exc}") from None
        for attempt in range(tries):
            try:
                sock.send(wire)
            except OSError as exc:
                raise TransportError(f"cannot send to {_where(server)}: {exc.strerror or exc}") from None
            deadline = time.monotonic() + timeout * (2 ** attempt)
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    answer = sock.recv(65535)
                except socket.timeout:
                    break
                except ConnectionRefusedError:
                    raise TransportError(f"{_where(server)}: connection refused (nothing listening)") from None
                except OSError as exc:
                    raise TransportError(f"{_where(server)}: {exc.strerror or exc}") from None
                if _matches(answer, qid):
                    return answer
    raise TransportError(f"no answer from {_where(server)} after {tries} tries")


def _tcp(wire: bytes, server: tuple[str, int], timeout: float) -> bytes:
    try:
        with socket.create_connection(server, timeout=timeout) as sock:
            sock.sendall(struct.pack("!H", len(wire)) + wire)
            head = _recv_exactly(sock, 2)
            return _recv_exactly(sock, struct.unpack("!H", head)[0])
    except ConnectionRefusedError:
        raise TransportError(f"{_where(server)}: connection refused (nothing listening)") from None
    except socket.timeout:
        raise TransportError(f"no answer from {_where(server)} over TCP within {timeout:g} s") from None
    except OSError as exc:
        raise TransportError(f"{_where(server)}: {exc.strerror or exc}") from None


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise TransportError("the server closed the connection before answering")
        data += chunk
    return data


async def exchange_async(message: dns.message.Message, server: tuple[str, int], *, timeout: float = TIMEOUT,
                         tcp: bool = False, tries: int = TRIES) -> bytes:
    """``exchange`` on the running event loop (for servers on the same loop: the demo)."""
    wire = message.to_wire()
    if not tcp:
        answer = await _udp_async(wire, message.id, server, timeout, tries)
        if not _truncated(answer):
            return answer
    return await _tcp_async(wire, server, timeout)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | Exception] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr) -> None:
        self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        self.queue.put_nowait(exc)


async def _udp_async(wire: bytes, qid: int, server: tuple[str, int], timeout: float, tries: int) -> bytes:
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.create_datagram_endpoint(_Datagrams, remote_addr=server)
    except OSError as exc:
        raise TransportError(f"cannot reach {_where(server)}: {exc.strerror or exc}") from None
    try:
        for attempt in range(tries):
            transport.sendto(wire)
            deadline = loop.time() + timeout * (2 ** attempt)
            while (left := deadline - loop.time()) > 0:
                try:
                    item = await asyncio.wait_for(protocol.queue.get(), left)
                except asyncio.TimeoutError:
                    break
                if isinstance(item, ConnectionRefusedError):
                    raise TransportError(f"{_where(server)}: connection refused (nothing listening)")
                if isinstance(item, Exception):
                    raise TransportError(f"{_where(server)}: {item}")
                if _matches(item, qid):
                    return item
    finally:
        transport.close()
    raise TransportError(f"no answer from {_where(server)} after {tries} tries")


async def _tcp_async(wire: bytes, server: tuple[str, int], timeout: float) -> bytes:
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(*server)
            try:
                writer.write(struct.pack("!H", len(wire)) + wire)
                await writer.drain()
                head = await reader.readexactly(2)
                return await reader.readexactly(struct.unpack("!H", head)[0])
            finally:
                writer.close()
    except ConnectionRefusedError:
        raise TransportError(f"{_where(server)}: connection refused (nothing listening)") from None
    except TimeoutError:
        raise TransportError(f"no answer from {_where(server)} over TCP within {timeout:g} s") from None
    except asyncio.IncompleteReadError:
        raise TransportError("the server closed the connection before answering") from None
    except OSError as exc:
        raise TransportError(f"{_where(server)}: {exc.strerror or exc}") from None
