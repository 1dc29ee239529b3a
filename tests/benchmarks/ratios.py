"""Ratios ours/peer of the pytest-benchmark suite: tests record() their medians, conftest prints."""

from __future__ import annotations

# group → {"ours"|"peer": operations per second, "kind": "rate"|"time"}
RATES: dict[str, dict] = {}


def record(benchmark, group: str, side: str, ops_per_call: int = 1, kind: str = "rate") -> None:
    """Remember ops/s (median round) of a finished benchmark; ``kind`` says how the ratio reads:
    "rate" → ours/peer throughput, "time" → ours/peer latency. Nothing when disabled."""
    stats = getattr(benchmark, "stats", None)
    if stats is None or not getattr(stats, "stats", None) or not stats.stats.median:
        return
    entry = RATES.setdefault(group, {"kind": kind})
    entry[side] = ops_per_call / stats.stats.median
