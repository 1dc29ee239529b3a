"""Endpoint choice (spec/resolution.md §4): pure ordering rules, the reachability table, and the
rules applied by Resolver.resolve/probe against real servers on loopback."""

from __future__ import annotations

import asyncio
import math
import socket
import time

import pytest

from resolver import Endpoint, Resolver, Status
from resolver import schedule as S
from resolver.drivers.probe import connect_time
from support import federation as F
from support.net import free_port


def ep(target: str, priority: int = 1, *addresses: str, port: int | None = None) -> Endpoint:
    return Endpoint(target, priority, port, (), tuple(addresses))


# --- free capacity ------------------------------------------------------------------------

def test_free_capacity_prefers_accel_then_cpu_then_load_ratio():
    assert S.free_capacity({"accel_free": 3, "cpu_free": 90}) == 3
    assert S.free_capacity({"cpu_free": 90, "load_ratio": 0.5}) == 90
    assert S.free_capacity({"load_ratio": 0.25}) == 0.75
    assert S.free_capacity({"queue_depth": 2}) is None
    assert S.free_capacity(None) is None and S.free_capacity({}) is None


@pytest.mark.parametrize("load", [
    {"accel_free": True},              # a bool is not a count
    {"accel_free": "7"},               # nor is a string
    {"accel_free": math.nan},
    {"accel_free": math.inf},
    {"load_ratio": 1.5},               # out of range: no figure rather than a negative one
    {"load_ratio": -0.1},
])
def test_free_capacity_ignores_values_that_are_not_figures(load):
    assert S.free_capacity(load) is None


def test_stale_load_says_nothing_about_now():
    now = 1_000_000.0
    fresh = {"accel_free": 4, "ts": int(now - 60)}
    assert S.free_capacity(fresh, load_ttl=15, now=now) == 4          # 60 s < 5 × 15 s
    stale = {"accel_free": 4, "ts": int(now - 76)}
    assert S.free_capacity(stale, load_ttl=15, now=now) is None       # 76 s > 75 s
    assert S.free_capacity({"accel_free": 4}, load_ttl=15, now=now) == 4  # no ts: age unknown
    assert S.free_capacity(stale, load_ttl=None, now=now) == 4        # no TTL: age unknown


# --- order ---------------------------------------------------------------------------------

def test_priority_first_then_capacity_then_rtt_then_canonical_name():
    endpoints = [ep("b.example.", 1, "192.0.2.2"), ep("a.example.", 2, "192.0.2.1"),
                 ep("c.example.", 1, "192.0.2.3"), ep("d.example.", 1, "192.0.2.4")]
    # No figures: priority, then canonical TargetName.
    assert [e.target for e in S.order_endpoints(endpoints)] == [
        "b.example.", "c.example.", "d.example.", "a.example."]
    # Capacity beats the name; unknown capacity after every known one.
    free = {"c.example.": 5.0, "d.example.": 1.0}
    assert [e.target for e in S.order_endpoints(endpoints, free=free)] == [
        "c.example.", "d.example.", "b.example.", "a.example."]
    # RTT decides between equal capacities; capacity still beats RTT; priority beats all.
    table = S.Reachability()
    table.observe("192.0.2.2", 0.050)
    table.observe("192.0.2.4", 0.001)
    table.observe("192.0.2.1", 0.0001)
    free = {"b.example.": 2.0, "c.example.": 2.0, "d.example.": 1.0}
    order = S.order_endpoints(endpoints, free=free, rtt=table.srtt)
    assert [e.target for e in order] == ["b.example.", "c.example.", "d.example.", "a.example."]


def test_canonical_order_is_dnssec_order_not_text_order():
    # RFC 4034 §6.1: compare label by label from the right, case-insensitively.
    endpoints = [ep("z.a.example."), ep("B.example."), ep("a.example."), ep("yljkjljk.a.example.")]
    assert [e.target for e in S.order_endpoints(endpoints)] == [
        "a.example.", "yljkjljk.a.example.", "z.a.example.", "B.example."]


def test_addresses_measured_first_unmeasured_next_failed_last():
    table = S.Reachability()
    table.observe("192.0.2.9", 0.2)
    table.observe("2001:db8::1", 0.1)
    table.failed("192.0.2.1")
    e = ep("x.example.", 1, "192.0.2.1", "192.0.2.5", "192.0.2.9", "2001:db8::1", "10.0.0.1")
    (ordered,) = S.order_endpoints([e], rtt=table.srtt)
    assert ordered.addresses == ("2001:db8::1", "192.0.2.9", "10.0.0.1", "192.0.2.5", "192.0.2.1")


def test_reachability_smooths_demotes_on_failure_and_is_bounded():
    table = S.Reachability(max_entries=3)
    table.observe("192.0.2.1", 0.8)
    table.observe("192.0.2.1", 0.0)
    assert table.srtt("192.0.2.1") == pytest.approx(0.7)   # RFC 6298: 7/8 old + 1/8 new
    table.failed("192.0.2.1")
    assert table.srtt("192.0.2.1") == S.UNREACHABLE_RTT
    table.observe("192.0.2.1", 1e9)                        # absurd measurements are capped
    assert table.srtt("192.0.2.1") == S.UNREACHABLE_RTT
    for i in range(2, 10):
        table.observe(f"192.0.2.{i}", 0.01)
    assert len(table) == 3 and table.srtt("192.0.2.1") is None  # least recently measured forgotten
    assert table.srtt("192.0.2.9") == 0.01


# --- applied by the Resolver ------------------------------------------------------------------

SHARED = """
multi 300 SVCB 1 slow-pool alpn=h2 port=8001
multi 300 SVCB 1 busy-pool alpn=h2 port=8002
multi 300 SVCB 1 free-pool alpn=h2 port=8003
multi 300 SVCB 2 backup alpn=h2
multi 3600 CAPS accel_kind=gpu
slow-pool 300 A 192.0.2.61
busy-pool 300 A 192.0.2.62
busy-pool 30 LOAD accel_free=0
free-pool 300 A 192.0.2.63
free-pool 30 LOAD accel_free=6
"""


@pytest.fixture(scope="module")
def fed():
    bj = F.ZONES["bj.cmcc.cid."][1] + SHARED
    return F.build(now=time.time(), overrides={"bj.cmcc.cid.": bj})


async def test_equal_priority_targets_ordered_by_their_own_load(fed):
    async with F.serving(fed) as port:
        async with Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0) as r:
            res = await r.resolve("cid:multi.bj.cmcc.cid")
    assert res.status is Status.SECURE, res.why
    # free-pool (6 free) before busy-pool (0 free) before slow-pool (no LOAD); priority 2 last
    assert [(e.target, e.port) for e in res.endpoints] == [
        ("free-pool.bj.cmcc.cid.", 8003), ("busy-pool.bj.cmcc.cid.", 8002),
        ("slow-pool.bj.cmcc.cid.", 8001), ("backup.bj.cmcc.cid.", None)]
    assert "LOAD at free-pool.bj.cmcc.cid." in res.why  # the lookups used count for the status


async def test_one_target_per_priority_costs_no_extra_lookup(fed):
    async with F.serving(fed) as port:
        async with Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0) as r:
            res = await r.resolve("cid:pool-7.bj.cmcc.cid")
    assert [e.target for e in res.endpoints] == ["pool-7.bj.cmcc.cid.", "backup.bj.cmcc.cid."]
    assert "LOAD at" not in res.why
    assert res.load_ttl == 30


class _Listener:
    """A TCP port that accepts connections on a loopback address (the 'reachable' endpoint)."""

    def __init__(self, host: str):
        self.host = host

    async def __aenter__(self):
        self.server = await asyncio.start_server(lambda r, w: w.close(), self.host, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()


async def test_probe_measures_connects_and_puts_reachable_endpoints_first():
    closed_port = free_port("127.0.0.21")  # nothing listens there: connection refused
    async with _Listener("127.0.0.22") as open_:
        zone = F.ZONES["bj.cmcc.cid."][1] + f"""
svc 300 SVCB 1 down alpn=h2 port={closed_port}
svc 300 SVCB 1 up alpn=h2 port={open_.port}
down 300 A 127.0.0.21
up 300 A 127.0.0.22
"""
        fed = F.build(now=time.time(), overrides={"bj.cmcc.cid.": zone})
        async with F.serving(fed) as port:
            async with Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0) as r:
                before = await r.resolve("cid:svc.bj.cmcc.cid")
                after = await r.probe("cid:svc.bj.cmcc.cid")
                later = await r._resolve("cid:svc.bj.cmcc.cid")
    assert [e.target for e in before.endpoints] == ["down.bj.cmcc.cid.", "up.bj.cmcc.cid."]  # by name
    assert [e.target for e in after.endpoints] == ["up.bj.cmcc.cid.", "down.bj.cmcc.cid."]
    assert r.reachability.srtt("127.0.0.21") == S.UNREACHABLE_RTT
    assert r.reachability.srtt("127.0.0.22") < S.UNREACHABLE_RTT
    assert later.endpoints == after.endpoints  # measurements persist in the Resolver


async def test_connect_time_fails_cleanly_on_refused_port():
    port = free_port("127.0.0.23")
    assert await connect_time("127.0.0.23", port, 1.0) is None
    async with _Listener("127.0.0.23") as open_:
        rtt = await connect_time("127.0.0.23", open_.port, 1.0)
    assert rtt is not None and rtt >= 0
    with socket.socket() as s:  # still usable afterwards: nothing left bound
        s.bind(("127.0.0.23", 0))
