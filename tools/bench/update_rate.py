#!/usr/bin/env python3
"""Signed updates acknowledged per second: `cid serve auth --config` vs Knot DNS (issue 9 targets).

Both servers get the same load: a dnsperf update file of distinct ``add uN.pool-1.ZONE 30 A ...``
messages, ``dnsperf -u -c 4 -q 50 -l SECONDS -y hmac-sha256:prov.:SECRET``. Knot runs as the issue
says: ``udp-workers: 1``, ``tcp-workers: 1``, ``background-workers: 1``, ``dnssec-signing: on``
under a policy ``algorithm: ed25519, nsec3: off``, an ACL ``action: update`` bound to the key,
``journal-content: all``, ``zonefile-sync: -1``. Ours runs from its own ``--config`` with the
journal on (SQLite WAL, synchronous=FULL). Each round starts each server afresh on a fresh
zone; rounds alternate (Knot, ours, Knot, ours, ...). Afterwards ``--sample`` acknowledged names
(the first N names of the file are the ones dnsperf sent; N = its NOERROR count) are asked of
each server and must be served with their RRSIG: misses are reported.

Prints per round and the medians, and the ratio ours/Knot. Loopback only (127.0.156.0/24).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT, ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rdatatype  # noqa: E402

from support import live_primary as lp  # noqa: E402
from support.net import free_port  # noqa: E402
from support.peer_servers import process  # noqa: E402
from support.peers import require  # noqa: E402
from support.update_primaries import _wait_signed, wait_until_answers  # noqa: E402

ZONE = lp.ZONE
KNOT_ADDRESS = "127.0.156.11"
OURS_ADDRESS = "127.0.156.12"


def update_file(path: Path, count: int) -> list[str]:
    names = [f"u{i}.pool-1.{ZONE}" for i in range(count)]
    with open(path, "w") as out:
        for i, name in enumerate(names):
            out.write(f"{ZONE}\nadd {name} 30 A 127.0.{(i >> 8) & 255}.{i & 255}\nsend\n")
    return names


def dnsperf(address: str, port: int, data: Path, seconds: int) -> dict:
    args = [require("dnsperf"), "-u", "-s", address, "-p", str(port), "-d", str(data), "-c", "4", "-q", "50",
            "-l", str(seconds), "-y", f"hmac-sha256:{lp.PROV}"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60).stdout
    noerror = re.search(r"NOERROR (\d+)", out)
    runtime = re.search(r"Run time \(s\):\s+([\d.]+)", out)
    completed = re.search(r"Updates completed:\s+(\d+)", out)
    if runtime is None:
        raise RuntimeError(f"dnsperf said:\n{out}")
    acked = int(noerror.group(1)) if noerror else 0
    return {"acked": acked, "completed": int(completed.group(1)) if completed else 0,
            "seconds": float(runtime.group(1)), "rate": acked / float(runtime.group(1))}


def sampled_signed(address: str, port: int, names: list[str], acked: int, sample: int, rng) -> int:
    """How many of ``sample`` acknowledged names are NOT served with an RRSIG over their A."""
    missing = 0
    for name in rng.sample(names[:acked], min(sample, acked)):
        response = dns.query.tcp(dns.message.make_query(name, "A", want_dnssec=True), address, port=port, timeout=5)
        if not any(r.rdtype == dns.rdatatype.RRSIG and r.covers == dns.rdatatype.A for r in response.answer):
            missing += 1
    return missing


def knot_round(workdir: Path, data: Path, names: list[str], seconds: int, sample: int, rng) -> dict:
    workdir.mkdir(parents=True)
    (workdir / "db").mkdir()
    port = free_port(KNOT_ADDRESS)
    (workdir / "zone.db").write_text(lp.zone_text(ZONE, KNOT_ADDRESS))
    name, secret = lp.PROV.split(":")
    conf = workdir / "knot.conf"
    conf.write_text(f"""server:
  listen: {KNOT_ADDRESS}@{port}
  rundir: "{workdir}"
  user: root
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
log:
  - target: stderr
    any: warning
database:
  storage: "{workdir}/db"
key:
  - id: {name}
    algorithm: hmac-sha256
    secret: {secret}
acl:
  - id: update
    key: {name}
    action: update
policy:
  - id: ed
    algorithm: ed25519
    nsec3: off
template:
  - id: default
    storage: "{workdir}"
    zonefile-sync: -1
    journal-content: all
zone:
  - domain: {ZONE}
    file: "{workdir}/zone.db"
    dnssec-signing: on
    dnssec-policy: ed
    acl: [ update ]
""")
    log = workdir / "knot.out"
    with process([require("knotd"), "-c", str(conf)], log) as proc:
        wait_until_answers(KNOT_ADDRESS, port, ZONE, proc, log)
        _wait_signed(KNOT_ADDRESS, port, ZONE, proc)
        result = dnsperf(KNOT_ADDRESS, port, data, seconds)
        time.sleep(1)  # Knot applies updates in the background
        result["unsigned"] = sampled_signed(KNOT_ADDRESS, port, names, result["acked"], sample, rng)
    return result


def ours_round(workdir: Path, data: Path, names: list[str], seconds: int, sample: int, rng) -> dict:
    site = lp.build(workdir, OURS_ADDRESS, free_port(OURS_ADDRESS))
    with lp.serve(site) as server:
        result = dnsperf(OURS_ADDRESS, server.port, data, seconds)
        result["unsigned"] = sampled_signed(OURS_ADDRESS, server.port, names, result["acked"], sample, rng)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (alternated; default 3)")
    parser.add_argument("--seconds", type=int, default=8, help="dnsperf -l (default 8)")
    parser.add_argument("--names", type=int, default=200000, help="distinct adds in the update file")
    parser.add_argument("--sample", type=int, default=200, help="acknowledged names checked afterwards")
    args = parser.parse_args()
    rng = random.Random(9)
    results: dict[str, list[dict]] = {"knot": [], "ours": []}
    with tempfile.TemporaryDirectory(prefix="update_rate.") as tmp:
        base = Path(tmp)
        data = base / "updates.txt"
        names = update_file(data, args.names)
        for r in range(args.rounds):
            for kind, run in (("knot", knot_round), ("ours", ours_round)):
                result = run(base / f"{kind}{r}", data, names, args.seconds, args.sample, rng)
                results[kind].append(result)
                print(f"round {r + 1} {kind:4}: {result['rate']:8.0f} acknowledged/s ({result['acked']} NOERROR of "
                      f"{result['completed']} completed in {result['seconds']:.1f} s); "
                      f"{result['unsigned']} of {min(args.sample, result['acked'])} sampled names not served signed",
                      flush=True)
    knot = statistics.median(r["rate"] for r in results["knot"])
    ours = statistics.median(r["rate"] for r in results["ours"])
    print(f"median: Knot {knot:.0f}/s, ours {ours:.0f}/s, ratio {ours / knot:.2f}x (target >= 1.5x)")
    bad = sum(r["unsigned"] for rs in results.values() for r in rs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
