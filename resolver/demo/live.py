"""Live state for the served demo: LOAD records that change while ``cid demo --serve`` runs.

LOAD has a 15 s TTL and a ``ts`` key; a resolver judges capacity stale once ``ts`` is older
than the TTL allows (spec/resolution.md §4), so a demo that never refreshed LOAD would show
the ranking falling back to name order after a minute. Every refresh takes a bounded random
step per resource, bumps the SOA serial, re-signs the zone with its own keys and swaps it into
the running server in one synchronous step (no query can see a half-updated zone).
"""

from __future__ import annotations

import random
import time

import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.zone

from .. import records
from ..auth import keys as zkeys
from ..auth import signer
from ..auth.store import ZoneStore
from ..records.load import LOAD as LoadRdata

REFRESH_SECONDS = 10.0


def next_load(current: dict, caps: dict, rng: random.Random, now: float) -> dict:
    """One bounded random step: free devices move by at most one, utilisation follows them."""
    total = int(caps.get("accel_count", 0))
    load = dict(current)
    if total:
        free = min(total, max(0, int(load.get("accel_free", 0)) + rng.choice((-1, 0, 0, 1))))
        load["accel_free"] = free
        load["accel_util_ratio"] = round(1 - free / total, 2)
        load["queue_depth"] = max(0, int(load.get("queue_depth", 0)) + rng.choice((-1, 0, 1)) - free // 4)
    load["ts"] = int(now)
    return load


def refresh_zone(zone: dns.zone.Zone, keys: list[zkeys.ZoneKey], rng: random.Random,
                 now: float | None = None) -> int:
    """Advance every LOAD RRset of ``zone`` in place and re-sign it; returns how many changed."""
    now = time.time() if now is None else now
    changed = 0
    for name, node in zone.nodes.items():
        load_rds = node.get_rdataset(dns.rdataclass.IN, records.LOAD)
        caps_rds = node.get_rdataset(dns.rdataclass.IN, records.CAPS)
        if load_rds is None:
            continue
        caps = caps_rds[0].data.value if caps_rds else {}
        fresh = next_load(load_rds[0].data.value, caps, rng, now)
        new = dns.rdataset.from_rdata(load_rds.ttl, LoadRdata(dns.rdataclass.IN, records.LOAD, fresh))
        node.replace_rdataset(new)
        changed += 1
    if not changed:
        return 0
    soa_rds = zone.get_rdataset(zone.origin, dns.rdatatype.SOA)
    soa = soa_rds[0]
    zone.replace_rdataset(zone.origin, dns.rdataset.from_rdata(
        soa_rds.ttl, soa.replace(serial=(soa.serial + 1) % 2**32)))
    if keys:
        signer.sign_zone(zone, keys, now=now)
    return changed


class LoadRefresher:
    """Refreshes the LOAD records of every served zone; call ``tick()`` periodically."""

    def __init__(self, served: list[tuple[ZoneStore, dns.zone.Zone, list[zkeys.ZoneKey]]],
                 seed: int | None = None):
        self._served = served
        self._rng = random.Random(seed)

    def tick(self, now: float | None = None) -> int:
        total = 0
        for store, zone, keys in self._served:
            changed = refresh_zone(zone, keys, self._rng, now)
            if changed:
                store.add(zone)  # re-index: the store swaps the new version in atomically
                total += changed
        return total
