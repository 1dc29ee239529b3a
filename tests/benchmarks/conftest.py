"""The pytest-benchmark suite, kept apart from the pass/fail run.

Tests marked ``benchmark_suite`` are deselected unless the ``-m`` expression names the marker:

    python3 -m pytest tests/benchmarks -m benchmark_suite --benchmark-enable

(the default ``--benchmark-disable`` in pyproject.toml would run each benchmark once, untimed).
Unmarked tests here are smoke tests of the tools/bench scripts and run in the default suite.
At the end of a timed run the ratios ours/peer of each group are printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "tools" / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

MARK = "benchmark_suite"
# group → {"ours"|"peer": operations per second, "kind": "rate"|"time"}, filled by record()
RATES: dict[str, dict] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if MARK in (config.getoption("markexpr") or ""):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker(MARK) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def record(benchmark, group: str, side: str, ops_per_call: int = 1, kind: str = "rate") -> None:
    """Remember ops/s (median round) of a finished benchmark; ``kind`` says how the ratio reads:
    "rate" → ours/peer throughput, "time" → ours/peer latency. Nothing when disabled."""
    stats = getattr(benchmark, "stats", None)
    if stats is None or not getattr(stats, "stats", None) or not stats.stats.median:
        return
    entry = RATES.setdefault(group, {"kind": kind})
    entry[side] = ops_per_call / stats.stats.median


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    rows = [(g, r) for g, r in sorted(RATES.items()) if "ours" in r and "peer" in r]
    if not rows:
        return
    terminalreporter.section("benchmark ratios (ours vs peer, same run)")
    for group, r in rows:
        if r["kind"] == "time":
            terminalreporter.write_line(
                f"{group:<30} ours {1000 / r['ours']:9.2f} ms  peer {1000 / r['peer']:9.2f} ms  "
                f"(median)  time ratio {r['peer'] / r['ours']:6.2f}×")
        else:
            terminalreporter.write_line(
                f"{group:<30} ours {r['ours']:>12,.0f}/s  peer {r['peer']:>12,.0f}/s  "
                f"(median)  ratio {r['ours'] / r['peer']:6.1f}×")
