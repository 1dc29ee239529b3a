"""The demo's providers: each resource registers itself at its zone's live primary by signed
UPDATE (RFC 2136 + TSIG, spec/registration.md) with a lease (RFC 9664), renews it and heartbeats
its LOAD by UPDATE every LOAD_INTERVAL seconds, as ``cid register --keepalive`` does.

LOAD has a 15 s TTL and a ``ts`` key; a resolver judges capacity stale once ``ts`` is older than
the TTL allows (spec/resolution.md §4), so each heartbeat takes a bounded random step and a new
``ts``. One provider (VANISHING) holds a SHORT_LEASE: the demo stops its heartbeat (a crash: no
unregistration) and shows the server expire it, browse PTRs and all.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import dns.name

from ..registration import client
from ..identifier import to_cid
from .build import BuiltZone, Federation, svcb_texts, endpoint_address
from .inventory import Namespace, Resource, namespaces

LEASE = 120  # seconds, renewed at client.RENEW_FRACTION of it
SHORT_LEASE = 2  # the vanishing provider's; the demo configs' min_lease (1 s) lets it through
LOAD_INTERVAL = 10.0  # below LOAD's 15 s TTL, so the LOAD served is never stale
VANISHING = "cid:l4-edge.bj.cmcc.cid"
REGISTER_TIMEOUT = 20.0


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


@dataclass
class Provider:
    identifier: str
    keepalive: client.Keepalive
    stop: asyncio.Event
    task: asyncio.Task | None = None
    registered: asyncio.Event | None = None


def _publication(ns: Namespace, res: Resource, index: int) -> client.Publication:
    # browse=False: the server derives the browse PTRs itself (spec/registration.md §4.3)
    return client.prepare(f"{res.label}.{ns.name}", endpoints=svcb_texts(ns, res, index),
                          addresses=[endpoint_address(ns, index)], caps=res.caps, load=res.load, browse=False)


class Providers:
    """Every resource of the federation kept registered at its zone's primary until closed."""

    def __init__(self, fed: Federation, *, seed: int | None = None, load_interval: float = LOAD_INTERVAL,
                 report: Callable[[str], None] = lambda line: None):
        self._rng = random.Random(seed)
        self.load_interval = load_interval
        self.report = report
        zones = {z.name: z for z in fed.zones}
        self.providers: dict[str, Provider] = {}
        for ns in namespaces():
            for index, res in enumerate(ns.resources):
                self._add(zones[ns.name], ns, res, index)

    def _add(self, zone: BuiltZone, ns: Namespace, res: Resource, index: int) -> None:
        identifier = to_cid(dns.name.from_text(f"{res.label}.{ns.name}"))
        pub = _publication(ns, res, index)
        current = dict(pub.load or {})
        registered = asyncio.Event()

        def load_source() -> dict | None:
            nonlocal current
            if not registered.is_set():
                return None  # the first registration publishes the inventory's LOAD as it is
            current = next_load(current, res.caps, self._rng, time.time())
            return current

        def report(item) -> None:
            if isinstance(item, client.Result) and item.ok:
                registered.set()
            elif not registered.is_set():  # later failures are retried by the keepalive
                self.report(item if isinstance(item, str) else item.line())

        keepalive = client.Keepalive((zone.address, zone.port), client.as_key(zone.keys[0].spec), pub,
                                     SHORT_LEASE if identifier == VANISHING else LEASE,
                                     load_source=load_source, load_interval=self.load_interval,
                                     zone=dns.name.from_text(zone.name), report=report)
        self.providers[identifier] = Provider(identifier, keepalive, asyncio.Event(), registered=registered)

    async def start(self) -> None:
        """Start every keepalive; return once each registration is acknowledged."""
        for p in self.providers.values():
            p.task = asyncio.ensure_future(p.keepalive.run_async(p.stop))
        waits = [asyncio.wait_for(p.registered.wait(), REGISTER_TIMEOUT) for p in self.providers.values()]
        try:
            await asyncio.gather(*waits)
        except asyncio.TimeoutError:
            missing = [i for i, p in self.providers.items() if not p.registered.is_set()]
            raise RuntimeError(f"not registered within {REGISTER_TIMEOUT:.0f} s: {', '.join(missing)}") from None

    async def stop(self, identifier: str) -> None:
        """``identifier``'s provider stops heartbeating, as if it crashed: no unregistration."""
        provider = self.providers[identifier]
        provider.stop.set()
        if provider.task is not None:
            await provider.task

    def lease(self, identifier: str) -> int:
        return self.providers[identifier].keepalive.lease

    async def close(self) -> None:
        for p in self.providers.values():
            p.stop.set()
        await asyncio.gather(*(p.task for p in self.providers.values() if p.task is not None),
                             return_exceptions=True)
