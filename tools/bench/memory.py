#!/usr/bin/env python3
"""Memory per cached identifier: our Resolver's cache vs Unbound's, same run.

NSD serves the benchmark hierarchy on port 53 (root needed). Both sides first resolve one
identifier (so the delegations and keys are cached and not counted), then --names more, asking
the same five questions per identifier (SVCB, A, AAAA, CAPS, LOAD; answers signed, so RRSIGs
are cached too). Ours: growth of Python heap memory (tracemalloc, after gc) of the process
holding the Resolver — everything it keeps, including the whole-Resolution cache. Unbound: growth
of mem.cache.rrset + mem.cache.message (unbound-control stats). Prints bytes per identifier and
the ratio ours/Unbound (target ≤ 1.0).
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


async def ours_bytes(h: hierarchy.Hierarchy, names: int) -> tuple[float, float]:
    """(heap growth, growth of the cache's own byte estimate) per identifier."""
    r = Resolver(hints={hierarchy.APEX: [h.addresses[hierarchy.APEX]]},
                 trust_anchor=TrustAnchor.load(h.trust_anchor), port=53)
    first = await r.resolve(h.identifiers[0])
    if first.status.value != "secure":
        raise RuntimeError(f"warm-up resolve not secure: {first.why}")
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    estimate_before = r.cache.stats()["bytes"]
    kept = []
    for i in range(1, names + 1):
        res = await r.resolve(h.identifiers[i])
        if res.status.value != "secure":
            raise RuntimeError(f"resolve of {h.identifiers[i]} not secure: {res.why}")
        kept.append(None)  # results are dropped, as a caller would; only the cache holds them
    del kept, res
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    estimate = r.cache.stats()["bytes"]
    if estimate >= r.cache.config.max_bytes:
        raise RuntimeError("our cache hit its byte bound; lower --names")
    return (after - before) / names, (estimate - estimate_before) / names


async def unbound_bytes(h: hierarchy.Hierarchy, ub: Unbound, names: int) -> float:
    await unbound_resolve(ub, h.name(0))
    before = unbound_cache_bytes(ub)
    for i in range(1, names + 1):
        await unbound_resolve(ub, h.name(i))
    return (unbound_cache_bytes(ub) - before) / names


def run(names: int = 500) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="cid-bench-mem-") as tmp, \
            environment(Path(tmp), names + 1, extended_statistics=True) as (h, ub):
        ours, estimate = asyncio.run(ours_bytes(h, names))
        theirs = asyncio.run(unbound_bytes(h, ub, names))
    return {"ours_bytes": ours, "ours_estimate": estimate, "unbound_bytes": theirs, "ratio": ours / theirs}


def report(r: dict[str, float]) -> str:
    return (f"memory per cached identifier (SVCB, A, AAAA, CAPS, LOAD + RRSIGs): ours "
            f"{r['ours_bytes'] / 1024:.2f} KiB (cache's own estimate {r['ours_estimate'] / 1024:.2f} KiB), Unbound {r['unbound_bytes'] / 1024:.2f} KiB"
            f"  → ratio {r['ratio']:.2f}× (target ≤ 1.0)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--names", type=int, default=500, help="identifiers cached (default 500)")
    args = p.parse_args(argv)
    if not 1 <= args.names <= 100_000:
        p.error("--names must be 1..100000")
    print(report(run(args.names)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
