"""cid register / load / unregister against BIND and Knot primaries that sign online.

After each command the primary is asked directly (the records, each with its RRSIG) and our
validating resolver resolves the identifier from the zone's own trust anchor, and `find` sees
the registration through the browse PTRs the update carried. BIND (dnssec-policy, update-policy)
and Knot (dnssec-signing, update ACL) both ignore the RFC 9664 lease option: BIND answers with
an OPT record without it, Knot answers without any OPT record; the report line says so.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

import resolver  # noqa: F401
from resolver import Resolver, records
from resolver.registration import register, update_load
from support import update_primaries
from support.misbehaving_hierarchy import loopback_address
from support.net import free_port

BIND_ADDRESS = "127.0.75.1"
KNOT_ADDRESS = "127.0.75.2"
ZONE = "ex.cid."
ENDPOINT = "h2://127.0.75.9:8443"
CAPS = ["accel_kind=gpu", "accel_vendor=nvidia", "accel_count=8", "accel_memory_bytes=80GiB", "region=cn-bj"]


@pytest.fixture(scope="module", params=["bind", "knot"])
def primary(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(request.param)
    if request.param == "bind":
        port = free_port("127.0.0.1")
        with loopback_address(BIND_ADDRESS), update_primaries.bind(workdir, BIND_ADDRESS, port, ZONE) as p:
            yield p
    else:
        port = free_port(KNOT_ADDRESS)
        with update_primaries.knot(workdir, KNOT_ADDRESS, port, ZONE) as p:
            yield p


def cid(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "resolver", *args], capture_output=True, text=True, timeout=timeout)


def _ask(p, name: str, rdtype) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, want_dnssec=True)
    return dns.query.tcp(query, p.address, port=p.port, timeout=3)


def _signed(p, name: str, rdtype) -> list:
    """The RRset at the primary, asserting it comes with its RRSIG."""
    response = _ask(p, name, rdtype)
    data = [r for r in response.answer if r.rdtype == rdtype]
    sigs = [r for r in response.answer if r.rdtype == dns.rdatatype.RRSIG and r.covers == rdtype]
    assert data and sigs, f"{name} {dns.rdatatype.to_text(rdtype)} at {p.kind}: {response}"
    return list(data[0])


async def _resolve(p, identifier: str, anchor: Path):
    async with Resolver(hints={ZONE: [p.server]}, trust_anchor=anchor, port=p.port) as r:
        return await r.resolve(identifier)


async def _find(p, anchor: Path, where: list[str]):
    async with Resolver(hints={ZONE: [p.server]}, trust_anchor=anchor, port=p.port) as r:
        return await r.find(f"cid:{ZONE.rstrip('.')}", where=where)


def test_register_load_reregister_unregister(primary, tmp_path):
    p = primary
    ident = f"cid:pool-1.{ZONE.rstrip('.')}"
    out = cid("register", ident, "--server", p.server, "--key", p.key, "--endpoint", ENDPOINT,
              "--endpoint", f"h2,h3://gw.{ZONE}:443", "--caps", *CAPS, "--load", "accel_free=3", "--lease", "60")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{ident} registered in {ZONE} at {p.server}: NOERROR")
    assert "no lease in the answer: the server ignores UPDATE-LEASE" in out.stdout
    name = f"pool-1.{ZONE}"
    assert {rd.priority for rd in _signed(p, name, dns.rdatatype.SVCB)} == {1, 2}
    assert [rd.address for rd in _signed(p, name, dns.rdatatype.A)] == ["127.0.75.9"]
    assert _signed(p, name, records.CAPS)[0].data.value["accel_memory_bytes"] == 80 * 2**30
    assert _signed(p, name, records.LOAD)[0].data.value["accel_free"] == 3
    assert name in [rd.target.to_text() for rd in _signed(p, f"_region-cn-bj._sub._compute.{ZONE}", dns.rdatatype.PTR)]
    anchor = p.trust_anchor()
    res = asyncio.run(_resolve(p, ident, anchor))
    assert (res.status.value, res.rcode) == ("secure", "NOERROR"), res.why
    assert [e.port for e in res.endpoints] == [8443, 443]
    assert res.capabilities["accel_count"] == 8 and res.load["accel_free"] == 3
    found = asyncio.run(_find(p, anchor, ["region=cn-bj", "accel_free>=2"]))
    assert [x.identifier for x in found] == [ident]

    out = cid("load", ident, "accel_free=1", "accel_util_ratio=88%", "--server", p.server, "--key", p.key)
    assert out.returncode == 0 and "LOAD updated" in out.stdout, out.stdout + out.stderr
    load = _signed(p, name, records.LOAD)[0].data.value
    assert load["accel_free"] == 1 and load["accel_util_ratio"] == 0.88 and load["source"] == "measured"
    res = asyncio.run(_resolve(p, ident, anchor))
    assert res.status.value == "secure" and res.load["accel_free"] == 1

    # Re-registering in another region moves the sub-type PTR; the old one goes.
    caps = [c if not c.startswith("region=") else "region=cn-sh" for c in CAPS]
    result = register(p.server, p.key, ident, endpoints=[ENDPOINT], caps=caps)
    assert result.ok, result.line()
    assert _ask(p, f"_region-cn-bj._sub._compute.{ZONE}", "PTR").rcode() == dns.rcode.NXDOMAIN
    _signed(p, f"_region-cn-sh._sub._compute.{ZONE}", dns.rdatatype.PTR)
    assert [rd.priority for rd in _signed(p, name, dns.rdatatype.SVCB)] == [1]
    assert not [r for r in _ask(p, name, records.LOAD).answer if r.rdtype == records.LOAD]

    out = cid("unregister", ident, "--server", p.server, "--key", p.key)
    assert out.returncode == 0 and "unregistered" in out.stdout, out.stdout + out.stderr
    assert _ask(p, name, "SVCB").rcode() == dns.rcode.NXDOMAIN
    assert _ask(p, f"_compute.{ZONE}", "PTR").rcode() == dns.rcode.NXDOMAIN
    res = asyncio.run(_resolve(p, ident, anchor))
    assert (res.status.value, res.rcode) == ("secure", "NXDOMAIN"), res.why

    out = cid("load", ident, "accel_free=1", "--server", p.server, "--key", p.key)
    assert out.returncode == 1 and "NXDOMAIN" in out.stdout and "not in use" in out.stdout


def test_refusals_say_what_they_mean(primary, monkeypatch):
    p = primary
    ident = f"cid:elsewhere.{ZONE.rstrip('.')}"
    args = ["--endpoint", ENDPOINT, "--caps", *CAPS]
    out = cid("register", ident, "--server", p.server, "--key", p.narrow_key, *args)
    # BIND refuses a change outside the key's grant; Knot says BADKEY for a change outside its ACL.
    expected = {"bind": "REFUSED from", "knot": "NOTAUTH/BADKEY from"}[p.kind]
    assert out.returncode == 1 and expected in out.stdout and "this change" in out.stdout.replace(
        "may not change these names", "this change"), out.stdout
    name, secret = p.key.split(":")
    wrong = secret[:-8] + "AAAAAAA="
    out = cid("register", ident, "--server", p.server, "--key", f"{name}:{wrong}", *args)
    assert out.returncode == 1 and "NOTAUTH/BADSIG" in out.stdout, out.stdout
    out = cid("register", ident, "--server", p.server, "--key", f"nobody:{secret}", *args)
    assert out.returncode == 1 and "NOTAUTH/BADKEY" in out.stdout, out.stdout
    # The narrow key may change its one name, without the browse PTRs outside it.
    out = cid("register", f"cid:only.{ZONE.rstrip('.')}", "--server", p.server, "--key", p.narrow_key,
              "--no-browse", *args)
    assert out.returncode == 0, out.stdout + out.stderr
    # A clock 20 minutes behind: BADTIME (the fudge is 300 s).
    monkeypatch.setattr(dns.message, "time", types.SimpleNamespace(time=lambda: time.time() - 1200))
    result = update_load(p.server, p.key, f"cid:only.{ZONE.rstrip('.')}", {"accel_free": 1})
    assert result.answer.rcode_text == "NOTAUTH/BADTIME" and "clock" in result.line(), result.line()
    assert not [r for r in _ask(p, f"only.{ZONE}", records.LOAD).answer if r.rdtype == records.LOAD]


def test_keepalive_refreshes_load_and_unregisters_on_exit(primary, tmp_path):
    p = primary
    ident = f"cid:live.{ZONE.rstrip('.')}"
    source = tmp_path / "load"
    source.write_text("accel_free=1 accel_util_ratio=0.5")
    log = tmp_path / "keepalive.out"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "resolver", "register", ident, "--server", p.server,
                                 "--key", p.key, "--endpoint", ENDPOINT, "--caps", *CAPS, "--lease", "4",
                                 "--keepalive", "--load-from", f"cat {source}", "--load-interval", "1",
                                 "--unregister-on-exit"], stdout=out, stderr=subprocess.STDOUT)
    try:
        name = f"live.{ZONE}"

        def load_value():
            answer = [r for r in _ask(p, name, records.LOAD).answer if r.rdtype == records.LOAD]
            return answer[0][0].data.value if answer else None

        _until(lambda: (load_value() or {}).get("accel_free") == 1, log)
        source.write_text("accel_free=5 accel_util_ratio=0.1")
        _until(lambda: (load_value() or {}).get("accel_free") == 5, log)
        _until(lambda: log.read_text().count("registered in") >= 2, log, timeout=8)  # renewed at 3/4 of 4 s
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
    text = log.read_text()
    assert code == 0, text
    assert "LOAD updated" in text and "unregistered" in text.splitlines()[-1], text
    assert _ask(p, name, "SVCB").rcode() == dns.rcode.NXDOMAIN


def _until(check, log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out; keepalive log:\n{log.read_text()}")
