"""The assembly of a resolution: identifier → SVCB → addresses → CAPS → LOAD → Resolution.

spec/resolution.md §3–§4: SVCB first (it walks and caches the delegations and keys the other
lookups share), AliasMode followed up to MAX_ALIAS hops, then the endpoints' addresses, CAPS and
LOAD together under one budget of queries and time, then the endpoint order. The Resolution is
rated by the weakest status among the RRsets it used: one insecure or bogus link makes the whole
answer that weak. Whole resolutions are cached; a hit near expiry refreshes in the background.
The Python API, the HTTP API (resolver/http) and ``cid resolve`` all come through ``resolve``.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import replace

import dns.name
import dns.rdatatype
import dns.rdtypes.svcbbase as svcb

from .. import identifier as ident
from .. import schedule
from ..drivers.probe import probe as _probe
from ..engine.cache import Cache
from ..engine.engine import Budget
from ..engine.result import Lookup, weakest
from ..nametext import name_text
from ..records import CAPS, LOAD
from ..resolution import Endpoint, Resolution
from ..status import Status
from .lookups import REFRESH
from .policy import ValidationRefused, refuses_result

SVCB = dns.rdatatype.SVCB
A, AAAA = dns.rdatatype.A, dns.rdatatype.AAAA
MAX_ALIAS = 8  # AliasMode hops (RFC 9460 §2.4.2 asks for a chain limit)


class Assembly:
    """Mixin of Resolver: needs ``lookup`` and ``_background_task`` (lookups.py) and the
    attributes ``Resolver.__init__`` sets."""

    cache: Cache
    clock: Callable[[], float]
    max_resolve_queries: int
    max_time: float
    validation: str
    require_secure: bool
    stats: dict[str, int]
    resolution_hits: int
    reachability: schedule.Reachability
    lookup: Callable[..., Awaitable[Lookup]]
    _background_task: Callable[..., None]

    async def resolve(self, identifier: str, *, policy: bool = True) -> Resolution:
        """Resolve a compute identifier; raises IdentifierError when it is not one, and
        ValidationRefused as the policy says (``policy=False``: the Resolution as it is).

        Whole resolutions are cached (with the RRsets, in one LRU under ``max_bytes``) by the
        text asked for until their least TTL runs out, so a repeated resolve costs a dict
        lookup; the trace is only on the first answer. A hit in the last 10 % of that TTL
        starts a background refresh (prefetch), so popular identifiers never go cold."""
        cache = self.cache
        entry = cache.get_resolution(identifier)
        if entry is not None:
            self.resolution_hits += 1
            cached = entry.value
            now = self.clock()
            if now - entry.stored >= 1:  # hand out the remaining TTL, recomputed once a second
                cached = replace(cached, ttl=int(entry.expires - now))
                cache.refresh_resolution(identifier, entry, cached)
                if cache.near_expiry(entry):
                    self._background_task(("resolve", identifier), lambda: self._refresh_resolution(identifier))
            result = cached
        else:
            self.stats["resolution_misses"] += 1
            result = await self._resolve(identifier)
            self._remember(identifier, result)
        if policy and result.status is not Status.SECURE and self._refuses_resolution(result):
            raise ValidationRefused(result.identifier, result.status, result.why, result)
        return result

    def _refuses_resolution(self, result) -> bool:
        return refuses_result(result, self.validation, self.require_secure)

    def _remember(self, identifier: str, result: Resolution) -> None:
        if result.rcode != "SERVFAIL" or result.status is Status.BOGUS:
            size = 256 * (1 + len(result.endpoints)) + 128 * (len(result.capabilities) + len(result.load or ()))
            # The key asked for is usually the canonical spelling itself: keep one string.
            spelled = identifier if identifier == result.identifier else result.identifier
            self.cache.put_resolution(identifier, dns.name.from_text(result.name),
                                      replace(result, trace=(), identifier=spelled), result.status, result.ttl, size)

    async def _refresh_resolution(self, identifier: str) -> None:
        REFRESH.set(True)  # this task's context only
        self._remember(identifier, await self._resolve(identifier))

    async def _resolve(self, identifier: str) -> Resolution:
        name = ident.parse(identifier)
        # All lookups of one resolution share one budget of queries and time: never a hang.
        budget = Budget.start(self.clock, self.max_resolve_queries, self.max_time)
        # SVCB first: it walks (and caches) the delegations and keys that CAPS, LOAD and the
        # address lookups then share, instead of each fetching and validating them in parallel.
        svcb_lookup = await self.lookup(name, SVCB, budget=budget, policy=False)
        used: list[tuple[str, Lookup]] = [("SVCB", svcb_lookup)]
        for _ in range(MAX_ALIAS):
            alias = _alias_target(svcb_lookup)
            if alias is None:
                break
            svcb_lookup = await self.lookup(alias, SVCB, budget=budget, policy=False)
            used.append((f"SVCB at alias {alias}", svcb_lookup))
        else:
            if _alias_target(svcb_lookup) is not None:
                return _failed(name, f"SVCB AliasMode chain longer than {MAX_ALIAS}", used)

        if svcb_lookup.rcode == "NXDOMAIN" and len(used) == 1:
            return _result(name, "NXDOMAIN", used, (), {}, None)
        if svcb_lookup.rcode == "SERVFAIL":
            return _failed(name, svcb_lookup.why, used)

        (endpoints, address_lookups), caps_lookup, load_lookup = await asyncio.gather(
            self._endpoints(svcb_lookup, budget), self.lookup(name, CAPS, budget=budget, policy=False),
            self.lookup(name, LOAD, budget=budget, policy=False))
        used += address_lookups
        used.append(("CAPS", caps_lookup))
        used.append(("LOAD", load_lookup))
        capabilities: dict = {}
        if caps_lookup.rrset is not None:
            for rd in sorted(caps_lookup.rrset, key=lambda r: r.to_digestable()):
                capabilities.update(rd.mapping)
        load = _merged(load_lookup)
        load_ttl = load_lookup.rrset.ttl if load_lookup.rrset is not None else None
        endpoints, load_lookups = await self._schedule(name, svcb_lookup, endpoints, load, load_ttl, budget)
        used += load_lookups
        return _result(name, "NOERROR", used, endpoints, capabilities, load, load_ttl)

    async def _schedule(self, name: dns.name.Name, svcb_lookup: Lookup, endpoints: tuple[Endpoint, ...],
                        load: dict | None, load_ttl: int | None,
                        budget: Budget) -> tuple[tuple[Endpoint, ...], list[tuple[str, Lookup]]]:
        """Endpoint order of spec/resolution.md §4: priority, free capacity at the target,
        measured reachability, canonical TargetName."""
        now = self.clock()
        own = schedule.free_capacity(load, load_ttl, now)
        homes = {ident.to_dns(name)}
        if svcb_lookup.rrset is not None:
            homes.add(name_text(svcb_lookup.rrset.name).lower())
        free: dict[str, float | None] = {e.target: own for e in endpoints if e.target.lower() in homes}
        # LOAD at another target only matters when two endpoints of one priority point at
        # different names; otherwise it would cost a lookup that cannot change the order.
        targets: dict[int, set[str]] = {}
        for e in endpoints:
            targets.setdefault(e.priority, set()).add(e.target)
        foreign = sorted({t for group in targets.values() if len(group) > 1 for t in group
                          if t.lower() not in homes})
        used: list[tuple[str, Lookup]] = []
        if foreign:
            lookups = await asyncio.gather(*(self.lookup(t, LOAD, budget=budget, policy=False) for t in foreign))
            for target, lk in zip(foreign, lookups):
                if lk.status is Status.BOGUS or lk.rcode == "SERVFAIL":
                    continue  # only an ordering hint: unusable LOAD gives no figure, not a failure
                used.append((f"LOAD at {target}", lk))
                if lk.rrset is not None:
                    free[target] = schedule.free_capacity(_merged(lk), lk.rrset.ttl, now)
        rtt = self.reachability.srtt if len(self.reachability) else None
        return schedule.order_endpoints(endpoints, free=free, rtt=rtt), used

    async def probe(self, identifier: str, *, timeout: float = 0.5, default_port: int = 443) -> Resolution:
        """Resolve, time one TCP connect to every endpoint address (at most 32), remember the
        RTTs, and return the resolution ordered with them (spec/resolution.md §4 rule 3).
        Resolutions computed later by this Resolver use the measurements too."""
        result = await self.resolve(identifier)  # refused answers are never probed
        if not result.endpoints:
            return result
        await _probe(self.reachability, [(a, e.port or default_port) for e in result.endpoints
                                         for a in e.addresses], timeout)
        return await self._resolve(identifier)

    async def _endpoints(self, svcb_lookup: Lookup, budget: Budget) -> tuple[tuple[Endpoint, ...], list[tuple[str, Lookup]]]:
        if svcb_lookup.rrset is None:
            return (), []
        owner = svcb_lookup.rrset.name
        records = _service_records(svcb_lookup.rrset)
        targets = list(dict.fromkeys(owner if rd.target == dns.name.root else rd.target for rd in records))
        results = await asyncio.gather(*(self.lookup(t, rdtype, budget=budget, policy=False)
                                         for t in targets for rdtype in (A, AAAA)))
        by_target = {t: (results[2 * i], results[2 * i + 1]) for i, t in enumerate(targets)}
        used = []
        for t, (a, aaaa) in by_target.items():
            for label, lk in (("A", a), ("AAAA", aaaa)):
                if lk.rcode != "SERVFAIL" or lk.status is Status.BOGUS:
                    used.append((f"{label} at {t}", lk))
        endpoints = []
        for rd in records:
            target = owner if rd.target == dns.name.root else rd.target
            a, aaaa = by_target[target]
            addresses = [r.address for lk in (a, aaaa) if lk.rrset is not None for r in lk.rrset]
            if not addresses:  # RFC 9460 §7.3: hints only when the address lookups give nothing
                for key in (svcb.ParamKey.IPV4HINT, svcb.ParamKey.IPV6HINT):
                    if key in rd.params:
                        addresses.extend(rd.params[key].addresses)
            port = rd.params[svcb.ParamKey.PORT].port if svcb.ParamKey.PORT in rd.params else None
            alpn = tuple(i.decode("ascii", "replace") for i in rd.params[svcb.ParamKey.ALPN].ids) \
                if svcb.ParamKey.ALPN in rd.params else ()
            endpoints.append(Endpoint(name_text(target), rd.priority, port, alpn,
                                      tuple(sorted(set(addresses), key=_address_order))))
        return tuple(endpoints), used


# SvcParams this client acts on; a record making any other key mandatory is not for us.
_IMPLEMENTED_KEYS = frozenset({svcb.ParamKey.MANDATORY, svcb.ParamKey.ALPN, svcb.ParamKey.PORT,
                               svcb.ParamKey.IPV4HINT, svcb.ParamKey.IPV6HINT})

def _service_records(rrset) -> list:
    """ServiceMode records a client may use, in priority order (spec/records.md §1 items 2–3).

    An RRset holding AliasMode has its ServiceMode records ignored (RFC 9460 §2.4.1), and a
    record whose ``mandatory`` list names a key we do not implement is skipped (RFC 9460 §8).
    """
    if any(rd.priority == 0 for rd in rrset):
        return []
    usable = []
    for rd in rrset:
        mandatory = rd.params.get(svcb.ParamKey.MANDATORY)
        if mandatory is not None and not set(mandatory.keys) <= _IMPLEMENTED_KEYS:
            continue
        usable.append(rd)
    return sorted(usable, key=lambda rd: (rd.priority, rd.target))


def _address_order(text: str):
    address = ipaddress.ip_address(text)
    return (address.version, address)


def _alias_target(lookup: Lookup) -> dns.name.Name | None:
    if lookup.rrset is None:
        return None
    aliases = [rd for rd in lookup.rrset if rd.priority == 0]
    if not aliases or aliases[0].target == dns.name.root:
        return None  # RFC 9460 §2.5.1: AliasMode to "." means no service here
    return aliases[0].target


def _merged(lookup: Lookup) -> dict | None:
    """The CAPS/LOAD maps of an RRset merged in canonical RDATA order (records.md §2)."""
    if lookup.rrset is None:
        return None
    merged: dict = {}
    for rd in sorted(lookup.rrset, key=lambda r: r.to_digestable()):
        merged.update(rd.mapping)
    return merged


def _result(name, rcode: str, used: list[tuple[str, Lookup]], endpoints, capabilities, load,
            load_ttl: int | None = None) -> Resolution:
    status = weakest(*(lk.status for _, lk in used))
    if status is Status.SECURE and len(used) == 1:
        why = used[0][1].why
    elif status is Status.SECURE:
        why = f"all {len(used)} answers validated: " + ", ".join(label for label, _ in used)
    else:
        label, decider = next((label, lk) for label, lk in used if lk.status is status)
        why = f"{label}: {decider.why}"
    if status is Status.BOGUS:
        rcode, endpoints, capabilities, load = "SERVFAIL", (), {}, None
    why, stale = _stale_note(why, used)
    ttl = min(lk.ttl for _, lk in used)
    trace = tuple(event for _, lk in used for event in lk.trace)
    load_stale = any(lk.stale for label, lk in used if label == "LOAD")
    return Resolution(ident.to_cid(name), ident.to_dns(name), rcode, status, why, ttl,
                      tuple(endpoints), capabilities, load, trace, load_ttl, stale, _unvalidated(used), load_stale)


def _unvalidated(used: list[tuple[str, Lookup]]) -> bool:
    return any(lk.status is Status.INDETERMINATE and lk.rcode != "SERVFAIL" for _, lk in used)


def _stale_note(why: str, used: list[tuple[str, Lookup]]) -> tuple[str, bool]:
    """RFC 8767: a result built from stale data says so, in ``stale`` and in ``why``."""
    stale = [label for label, lk in used if lk.stale]
    if not stale:
        return why, False
    return f"{why} [stale: {', '.join(stale)} served from expired cache, every authority failed]", True


def _failed(name, why: str, used: list[tuple[str, Lookup]]) -> Resolution:
    status = weakest(*(lk.status for _, lk in used))
    trace = tuple(event for _, lk in used for event in lk.trace)
    why, stale = _stale_note(why, used)
    return Resolution(ident.to_cid(name), ident.to_dns(name), "SERVFAIL", status, why, 0, (), {}, None, trace,
                      stale=stale, unvalidated=_unvalidated(used))
