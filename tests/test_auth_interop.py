"""``cid serve auth`` as a subprocess, queried by BIND's dig and validated by delv."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from support import zones
from support.net import free_port
from support.peers import run


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    directory = tmp_path_factory.mktemp("auth")
    paths = zones.write_files(zones.build(), directory)
    port = free_port()
    with zones.ServedZones([paths["parent"], paths["child"]], port, directory / "log") as srv:
        srv.paths = paths
        yield srv


def dig(srv, *args: str) -> str:
    proc = run(["dig", "@127.0.0.1", "-p", str(srv.port), "+time=5", "+tries=1", *args],
               timeout=30)
    return proc.stdout


def flags(output: str) -> set[str]:
    match = re.search(r";; flags: ([a-z ]*);", output)
    assert match, output
    return set(match.group(1).split())


def delv(srv, name: str, rdtype: str) -> str:
    proc = run(["delv", "-a", str(srv.paths["delv"]), "@127.0.0.1", "-p", str(srv.port),
                "+root=ex.cid", name, rdtype], timeout=30, check=False)
    return proc.stdout + proc.stderr


def test_dig_dnssec_answer_flags(served):
    out = dig(served, "pool-7.ex.cid.", "SVCB", "+dnssec")
    assert "status: NOERROR" in out
    assert flags(out) == {"qr", "aa", "rd"}  # authoritative: AA, never AD or RA
    assert re.search(r"pool-7\.ex\.cid\.\s+3600\s+IN\s+SVCB\s+1 \. alpn=\"h2\" port=8443", out)
    assert re.search(r"pool-7\.ex\.cid\.\s+3600\s+IN\s+RRSIG\s+SVCB 15 3 ", out)
    assert re.search(r"EDNS: version: 0, flags: do; udp: 1232", out)


def test_dig_caps_generic_form(served):
    out = dig(served, "pool-7.ex.cid.", "TYPE65380", "+norec")
    assert flags(out) == {"qr", "aa"}
    assert re.search(r"IN\s+TYPE65380\s+\\# \d+ [0-9A-F]+", out)


def test_dig_tcp_and_truncation(served):
    out = dig(served, "big.ex.cid.", "TXT", "+ignore")
    assert "tc" in flags(out) and "ANSWER: 0" in out
    out = dig(served, "big.ex.cid.", "TXT")  # dig retries over TCP by itself
    assert "ANSWER: 40" in out and "(TCP)" in out
    out = dig(served, "pool-7.ex.cid.", "A", "+tcp", "+cd")
    assert flags(out) == {"qr", "aa", "rd", "cd"} and "192.0.2.7" in out


def test_dig_negative_answers(served):
    out = dig(served, "nope.ex.cid.", "A", "+dnssec")
    assert "status: NXDOMAIN" in out and re.search(r"ex\.cid\.\s+300\s+IN\s+SOA", out)
    assert len(re.findall(r"\sIN\s+NSEC\s", out)) == 2
    out = dig(served, "www.example.org.", "A")
    assert "status: REFUSED" in out and "aa" not in flags(out)


@pytest.mark.parametrize("name, rdtype, expect", [
    ("pool-7.ex.cid.", "SVCB", r"pool-7\.ex\.cid\.\s+\d+\s+IN\s+SVCB"),
    ("pool-7.ex.cid.", "TYPE65380", r"pool-7\.ex\.cid\.\s+\d+\s+IN\s+TYPE65380"),
    ("chain.ex.cid.", "A", r"pool-7\.ex\.cid\.\s+\d+\s+IN\s+A\s+192\.0\.2\.7"),
    ("anything.w.ex.cid.", "TXT", r"anything\.w\.ex\.cid\.\s+\d+\s+IN\s+TXT\s+\"wild\""),
    ("ex.cid.", "DNSKEY", r"ex\.cid\.\s+\d+\s+IN\s+DNSKEY\s+257 3 15"),
    ("node-1.sub.ex.cid.", "A", r"node-1\.sub\.ex\.cid\.\s+\d+\s+IN\s+A\s+192\.0\.2\.11"),
])
def test_delv_fully_validates(served, name, rdtype, expect):
    out = delv(served, name, rdtype)
    assert "; fully validated" in out, out
    assert re.search(expect, out), out


@pytest.mark.parametrize("name, rdtype, kind", [
    ("nope.ex.cid.", "A", "NXDOMAIN"),
    ("pool-7.ex.cid.", "TXT", "NXRRSET"),
    ("b.c.ex.cid.", "A", "NXRRSET"),
    ("anything.w.ex.cid.", "A", "NXRRSET"),
])
def test_delv_validates_denials(served, name, rdtype, kind):
    out = delv(served, name, rdtype)
    assert "; negative response, fully validated" in out, out
    assert kind in out, out


def test_delv_rejects_a_wrong_anchor(served, tmp_path):
    other = zones.build()  # same zone name, different key
    paths = zones.write_files(other, tmp_path)
    proc = run(["delv", "-a", str(paths["delv"]), "@127.0.0.1", "-p", str(served.port),
                "+root=ex.cid", "pool-7.ex.cid.", "SVCB"], timeout=30, check=False)
    assert "fully validated" not in proc.stdout + proc.stderr


def test_zone_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.zone"
    bad.write_text("$ORIGIN bad.cid.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 999.1.1.1\n")
    proc = subprocess.run([sys.executable, "-m", "resolver", "serve", "auth", "--listen",
                           f"127.0.0.1:{free_port()}", "--zone", str(bad)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    # The line number is the loader's (resolver.auth.zonefile); dnspython reports the line
    # after a record whose last token is bad, so accept 5 or 6 here.
    assert len(lines) == 1 and re.search(rf"{re.escape(str(bad))}:[56]: ", lines[0]), proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_zone_file_and_bad_listen(tmp_path):
    for extra in (["--listen", "127.0.0.1:53x", "--zone", str(tmp_path / "x")],
                  ["--listen", "127.0.0.1:0", "--zone", str(tmp_path / "missing.zone")]):
        proc = subprocess.run([sys.executable, "-m", "resolver", "serve", "auth", *extra],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_sigterm_exits_cleanly_and_logs(tmp_path):
    paths = zones.write_files(zones.build(), tmp_path)
    port = free_port()
    srv = zones.ServedZones([paths["parent"]], port, tmp_path / "log")
    with srv:
        out = run(["dig", "@127.0.0.1", "-p", str(port), "+short", "ns1.ex.cid.", "A"]).stdout
        assert out.strip() == "127.0.0.1"
    assert srv.proc.returncode == 0
    log = (tmp_path / "log").read_text()
    assert "zone ex.cid. loaded from" in log and f"listening on 127.0.0.1:{port}" in log
    assert "Traceback" not in log


def test_kdig_reads_our_responses(served):
    out = run(["kdig", "@127.0.0.1", "-p", str(served.port), "+dnssec", "+tcp",
               "pool-7.ex.cid.", "TYPE65380"], timeout=30).stdout
    assert ";; Flags: qr aa rd;" in out and "status: NOERROR" in out
    assert re.search(r"IN\s+TYPE65380\s+\\# 63 83AB", out)  # canonical msgpack map of 3 keys
    assert re.search(r"IN\s+RRSIG\s+TYPE65380 15 3 3600 ", out)


def test_drill_chases_signatures_to_the_anchor(served):
    out = run(["drill", "-p", str(served.port), "-k", str(served.paths["ds"]), "-S",
               "pool-7.ex.cid.", "A", "@127.0.0.1"], timeout=30, check=False)
    text = out.stdout + out.stderr
    assert ";; Chase successful" in text, text
