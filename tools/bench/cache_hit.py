#!/usr/bin/env python3
"""In-process cache hits: our Resolver.resolve() vs dnspython's asyncresolver with its Cache, same run.

Our AuthServers serve the benchmark hierarchy in this process on 127.0.53.1-3 (one free port).
Ours: Resolver.resolve(identifier) — one validated Resolution (SVCB, A, AAAA, CAPS, LOAD), warmed
by one cold resolve, then repeated. dnspython: dns.asyncresolver.Resolver with dns.resolver.Cache
pointed at the leaf zone's server, resolve(name, "SVCB") warmed once, then repeated. Also
Resolver.lookup(name, SVCB) repeated (the per-RRset cache path under the whole-result cache).
Each figure is calls per second over a batch, median of the rounds; prints the ratios (target ≥ 10×).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import dns.asyncresolver
import dns.resolver

import hierarchy

from resolver import Resolver
from resolver.auth.server import AuthServer
from resolver.auth.store import ZoneStore
from resolver.dnssec.anchors import TrustAnchor
from support.net import free_port


@contextlib.asynccontextmanager
async def serving(h: hierarchy.Hierarchy) -> AsyncIterator[int]:
    """Each zone by its own AuthServer on its own address, one common port; yields the port."""
    for _ in range(5):
        port = free_port(h.addresses[hierarchy.APEX])
        servers: list[AuthServer] = []
        try:
            for zone, z in h.zones.items():
                store = ZoneStore()
                store.add(z)
                server = AuthServer(store, [(h.addresses[zone], port)])
                await server.start()
                servers.append(server)
            break
        except OSError:
            for server in servers:
                await server.close()
    else:
        raise RuntimeError(f"no common free port on {h.net}.1-3")
    try:
        yield port
    finally:
        for server in servers:
            await server.close()


async def rate(call: Callable[[], Awaitable], batch: int, rounds: int) -> float:
    """Calls per second: median over ``rounds`` batches of ``batch`` sequential awaits."""
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(batch):
            await call()
        rates.append(batch / (time.perf_counter() - t0))
    return statistics.median(rates)


async def setup(h: hierarchy.Hierarchy, port: int):
    """Warmed callables: (ours resolve, ours lookup, dnspython resolve)."""
    ours = Resolver(hints={hierarchy.APEX: [h.addresses[hierarchy.APEX]]},
                    trust_anchor=TrustAnchor.load(h.trust_anchor), port=port)
    ident, name = h.identifiers[0], h.name(0)
    first = await ours.resolve(ident)
    if first.status.value != "secure" or not first.endpoints:
        raise RuntimeError(f"warm-up resolve not secure: {first.status} {first.why}")
    again = await ours.resolve(ident)
    if again.status.value != "secure" or again.endpoints != first.endpoints:
        raise RuntimeError("cached resolve differs from the first")
    lk = await ours.lookup(name, "SVCB")
    if lk.status.value != "secure" or lk.rrset is None:
        raise RuntimeError(f"warm-up lookup not secure: {lk.status} {lk.why}")

    theirs = dns.asyncresolver.Resolver(configure=False)
    theirs.nameservers = [h.addresses[hierarchy.LEAF]]
    theirs.port = port
    theirs.cache = dns.resolver.Cache()
    answer = await theirs.resolve(name, "SVCB")
    if not len(answer.rrset):
        raise RuntimeError("dnspython warm-up got no SVCB")
    return (lambda: ours.resolve(ident)), (lambda: ours.lookup(name, "SVCB")), \
        (lambda: theirs.resolve(name, "SVCB"))


async def measure(batch: int, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="cid-bench-hit-") as tmp:
        h = hierarchy.build(Path(tmp), leaves=4)
        async with serving(h) as port:
            ours_resolve, ours_lookup, theirs = await setup(h, port)
            # Interleaved rounds so drift (other load on the machine) hits all three alike.
            out: dict[str, list[float]] = {"ours_resolve": [], "ours_lookup": [], "dnspython": []}
            for _ in range(rounds):
                out["ours_resolve"].append(await rate(ours_resolve, batch, 1))
                out["dnspython"].append(await rate(theirs, batch, 1))
                out["ours_lookup"].append(await rate(ours_lookup, max(1, batch // 10), 1))
    r = {f"{k}_per_s": statistics.median(v) for k, v in out.items()}
    r["ratio_resolve"] = r["ours_resolve_per_s"] / r["dnspython_per_s"]
    r["ratio_lookup"] = r["ours_lookup_per_s"] / r["dnspython_per_s"]
    return r


def run(batch: int = 20_000, rounds: int = 5, loop: str = "uvloop") -> dict[str, float]:
    if loop == "uvloop":
        import uvloop
        return uvloop.run(measure(batch, rounds))
    return asyncio.run(measure(batch, rounds))


def report(r: dict[str, float]) -> str:
    return "\n".join([
        f"cache-hit resolve(): ours {r['ours_resolve_per_s']:,.0f}/s, dnspython {r['dnspython_per_s']:,.0f}/s"
        f"  → ratio {r['ratio_resolve']:.1f}× (target ≥ 10)",
        f"cache-hit lookup():  ours {r['ours_lookup_per_s']:,.0f}/s, dnspython {r['dnspython_per_s']:,.0f}/s"
        f"  → ratio {r['ratio_lookup']:.2f}×",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=20_000, help="calls per round (default 20000)")
    p.add_argument("--rounds", type=int, default=5, help="rounds, median taken (default 5)")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = p.parse_args(argv)
    if not (1 <= args.batch <= 10_000_000 and 1 <= args.rounds <= 1000):
        p.error("--batch must be 1..10000000 and --rounds 1..1000")
    print(report(run(args.batch, args.rounds, args.loop)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
