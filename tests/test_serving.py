"""The shared DNS listeners (resolver.serving) over real loopback sockets, with a small server
that answers any bytes: port-0 retry when the UDP twin is taken, RFC 7766 framing across split
reads, idle close, the connection limit, outstanding-query and slow-reader back-pressure, the
UDP response-cache path, and bugs in a server's ``handle``."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct

import pytest

from resolver.serving import DROPPED, LATER, DnsServer

HOST = "127.0.0.1"


class Echo(DnsServer):
    """Answers ``id + b"R" + rest-of-query + padding``; a query starting ``!`` after the ID is a
    bug (raises), ``?`` is unreadable (None), ``-`` is dropped; ``hold`` defers every answer."""

    def __init__(self, listen=((HOST, 0),), *, pad: int = 0, hold: bool = False, **options):
        super().__init__(list(listen), **options)
        self.pad = pad
        self.hold = hold
        self.seen: list[tuple[bytes, bool]] = []
        self.held: list[tuple[bytes, object]] = []
        self.cache: dict = {}
        self.now: float | None = None  # set: cache entries are (expiry, response) pairs

    def udp_cache(self):
        return self.cache, self.now

    def handle(self, wire, tcp, later):
        self.seen.append((wire, tcp))
        mark = wire[2:3]
        if mark == b"!":
            raise RuntimeError("a bug in the server")
        if mark == b"?":
            return None
        if mark == b"-":
            return DROPPED
        if self.hold:
            self.held.append((wire, later))
            return LATER
        return self.reply(wire)

    def reply(self, wire: bytes) -> bytes:
        return wire[:2] + b"R" + wire[2:] + b"\0" * self.pad

    def release(self) -> None:
        held, self.held = self.held, []
        for wire, later in held:
            later(self.reply(wire))


def frame(wire: bytes) -> bytes:
    return struct.pack("!H", len(wire)) + wire


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    length = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 5))[0]
    return await asyncio.wait_for(reader.readexactly(length), 5)


async def until(condition, what: str, tries: int = 200) -> None:
    """Bounded wait (tries × 10 ms) for server-side state to be reached."""
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


def tcp_port_is_free(port: int) -> bool:
    """Nothing listens there (SO_REUSEADDR: a closed connection's TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


async def udp_exchange(port: int, wire: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect((HOST, port))
        sock.send(wire)
        return await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)


class TakenTwins(Echo):
    """Another program grabs the UDP twin of the first ``taken`` ports the kernel offers for TCP."""

    def __init__(self, taken: int, **options):
        super().__init__(**options)
        self.taken = taken
        self.squatters: list[socket.socket] = []

    def _udp_socket(self, host, port):
        if len(self.squatters) < self.taken:
            squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            squatter.bind((host, port))
            self.squatters.append(squatter)
        return super()._udp_socket(host, port)


async def test_port_zero_retries_until_udp_and_tcp_share_a_port():
    server = TakenTwins(taken=3)
    try:
        async with server:
            [(host, port)] = server.addresses
            taken = [s.getsockname()[1] for s in server.squatters]
            assert len(taken) == 3 and port not in taken
            assert all(tcp_port_is_free(p) for p in taken)  # the abandoned TCP listeners are gone
            assert await udp_exchange(port, b"\x00\x07hello") == b"\x00\x07Rhello"
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(frame(b"\x00\x08tcp"))
            assert await read_frame(reader) == b"\x00\x08Rtcp"
            writer.close()
    finally:
        for squatter in server.squatters:
            squatter.close()


async def test_fixed_port_with_its_udp_twin_taken_is_an_error():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((HOST, 0))
        port = squatter.getsockname()[1]
        server = Echo([(HOST, port)])
        with pytest.raises(OSError):
            await server.start()
        assert server.addresses == [] and tcp_port_is_free(port)


async def test_framing_across_split_reads_and_pipelining():
    async with Echo() as server:
        reader, writer = await asyncio.open_connection(*server.addresses[0])
        wires = [b"\x00\x01first", b"\x00\x02" + b"x" * 300, b"\x00\x03", b"\x00\x04last"]
        stream = b"".join(frame(w) for w in wires)
        # Cuts inside a length prefix, inside a message, and one write ending one frame and
        # starting the next (RFC 7766 §8: a message may arrive in any number of segments).
        cuts = [1, 2, 5, 9, 10, 200, len(stream) - 3, len(stream)]
        start = 0
        for cut in cuts:
            writer.write(stream[start:cut])
            await writer.drain()
            await asyncio.sleep(0.01)
            start = cut
        answers = [await read_frame(reader) for _ in wires]
        writer.close()
    assert [wire for wire, _ in server.seen] == wires
    assert answers == [server.reply(w) for w in wires]


async def test_idle_connection_is_closed_but_not_while_an_answer_is_outstanding():
    async with Echo(tcp_idle_timeout=0.2, hold=True) as server:
        reader, writer = await asyncio.open_connection(*server.addresses[0])
        assert await asyncio.wait_for(reader.read(), 5) == b""  # idle: closed by the server
        writer.close()

        reader, writer = await asyncio.open_connection(*server.addresses[0])
        writer.write(frame(b"\x00\x09slow"))
        await until(lambda: server.held, "the query reached the server")
        await asyncio.sleep(0.5)  # well past the idle timeout, but an answer is owed
        server.release()
        assert await read_frame(reader) == b"\x00\x09Rslow"
        assert await asyncio.wait_for(reader.read(), 5) == b""  # idle again afterwards
        writer.close()


async def test_connection_limit_closes_new_connections_until_one_ends():
    async with Echo(max_tcp_connections=2) as server:
        kept = [await asyncio.open_connection(*server.addresses[0]) for _ in range(2)]
        await until(lambda: len(server._tcp_connections) == 2, "both connections accepted")
        reader, writer = await asyncio.open_connection(*server.addresses[0])
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        kept[0][1].close()
        await until(lambda: len(server._tcp_connections) == 1, "the closed one forgotten")
        reader, writer = await asyncio.open_connection(*server.addresses[0])
        writer.write(frame(b"\x00\x0anew"))
        assert await read_frame(reader) == b"\x00\x0aRnew"
        writer.close()
        kept[1][1].close()


async def test_outstanding_bound_pauses_reading_until_answers_go_out():
    async with Echo(hold=True, max_tcp_outstanding=4) as server:
        reader, writer = await asyncio.open_connection(*server.addresses[0])
        first = [struct.pack("!H", i) + b"q" for i in range(4)]
        writer.write(b"".join(frame(w) for w in first))
        await until(lambda: len(server.held) == 4, "four queries outstanding")
        [conn] = server._tcp_connections
        assert not conn.transport.is_reading()
        rest = [struct.pack("!H", i) + b"q" for i in range(4, 10)]
        writer.write(b"".join(frame(w) for w in rest))
        await writer.drain()
        await asyncio.sleep(0.1)
        assert len(server.seen) == 4  # the rest waits in the socket, not in our memory
        server.release()
        await until(lambda: len(server.held) == 6, "reading resumed")
        server.release()
        answers = [await read_frame(reader) for _ in range(10)]
        writer.close()
    assert answers == [server.reply(w) for w in first + rest]


async def test_a_client_that_does_not_read_stops_being_read():
    count, size = 2000, 1000
    async with Echo(pad=16 * 1024) as server:
        reader, writer = await asyncio.open_connection(*server.addresses[0])
        wires = [struct.pack("!H", i % 65536) + b"s" * size for i in range(count)]
        writer.write(b"".join(frame(w) for w in wires))  # and read nothing yet
        [conn] = server._tcp_connections
        await until(lambda: conn.reading_paused, "reading paused")
        handled = -1
        for _ in range(100):  # bounded: until the server has stopped taking queries
            if handled == len(server.seen):
                break
            handled = len(server.seen)
            await asyncio.sleep(0.05)
        assert not conn.transport.is_reading() and handled < count
        assert conn.transport.get_write_buffer_size() < 8 * 1024 * 1024
        answers = [await read_frame(reader) for _ in range(count)]  # now read: all answered
        writer.close()
    assert len(server.seen) == count
    assert [a[:2] for a in answers] == [w[:2] for w in wires]


async def test_udp_repeats_come_from_the_cache_without_the_server():
    async with Echo() as server:
        port = server.addresses[0][1]
        assert await udp_exchange(port, b"\x00\x01question") == b"\x00\x01Rquestion"
        server.cache[b"question"] = b"cached"
        assert await udp_exchange(port, b"\x12\x34question") == b"\x12\x34cached"
        assert [wire for wire, _ in server.seen] == [b"\x00\x01question"]


async def test_udp_cache_entries_with_an_expiry_hold_until_it_passes():
    async with Echo() as server:
        port = server.addresses[0][1]
        server.now = 100.0
        server.cache[b"fresh"] = (100.5, b"cached")
        server.cache[b"stale"] = (100.0, b"old")
        assert await udp_exchange(port, b"\x00\x01fresh") == b"\x00\x01cached"
        assert await udp_exchange(port, b"\x00\x02stale") == b"\x00\x02Rstale"  # expired: asked
        server.now = 101.0
        assert await udp_exchange(port, b"\x00\x03fresh") == b"\x00\x03Rfresh"
        assert [wire for wire, _ in server.seen] == [b"\x00\x02stale", b"\x00\x03fresh"]


async def test_deferred_udp_answers_are_sent_when_ready():
    async with Echo(hold=True) as server:
        port = server.addresses[0][1]
        pending = asyncio.ensure_future(udp_exchange(port, b"\x00\x05later"))
        await until(lambda: server.held, "the datagram reached the server")
        server.release()
        assert await pending == b"\x00\x05Rlater"


async def test_bugs_unreadable_and_dropped_queries_cost_only_themselves(caplog):
    async with Echo() as server:
        host, port = server.addresses[0]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for junk in (b"", b"\x00", b"\x00\x01!bug", b"\x00\x02?unreadable", b"\x00\x03-drop"):
                sock.sendto(junk, (host, port))
        with caplog.at_level(logging.ERROR, logger="resolver.serving"):
            assert await udp_exchange(port, b"\x00\x04fine") == b"\x00\x04Rfine"
            for bad in (b"\x00\x05!bug", b"\x00\x06?unreadable"):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(frame(bad) + frame(b"\x00\x07never"))
                assert await asyncio.wait_for(reader.read(), 5) == b""  # stream closed
                writer.close()
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(frame(b"\x00\x08-drop") + frame(b"\x00\x09kept"))
            assert await read_frame(reader) == b"\x00\x09Rkept"  # dropped, connection stays
            writer.close()
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 2  # the two bugs
    assert (b"\x00\x07never", True) not in server.seen


async def test_close_ends_connections_and_late_answers_are_harmless():
    server = Echo(hold=True)
    await server.start()
    host, port = server.addresses[0]
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(frame(b"\x00\x01held"))
    await until(lambda: server.held, "the query reached the server")
    await server.close()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    server.release()  # the answer arrives after close: nothing to write to, nothing raised
    writer.close()
    assert server.addresses == [] and tcp_port_is_free(port)
