"""``/metrics`` of ``cid serve auth --http`` (Prometheus text exposition, prometheus_client):
queries by protocol and RCODE, replies to updates by RCODE (NOERROR = accepted), transfers by
kind, leases active and expired, each zone's serial and size, and the cache and validation
counters of the Resolver behind /v1/resolve and /v1/find. Read from the counters the server
keeps where the work happens, only when scraped."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .metrics import _rcode_text, http_families, query_family, resolver_families


class AuthMetrics:
    """One registry per front end, over an AuthServer (``dns``) and its live zones (``dns.primary``)."""

    def __init__(self, dns_server, api=None):
        """``api``: the auth_resolve.AuthResolver behind /v1/resolve and /v1/find, whose
        embedded Resolver's cache and validation counters are shown once it exists (it is made
        by the first such request)."""
        self.dns = dns_server
        self.api = api
        self.doh_rcodes = [0] * 16
        self.http: dict[tuple[str, int], int] = {}
        self.started = time.time()
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self)

    def count_doh(self, response: bytes) -> None:
        self.doh_rcodes[response[3] & 15] += 1

    def count_http(self, route: str, status: int) -> None:
        self.http[(route, status)] = self.http.get((route, status), 0) + 1

    def collect(self):
        yield query_family(self.dns, self.doh_rcodes)
        primary = self.dns.primary
        updates = CounterMetricFamily("cid_auth_updates", "Replies to DNS UPDATEs by RCODE (NOERROR: accepted)",
                                      labels=["rcode"])
        transfers = CounterMetricFamily("cid_auth_transfers", "Zone transfer requests answered, by outcome",
                                        labels=["kind"])
        active = GaugeMetricFamily("cid_auth_leases_active", "Leased records live now", labels=["zone"])
        expired = CounterMetricFamily("cid_auth_leases_expired", "Leased records removed at expiry",
                                      labels=["zone"])
        serial = GaugeMetricFamily("cid_auth_zone_serial", "SOA serial committed to the journal", labels=["zone"])
        names = GaugeMetricFamily("cid_auth_zone_names", "Owner names in the zone", labels=["zone"])
        if primary is not None:
            for code, n in sorted(primary.update_rcodes.items()):
                updates.add_metric([_rcode_text(code)], n)
            for live in primary.zones.values():
                zone = live.origin.to_text()
                active.add_metric([zone], len(live.leases))
                expired.add_metric([zone], live.expired)
                serial.add_metric([zone], live.committed_serial)
                names.add_metric([zone], len(live.data.blobs))
        if self.dns.transfers is not None:
            for kind, n in sorted(self.dns.transfers.counts.items()):
                transfers.add_metric([kind], n)
        yield from (updates, transfers, active, expired, serial, names)
        embedded = getattr(self.api, "resolver", None)
        if embedded is not None:
            yield from resolver_families(embedded)
        yield from http_families(self.http, self.started)

    def describe(self):
        return []

