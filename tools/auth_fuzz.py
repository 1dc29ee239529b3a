#!/usr/bin/env python3
"""Differential fuzzing of `cid serve auth` against Knot and NSD on random zones (the long run of
tests/test_auth_random_zones.py).

    tools/auth_fuzz.py --zones 20 --seed 100 --queries 300 [--modes nsec,nsec3] [--size 2]
                       [--ours-src DIR] [--out report.txt]

Zones are made by tests/support/random_zones.py from consecutive seeds (--seed, --seed + 1, ...),
each served unsigned and signed by dnssec-signzone -O full (NSEC, NSEC3, NSEC3 opt-out) by knotd,
nsd and `cid serve auth` (as a subprocess; --ours-src runs the `resolver` package found in DIR,
e.g. an exported commit: `git archive HEAD resolver | tar -x -C DIR`). Each question goes to all
three and is judged: same; Knot and NSD differ in a known way (random_zones.PEER_DIFFERENCES) with
us on the stated side; we differ from both in a known way (random_zones.OUR_DEFECTS); or
unexplained. Prints the counts per verdict and label, writes every non-"same" case with its three
views to --out, and exits 1 when any case is unexplained or on the wrong side.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from support import random_zones as rz  # noqa: E402

ADDRESSES = {"knot": "127.0.71.11", "nsd": "127.0.71.12", "ours": "127.0.71.13"}


def run(zones: int, seed: int, queries: int, modes: tuple[str, ...] = rz.MODES, size: int = 1,
        ours_src: Path | None = None, out: Path | None = None, progress=print) -> dict:
    stats: collections.Counter = collections.Counter()
    bad = 0
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cid-auth-fuzz-") as tmp:
        work = Path(tmp)
        t0 = time.monotonic()
        signed = [rz.sign(work / "zones", rz.generate(s, f"f{s}-{m}.test.", size=size), m)
                  for s in range(seed, seed + zones) for m in modes]
        progress(f"{len(signed)} zones generated and signed in {time.monotonic() - t0:.1f} s")
        with rz.three_servers(work, signed, ADDRESSES, ours_src) as servers:
            for s in signed:
                rng = random.Random(s.zone.seed * 7 + rz.MODES.index(s.mode))
                for q in rz.battery(s, rng, queries):
                    v = rz.judge(rz.ask_all(servers, s, q), rz.PEER_DIFFERENCES, rz.OUR_DEFECTS)
                    stats[(v.kind, v.label or "-", v.ours_as or "-", "ok" if v.ok else "NOT OK")] += 1
                    if not v.ok:
                        bad += 1
                    if v.kind != "same":
                        lines.append(v.describe())
                zone_text = s.zone.text
                if any(not l.startswith("same") for l in lines):
                    lines.append(f"# zone {s.zone.origin} (seed {s.zone.seed}, {s.mode}) unsigned text:\n"
                                 + zone_text)
    if out is not None:
        out.write_text("\n".join(lines) + "\n")
    return {"stats": stats, "bad": bad, "questions": sum(stats.values())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--zones", type=int, default=10, help="seeds (each served in every mode; default 10)")
    p.add_argument("--seed", type=int, default=1000, help="first seed (default 1000)")
    p.add_argument("--queries", type=int, default=200, help="questions per zone and mode (default 200)")
    p.add_argument("--modes", default=",".join(rz.MODES), help=f"comma-separated subset of {','.join(rz.MODES)}")
    p.add_argument("--size", type=int, default=1, help="zone size factor (default 1: ~50-100 names)")
    p.add_argument("--ours-src", type=Path, help="directory holding the resolver package to serve")
    p.add_argument("--out", type=Path, help="write every non-identical case here")
    args = p.parse_args(argv)
    modes = tuple(args.modes.split(","))
    if not (1 <= args.zones <= 10_000 and 1 <= args.queries <= 100_000 and 1 <= args.size <= 100):
        p.error("--zones 1..10000, --queries 1..100000, --size 1..100")
    if not set(modes) <= set(rz.MODES):
        p.error(f"--modes: choose from {','.join(rz.MODES)}")
    r = run(args.zones, args.seed, args.queries, modes, args.size, args.ours_src, args.out)
    for (kind, label, side, ok), n in sorted(r["stats"].items()):
        print(f"{n:7d}  {kind:<13} {label:<36} ours as {side:<5} {ok}")
    print(f"{r['questions']} questions, {r['bad']} unexplained or on the wrong side")
    return 1 if r["bad"] else 0


if __name__ == "__main__":
    sys.exit(main())
