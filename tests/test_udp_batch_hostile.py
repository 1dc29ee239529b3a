"""Hostile datagrams inside one recvmmsg batch (``resolver.udp_batch``), over real sockets.

Cached answers are written over their own query in the slot it arrived in, and out message j
is pointed at slot i only when some slot of the batch is not answered from the cache; these
tests mix misses, short, garbage and oversize datagrams with repeats so the pointers move and
move back, and check every answer reaches its own sender with its own ID and the right bytes.
The RecursiveServer test sends a whole hostile batch at once: the good queries in it are
answered exactly as they are one by one, FORMERR where the header can be addressed, nothing
where it cannot.
"""

from __future__ import annotations

import asyncio
import socket
import time

import dns.flags
import dns.message
import dns.rcode
import pytest

from resolver import Resolver, udp_batch
from resolver.service import RecursiveServer
from support import federation as F

HOST = "127.0.114.41"
pytestmark = pytest.mark.skipif(not udp_batch.available(), reason="no recvmmsg/sendmmsg here")


def _socket(host: str = HOST) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(5)
    return sock


def _receive_all(batch: udp_batch.Batch, expected: int) -> int:
    """Everything sent so far is in the server socket (loopback delivers in sendto)."""
    count = batch.receive()
    assert count == expected
    return count


def test_answers_go_to_their_senders_as_slots_miss_and_hit():
    with _socket() as server, _socket() as a, _socket() as b, _socket() as c:
        batch = udp_batch.Batch(server, 8)
        addr = server.getsockname()
        responses = {b"hit": b"HIT", b"other": b"OTHER-ANSWER"}
        # Batch 1: a misses (slot 0), b hits (slot 1: out message 0 now points at slot 1),
        # c sends one octet (slot 2: no ID, no key).
        a.sendto(b"\x00\x01miss", addr)
        b.sendto(b"\x00\x02hit", addr)
        c.sendto(b"\x07", addr)
        count = _receive_all(batch, 3)
        assert batch.answer_repeats(count, responses, None, [0] * 16) == [0, 2]
        assert batch.data(0) == b"\x00\x01miss"  # the answer written in slot 1 left slot 0 alone
        assert batch.data(2) == b"\x07"
        batch.reply(0, b"\x00\x01" + b"made for a " * 100)  # longer than its query
        assert batch.flush() == 2
        assert b.recv(100) == b"\x00\x02HIT"
        assert a.recv(2000) == b"\x00\x01" + b"made for a " * 100
        # Batch 2: every slot hits, so out messages 0 and 1 must point back at slots 0 and 1.
        c.sendto(b"\xab\xcdother", addr)
        a.sendto(b"\x12\x34hit", addr)
        count = _receive_all(batch, 2)
        assert batch.answer_repeats(count, responses, None, [0] * 16) == []
        assert batch.flush() == 2
        assert c.recv(100) == b"\xab\xcdOTHER-ANSWER"
        assert a.recv(100) == b"\x12\x34HIT"
        b.settimeout(0.2)
        with pytest.raises(TimeoutError):
            b.recv(100)  # nothing more for b: no answer went to the wrong sender


def test_b_receives_the_cached_answer_with_its_own_id():
    with _socket() as server, _socket() as a, _socket() as b:
        batch = udp_batch.Batch(server, 4)
        addr = server.getsockname()
        a.sendto(b"\x00\x01miss", addr)
        b.sendto(b"\xfe\xedhit", addr)
        count = _receive_all(batch, 2)
        rcodes = [0] * 16
        assert batch.answer_repeats(count, {b"hit": b"\x81\x83rest"}, None, rcodes) == [0]
        assert rcodes[3] == 1  # counted by the RCODE in the cached answer's fourth octet
        batch.flush()
        assert b.recv(100) == b"\xfe\xed\x81\x83rest"


def test_timed_entries_hold_while_their_expiry_is_ahead():
    with _socket() as server, _socket() as a:
        batch = udp_batch.Batch(server, 4)
        addr = server.getsockname()
        responses = {b"fresh": (10.5, b"NEW"), b"stale": (10.0, b"OLD")}
        a.sendto(b"\x00\x01stale", addr)
        a.sendto(b"\x00\x02fresh", addr)
        count = _receive_all(batch, 2)
        assert batch.answer_repeats(count, responses, 10.0, [0] * 16) == [0]  # expiry 10.0 is past
        assert batch.data(0) == b"\x00\x01stale"
        batch.flush()
        assert a.recv(100) == b"\x00\x02NEW"


def test_oversize_and_empty_datagrams_share_a_full_batch_with_repeats():
    with _socket() as server, _socket() as a:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        batch = udp_batch.Batch(server, 4)
        addr = server.getsockname()
        big = b"\x00\x09" + bytes(range(256)) * 255 + b"x" * 237  # 65519 octets
        big = big[:65507]  # the largest IPv4 UDP payload
        for wire in (b"", b"\x00\x01hit", big, b"\x00\x02hit"):
            a.sendto(wire, addr)
        count = _receive_all(batch, 4)
        assert batch.answer_repeats(count, {b"hit": b"HI"}, None, [0] * 16) == [0, 2]
        assert batch.data(0) == b"" and batch.data(2) == big  # last slot but one, read whole
        batch.reply(2, big[:2] + b"\x81\x81")
        assert batch.flush() == 3
        assert sorted(a.recv(100) for _ in range(3)) == [b"\x00\x01HI", b"\x00\x02HI", b"\x00\x09\x81\x81"]


@pytest.fixture(scope="module")
def fed():
    return F.build(now=time.time())


async def test_a_hostile_batch_still_answers_its_good_queries(fed):
    """One burst, read by the server in one recvmmsg: cached repeats (their IDs and 0x20 case
    echoed), a new question, empty, short and oversize datagrams, garbage that gets FORMERR,
    a response (QR=1, never answered) — good answers are the bytes a lone query gets."""
    name = "pool-7.bj.cmcc.cid."
    async with F.serving(fed) as port:
        resolver = Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0)
        async with RecursiveServer(resolver, [(HOST, 0)]) as server:
            addr = server.addresses[0]
            loop = asyncio.get_running_loop()

            async def ask(wire: bytes, sock: socket.socket) -> bytes:
                sock.sendto(wire, addr)
                return await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)

            def wire_of(qname: str, rdtype: str, qid: int, *, do: bool = False) -> bytes:
                q = dns.message.make_query(qname, rdtype, use_edns=0, want_dnssec=do)
                q.id = qid
                return q.to_wire()

            clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(6)]
            try:
                for sock in clients:
                    sock.bind((HOST, 0))
                    sock.setblocking(False)
                lone = await ask(wire_of(name, "A", 1, do=True), clients[0])  # renders and caches
                mixed_case = "PoOl-7.Bj.CmCc.cId."
                await ask(wire_of(mixed_case, "A", 2), clients[1])
                garbage = b"\x33\x44\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3f\x01"  # label past the end
                burst = [
                    (clients[0], wire_of(name, "A", 101, do=True)),
                    (clients[1], b""),
                    (clients[2], b"\x01"),
                    (clients[2], b"\x00\x05\x01\x00\x00\x01\x00\x00"),  # shorter than a header
                    (clients[3], garbage),
                    (clients[2], b"\x55\x66" + b"\xff" * 60000),  # oversize, QR set: dropped
                    (clients[4], b"\x55\x67\x01\x00\x00\x01" + b"\x00" * 6 + b"\xff" * 60000),  # oversize query
                    (clients[1], wire_of(mixed_case, "A", 102)),
                    (clients[5], dns.message.make_response(dns.message.make_query(name, "A")).to_wire()),
                    (clients[5], wire_of("backup.bj.cmcc.cid.", "A", 103)),  # not cached yet
                    (clients[0], wire_of(name, "A", 104, do=True)),
                ]
                for sock, wire in burst:  # all queued before the server's reader runs
                    sock.sendto(wire, addr)
                got: dict[int, list[bytes]] = {}
                for index, sock in ((0, clients[0]), (0, clients[0]), (1, clients[1]),
                                    (3, clients[3]), (4, clients[4]), (5, clients[5])):
                    data = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)
                    got.setdefault(index, []).append(data)
                for sock in clients:
                    with pytest.raises(asyncio.TimeoutError):  # nothing else for these
                        await asyncio.wait_for(loop.sock_recv(sock, 65535), 0.3)
            finally:
                for sock in clients:
                    sock.close()
    repeats = sorted(got[0])
    assert [r[:2] for r in repeats] == [b"\x00\x65", b"\x00\x68"]  # IDs 101 and 104
    assert all(r[2:] == lone[2:] for r in repeats)  # the same bytes a lone query got
    case = dns.message.from_wire(got[1][0])
    assert case.id == 102 and case.question[0].name.to_text() == mixed_case  # 0x20 case echoed
    assert case.rcode() == dns.rcode.NOERROR and not case.flags & dns.flags.AD  # neither DO nor AD asked
    for index, qid in ((3, b"\x33\x44"), (4, b"\x55\x67")):
        formerr = got[index][0]
        assert formerr[:2] == qid and formerr[2] & 0x80 and formerr[3] & 0xF == dns.rcode.FORMERR
    fresh = dns.message.from_wire(got[5][0])
    assert fresh.id == 103 and fresh.rcode() == dns.rcode.NOERROR and fresh.answer
