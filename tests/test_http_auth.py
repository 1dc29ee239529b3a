"""`cid serve auth --config FILE --http ADDR:PORT` (issue 11): /metrics in the Prometheus format
(parsed by prometheus_client's own parser) counts queries by protocol and RCODE, replies to
UPDATEs by RCODE (accepted and refused), transfers, leases active and expired, zone serials;
DoH (RFC 8484) answers queries and refuses UPDATEs and transfers; /healthz."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time
import urllib.request

import dns.message
import dns.query
import dns.rcode
import dns.update
import dns.tsig
import dns.tsigkeyring
from prometheus_client.parser import text_string_to_metric_families

from support import live_primary as lp
from support.net import free_port
from support.peer_servers import wait_until_answers

ADDRESS = "127.0.160.1"


def _metrics(http: str) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://{http}/metrics", timeout=5) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _doh(http: str, query: dns.message.Message) -> dns.message.Message:
    text = base64.urlsafe_b64encode(query.to_wire()).rstrip(b"=").decode()
    with urllib.request.urlopen(f"http://{http}/dns-query?dns={text}", timeout=5) as reply:
        assert reply.headers["Content-Type"] == "application/dns-message"
        return dns.message.from_wire(reply.read())


def test_metrics_and_doh_of_a_live_primary(tmp_path):
    site = lp.build(tmp_path / "site", ADDRESS, free_port(ADDRESS), min_lease=1)
    log = tmp_path / "serve.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "resolver", "serve", "auth", "--config", str(site.config),
                                 "--http", f"{ADDRESS}:0", "--control", "none"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until_answers(ADDRESS, site.port, site.zone, proc, log, timeout=30)
        deadline = time.monotonic() + 10
        while not (found := re.search(r"HTTP on ([\d.]+:\d+)", log.read_text())):
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.05)
        http = found.group(1)
        with urllib.request.urlopen(f"http://{http}/healthz", timeout=5) as reply:
            assert reply.status == 200
        with urllib.request.urlopen(f"http://{http}/v1/openapi.json", timeout=5) as reply:
            import json
            paths = set(json.loads(reply.read())["paths"])
        assert paths == {"/v1/resolve/{identifier}", "/v1/find", "/dns-query", "/healthz", "/metrics",
                         "/v1/openapi.json"}  # exactly the routes mounted (test_http_auth_resolve uses them)
        registered = lp.cid("register", "cid:pool-1.ex.cid", "--server", site.server, "--key", lp.PROV,
                            "--endpoint", "h2://127.0.160.9:8443", "--caps", "accel_kind=gpu", "--lease", "2")
        assert registered.returncode == 0, registered.stderr
        wrong = dns.update.UpdateMessage(site.zone)
        wrong.add("pool-2", 30, "A", "192.0.2.1")
        wrong.use_tsig(dns.tsigkeyring.from_text({"prov.": "d3Jvbmctc2VjcmV0LWZvci1tZXRyaWNzLXRlc3Q="}),
                       keyname="prov.", algorithm="hmac-sha256")
        try:  # the refusal is unsigned (BADSIG), so dnspython will not read it as a reply to us
            dns.query.tcp(wrong, ADDRESS, port=site.port, timeout=5)
            raise AssertionError("an update signed with the wrong secret was answered as signed")
        except dns.tsig.PeerBadSignature:
            pass
        assert _metrics(http)[("cid_auth_leases_active", (("zone", site.zone),))] >= 1
        # DoH: a query answered, an UPDATE and a transfer refused.
        soa = _doh(http, dns.message.make_query(site.zone, "SOA"))
        assert soa.rcode() == dns.rcode.NOERROR and soa.answer
        update = dns.update.UpdateMessage(site.zone)
        update.add("pool-1", 30, "A", "192.0.2.2")
        assert _doh(http, update).rcode() == dns.rcode.REFUSED
        assert _doh(http, dns.message.make_query(site.zone, "AXFR")).rcode() == dns.rcode.REFUSED
        dns.query.udp(dns.message.make_query(site.zone, "SOA"), ADDRESS, port=site.port, timeout=5)
        lp.until(lambda: _metrics(http)[("cid_auth_leases_expired_total", (("zone", site.zone),))] >= 1,
                 "the lease to expire", timeout=15)
        m = _metrics(http)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert m[("cid_auth_updates_total", (("rcode", "NOERROR"),))] >= 1
    assert m[("cid_auth_updates_total", (("rcode", "NOTAUTH"),))] == 1
    assert m[("cid_auth_leases_active", (("zone", site.zone),))] == 0
    assert m[("cid_auth_zone_serial", (("zone", site.zone),))] > 1
    assert m[("cid_dns_queries_total", (("protocol", "udp"), ("rcode", "NOERROR")))] >= 1
    assert m[("cid_dns_queries_total", (("protocol", "doh"), ("rcode", "REFUSED")))] == 2
    assert m[("cid_http_requests_total", (("route", "/dns-query"), ("status", "200")))] == 3
