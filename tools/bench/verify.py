#!/usr/bin/env python3
"""Zone verification: `cid zone verify` vs BIND's `dnssec-verify -z` on the same signed file, same run.

The zone has --names owner names (default 100 000), each with an A and a CAPS RRset (CAPS in
RFC 3597 form, as peers write it), signed by dnssec-signzone -O full with one Ed25519 CSK and
NSEC: about three RRSIGs per name (A, CAPS, NSEC), the file issue 8 measured. Both tools read
that one file as a user runs them (a fresh process: load, check every signature and the NSEC
chain); each must say the zone is valid. With --rounds N they run alternately N times each and
the medians are compared. Prints both wall times, the ratio (ours / theirs: target ≤ 1.0), the
CPU time of each and the load average at the start (the machine is shared: CPU time shows the
work, wall time what a user waits).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import hierarchy
from signing import _timed, count_rrsigs

from support.peers import require

ORIGIN = "bench.cid."


def caps_rdata(count: int) -> str:
    """RFC 3597 text of a canonical CAPS map {accel_count, accel_kind: gpu, region: bj}."""
    import dns.rdata

    import resolver  # noqa: F401  (registers CAPS)
    rd = dns.rdata.from_text("IN", "CAPS", f"accel_kind=gpu accel_count={count} region=bj")
    return rd.to_generic().to_text()


def generate(path: Path, names: int) -> Path:
    variants = [caps_rdata(c) for c in range(1, 9)]
    with open(path, "w") as out:
        out.write(f"$ORIGIN {ORIGIN}\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n"
                  "@ IN NS ns1\nns1 IN A 127.0.0.2\n")
        for i in range(names):
            out.write(f"pool-{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n"
                      f"pool-{i} 3600 IN TYPE65380 {variants[i % 8]}\n")
    return path


def sign_with_bind(work: Path, names: int) -> Path:
    zone = generate(work / f"{ORIGIN}zone", names)
    subprocess.run([require("dnssec-keygen"), "-q", "-K", str(work), "-a", "ED25519", "-f", "KSK", ORIGIN],
                   check=True, capture_output=True, timeout=60)
    signed = work / f"{ORIGIN}signed"
    subprocess.run([require("dnssec-signzone"), "-S", "-P", "-z", "-O", "full", "-o", ORIGIN, "-f", str(signed),
                    "-K", str(work), str(zone)], check=True, capture_output=True, cwd=work, timeout=3600)
    return signed


def run(names: int = 100_000, rounds: int = 1, jobs: int | None = None) -> dict[str, float]:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cid-bench-verify-") as tmp:
        work = Path(tmp)
        signed = sign_with_bind(work, names)
        ours_cmd = [sys.executable, "-m", "resolver", "zone", "verify", str(signed),
                    *(["--jobs", str(jobs)] if jobs else [])]
        bind_cmd = [require("dnssec-verify"), "-z", "-o", ORIGIN, str(signed)]
        ours, bind = [], []
        for i in range(rounds):
            for side in (["ours", "bind"] if i % 2 == 0 else ["bind", "ours"]):
                if side == "ours":
                    ours.append(_timed(ours_cmd, hierarchy.ROOT))  # exit 0: "ok", every signature valid
                else:
                    bind.append(_timed(bind_cmd, work))  # exit 0: "Zone fully signed"
        rrsigs = count_rrsigs(signed)
    ours_s, ours_cpu = statistics.median(t for t, _ in ours), statistics.median(c for _, c in ours)
    bind_s, bind_cpu = statistics.median(t for t, _ in bind), statistics.median(c for _, c in bind)
    return {"ours_s": ours_s, "bind_s": bind_s, "ours_cpu": ours_cpu, "bind_cpu": bind_cpu, "rrsigs": rrsigs,
            "names": names, "ratio": ours_s / bind_s, "rounds": rounds, "load": load}


def report(r: dict[str, float]) -> str:
    return (f"verify: cid zone verify {r['ours_s']:.1f} s, dnssec-verify -z {r['bind_s']:.1f} s "
            f"({r['names']:,} names, {r['rrsigs']:,} RRSIGs)  → ratio {r['ratio']:.2f}× time (target ≤ 1.0); "
            f"CPU time ours {r['ours_cpu']:.1f} s, dnssec-verify {r['bind_cpu']:.1f} s; medians of "
            f"{r['rounds']} alternated rounds, load average {r['load']:.2f} at the start")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--names", type=int, default=100_000, help="owner names in the zone (default 100000)")
    p.add_argument("--rounds", type=int, default=1, help="alternated runs of each tool; medians (default 1)")
    p.add_argument("--jobs", type=int, help="cid zone verify --jobs (default: its own, one per CPU)")
    args = p.parse_args(argv)
    if not 1 <= args.names <= 2_000_000:
        p.error("--names must be 1..2000000")
    if not 1 <= args.rounds <= 50:
        p.error("--rounds must be 1..50")
    if args.jobs is not None and not 1 <= args.jobs <= 256:
        p.error("--jobs must be 1..256")
    print(report(run(args.names, args.rounds, args.jobs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
