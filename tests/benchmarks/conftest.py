"""The pytest-benchmark suite, kept apart from the pass/fail run.

Tests marked ``benchmark_suite`` are deselected unless the ``-m`` expression names the marker:

    python3 -m pytest tests/benchmarks -m benchmark_suite --benchmark-enable

(the default ``--benchmark-disable`` in pyproject.toml would run each benchmark once, untimed).
Unmarked tests here are smoke tests of the tools/bench scripts and run in the default suite.
At the end of a timed run the ratios ours/peer of each group are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "tools" / "bench"
for extra in (BENCH, Path(__file__).resolve().parent):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from ratios import RATES, record  # noqa: E402,F401  (record: tests import it from here too)

MARK = "benchmark_suite"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if MARK in (config.getoption("markexpr") or ""):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker(MARK) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    rows = [(g, r) for g, r in sorted(RATES.items()) if "ours" in r and "peer" in r]
    if not rows:
        return
    terminalreporter.section("benchmark ratios (ours vs peer, same run)")
    for group, r in rows:
        if r["kind"] == "time":
            terminalreporter.write_line(
                f"{group:<34} ours {1000 / r['ours']:9.2f} ms  peer {1000 / r['peer']:9.2f} ms  "
                f"(median)  time ratio {r['peer'] / r['ours']:6.2f}×")
        else:
            terminalreporter.write_line(
                f"{group:<34} ours {r['ours']:>12,.0f}/s  peer {r['peer']:>12,.0f}/s  "
                f"(median)  ratio {r['ours'] / r['peer']:6.1f}×")


BATCH = 2000  # calls per timed round of the cache-hit benchmarks


@pytest.fixture(scope="module")
def hit_env(tmp_path_factory: pytest.TempPathFactory):
    """An event loop (uvloop, as the cid command uses) with tools/bench's hierarchy served by
    our AuthServers, and warmed callables (ours resolve, ours lookup, dnspython)."""
    import uvloop

    import cache_hit
    import hierarchy

    loop = uvloop.new_event_loop()
    stack = contextlib.AsyncExitStack()
    h = hierarchy.build(tmp_path_factory.mktemp("hit"), leaves=4)
    port = loop.run_until_complete(stack.enter_async_context(cache_hit.serving(h)))
    calls = loop.run_until_complete(cache_hit.setup(h, port))
    yield loop, calls
    loop.run_until_complete(stack.aclose())
    loop.close()


def batch(loop: asyncio.AbstractEventLoop, call):
    """One timed round: BATCH awaited calls on ``loop``."""
    async def many():
        for _ in range(BATCH):
            await call()
    return lambda: loop.run_until_complete(many())
