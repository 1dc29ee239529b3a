"""The demo on the live primary: providers register by signed UPDATE with leases, heartbeat LOAD
by UPDATE, and each zone's config file is served standalone by `cid serve auth --config`."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from pathlib import Path

from resolver.demo.build import build
from resolver.demo.providers import next_load
from resolver.demo.run import resolver_for, serving
from resolver.records import registry
from support.net import free_port
from support.peer_servers import wait_until_answers

OWN = "127.0.153."  # this file's loopback addresses (the demo's own stay 127.0.10.x)


def test_next_load_stays_within_inventory() -> None:
    rng = random.Random(7)
    caps = {"accel_count": 8}
    load = {"accel_free": 0, "accel_util_ratio": 1.0, "queue_depth": 0, "source": "measured"}
    for step in range(200):
        load = next_load(load, caps, rng, 1000 + step)
        assert 0 <= load["accel_free"] <= 8
        assert load["accel_util_ratio"] == round(1 - load["accel_free"] / 8, 2)
        assert load["ts"] == 1000 + step and load["source"] == "measured"
        assert registry.validate_load(load) == []


def test_regional_bases_hold_no_resources_and_configs_name_their_keys(tmp_path: Path) -> None:
    fed = build(tmp_path, 5300)
    doc = json.loads((tmp_path / "federation.json").read_text())
    for zone, entry in zip(fed.zones, doc["zones"]):
        config = Path(entry["config"]).read_text()
        assert f'name = "{zone.name}"' in config and Path(entry["config"]) == zone.config
        if zone.name in ("bj.cmcc.cid.", "plain.cid."):
            assert [k["name"] for k in entry["keys"]] == [f"providers.{zone.name}"]
            assert entry["keys"][0]["algorithm"] == "hmac-sha256" and entry["keys"][0]["secret"] in config
            assert "pool-" not in zone.base.read_text() and "l4-" not in zone.base.read_text()
        if zone.name == "cid.":
            assert entry["keys"] == [] and "[[key]]" not in config


async def test_providers_heartbeat_load_by_update(tmp_path: Path) -> None:
    fed = build(tmp_path, free_port("127.0.10.1"))
    async with serving(fed, load_interval=0.5):
        async with resolver_for(fed) as resolver:
            before = await resolver.resolve("cid:pool-7.bj.cmcc.cid")
        deadline = time.monotonic() + 10
        while True:
            async with resolver_for(fed) as resolver:  # a fresh cache sees the new version
                after = await resolver.resolve("cid:pool-7.bj.cmcc.cid")
            if after.load["ts"] > before.load["ts"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    assert after.status.value == "secure", after.why
    assert after.load["ts"] > before.load["ts"], "no LOAD heartbeat arrived"


def _cid(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "resolver", *args], capture_output=True, text=True,
                          timeout=60, **kw)


def test_zone_config_serves_standalone_and_takes_a_registration(tmp_path: Path) -> None:
    """federation.json's "config" and "keys" are all `cid serve auth` and `cid register` need."""
    fed = build(tmp_path / "demo", 5300)
    doc = json.loads((tmp_path / "demo" / "federation.json").read_text())
    entry = next(z for z in doc["zones"] if z["name"] == "bj.cmcc.cid.")
    key = entry["keys"][0]
    listen = f"{OWN}1:{free_port(OWN + '1')}"
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "resolver", "serve", "auth", "--config", entry["config"],
                                 "--listen", listen], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_answers(OWN + "1", int(listen.rsplit(":", 1)[1]), entry["name"], proc, log)
        reg = _cid("register", "cid:pool-9.bj.cmcc.cid", "--server", listen,
                   "--key", f"{key['name']}:{key['secret']}", "--endpoint", "h2://127.0.11.66:8443",
                   "--caps", "version=1", "kind=gpu-pool", "region=cn-bj", "--lease", "60")
        assert reg.returncode == 0 and "NOERROR" in reg.stdout, reg.stdout + reg.stderr
        dig = _cid("dig", f"@{listen}", "pool-9.bj.cmcc.cid", "SVCB", "+dnssec", "+norec")
        assert "status: NOERROR" in dig.stdout and "RRSIG" in dig.stdout, dig.stdout
        ptr = _cid("dig", f"@{listen}", "_compute.bj.cmcc.cid", "PTR", "+short")
        assert "pool-9.bj.cmcc.cid." in ptr.stdout, ptr.stdout  # the server added the browse PTR
        bad = _cid("register", "cid:ns1.bj.cmcc.cid", "--server", listen,  # outside the grant
                   "--key", f"{key['name']}:{key['secret']}", "--endpoint", "h2://127.0.11.66:8443",
                   "--caps", "version=1", "kind=gpu-pool", "--lease", "60")
        assert bad.returncode == 1 and "REFUSED" in bad.stdout + bad.stderr, bad.stdout + bad.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert fed.zones
