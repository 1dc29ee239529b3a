#!/usr/bin/env python3
"""Signing: `cid zone sign` vs BIND's dnssec-signzone on the same generated zone with the same
Ed25519 key (one CSK made by `cid zone keygen`; both tools read BIND's key-file pair), same run.

The zone has --names owner names (default 100 000), each with one A RRset, so a signed zone
holds about two RRSIGs per name (A and NSEC). Each tool runs as a user runs it (a fresh
process: load, sign, write); wall time is measured and RRSIGs are counted in each output.
dnssec-signzone runs with its default thread count (one per CPU) and -P (no post-signing
verification: ours does not verify either). With --rounds N the two tools run alternately N times
each on the same files and the medians are compared. Prints RRSIG/s for both, the ratio
(target ≥ 2), the CPU time of each (user + system of the process and its children: what the work
costs, whatever else runs on the machine) and the load average at the start.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import hierarchy

from support.peers import require

ORIGIN = "bench.cid."


def generate(path: Path, names: int) -> Path:
    with open(path, "w") as out:
        out.write(f"$ORIGIN {ORIGIN}\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n"
                  "@ IN NS ns1\nns1 IN A 127.0.0.2\n")
        for i in range(names):
            out.write(f"pool-{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
    return path


def count_rrsigs(path: Path) -> int:
    """RRSIG records in a one-record-per-line master file (ours; dnssec-signzone -O full)."""
    n = 0
    with open(path) as f:
        for line in f:
            fields = line.split(None, 5)
            if "RRSIG" in fields[2:4] and not line.startswith(";"):
                n += 1
    return n


def _timed(args: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children): on a shared machine the wall
    time depends on what else runs; the CPU time shows the work each tool does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=3600)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}: {proc.stdout}{proc.stderr}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(names: int = 100_000, rounds: int = 1) -> dict[str, float]:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cid-bench-sign-") as tmp:
        work = Path(tmp)
        zone = generate(work / f"{ORIGIN}zone", names)
        cid = [sys.executable, "-m", "resolver"]
        keygen = subprocess.run([*cid, "zone", "keygen", ORIGIN, "--dir", str(work)], capture_output=True,
                                text=True, cwd=hierarchy.ROOT, timeout=60, check=True)
        keyfile = work / (keygen.stdout.strip() + ".key")
        ours_out, bind_out = work / "ours.signed", work / "bind.signed"
        ours, bind = [], []
        for i in range(rounds):
            # Alternated, and each side first in every other round, so drifting load hits both.
            sides = ["ours", "bind"] if i % 2 == 0 else ["bind", "ours"]
            for side in sides:
                if side == "ours":
                    ours.append(_timed([*cid, "zone", "sign", str(zone), "--key", str(keyfile), "-o", str(ours_out)],
                                       hierarchy.ROOT))
                else:
                    # -S: take the key (and its DNSKEY) from -K, as ours adds it; -z: the one key (SEP
                    # flag) signs all data, as a CSK; -O full: one record per line.
                    bind.append(_timed([require("dnssec-signzone"), "-S", "-P", "-z", "-O", "full", "-o", ORIGIN,
                                        "-f", str(bind_out), "-K", str(work), str(zone)], work))
        ours_n, bind_n = count_rrsigs(ours_out), count_rrsigs(bind_out)
    if not ours_n or not bind_n:
        raise RuntimeError(f"no RRSIGs counted (ours {ours_n}, dnssec-signzone {bind_n})")
    ours_s, ours_cpu = statistics.median(t for t, _ in ours), statistics.median(c for _, c in ours)
    bind_s, bind_cpu = statistics.median(t for t, _ in bind), statistics.median(c for _, c in bind)
    return {"ours_s": ours_s, "bind_s": bind_s, "ours_cpu": ours_cpu, "bind_cpu": bind_cpu, "ours_rrsigs": ours_n,
            "bind_rrsigs": bind_n, "ours_per_s": ours_n / ours_s, "bind_per_s": bind_n / bind_s,
            "ratio": (ours_n / ours_s) / (bind_n / bind_s), "rounds": rounds, "load": load}


def report(r: dict[str, float]) -> str:
    return (f"signing: cid zone sign {r['ours_per_s']:,.0f} RRSIG/s ({r['ours_rrsigs']} in {r['ours_s']:.1f} s), "
            f"dnssec-signzone {r['bind_per_s']:,.0f} RRSIG/s ({r['bind_rrsigs']} in {r['bind_s']:.1f} s)"
            f"  → ratio {r['ratio']:.2f}× (target ≥ 2); CPU time ours {r['ours_cpu']:.1f} s, "
            f"dnssec-signzone {r['bind_cpu']:.1f} s; medians of {r['rounds']} alternated rounds, "
            f"load average {r['load']:.2f} at the start")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--names", type=int, default=100_000, help="owner names in the zone (default 100000)")
    p.add_argument("--rounds", type=int, default=1, help="alternated runs of each tool; medians (default 1)")
    args = p.parse_args(argv)
    if not 1 <= args.names <= 2_000_000:
        p.error("--names must be 1..2000000")
    if not 1 <= args.rounds <= 50:
        p.error("--rounds must be 1..50")
    print(report(run(args.names, args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
