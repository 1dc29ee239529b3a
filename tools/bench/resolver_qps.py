#!/usr/bin/env python3
"""Resolver cache-hit qps over UDP: `cid serve resolver` vs Unbound (1 thread), same run.

With --workers N: `cid serve resolver --workers N` (SO_REUSEPORT processes) vs Unbound with
`num-threads: N`; each question is then asked 4N times in the warm pass (fresh source ports) so
that every worker's own cache holds it.

NSD serves the benchmark hierarchy (three signed Ed25519 levels) on port 53 (root needed); both
resolvers get the same stub (cid. → its server) and trust anchor. Every question of the query
file (--names identifiers × SVCB, A, AAAA, CAPS) is asked once through each resolver first —
and must come back validated (AD) — so the dnsperf run (-c 8 -q 200 -l SECONDS, RD, no DO) then
measures cache hits. dnsperf alternates between the two for --rounds rounds; medians reported.
Prints qps and the ratio ours/Unbound (target ≥ 1.0), and CPU time per answered query of each
(utime + stime from /proc, the server's processes and threads, over each dnsperf run): on a
machine whose cores dnsperf shares, CPU per query is the fairer figure of the two.

--profile FILE runs ours (one worker) under cProfile and writes the statistics there on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode

import hierarchy
from auth_qps import dnsperf
from bench_peers import unbound

from support import peer_servers
from support.net import free_port

TYPES = ("SVCB", "A", "AAAA", "TYPE65380")  # LOAD left out: its 15 s TTL would expire mid-run


def questions(h: hierarchy.Hierarchy, names: int) -> list[tuple[str, str]]:
    return [(h.name(i), t) for i in range(names) for t in TYPES]


@contextlib.contextmanager
def ours(h: hierarchy.Hierarchy, address: str, port: int, log: Path, workers: int = 1,
         profile: Path | None = None) -> Iterator[int]:
    """`cid serve resolver` as a user runs it; yields its process id."""
    prefix = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
    args = [sys.executable, *prefix, "-m", "resolver", "serve", "resolver", "--listen", f"{address}:{port}",
            "--hint", f"{hierarchy.APEX}={h.addresses[hierarchy.APEX]}", "--port", "53",
            "--trust-anchor", str(h.trust_anchor), "--workers", str(workers)]
    with peer_servers.process(args, log) as proc:
        peer_servers.wait_until_answers(address, port, hierarchy.APEX, proc, log)
        yield proc.pid


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads) and of its live child processes (workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                pids += [int(c) for c in f.read().split()]
    for p in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total / tick


def measured(pid: int, address: str, port: int, qfile: Path, seconds: int) -> dict[str, float]:
    """One dnsperf run, with the server's CPU seconds per completed query."""
    before = cpu_seconds(pid)
    r = dnsperf(address, port, qfile, seconds, dnssec=False)
    r["cpu_per_query"] = (cpu_seconds(pid) - before) / max(1, r["completed"])
    return r

def warm(address: str, port: int, qs: list[tuple[str, str]], times: int = 1) -> None:
    for name, rdtype in [q for q in qs for _ in range(times)]:
        query = dns.message.make_query(name, rdtype)
        query.flags |= dns.flags.AD
        response = dns.query.udp(query, address, port=port, timeout=5)
        if response.rcode() != dns.rcode.NOERROR or not response.flags & dns.flags.AD or not response.answer:
            raise RuntimeError(f"{address}:{port} did not validate {name} {rdtype}:\n{response}")


def run(seconds: int = 3, names: int = 100, rounds: int = 1, workers: int = 1,
        profile: Path | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="cid-bench-rqps-") as tmp:
        work = Path(tmp)
        h = hierarchy.build(work / "zones", leaves=names, net=hierarchy.free_net(53))
        qs = questions(h, names)
        qfile = work / "queries.txt"
        qfile.write_text("".join(f"{n} {t}\n" for n, t in qs))
        ours_addr, ub_addr = f"{h.net}.11", h.unbound_address
        ours_port, ub_port = free_port(ours_addr), free_port(ub_addr)
        mine, theirs = [], []
        with hierarchy.nsd_serving(h, 53) as stubs, \
                unbound(work / "unbound", ub_addr, ub_port, trust_anchor=h.trust_anchor,
                        stubs={hierarchy.APEX: stubs[hierarchy.APEX]}, threads=workers) as ub, \
                ours(h, ours_addr, ours_port, work / "ours.log", workers, profile) as our_pid:
            ub_pid = int((work / "unbound" / "unbound.pid").read_text())
            warm(ours_addr, ours_port, qs, 1 if workers == 1 else 4 * workers)
            warm(ub_addr, ub_port, qs, 1 if workers == 1 else 4 * workers)
            for _ in range(rounds):
                mine.append(measured(our_pid, ours_addr, ours_port, qfile, seconds))
                theirs.append(measured(ub_pid, ub_addr, ub_port, qfile, seconds))
    med = statistics.median
    return {"ours_qps": med(m["qps"] for m in mine), "unbound_qps": med(t["qps"] for t in theirs),
            "ours_lost": sum(m["lost"] for m in mine), "unbound_lost": sum(t["lost"] for t in theirs),
            "ratio": med(m["qps"] / t["qps"] for m, t in zip(mine, theirs)), "workers": workers,
            "ours_cpu_us": med(m["cpu_per_query"] for m in mine) * 1e6,
            "unbound_cpu_us": med(t["cpu_per_query"] for t in theirs) * 1e6,
            "cpu_ratio": med(m["cpu_per_query"] / max(t["cpu_per_query"], 1e-9) for m, t in zip(mine, theirs)),
            "rounds_ratio": [m["qps"] / t["qps"] for m, t in zip(mine, theirs)]}


def report(r: dict[str, float]) -> str:
    threads = f" --workers {r['workers']} vs num-threads {r['workers']}" if r.get("workers", 1) != 1 else ""
    return (f"resolver cache-hit qps{threads}: cid serve resolver {r['ours_qps']:,.0f} (lost {r['ours_lost']}), "
            f"Unbound {r['unbound_qps']:,.0f} (lost {r['unbound_lost']})  → ratio {r['ratio']:.2f}× (target ≥ 1.0)\n"
            f"  CPU per query: ours {r['ours_cpu_us']:.1f} µs, Unbound {r['unbound_cpu_us']:.1f} µs "
            f"→ {r['cpu_ratio']:.2f}× Unbound's (lower is better); rounds "
            + " ".join(f"{x:.2f}" for x in r["rounds_ratio"]) + "; load " + open("/proc/loadavg").read().strip())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-l", "--seconds", type=int, default=3, help="dnsperf -l per resolver (default 3)")
    p.add_argument("--names", type=int, default=100, help="identifiers asked about (default 100)")
    p.add_argument("--rounds", type=int, default=1, help="alternating rounds, medians (default 1)")
    p.add_argument("--workers", type=int, default=1,
                   help="ours --workers N vs Unbound num-threads N (default 1)")
    p.add_argument("--profile", type=Path, help="run ours under cProfile, statistics written to this file")
    args = p.parse_args(argv)
    if args.profile is not None and args.workers != 1:
        p.error("--profile needs --workers 1")
    if not 1 <= args.workers <= 16:
        p.error("--workers must be 1..16")
    if not (1 <= args.seconds <= 600 and 1 <= args.names <= 100_000 and 1 <= args.rounds <= 100):
        p.error("-l must be 1..600, --names 1..100000, --rounds 1..100")
    print(report(run(args.seconds, args.names, args.rounds, args.workers, args.profile)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
