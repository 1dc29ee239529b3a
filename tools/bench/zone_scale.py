#!/usr/bin/env python3
"""Zone scale: `cid serve auth` vs NSD on large signed zones, same files, same run.

For each size N (--names, default 5000,100000; 1000000 only when asked, it takes long) a zone of
N identifiers pool-<i> (A + CAPS in RFC 3597 form each) is signed with a fresh Ed25519 CSK by
`dnssec-signzone -S -z -O full` (NSEC, or NSEC3 with --nsec3: no salt, 0 iterations), keys and
dsset in a temporary directory. Then, alternating ours and NSD for --rounds rounds (medians):

- start to first correct answer: process start until a signed answer (AA, the A record of
  pool-<N-1>, its RRSIG) for a name near the end of the zone arrives;
- resident memory once loaded: VmRSS summed over the process and all its descendants (NSD forks
  xfrd and its server), from /proc; PSS (shared pages split) alongside;
- authoritative qps: both up, `dnsperf -c 8 -q 200 -D` for -l seconds per server, alternated,
  90 % existing names (A or CAPS), 10 % NXDOMAIN; NSD with one server process.

Ours runs as users run it (`python -m resolver serve auth --zone FILE`), so the script keeps
working whatever the store underneath. Prints one line per size with the ratios (targets: start
≤ 1.5× NSD, memory ≤ 1.5× NSD, qps ≥ 1.0× NSD); run() returns the figures for run_all.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import hierarchy  # noqa: F401  (puts the repository and tests/ on sys.path)
from auth_qps import dnsperf

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from support.net import free_port
from support.peers import require

ORIGIN = "scale.cid."
OURS_ADDRESS, NSD_ADDRESS = "127.0.71.101", "127.0.71.102"
CAPS_HEX = "82ab616363656c5f636f756e7408aa616363656c5f6b696e64a3677075"
START_TIMEOUT = 3600.0
OURS_SRC: Path | None = None  # --ours-src: run the resolver package found there


def address(i: int) -> str:
    return f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


def generate(path: Path, names: int) -> Path:
    with open(path, "w") as out:
        out.write(f"$ORIGIN {ORIGIN}\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n"
                  "@ NS ns1\nns1 A 127.0.71.100\n")
        caps = f"TYPE65380 \\# {len(CAPS_HEX) // 2} {CAPS_HEX}\n"
        for i in range(names):
            out.write(f"pool-{i} A {address(i)}\npool-{i} {caps}")
    return path


def sign(directory: Path, names: int, nsec3: bool) -> Path:
    """The signed zone file (dnssec-signzone -S -z -O full), keys and dsset in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    unsigned = generate(directory / f"{ORIGIN}zone", names)
    subprocess.run([require("dnssec-keygen"), "-q", "-K", str(directory), "-a", "ED25519", "-f", "KSK",
                    ORIGIN], check=True, capture_output=True, timeout=60)
    signed = directory / f"{ORIGIN}signed"
    args = [require("dnssec-signzone"), "-S", "-z", "-O", "full", "-K", str(directory), "-d",
            str(directory), "-o", ORIGIN, "-f", str(signed)]
    if nsec3:
        args += ["-3", "-", "-H", "0"]
    proc = subprocess.run([*args, str(unsigned)], capture_output=True, text=True, timeout=7200)
    if proc.returncode != 0:
        raise RuntimeError(f"dnssec-signzone: {proc.stdout}{proc.stderr}")
    unsigned.unlink()
    return signed


def query_file(path: Path, names: int, count: int = 20_000, seed: int = 8) -> Path:
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        i = rng.randrange(names)
        if rng.random() < 0.1:
            lines.append(f"absent-{i}.{ORIGIN} A")
        else:
            lines.append(f"pool-{i}.{ORIGIN} {'A' if rng.random() < 0.5 else 'TYPE65380'}")
    path.write_text("\n".join(lines) + "\n")
    return path


# --- processes -------------------------------------------------------------------------------

def nsd_conf(workdir: Path, listen: str, port: int, zone: Path) -> Path:
    """As tests/support/peer_servers.nsd writes it (one server process, no rate limiting); copied
    because that helper waits only 15 s for the first answer and hides the process."""
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "nsd.conf"
    conf.write_text(f"""server:
  ip-address: {listen}@{port}
  port: {port}
  username: ""
  chroot: ""
  zonesdir: "{workdir}"
  pidfile: "{workdir}/nsd.pid"
  database: ""
  xfrdfile: "{workdir}/xfrd.state"
  zonelistfile: "{workdir}/zone.list"
  logfile: "{workdir}/nsd.log"
  server-count: 1
  verbosity: 1
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: "{ORIGIN}"
  zonefile: "{zone}"
  rrl-whitelist: all
""")
    return conf


def command(who: str, workdir: Path, zone: Path, listen: str, port: int) -> list[str]:
    if who == "ours":
        return [sys.executable, "-m", "resolver", "serve", "auth", "--listen", f"{listen}:{port}",
                "--zone", str(zone)]
    return [require("nsd"), "-d", "-c", str(nsd_conf(workdir, listen, port, zone))]


@contextlib.contextmanager
def started(args: list[str], log: Path) -> Iterator[subprocess.Popen]:
    with open(log, "ab") as out:
        # python -m looks in the working directory first: --ours-src picks the package served
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=OURS_SRC or hierarchy.ROOT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def correct(listen: str, port: int, i: int) -> bool:
    """A signed authoritative answer with pool-<i>'s address."""
    query = dns.message.make_query(f"pool-{i}.{ORIGIN}", "A", want_dnssec=True, payload=1232)
    query.flags = 0
    try:
        r = dns.query.udp(query, listen, port=port, timeout=0.2)
    except (dns.exception.Timeout, OSError):
        return False
    types = {rrset.rdtype for rrset in r.answer}
    a = next((rrset for rrset in r.answer if rrset.rdtype == dns.rdatatype.A), None)
    return (r.rcode() == dns.rcode.NOERROR and bool(r.flags & dns.flags.AA) and a is not None
            and a[0].address == address(i) and dns.rdatatype.RRSIG in types)


def wait_correct(proc: subprocess.Popen, listen: str, port: int, i: int, log: Path, t0: float) -> float:
    while True:
        if correct(listen, port, i):
            return time.perf_counter() - t0
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited {proc.returncode}: {log.read_text()[-2000:]}")
        if time.perf_counter() - t0 > START_TIMEOUT:
            raise TimeoutError(f"{proc.args[0]}: no correct answer after {START_TIMEOUT:.0f} s")
        time.sleep(0.02)


def tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def memory(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in bytes summed over the process tree."""
    rss = pss = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except OSError:
            continue
    return rss, pss


def start_and_measure(who: str, work: Path, zone: Path, names: int, listen: str, round_: int) -> dict:
    port = free_port(listen)
    workdir = work / f"{who}-{round_}"
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "log"
    args = command(who, workdir, zone, listen, port)
    t0 = time.perf_counter()
    with started(args, log) as proc:
        seconds = wait_correct(proc, listen, port, names - 1, log, t0)
        time.sleep(0.5)  # let NSD's server fork settle
        rss, pss = memory(proc.pid)
    return {"start_s": seconds, "rss": rss, "pss": pss}


def run_size(work: Path, names: int, nsec3: bool, rounds: int, seconds: int) -> dict:
    t0 = time.perf_counter()
    zone = sign(work / "zone", names, nsec3)
    sign_s = time.perf_counter() - t0
    mine, theirs = [], []
    for r in range(rounds):  # alternated, ours first then NSD, so drift hits both
        mine.append(start_and_measure("ours", work, zone, names, OURS_ADDRESS, r))
        theirs.append(start_and_measure("nsd", work, zone, names, NSD_ADDRESS, r))
    queries = query_file(work / "queries.txt", names)
    qps_mine, qps_theirs = [], []
    ours_port, nsd_port = free_port(OURS_ADDRESS), free_port(NSD_ADDRESS)
    (work / "qps-nsd").mkdir(exist_ok=True)
    with started(command("ours", work, zone, OURS_ADDRESS, ours_port), work / "qps-ours.log") as ours, \
            started(command("nsd", work / "qps-nsd", zone, NSD_ADDRESS, nsd_port), work / "qps-nsd.log") as nsd:
        wait_correct(ours, OURS_ADDRESS, ours_port, names - 1, work / "qps-ours.log", time.perf_counter())
        wait_correct(nsd, NSD_ADDRESS, nsd_port, names - 1, work / "qps-nsd.log", time.perf_counter())
        for _ in range(rounds):
            qps_mine.append(dnsperf(OURS_ADDRESS, ours_port, queries, seconds, True))
            qps_theirs.append(dnsperf(NSD_ADDRESS, nsd_port, queries, seconds, True))
    med = statistics.median
    out = {"names": names, "nsec3": nsec3, "zone_bytes": zone.stat().st_size, "bind_sign_s": sign_s}
    for side, runs, qps in (("ours", mine, qps_mine), ("nsd", theirs, qps_theirs)):
        out[f"{side}_start_s"] = med(x["start_s"] for x in runs)
        out[f"{side}_rss"] = med(x["rss"] for x in runs)
        out[f"{side}_pss"] = med(x["pss"] for x in runs)
        out[f"{side}_qps"] = med(x["qps"] for x in qps)
        out[f"{side}_lost"] = sum(x["lost"] for x in qps)
    out["ratio_start"] = med(m["start_s"] / t["start_s"] for m, t in zip(mine, theirs))
    out["ratio_rss"] = med(m["rss"] / t["rss"] for m, t in zip(mine, theirs))
    out["ratio_pss"] = med(m["pss"] / t["pss"] for m, t in zip(mine, theirs))
    out["ratio_qps"] = med(m["qps"] / t["qps"] for m, t in zip(qps_mine, qps_theirs))
    return out


def run(names: int = 5000, nsec3: bool = False, rounds: int = 3, seconds: int = 5) -> dict:
    """One size: the figures of both servers and the ratios ours/NSD (see module docstring)."""
    with tempfile.TemporaryDirectory(prefix="cid-bench-scale-") as tmp:
        return run_size(Path(tmp), names, nsec3, rounds, seconds)


def report(r: dict) -> str:
    mb = 1 << 20
    return (f"zone scale {r['names']:,} names ({'NSEC3' if r['nsec3'] else 'NSEC'}, "
            f"{r['zone_bytes'] / mb:.0f} MB signed in {r['bind_sign_s']:.0f} s by dnssec-signzone): "
            f"start to first answer ours {r['ours_start_s']:.2f} s, NSD {r['nsd_start_s']:.2f} s → ratio "
            f"{r['ratio_start']:.2f}× (target ≤ 1.5); memory (RSS, all processes) ours "
            f"{r['ours_rss'] / mb:.0f} MB, NSD {r['nsd_rss'] / mb:.0f} MB → ratio {r['ratio_rss']:.2f}× "
            f"(target ≤ 1.5; PSS {r['ours_pss'] / mb:.0f} vs {r['nsd_pss'] / mb:.0f} MB, "
            f"{r['ratio_pss']:.2f}×); qps ours {r['ours_qps']:,.0f} (lost {r['ours_lost']}), NSD "
            f"{r['nsd_qps']:,.0f} (lost {r['nsd_lost']}) → ratio {r['ratio_qps']:.2f}× (target ≥ 1.0)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--names", default="5000,100000",
                   help="comma-separated zone sizes (default 5000,100000; 1000000 takes long)")
    p.add_argument("--nsec3", action="store_true", help="sign with NSEC3 (no salt, 0 iterations)")
    p.add_argument("--rounds", type=int, default=3, help="alternated rounds, medians (default 3)")
    p.add_argument("-l", "--seconds", type=int, default=5, help="dnsperf -l per server and round (default 5)")
    p.add_argument("--net", default="127.0.71", metavar="A.B.C",
                   help="loopback /24 to listen in: ours on .101, NSD on .102 (default 127.0.71)")
    p.add_argument("--ours-src", type=Path, help="directory holding the resolver package to serve "
                   "(e.g. `git archive HEAD resolver | tar -x -C DIR`; default: this checkout)")
    args = p.parse_args(argv)
    global OURS_SRC, OURS_ADDRESS, NSD_ADDRESS
    OURS_SRC = args.ours_src
    if not (args.net.startswith("127.") and args.net.count(".") == 2):
        p.error("--net: a loopback /24 such as 127.0.71")
    OURS_ADDRESS, NSD_ADDRESS = f"{args.net}.101", f"{args.net}.102"
    try:
        sizes = [int(x) for x in args.names.split(",")]
    except ValueError:
        p.error("--names: comma-separated integers")
    if not (all(2 <= n <= 2_000_000 for n in sizes) and 1 <= args.rounds <= 20 and 1 <= args.seconds <= 600):
        p.error("--names each 2..2000000, --rounds 1..20, -l 1..600")
    for n in sizes:
        print(report(run(n, args.nsec3, args.rounds, args.seconds)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
