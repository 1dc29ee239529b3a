"""`cid resolve` and `cid dig` (built-in resolver) as users run them, against real servers."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from support import federation as F


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    fed = F.build(now=time.time())
    anchor = tmp_path_factory.mktemp("ta") / "cid.anchor"
    anchor.write_text(fed.anchor_text)
    with F.serving_in_thread(fed) as port:
        yield fed, port, str(anchor)


def cid(*args, timeout=30):
    return subprocess.run(["cid", *args], capture_output=True, text=True, timeout=timeout)


def opts(served):
    fed, port, anchor = served
    return ["--hint", f"cid.=127.0.0.2:{port}", "--hint", f"far-ops.net.=127.0.0.7:{port}",
            "--port", str(port), "--trust-anchor", anchor, "--timeout", "1"]


def test_resolve_human_output(served):
    p = cid("resolve", "cid:pool-7.bj.cmcc.cid", *opts(served))
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "cid:pool-7.bj.cmcc.cid" in out and "status: secure" in out
    assert "endpoint 1 pool-7.bj.cmcc.cid. port 8443 alpn h2 -> 192.0.2.7 2001:db8::7" in out
    assert "capabilities: accel_count=8 accel_kind=gpu" in out and "load: accel_free=3 util=0.5" in out


def test_resolve_json(served):
    p = cid("resolve", "pool-1.open.cid.", "--json", *opts(served))
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["status"] == "insecure" and doc["rcode"] == "NOERROR"
    assert doc["endpoints"][0]["addresses"] == ["192.0.2.21"] and doc["load"] is None


def test_resolve_not_found_exits_1(served):
    p = cid("resolve", "cid:absent.bj.cmcc.cid", "--json", *opts(served))
    assert p.returncode == 1 and json.loads(p.stdout)["rcode"] == "NXDOMAIN"


@pytest.mark.parametrize("args, message", [
    (["cid:bad_label.cid"], "bad_label"),
    (["cid:pool.cid", "--hint", "cid.-127.0.0.2"], "ZONE=ADDR"),
    (["cid:pool.cid", "--hint", "cid.=nowhere"], "not an IP address"),
    (["cid:pool.cid", "--hint", "cid.=127.0.0.2", "--trust-anchor", "/nonexistent/ta"], "cannot read"),
    (["cid:pool.cid"], "no --hint"),
    (["cid:pool.cid", "--hint", "cid.=127.0.0.2", "--port", "0"], "--port 0"),
    (["cid:pool.cid", "--hint", "cid.=127.0.0.2", "--timeout", "0"], "--timeout 0"),
    (["cid:pool.cid", "--hint", "cid.=127.0.0.2:99999"], "port must be"),
])
def test_resolve_usage_errors_are_one_line_exit_2(args, message):
    p = cid("resolve", *args)
    assert p.returncode == 2
    assert message in p.stderr and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_dig_via_resolver_trace_and_ad(served):
    p = cid("dig", "pool-7.bj.cmcc.cid.", "SVCB", "+trace", *opts(served))
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert ";; referral from cid. to cmcc.cid." in out and ";; referral from cmcc.cid. to bj.cmcc.cid." in out
    assert ";; zone bj.cmcc.cid. keys: secure" in out
    assert "status: NOERROR" in out and " ad" in out.split("flags:")[1].splitlines()[0]
    answers = [line.split() for line in out.splitlines() if line.startswith("pool-7.bj.cmcc.cid.")]
    assert ["SVCB", "1", ".", 'alpn="h2"'] in [a[3:7] for a in answers]


def test_dig_via_resolver_insecure_has_no_ad_and_short_works(served):
    p = cid("dig", "pool-1.open.cid.", "A", *opts(served))
    assert p.returncode == 0, p.stderr
    assert " ad" not in p.stdout.split("flags:")[1].splitlines()[0]
    short = cid("dig", "+short", "pool-7.bj.cmcc.cid.", "CAPS", *opts(served))
    assert short.stdout.strip() == "accel_count=8 accel_kind=gpu"


def test_dig_via_resolver_tcp_and_cd(served):
    p = cid("dig", "+tcp", "+trace", "pool-7.bj.cmcc.cid.", "A", *opts(served))
    assert p.returncode == 0, p.stderr
    queries = [line for line in p.stdout.splitlines() if line.startswith(";; query ")]
    assert queries and all("(tcp," in line for line in queries)
    p = cid("dig", "+cd", "+dnssec", "pool-7.bj.cmcc.cid.", "A", *opts(served))
    assert p.returncode == 0 and "RRSIG" in p.stdout and "192.0.2.7" in p.stdout


# --- NSEC3: +trace says which record proved what --------------------------------------------------

def _nsec3_federation(break_chain: bool = False):
    import base64

    import dns.dnssec
    import dns.name
    import dns.rdatatype

    from support.nsec3_chain import nsec3_federation
    fed = nsec3_federation(F.build(now=time.time()))
    if break_chain:  # delete the NSEC3 whose span holds the hash of nope.bj.cmcc.cid.
        zone = fed.zones["bj.cmcc.cid."]
        target = base64.b32hexdecode(dns.dnssec.nsec3_hash("nope.bj.cmcc.cid.", b"", 0, 1))
        for name, node in list(zone.nodes.items()):
            rds = node.get_rdataset(1, dns.rdatatype.NSEC3)
            if rds is None:
                continue
            owner = base64.b32hexdecode(name.labels[0].upper())
            nxt = rds[0].next
            if (owner < target < nxt) if owner < nxt else (target > owner or target < nxt):
                del zone.nodes[name]
    return fed


@pytest.fixture(scope="module", params=["good", "broken"])
def served_nsec3(request, tmp_path_factory):
    fed = _nsec3_federation(break_chain=request.param == "broken")
    anchor = tmp_path_factory.mktemp("ta3") / "cid.anchor"
    anchor.write_text(fed.anchor_text)
    with F.serving_in_thread(fed) as port:
        yield request.param, (fed, port, str(anchor))


def test_dig_trace_shows_which_nsec3_proved_what(served_nsec3):
    import dns.dnssec
    kind, served = served_nsec3
    p = cid("dig", "nope.bj.cmcc.cid.", "A", "+trace", *opts(served))
    assert p.returncode == 0, p.stderr
    out = p.stdout
    next_closer = dns.dnssec.nsec3_hash("nope.bj.cmcc.cid.", b"", 0, 1).lower()
    apex = dns.dnssec.nsec3_hash("bj.cmcc.cid.", b"", 0, 1).lower()
    proof = [line for line in out.splitlines() if " proof: " in line]
    if kind == "good":
        assert "status: NXDOMAIN" in out
        assert f";;   secure proof: NSEC3 {apex} matches closest encloser bj.cmcc.cid." in proof
        assert any(f"covers next closer nope.bj.cmcc.cid. (hash {next_closer})" in line for line in proof)
        assert any("covers wildcard *.bj.cmcc.cid. (hash " in line for line in proof)
        # The unsigned child: which opt-out span of cid. made it insecure.
        p = cid("dig", "pool-1.open.cid.", "A", "+trace", *opts(served))
        assert any("insecure proof:" in line and "(opt-out) covers next closer open.cid." in line
                   for line in p.stdout.splitlines()), p.stdout
    else:
        assert "status: SERVFAIL" in out
        assert any(line.startswith(";;   bogus proof: NXDOMAIN nope.bj.cmcc.cid. unproven") and
                   f"next closer nope.bj.cmcc.cid. (hash {next_closer})" in line for line in proof), proof
        # Every NSEC3 that did come is listed, so the gap in the chain can be seen.
        assert sum("NSEC3 in response:" in line for line in proof) >= 2
