"""pytest-benchmark figures for issue 3: cache-hit resolve() vs dnspython's cache, and cold
validated resolution vs Unbound. Same environments as tools/bench/cache_hit.py and cold.py."""

from __future__ import annotations


import pytest

import cold
import hierarchy
from conftest import BATCH, batch
from ratios import record

pytestmark = pytest.mark.benchmark_suite


def test_cache_hit_resolve_ours(benchmark, hit_env) -> None:
    loop, (ours_resolve, _, _) = hit_env
    benchmark.group = "cache-hit resolve"
    benchmark.pedantic(batch(loop, ours_resolve), rounds=10, iterations=1)
    record(benchmark, "cache-hit resolve (target ≥ 10×)", "ours", BATCH)


def test_cache_hit_resolve_dnspython(benchmark, hit_env) -> None:
    loop, (_, _, theirs) = hit_env
    benchmark.group = "cache-hit resolve"
    benchmark.pedantic(batch(loop, theirs), rounds=10, iterations=1)
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
