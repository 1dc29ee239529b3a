"""The ``find`` search of spec/discovery.md §3: browse a namespace, descend its ``_children``
pointers into delegated namespaces, resolve what is listed and keep what matches.

Every step is a validated lookup or resolution through the caller's Resolver, so the search
trusts exactly what ``resolve`` trusts: a bogus listing is skipped and reported, never used,
and every condition is evaluated on validated CAPS/LOAD (a sub-type PTR is only a hint).
Bounded everywhere: levels, namespaces, identifiers, lookups in flight, and a total deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, overload

import dns.name
import dns.rdatatype

from .. import identifier as ident
from .. import schedule
from ..engine.result import Lookup, weakest
from ..records import registry
from ..resolution import Resolution
from ..status import Status
from .conditions import (Condition, ConditionError, SortKey, Where, browse_selector, parse_where,
                         sort_function)

if TYPE_CHECKING:
    from ..client import Resolver

PTR = dns.rdatatype.PTR
MAX_DEPTH = 8            # levels below the starting namespace (spec/discovery.md §3.4)
MAX_NAMESPACES = 256     # namespaces browsed per search
MAX_IDENTIFIERS = 1024   # identifiers resolved per search
CONCURRENCY = 8          # lookups/resolutions in flight at once
DEADLINE = 30.0          # seconds for the whole search
MAX_SKIPPED = 256        # skipped items reported one by one; the rest are only counted
T = TypeVar("T")


@dataclass(frozen=True)
class Skipped:
    """Something the search could not use, and why (bogus, failed, out of tree, over a bound)."""

    name: str
    why: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "why": self.why}


@dataclass(frozen=True)
class FindResult(Sequence[Resolution]):
    """The ranked matches (a read-only sequence of Resolutions) plus how the search went.

    ``status`` is the weakest status of every lookup used — each browse and ``_children``
    listing read, and each identifier reported; ``skipped`` lists what was left out and why;
    ``complete`` is False when a bound or the deadline cut the search short."""

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
    # Browse data or a result could not be validated at all (no trust anchor): the policy
    # refuses such a search (spec/resolution.md §5.1).
    unvalidated: bool = field(default=False, repr=False)

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

    def summary_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "status": self.status.value, "why": self.why,
                "complete": self.complete, "namespaces": list(self.namespaces),
                "listed": self.listed, "matched": self.matched,
                "skipped": [s.to_json() for s in self.skipped],
                "results": self.to_json()}


class _Search:
    def __init__(self, resolver: Resolver, n0: dns.name.Name, conditions: tuple[Condition, ...],
                 selector: tuple[str, Any] | None, *, concurrency: int, max_depth: int,
                 max_namespaces: int, max_identifiers: int):
        self.resolver = resolver
        self.n0 = n0
        self.conditions = conditions
        self.selector = selector
        self.gate = asyncio.Semaphore(concurrency)
        self.max_depth = max_depth
        self.max_namespaces = max_namespaces
        self.max_identifiers = max_identifiers
        self.visited: dict[dns.name.Name, int] = {}
        self.identifiers: set[dns.name.Name] = set()
        self.used: list[tuple[str, Lookup]] = []
        self.matches: list[Resolution] = []
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

    def skip(self, name: dns.name.Name | str, why: str) -> None:
        # A hostile listing of thousands of bad pointers must not grow the report without end.
        if len(self.skipped) >= MAX_SKIPPED:
            self.unreported += 1
            return
        self.skipped.append(Skipped(name if isinstance(name, str) else name.to_text(), why))

    def visit(self, namespace: dns.name.Name, depth: int) -> None:
        self.visited[namespace] = depth
        if self.selector is not None:
            browse = registry.browse_name(namespace, *self.selector)
        else:
            browse = registry.browse_name(namespace)
        self.spawn(self.browse(namespace, browse))
        self.spawn(self.children(namespace, depth))

    async def listing(self, name: dns.name.Name, what: str) -> list[dns.name.Name]:
        """The PTR targets at ``name``; none (and reported) when the answer cannot be used."""
        lookup = await self.gated(self.resolver.lookup(name, PTR, policy=False))
        if lookup.status is Status.BOGUS:
            self.skip(name, f"{what} is bogus, not used: {lookup.why}")
            return []
        if lookup.rcode == "SERVFAIL":
            self.skip(name, f"{what} lookup failed: {lookup.why}")
            return []
        self.used.append((f"{what} {name}", lookup))  # NXDOMAIN/NODATA: "none here", still used
        if lookup.rrset is None:
            return []
        return sorted({rd.target.canonicalize() for rd in lookup.rrset})

    async def browse(self, namespace: dns.name.Name, browse: dns.name.Name) -> None:
        for target in await self.listing(browse, "listing"):
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
        for child in await self.listing(registry.children_name(namespace), "child pointers"):
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
            self.skip(name, f"bogus, not used: {result.why}")
        elif result.rcode == "NXDOMAIN":
            self.skip(name, "listed but does not exist (stale listing)")
        elif result.rcode != "NOERROR":
            self.skip(name, f"resolution failed: {result.why}")
        elif not result.found:
            self.skip(name, "listed but has no SVCB or CAPS")
        elif all(c.holds(result) for c in self.conditions):
            self.matches.append(result)

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


async def find(resolver: Resolver, namespace: str, where: Where = None, sort: str | SortKey | None = None,
               limit: int | None = None, deadline: float | None = None, *,
               concurrency: int = CONCURRENCY, max_depth: int = MAX_DEPTH,
               max_namespaces: int = MAX_NAMESPACES, max_identifiers: int = MAX_IDENTIFIERS) -> FindResult:
    """spec/discovery.md §3. Raises IdentifierError (bad namespace) or ConditionError (bad
    where/sort/limit) before any query is sent."""
    n0 = ident.parse(namespace)
    conditions = parse_where(where)
    sort_key = sort if isinstance(sort, SortKey) or sort is None else SortKey.parse(sort)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConditionError(f"limit {limit!r}: must be a whole number of at least 1")
    deadline = DEADLINE if deadline is None else deadline
    if not 0 < deadline <= 3600:
        raise ConditionError(f"deadline {deadline!r}: must be more than 0 and at most 3600 seconds")
    if not 1 <= concurrency <= 256:
        raise ConditionError(f"concurrency {concurrency!r}: must be 1-256")
    search = _Search(resolver, n0, conditions, browse_selector(conditions), concurrency=concurrency,
                     max_depth=max_depth, max_namespaces=max_namespaces, max_identifiers=max_identifiers)
    await search.run(deadline)

    now = resolver.clock()
    rtt = resolver.reachability.srtt

    def tie_break(r: Resolution):
        # spec/discovery.md §3.7: free capacity, then reachability, then identifier
        free = schedule.free_capacity(r.load, r.load_ttl, now)
        first = r.endpoints[0].addresses if r.endpoints else ()
        best = min((t for t in map(rtt, first) if t is not None), default=None)
        return (free is None, -(free or 0.0), best is None, best or 0.0, dns.name.from_text(r.name))

    ranked = sorted(search.matches, key=sort_function(sort_key, tie_break))
    results = tuple(ranked[:limit] if limit is not None else ranked)
    used = [lk.status for _, lk in search.used] + [r.status for r in results]
    status = weakest(*used) if used else Status.INDETERMINATE
    skipped = tuple(sorted(search.skipped, key=lambda s: (s.name, s.why)))
    why = _why(search, status, results, skipped)
    unvalidated = (any(lk.status is Status.INDETERMINATE and lk.rcode != "SERVFAIL" for _, lk in search.used)
                   or any(r.unvalidated for r in results))
    return FindResult(ident.to_cid(n0), results, status, why, skipped,
                      tuple(sorted(n.to_text() for n in search.visited)), len(search.identifiers),
                      len(search.matches), not search.cut_short, conditions, unvalidated)


def _why(search: _Search, status: Status, results: Iterable[Resolution], skipped: tuple[Skipped, ...]) -> str:
    parts = [f"{len(search.visited)} namespace(s) searched, {len(search.identifiers)} identifier(s) listed, "
             f"{len(search.matches)} matched"]
    if status is not Status.SECURE:
        decider = next((f"{label}: {lk.why}" for label, lk in search.used if lk.status is status), None)
        if decider is None:
            decider = next((f"{r.identifier}: {r.why}" for r in results if r.status is status), None)
        if decider is not None:
            parts.append(f"{status.value} because {decider}")
        elif not search.used:
            parts.append("no listing could be read")
    if skipped:
        more = f", {search.unreported} more not listed" if search.unreported else ""
        parts.append(f"{len(skipped)} skipped{more} (first: {skipped[0].name} {skipped[0].why})")
    if search.cut_short:
        parts.append("incomplete: " + "; ".join(search.cut_short))
    return "; ".join(parts)

