#!/usr/bin/env python3
"""Authoritative qps: `cid serve auth` vs NSD serving the same signed zone, both driven by dnsperf
in the same run (dnsperf -c 8 -q 200 -l SECONDS, DO bit set by default so answers carry RRSIGs).

The zone is the benchmark hierarchy's leaf bj.cmcc.cid. (Ed25519 KSK/ZSK, NSEC) with --names
identifiers (SVCB, A, AAAA, CAPS, LOAD each). The query file cycles those five types over the
names, plus one in ten names that do not exist (NXDOMAIN with NSEC proof). Each server has its
own loopback address (NSD with server-count 1, rate limiting off); dnsperf loads one at a time,
alternating for --rounds rounds, and medians are reported. Prints qps and the ratio ours/NSD
(target ≥ 1.0, issue 8), and each round's qps.

Ours answers a question it has not answered before by looking it up and rendering it (tens of
µs), then from its response cache; NSD has no such warm-up. So before the timed rounds each
server is sent the query file once (``dnsperf -n 1``, same -c/-q), and that cold pass is
reported on its own line: the rounds measure the steady state of a server that has seen its
questions once, the cold line what every question costs the first time.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import hierarchy
from bench_peers import nsd

from support import peer_servers
from support.net import free_port
from support.peers import require

OURS_ADDRESS, NSD_ADDRESS = "127.0.155.1", "127.0.155.2"
TYPES = ("SVCB", "A", "AAAA", "TYPE65380", "TYPE65381")


def query_file(path: Path, names: int) -> Path:
    lines = []
    for i in range(names):
        lines.append(f"pool-{i}.{hierarchy.LEAF} {TYPES[i % len(TYPES)]}")
        if i % 10 == 9:
            lines.append(f"absent-{i}.{hierarchy.LEAF} SVCB")
    path.write_text("\n".join(lines) + "\n")
    return path


@contextlib.contextmanager
def ours(zone_file: Path, address: str, port: int, log: Path) -> Iterator[None]:
    """`cid serve auth` as a user runs it (python -m resolver, same interpreter)."""
    args = [sys.executable, "-m", "resolver", "serve", "auth",
            "--listen", f"{address}:{port}", "--zone", str(zone_file)]
    with peer_servers.process(args, log) as proc:
        # Loading 100k names takes longer than the 15 s a test waits (tools/bench/startup.py times it).
        peer_servers.wait_until_answers(address, port, hierarchy.LEAF, proc, log, timeout=600)
        yield

def dnsperf(address: str, port: int, queries: Path, seconds: int, dnssec: bool,
            once: bool = False) -> dict[str, float]:
    """One dnsperf run for ``seconds``, or with ``once`` through the query file once."""
    limit = ["-n", "1"] if once else ["-l", str(seconds)]
    args = [require("dnsperf"), "-s", address, "-p", str(port), "-d", str(queries),
            "-c", "8", "-q", "200", *limit,
            # -t 1: a lost query is given up after 1 s, not dnsperf's 5 s, so short runs stay short
            "-t", "1"] + (["-D"] if dnssec else [])
    proc = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 600)
    if proc.returncode != 0:
        raise RuntimeError(f"dnsperf exited {proc.returncode}: {proc.stdout}{proc.stderr}")
    qps = re.search(r"Queries per second:\s+([\d.]+)", proc.stdout)
    completed = re.search(r"Queries completed:\s+(\d+)", proc.stdout)
    lost = re.search(r"Queries lost:\s+(\d+)", proc.stdout)
    codes = re.search(r"Response codes:\s+(.*)", proc.stdout)
    size = re.search(r"Average packet size:.*response (\d+)", proc.stdout)
    if not (qps and completed and lost and codes and size):
        raise RuntimeError(f"cannot read dnsperf output:\n{proc.stdout}")
    # A server answering REFUSED/SERVFAIL fast is not fast: only these two codes count.
    bad = [c for c in re.findall(r"([A-Z]+) \d+", codes.group(1)) if c not in ("NOERROR", "NXDOMAIN")]
    if bad:
        raise RuntimeError(f"{address}:{port} answered {codes.group(1)}")
    return {"qps": float(qps.group(1)), "completed": int(completed.group(1)), "lost": int(lost.group(1)),
            "size": int(size.group(1))}


def run(seconds: int = 3, names: int = 1000, dnssec: bool = True, rounds: int = 1) -> dict[str, float]:
    """Both servers up at once (an idle one costs no CPU); dnsperf alternates between them for
    ``rounds`` rounds so drift on a shared machine hits both; medians are reported."""
    with tempfile.TemporaryDirectory(prefix="cid-bench-auth-") as tmp:
        work = Path(tmp)
        h = hierarchy.build(work / "zones", leaves=names)
        zone = h.files[hierarchy.LEAF]
        queries = query_file(work / "queries.txt", names)
        ours_port, nsd_port = free_port(OURS_ADDRESS), free_port(NSD_ADDRESS)
        mine, theirs = [], []
        with ours(zone, OURS_ADDRESS, ours_port, work / "ours.log"), \
                nsd(work / "nsd", NSD_ADDRESS, nsd_port, {hierarchy.LEAF: zone}):
            cold = (dnsperf(OURS_ADDRESS, ours_port, queries, seconds, dnssec, once=True),
                    dnsperf(NSD_ADDRESS, nsd_port, queries, seconds, dnssec, once=True))
            for _ in range(rounds):
                mine.append(dnsperf(OURS_ADDRESS, ours_port, queries, seconds, dnssec))
                theirs.append(dnsperf(NSD_ADDRESS, nsd_port, queries, seconds, dnssec))
    med = statistics.median
    return {"ours_qps": med(m["qps"] for m in mine), "nsd_qps": med(t["qps"] for t in theirs),
            "ours_lost": sum(m["lost"] for m in mine), "nsd_lost": sum(t["lost"] for t in theirs),
            "ours_size": mine[0]["size"], "nsd_size": theirs[0]["size"],
            "ratio": med(m["qps"] / t["qps"] for m, t in zip(mine, theirs)),
            "rounds": [(m["qps"], t["qps"]) for m, t in zip(mine, theirs)],
            "cold": (cold[0]["qps"], cold[1]["qps"])}


def report(r: dict[str, float]) -> str:
    return (f"authoritative qps: cid serve auth {r['ours_qps']:,.0f} (lost {r['ours_lost']}, "
            f"{r['ours_size']} B/response), NSD {r['nsd_qps']:,.0f} (lost {r['nsd_lost']}, "
            f"{r['nsd_size']} B/response)  → ratio {r['ratio']:.2f}× (target ≥ 1.0)\n"
            + "  rounds (ours / NSD qps): " + ", ".join(f"{o:,.0f} / {n:,.0f} ({o / n:.2f}×)"
                                                  for o, n in r["rounds"])
            + f"\n  cold pass, every question new to ours (ours / NSD qps): {r['cold'][0]:,.0f} / "
              f"{r['cold'][1]:,.0f} ({r['cold'][0] / r['cold'][1]:.2f}×)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-l", "--seconds", type=int, default=3, help="dnsperf -l per server (default 3)")
    p.add_argument("--names", type=int, default=1000, help="identifiers in the zone (default 1000)")
    p.add_argument("--rounds", type=int, default=1, help="alternating rounds, medians (default 1)")
    p.add_argument("--no-dnssec", action="store_true", help="queries without the DO bit")
    args = p.parse_args(argv)
    if not (1 <= args.seconds <= 600 and 1 <= args.names <= 1_000_000 and 1 <= args.rounds <= 100):
        p.error("-l must be 1..600, --names 1..1000000, --rounds 1..100")
    print(report(run(args.seconds, args.names, not args.no_dnssec, args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
