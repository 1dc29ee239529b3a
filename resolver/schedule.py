"""Endpoint choice ("schedule", spec/resolution.md §4): the order in which a client should try
the endpoints of a resolution, and the free-capacity figure search results are ranked by.

Pure functions plus one small table of measured connect times; no sockets here (the probe
that feeds the table is resolver/drivers/probe.py). The order is:

1. SvcPriority ascending — the publisher's word comes first (RFC 9460 §2.4.1);
2. more free capacity (LOAD) at the endpoint's target first;
3. lower smoothed connect RTT of the endpoint's best address first (measured endpoints before
   unmeasured ones, unreachable ones last);
4. TargetName in DNSSEC canonical order (RFC 4034 §6.1): deterministic when nothing differs.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import dns.name

from .resolution import Endpoint

STALE_TTLS = 5            # LOAD older than 5 × its TTL (by its ``ts``) says nothing about now
SRTT_ALPHA = 1 / 8        # RFC 6298 §2.3 smoothing, as TCP does for its own RTT
UNREACHABLE_RTT = 120.0   # what a failed connect counts as: after every address that answered
MAX_MEASURED = 4096       # addresses remembered (LRU), so hostile resolutions cannot grow it

_UNKNOWN = (1, 0.0)       # sort key part for "no figure": after every known figure


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def load_is_stale(load: Mapping[str, Any], load_ttl: int | None, now: float) -> bool:
    """True when LOAD's ``ts`` is older than STALE_TTLS × its TTL. Without ``ts`` or TTL the age
    is unknown and the values are taken as current (the registry asks publishers for ``ts``)."""
    ts = _number(load.get("ts"))
    if ts is None or load_ttl is None:
        return False
    return now - ts > STALE_TTLS * max(load_ttl, 1)


def free_capacity(load: Mapping[str, Any] | None, load_ttl: int | None = None,
                  now: float | None = None) -> float | None:
    """The free-capacity figure of one LOAD map: ``accel_free``, else ``cpu_free``, else
    ``1 − load_ratio``; None when LOAD is absent, stale or carries none of them."""
    if not load:
        return None
    if load_is_stale(load, load_ttl, time.time() if now is None else now):
        return None
    for key in ("accel_free", "cpu_free"):
        value = _number(load.get(key))
        if value is not None:
            return value
    ratio = _number(load.get("load_ratio"))
    if ratio is not None and 0 <= ratio <= 1:
        return 1.0 - ratio
    return None


class Reachability:
    """Smoothed connect RTT per address, from probes or earlier connections.

    A failed connect is remembered as UNREACHABLE_RTT, so the address sorts last until a
    later success pulls its average down. Bounded to MAX_MEASURED addresses (least recently
    measured forgotten first)."""

    def __init__(self, max_entries: int = MAX_MEASURED):
        self.max_entries = max_entries
        self._srtt: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._srtt)

    def observe(self, address: str, rtt: float) -> None:
        rtt = min(max(rtt, 0.0), UNREACHABLE_RTT)
        old = self._srtt.pop(address, None)
        self._srtt[address] = rtt if old is None else old + SRTT_ALPHA * (rtt - old)
        while len(self._srtt) > self.max_entries:
            self._srtt.popitem(last=False)

    def failed(self, address: str) -> None:
        """A connect failed: the address is at least UNREACHABLE_RTT until it answers again.
        (No smoothing downwards from a failure: one refused connect must demote at once.)"""
        self._srtt.pop(address, None)
        self._srtt[address] = UNREACHABLE_RTT
        while len(self._srtt) > self.max_entries:
            self._srtt.popitem(last=False)

    def srtt(self, address: str) -> float | None:
        return self._srtt.get(address)


def _address_key(address: str, rtt: Callable[[str], float | None]):
    measured = rtt(address)
    ip = ipaddress.ip_address(address)
    # Measured and answering, then unmeasured (spec order: IPv4 first, numeric), then failed.
    if measured is None:
        return (1, 0.0, ip.version, ip)
    return (0 if measured < UNREACHABLE_RTT else 2, measured, ip.version, ip)


def order_addresses(addresses: Iterable[str], rtt: Callable[[str], float | None]) -> tuple[str, ...]:
    return tuple(sorted(set(addresses), key=lambda a: _address_key(a, rtt)))


def order_endpoints(endpoints: Iterable[Endpoint], *,
                    free: Mapping[str, float | None] | None = None,
                    rtt: Callable[[str], float | None] | None = None) -> tuple[Endpoint, ...]:
    """Endpoints in the order of spec/resolution.md §4. ``free`` maps a target (DNS spelling)
    to its free-capacity figure; ``rtt`` gives an address's smoothed connect RTT or None.
    Addresses inside each endpoint are ordered by RTT too when measurements exist."""
    free = free or {}
    lookup_rtt = rtt or (lambda _address: None)

    def key(e: Endpoint):
        capacity = free.get(e.target)
        best = min((lookup_rtt(a) for a in e.addresses if lookup_rtt(a) is not None), default=None)
        return (e.priority,
                _UNKNOWN if capacity is None else (0, -capacity),
                _UNKNOWN if best is None else (0, best),
                dns.name.from_text(e.target))  # dns.name ordering is RFC 4034 §6.1 canonical

    ordered = sorted(endpoints, key=key)
    if rtt is None:
        return tuple(ordered)
    return tuple(e if not e.addresses else
                 Endpoint(e.target, e.priority, e.port, e.alpn, order_addresses(e.addresses, lookup_rtt))
                 for e in ordered)
