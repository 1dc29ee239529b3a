"""Hardening and QNAME minimisation on the wire (loopback only): a recording UDP relay sits in
front of our AuthServer or a peer server (NSD, Knot) and shows exactly what the resolver sent —
or plays a broken server (no 0x20 echo, FORMERR to EDNS)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset
import pytest

from resolver import Resolver, Status
from resolver.auth.zonefile import write_zone
from resolver.drivers.transport import query_udp
from resolver.engine.case import Match, match, randomise
from support import federation as F
from support import peer_servers
from support.net import free_port

N = dns.name.from_text


@pytest.fixture(scope="module")
def fed():
    return F.build(now=time.time())


@dataclass
class Relay(asyncio.DatagramProtocol):
    """Forwards each query to ``upstream`` and its answer back; logs (client port, query).
    ``mode``: "honest", "lower" (answers with the question in lower case, like a server that
    does not echo 0x20) or "formerr-edns" (FORMERR without OPT to any query with EDNS)."""

    upstream: tuple[str, int]
    mode: str = "honest"
    log: list[tuple[int, dns.message.Message]] = field(default_factory=list)
    tasks: set = field(default_factory=set)
    transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        task = asyncio.ensure_future(self._relay(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _relay(self, data: bytes, addr) -> None:
        query = dns.message.from_wire(data)
        self.log.append((addr[1], query))
        if self.mode == "formerr-edns" and query.edns >= 0:
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.FORMERR)
            response.use_edns(False)
        else:
            try:
                response = await dns.asyncquery.udp(query, self.upstream[0], port=self.upstream[1], timeout=2.0)
            except (TimeoutError, dns.exception.Timeout):
                return
            if self.mode == "lower":
                q = response.question[0]
                response.question = [dns.rrset.RRset(q.name.canonicalize(), q.rdclass, q.rdtype)]
            elif self.mode == "spoof-first":
                self.transport.sendto(forged(query).to_wire(), addr)
        self.transport.sendto(response.to_wire(), addr)


def forged(query: dns.message.Message) -> dns.message.Message:
    """What a spoofer who guessed ID and port but not the 0x20 case would send."""
    response = dns.message.make_response(query)
    q = query.question[0]
    swapped = dns.name.Name([label.swapcase() for label in q.name.labels])
    response.question = [dns.rrset.RRset(swapped, q.rdclass, q.rdtype)]
    response.flags |= dns.flags.AA
    response.answer = [dns.rrset.from_text(swapped, 86400, "IN", "A", "203.0.113.66")]
    return response


@contextlib.asynccontextmanager
async def relays(targets: dict[str, tuple[str, int]], modes: dict[str, str] | None = None):
    """One Relay per listening address, all on one common port (the resolver uses one port)."""
    loop = asyncio.get_running_loop()
    for _ in range(5):
        port = free_port(next(iter(targets)))
        opened: dict[str, tuple[asyncio.DatagramTransport, Relay]] = {}
        try:
            for address, upstream in targets.items():
                relay = Relay(upstream, (modes or {}).get(address, "honest"))
                transport, _ = await loop.create_datagram_endpoint(lambda r=relay: r, local_addr=(address, port))
                opened[address] = (transport, relay)
        except OSError:
            for transport, _ in opened.values():
                transport.close()
            continue
        break
    else:
        raise RuntimeError("no common free port for the relays")
    try:
        yield port, {address: relay for address, (_, relay) in opened.items()}
    finally:
        for transport, relay in opened.values():
            for task in list(relay.tasks):
                task.cancel()
            transport.close()


@contextlib.asynccontextmanager
async def relayed_federation(fed, modes=None):
    async with F.serving(fed) as auth_port:
        targets = {address: (address, auth_port) for address in set(fed.addresses.values())}
        async with relays(targets, modes) as (port, by_address):
            yield port, by_address


def wire_names(relay: Relay) -> list[bytes]:
    return [b".".join(q.question[0].name.labels) for _, q in relay.log]


async def test_queries_on_the_wire_are_minimised_randomised_and_from_fresh_ports(fed):
    async with relayed_federation(fed) as (port, by_address):
        async with Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0, clock=lambda: fed.now) as r:
            res = await r.resolve("cid:pool-7.bj.cmcc.cid")
    assert res.status is Status.SECURE and res.endpoints
    apex = by_address["127.0.0.2"].log
    assert {q.question[0].name.canonicalize().to_text() for _, q in apex} <= {"cid.", "cmcc.cid."}
    everything = [entry for relay in by_address.values() for entry in relay.log]
    names = [b".".join(q.question[0].name.labels) for _, q in everything]
    assert any(n != n.lower() for n in names)  # 0x20 on the wire
    ports = [p for p, _ in everything]
    ids = [q.id for _, q in everything]
    assert len(everything) > 5
    assert len(set(ports)) >= len(ports) - 1 and len(set(ids)) >= len(ids) - 1  # fresh port and ID each time
    assert all(q.ednsflags & dns.flags.DO and q.payload == 1232 for _, q in everything)


async def test_a_server_that_does_not_echo_case_still_works_and_is_remembered(fed):
    async with relayed_federation(fed, {"127.0.0.4": "lower"}) as (port, by_address):
        async with Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0, clock=lambda: fed.now) as r:
            res = await r.resolve("cid:pool-7.bj.cmcc.cid")
            assert res.status is Status.SECURE and res.endpoints
            assert not r.cache.servers.uses_case(("127.0.0.4", port))
            assert r.cache.servers.uses_case(("127.0.0.3", port))
    # Two case strikes turn 0x20 off for the server; the zone's DNSKEY query, sent along with
    # the first query into the zone (concurrent driver), may add one more randomised query.
    names = wire_names(by_address["127.0.0.4"])
    mixed = [i for i, n in enumerate(names) if n != n.lower()]
    assert 2 <= len(mixed) <= 3
    later = names[mixed[-1] + 1:]
    assert later and all(n == n.lower() for n in later)


async def test_an_edns_less_server_is_asked_without_edns(fed):
    async with relayed_federation(fed, {"127.0.0.5": "formerr-edns"}) as (port, by_address):
        async with Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0, clock=lambda: fed.now) as r:
            res = await r.resolve("cid:pool-1.open.cid")
            assert (res.rcode, res.status) == ("NOERROR", Status.INSECURE) and res.endpoints
            assert not r.cache.servers.uses_edns(("127.0.0.5", port))
    edns = [q.edns for _, q in by_address["127.0.0.5"].log]
    assert edns[0] >= 0 and all(e < 0 for e in edns[1:])


async def test_config_turns_minimisation_and_case_off(fed, tmp_path):
    anchor = tmp_path / "ta"
    anchor.write_text(fed.anchor_text)
    async with relayed_federation(fed) as (port, by_address):
        config = tmp_path / "resolver.toml"
        config.write_text(f'hints = {{"cid." = ["127.0.0.2"]}}\ntrust_anchor = "ta"\nport = {port}\n'
                          "[engine]\nqname_minimisation = false\ncase_randomisation = false\n")
        async with Resolver.from_config(config, clock=lambda: fed.now) as r:
            res = await r.resolve("cid:pool-7.bj.cmcc.cid")
    assert res.status is Status.SECURE
    apex = wire_names(by_address["127.0.0.2"])
    assert b"pool-7.bj.cmcc.cid." in apex and all(n == n.lower() for n in apex)


@pytest.mark.parametrize("peer", ["nsd", "knot"])
async def test_peer_servers_work_with_minimisation_and_0x20(fed, tmp_path, peer):
    """NSD / Knot serving the signed federation (CAPS/LOAD in RFC 3597 form), one server for
    cid., cmcc.cid. and bj.cmcc.cid.: minimised queries land on empty non-terminals and zone
    apexes of other zones, and every answer must come back in our case, with EDNS."""
    address, relay_address = "127.0.31.1", "127.0.31.2"
    files = {}
    for zone in ("cid.", "cmcc.cid.", "bj.cmcc.cid."):
        files[zone] = tmp_path / f"{zone}zone"
        write_zone(fed.zones[zone], files[zone], generic=True)
    peer_port = free_port(address)
    with getattr(peer_servers, peer)(tmp_path / peer, address, peer_port, files):
        async with relays({relay_address: (address, peer_port)}) as (port, by_address):
            hints = {"cid.": [relay_address]}
            async with Resolver(hints, fed.anchor(), port=port, timeout=1.0, clock=lambda: fed.now) as r:
                res = await r.resolve("cid:pool-7.bj.cmcc.cid")
                server = (relay_address, port)
                assert r.cache.servers.uses_case(server) and r.cache.servers.uses_edns(server)
    assert (res.rcode, res.status) == ("NOERROR", Status.SECURE), res.why
    assert res.capabilities == {"accel_count": 8, "accel_kind": "gpu"}
    names = wire_names(by_address[relay_address])
    assert any(n != n.lower() for n in names)
    assert b"cmcc.cid." in [n.lower() for n in names]  # a minimised step was answered


async def test_a_wrong_case_spoof_racing_the_real_reply_is_ignored(fed):
    async with relayed_federation(fed, {"127.0.0.4": "spoof-first"}) as (port, by_address):
        async with Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0, clock=lambda: fed.now) as r:
            found = await r.lookup("pool-7.bj.cmcc.cid.", "A")
            assert r.cache.servers.uses_case(("127.0.0.4", port))
    assert found.status is Status.SECURE and [rd.address for rd in found.rrset] == ["192.0.2.7"]
    assert not any("case" in str(event) for event in found.trace)  # the real reply won, no retry


class _Answerer(asyncio.DatagramProtocol):
    """Replies to each query with the given messages, in order."""

    def __init__(self, replies):
        self.replies = replies

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        query = dns.message.from_wire(data)
        for make in self.replies:
            self.transport.sendto(make(query).to_wire(), addr)


@pytest.mark.parametrize("order", ["forged-then-real", "forged-only"])
async def test_transport_prefers_the_exact_reply_and_hands_over_a_case_mismatch(order):
    def real(query):
        response = dns.message.make_response(query)
        response.answer = [dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "192.0.2.1")]
        return response
    replies = [forged, real] if order == "forged-then-real" else [forged]
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Answerer(replies), local_addr=("127.0.0.1", 0))
    try:
        server = transport.get_extra_info("sockname")[:2]
        query = dns.message.make_query(randomise(N("pool-7.bj.cmcc.cid."), random.Random(4)), "A")
        response = await query_udp(query, server, timeout=5.0)
    finally:
        transport.close()
    expected = Match.EXACT if order == "forged-then-real" else Match.CASE
    assert match(query, response) is expected
    assert response.answer[0][0].address == ("192.0.2.1" if expected is Match.EXACT else "203.0.113.66")


def test_names_compressed_against_a_random_case_question_come_back_in_zone_case():
    """Servers (NSD, Knot) compress RDATA names — a CNAME target, the SOA's names — against the
    question, which carries our 0x20 pattern; parsed naively, users would see e.g.
    ``pool-7.BJ.cMcc.cid.``. parse_reply reads them in the zone's case — but only for a
    byte-exact echo: a case-only mismatch is parsed as it came, so match() still flags it."""
    from resolver.engine.case import parse_reply
    rng = random.Random(20)
    cases = [("c0.bj.cmcc.cid.", "A", "answer", "c0.bj.cmcc.cid. 300 IN CNAME pool-7.bj.cmcc.cid."),
             ("nope.bj.cmcc.cid.", "A", "authority",
              "bj.cmcc.cid. 300 IN SOA ns.bj.cmcc.cid. hostmaster.bj.cmcc.cid. 1 7200 900 1209600 300"),
             ("bj.cmcc.cid.", "NS", "answer", "bj.cmcc.cid. 300 IN NS ns.bj.cmcc.cid.")]
    for qname, rdtype, section, record in cases:
        asked = randomise(N(qname), rng)
        assert asked.labels != N(qname).labels
        query = dns.message.make_query(asked, rdtype, use_edns=0)
        wire = query.to_wire()
        response = dns.message.make_response(query)
        rrset = dns.rrset.from_text(*record.split(maxsplit=4))
        rrset.name = asked if section == "answer" else rrset.name  # owners as servers write them
        getattr(response, section).append(rrset)
        reply = response.to_wire()  # dnspython compresses RDATA names against the question
        names = lambda m: [n for r in m.answer + m.authority for rd in r  # noqa: E731
                           for n in (getattr(rd, "target", None), getattr(rd, "mname", None)) if n is not None]
        assert any(n.labels != n.canonicalize().labels for n in names(dns.message.from_wire(reply)))  # the bug
        parsed = parse_reply(reply, query, wire)
        assert match(query, parsed) is Match.EXACT
        assert names(parsed) and all(n.labels == n.canonicalize().labels for n in names(parsed)), names(parsed)
        # The same reply with the question's case changed (a spoof, or a non-echoing server).
        end = 12 + len(asked.to_wire())
        flipped = reply[:12] + reply[12:end].swapcase() + reply[end:]
        assert match(query, parse_reply(flipped, query, wire)) is Match.CASE


async def test_a_reply_without_question_ends_the_try_at_once():
    """A broken server answers NOERROR without a question section: the transport hands it
    over at once (no waiting for the timeout) and the engine counts a failed try (its data
    is never used, see test_engine_misbehaving)."""
    def bare(query):
        response = dns.message.make_response(query)
        response.question = []
        return response
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Answerer([bare]), local_addr=("127.0.0.1", 0))
    try:
        server = transport.get_extra_info("sockname")[:2]
        query = dns.message.make_query(randomise(N("pool-7.bj.cmcc.cid."), random.Random(5)), "A")
        started = loop.time()
        response = await query_udp(query, server, timeout=5.0)
        elapsed = loop.time() - started
    finally:
        transport.close()
    assert match(query, response) is Match.NO_QUESTION and not response.question
    assert elapsed < 4.0  # a bound far below the 5 s timeout, not a performance figure
