"""pytest-benchmark figures for the cache: a cache-hit ``Resolver.lookup(name, "SVCB")`` against
dnspython's asyncresolver answering ``resolve(name, "SVCB")`` from its Cache, same run, same
environment as tools/bench/cache_hit.py. Memory per cached identifier is tools/cache_memory.py
(tracemalloc; ``--unbound`` against Unbound), not a timing."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

import cache_hit
import hierarchy
from ratios import record

pytestmark = pytest.mark.benchmark_suite
BATCH = 2000
GROUP = "cache-hit lookup (aim ≥ 10×)"


@pytest.fixture(scope="module")
def lookup_env(tmp_path_factory: pytest.TempPathFactory):
    """uvloop (as the cid command uses), the hierarchy served by our AuthServers, warmed calls."""
    import uvloop
    loop = uvloop.new_event_loop()
    stack = contextlib.AsyncExitStack()
    h = hierarchy.build(tmp_path_factory.mktemp("lookup"), leaves=4)
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


def test_cache_hit_lookup_ours(benchmark, lookup_env) -> None:
    loop, (_, ours_lookup, _) = lookup_env
    benchmark.group = "cache-hit lookup"
    benchmark.pedantic(_batch(loop, ours_lookup), rounds=10, iterations=1)
    record(benchmark, GROUP, "ours", BATCH)


def test_cache_hit_lookup_dnspython(benchmark, lookup_env) -> None:
    loop, (_, _, theirs) = lookup_env
    benchmark.group = "cache-hit lookup"
    benchmark.pedantic(_batch(loop, theirs), rounds=10, iterations=1)
    record(benchmark, GROUP, "peer", BATCH)
