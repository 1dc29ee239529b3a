"""The Python API: ``async with Resolver(hints=..., trust_anchor=...) as r: await r.resolve(id)``.

This module is the facade: a Resolver holds the configuration and the one cache shared by all
its work, and composes the layers that do it — lookups.py (one validated lookup: cache, in-flight
sharing, prefetch, a sans-I/O Engine under the asyncio driver on a miss), assembly.py (a whole
resolution: SVCB, addresses, CAPS, LOAD, endpoint order), discovery (``find``), policy.py (which
answers callers get) and config.py (the client configuration file).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import schedule
from ..discovery.conditions import SortSpec, Where
from ..discovery.search import FindResult, find as _find
from ..dnssec.anchors import TrustAnchor, TrustAnchorError
from ..engine.cache import Cache, CacheConfig
from ..engine.hints import HintError, parse_hints
from ..engine.options import EDNS_PAYLOAD
from ..engine.options import engine_options as _engine_options
from ..status import Status
from . import config as client_config
from .assembly import MAX_ALIAS, Assembly
from .config import CONFIG_ENV, SYSTEM_CONFIG, ResolverConfigError, config_path, config_paths
from .lookups import MAX_BACKGROUND, Lookups
from .policy import VALIDATION_MODES, ValidationRefused

__all__ = ["CONFIG_ENV", "MAX_ALIAS", "MAX_BACKGROUND", "SYSTEM_CONFIG", "VALIDATION_MODES",
           "Resolver", "ResolverConfigError", "ValidationRefused", "config_path", "config_paths"]


class Resolver(Lookups, Assembly):
    """One resolver: its cache, hints, trust anchor and policy, shared by every lookup,
    resolution and search made through it."""

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
        path, hints, anchor, options = client_config.read(path, overrides)
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
