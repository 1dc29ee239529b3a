#!/usr/bin/env python3
"""Random-subdomain flood: `cid serve resolver` vs Unbound (1 thread), same run, same stub and
trust anchor, every question new (aggressive negative caching, RFC 8198, is what answers it).

NSD serves the benchmark hierarchy (cid. → cmcc.cid. → bj.cmcc.cid., Ed25519, one NSD per zone)
on port 53 of 127.0.61.1-3 (root needed), with remote control on a unix socket so the queries
arriving at each authoritative server are counted (`nsd-control stats_noreset`, num.queries)
before and after every run. Both resolvers are warmed with a few questions of the same kind
(each must come back validated: AD, the expected rcode); then dnsperf (-c 8 -q 100 -l SECONDS,
-n 1: the file is never repeated) sends --names questions that no resolver has seen:

  nxdomain  random 12-character labels under bj.cmcc.cid. (random types): all NXDOMAIN
  nodata    random types (not in the NSEC bitmap) at the zone's existing names: all NODATA

Each round has its own query file (the same for both resolvers); rounds alternate which
resolver goes first; medians are reported. With --nsec3 the leaf zone is signed by
`dnssec-signzone -3 - -H 0` (NSEC3, no salt, 0 extra iterations) instead of our signer. A
resolver that does not validate the zone's denials at warm-up is reported as failing, the other
is still measured. Prints qps, mean latency, upstream queries per 1,000 client queries (all
three authoritative servers) and the ratio ours/Unbound of qps (target ≥ 0.8).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import re
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.zone

import hierarchy
from bench_peers import nsd, unbound
from resolver_qps import ours

from resolver.auth import keys as zkeys
from resolver.auth import signer, zonefile
from support.net import free_port
from support.peers import require

DEFAULT_NET = "127.0.61"
OURS_HOST = 11
MODES = ("nxdomain", "nodata")
WARM = 16  # questions each resolver answers (and must validate) before the flood
LABEL = string.ascii_lowercase + string.digits
NX_TYPES = ("A", "AAAA", "SVCB", "TXT")
# Types never asked in nodata mode: meta/query types, DNSSEC and zone-structure types (resolvers
# treat them specially), CNAME/DNAME, the private-use range (CAPS/LOAD live there), TA/DLV.
_SKIPPED = {0, 2, 5, 6, 39, 41, 43, 46, 47, 48, 50, 51, 32768, 32769}
NODATA_TYPES = tuple(t for t in (*range(1, 128), *range(256, 65280)) if t not in _SKIPPED)


# The zones ------------------------------------------------------------------------------------
def build(directory: Path, leaves: int, net: str, nsec3: bool) -> hierarchy.Hierarchy:
    """The benchmark hierarchy; with ``nsec3`` its leaf is signed by dnssec-signzone (NSEC3)."""
    if not nsec3:
        return hierarchy.build(directory, leaves=leaves, net=net)
    directory.mkdir(parents=True, exist_ok=True)
    leaf = hierarchy.LEAF
    files: dict[str, Path] = {}
    zones: dict[str, dns.zone.Zone] = {}
    unsigned = directory / f"{leaf}unsigned"
    zonefile.write_zone(dns.zone.from_text(hierarchy._source(leaf, leaves, net), origin=leaf, relativize=False),
                        unsigned, generic=True)  # BIND knows CAPS/LOAD only in RFC 3597 form
    keydir = directory / "keys"
    keydir.mkdir(exist_ok=True)
    ksk = _tool(["dnssec-keygen", "-q", "-a", "ED25519", "-f", "KSK", "-K", str(keydir), leaf]).strip()
    _tool(["dnssec-keygen", "-q", "-a", "ED25519", "-K", str(keydir), leaf])
    files[leaf] = directory / f"{leaf}signed"
    _tool(["dnssec-signzone", "-q", "-3", "-", "-H", "0", "-K", str(keydir), "-S", "-o", leaf,
           "-d", str(directory), "-f", str(files[leaf]), str(unsigned)])  # -d: its dsset file too
    zones[leaf] = dns.zone.from_file(str(files[leaf]), origin=leaf, relativize=False)
    ds_text = {leaf: " ".join(_tool(["dnssec-dsfromkey", "-2", str(keydir / f"{ksk}.key")]).split()[3:])}
    now = time.time()
    for zone in ("cmcc.cid.", hierarchy.APEX):  # as hierarchy.build: each parent carries its child's DS
        text = hierarchy._source(zone, leaves, net)
        for child, parent in hierarchy.PARENT.items():
            if parent == zone:
                text += f"{child.split('.')[0]} IN DS {ds_text[child]}\n"
        z = dns.zone.from_text(text, origin=zone, relativize=False)
        ksk_key = zkeys.generate_key(zone, flags=zkeys.KSK_FLAGS)
        zsk_key = zkeys.generate_key(zone, flags=zkeys.ZSK_FLAGS)
        signer.sign_zone(z, [ksk_key, zsk_key], now=now)
        ds_text[zone] = signer.ds_records(dns.name.from_text(zone), [ksk_key])[0].to_text()
        files[zone] = directory / f"{zone}signed"
        zonefile.write_zone(z, files[zone], generic=True)
        zones[zone] = z
    anchor = directory / "trust-anchor.ds"
    anchor.write_text(f"{hierarchy.APEX} 3600 IN DS {ds_text[hierarchy.APEX]}\n")
    identifiers = tuple(f"cid:pool-{i}.{leaf.rstrip('.')}" for i in range(leaves))
    return hierarchy.Hierarchy(directory, files, zones, anchor, identifiers, net)


def _tool(args: list[str]) -> str:
    proc = subprocess.run([require(args[0]), *args[1:]], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {proc.stdout}{proc.stderr}")
    return proc.stdout


def spans(h: hierarchy.Hierarchy) -> int:
    """NSEC (or NSEC3) records of the leaf zone: how many ranges its denials can come from."""
    z = h.zones[hierarchy.LEAF]
    return sum(1 for node in z.nodes.values()
               for rdtype in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3) if node.get_rdataset(1, rdtype) is not None)


# Authoritative servers that count what they are asked -------------------------------------------
class Counted:
    """NSD servers with remote control: queries received so far, per zone."""

    def __init__(self, confs: dict[str, Path]):
        self.confs = confs

    def queries(self) -> dict[str, int]:
        out = {}
        for zone, conf in self.confs.items():
            proc = subprocess.run([require("nsd-control"), "-c", str(conf), "stats_noreset"],
                                  capture_output=True, text=True, timeout=10)
            found = re.search(r"^num\.queries=(\d+)$", proc.stdout, re.M)
            if proc.returncode != 0 or found is None:
                raise RuntimeError(f"nsd-control stats_noreset ({zone}): {proc.stdout}{proc.stderr}")
            out[zone] = int(found.group(1))
        return out


@contextlib.contextmanager
def serving(h: hierarchy.Hierarchy, port: int = 53) -> Iterator[tuple[dict[str, str], Counted]]:
    """One counted NSD per zone on its own address (as hierarchy.nsd_serving), each with remote
    control on a unix socket, for nsd-control."""
    with contextlib.ExitStack() as stack:
        confs = {zone: stack.enter_context(nsd(h.directory / f"nsd-{zone.rstrip('.')}", h.addresses[zone],
                                               port, {zone: path}, control=True))
                 for zone, path in h.files.items()}
        yield {zone: f"{h.addresses[zone]}@{port}" for zone in h.files}, Counted(confs)


def check_free(net: str, port: int = 53) -> None:
    for host in (*hierarchy.HOSTS.values(), hierarchy.UNBOUND_HOST, OURS_HOST):
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with socket.socket(socket.AF_INET, kind) as s:
                if kind == socket.SOCK_STREAM:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((f"{net}.{host}", port))
                except OSError as exc:
                    raise RuntimeError(f"{net}.{host} port {port} is busy ({exc.strerror}): "
                                       f"another run? choose another --net") from None


# The questions ----------------------------------------------------------------------------------
def questions(mode: str, count: int, leaves: int, rng: random.Random, seen: set) -> list[tuple[str, str]]:
    """``count`` questions never in ``seen`` (which they join)."""
    out: list[tuple[str, str]] = []
    while len(out) < count:
        if mode == "nxdomain":
            q = ("".join(rng.choices(LABEL, k=12)) + "." + hierarchy.LEAF, rng.choice(NX_TYPES))
        else:
            q = (f"pool-{rng.randrange(leaves)}.{hierarchy.LEAF}", f"TYPE{rng.choice(NODATA_TYPES)}")
        if q not in seen:
            seen.add(q)
            out.append(q)
    return out


def expected_rcode(mode: str) -> int:
    return dns.rcode.NXDOMAIN if mode == "nxdomain" else dns.rcode.NOERROR


def warm(address: str, port: int, qs: list[tuple[str, str]], mode: str) -> None:
    """Every question must come back validated (AD) with the expected rcode and no answer, and
    with DO the SOA and a denial (NSEC or NSEC3) in the authority section."""
    for name, rdtype in qs:
        query = dns.message.make_query(name, rdtype, want_dnssec=True)
        response = dns.query.udp(query, address, port=port, timeout=5)
        kinds = {r.rdtype for r in response.authority}
        if (response.rcode() != expected_rcode(mode) or not response.flags & dns.flags.AD or response.answer
                or dns.rdatatype.SOA not in kinds or not kinds & {dns.rdatatype.NSEC, dns.rdatatype.NSEC3}):
            head = f"{dns.rcode.to_text(response.rcode())}, AD {'set' if response.flags & dns.flags.AD else 'clear'}"
            ede = [o for o in response.options if o.otype == 15]
            raise RuntimeError(f"{address}:{port} did not validate {name} {rdtype} ({head}"
                               f"{', ' + ede[0].to_text() if ede else ''})")


def dnsperf(address: str, port: int, queries: Path, seconds: int, rcode: int, dnssec: bool) -> dict[str, float]:
    """dnsperf -c 8 -q 100 -l SECONDS -n 1 (each question asked once); every answer must carry
    ``rcode``."""
    args = [require("dnsperf"), "-s", address, "-p", str(port), "-d", str(queries), "-c", "8", "-q", "100",
            "-l", str(seconds), "-n", "1", "-t", "2"] + (["-D"] if dnssec else [])
    proc = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"dnsperf exited {proc.returncode}: {proc.stdout}{proc.stderr}")
    out = proc.stdout
    qps = re.search(r"Queries per second:\s+([\d.]+)", out)
    sent = re.search(r"Queries sent:\s+(\d+)", out)
    completed = re.search(r"Queries completed:\s+(\d+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    codes = re.search(r"Response codes:\s+(.*)", out)
    latency = re.search(r"Average Latency \(s\):\s+([\d.]+)", out)
    if not (qps and sent and completed and lost and codes and latency):
        raise RuntimeError(f"cannot read dnsperf output:\n{out}")
    want = dns.rcode.to_text(rcode)
    bad = [c for c in re.findall(r"([A-Z]+) \d+", codes.group(1)) if c != want]
    if bad:
        raise RuntimeError(f"{address}:{port} answered {codes.group(1)} (all must be {want})")
    return {"qps": float(qps.group(1)), "sent": int(sent.group(1)), "completed": int(completed.group(1)),
            "lost": int(lost.group(1)), "latency_ms": 1000 * float(latency.group(1))}


def flood(address: str, port: int, queries: Path, seconds: int, rcode: int, dnssec: bool,
          auth: Counted) -> dict[str, float]:
    """One dnsperf run with the queries arriving at the authoritative servers counted."""
    before = auth.queries()
    result = dnsperf(address, port, queries, seconds, rcode, dnssec)
    time.sleep(0.2)  # lookups still in flight when dnsperf stopped reach the servers too
    after = auth.queries()
    upstream = sum(after.values()) - sum(before.values())
    result["upstream"] = upstream
    result["upstream_leaf"] = after[hierarchy.LEAF] - before[hierarchy.LEAF]
    result["upstream_per_1000"] = 1000 * upstream / max(1, result["completed"])
    return result


# The run ----------------------------------------------------------------------------------------
def run(seconds: int = 3, names: int = 200_000, rounds: int = 1, mode: str = "nxdomain", nsec3: bool = False,
        leaves: int = 64, dnssec: bool = False, net: str = DEFAULT_NET, seed: int | None = None) -> dict:
    """Medians over ``rounds`` alternating rounds of ``names`` new questions each. ``ours_error``
    (or ``unbound_error``) says why a resolver was not measured: it did not validate at warm-up."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    rng = random.Random(seed)
    check_free(net)
    with tempfile.TemporaryDirectory(prefix="cid-bench-nx-") as tmp:
        work = Path(tmp)
        h = build(work / "zones", leaves, net, nsec3)
        seen: set = set()
        warm_qs = questions(mode, WARM, leaves, rng, seen)
        files = []
        for i in range(rounds):
            path = work / f"queries-{i}.txt"
            path.write_text("".join(f"{n} {t}\n" for n, t in questions(mode, names, leaves, rng, seen)))
            files.append(path)
        ours_addr, ub_addr = f"{net}.{OURS_HOST}", h.unbound_address
        ours_port, ub_port = free_port(ours_addr), free_port(ub_addr)
        results: dict[str, list] = {"ours": [], "unbound": []}
        errors: dict[str, str | None] = {"ours": None, "unbound": None}
        with serving(h, 53) as (stubs, auth), \
                unbound(work / "unbound", ub_addr, ub_port, trust_anchor=h.trust_anchor,
                        stubs={hierarchy.APEX: stubs[hierarchy.APEX]}), \
                ours(h, ours_addr, ours_port, work / "ours.log"):
            targets = {"ours": (ours_addr, ours_port), "unbound": (ub_addr, ub_port)}
            for who, (address, port) in targets.items():
                try:
                    warm(address, port, warm_qs, mode)
                except (RuntimeError, dns.exception.Timeout) as exc:
                    if not nsec3:
                        raise  # NSEC denials must validate on both sides: a broken run, not a figure
                    errors[who] = str(exc) or type(exc).__name__
            order = [who for who in targets if errors[who] is None]
            for i, path in enumerate(files):
                for who in (order if i % 2 == 0 else order[::-1]):
                    address, port = targets[who]
                    results[who].append(flood(address, port, path, seconds, expected_rcode(mode), dnssec, auth))
    med = statistics.median
    out: dict = {"mode": mode, "nsec3": nsec3, "dnssec": dnssec, "names": names, "rounds": rounds,
                 "spans": spans(h), "ours_error": errors["ours"], "unbound_error": errors["unbound"]}
    for who, runs in results.items():
        for key in ("qps", "latency_ms", "upstream_per_1000"):
            out[f"{who}_{key}"] = med(r[key] for r in runs) if runs else None
        out[f"{who}_lost"] = sum(r["lost"] for r in runs)
        out[f"{who}_upstream"] = sum(r["upstream"] for r in runs)
        out[f"{who}_completed"] = sum(r["completed"] for r in runs)
        # -n 1: a run that used up its file ended early (its qps still holds, over a shorter time)
        out[f"{who}_exhausted"] = any(r["sent"] >= names for r in runs)
    both = list(zip(results["ours"], results["unbound"]))
    out["ratio"] = med(m["qps"] / t["qps"] for m, t in both) if both else None
    return out


def _side(r: dict, who: str, label: str) -> str:
    if r[f"{who}_error"] is not None:
        return f"{label} NOT MEASURED: {r[f'{who}_error']}"
    return (f"{label} {r[f'{who}_qps']:,.0f} qps, {r[f'{who}_latency_ms']:.2f} ms mean, "
            f"{r[f'{who}_upstream_per_1000']:.2f} upstream/1000 ({r[f'{who}_upstream']} upstream queries for "
            f"{r[f'{who}_completed']:,} answers, lost {r[f'{who}_lost']}"
            f"{', query file used up' if r[f'{who}_exhausted'] else ''})")


def report(r: dict) -> str:
    kind = "NSEC3" if r["nsec3"] else "NSEC"
    head = (f"random-subdomain flood ({r['mode'].upper()}, {kind}, {r['spans']} spans, "
            f"{'DO' if r['dnssec'] else 'no DO'}): ")
    ratio = (f"ratio {r['ratio']:.2f}× (target ≥ 0.8)" if r["ratio"] is not None
             else "ratio not measured (target ≥ 0.8)")
    return head + _side(r, "ours", "cid serve resolver") + "; " + _side(r, "unbound", "Unbound") + "  → " + ratio


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-l", "--seconds", type=int, default=3, help="dnsperf -l per resolver and round (default 3)")
    p.add_argument("--names", type=int, default=200_000,
                   help="new questions per round (default 200000; each asked once: dnsperf -n 1)")
    p.add_argument("--rounds", type=int, default=1, help="alternating rounds, medians (default 1)")
    p.add_argument("--mode", choices=MODES, default="nxdomain",
                   help="nxdomain: random names; nodata: random types at existing names (default nxdomain)")
    p.add_argument("--nsec3", action="store_true", help="leaf zone signed with dnssec-signzone -3 - -H 0")
    p.add_argument("--leaves", type=int, default=64, help="identifiers in the leaf zone (default 64)")
    p.add_argument("--dnssec", action="store_true", help="queries with DO (denials carry NSEC/NSEC3 + RRSIGs)")
    p.add_argument("--net", default=DEFAULT_NET, help=f"127.0.N prefix of the servers (default {DEFAULT_NET})")
    p.add_argument("--seed", type=int, help="random seed of the questions")
    args = p.parse_args(argv)
    if not (1 <= args.seconds <= 600 and 1 <= args.names <= 5_000_000 and 1 <= args.rounds <= 100
            and 1 <= args.leaves <= 100_000):
        p.error("-l must be 1..600, --names 1..5000000, --rounds 1..100, --leaves 1..100000")
    if not re.fullmatch(r"127\.\d{1,3}\.\d{1,3}", args.net):
        p.error("--net must be a 127.X.Y prefix")
    print(report(run(args.seconds, args.names, args.rounds, args.mode, args.nsec3, args.leaves, args.dnssec,
                     args.net, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
