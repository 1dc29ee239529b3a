"""The UDP listener's batches (recvmmsg/sendmmsg, ``resolver.udp_batch``) over real sockets:
bursts of repeats and of new questions, several clients at once, each answer to its own sender
with its own ID and the bytes ``answer_query`` makes, IPv4 and IPv6."""

from __future__ import annotations

import asyncio
import socket

import dns.message
import pytest

from resolver import udp_batch
from resolver.auth.answer import answer_query
from resolver.auth.server import AuthServer
from resolver.auth.store import ZoneStore
from support import zones

ADDRESS = "127.0.155.30"
BURST = 150


@pytest.fixture(scope="module")
def signed() -> zones.SignedZones:
    return zones.build()


def _questions(signed: zones.SignedZones, count: int, offset: int) -> list[bytes]:
    names = [n.derelativize(signed.parent.origin) for n in signed.parent.nodes]
    out = []
    for i in range(count):
        q = dns.message.make_query(names[i % len(names)], ("A", "NS", "TXT", "SOA")[i % 4],
                                   use_edns=0, payload=1232, want_dnssec=bool(i % 2))
        q.id = (offset + i) & 0xFFFF
        out.append(q.to_wire())
    return out


async def _burst(host: str, port: int, family: int, wires: list[bytes]) -> dict[int, bytes]:
    """Send every query at once from one socket, then collect the answers by ID."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.connect((host, port))
    loop = asyncio.get_running_loop()
    try:
        for wire in wires:
            sock.send(wire)
        got: dict[int, bytes] = {}
        while len(got) < len(wires):
            data = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)
            got[int.from_bytes(data[:2], "big")] = data
        return got
    finally:
        sock.close()


@pytest.mark.skipif(not udp_batch.available(), reason="no recvmmsg/sendmmsg here")
async def test_bursts_from_several_clients_get_their_own_answers(signed):
    store = ZoneStore([signed.parent])
    reference = ZoneStore([signed.parent])
    async with AuthServer(store, [(ADDRESS, 0)]) as server:
        host, port = server.addresses[0]
        assert server._udp[0].batch is not None
        # First burst: new questions (answered one by one); then repeats from the cache, from
        # three clients at once so that batches mix senders.
        rounds = [[_questions(signed, BURST, 0)],
                  [_questions(signed, BURST, 1000 * k) for k in range(3)]]
        for clients in rounds:
            results = await asyncio.gather(*[_burst(host, port, socket.AF_INET, w) for w in clients])
            for wires, got in zip(clients, results):
                assert len(got) == len(wires)
                for wire in wires:
                    qid = int.from_bytes(wire[:2], "big")
                    assert got[qid] == answer_query(reference, wire, tcp=False)
        assert sum(server.udp_rcodes) == 4 * BURST


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
async def test_ipv6_clients_are_answered(signed):
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no ::1")
    async with AuthServer(ZoneStore([signed.parent]), [("::1", 0)]) as server:
        host, port = server.addresses[0]
        wires = _questions(signed, 20, 0)
        for _ in range(2):  # new questions, then repeats
            got = await _burst(host, port, socket.AF_INET6, wires)
            assert sorted(got) == sorted(int.from_bytes(w[:2], "big") for w in wires)
