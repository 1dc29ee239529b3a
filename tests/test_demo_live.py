"""LOAD records stay live while the demo serves: changed, re-signed, swapped into the server."""

from __future__ import annotations

import random
from pathlib import Path

import dns.rdatatype

from resolver import records
from resolver.auth.keys import load_zone_keys
from resolver.auth.signer import verify_zone
from resolver.auth.zonefile import load_zone
from resolver.demo.build import build
from resolver.demo.live import next_load, refresh_zone
from resolver.demo.run import resolver_for, serving
from resolver.records import registry


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


def test_refreshed_zone_is_resigned_and_valid(tmp_path: Path) -> None:
    fed = build(tmp_path, 5300)
    bj = next(z for z in fed.zones if z.name == "bj.cmcc.cid.")
    zone = load_zone(bj.file, bj.name)
    serial = zone.get_rdataset(zone.origin, dns.rdatatype.SOA)[0].serial
    keys = load_zone_keys(tmp_path / "keys", bj.name)
    later = 2_000_000_000.0
    assert refresh_zone(zone, keys, random.Random(1), now=later - 5) == 6
    assert zone.get_rdataset(zone.origin, dns.rdatatype.SOA)[0].serial == serial + 1
    load = zone.get_rdataset("pool-7.bj.cmcc.cid.", records.LOAD)[0].data.value
    assert load["ts"] == int(later - 5)
    assert verify_zone(zone, now=later) == []


async def test_served_load_changes_and_still_validates(tmp_path: Path) -> None:
    from support.net import free_port

    fed = build(tmp_path, free_port("127.0.10.1"))
    async with serving(fed) as refresher:
        async with resolver_for(fed) as resolver:
            before = await resolver.resolve("cid:pool-7.bj.cmcc.cid")
        refresher.tick(now=before.load["ts"] + 30)
        async with resolver_for(fed) as resolver:  # a fresh cache sees the new version
            after = await resolver.resolve("cid:pool-7.bj.cmcc.cid")
    assert after.status.value == "secure", after.why
    assert after.load["ts"] == before.load["ts"] + 30
