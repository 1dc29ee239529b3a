"""The ``find`` search of spec/discovery.md §3: browse a namespace, descend its ``_children``
pointers into delegated namespaces, resolve what is listed and keep what matches.

Every step is a validated lookup or resolution through the caller's Resolver, so the search
trusts exactly what ``resolve`` trusts: a bogus listing is skipped and reported, never used,
and every condition is evaluated on validated CAPS/LOAD (a sub-type PTR is only a hint).
Bounded everywhere: levels, namespaces, identifiers, lookups in flight, and a total deadline.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar, overload

import dns.name
import dns.rdatatype

from .. import identifier as ident
from .. import schedule
from ..engine.result import Lookup, weakest
from ..records import registry
from ..resolution import Resolution
from ..status import Status
from .conditions import (COST_KEY, PRICE_KEY, PRICE_KEYS, Condition, ConditionError, SortKey, SortSpec,
                         Where, browse_selector, parse_sort, parse_where, sort_function)
from .prices import MixedCurrencies, Rates, currency_code, load_rates

if TYPE_CHECKING:
    from ..client import Resolver

PTR = dns.rdatatype.PTR
SOA = dns.rdatatype.SOA
MAX_DEPTH = 8            # levels below the starting namespace (spec/discovery.md §3.4)
MAX_NAMESPACES = 256     # namespaces browsed per search
MAX_IDENTIFIERS = 1024   # identifiers resolved per search
CONCURRENCY = 8          # lookups/resolutions in flight at once
DEADLINE = 30.0          # seconds for the whole search
MAX_SKIPPED = 256        # skipped items reported one by one; the rest are only counted
MAX_NEED = 1_000_000     # devices one search may ask for
MAX_AGE = 10 * 365 * 86400
FUTURE_TS = 300          # a LOAD ts further ahead than this says nothing about its age
T = TypeVar("T")


@dataclass(frozen=True)
class Skipped:
    """Something the search could not use or did not show, and why (bogus, failed, out of tree,
    over a bound, refused by the policy, stale, in another currency). ``status`` is the
    validation status of the lookup or resolution that was skipped, None when none was made."""

    name: str
    why: str
    status: Status | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "why": self.why, "status": self.status.value if self.status else None}


@dataclass(frozen=True)
class Match:
    """What the search worked out for one result it shows (spec/discovery.md §5.3-5.5).

    ``load_age``: seconds since LOAD's ``ts`` (None without LOAD or ``ts``); ``load_live``:
    LOAD was used as live data; ``load_note``: why it was not (``stale: ...``) or what is
    missing; ``price``/``currency``: the price used (LOAD when live, else the CAPS list
    price) as published; ``compared``/``compare_currency``: that price in the currency prices
    were compared in; ``cost``: ``compared`` × the devices needed (``need``, 1 if not given)."""

    identifier: str
    load_age: float | None = None
    load_live: bool = False
    load_note: str = ""
    price: float | None = None
    currency: str | None = None
    compared: float | None = None
    compare_currency: str | None = None
    cost: float | None = None
    need: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"identifier": self.identifier,
                "load_age_s": None if self.load_age is None else round(self.load_age, 3),
                "load_live": self.load_live, "load_note": self.load_note or None,
                "price": self.price, "currency": self.currency,
                "compared_price": self.compared, "compare_currency": self.compare_currency,
                "cost": self.cost, "need": self.need}


@dataclass(frozen=True)
class FindResult(Sequence[Resolution]):
    """The ranked matches (a read-only sequence of Resolutions) plus how the search went.

    ``status`` is the status of what is shown: the weakest status of the results, or, when
    none is shown, of the listings read (the evidence that nothing matched);
    ``shown_status``, ``skipped_status`` and ``listing_status`` state each part separately
    (None when there is none). ``rcode`` is "NXDOMAIN" when the namespace does not exist.
    ``skipped`` lists what was left out and why; ``matches`` (aligned with the results) the
    age, prices and cost the search computed; ``complete`` is False when a bound or the
    deadline cut the search short."""

    namespace: str
    results: tuple[Resolution, ...]
    status: Status
    why: str
    skipped: tuple[Skipped, ...] = ()
    namespaces: tuple[str, ...] = ()
    listed: int = 0
    matched: int = 0
    complete: bool = True
    conditions: tuple[Condition, ...] = field(default=(), repr=False)
    # Browse data of the namespace asked for could not be validated at all (no trust anchor):
    # the policy refuses such a search (spec/resolution.md §5.1).
    unvalidated: bool = field(default=False, repr=False)
    rcode: str = "NOERROR"
    shown_status: Status | None = None
    skipped_status: Status | None = None
    listing_status: Status | None = None
    matches: tuple[Match, ...] = field(default=(), repr=False)
    sort: tuple[SortKey, ...] = field(default=(), repr=False)
    currency: str | None = None
    rates: Rates | None = field(default=None, repr=False)
    need: int | None = None
    max_age: float | None = None
    unreported: int = 0
    # ``why`` without the first skipped item: what the CLI summary line says.
    notes: tuple[str, ...] = field(default=(), repr=False)

    @overload
    def __getitem__(self, index: int) -> Resolution: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Resolution, ...]: ...

    def __getitem__(self, index):
        return self.results[index]

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self):
        return iter(self.results)

    @property
    def found(self) -> bool:
        return bool(self.results)

    def to_json(self) -> list[dict[str, Any]]:
        """The JSON form of ``cid find --json``: a list of resolution results (spec/json.md)."""
        return [r.to_json() for r in self.results]

    def summary_json(self, results: bool = True) -> dict[str, Any]:
        """Everything but the results themselves (with ``results=False``): spec/discovery.md §3.9."""
        def value(s: Status | None) -> str | None:
            return s.value if s is not None else None
        out = {"namespace": self.namespace, "rcode": self.rcode, "status": self.status.value,
               "shown": {"count": len(self.results), "status": value(self.shown_status)},
               "skipped_status": value(self.skipped_status), "listing_status": value(self.listing_status),
               "why": self.why, "complete": self.complete, "namespaces": list(self.namespaces),
               "listed": self.listed, "matched": self.matched,
               "conditions": [str(c) for c in self.conditions], "sort": [str(k) for k in self.sort],
               "currency": self.currency, "rates": self.rates.to_json() if self.rates else None,
               "need": self.need, "max_age": self.max_age,
               "skipped": [s.to_json() for s in self.skipped], "unreported": self.unreported,
               "matches": [m.to_json() for m in self.matches]}
        if results:
            out["results"] = self.to_json()
        return out


class _Search:
    def __init__(self, resolver: Resolver, n0: dns.name.Name, selector: tuple[str, Any] | None, *,
                 concurrency: int, max_depth: int, max_namespaces: int, max_identifiers: int):
        self.resolver = resolver
        self.n0 = n0
        self.selector = selector
        self.gate = asyncio.Semaphore(concurrency)
        self.max_depth = max_depth
        self.max_namespaces = max_namespaces
        self.max_identifiers = max_identifiers
        self.require_secure = bool(getattr(resolver, "require_secure", False))
        self.validating = getattr(resolver, "validation", "on") == "on"
        self.visited: dict[dns.name.Name, int] = {}
        self.identifiers: set[dns.name.Name] = set()
        self.used: list[tuple[str, Lookup]] = []
        self.n0_listings: list[Lookup] = []   # the lookups of N0's own browse and child names
        self.candidates: list[Resolution] = []
        self.skipped: list[Skipped] = []
        self.unreported = 0  # skipped beyond MAX_SKIPPED: counted, not listed
        self.cut_short: list[str] = []
        self.tasks: set[asyncio.Task] = set()

    def spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)

    async def gated(self, coro: Awaitable[T]) -> T:
        async with self.gate:
            return await coro

    def skip(self, name: dns.name.Name | str, why: str, status: Status | None = None) -> None:
        # A hostile listing of thousands of bad pointers must not grow the report without end.
        if len(self.skipped) >= MAX_SKIPPED:
            self.unreported += 1
            return
        self.skipped.append(Skipped(name if isinstance(name, str) else name.to_text(), why, status))

    def visit(self, namespace: dns.name.Name, depth: int) -> None:
        self.visited[namespace] = depth
        if self.selector is not None:
            browse = registry.browse_name(namespace, *self.selector)
        else:
            browse = registry.browse_name(namespace)
        self.spawn(self.browse(namespace, browse))
        self.spawn(self.children(namespace, depth))

    def refused(self, status: Status, unvalidated: bool) -> str | None:
        """Why the validation policy does not let the search use this (spec/discovery.md §3.8)."""
        if unvalidated and self.validating:
            return "not validated (no trust anchor covers it): refused by the validation policy"
        if self.require_secure and status is not Status.SECURE:
            return f"{status.value}: refused by the require-secure policy"
        return None

    async def listing(self, namespace: dns.name.Name, name: dns.name.Name, what: str) -> list[dns.name.Name]:
        """The PTR targets at ``name``; none (and reported) when the answer cannot be used."""
        lookup = await self.gated(self.resolver.lookup(name, PTR, policy=False))
        if lookup.status is Status.BOGUS:
            self.skip(name, f"{what} is bogus, not used: {lookup.why}", lookup.status)
            return []
        if lookup.rcode == "SERVFAIL":
            self.skip(name, f"{what} lookup failed: {lookup.why}", lookup.status)
            return []
        if namespace == self.n0:
            # The namespace asked for is judged as a whole, as an identifier is: the caller's
            # policy refuses the search (Resolver.find raises ValidationRefused).
            self.n0_listings.append(lookup)
        else:
            why = self.refused(lookup.status, lookup.status is Status.INDETERMINATE)
            if why is not None:  # below it, what the policy refuses is skipped, not followed
                self.skip(name, f"{what} {why}", lookup.status)
                return []
        self.used.append((f"{what} {name}", lookup))  # NXDOMAIN/NODATA: "none here", still used
        if lookup.rrset is None:
            return []
        return sorted({rd.target.canonicalize() for rd in lookup.rrset})

    async def browse(self, namespace: dns.name.Name, browse: dns.name.Name) -> None:
        for target in await self.listing(namespace, browse, "listing"):
            # A namespace lists only its own tree (spec/discovery.md §3.5): a PTR elsewhere could
            # otherwise pull another operator's identifiers into this namespace's results.
            if not target.is_subdomain(namespace):
                self.skip(target, f"listed by {namespace} but outside it: ignored")
                continue
            try:
                name = ident.parse(target.to_text())
            except ident.IdentifierError as exc:
                self.skip(target, f"listed by {namespace} but not an identifier: {exc}")
                continue
            if name in self.identifiers:
                continue
            if len(self.identifiers) >= self.max_identifiers:
                self.cut(f"more than {self.max_identifiers} identifiers listed")
                continue
            self.identifiers.add(name)
            self.spawn(self.check(name))

    async def children(self, namespace: dns.name.Name, depth: int) -> None:
        for child in await self.listing(namespace, registry.children_name(namespace), "child pointers"):
            # Strictly below the lister: pointers up or sideways would let a zone loop the
            # search or send it into another tree (spec/discovery.md §3.4).
            if child == namespace or not child.is_subdomain(namespace):
                self.skip(child, f"child pointer of {namespace} is not below it: ignored")
                continue
            try:
                child = ident.parse(child.to_text())
            except ident.IdentifierError as exc:
                self.skip(child, f"child pointer of {namespace} is not a namespace name: {exc}")
                continue
            if child in self.visited:
                continue
            if depth + 1 > self.max_depth:
                self.skip(child, f"more than {self.max_depth} levels below {self.n0}: not searched")
                self.cut(f"depth limit {self.max_depth}")
                continue
            if len(self.visited) >= self.max_namespaces:
                self.skip(child, f"more than {self.max_namespaces} namespaces: not searched")
                self.cut(f"namespace limit {self.max_namespaces}")
                continue
            self.visit(child, depth + 1)

    async def check(self, name: dns.name.Name) -> None:
        result = await self.gated(self.resolver.resolve(ident.to_dns(name), policy=False))
        if result.status is Status.BOGUS:
            self.skip(name, f"bogus, not used: {result.why}", result.status)
        elif result.rcode == "NXDOMAIN":
            self.skip(name, "listed but does not exist (stale listing)", result.status)
        elif result.rcode != "NOERROR":
            self.skip(name, f"resolution failed: {result.why}", result.status)
        elif not result.found:
            self.skip(name, "listed but has no SVCB or CAPS", result.status)
        else:
            why = self.refused(result.status, result.unvalidated)
            if why is not None:
                self.skip(name, why, result.status)
            else:
                self.candidates.append(result)

    def cut(self, why: str) -> None:
        if why not in self.cut_short:
            self.cut_short.append(why)

    async def run(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        self.visit(self.n0, 0)
        # Tasks spawn more tasks (children → namespaces → identifiers); wait until none is left
        # or the deadline passes, then cancel the rest (the shared fetches under them carry on
        # under their own per-lookup budgets and fill the cache for the next search).
        try:
            while self.tasks:
                remaining = end - loop.time()
                if remaining <= 0:
                    self.cut(f"deadline of {deadline:g} s reached with {len(self.tasks)} step(s) unfinished")
                    break
                done, _ = await asyncio.wait(self.tasks, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    self.tasks.discard(task)
                    task.result()  # a bug in the search surfaces, it is not swallowed
        finally:
            # Deadline, error or the caller's cancellation: no step outlives the search.
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            self.tasks.clear()
        # spec/discovery.md §3.3: a namespace that does not exist is NXDOMAIN, not "none here".
        # Asked only when both of its listings are NXDOMAIN (a namespace without browse names).
        if (len(self.n0_listings) == 2 and all(lk.rcode == "NXDOMAIN" for lk in self.n0_listings)
                and end - loop.time() > 0):
            try:
                apex = await asyncio.wait_for(self.resolver.lookup(self.n0, SOA, policy=False),
                                              end - loop.time())
            except asyncio.TimeoutError:
                self.cut(f"deadline of {deadline:g} s reached")
                return
            if apex.status is not Status.BOGUS and apex.rcode != "SERVFAIL":
                self.used.append((f"namespace {self.n0}", apex))
                self.n0_listings.append(apex)


# --- what is shown, and in which order (spec/discovery.md §5) ------------------------------------

def _finite(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def load_served_stale(r: Resolution) -> bool:
    """Whether LOAD came from expired cache (RFC 8767)."""
    return r.load is not None and r.load_stale


class _View:
    """One result as the conditions, ranking and output see it: live LOAD (when it is live)
    over CAPS, with the LOAD's age."""

    def __init__(self, r: Resolution, now: float, allow_stale: bool):
        self.r = r
        load = r.load
        ts = _finite(load.get("ts")) if load else None
        self.age = None if ts is None or ts > now + FUTURE_TS else max(0.0, now - ts)
        served_stale = load_served_stale(r)
        old = load is not None and schedule.load_is_stale(load, r.load_ttl, now)
        if load is None:
            self.note = "no LOAD"
        elif served_stale:
            self.note = "stale: served from expired cache (RFC 8767), its authorities did not answer"
        elif old:
            self.note = f"stale: ts older than {schedule.STALE_TTLS} × its TTL of {r.load_ttl} s"
        elif ts is None:
            self.note = "no ts: age unknown"
        elif self.age is None:
            self.note = "ts in the future: age unknown"
        else:
            self.note = ""
        self.stale = served_stale or old
        self.live = load is not None and (not self.stale or allow_stale)
        self.allow_stale = allow_stale

    def get(self, key: str, *, everything: bool = False) -> tuple[bool, Any]:
        load = self.r.load
        if load is not None and (self.live or everything) and key in load:
            return True, load[key]
        caps = self.r.capabilities
        if key in caps:
            return True, caps[key]
        return False, None

    def free(self, now: float) -> float | None:
        if not self.live:
            return None
        return schedule.free_capacity(self.r.load, None if self.allow_stale else self.r.load_ttl, now)


def _holds(conditions: Sequence[Condition], view: _View, need: int | None, *, everything: bool = False) -> bool:
    for c in conditions:
        found, value = view.get(c.key, everything=everything)
        if not found or not c.test(value):
            return False
    if need is not None:
        found, free = view.get("accel_free", everything=everything)
        if not found or _finite(free) is None or free < need:
            return False
    return True


def _number_text(value: float) -> str:
    return f"{value:.6g}"


class _Pricing:
    """The currency prices are compared in, and each result's price in it (spec §5.4)."""

    def __init__(self, conditions: Sequence[Condition], sort: Sequence[SortKey], need: int | None,
                 currency: str | None, rates: Rates | None):
        self.rates = rates
        self.need = need
        codes = sorted({c.currency for c in conditions if c.is_price and c.currency})
        self.keep_one = currency is not None and rates is None
        self.target = currency or (rates.base if rates is not None else None)
        if rates is not None:
            for code in ([currency] if currency else []) + codes:
                if code not in rates.rates:
                    raise ConditionError(f"no rate for {code} in {rates.source} (base {rates.base})")
        elif currency is not None:
            other = [c for c in codes if c != currency]
            if other:
                raise ConditionError(f"a price condition is in {other[0]} but prices are kept in {currency}: "
                                     "give rates to convert")
        elif codes:
            if len(codes) > 1:
                raise ConditionError(f"price conditions in {' and '.join(codes)}: give rates to convert")
            self.target, self.keep_one = codes[0], True  # "price_per_hour<=2.5USD" keeps USD
        price_conditions = [c for c in conditions if c.is_price]
        price_sort = [k for k in sort if k.key in PRICE_KEYS]
        self.used = bool(price_conditions or price_sort)
        if price_conditions:
            self.what = f"comparing {price_conditions[0]}"
        elif price_sort and price_sort[0].key == COST_KEY and need is not None:
            self.what = f"ranking by the cost of {need} device(s)"
        elif price_sort:
            self.what = f"sorting by {price_sort[0].key}"
        else:
            self.what = ""
        # Condition values written in another currency are compared converted into the target.
        self.condition_factor: dict[str, float] = {}
        for code in codes:
            if rates is not None and self.target is not None and code != self.target:
                self.condition_factor[code] = rates.factor(code, self.target)  # type: ignore[assignment]

    def price(self, view: _View) -> tuple[float | int | None, str | None]:
        found, price = view.get(PRICE_KEY)
        found_c, code = view.get("currency")
        price = _finite(price) if found else None
        code = code.upper() if found_c and isinstance(code, str) else None
        return price, code

    def reject(self, view: _View) -> str | None:
        """Why this result cannot be shown under the price rules, or None."""
        price, code = self.price(view)
        if self.keep_one:
            if price is None:
                return f"has no price ({PRICE_KEY}) in {self.target}"
            if code is None:
                return f"its price has no currency, not {self.target}"
            if code != self.target:
                return f"price in {code}, not {self.target} (the currency kept)"
            return None
        if self.rates is not None:
            if price is None or not self.used:
                return None
            if code is None:
                return "its price has no currency: cannot be converted"
            if code not in self.rates.rates:
                return f"no rate for {code} in {self.rates.source} (base {self.rates.base})"
            return None
        if self.used and price is not None and code is None:
            return "its price has no currency: cannot be compared"
        return None

    def settle(self, views: Sequence[_View]) -> None:
        """Without a currency or rates, prices compare only when they share one currency."""
        if self.target is not None or not self.used:
            return
        seen = sorted({code for price, code in map(self.price, views) if price is not None and code})
        if len(seen) > 1:
            raise MixedCurrencies(self.what, tuple(seen))
        if seen:
            self.target = seen[0]

    def compared(self, view: _View) -> float | int | None:
        price, code = self.price(view)
        if price is None or code is None or self.target is None:
            return None
        if code == self.target:
            return price
        if self.rates is None:
            return None
        factor = self.rates.factor(code, self.target)
        return None if factor is None else price * factor

    def holds(self, c: Condition, view: _View) -> bool:
        value = self.compared(view)
        if value is None:
            return False
        if c.key == COST_KEY:
            value = value * (self.need or 1)
        factor = self.condition_factor.get(c.currency or "", 1)
        scaled = replace(c, values=tuple(v * factor for v in c.values)) if factor != 1 else c
        return scaled.test(value)


def _check_options(currency, rates, need, max_age, allow_stale) -> tuple[str | None, Rates | None, int | None, float | None]:
    if currency is not None:
        currency = currency_code(currency)
    rates = load_rates(rates)
    if need is not None and (isinstance(need, bool) or not isinstance(need, int) or not 1 <= need <= MAX_NEED):
        raise ConditionError(f"need {need!r}: the devices needed, a whole number 1-{MAX_NEED}")
    if max_age is not None:
        if isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or not math.isfinite(max_age) \
                or not 0 < max_age <= MAX_AGE:
            raise ConditionError(f"max_age {max_age!r}: seconds, more than 0 and at most {MAX_AGE}")
    if not isinstance(allow_stale, bool):
        raise ConditionError(f"allow_stale {allow_stale!r}: True or False")
    return currency, rates, need, max_age


async def find(resolver: Resolver, namespace: str, where: Where = None, sort: SortSpec = None,
               limit: int | None = None, deadline: float | None = None, *,
               currency: str | None = None, rates: str | Path | Mapping[str, Any] | Rates | None = None,
               need: int | None = None, max_age: float | None = None, allow_stale: bool = False,
               concurrency: int = CONCURRENCY, max_depth: int = MAX_DEPTH,
               max_namespaces: int = MAX_NAMESPACES, max_identifiers: int = MAX_IDENTIFIERS) -> FindResult:
    """spec/discovery.md §3, §5. Raises IdentifierError (bad namespace) or ConditionError (bad
    where/sort/limit/currency/rates/need/max_age) before any query is sent, and
    MixedCurrencies (a ConditionError) when prices in several currencies were to be compared."""
    n0 = ident.parse(namespace)
    conditions = parse_where(where)
    sort_keys = parse_sort(sort)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConditionError(f"limit {limit!r}: must be a whole number of at least 1")
    deadline = DEADLINE if deadline is None else deadline
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or not 0 < deadline <= 3600:
        raise ConditionError(f"deadline {deadline!r}: must be more than 0 and at most 3600 seconds")
    if not 1 <= concurrency <= 256:
        raise ConditionError(f"concurrency {concurrency!r}: must be 1-256")
    currency, rates, need, max_age = _check_options(currency, rates, need, max_age, allow_stale)
    if not sort_keys and need is not None:
        sort_keys = (SortKey.parse(f"{COST_KEY}+"),)  # --need ranks by the cost of N devices
    pricing = _Pricing(conditions, sort_keys, need, currency, rates)
    search = _Search(resolver, n0, browse_selector(conditions), concurrency=concurrency,
                     max_depth=max_depth, max_namespaces=max_namespaces, max_identifiers=max_identifiers)
    await search.run(deadline)

    now = resolver.clock()
    rtt = resolver.reachability.srtt
    plain = [c for c in conditions if not c.is_price]
    priced = [c for c in conditions if c.is_price]
    kept: list[_View] = []
    for r in search.candidates:
        view = _View(r, now, allow_stale)
        if not _holds(plain, view, need):
            if view.r.load is not None and not view.live and _holds(plain, view, need, everything=True):
                search.skip(r.name, f"LOAD is {view.note}; its live values are not used (allowing stale "
                                    "LOAD uses them)", r.status)
            continue
        if max_age is not None:
            if view.age is None:
                missing = ("no LOAD" if r.load is None else "LOAD has no ts" if view.note.startswith("no ts")
                           else "LOAD's ts is in the future")
                search.skip(r.name, f"{missing}: its age is unknown (maximum age {max_age:g} s)", r.status)
                continue
            if view.age > max_age:
                search.skip(r.name, f"LOAD is {view.age:.0f} s old, older than the maximum age of "
                                    f"{max_age:g} s", r.status)
                continue
        why = pricing.reject(view)
        if why is not None:
            search.skip(r.name, why, r.status)
            continue
        kept.append(view)
    pricing.settle(kept)
    kept = [v for v in kept if all(pricing.holds(c, v) for c in priced)]

    matches: dict[str, Match] = {}
    for v in kept:
        price, code = pricing.price(v)
        compared = pricing.compared(v)
        matches[v.r.name] = Match(
            v.r.identifier, v.age, v.live, v.note, price, code, compared,
            pricing.target if compared is not None else None,
            None if compared is None else compared * (need or 1), need)
    views = {v.r.name: v for v in kept}

    def read(r: Resolution, key: str) -> tuple[bool, Any]:
        m = matches[r.name]
        if key == PRICE_KEY and pricing.used:
            return m.compared is not None, m.compared
        if key == COST_KEY:
            return m.cost is not None, m.cost
        return views[r.name].get(key)

    def tie_break(r: Resolution):
        # spec/discovery.md §3.7: free capacity (live LOAD only), then reachability, then identifier
        free = views[r.name].free(now)
        first = r.endpoints[0].addresses if r.endpoints else ()
        best = min((t for t in map(rtt, first) if t is not None), default=None)
        return (free is None, -(free or 0.0), best is None, best or 0.0, dns.name.from_text(r.name))

    ranked = sorted((v.r for v in kept), key=sort_function(sort_keys, tie_break, read))
    results = tuple(ranked[:limit] if limit is not None else ranked)
    return _finish(search, n0, conditions, results, tuple(matches[r.name] for r in results), len(kept),
                   sort_keys, pricing, need, max_age, rates)


def _finish(search: _Search, n0: dns.name.Name, conditions: tuple[Condition, ...],
            results: tuple[Resolution, ...], matches: tuple[Match, ...], matched: int,
            sort_keys: tuple[SortKey, ...], pricing: _Pricing, need: int | None, max_age: float | None,
            rates: Rates | None) -> FindResult:
    listings = [lk.status for _, lk in search.used]
    listing_status = weakest(*listings) if listings else None
    shown_status = weakest(*(r.status for r in results)) if results else None
    flagged = [s.status for s in search.skipped if s.status is not None]
    skipped_status = weakest(*flagged) if flagged else None
    if shown_status is not None:
        status = shown_status
    elif listing_status is not None:
        status = listing_status
    else:
        status = Status.INDETERMINATE
    skipped = tuple(sorted(search.skipped, key=lambda s: (s.name, s.why)))
    unvalidated = any(lk.status is Status.INDETERMINATE and lk.rcode != "SERVFAIL" for lk in search.n0_listings)
    rcode = "NOERROR"
    cid = ident.to_cid(n0)
    if len(search.n0_listings) == 3 and search.n0_listings[2].rcode == "NXDOMAIN":
        rcode = "NXDOMAIN"
        apex = search.n0_listings[2]
        status = apex.status
        notes = (f"{cid}: no such namespace (NXDOMAIN, {apex.status.value})",)
        why = notes[0]
    else:
        notes = _notes(search, listing_status, shown_status, results, matched)
        why = "; ".join(notes + _skipped_note(search, skipped))
    return FindResult(cid, results, status, why, skipped,
                      tuple(sorted(n.to_text() for n in search.visited)), len(search.identifiers),
                      matched, not search.cut_short, conditions, unvalidated, rcode,
                      shown_status, skipped_status, listing_status, matches, sort_keys,
                      pricing.target, rates, need, max_age, search.unreported, notes)


def _notes(search: _Search, listing_status: Status | None, shown_status: Status | None,
           results: Sequence[Resolution], matched: int) -> tuple[str, ...]:
    parts = [f"{len(search.visited)} namespace(s) searched, {len(search.identifiers)} identifier(s) listed, "
             f"{matched} matched"]
    if shown_status is not None and shown_status is not Status.SECURE:
        decider = next((r for r in results if r.status is shown_status), None)
        if decider is not None:
            parts.append(f"shown {shown_status.value} because {decider.identifier}: {decider.why}")
    if listing_status is not None and listing_status is not Status.SECURE:
        decider = next((f"{label}: {lk.why}" for label, lk in search.used if lk.status is listing_status), None)
        parts.append(f"listings {listing_status.value} because {decider}")
    elif listing_status is None:
        parts.append("no listing could be read")
    if search.cut_short:
        parts.append("incomplete: " + "; ".join(search.cut_short))
    return tuple(parts)


def _skipped_note(search: _Search, skipped: tuple[Skipped, ...]) -> tuple[str, ...]:
    if not skipped:
        return ()
    more = f", {search.unreported} more not listed" if search.unreported else ""
    return (f"{len(skipped)} skipped{more} (first: {skipped[0].name} {skipped[0].why})",)
