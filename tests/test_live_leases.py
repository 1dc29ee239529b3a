"""Leases (RFC 9664) on live zones: with an injected clock through the LiveZone API, and once in
real time through `cid serve auth --config` with a short lease.

Expiry removes the leased records and the browse PTRs made for them, and the zone is re-signed
(`cid zone verify` of the exported zone); a grant's max_lease caps a lease; renewal extends it.
"""

from __future__ import annotations

import asyncio
import time

import dns.name
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import dns.update

import resolver  # noqa: F401
from resolver.auth import authconfig, export, livesetup, wirename
from resolver.auth.zonedb import decode_sets
from resolver.records import capsmap
from resolver.auth.live import Request
from resolver.auth.store import ZoneStore
from support import live_primary as lp
from support.net import free_port

ADDRESS = "127.0.92.3"
ZONE = lp.ZONE
_CAPS = capsmap.encode({"accel_count": 8})
CAPS_ADD = ("pool-1.ex.cid.", 60, "TYPE65380", rf"\# {len(_CAPS)} {_CAPS.hex()}")


def _update(*adds) -> dns.update.UpdateMessage:
    message = dns.update.UpdateMessage(ZONE)
    for add in adds:
        message.add(*add)
    return message


async def _run(live, key, message, lease=None) -> Request:
    return await live.run(Request(message, key, lease=lease))


def test_leases_with_an_injected_clock(tmp_path):
    site = lp.build(tmp_path / "site", ADDRESS, 5300, prov_max_lease=300, min_lease=30)
    config = authconfig.load(site.config)
    now = [time.time()]
    live = livesetup.open_zone(ZoneStore(), config.zones[0], config, clock=lambda: now[0])
    key = config.keyring().get(dns.name.from_text("prov."))

    def has(name: str, rdtype: int) -> bool:
        blob = dict.get(live.data.blobs, wirename.key_of(dns.name.from_text(name)))
        return blob is not None and any(t == rdtype for (t, _c) in decode_sets(blob))

    async def scenario():
        add = _run(live, key, _update(("pool-1.ex.cid.", 60, "A", "127.0.92.9"), CAPS_ADD), lease=120)
        request = await add
        assert request.outcome.rcode == dns.rcode.NOERROR, request.outcome
        assert request.granted == 120
        assert has("pool-1.ex.cid.", 1) and has(f"_compute.{ZONE}", 12)
        # The grant caps the lease: asked for 10000 s, given the grant's 300.
        capped = await _run(live, key, _update(("pool-2.ex.cid.", 60, "A", "127.0.92.10")), lease=10000)
        assert capped.granted == 300
        # Below min_lease: raised to it.
        short = await _run(live, key, _update(("pool-2.ex.cid.", 60, "AAAA", "::2")), lease=1)
        assert short.granted == 30
        serial = live.committed_serial

        now[0] += 100  # nothing is due yet (pool-2 AAAA at +30 is)
        assert await live.expire() == 1
        assert has("pool-1.ex.cid.", 1) and not has("pool-2.ex.cid.", 28)
        # Renewal at +100 with a 120 s lease: pool-1 lives to +220.
        renew = await _run(live, key, _update(("pool-1.ex.cid.", 60, "A", "127.0.92.9"), CAPS_ADD), lease=120)
        assert renew.outcome.rcode == dns.rcode.NOERROR and renew.granted == 120
        now[0] += 50  # +150: the first lease would have ended at +120
        assert await live.expire() == 0
        assert has("pool-1.ex.cid.", 1) and has(f"_compute.{ZONE}", 12)
        now[0] += 80  # +230: pool-1's renewed lease is over
        due = await live.expire()
        assert due == 2  # its A and its CAPS
        assert not has("pool-1.ex.cid.", 1) and not has("pool-1.ex.cid.", 65380)
        assert not has(f"_compute.{ZONE}", 12)  # the browse PTR went with the CAPS
        assert has("pool-2.ex.cid.", 1)  # leased to +300
        assert live.committed_serial != serial
        now[0] += 100
        assert await live.expire() == 1
        assert not live.leases and not live.journal.leases()

    try:
        asyncio.run(scenario())
        text = tmp_path / "expired.zone"
        export.write(live.data, text)
        assert "pool-1.ex.cid." not in text.read_text()
        lp.verify(text)
    finally:
        live.close()


def test_a_short_lease_expires_in_real_time(tmp_path):
    site = lp.build(tmp_path / "site", ADDRESS, free_port(ADDRESS), min_lease=1)
    with lp.serve(site) as server:
        ident = "cid:pool-1.ex.cid"
        out = lp.cid("register", ident, "--server", server.server, "--key", lp.PROV, "--endpoint",
                     "h2://127.0.92.9:8443", "--caps", "accel_kind=gpu", "region=cn-bj", "--lease", "2")
        assert out.returncode == 0 and "lease 2 s granted" in out.stdout, out.stdout + out.stderr
        assert server.signed("pool-1.ex.cid.", "SVCB")
        assert server.signed(f"_region-cn-bj._sub._compute.{ZONE}", "PTR")
        lp.until(lambda: server.ask("pool-1.ex.cid.", "SVCB").rcode() == dns.rcode.NXDOMAIN,
                 "the lease to expire", timeout=15)
        # _compute.ZONE stays as the parent of _children._compute.ZONE (the zone's delegation,
        # listed when it was signed): NODATA there, NXDOMAIN for the sub-type name.
        empty = server.ask(f"_compute.{ZONE}", "PTR")
        assert empty.rcode() == dns.rcode.NOERROR and not empty.answer, empty
        assert server.ask(f"_region-cn-bj._sub._compute.{ZONE}", "PTR").rcode() == dns.rcode.NXDOMAIN
        assert "leased record(s) expired" in server.log_text()
    lp.verify(lp.export(site, tmp_path / "after.zone"))
