"""``AiohttpResolver``: aiohttp fetches ``http://<identifier>/`` at the addresses and SVCB port of
a validated resolution. Real aiohttp web servers on 127.0.0.x, identifiers in a signed
hierarchy served by our authoritative servers on loopback."""

from __future__ import annotations

import socket
import time

import aiohttp
import dns.name
import dns.rdata
import dns.rdatatype
import pytest
from aiohttp import web

from resolver import AiohttpResolver, Resolver
from resolver.aiohttp_resolver import ResolutionError
from support import federation as F
from support.net import free_port

WEB = "127.0.0.31"       # web servers of the identifiers
WEB_B = "127.0.0.32"
DEAD = "127.0.0.33"      # an address where nothing listens


def _app(name: str) -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"{name} {request.host}")
    app = web.Application()
    app.router.add_get("/hello", hello)
    return app


@pytest.fixture
async def servers():
    """Three aiohttp servers: web (WEB:p1), other (WEB:p2) and backup (WEB_B:p3)."""
    runners, ports = [], {}
    for name, host in (("web", WEB), ("other", WEB), ("backup", WEB_B)):
        runner = web.AppRunner(_app(name))
        await runner.setup()
        site = web.TCPSite(runner, host, 0)
        await site.start()
        runners.append(runner)
        ports[name] = site._server.sockets[0].getsockname()[1]
    yield ports
    for runner in runners:
        await runner.cleanup()


def hierarchy(ports: dict[str, int]) -> F.Federation:
    dead_port = free_port(DEAD)
    bj = F.ZONES["bj.cmcc.cid."][1] + f"""
web 300 SVCB 1 . alpn=h2 port={ports['web']}
web 300 A {WEB}
web 3600 CAPS accel_kind=gpu
failover 300 SVCB 1 gone alpn=h2 port={dead_port}
failover 300 SVCB 2 standby alpn=h2 port={ports['backup']}
gone 300 A {DEAD}
standby 300 A {WEB_B}
noport 300 SVCB 1 . alpn=h2
noport 300 A {WEB}
"""
    opened = F.ZONES["open.cid."][1] + f"""
web 300 SVCB 1 . alpn=h2 port={ports['web']}
web 300 A {WEB}
"""
    return F.build(now=time.time(), overrides={"bj.cmcc.cid.": bj, "open.cid.": opened})


async def fetch(resolver: AiohttpResolver, url: str) -> str:
    connector = aiohttp.TCPConnector(resolver=resolver)
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
            assert response.status == 200
            return await response.text()


async def test_url_without_port_goes_to_the_svcb_port(servers):
    fed = hierarchy(servers)
    async with F.serving(fed) as port:
        async with Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0) as r:
            resolver = AiohttpResolver(r)
            assert await fetch(resolver, "http://web.bj.cmcc.cid/hello") == "web web.bj.cmcc.cid"
            # an explicit port is the user's choice and is kept
            assert await fetch(resolver, f"http://web.bj.cmcc.cid:{servers['other']}/hello") == \
                f"other web.bj.cmcc.cid:{servers['other']}"
            # the fully qualified spelling works too
            assert (await fetch(resolver, "http://web.bj.cmcc.cid./hello")).startswith("web ")


async def test_endpoints_in_order_with_failover_to_the_next_port(servers):
    fed = hierarchy(servers)
    async with F.serving(fed) as port:
        async with Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0) as r:
            resolver = AiohttpResolver(r)
            answers = await resolver.resolve("failover.bj.cmcc.cid", 80, socket.AF_UNSPEC)
            # priority 1 (nothing listening) is tried first, then the standby on its own port
            assert [(a["host"], a["port"]) for a in answers] == [
                (DEAD, answers[0]["port"]), (WEB_B, servers["backup"])]
            assert all(a["hostname"] == "failover.bj.cmcc.cid" and a["family"] == socket.AF_INET
                       for a in answers)
            assert await fetch(resolver, "http://failover.bj.cmcc.cid/hello") == \
                "backup failover.bj.cmcc.cid"


async def test_svcb_without_port_keeps_the_url_port(servers):
    fed = hierarchy(servers)
    async with F.serving(fed) as port:
        async with Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0) as r:
            answers = await AiohttpResolver(r).resolve("noport.bj.cmcc.cid", 443, socket.AF_INET)
            assert [(a["host"], a["port"]) for a in answers] == [(WEB, 443)]
            with pytest.raises(ResolutionError) as info:  # no IPv6 address published
                await AiohttpResolver(r).resolve("noport.bj.cmcc.cid", 443, socket.AF_INET6)
            assert info.value.errno == socket.EAI_NONAME


async def test_failures_are_dns_errors_for_aiohttp(servers):
    fed = hierarchy(servers)
    async with F.serving(fed) as port:
        async with Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0) as r:
            resolver = AiohttpResolver(r)
            with pytest.raises(aiohttp.ClientConnectorDNSError) as missing:
                await fetch(resolver, "http://nothing.bj.cmcc.cid/hello")
            assert isinstance(missing.value.os_error, ResolutionError)
            assert missing.value.os_error.errno == socket.EAI_NONAME
            # insecure is accepted by default, refused when security is required
            assert (await fetch(resolver, "http://web.open.cid/hello")).startswith("web ")
            with pytest.raises(aiohttp.ClientConnectorDNSError) as insecure:
                await fetch(AiohttpResolver(r, require_secure=True), "http://web.open.cid/hello")
            assert insecure.value.os_error.errno == socket.EAI_FAIL
            # a name outside every hinted namespace, without a fallback
            with pytest.raises(ResolutionError):
                await resolver.resolve("bad_label.example", 80)


async def test_bogus_resolution_never_connects(servers):
    fed = hierarchy(servers)
    node = fed.zones["bj.cmcc.cid."].find_node(dns.name.from_text("web.bj.cmcc.cid."))
    a = node.find_rdataset(1, dns.rdatatype.A)
    a.clear()
    a.add(dns.rdata.from_text("IN", "A", WEB_B), 300)  # redirected after signing
    async with F.serving(fed) as port:
        async with Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0) as r:
            with pytest.raises(aiohttp.ClientConnectorDNSError) as info:
                await fetch(AiohttpResolver(r), "http://web.bj.cmcc.cid/hello")
    error = info.value.os_error
    assert isinstance(error, ResolutionError) and error.errno == socket.EAI_FAIL
    assert "bogus" in str(error) and error.resolution is not None


async def test_fallback_for_names_outside_our_namespaces(servers):
    fed = hierarchy(servers)

    class Fixed(aiohttp.abc.AbstractResolver):
        """A stand-in for the system resolver that answers one loopback address."""
        closed = False

        async def resolve(self, host, port=0, family=socket.AF_INET):
            return [{"hostname": host, "host": WEB, "port": port, "family": socket.AF_INET,
                     "proto": 0, "flags": 0}]

        async def close(self):
            self.closed = True

    fallback = Fixed()
    async with F.serving(fed) as port:
        async with Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0) as r:
            resolver = AiohttpResolver(r, fallback=fallback)
            text = await fetch(resolver, f"http://plain.example:{servers['web']}/hello")
            ours = await resolver.resolve("web.bj.cmcc.cid", 80)
            await resolver.close()
    assert text == f"web plain.example:{servers['web']}"
    assert ours[0]["port"] == servers["web"]  # a name under a hinted zone is still ours
    assert fallback.closed
