"""pytest-benchmark figures for the cache: a cache-hit ``Resolver.lookup(name, "SVCB")`` against
dnspython's asyncresolver answering ``resolve(name, "SVCB")`` from its Cache, same run, same
environment as tools/bench/cache_hit.py. Memory per cached identifier is tools/cache_memory.py
(tracemalloc; ``--unbound`` against Unbound), not a timing."""

from __future__ import annotations


import pytest

from conftest import BATCH, batch
from ratios import record

pytestmark = pytest.mark.benchmark_suite
GROUP = "cache-hit lookup (aim ≥ 10×)"


def test_cache_hit_lookup_ours(benchmark, hit_env) -> None:
    loop, (_, ours_lookup, _) = hit_env
    benchmark.group = "cache-hit lookup"
    benchmark.pedantic(batch(loop, ours_lookup), rounds=10, iterations=1)
    record(benchmark, GROUP, "ours", BATCH)


def test_cache_hit_lookup_dnspython(benchmark, hit_env) -> None:
    loop, (_, _, theirs) = hit_env
    benchmark.group = "cache-hit lookup"
    benchmark.pedantic(batch(loop, theirs), rounds=10, iterations=1)
    record(benchmark, GROUP, "peer", BATCH)
