#!/usr/bin/env python3
"""Memory per cached identifier: our Resolver's cache vs Unbound's, same run.

NSD serves the benchmark hierarchy on port 53 (root needed). Both sides first resolve one
identifier (so the delegations and keys are cached and not counted), then --names more, asking
the same five questions per identifier (SVCB, A, AAAA, CAPS, LOAD; answers signed, so RRSIGs
are cached too). Ours: growth of Python heap memory (tracemalloc, after gc) of the process
holding the Resolver — everything it keeps, including the whole-Resolution cache. Unbound: growth
of mem.cache.rrset + mem.cache.message (unbound-control stats). Prints bytes per identifier and
the ratio ours/Unbound (target ≤ 1.0). ``--top N`` also prints where our bytes go: the N
biggest growths grouped by allocating traceback, per identifier.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import sys
import tempfile
import tracemalloc
from pathlib import Path

import hierarchy
from bench_peers import Unbound
from cold import environment, unbound_resolve

from resolver import Resolver
from resolver.dnssec.anchors import TrustAnchor


def unbound_cache_bytes(ub: Unbound) -> int:
    stats = ub.control("stats_noreset")
    found = dict(re.findall(r"^mem\.cache\.(rrset|message)=(\d+)$", stats, re.M))
    if set(found) != {"rrset", "message"}:
        raise RuntimeError(f"no mem.cache figures in unbound-control stats:\n{stats[:500]}")
    return int(found["rrset"]) + int(found["message"])


async def ours_bytes(h: hierarchy.Hierarchy, names: int, top: int = 0) -> tuple[float, float]:
    """(heap growth, growth of the cache's own byte estimate) per identifier. ``top``: also
    print the ``top`` biggest growths grouped by allocating traceback (where the bytes go)."""
    r = Resolver(hints={hierarchy.APEX: [h.addresses[hierarchy.APEX]]},
                 trust_anchor=TrustAnchor.load(h.trust_anchor), port=53)
    first = await r.resolve(h.identifiers[0])
    if first.status.value != "secure":
        raise RuntimeError(f"warm-up resolve not secure: {first.why}")
    gc.collect()
    tracemalloc.start(12 if top else 1)
    first_snap = tracemalloc.take_snapshot() if top else None  # before ``before``: not counted
    before = tracemalloc.get_traced_memory()[0]
    estimate_before = r.cache.stats()["bytes"]
    kept = []
    for i in range(1, names + 1):
        # A fresh string, as a request would bring: the cache keeps the text it was asked
        # for as its key, and that string counts (the pre-built tuple's would not).
        res = await r.resolve(h.identifiers[i].encode().decode())
        if res.status.value != "secure":
            raise RuntimeError(f"resolve of {h.identifiers[i]} not secure: {res.why}")
        kept.append(None)  # results are dropped, as a caller would; only the cache holds them
    del kept, res
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    if top:
        _print_top(tracemalloc.take_snapshot().compare_to(first_snap, "traceback"), names, top)
    tracemalloc.stop()
    estimate = r.cache.stats()["bytes"]
    if estimate >= r.cache.config.max_bytes:
        raise RuntimeError("our cache hit its byte bound; lower --names")
    return (after - before) / names, (estimate - estimate_before) / names


def _print_top(diffs: list[tracemalloc.StatisticDiff], names: int, top: int) -> None:
    """The biggest growths per identifier, each with the innermost frames of the project."""
    here = str(Path(__file__).resolve().parents[2])
    for d in diffs[:top]:
        frames = [f for f in d.traceback if f.filename.startswith(here)] or list(d.traceback)
        where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in frames[-1:-5:-1])
        inner = d.traceback[-1]
        print(f"{d.size_diff / names:8.0f} B {d.count_diff / names:6.1f} blocks  "
              f"{Path(inner.filename).name}:{inner.lineno}  [{where}]", file=sys.stderr)


async def unbound_bytes(h: hierarchy.Hierarchy, ub: Unbound, names: int) -> float:
    await unbound_resolve(ub, h.name(0))
    before = unbound_cache_bytes(ub)
    for i in range(1, names + 1):
        await unbound_resolve(ub, h.name(i))
    return (unbound_cache_bytes(ub) - before) / names


def run(names: int = 500, top: int = 0) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="cid-bench-mem-") as tmp, \
            environment(Path(tmp), names + 1, extended_statistics=True) as (h, ub):
        ours, estimate = asyncio.run(ours_bytes(h, names, top))
        theirs = asyncio.run(unbound_bytes(h, ub, names))
    return {"ours_bytes": ours, "ours_estimate": estimate, "unbound_bytes": theirs, "ratio": ours / theirs}


def report(r: dict[str, float]) -> str:
    return (f"memory per cached identifier (SVCB, A, AAAA, CAPS, LOAD + RRSIGs): ours "
            f"{r['ours_bytes'] / 1024:.2f} KiB (cache's own estimate {r['ours_estimate'] / 1024:.2f} KiB), Unbound {r['unbound_bytes'] / 1024:.2f} KiB"
            f"  → ratio {r['ratio']:.2f}× (target ≤ 1.0)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--names", type=int, default=500, help="identifiers cached (default 500)")
    p.add_argument("--top", type=int, default=0, metavar="N",
                   help="also print (stderr) our N biggest growths by allocating traceback")
    args = p.parse_args(argv)
    if not 1 <= args.names <= 100_000:
        p.error("--names must be 1..100000")
    if not 0 <= args.top <= 1000:
        p.error("--top must be 0..1000")
    print(report(run(args.names, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
