"""`cid demo` end to end as a newcomer runs it, and the zones it signs checked by peer tools."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.net import free_port
from support.peers import run


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    directory = tmp_path_factory.mktemp("demo") / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "resolver", "demo", "--dir", str(directory),
         "--port", str(free_port("127.0.10.1"))],
        capture_output=True, text=True, timeout=120)
    return proc, directory


def test_demo_resolves_samples_as_expected(demo_run) -> None:
    proc, _ = demo_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "UNEXPECTED" not in proc.stdout
    out = proc.stdout
    assert "pool-7.bj.cmcc.cid" in out and "secure" in out and "insecure" in out
    assert "NXDOMAIN" in out


def test_federation_json_describes_every_zone(demo_run) -> None:
    _, directory = demo_run
    fed = json.loads((directory / "federation.json").read_text())
    assert fed["apex"] == "cid."
    assert Path(fed["trust_anchor"]).read_text().startswith("cid.")
    names = [z["name"] for z in fed["zones"]]
    assert {"cid.", "cmcc.cid.", "acme.cid.", "plain.cid.", "bj.cmcc.cid."} <= set(names)
    addresses = [z["address"] for z in fed["zones"]]
    assert len(set(addresses)) == len(addresses), "each zone has its own server address"
    assert all(ipaddress.ip_address(a).is_loopback for a in addresses)
    assert all(Path(z["file"]).is_file() for z in fed["zones"])
    assert len(fed["identifiers"]) >= 20
    assert all(i.startswith("cid:") for i in fed["identifiers"])
    assert [z["signed"] for z in fed["zones"]].count(False) == 1


def test_every_signed_demo_zone_passes_dnssec_verify(demo_run) -> None:
    _, directory = demo_run
    fed = json.loads((directory / "federation.json").read_text())
    signed = [z for z in fed["zones"] if z["signed"]]
    assert len(signed) >= 6
    for zone in signed:
        out = run(["dnssec-verify", "-o", zone["name"], zone["file"]])
        assert "Zone fully signed" in out.stdout + out.stderr
        run(["ldns-verify-zone", zone["file"]])


def test_demo_records_follow_the_key_registry() -> None:
    from resolver.demo.inventory import namespaces
    from resolver.records import registry

    for ns in namespaces():
        for res in ns.resources:
            assert registry.validate_caps(res.caps) == [], res.label
            assert registry.validate_load({**res.load, "ts": 1}) == [], res.label


def test_demo_publishes_browse_names(demo_run) -> None:
    _, directory = demo_run
    fed = json.loads((directory / "federation.json").read_text())
    zones = {z["name"]: z for z in fed["zones"]}
    bj, apex = zones["bj.cmcc.cid."], zones["cid."]
    text = Path(bj["file"]).read_text()
    assert "_accel-nvidia-h100-sxm5-80gb._sub._compute.bj.cmcc.cid." in text
    assert "_children._compute.cid." in Path(apex["file"]).read_text()


def test_second_demo_run_reuses_keys_and_trust_anchor(tmp_path: Path) -> None:
    from resolver.demo.build import build

    first = build(tmp_path, 5300)
    anchor = first.trust_anchor.read_text()
    keys = sorted(p.name for p in (tmp_path / "keys").iterdir())
    second = build(tmp_path, 5300)
    assert second.trust_anchor.read_text() == anchor
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == keys
    assert len(keys) == 4 * 7  # KSK + ZSK, .key + .private, for each of the 7 signed zones
