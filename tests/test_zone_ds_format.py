"""`cid zone ds --format ds|bind|unbound` (issue 10): the trust anchor of a served signed zone in
the form each validator reads — delv validates with the bind form, Unbound with the unbound
form, our resolver with all three — and a wrong anchor in the same form fails with each."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from resolver import Resolver
from resolver.dnssec.anchors import TrustAnchor
from support import peer_servers
from support.live_primary import cid
from support.net import free_port
from support.peers import require

ZONE = "dsf.cid."
SERVER = "127.0.152.20"
UNBOUND = "127.0.152.21"
NAME = f"www.{ZONE}"


def zone_text(zone: str) -> str:
    return (f"$TTL 300\n{zone} IN SOA ns1.{zone} hostmaster.{zone} 1 3600 600 86400 60\n"
            f"{zone} IN NS ns1.{zone}\nns1.{zone} IN A {SERVER}\n{NAME} IN A 192.0.2.7\n")


def anchors(tmp: Path, signed: Path, tag: str) -> dict[str, Path]:
    out = {}
    for form in ("ds", "bind", "unbound"):
        proc = cid("zone", "ds", str(signed), "--format", form, check=True)
        out[form] = tmp / f"{tag}.{form}"
        out[form].write_text(proc.stdout)
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The zone signed and served by `cid serve auth`; its anchors in each form, and those of a
    key that did not sign it (the same zone signed in another directory)."""
    tmp = tmp_path_factory.mktemp("dsformat")
    result = {}
    for tag in ("right", "wrong"):
        directory = tmp / tag
        directory.mkdir()
        source = directory / "zone"
        source.write_text(zone_text(ZONE))
        cid("zone", "keygen", ZONE, "--dir", str(directory), check=True)
        cid("zone", "sign", str(source), check=True)
        result[tag] = anchors(tmp, Path(f"{source}.signed"), tag)
    port = free_port(SERVER)
    log = tmp / "serve.log"
    signed = tmp / "right" / "zone.signed"
    with peer_servers.process([sys.executable, "-m", "resolver", "serve", "auth", "--listen", f"{SERVER}:{port}",
                               "--zone", str(signed)], log) as proc:
        peer_servers.wait_until_answers(SERVER, port, ZONE, proc, log, timeout=30)
        yield tmp, port, result


def test_forms_say_the_same_anchor(served) -> None:
    _, _, result = served
    forms = result["right"]
    assert forms["bind"].read_text().startswith("trust-anchors {\n")
    assert "static-ds" in forms["bind"].read_text()
    unbound_text = forms["unbound"].read_text()
    assert unbound_text.startswith(f'; unbound.conf: trust-anchor: "{ZONE} ')
    assert forms["ds"].read_text() in unbound_text  # comment lines, then the same DS records
    loaded = [TrustAnchor.load(path) for path in forms.values()]
    assert len({frozenset(rd.to_text() for rd in anchor.ds(ZONE)) for anchor in loaded}) == 1  # TTLs aside


def delv(anchor: Path, port: int) -> subprocess.CompletedProcess:
    return subprocess.run([require("delv"), "-a", str(anchor), f"@{SERVER}", "-p", str(port), f"+root={ZONE}",
                           NAME, "A"], capture_output=True, text=True, timeout=30)


def test_delv_validates_with_the_bind_form(served) -> None:
    _, port, result = served
    good = delv(result["right"]["bind"], port)
    assert "; fully validated" in good.stdout, good.stdout + good.stderr
    assert "192.0.2.7" in good.stdout
    bad = delv(result["wrong"]["bind"], port)
    assert "fully validated" not in bad.stdout, bad.stdout


def test_unbound_validates_with_the_unbound_form(served) -> None:
    tmp, port, result = served
    for tag, secure in (("right", True), ("wrong", False)):
        with peer_servers.unbound(tmp / f"unbound-{tag}", UNBOUND, free_port(UNBOUND),
                                  trust_anchor=result[tag]["unbound"], stubs={ZONE: [f"{SERVER}@{port}"]}) as u:
            response = dns.query.udp(dns.message.make_query(NAME, "A", want_dnssec=True), UNBOUND, port=u.port,
                                     timeout=10)
        if secure:
            assert response.rcode() == dns.rcode.NOERROR and response.flags & dns.flags.AD, response.to_text()
        else:
            assert response.rcode() == dns.rcode.SERVFAIL, response.to_text()


def test_our_resolver_reads_every_form(served) -> None:
    _, port, result = served

    async def status(anchor: Path) -> str:
        async with Resolver(hints={ZONE: [f"{SERVER}:{port}"]}, trust_anchor=anchor, port=port) as r:
            lookup = await r.lookup(NAME, "A", policy=False)
            return lookup.status.value

    for form in ("ds", "bind", "unbound"):
        assert asyncio.run(status(result["right"][form])) == "secure", form
        assert asyncio.run(status(result["wrong"][form])) == "bogus", form


def test_key_file_source_and_default_form(tmp_path: Path) -> None:
    key = cid("zone", "keygen", ZONE, "--dir", str(tmp_path), check=True).stdout.strip()
    default = cid("zone", "ds", str(tmp_path / f"{key}.key"), check=True).stdout
    assert default.startswith(f"{ZONE} 3600 IN DS ") and default.count("\n") == 1
    bind = cid("zone", "ds", str(tmp_path / f"{key}.key"), "--format", "bind", check=True).stdout
    assert set(TrustAnchor.from_text(bind).ds(ZONE)) == set(TrustAnchor.from_text(default).ds(ZONE))
    bad = cid("zone", "ds", str(tmp_path / f"{key}.key"), "--format", "named")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
