"""The Python API: ``async with Resolver(hints=..., trust_anchor=...) as r: await r.resolve(id)``.

A Resolver owns one cache shared by all its resolutions; each lookup runs a fresh sans-I/O
Engine under the asyncio driver. ``resolve`` turns an identifier into a Resolution (RFC 9460
SVCB endpoints, CAPS, LOAD) and rates it by the weakest validation status among the RRsets
it used — one insecure or bogus link makes the whole answer that weak.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import dns.name
import dns.rdatatype
import dns.rdtypes.svcbbase as svcb

from . import identifier as ident
from . import schedule
from .discovery.conditions import SortSpec, Where
from .discovery.search import FindResult, find as _find
from .dnssec.anchors import TrustAnchor, TrustAnchorError
from .drivers.asyncio_driver import drive
from .drivers.probe import probe as _probe
from .engine import trace as ev
from .engine.cache import Cache, CacheConfig, CacheConfigError, materialised_size
from .engine.engine import Budget, Engine
from .engine.options import EDNS_PAYLOAD, ENGINE_SETTINGS
from .engine.options import engine_options as _engine_options
from .engine.hints import HintError, parse_hints
from .engine.result import Lookup, weakest
from .records import CAPS, LOAD
from .resolution import Endpoint, Resolution
from .status import Status

SVCB = dns.rdatatype.SVCB
A, AAAA, CNAME = dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.CNAME
MAX_BACKGROUND = 64  # prefetch refreshes running at once; more are skipped, not queued
# Set inside a background refresh of a whole resolution: every lookup it makes (SVCB, CAPS,
# LOAD, addresses, scheduling) re-fetches what is near expiry, without threading a flag through.
_REFRESH: contextvars.ContextVar[bool] = contextvars.ContextVar("cid_refresh", default=False)
MAX_ALIAS = 8  # AliasMode hops (RFC 9460 §2.4.2 asks for a chain limit)


class ResolverConfigError(ValueError):
    """A resolver configuration file is unreadable or wrong; str names the file."""


VALIDATION_MODES = ("on", "off")

# The client configuration file (spec/resolution.md §11): where it is looked for, and its keys.
CONFIG_ENV = "CID_CONFIG"
SYSTEM_CONFIG = Path("/etc/cid/config.toml")
_CONFIG_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "hints": ((dict,), "a table of zone = [addresses]"),
    "trust_anchor": ((str,), "a file name (relative to this file)"),
    "port": ((int,), "a port number"),
    "timeout": ((int, float), "a number of seconds"),
    "max_queries": ((int,), "a whole number"),
    "max_time": ((int, float), "a number of seconds"),
    "validation": ((str,), "'on' or 'off'"),
    "require_secure": ((bool,), "true or false"),
}


def config_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Where the client configuration file is looked for, in order: ``$CID_CONFIG`` (when set and
    not empty), ``$XDG_CONFIG_HOME/cid/config.toml`` (``~/.config/cid/config.toml`` when
    XDG_CONFIG_HOME is unset or not absolute, as the XDG spec says), ``/etc/cid/config.toml``."""
    import os

    env = os.environ if environ is None else environ
    paths = []
    if env.get(CONFIG_ENV):
        paths.append(Path(env[CONFIG_ENV]))
    xdg = env.get("XDG_CONFIG_HOME", "")
    if xdg and Path(xdg).is_absolute():
        paths.append(Path(xdg) / "cid" / "config.toml")
    else:
        home = env.get("HOME") or (os.path.expanduser("~") if environ is None else "")
        if home and home != "~":
            paths.append(Path(home) / ".config" / "cid" / "config.toml")
    paths.append(SYSTEM_CONFIG)
    return paths


def config_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """The client configuration file in effect: the first of ``config_paths()`` that exists,
    or None. A ``$CID_CONFIG`` that names no file is an error (ResolverConfigError), never
    silently passed over for another file."""
    import os

    env = os.environ if environ is None else environ
    paths = config_paths(env)
    if env.get(CONFIG_ENV):
        first = paths[0]
        if not first.is_file():
            problem = "is a directory" if first.is_dir() else "no such file"
            raise ResolverConfigError(f"{first}: {problem} (named by ${CONFIG_ENV})")
        return first
    return next((p for p in paths if p.is_file()), None)


class ValidationRefused(LookupError):
    """An answer the validation policy does not accept (spec/resolution.md §5.1): not validated
    (``indeterminate``: no trust anchor covers its namespace) while validation is on, or from a
    provably unsigned zone (``insecure``) under ``require_secure``. ``result`` is the refused
    Resolution, Lookup or FindResult, for callers who want to look at it anyway."""

    def __init__(self, name: str, status: Status, why: str, result: Any):
        self.name, self.status, self.why, self.result = name, status, why, result
        if status is Status.INDETERMINATE:
            advice = ("give the Resolver a trust anchor for its namespace (trust_anchor=FILE of DS/DNSKEY "
                      "records), or validation='off' to accept unvalidated answers")
        else:
            advice = "require_secure=False accepts answers from unsigned zones (they stay marked insecure)"
        super().__init__(f"{name}: refused, answer is {status.value} ({why}); {advice}")


class Resolver:
    def __init__(
        self,
        hints: Mapping[str, Sequence[str]],
        trust_anchor: str | Path | TrustAnchor | None = None,
        port: int = 53,
        timeout: float = 2.0,
        *,
        max_queries: int = 40,
        max_time: float = 10.0,
        max_resolve_queries: int = 80,
        cache: Cache | None = None,
        cache_config: CacheConfig | Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
        qname_minimisation: bool = True,
        case_randomisation: bool = True,
        edns_payload: int = EDNS_PAYLOAD,
        retries: int = 1,
        validation: str = "on",
        require_secure: bool = False,
    ):
        """``hints``: zone → server addresses (``ADDR`` or ``ADDR:PORT``); raises HintError.
        ``trust_anchor``: a file of DS/DNSKEY records or a TrustAnchor; raises TrustAnchorError.
        ``cache_config``: a CacheConfig or a mapping of its fields (``max_bytes``, ``max_ttl``,
        ``min_ttl``, ``max_negative_ttl``, ``bogus_ttl``, ``serve_stale``, ``stale_max``,
        ``prefetch``); raises CacheConfigError. ``cache``: share an existing Cache instead.
        Engine options (spec/resolution.md §6): ``qname_minimisation`` (RFC 9156, relaxed),
        ``case_randomisation`` (0x20), ``edns_payload`` (512-4096), ``retries`` (0-5 more
        rounds for servers that timed out, each with a doubled timeout); raises ValueError.
        Policy (spec/resolution.md §5.1, fail closed): with ``validation="on"`` (the default)
        ``lookup``, ``resolve`` and ``find`` raise ValidationRefused for answers no trust anchor
        covers (``indeterminate``); ``validation="off"`` validates nothing and accepts them;
        ``require_secure=True`` refuses ``insecure`` answers too. Bogus data is never returned
        as an answer (SERVFAIL)."""
        if validation not in VALIDATION_MODES:
            raise ValueError(f"validation={validation!r}: use 'on' or 'off'")
        self.validation = validation
        self.require_secure = bool(require_secure)
        self.port = port
        self.hints = parse_hints(hints, port)
        if isinstance(trust_anchor, (str, Path)):
            trust_anchor = TrustAnchor.load(trust_anchor)
        # validation="off": nothing is validated, so no DNSSEC records are fetched either.
        self.trust_anchor = trust_anchor if validation == "on" else None
        self.timeout = timeout
        self.max_queries = max_queries
        self.max_time = max_time
        self.max_resolve_queries = max_resolve_queries
        self.clock = clock
        self.engine_options = _engine_options(qname_minimisation, case_randomisation, edns_payload, retries)
        if cache is None:
            if cache_config is not None and not isinstance(cache_config, CacheConfig):
                cache_config = CacheConfig.from_mapping(cache_config)
            cache = Cache(clock, cache_config)
        self.cache = cache  # RRsets, negative answers, NSEC, keys, delegations and whole resolutions
        self._inflight: dict[tuple, asyncio.Future] = {}
        self._background: set[asyncio.Task] = set()  # prefetch refreshes (cancelled by close)
        self._refreshing: set[tuple] = set()
        # Counters for operators (cid ctl, /metrics): cache-driven work done.
        self.stats = {"prefetch": 0, "prefetch_skipped": 0, "stale": 0, "misses": 0, "resolution_misses": 0, "validation_secure": 0,
                      "validation_insecure": 0, "validation_bogus": 0, "validation_indeterminate": 0}
        # Hits are attributes, not stats entries: an attribute increment costs the hot path less.
        self.hits = 0  # lookups answered from the cache
        self.resolution_hits = 0  # resolve() answered from the resolution cache
        self.upstream_observer: Callable[[float, str], None] | None = None  # (seconds, outcome), metrics
        # Measured connect RTT per endpoint address (spec/resolution.md §4 rule 3), fed by probe().
        self.reachability = schedule.Reachability()

    config_file: Path | None = None  # the file from_config read, if any

    @classmethod
    def from_config(cls, path: str | Path | None = None, **overrides) -> Resolver:
        """A Resolver from a TOML file: top-level keys or a ``[resolver]`` table with
        ``hints = {"cid." = ["127.0.0.2", "127.0.0.3:5300"]}``, ``trust_anchor`` (a path relative
        to the file), ``port``, ``timeout``, ``validation`` (``"on"``/``"off"``),
        ``require_secure`` (a boolean), ``max_queries``, ``max_time`` and the ``[cache]`` and
        ``[engine]`` tables (spec/resolution.md §11). Without ``path``, the client
        configuration file in effect (``config_path()``: ``$CID_CONFIG``, then
        ``$XDG_CONFIG_HOME/cid/config.toml`` or ``~/.config/cid/config.toml``, then
        ``/etc/cid/config.toml``). ``overrides`` (keyword arguments of Resolver, e.g.
        ``port=5300``, ``trust_anchor="other.ds"``) win over the file. The file used is
        ``resolver.config_file``. Raises ResolverConfigError (one line, the file named)."""
        if path is None:
            path = config_path()
            if path is None:
                raise ResolverConfigError("no client configuration file: set $CID_CONFIG, or write "
                                          + " or ".join(str(p) for p in config_paths()[1:]))
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ResolverConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ResolverConfigError(f"{path}: {exc}") from None
        section = data.get("resolver", data)
        if not isinstance(section, dict):
            raise ResolverConfigError(f"{path}: 'resolver' must be a table")
        # [cache] at top level, or [resolver.cache] / cache = {...} inside the resolver table.
        cache_table = section.get("cache", data.get("cache") if section is not data else None)
        unknown = set(section) - set(_CONFIG_KEYS) - {"cache", "engine"}
        if unknown:
            raise ResolverConfigError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
        for key, (types, what) in _CONFIG_KEYS.items():
            value = section.get(key)
            if value is not None and (not isinstance(value, types) or isinstance(value, bool) is not (bool in types)):
                raise ResolverConfigError(f"{path}: '{key}' must be {what}, not {value!r}")
        if "port" in section and not 0 < section["port"] < 65536:
            raise ResolverConfigError(f"{path}: 'port' must be 1-65535, not {section['port']}")
        for key in ("timeout", "max_time"):
            if key in section and not 0 < section[key] <= 3600:
                raise ResolverConfigError(f"{path}: '{key}' must be more than 0 and at most 3600 seconds")
        hints = section.get("hints")
        if "hints" not in overrides and (not isinstance(hints, dict) or not hints):
            raise ResolverConfigError(f"{path}: 'hints' must be a table of zone = [addresses]")
        if isinstance(hints, dict):
            for zone, addresses in hints.items():
                if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
                    raise ResolverConfigError(f"{path}: hints: {zone!r} must be a list of addresses (strings)")
        hints = overrides.pop("hints", hints)
        options = {k: section[k] for k in ("port", "timeout", "max_queries", "max_time", "validation",
                                           "require_secure") if k in section}
        anchor = section.get("trust_anchor")
        if anchor is not None:
            anchor = path.parent / anchor
        anchor = overrides.pop("trust_anchor", anchor)
        if cache_table is not None:
            if not isinstance(cache_table, dict):
                raise ResolverConfigError(f"{path}: 'cache' must be a table")
            try:
                options["cache_config"] = CacheConfig.from_mapping(cache_table)
            except (CacheConfigError, TypeError) as exc:
                raise ResolverConfigError(f"{path}: [cache]: {exc}") from None
        engine_table = section.get("engine", data.get("engine") if section is not data else None)
        if engine_table is not None:
            if not isinstance(engine_table, dict):
                raise ResolverConfigError(f"{path}: 'engine' must be a table")
            unknown = set(engine_table) - set(ENGINE_SETTINGS)
            if unknown:
                raise ResolverConfigError(f"{path}: [engine]: unknown setting(s) {', '.join(sorted(unknown))}")
            options.update(engine_table)
        options.update(overrides)
        try:
            resolver = cls(hints, anchor, **options)
        except (HintError, TrustAnchorError, TypeError, ValueError) as exc:
            raise ResolverConfigError(f"{path}: {exc}") from None
        resolver.config_file = path
        return resolver

    async def __aenter__(self) -> Resolver:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

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
        if status is Status.SECURE or rcode == "SERVFAIL" or status is Status.BOGUS:
            return False
        if status is Status.INDETERMINATE:
            return self.validation == "on"
        return status is Status.INSECURE and self.require_secure

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

    async def _lookup(self, name, rdtype, asked, cd: bool, tcp: bool, budget: Budget | None,
                      refresh: bool) -> Lookup:
        name = dns.name.from_text(name) if isinstance(name, str) else name
        rdtype = dns.rdatatype.from_text(rdtype) if isinstance(rdtype, str) else rdtype
        # One in-flight lookup per question (Unbound's mesh): identical concurrent lookups
        # share one fetch by construction, so a burst for one name costs one resolution.
        refresh = refresh or _REFRESH.get()
        hit = self._cached(name, rdtype, asked)
        if hit is not None:
            self.hits += 1
            return hit
        self.stats["misses"] += 1
        key = (name.canonicalize(), rdtype, cd, tcp, refresh)
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
            lookup = replace(lookup, ttl=left)
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
                            trace=(ev.CacheHit(name.to_text(), dns.rdatatype.to_text(rdtype), entry.status),))
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
                        trace=(ev.CacheHit(name.to_text(), dns.rdatatype.to_text(rdtype), neg.status),))
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
        """A Resolution or FindResult: refused when built on unvalidated answers (validation
        on) or, under require_secure, when not secure; failures are not refusals."""
        if result.status is Status.BOGUS:
            return False
        if result.unvalidated and self.validation == "on":
            return True
        # Under require_secure only an answer from an unsigned zone is refused: an indeterminate
        # result that is a failure (a budget spent, servers down) stays a failure.
        return self.require_secure and result.status is Status.INSECURE

    def _remember(self, identifier: str, result: Resolution) -> None:
        if result.rcode != "SERVFAIL" or result.status is Status.BOGUS:
            size = 256 * (1 + len(result.endpoints)) + 128 * (len(result.capabilities) + len(result.load or ()))
            self.cache.put_resolution(identifier, dns.name.from_text(result.name), replace(result, trace=()),
                                      result.status, result.ttl, size)

    async def _refresh_resolution(self, identifier: str) -> None:
        _REFRESH.set(True)  # this task's context only
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
            homes.add(svcb_lookup.rrset.name.to_text().lower())
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

    async def find(self, namespace: str, where: Where = None, sort: SortSpec = None, limit: int | None = None,
                   deadline: float | None = None, *, currency: str | None = None,
                   rates: str | Path | Mapping[str, Any] | None = None, need: int | None = None,
                   max_age: float | None = None, allow_stale: bool = False, **bounds) -> FindResult:
        """Search ``namespace`` and its delegated child namespaces (spec/discovery.md §3, §5).

        ``where``: conditions as strings (``"accel_free>=2"``, ``"region in [bj,sh]"``,
        ``"accel_memory_bytes>=80GiB"``), ``(key, op, value)`` tuples (``op`` ``"in"``/``"notin"``
        with a list) or a mapping of equalities, ANDed; keys are registry keys, extension keys
        (with a ``.``) or ``cost``. ``sort``: ``"price_per_hour+,accel_free-"`` or a list of keys
        or ``(key, "asc"|"desc")``. ``limit``: keep the first N; ``deadline``: seconds for the
        whole search (default 30). ``currency``: keep prices in this ISO 4217 code only;
        ``rates``: a rates file (path) or mapping that converts prices (spec/discovery.md §5.4);
        ``need``: devices needed (keeps ``accel_free >= need``, ranks by their cost);
        ``max_age``: drop results whose LOAD ``ts`` is older (seconds); ``allow_stale``: let
        stale LOAD count as live. Returns a FindResult, a ranked, read-only sequence of
        Resolutions with ``status``, ``why``, ``skipped`` and ``matches``.
        Raises IdentifierError or ConditionError (both ValueError) before any query, and
        MixedCurrencies (a ConditionError) when prices in several currencies were to be compared."""
        result = await _find(self, namespace, where, sort, limit, deadline, currency=currency, rates=rates,
                             need=need, max_age=max_age, allow_stale=allow_stale, **bounds)
        if result.status is not Status.SECURE and self._refuses_resolution(result):
            raise ValidationRefused(namespace, result.status, result.why, result)
        return result

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
            endpoints.append(Endpoint(target.to_text(), rd.priority, port, alpn,
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
