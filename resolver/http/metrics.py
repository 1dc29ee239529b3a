"""``/metrics`` in the Prometheus text exposition format (prometheus_client). Counters are
plain integers kept where the work happens (listeners, Resolver.stats, Cache) and read only
when scraped, so the query path pays an integer increment, not a client-library call."""

from __future__ import annotations

import time

import dns.rcode
from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .errors import METRICS_KEY

STATUSES = ("secure", "insecure", "bogus", "indeterminate")
UPSTREAM_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _rcode_text(code: int) -> str:
    try:
        return dns.rcode.to_text(code)
    except Exception:  # noqa: BLE001 - unassigned header values
        return str(code)


def query_family(dns_server, doh_rcodes: list[int]) -> CounterMetricFamily:
    """cid_dns_queries: responses sent by a DNS front end, by protocol and header RCODE."""
    queries = CounterMetricFamily("cid_dns_queries", "DNS responses sent, by protocol and header RCODE",
                                  labels=["protocol", "rcode"])
    for protocol, counts in (("udp", dns_server.udp_rcodes), ("tcp", dns_server.tcp_rcodes), ("doh", doh_rcodes)):
        for code, n in enumerate(counts):
            if n:
                queries.add_metric([protocol, _rcode_text(code)], n)
    return queries


def http_families(http: dict[tuple[str, int], int], started: float):
    """cid_http_requests by route and status, and the start time."""
    requests = CounterMetricFamily("cid_http_requests", "HTTP requests answered, by route and status",
                                   labels=["route", "status"])
    for (route, status), n in sorted(http.items()):
        requests.add_metric([route, str(status)], n)
    yield requests
    yield GaugeMetricFamily("cid_start_time_seconds", "When the server started (Unix time)", value=started)


def resolver_families(resolver):
    """A Resolver's cache and validation counters (cid_cache_*, cid_validation_outcomes, stale
    answers, prefetch): the resolver's /metrics, and the auth server's for its embedded one."""
    stats = resolver.stats
    hits = CounterMetricFamily("cid_cache_hits", "Lookups answered from the cache", labels=["layer"])
    misses = CounterMetricFamily("cid_cache_misses", "Lookups that ran the resolution engine", labels=["layer"])
    hits.add_metric(["lookup"], resolver.hits)
    misses.add_metric(["lookup"], stats.get("misses", 0))
    hits.add_metric(["resolution"], resolver.resolution_hits)
    misses.add_metric(["resolution"], stats.get("resolution_misses", 0))
    yield hits
    yield misses
    cache = resolver.cache
    yield CounterMetricFamily("cid_cache_evictions", "Cache entries evicted for space", value=cache.evictions)
    yield GaugeMetricFamily("cid_cache_bytes", "Bytes held by the cache", value=cache.bytes + cache.hot_bytes)
    yield GaugeMetricFamily("cid_cache_entries", "Entries in the cache", value=len(cache))
    outcomes = CounterMetricFamily("cid_validation_outcomes", "Engine lookups by validation status",
                                   labels=["status"])
    for status in STATUSES:
        outcomes.add_metric([status], stats.get(f"validation_{status}", 0))
    yield outcomes
    yield CounterMetricFamily("cid_stale_answers", "Lookups answered from expired cache (RFC 8767)",
                              value=stats.get("stale", 0))
    yield CounterMetricFamily("cid_prefetch", "Background refreshes started", value=stats.get("prefetch", 0))


class Metrics:
    """One registry per front end (no process-global state: tests run several). ``workers``:
    set in each of ``--workers N`` (control/workers.Workers), whose /metrics shows all of them."""

    workers = None
    worker_index = 0

    def __init__(self, dns_server, resolver):
        self.dns, self.resolver = dns_server, resolver
        self.doh_rcodes = [0] * 16
        self.http: dict[tuple[str, int], int] = {}
        self.started = time.time()
        self.registry = CollectorRegistry(auto_describe=True)
        self.upstream = Histogram("cid_upstream_query_seconds", "Time for one upstream DNS exchange",
                                  ["outcome"], buckets=UPSTREAM_BUCKETS, registry=self.registry)
        self.registry.register(self)
        resolver.upstream_observer = self.observe_upstream

    def observe_upstream(self, seconds: float, outcome: str) -> None:
        self.upstream.labels(outcome).observe(seconds)

    def count_doh(self, response: bytes) -> None:
        self.doh_rcodes[response[3] & 15] += 1

    def count_http(self, route: str, status: int) -> None:
        key = (route, status)
        self.http[key] = self.http.get(key, 0) + 1

    def collect(self):
        yield query_family(self.dns, self.doh_rcodes)
        yield CounterMetricFamily("cid_dns_dropped", "Queries dropped: too many resolutions in progress",
                                  value=self.dns.dropped)
        yield from resolver_families(self.resolver)
        yield from http_families(self.http, self.started)

    def describe(self):
        return []


async def handler(request: web.Request) -> web.Response:
    metrics = request.app[METRICS_KEY]
    source = metrics.registry
    if getattr(metrics, "workers", None) is not None:  # one of --workers N: the totals of all
        from ..control.workers import Families
        families, _ = await metrics.workers.families((metrics.worker_index, metrics.registry.collect()))
        source = Families(families)
    body = generate_latest(source)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
