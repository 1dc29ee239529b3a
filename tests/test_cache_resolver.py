"""The cache through the public Resolver against servers on loopback that count every query:
coalescing of concurrent resolutions, serve-stale when the authorities refuse, prefetch of a
popular identifier, flush/dump, and the [cache] table of from_config. The servers run the
project's own authoritative answering code over UDP on 127.0.0.2-7."""

from __future__ import annotations

import asyncio
import contextlib
import time

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from resolver import Resolver, Status
from resolver.auth.answer import answer_query
from resolver.client import ResolverConfigError
from resolver.engine import trace as ev
from resolver.engine.cache import CacheConfig
from support import federation as F

ID = "cid:pool-7.bj.cmcc.cid"


@pytest.fixture(scope="module")
def fed():
    return F.build(now=time.time())


class _Counting(asyncio.DatagramProtocol):
    def __init__(self, servers: CountingServers, address: str):
        self.servers, self.address = servers, address

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        query = dns.message.from_wire(data)
        q = query.question[0]
        self.servers.queries.append((self.address, q.name.to_text().lower(), dns.rdatatype.to_text(q.rdtype)))
        if self.servers.mode == "drop":
            return
        if self.servers.mode == "refuse":
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.REFUSED)
            self.transport.sendto(response.to_wire(), addr)
            return
        wire = answer_query(self.servers.stores[self.address], data, tcp=False)
        if wire is not None:
            self.transport.sendto(wire, addr)


class CountingServers:
    """Every zone of the federation on its 127.0.0.x address, one common port; ``queries``
    records (server, qname, qtype); ``mode`` is "answer", "refuse" or "drop"."""

    def __init__(self, fed):
        self.stores = fed.stores()
        self.queries: list[tuple[str, str, str]] = []
        self.mode = "answer"
        self.port = 0

    def asked(self) -> set[tuple[str, str]]:
        return {(name, rdtype) for _, name, rdtype in self.queries}


@contextlib.asynccontextmanager
async def counting(fed):
    servers = CountingServers(fed)
    loop = asyncio.get_running_loop()
    for _ in range(5):
        port = F.free_port("127.0.0.2")
        transports = []
        try:
            for address in servers.stores:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda a=address: _Counting(servers, a), local_addr=(address, port))
                transports.append(transport)
        except OSError:
            for t in transports:
                t.close()
            continue
        break
    else:
        raise RuntimeError("no common free port on 127.0.0.2-7")
    servers.port = port
    try:
        yield servers
    finally:
        for t in transports:
            t.close()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def resolver(fed, servers, clock=None, **kw) -> Resolver:
    return Resolver(fed.hints(), fed.anchor(), port=servers.port, timeout=0.5, clock=clock or time.time, **kw)


# --- coalescing --------------------------------------------------------------------------------------------

async def test_concurrent_resolutions_of_one_identifier_cost_the_queries_of_one(fed):
    async with counting(fed) as servers:
        async with resolver(fed, servers) as r:
            one = await r.resolve(ID)
        single = len(servers.queries)
        servers.queries.clear()
        async with resolver(fed, servers) as r:
            many = await asyncio.gather(*(r.resolve(ID) for _ in range(25)))
            lookups = await asyncio.gather(*(r.lookup("zz.bj.cmcc.cid.", "A") for _ in range(10)))
    assert single >= 6 and one.status is Status.SECURE
    # 25 concurrent resolutions plus 10 concurrent NXDOMAIN lookups: the upstream traffic of one each.
    assert len(servers.queries) == single + 1
    assert all(res.endpoints == one.endpoints and res.status is Status.SECURE for res in many)
    assert all(lk is lookups[0] for lk in lookups) and lookups[0].rcode == "NXDOMAIN"


async def test_cache_hits_without_an_engine_equal_the_engines_answers(fed):
    from resolver.drivers.asyncio_driver import drive
    async with counting(fed) as servers:
        async with resolver(fed, servers, Clock()) as r:
            questions = [("pool-7.bj.cmcc.cid.", "SVCB"), ("backup.bj.cmcc.cid.", "AAAA"),
                         ("zz.bj.cmcc.cid.", "TXT"), ("c1.bj.cmcc.cid.", "A"), ("pool-7.bj.cmcc.cid.", "CAPS")]
            for name, rdtype in questions:
                await r.lookup(name, rdtype)
            servers.queries.clear()
            for name, rdtype in questions:
                fast = await r.lookup(name, rdtype)
                slow = await drive(r.engine(name, rdtype))
                assert fast == slow, (name, rdtype)
                assert any(isinstance(e, ev.CacheHit) for e in fast.trace)
                direct = r._cached(dns.name.from_text(name), dns.rdatatype.from_text(rdtype))
                assert (direct is None) == (rdtype == "A"), name  # the CNAME chain needs the engine
    assert servers.queries == []


# --- serve-stale -------------------------------------------------------------------------------------------

async def test_identifier_is_served_stale_while_its_authorities_refuse(fed):
    clock = Clock()
    async with counting(fed) as servers:
        async with resolver(fed, servers, clock) as r:
            fresh = await r.resolve(ID)
            clock.now += 301  # SVCB, A, AAAA (300) and LOAD (30) expired; CAPS (3600) not
            servers.mode = "refuse"
            stale = await r.resolve(ID)
            clock.now += 31  # the stale result is reused for 30 s at most
            still = await r.resolve(ID)
            servers.mode = "answer"
            clock.now += 31
            back = await r.resolve(ID)
    assert fresh.status is Status.SECURE and not fresh.stale and fresh.to_json()["stale"] is False
    assert stale.stale and stale.to_json()["stale"] is True
    assert stale.rcode == "NOERROR" and stale.status is Status.SECURE and stale.ttl <= 30
    assert stale.endpoints == fresh.endpoints and stale.load == fresh.load
    assert "stale" in stale.why and "SVCB" in stale.why
    assert still.stale and r.stats["stale"] >= 4  # SVCB, A, AAAA, LOAD each served stale
    assert not back.stale and back.ttl == 30 and back.status is Status.SECURE


async def test_refusing_authorities_and_no_cached_data_is_servfail_not_stale(fed):
    async with counting(fed) as servers:
        servers.mode = "refuse"
        async with resolver(fed, servers) as r:
            res = await r.resolve(ID)
    assert res.rcode == "SERVFAIL" and not res.stale and "REFUSED" in res.why


# --- prefetch ------------------------------------------------------------------------------------------------

async def test_popular_identifier_near_expiry_is_refreshed_in_the_background(fed):
    clock = Clock()
    async with counting(fed) as servers:
        async with resolver(fed, servers, clock) as r:
            await r.resolve(ID)
            servers.queries.clear()
            clock.now += 20
            mid = await r.resolve(ID)
            assert r.stats["prefetch"] == 0
            clock.now += 8  # 2 s left of LOAD's 30: within the last 10 %
            late = await r.resolve(ID)
            assert servers.queries == [] and late.ttl == 2  # answered from cache at once
            assert r.stats["prefetch"] == 1
            await r.wait_background()
            assert servers.asked() == {("pool-7.bj.cmcc.cid.", "LOAD")}  # only what was expiring
            clock.now += 5  # past the old expiry
            later = await r.resolve(ID)
    assert mid.ttl == 10 and later.ttl == 25 and later.load == late.load
    assert len(servers.queries) == 1  # the refreshed resolution served the last resolve


async def test_lookup_hit_near_expiry_prefetches_that_question(fed):
    clock = Clock()
    async with counting(fed) as servers:
        async with resolver(fed, servers, clock) as r:
            await r.lookup("backup.bj.cmcc.cid.", "A")
            servers.queries.clear()
            clock.now += 275  # 25 s left of 300
            hit = await r.lookup("backup.bj.cmcc.cid.", "A")
            assert hit.ttl == 25 and servers.queries == [] and r.stats["prefetch"] == 1
            await r.wait_background()
            clock.now += 30  # past the old expiry
            later = await r.lookup("backup.bj.cmcc.cid.", "A")
    assert servers.asked() == {("backup.bj.cmcc.cid.", "A")} and len(servers.queries) == 1
    assert later.ttl == 270 and later.status is Status.SECURE


async def test_close_cancels_background_refreshes(fed):
    clock = Clock()
    async with counting(fed) as servers:
        r = resolver(fed, servers, clock)
        await r.resolve(ID)
        clock.now += 28
        servers.mode = "drop"  # neither answer nor refuse: the refresh would wait for its timeout
        await r.resolve(ID)
        assert len(r._background) == 1
        await r.close()
        assert not r._background


# --- flush and dump ------------------------------------------------------------------------------------------

async def test_flush_by_name_and_subtree_through_the_resolver(fed):
    async with counting(fed) as servers:
        async with resolver(fed, servers, Clock()) as r:
            await r.resolve(ID)
            dump = {(rec.kind, rec.name, rec.type): rec for rec in r.cache.dump()}
            assert dump[("rrset", "pool-7.bj.cmcc.cid.", "SVCB")].status == "secure"
            assert dump[("resolution", "pool-7.bj.cmcc.cid.", "-")].ttl == 30
            assert ("trust", "bj.cmcc.cid.", "DNSKEY") in dump
            servers.queries.clear()
            assert r.cache.flush(name="pool-7.bj.cmcc.cid.") == 6  # SVCB A AAAA CAPS LOAD + resolution
            again = await r.resolve(ID)
            assert servers.asked() == {("pool-7.bj.cmcc.cid.", t) for t in ("SVCB", "A", "AAAA", "CAPS", "LOAD")}
            servers.queries.clear()
            removed = r.cache.flush(subtree="bj.cmcc.cid.")
            assert removed > 8
            assert not any(rec.name.endswith("bj.cmcc.cid.") for rec in r.cache.dump())
            await r.resolve(ID)
            assert ("bj.cmcc.cid.", "DNSKEY") in servers.asked()  # keys had to be fetched again
    assert again.status is Status.SECURE


# --- configuration -------------------------------------------------------------------------------------------

def test_from_config_reads_the_cache_table(fed, tmp_path):
    config = tmp_path / "resolver.toml"
    config.write_text('hints = {"cid." = ["127.0.0.2"]}\n'
                      "[cache]\nmax_bytes = 1048576\nmax_ttl = 600\nmin_ttl = 5\nmax_negative_ttl = 60\n"
                      "bogus_ttl = 10\nserve_stale = false\nstale_max = 7200\nprefetch = false\n")
    r = Resolver.from_config(config)
    assert r.cache.config == CacheConfig(max_bytes=1048576, max_ttl=600, min_ttl=5, max_negative_ttl=60,
                                         bogus_ttl=10, serve_stale=False, stale_max=7200, prefetch=False)
    nested = tmp_path / "nested.toml"
    nested.write_text('[resolver]\nhints = {"cid." = ["127.0.0.2"]}\n[resolver.cache]\nmax_ttl = 60\n')
    assert Resolver.from_config(nested).cache.config.max_ttl == 60
    top = tmp_path / "top.toml"
    top.write_text('[resolver]\nhints = {"cid." = ["127.0.0.2"]}\n[cache]\nstale_max = 60\n')
    assert Resolver.from_config(top).cache.config.stale_max == 60
    assert Resolver(fed.hints(), cache_config={"max_bytes": 65536}).cache.config.max_bytes == 65536


@pytest.mark.parametrize("table, message", [
    ("max_bytez = 5\n", "unknown cache setting(s) max_bytez"),
    ('max_ttl = "1d"\n', "max_ttl must be an integer"),
    ("serve_stale = 1\n", "serve_stale must be true or false"),
    ("max_bytes = 100\n", "max_bytes must be at least"),
])
def test_from_config_cache_errors_name_the_file_and_key(tmp_path, table, message):
    config = tmp_path / "resolver.toml"
    config.write_text('hints = {"cid." = ["127.0.0.2"]}\n[cache]\n' + table)
    with pytest.raises(ResolverConfigError) as err:
        Resolver.from_config(config)
    assert message in str(err.value) and "resolver.toml" in str(err.value)


# --- aggressive negative caching (RFC 8198) through the API ------------------------------------------------

@pytest.fixture(scope="module")
def fed_nsec3():
    from support.nsec3_chain import nsec3_federation
    return nsec3_federation(F.build(now=time.time()))


@pytest.mark.parametrize("chain", ["nsec", "nsec3"])
async def test_random_names_through_the_api_stop_at_the_cache(fed, fed_nsec3, chain):
    """200 random names below bj.cmcc.cid.: bj's server is asked at most once per span of its
    NSEC/NSEC3 chain, then never again (the regression: 200 names cost 201 queries)."""
    import random
    import string
    federation = fed if chain == "nsec" else fed_nsec3
    rdtype = dns.rdatatype.NSEC if chain == "nsec" else dns.rdatatype.NSEC3
    spans = sum(1 for node in federation.zones["bj.cmcc.cid."].nodes.values()
                if node.get_rdataset(1, rdtype) is not None)
    rng = random.Random(8198)
    async with counting(federation) as servers:
        async with resolver(federation, servers) as r:
            await r.lookup("pool-7.bj.cmcc.cid.", "A")
            servers.queries.clear()
            for _ in range(200):
                name = "".join(rng.choice(string.ascii_lowercase) for _ in range(12)) + ".bj.cmcc.cid."
                found = await r.lookup(name, "A")
                assert (found.rcode, found.status) == ("NXDOMAIN", Status.SECURE), found.why
            to_bj = [q for q in servers.queries if q[0] == "127.0.0.4"]
            assert len(to_bj) <= spans, (len(to_bj), spans)
            servers.queries.clear()
            for _ in range(50):
                name = "".join(rng.choice(string.ascii_lowercase) for _ in range(12)) + ".bj.cmcc.cid."
                assert (await r.lookup(name, "A")).rcode == "NXDOMAIN"
    # Only spans no earlier name fell into can still cost a query (none, in practice).
    assert len(servers.queries) <= spans - len(to_bj), servers.queries
