#!/usr/bin/env python3
"""/v1/resolve cache-hit requests/s (HTTP/1.1 keep-alive) vs our own DNS cache-hit qps (dnsperf
-c 8 -q 200), one `cid serve resolver --http` process, same run, alternated rounds, medians.

The test federation (tests/support/federation.py) is served by our AuthServers in this process;
the resolver runs as a user runs it on 127.0.96.3. HTTP load: a separate process of 8 aiohttp
keep-alive connections, each asking GET /v1/resolve/cid:pool-7.bj.cmcc.cid back to back (every
answer must be 200). DNS load: dnsperf on SVCB/A/AAAA/CAPS of the same identifier (RD, no DO).
Prints both figures and the ratio HTTP/DNS.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from auth_qps import dnsperf  # noqa: E402
from support import federation as F  # noqa: E402

HOST = "127.0.96.3"
IDENTIFIER = "cid:pool-7.bj.cmcc.cid"
CLIENT = r'''
import asyncio, sys, time, aiohttp
url, seconds, conns = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
async def worker(session, stop, counts):
    while time.monotonic() < stop:
        async with session.get(url) as r:
            await r.read()
            if r.status != 200:
                raise SystemExit(f"HTTP {r.status}")
        counts[0] += 1
async def main():
    counts = [0]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns)) as s:
        start = time.monotonic()
        await asyncio.gather(*(worker(s, start + seconds, counts) for _ in range(conns)))
        print(counts[0] / (time.monotonic() - start))
asyncio.run(main())
'''


def http_rps(url: str, seconds: float, conns: int = 8) -> float:
    out = subprocess.run([sys.executable, "-c", CLIENT, url, str(seconds), str(conns)],
                         capture_output=True, text=True, timeout=seconds + 60, check=True)
    return float(out.stdout.strip())


def run(seconds: int = 3, rounds: int = 3) -> dict[str, float]:
    fed = F.build(now=time.time())
    with tempfile.TemporaryDirectory(prefix="cid-bench-http-") as tmp, F.serving_in_thread(fed) as port:
        work = Path(tmp)
        (work / "ta").write_text(fed.anchor_text)
        qfile = work / "queries.txt"
        qfile.write_text("".join(f"pool-7.bj.cmcc.cid. {t}\n" for t in ("SVCB", "A", "AAAA", "TYPE65380")))
        log = open(work / "log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "resolver", "serve", "resolver", "--listen", f"{HOST}:0",
                                 "--http", f"{HOST}:0", "--hint", f"cid.=127.0.0.2:{port}", "--port", str(port),
                                 "--trust-anchor", str(work / "ta")], stderr=log, stdout=subprocess.DEVNULL)
        try:
            dns_port = http_port = None
            for _ in range(400):
                text = (work / "log").read_text()
                d, h = re.search(r"listening on [\d.]+:(\d+)", text), re.search(r"HTTP on [\d.]+:(\d+)", text)
                if d and h:
                    dns_port, http_port = int(d.group(1)), int(h.group(1))
                    break
                time.sleep(0.05)
            if http_port is None:
                raise RuntimeError(f"resolver did not start:\n{(work / 'log').read_text()}")
            url = f"http://{HOST}:{http_port}/v1/resolve/{IDENTIFIER}"
            http_rps(url, 0.5)  # warm: the resolution and the DNS answers are cached
            dnsperf(HOST, dns_port, qfile, 1, dnssec=False)
            http, dns = [], []
            for _ in range(rounds):
                http.append(http_rps(url, seconds))
                dns.append(dnsperf(HOST, dns_port, qfile, seconds, dnssec=False)["qps"])
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            log.close()
    med = statistics.median
    return {"http_rps": med(http), "dns_qps": med(dns), "ratio": med(h / d for h, d in zip(http, dns))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-l", "--seconds", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    if not 1 <= args.seconds <= 600:
        p.error("-l must be 1..600")
    if not 1 <= args.rounds <= 50:
        p.error("--rounds must be 1..50")
    r = run(args.seconds, args.rounds)
    print(f"/v1/resolve cache-hit requests/s (keep-alive, 8 connections): {r['http_rps']:,.0f}; "
          f"our DNS cache-hit qps (dnsperf -c 8 -q 200): {r['dns_qps']:,.0f}  → ratio {r['ratio']:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
