#!/usr/bin/env python3
"""One RRset change on a large served zone: time per change, excluding signing (target ≤ 1 ms
median on 1M names, issue 8), and what it costs to load and hold the zone.

The zone (``--names``, default 1,000,000) is pool-<i> with A + CAPS per name, NSEC-signed in
shape: every RRset has an RRSIG of the size Ed25519 gives (one 64-byte signature) and the NSEC
chain is complete, built straight into the compact store (``zonedb.ZoneBuilder``) — signing a
million names for real takes a quarter of an hour and is not what is measured here. The
signature bytes are placeholders; ``--zone FILE`` serves a real signed master file instead
(loaded by ``zoneload``, as ``cid serve auth`` loads it).

Then, with the response cache warmed by ``--warm`` questions, each of ``--changes`` changes is
timed (``time.perf_counter`` around ``ZoneStore.update``; the time spent inside the sign
callback is subtracted, so signing is excluded as the target says):

- replace: a new A RRset (and its RRSIG) at an existing name — no chain change;
- add: a new name (A + RRSIG) — NSEC inserted, the predecessor's NSEC re-pointed and re-signed;
- delete: a name's A and CAPS — the name leaves the chain.

Prints medians and 90th percentiles per kind, cached answers dropped per change, load time and
resident memory.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.rdataset  # noqa: E402
import msgpack  # noqa: E402

import resolver  # noqa: E402,F401
from resolver.auth import rdatawire, wirename, zonechange, zoneload  # noqa: E402
from resolver.auth.answer import answer_query  # noqa: E402
from resolver.auth.store import ZoneStore  # noqa: E402
from resolver.auth.zonedb import ZoneBuilder  # noqa: E402

ORIGIN = dns.name.from_text("scale.cid.")
A, NS, SOA, RRSIG, NSEC, DNSKEY, CAPS = 1, 2, 6, 46, 47, 48, 65380
SIGNATURE = bytes(64)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def rrsig(covered: int, labels: int, ttl: int) -> bytes:
    return (covered.to_bytes(2, "big") + bytes((15, labels)) + ttl.to_bytes(4, "big")
            + (2_000_000_000).to_bytes(4, "big") + (1_700_000_000).to_bytes(4, "big")
            + (4242).to_bytes(2, "big") + ORIGIN.to_wire() + SIGNATURE)


def synthetic(names: int) -> ZoneStore:
    """The zone of the module text, NSEC chain in canonical order."""
    caps = msgpack.packb({"accel_count": 8, "region": "bj"})
    apex = ORIGIN.to_wire()
    entries = [(wirename.key_of(ORIGIN), apex, [SOA, NS, DNSKEY])]
    ns1 = b"\x03ns1" + apex
    entries.append((wirename.key_of_wire(ns1), ns1, [A]))
    for i in range(names):
        label = f"pool-{i}".encode()
        wire = bytes((len(label),)) + label + apex
        entries.append((wirename.key_of_wire(wire), wire, [A, CAPS]))
    entries.sort()
    builder = ZoneBuilder(ORIGIN)
    soa = ns1 + b"\x0ahostmaster" + apex + (1).to_bytes(4, "big") + bytes(16)[:12] + (300).to_bytes(4, "big")
    for n, (key, wire, types) in enumerate(entries):
        labels = wirename.label_count(key)
        following = entries[(n + 1) % len(entries)][1]
        for rdtype in types:
            rdata = {SOA: soa, NS: ns1, DNSKEY: b"\x01\x01\x03\x0f" + bytes(32), CAPS: caps,
                     A: bytes((10, n >> 16 & 255, n >> 8 & 255, n & 255))}[rdtype]
            builder.add(key, wire, rdtype, 0, 300, rdata)
            builder.add(key, wire, RRSIG, rdtype, 300, rrsig(rdtype, labels, 300))
        bitmap = rdatawire.bitmap([b"TYPE%d" % t for t in sorted({*types, RRSIG, NSEC})])
        builder.add(key, wire, NSEC, 0, 300, following + bitmap)
        builder.add(key, wire, RRSIG, NSEC, 300, rrsig(NSEC, labels, 300))
    return ZoneStore([builder.finish()])


def query(name: str, rdtype: str = "A") -> bytes:
    q = dns.message.make_query(name, rdtype, want_dnssec=True)
    return q.to_wire()


def run(names: int, changes: int, warm: int, zone_file: str | None, seed: int = 1) -> dict:
    rng = random.Random(seed)
    rss0 = rss_mb()
    t0 = time.perf_counter()
    if zone_file:
        loaded = zoneload.load(zone_file)
        store = ZoneStore([loaded.zone])
        origin = loaded.zone.origin
    else:
        store = synthetic(names)
        origin = ORIGIN
    load_s = time.perf_counter() - t0
    rss_loaded = rss_mb()
    zone = store.zone(origin)
    count = len(zone.blobs)
    population = max(1, count - 2)
    for _ in range(warm):
        answer_query(store, query(f"pool-{rng.randrange(population)}.{origin}"), tcp=False)
    signing = [0.0]

    def sign(owner, rdtype, ttl, rdatas):
        start = time.perf_counter()
        out = [rrsig(rdtype, len(owner) - 1, ttl)]
        signing[0] += time.perf_counter() - start
        return out

    results: dict[str, list[float]] = {"replace": [], "add": [], "delete": []}
    dropped: dict[str, list[int]] = {k: [] for k in results}
    for i in range(changes):
        kind = ("replace", "add", "delete")[i % 3]
        if kind == "replace":
            owner = dns.name.from_text(f"pool-{rng.randrange(population)}", origin)
            rds = dns.rdataset.from_text("IN", "A", 300, f"10.200.{i >> 8 & 255}.{i & 255}")
            batch = [zonechange.put(owner, rds, [rrsig(A, len(owner) - 1, 300)])]
        elif kind == "add":
            owner = dns.name.from_text(f"new-{i}", origin)
            rds = dns.rdataset.from_text("IN", "A", 300, "10.201.0.1")
            batch = [zonechange.put(owner, rds, [rrsig(A, len(owner) - 1, 300)])]
        else:
            owner = dns.name.from_text(f"pool-{rng.randrange(population)}", origin)
            batch = [zonechange.delete(owner, "A"), zonechange.delete(owner, CAPS)]
        signing[0] = 0.0
        start = time.perf_counter()
        report = store.update(origin, batch, sign=sign)
        results[kind].append(time.perf_counter() - start - signing[0])
        dropped[kind].append(report.dropped)
    out = {"names": count, "load_s": load_s, "rss_mb": rss_loaded, "rss_zone_mb": rss_loaded - rss0,
           "rss_after_mb": rss_mb(), "cached": len(store.cache)}
    for kind, times in results.items():
        times.sort()
        out[f"{kind}_median_ms"] = statistics.median(times) * 1000
        out[f"{kind}_p90_ms"] = times[int(len(times) * 0.9)] * 1000
        out[f"{kind}_dropped"] = statistics.mean(dropped[kind])
    all_times = sorted(t for ts in results.values() for t in ts)
    out["median_ms"] = statistics.median(all_times) * 1000
    return out


def report(r: dict) -> str:
    lines = [f"store change: {r['names']:,} names, built/loaded in {r['load_s']:.1f} s, RSS "
             f"{r['rss_mb']:.0f} MB (zone {r['rss_zone_mb']:.0f} MB); {r['cached']:,} answers cached"]
    for kind in ("replace", "add", "delete"):
        lines.append(f"  {kind:8s} median {r[kind + '_median_ms']:.3f} ms, p90 {r[kind + '_p90_ms']:.3f} ms, "
                     f"{r[kind + '_dropped']:.1f} cached answers dropped per change")
    lines.append(f"  all kinds: median {r['median_ms']:.3f} ms (target ≤ 1 ms, signing excluded)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--names", type=int, default=1_000_000)
    p.add_argument("--changes", type=int, default=600)
    p.add_argument("--warm", type=int, default=20_000, help="questions answered before the changes")
    p.add_argument("--zone", help="a signed master file to load instead of the synthetic zone")
    args = p.parse_args(argv)
    print(report(run(args.names, args.changes, args.warm, args.zone)))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
