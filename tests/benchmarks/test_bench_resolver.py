"""pytest-benchmark figures for issue 3: cache-hit resolve() vs dnspython's cache, and cold
validated resolution vs Unbound. Same environments as tools/bench/cache_hit.py and cold.py."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

import cache_hit
import cold
import hierarchy
from ratios import record

pytestmark = pytest.mark.benchmark_suite
BATCH = 2000


@pytest.fixture(scope="module")
def hit_env(tmp_path_factory: pytest.TempPathFactory):
    """An event loop (uvloop, as the cid command uses) with the hierarchy served by our
    AuthServers and warmed callables for ours and dnspython."""
    import uvloop
    loop = uvloop.new_event_loop()
    stack = contextlib.AsyncExitStack()
    h = hierarchy.build(tmp_path_factory.mktemp("hit"), leaves=4)
    port = loop.run_until_complete(stack.enter_async_context(cache_hit.serving(h)))
    calls = loop.run_until_complete(cache_hit.setup(h, port))
    yield loop, calls
    loop.run_until_complete(stack.aclose())
    loop.close()


def _batch(loop: asyncio.AbstractEventLoop, call):
    async def many():
        for _ in range(BATCH):
            await call()
    return lambda: loop.run_until_complete(many())


def test_cache_hit_resolve_ours(benchmark, hit_env) -> None:
    loop, (ours_resolve, _, _) = hit_env
    benchmark.group = "cache-hit resolve"
    benchmark.pedantic(_batch(loop, ours_resolve), rounds=10, iterations=1)
    record(benchmark, "cache-hit resolve (target ≥ 10×)", "ours", BATCH)


def test_cache_hit_resolve_dnspython(benchmark, hit_env) -> None:
    loop, (_, _, theirs) = hit_env
    benchmark.group = "cache-hit resolve"
    benchmark.pedantic(_batch(loop, theirs), rounds=10, iterations=1)
    record(benchmark, "cache-hit resolve (target ≥ 10×)", "peer", BATCH)


@pytest.fixture(scope="module")
def cold_env(tmp_path_factory: pytest.TempPathFactory):
    import uvloop
    from resolver.dnssec.anchors import TrustAnchor
    loop = uvloop.new_event_loop()
    with cold.environment(tmp_path_factory.mktemp("cold"), leaves=64) as (h, ub):
        yield loop, h, ub, TrustAnchor.load(h.trust_anchor)
    loop.close()


def test_cold_resolve_ours(benchmark, cold_env) -> None:
    loop, h, _, anchor = cold_env
    counter = iter(range(10**6))

    def setup():
        i = next(counter)
        return (cold._resolver(h, anchor), h.identifiers[i % len(h.identifiers)]), {}

    benchmark.group = "cold validated resolve"
    benchmark.pedantic(lambda r, ident: loop.run_until_complete(cold.ours_resolve(r, ident)),
                       setup=setup, rounds=21, warmup_rounds=1)
    record(benchmark, "cold resolve (target ≤ 1.0×)", "ours", kind="time")


def test_cold_resolve_unbound(benchmark, cold_env) -> None:
    loop, h, ub, _ = cold_env
    counter = iter(range(10**6))

    def setup():
        ub.flush(hierarchy.APEX)
        return (h.name(next(counter)),), {}

    benchmark.group = "cold validated resolve"
    benchmark.pedantic(lambda name: loop.run_until_complete(cold.unbound_resolve(ub, name)),
                       setup=setup, rounds=21, warmup_rounds=1)
    record(benchmark, "cold resolve (target ≤ 1.0×)", "peer", kind="time")
