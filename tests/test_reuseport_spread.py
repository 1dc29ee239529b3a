"""SO_REUSEPORT spreading (``resolver.serving.spread``): the datagrams of ONE client socket are
shared by every server of the group (the kernel's hash alone would send them all to one), each
answered by the server that read it; when a server leaves, the rest still get everything."""

from __future__ import annotations

import asyncio
import socket
import sys

import pytest

from resolver.serving import DnsServer, _group_size

HOST = "127.0.114.60"
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux SO_REUSEPORT BPF")


class Tagged(DnsServer):
    """Answers every query with its ID and this server's tag; counts what it read."""

    def __init__(self, port: int, tag: bytes):
        super().__init__([(HOST, port)])
        self.reuse_port = True
        self.tag = tag
        self.seen = 0

    def handle(self, wire, tcp, later):
        self.seen += 1
        return wire[:2] + self.tag


async def _ask(port: int, count: int) -> list[bytes]:
    """``count`` queries from one client socket (one flow), one at a time."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect((HOST, port))
        answers = []
        for i in range(count):
            sock.send(i.to_bytes(2, "big") + b"query")
            answer = await asyncio.wait_for(loop.sock_recv(sock, 512), 5)
            assert answer[:2] == i.to_bytes(2, "big")
            answers.append(answer[2:])
        return answers


async def test_one_client_socket_is_spread_over_the_group_and_survives_a_leaver():
    first = Tagged(0, b"one")
    await first.start()
    port = first.addresses[0][1]
    second = Tagged(port, b"two")
    await second.start()
    try:
        assert _group_size(second._udp[0].sock) == 2
        answers = await _ask(port, 200)
        assert first.seen + second.seen == 200
        assert first.seen >= 40 and second.seen >= 40  # random halves: P(< 40) is ~1e-18
        assert answers.count(b"one") == first.seen and answers.count(b"two") == second.seen
        await second.close()  # the group's program still says 2: index 1 falls back to the hash
        assert await _ask(port, 50) == [b"one"] * 50
    finally:
        await second.close()
        await first.close()
