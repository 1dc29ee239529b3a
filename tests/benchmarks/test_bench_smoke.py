"""Smoke tests of the tools/bench scripts, in the default pass/fail suite: each runs a tiny
bounded slice as a user would and must finish with its ratio line. No timing is asserted — the
scripts themselves fail unless every answer they time was validated (our status secure, Unbound's
AD bit) and every dnsperf answer was NOERROR/NXDOMAIN."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "tools" / "bench"
RATIO = re.compile(r"ratio (\d+\.\d+)×")


def bench(*args: str, timeout: float = 120) -> str:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=BENCH.parents[1])
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def ratios(out: str) -> list[float]:
    found = [float(x) for x in RATIO.findall(out)]
    assert found and all(r > 0 for r in found), out
    return found


def test_cache_hit_script() -> None:
    out = bench(str(BENCH / "cache_hit.py"), "--batch", "20", "--rounds", "1", "--loop", "asyncio")
    assert "cache-hit resolve()" in out and len(ratios(out)) == 2


def test_cold_script_against_unbound() -> None:
    out = bench(str(BENCH / "cold.py"), "--samples", "1")
    # Two target lines, then the stub-share-out line with its resolve / lookup pair.
    assert "Unbound" in out and len(ratios(out)) == 3
    server = re.search(r"without the stub's share.*ratio (\d+\.\d+)× / (\d+\.\d+)×", out)
    assert server and all(float(x) > 0 for x in server.groups()), out


def test_memory_script_against_unbound() -> None:
    out = bench(str(BENCH / "memory.py"), "--names", "3")
    assert "KiB" in out and len(ratios(out)) == 1


def test_auth_qps_script_against_nsd() -> None:
    out = bench(str(BENCH / "auth_qps.py"), "-l", "1", "--names", "20")
    assert "NSD" in out and len(ratios(out)) == 1


def test_resolver_qps_script_against_unbound() -> None:
    out = bench(str(BENCH / "resolver_qps.py"), "-l", "1", "--names", "5")
    assert "Unbound" in out and len(ratios(out)) == 1


@pytest.mark.parametrize("mode", ["nxdomain", "nodata"])
def test_nxflood_script_against_unbound(mode: str) -> None:
    out = bench(str(BENCH / "nxflood.py"), "-l", "1", "--names", "300", "--leaves", "8", "--mode", mode)
    assert "Unbound" in out and "upstream/1000" in out and len(ratios(out)) == 1


def test_nxflood_script_nsec3_measures_unbound_and_reports_ours() -> None:
    """NSEC3: Unbound is measured; ours either is too or says plainly why not (no traceback)."""
    out = bench(str(BENCH / "nxflood.py"), "-l", "1", "--names", "300", "--leaves", "8", "--nsec3")
    assert re.search(r"Unbound [\d,]+ qps", out), out
    assert re.search(r"cid serve resolver ([\d,]+ qps|NOT MEASURED: .*did not validate)", out), out


def test_signing_script_against_dnssec_signzone() -> None:
    out = bench(str(BENCH / "signing.py"), "--names", "50")
    # Both tools sign the same zone with the same key: the same number of signatures.
    counts = re.findall(r"\((\d+) in ", out)
    assert len(counts) == 2 and counts[0] == counts[1] != "0", out


def test_zone_scale_script_against_nsd() -> None:
    out = bench(str(BENCH / "zone_scale.py"), "--names", "200", "--rounds", "1", "-l", "1")
    assert "NSD" in out and "PSS" in out and len(ratios(out)) == 3  # start, memory, qps


def test_verify_script_against_dnssec_verify() -> None:
    out = bench(str(BENCH / "verify.py"), "--names", "40", "--jobs", "2")
    # Both verified the same BIND-signed file (each exits non-zero otherwise): 3 RRSIGs a name + apex.
    assert "dnssec-verify -z" in out and "(40 names, 126 RRSIGs)" in out and len(ratios(out)) == 1


def test_run_all_prints_a_table() -> None:
    out = bench(str(BENCH / "run_all"), "--quick", "signing")
    assert out.splitlines()[0].split()[:2] == ["figure", "ours"]
    assert "signing vs dnssec-signzone" in out


def test_run_all_prints_issue_11s_rows() -> None:
    """The resolver's rows of issue 11's table: --workers 2 vs Unbound num-threads 2, and
    /v1/resolve requests/s against our own DNS qps in the same run."""
    out = bench(str(BENCH / "run_all"), "--quick", "resolver_qps_workers", "http_resolve", timeout=180)
    rows = {line.split("  ")[0].strip(): line for line in out.splitlines()[1:]}
    assert "cache-hit qps --workers 2 vs 2 threads" in rows, out
    assert re.search(r"[\d,]+ req/s +[\d,]+ qps +\d+\.\d+×", rows["/v1/resolve req/s vs our DNS qps"]), out
    assert "FAILED" not in out


@pytest.mark.parametrize("args", [["cache_hit.py", "--batch", "0"], ["cold.py", "--samples", "0"],
                                  ["auth_qps.py", "-l", "0"], ["resolver_qps.py", "--rounds", "0"], ["memory.py", "--names", "0"],
                                  ["nxflood.py", "--names", "0"], ["http_resolve.py", "-l", "0"],
                                  ["http_resolve.py", "--rounds", "0"],
                                  ["signing.py", "--names", "0"], ["zone_scale.py", "--names", "1"],
                                  ["verify.py", "--names", "0"], ["verify.py", "--rounds", "0"]])
def test_scripts_reject_bad_sizes_in_one_line(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:]], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error: " in proc.stderr.strip().splitlines()[-1], proc.stderr
