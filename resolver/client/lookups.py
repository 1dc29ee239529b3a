"""The lookup layer of a Resolver: one validated (name, type) lookup, cache first.

A hit costs a dict lookup (the cache's hot layer keeps the Lookup built last time); a miss runs
a fresh sans-I/O Engine under the asyncio driver, one in flight per question (Unbound's mesh:
a burst for one name costs one resolution); an answer near expiry starts a bounded background
refresh (prefetch). ``Resolver`` (resolver/client/__init__.py) composes this layer with the
assembly of whole resolutions (assembly.py), which calls ``lookup`` for every RRset it uses.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any

import dns.name
import dns.rdatatype

from ..dnssec.anchors import TrustAnchor
from ..drivers.asyncio_driver import drive
from ..engine import trace as ev
from ..nametext import lower_name, type_text
from ..engine.cache import Cache, RRsetEntry, materialised_size
from ..engine.engine import Budget, Engine
from ..engine.result import Lookup
from ..status import Status
from .policy import ValidationRefused, refuses_answer

CNAME = dns.rdatatype.CNAME
MAX_BACKGROUND = 64  # prefetch refreshes running at once; more are skipped, not queued
# Set inside a background refresh of a whole resolution: every lookup it makes (SVCB, CAPS,
# LOAD, addresses, scheduling) re-fetches what is near expiry, without threading a flag through.
REFRESH: contextvars.ContextVar[bool] = contextvars.ContextVar("cid_refresh", default=False)


class Lookups:
    """Mixin of Resolver: the attributes it reads are set by ``Resolver.__init__``."""

    cache: Cache
    clock: Callable[[], float]
    hints: Any
    trust_anchor: TrustAnchor | None
    port: int
    timeout: float
    max_queries: int
    max_time: float
    engine_options: dict[str, Any]
    validation: str
    require_secure: bool
    stats: dict[str, int]
    hits: int
    upstream_observer: Callable[[float, str], None] | None
    _inflight: dict[tuple, asyncio.Future]
    _background: set[asyncio.Task]
    _refreshing: set[tuple]

    async def close(self) -> None:
        """Cancel background refreshes (prefetch); no sockets are held between lookups."""
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_background(self) -> None:
        """Wait until the prefetch refreshes started so far have finished (for tests, tools)."""
        for _ in range(100):  # a refresh may start another; bounded all the same
            if not self._background:
                return
            await asyncio.gather(*list(self._background), return_exceptions=True)

    def engine(self, name: dns.name.Name | str, rdtype: int | str, *, cd: bool = False,
               tcp: bool = False, budget: Budget | None = None, refresh: bool = False) -> Engine:
        return Engine(name, rdtype, self.hints, self.trust_anchor, self.cache, now=self.clock,
                      port=self.port, timeout=self.timeout, max_queries=self.max_queries,
                      max_time=self.max_time, checking_disabled=cd, tcp=tcp, budget=budget, refresh=refresh,
                      **self.engine_options)

    def refused(self, status: Status, rcode: str) -> bool:
        """Whether the policy refuses an answer of this status (failures are not answers)."""
        return refuses_answer(status, rcode, self.validation, self.require_secure)

    def _checked(self, lookup: Lookup) -> Lookup:
        if lookup.status is not Status.SECURE and self.refused(lookup.status, lookup.rcode):
            raise ValidationRefused(lookup.qname.to_text(), lookup.status, lookup.why, lookup)
        return lookup

    async def lookup(self, name: dns.name.Name | str, rdtype: int | str, *, cd: bool = False,
                     tcp: bool = False, budget: Budget | None = None, refresh: bool = False,
                     policy: bool = True) -> Lookup:
        """One validated (name, type) lookup; the Lookup carries rrset, status, why, rcode, trace.
        With ``cd`` (checking disabled) bogus data is returned too, still marked BOGUS; with
        ``tcp`` every upstream query uses TCP. Bounded by ``max_queries``/``max_time`` unless
        given a shared ``budget``. ``refresh`` re-fetches cached data near expiry (prefetch).
        Raises ValidationRefused as the policy says; ``policy=False`` returns every answer
        marked with its status (the DNS front end: stubs learn it from the AD bit)."""
        # A repeated hit: the Lookup built last time from the same, still cached entry (no
        # name parsing, no objects built: a dict lookup and a TTL check).
        asked = (name, rdtype)
        hit = self._hot_hit(asked)
        if hit is not None:
            self.hits += 1
            if hit.status is not Status.SECURE and policy:
                return self._checked(hit)
            return hit
        result = await self._lookup(name, rdtype, asked, cd, tcp, budget, refresh)
        if result.status is not Status.SECURE and policy and not cd:
            return self._checked(result)
        return result

    def lookup_now(self, name: dns.name.Name, rdtype: int) -> Lookup | None:
        """What ``lookup(name, rdtype, policy=False)`` returns when it would not wait — a hit in
        the hot layer or in the cache itself — else None. The DNS front end answers these
        without a task."""
        asked = (name, rdtype)
        hit = self._hot_hit(asked)
        if hit is None:
            hit = self._cached(name, rdtype, asked)
        if hit is not None:
            self.hits += 1
        return hit

    def lookup_now_entry(self, name: dns.name.Name, rdtype: int) -> tuple[Lookup, Any] | None:
        """``lookup_now`` with the cache entry its Lookup was built from, when the hot layer
        keeps that Lookup (else None in its place). While the same entry answers, the same
        question gets the same records, only with a lower TTL (the DNS front end counts the
        TTLs of its rendered bytes down instead of rendering them again)."""
        hit = self.lookup_now(name, rdtype)
        if hit is None:
            return None
        return hit, self.cache.hot_entry((name, rdtype), hit)

    def still_answers(self, entry: Any, name: dns.name.Name, rdtype: int) -> int | None:
        """The TTL ``lookup_now(name, rdtype)`` would give now, when its Lookup would still be
        built from ``entry`` (the one an earlier hit was built from), else None. An RRset entry
        decides that by itself (Cache.still_answers: counted as the hit it is, without hashing
        the name again); a negative one goes through ``lookup_now``."""
        if type(entry) is RRsetEntry:
            ttl = self.cache.still_answers(entry)
            if ttl is not None:
                self.hits += 1
            return ttl
        found = self.lookup_now_entry(name, rdtype)
        return found[0].ttl if found is not None and found[1] is entry else None

    async def _lookup(self, name, rdtype, asked, cd: bool, tcp: bool, budget: Budget | None,
                      refresh: bool) -> Lookup:
        name = dns.name.from_text(name) if isinstance(name, str) else name
        rdtype = dns.rdatatype.from_text(rdtype) if isinstance(rdtype, str) else rdtype
        # One in-flight lookup per question (Unbound's mesh): identical concurrent lookups
        # share one fetch by construction, so a burst for one name costs one resolution.
        refresh = refresh or REFRESH.get()
        hit = self._cached(name, rdtype, asked)
        if hit is not None:
            self.hits += 1
            return hit
        self.stats["misses"] += 1
        key = (lower_name(name), rdtype, cd, tcp, refresh)
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        task = asyncio.ensure_future(self._drive(self.engine(name, rdtype, cd=cd, tcp=tcp, budget=budget,
                                                             refresh=refresh)))
        self._inflight[key] = task
        task.add_done_callback(lambda done: self._inflight.pop(key, None) if self._inflight.get(key) is done else None)
        return await asyncio.shield(task)

    def _hot_hit(self, asked: tuple) -> Lookup | None:
        """What _cached gave for the same question, while its entry is still the cached one,
        fresh and not due for prefetch; its TTL counted down (rebuilt once a second)."""
        cache = self.cache
        now = self.clock()
        found = cache.hot_get(asked, now)
        if found is None:
            return None
        entry, lookup = found
        if cache.near_expiry(entry, now):
            return None
        left = int(entry.expires - now)
        if lookup.ttl != left:
            lookup = lookup.replaced(ttl=left)
            cache.hot_replace(asked, lookup)
        return lookup

    def _cached(self, name: dns.name.Name, rdtype: int, asked: tuple | None = None) -> Lookup | None:
        """The common hit without building an Engine: one fresh, not bogus entry answers the
        question itself (the same Lookup the engine's cache path gives). CNAMEs, bogus data,
        entries due for prefetch and NSEC-proven denials go through the engine. The Lookup
        is kept in the cache's hot layer under ``asked`` (the question as the caller gave it)."""
        cache = self.cache
        entry = cache.get_rrset(name, rdtype)
        if entry is not None:
            if entry.status is Status.BOGUS or cache.near_expiry(entry):
                return None
            rrset, rrsigs = entry.records()
            proof = entry.proof
            lookup = Lookup(name, rdtype, "NOERROR", entry.status, entry.why, cache.remaining(entry), rrset,
                            rrsigs, (), proof,
                            trace=(ev.CacheHit(name.to_text(), type_text(rdtype), entry.status),))
            if asked is not None:
                cache.put_hot(asked, entry, lookup, materialised_size(rrset, rrsigs, *proof))
            return lookup
        if rdtype != CNAME and cache.get_rrset(name, CNAME) is not None:
            return None
        neg = cache.get_negative(name, rdtype)
        if neg is None or neg.status is Status.BOGUS or cache.near_expiry(neg):
            return None
        authority = neg.authority
        lookup = Lookup(name, rdtype, "NXDOMAIN" if neg.rcode == "NXDOMAIN" else "NOERROR", neg.status, neg.why,
                        cache.remaining(neg), authority=authority,
                        trace=(ev.CacheHit(name.to_text(), type_text(rdtype), neg.status),))
        if asked is not None:
            cache.put_hot(asked, neg, lookup, materialised_size(*authority), negative=True)
        return lookup

    async def _drive(self, engine: Engine) -> Lookup:
        result = await drive(engine, self.upstream_observer)
        self.stats["validation_" + result.status.value] += 1
        if result.stale:
            self.stats["stale"] += 1
        for name, rdtype in engine.prefetch:
            self._background_task(("lookup", name.canonicalize(), rdtype),
                                  lambda n=name, t=rdtype: self.lookup(n, t, refresh=True, policy=False))
        return result

    def _background_task(self, key, start: Callable) -> None:
        """Start one prefetch refresh unless the same one runs already or too many do."""
        if key in self._refreshing:
            return
        if len(self._background) >= MAX_BACKGROUND:
            self.stats["prefetch_skipped"] += 1
            return
        self.stats["prefetch"] += 1
        self._refreshing.add(key)
        task = asyncio.ensure_future(start())
        self._background.add(task)

        def done(t: asyncio.Task) -> None:
            self._background.discard(t)
            self._refreshing.discard(key)
            if not t.cancelled():
                t.exception()  # a refresh that failed leaves the old entry; nothing to report
        task.add_done_callback(done)
