"""``cid dig @127.0.0.1 -p PORT ...`` against ``cid serve auth``, as a user runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import dns.message
import dns.rdata
import pytest

from resolver.cli.output import rdata_to_json, render_message
from support import zones
from support.net import free_port


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    directory = tmp_path_factory.mktemp("dig")
    paths = zones.write_files(zones.build(), directory)
    with zones.ServedZones([paths["parent"], paths["child"]], free_port(),
                           directory / "log") as srv:
        srv.paths = paths
        yield srv


def cid_dig(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "resolver", "dig", *args],
                          capture_output=True, text=True, timeout=60)


def at(srv) -> list[str]:
    return ["@127.0.0.1", "-p", str(srv.port)]


def test_dig_layout(served):
    proc = cid_dig(*at(served), "pool-7.ex.cid", "SVCB")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: \d+", out)
    assert re.search(r";; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 3", out)
    assert ";; WARNING: recursion requested but not available" in out
    assert "; EDNS: version: 0, flags:; udp: 1232" in out
    assert re.search(r";pool-7\.ex\.cid\.\s+IN\s+SVCB", out)
    assert re.search(r"pool-7\.ex\.cid\.\s+3600\s+IN\s+SVCB\s+1 \. alpn=\"h2\" port=\"8443\"", out)
    assert ";; ADDITIONAL SECTION:" in out
    assert f";; SERVER: 127.0.0.1#{served.port}(127.0.0.1) (UDP)" in out


def test_caps_and_load_in_friendly_form(served):
    for rdtype in ("CAPS", "TYPE65380"):
        out = cid_dig(*at(served), "pool-7.ex.cid", rdtype).stdout
        assert re.search(r"IN\s+CAPS\s+accel_count=8 accel_kind=gpu "
                         r"accel_model=nvidia-h100-sxm5-80gb", out), out
    out = cid_dig(*at(served), "pool-7.ex.cid", "LOAD", "+short").stdout
    assert out.strip() == "accel_free=3 util=0.62"


def test_json(served):
    proc = cid_dig(f"@127.0.0.1:{served.port}", "pool-7.ex.cid", "CAPS", "+json", "+dnssec")
    doc = json.loads(proc.stdout)
    assert doc["rcode"] == "NOERROR" and doc["flags"] == ["qr", "aa", "rd"]
    assert doc["edns"]["flags"] == ["do"] and doc["edns"]["udp"] == 1232
    assert doc["question"] == [{"name": "pool-7.ex.cid.", "class": "IN", "type": "CAPS"}]
    caps, sig = doc["answer"]
    assert caps["data"] == {"accel_count": 8, "accel_kind": "gpu",
                            "accel_model": "nvidia-h100-sxm5-80gb"}
    assert sig["type"] == "RRSIG" and sig["text"].startswith("CAPS 15 3 3600 ")
    doc = json.loads(cid_dig(*at(served), "pool-7.ex.cid", "SVCB", "+json").stdout)
    assert doc["answer"][0]["data"] == {"priority": 1, "target": ".",
                                        "params": {"alpn": ["h2"], "port": 8443}}
    assert {rr["data"] for rr in doc["additional"]} == {"192.0.2.7", "2001:db8::7"}


def test_short_tcp_flags(served):
    assert cid_dig(*at(served), "chain.ex.cid", "+short").stdout.split() == [
        "alias.ex.cid.", "pool-7.ex.cid.", "192.0.2.7"]
    out = cid_dig(*at(served), "pool-7.ex.cid", "A", "+tcp", "+norec", "+cd").stdout
    assert "flags: qr aa cd;" in out and "(TCP)" in out
    proc = cid_dig(*at(served), "big.ex.cid", "TXT")  # TC over UDP, then TCP like dig
    assert "ANSWER: 40," in proc.stdout and "(TCP)" in proc.stdout
    assert "Truncated, retrying in TCP mode" in proc.stderr


def test_negative_and_refused_still_exit_zero(served):
    proc = cid_dig(*at(served), "nope.ex.cid", "A", "+dnssec")
    assert proc.returncode == 0 and "status: NXDOMAIN" in proc.stdout
    assert len(re.findall(r"\tNSEC\t", proc.stdout)) == 2
    proc = cid_dig(*at(served), "www.example.org", "A")
    assert proc.returncode == 0 and "status: REFUSED" in proc.stdout


def _comm_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(";; communications error to ")]


@pytest.mark.parametrize("transport", ["+notcp", "+tcp"])
def test_refused_is_said_at_once(transport):
    # Nothing listens: the kernel says so at once (ICMP port unreachable on the connected UDP
    # socket, RST for TCP). Each try fails immediately, as dig's do; with +time=30 a wait for
    # a reply would run into the subprocess timeout.
    port = free_port("127.0.72.1")
    proc = subprocess.run([sys.executable, "-m", "resolver", "dig", "@127.0.72.1", "-p", str(port),
                           "x.cid", "A", "+time=30", "+tries=3", transport],
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode == 9
    assert _comm_errors(proc.stderr) == [f";; communications error to 127.0.72.1#{port}: connection refused"] * 3
    assert proc.stderr.rstrip().endswith(";; no servers could be reached") and "Traceback" not in proc.stderr
    assert f"; <<>> cid dig <<>> @127.0.72.1 -p {port} x.cid A +time=30 +tries=3 {transport}" in proc.stdout


@pytest.fixture
def silent_server():
    """A UDP socket that takes queries and never answers (a server that is there but mute)."""
    import socket
    port = free_port("127.0.72.2")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.72.2", port))
    yield port
    sock.close()


def test_no_reply_is_a_timeout_and_exits_9(silent_server):
    proc = cid_dig("@127.0.72.2", "-p", str(silent_server), "+time=1", "+tries=2", "x.cid", "A")
    assert proc.returncode == 9
    assert _comm_errors(proc.stderr) == [f";; communications error to 127.0.72.2#{silent_server}: timed out"] * 2
    assert "no servers could be reached" in proc.stderr and "Traceback" not in proc.stderr


def test_deadline_bounds_the_tries(silent_server):
    # +time=5 +tries=3 would wait 15 s; --deadline 1 stops after the first second.
    proc = subprocess.run([sys.executable, "-m", "resolver", "dig", "@127.0.72.2", "-p", str(silent_server),
                           "x.cid", "+time=5", "+tries=3", "--deadline", "1"],
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode == 9
    errors = _comm_errors(proc.stderr)
    assert 1 <= sum("timed out" in e for e in errors) < 3, proc.stderr


def test_header_echoes_every_option(served):
    args = ["-p", str(served.port), "@127.0.0.1", "pool-7.ex.cid", "SVCB", "+dnssec", "+tcp", "+norec",
            "+time=3", "--timeout", "2"]
    proc = cid_dig(*args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1] == "; <<>> cid dig <<>> " + " ".join(args)


def test_resolver_options_among_the_words(served):
    # dig lets options come anywhere; the resolver options do too, after the name as well.
    proc = cid_dig("pool-7.ex.cid", "A", "+short", "--hint", f"ex.cid.=127.0.0.1:{served.port}",
                   "--no-validate", "--deadline", "5", "--timeout=1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["192.0.2.7"]
    proc = cid_dig("pool-7.ex.cid", "--hint", f"ex.cid.=127.0.0.1:{served.port}", "--deadline", "soon")
    assert proc.returncode == 2 and "--deadline" in proc.stderr and "Traceback" not in proc.stderr
    proc = cid_dig("pool-7.ex.cid", "--hint", f"ex.cid.=127.0.0.1:{served.port}", "--no-validate",
                   "--require-secure")
    assert proc.returncode == 2 and "--require-secure" in proc.stderr and "--no-validate" in proc.stderr
    proc = cid_dig("--no-validate", "pool-7.ex.cid", "--hint", f"ex.cid.=127.0.0.1:{served.port}",
                   "--require-secure")  # one before the name, one after: still refused
    assert proc.returncode == 2 and "exclude each other" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["@127.0.0.1", "x.cid", "NOSUCHTYPE"], "unknown record type 'NOSUCHTYPE'"),
    (["@127.0.0.1", "x.cid", "+frobnicate"], "unknown option +frobnicate"),
    (["@127.0.0.1"], "no NAME given"),
    (["@127.0.0.1", "-p", "99999", "x.cid"], "out of range"),
    (["@127.0.0.1", "x.cid", "A", "extra"], "unexpected argument 'extra'"),
    (["@127.0.0.1", "x.cid", "+trace"], "+trace needs the built-in resolver"),
])
def test_usage_errors(args, message):
    proc = cid_dig(*args)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_without_server_uses_the_builtin_resolver(served):
    proc = cid_dig("--hint", f"ex.cid.=127.0.0.1:{served.port}", "--no-validate", "pool-7.ex.cid", "A",
                   "+short")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["192.0.2.7"]


def test_render_message_styles():
    msg = dns.message.from_text(
        "id 7\nopcode QUERY\nrcode NXDOMAIN\nflags QR AA\n;QUESTION\nx.cid. IN A\n"
        ";AUTHORITY\ncid. 60 IN SOA ns.cid. h.cid. 1 2 3 4 5\n")
    text = render_message(msg, "dig")
    assert ";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 7" in text
    assert ";; flags: qr aa; QUERY: 1, ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 0" in text
    assert "OPT PSEUDOSECTION" not in text and "WARNING" not in text
    assert render_message(msg, "short") == ""
    assert json.loads(render_message(msg, "json"))["authority"][0]["type"] == "SOA"
    with pytest.raises(ValueError):
        render_message(msg, "xml")


def test_rdata_to_json_forms():
    rd = dns.rdata.from_text("IN", "SVCB", "1 t.cid. alpn=h2,h3 ipv4hint=192.0.2.1 "
                             "mandatory=alpn key667=abc")
    assert rdata_to_json(rd) == {"priority": 1, "target": "t.cid.", "params": {
        "mandatory": ["alpn"], "alpn": ["h2", "h3"], "ipv4hint": ["192.0.2.1"],
        "key667": "YWJj"}}
    assert rdata_to_json(dns.rdata.from_text("IN", "LOAD", "util=0.5")) == {"util": 0.5}
    assert rdata_to_json(dns.rdata.from_text("IN", "AAAA", "2001:db8::1")) == "2001:db8::1"
    assert rdata_to_json(dns.rdata.from_text("IN", "MX", "10 mx.cid.")) == "10 mx.cid."
