#!/usr/bin/env python3
"""Cold validated resolution of a three-level signed hierarchy: our Resolver vs Unbound, same run.

NSD serves cid. → cmcc.cid. → bj.cmcc.cid. (Ed25519, KSK/ZSK) on 127.0.N.1-3 (a free N) port 53
(root needed: Unbound follows referrals to glue addresses on port 53). Each sample is cold on both
sides: ours is a fresh Resolver (empty cache, infra and key state), Unbound is flushed
(flush_zone cid. drops RRsets, messages and keys; flush_infra all drops RTTs) before it.

Two workloads, each timed from first query to last answer, samples alternating ours/Unbound,
a distinct identifier per sample:
  resolve  ours: Resolver.resolve(id) (SVCB, then A, AAAA, CAPS, LOAD in parallel);
           Unbound: the same five questions asked by a stub client (SVCB, then four at once)
  lookup   ours: Resolver.lookup(name, SVCB); Unbound: one SVCB query
Every answer must be validated (our status secure; Unbound's AD bit) or the run fails.
Prints median ms for both and the ratio ours/Unbound (target ≤ 1.0). Unbound's side goes
through a Python stub client; each of its samples is repeated at once from its cache, and the
ratio is also printed against the cold time minus that warm time (the stub's share).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode

import hierarchy
from bench_peers import Unbound, unbound

from resolver import Resolver
from resolver.dnssec.anchors import TrustAnchor
from support.net import free_port

CAPS, LOAD = "TYPE65380", "TYPE65381"


async def _ask(ub: Unbound, name: str, rdtype: str) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    query.flags |= dns.flags.AD  # RFC 6840 §5.7: ask for the AD bit without DO
    response = await dns.asyncquery.udp(query, ub.address, port=ub.port, timeout=5)
    if response.rcode() != dns.rcode.NOERROR or not response.flags & dns.flags.AD:
        raise RuntimeError(f"Unbound did not validate {name} {rdtype}:\n{response}")
    return response


async def unbound_resolve(ub: Unbound, name: str) -> None:
    await _ask(ub, name, "SVCB")
    await asyncio.gather(*(_ask(ub, name, t) for t in ("A", "AAAA", CAPS, LOAD)))


async def unbound_lookup(ub: Unbound, name: str) -> None:
    await _ask(ub, name, "SVCB")


def _resolver(h: hierarchy.Hierarchy, anchor: TrustAnchor) -> Resolver:
    return Resolver(hints={hierarchy.APEX: [h.addresses[hierarchy.APEX]]}, trust_anchor=anchor, port=53)


async def ours_resolve(r: Resolver, identifier: str) -> float:
    t0 = time.perf_counter()
    res = await r.resolve(identifier)
    elapsed = time.perf_counter() - t0
    if res.status.value != "secure" or not res.endpoints or not res.capabilities:
        raise RuntimeError(f"our resolve of {identifier} not secure/complete: {res.status} {res.why}")
    return elapsed


async def ours_lookup(r: Resolver, name: str) -> float:
    t0 = time.perf_counter()
    lk = await r.lookup(name, "SVCB")
    elapsed = time.perf_counter() - t0
    if lk.status.value != "secure" or lk.rrset is None:
        raise RuntimeError(f"our lookup of {name} SVCB not secure: {lk.status} {lk.why}")
    return elapsed


async def _unbound_sample(ub: Unbound, fn: Callable, name: str) -> tuple[float, float]:
    """(cold, warm): the workload after a flush, then at once again from Unbound's cache —
    the warm time is what the stub client and one cached answer per question cost."""
    ub.flush(hierarchy.APEX)  # blocking, untimed
    t0 = time.perf_counter()
    await fn(ub, name)
    t1 = time.perf_counter()
    await fn(ub, name)
    return t1 - t0, time.perf_counter() - t1


async def measure(h: hierarchy.Hierarchy, ub: Unbound, samples: int) -> dict[str, float]:
    anchor = TrustAnchor.load(h.trust_anchor)
    times: dict[str, list[float]] = {k: [] for k in ("ours_resolve", "unbound_resolve", "unbound_warm_resolve",
                                                     "ours_lookup", "unbound_lookup", "unbound_warm_lookup")}
    for i in range(samples + 1):  # sample 0 warms imports and code paths; discarded
        ident, name = h.identifiers[i % len(h.identifiers)], h.name(i)
        row = {"ours_resolve": await ours_resolve(_resolver(h, anchor), ident)}
        row["unbound_resolve"], row["unbound_warm_resolve"] = await _unbound_sample(ub, unbound_resolve, name)
        row["ours_lookup"] = await ours_lookup(_resolver(h, anchor), name)
        row["unbound_lookup"], row["unbound_warm_lookup"] = await _unbound_sample(ub, unbound_lookup, name)
        if i:
            for k, v in row.items():
                times[k].append(v)
    out = {f"{k}_ms": statistics.median(v) * 1000 for k, v in times.items()}
    for work in ("resolve", "lookup"):
        out[f"ratio_{work}"] = out[f"ours_{work}_ms"] / out[f"unbound_{work}_ms"]
        # Unbound's side is timed through a Python stub (dnspython queries over UDP), ours is
        # in-process: the stub's share, taken as the warm time, is Unbound's by right.
        server = statistics.median(c - w for c, w in zip(times[f"unbound_{work}"], times[f"unbound_warm_{work}"]))
        out[f"unbound_server_{work}_ms"] = server * 1000
        out[f"ratio_server_{work}"] = out[f"ours_{work}_ms"] / out[f"unbound_server_{work}_ms"]
    return out


@contextlib.contextmanager
def environment(workdir: Path, leaves: int, net: str | None = None, **unbound_options):
    """Build and sign the hierarchy, serve it with NSD on port 53, start a flushable Unbound."""
    h = hierarchy.build(workdir / "zones", leaves, net=net or hierarchy.free_net(53))
    with hierarchy.nsd_serving(h, 53) as stubs:
        port = free_port(h.unbound_address)
        with unbound(workdir / "unbound", h.unbound_address, port, trust_anchor=h.trust_anchor,
                     stubs={hierarchy.APEX: stubs[hierarchy.APEX]}, **unbound_options) as ub:
            yield h, ub


def run(samples: int = 21, leaves: int = 64, loop: str = "uvloop") -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="cid-bench-cold-") as tmp, \
            environment(Path(tmp), max(leaves, samples + 1)) as (h, ub):
        return _run_loop(measure(h, ub, samples), loop)


def _run_loop(coro, loop: str):
    if loop == "uvloop":
        import uvloop
        return uvloop.run(coro)
    return asyncio.run(coro)


def report(r: dict[str, float]) -> str:
    return "\n".join([
        f"cold resolve (5 RRsets, 3 signed levels): ours {r['ours_resolve_ms']:.2f} ms, "
        f"Unbound {r['unbound_resolve_ms']:.2f} ms median  → ratio {r['ratio_resolve']:.2f}× (target ≤ 1.0)",
        f"cold lookup (SVCB, 3 signed levels):      ours {r['ours_lookup_ms']:.2f} ms, "
        f"Unbound {r['unbound_lookup_ms']:.2f} ms median  → ratio {r['ratio_lookup']:.2f}× (target ≤ 1.0)",
        f"  without the stub's share (Unbound warm: {r['unbound_warm_resolve_ms']:.2f} / "
        f"{r['unbound_warm_lookup_ms']:.2f} ms): Unbound {r['unbound_server_resolve_ms']:.2f} / "
        f"{r['unbound_server_lookup_ms']:.2f} ms  → ratio {r['ratio_server_resolve']:.2f}× / "
        f"{r['ratio_server_lookup']:.2f}×",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=21, help="samples per side and workload (default 21)")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = p.parse_args(argv)
    if not 1 <= args.samples <= 10_000:
        p.error("--samples must be 1..10000")
    before = _loadavg()
    print(report(run(args.samples, loop=args.loop)))
    # Figures are only comparable at a similar load: ours is CPU-bound Python, the first to suffer.
    print(f"{args.samples} samples a side, alternated; load average before {before}, after {_loadavg()}")
    return 0


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
