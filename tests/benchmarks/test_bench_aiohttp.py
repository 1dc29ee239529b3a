"""pytest-benchmark figures for AiohttpResolver ("use"): name resolution for aiohttp through our
validating Resolver (warm cache) against aiohttp's default ThreadedResolver (getaddrinfo of
``localhost`` from /etc/hosts), and whole HTTP requests without aiohttp's DNS cache, each on
a new connection, so every request resolves. Same loop (uvloop), same web server.

    python3 -m pytest tests/benchmarks/test_bench_aiohttp.py -m benchmark_suite --benchmark-enable
"""

from __future__ import annotations

import contextlib
import time

import aiohttp
import pytest
from aiohttp import web

from conftest import record
from resolver import AiohttpResolver, Resolver
from support import federation as F

pytestmark = pytest.mark.benchmark_suite
BATCH = 500
REQUESTS = 100


@pytest.fixture(scope="module")
def env():
    import uvloop
    loop = uvloop.new_event_loop()
    stack = contextlib.AsyncExitStack()

    async def start():
        async def hello(request):
            return web.Response(text="ok")
        app = web.Application()
        app.router.add_get("/hello", hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        zone = F.ZONES["bj.cmcc.cid."][1] + f"web 300 SVCB 1 . alpn=h2 port={port}\nweb 300 A 127.0.0.1\n"
        fed = F.build(now=time.time(), overrides={"bj.cmcc.cid.": zone})
        dns_port = await stack.enter_async_context(F.serving(fed))
        r = Resolver(fed.hints(), fed.anchor(), port=dns_port, timeout=1.0)
        ours = AiohttpResolver(r)
        assert (await ours.resolve("web.bj.cmcc.cid", 80))[0]["port"] == port  # warm and check
        return ours, aiohttp.ThreadedResolver(), port

    ours, theirs, port = loop.run_until_complete(start())
    yield loop, ours, theirs, port
    loop.run_until_complete(stack.aclose())
    loop.close()


def _resolves(loop, resolver, host, port):
    async def many():
        for _ in range(BATCH):
            await resolver.resolve(host, port)
    return lambda: loop.run_until_complete(many())


def test_resolve_ours(benchmark, env) -> None:
    loop, ours, _, _ = env
    benchmark.group = "aiohttp resolve"
    benchmark.pedantic(_resolves(loop, ours, "web.bj.cmcc.cid", 80), rounds=10, iterations=1)
    record(benchmark, "aiohttp resolve() vs getaddrinfo", "ours", BATCH)


def test_resolve_threaded(benchmark, env) -> None:
    loop, _, theirs, port = env
    benchmark.group = "aiohttp resolve"
    benchmark.pedantic(_resolves(loop, theirs, "localhost", port), rounds=10, iterations=1)
    record(benchmark, "aiohttp resolve() vs getaddrinfo", "peer", BATCH)


def _requests(loop, resolver, url):
    async def many():
        connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            for _ in range(REQUESTS):
                async with http.get(url) as response:
                    await response.read()
    return lambda: loop.run_until_complete(many())


def test_request_ours(benchmark, env) -> None:
    loop, ours, _, _ = env
    ours.close = _no_close  # the session closes its connector's resolver; keep ours for the next round
    benchmark.group = "aiohttp request"
    benchmark.pedantic(_requests(loop, ours, "http://web.bj.cmcc.cid/hello"), rounds=5, iterations=1)
    record(benchmark, "aiohttp GET, resolve each", "ours", REQUESTS)


def test_request_threaded(benchmark, env) -> None:
    loop, _, theirs, port = env
    benchmark.group = "aiohttp request"
    benchmark.pedantic(_requests(loop, theirs, f"http://localhost:{port}/hello"), rounds=5, iterations=1)
    record(benchmark, "aiohttp GET, resolve each", "peer", REQUESTS)


async def _no_close() -> None:
    pass
