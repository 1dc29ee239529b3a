"""The resolver's cache: RRsets with their signatures and validation status, negative
answers, delegations and zone key trust — each expiring by TTL on an injectable clock.

Kept separate by what it holds (as Unbound does: rrset, message, infra and key caches) so
that memory bounds, LRU, serve-stale and prefetch can be added per kind later. Today each
kind is a dict with expiry checked on read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import dns.name
import dns.rrset

from ..status import Status
from .selection import ServerSelection

# RFC 4035 §4.7: bogus data may be cached, but only briefly, so a fixed zone recovers fast.
BOGUS_TTL = 60
# RFC 2308 §5 suggests capping negative TTLs; RFC 8767 style cap on everything else.
MAX_NEGATIVE_TTL = 3 * 3600
MAX_TTL = 86400

Server = tuple[str, int]


@dataclass(frozen=True)
class RRsetEntry:
    rrset: dns.rrset.RRset
    rrsigs: dns.rrset.RRset | None
    status: Status
    why: str
    expires: float


@dataclass(frozen=True)
class NegativeEntry:
    """NXDOMAIN or NODATA for (name, type), with the authority records that prove it."""

    rcode: str
    authority: tuple[dns.rrset.RRset, ...]
    status: Status
    why: str
    expires: float


@dataclass(frozen=True)
class Delegation:
    zone: dns.name.Name
    servers: tuple[Server, ...]
    nameservers: tuple[dns.name.Name, ...]
    expires: float


@dataclass(frozen=True)
class ZoneTrust:
    """How far a zone's keys are trusted; ``dnskeys`` set only when SECURE."""

    zone: dns.name.Name
    status: Status
    why: str
    dnskeys: dns.rrset.RRset | None
    expires: float


class Cache:
    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._rrsets: dict[tuple[dns.name.Name, int], RRsetEntry] = {}
        self._negative: dict[tuple[dns.name.Name, int], NegativeEntry] = {}
        self._delegations: dict[dns.name.Name, Delegation] = {}
        self._trust: dict[dns.name.Name, ZoneTrust] = {}
        self.servers = ServerSelection(clock)  # per-server RTT and timeouts

    def _expiry(self, ttl: int, status: Status, cap: int = MAX_TTL) -> float:
        ttl = max(0, min(int(ttl), cap))
        if status is Status.BOGUS:
            ttl = min(ttl, BOGUS_TTL)
        return self.clock() + ttl

    def _get(self, table: dict, key):
        entry = table.get(key)
        if entry is None:
            return None
        if entry.expires <= self.clock():
            del table[key]
            return None
        return entry

    def remaining(self, entry) -> int:
        """TTL left on an entry, for answers served from the cache."""
        return max(0, int(entry.expires - self.clock()))

    # RRsets ------------------------------------------------------------------------------
    def put_rrset(self, rrset: dns.rrset.RRset, rrsigs: dns.rrset.RRset | None, status: Status,
                  why: str, ttl: int | None = None) -> None:
        ttl = rrset.ttl if ttl is None else min(ttl, rrset.ttl)
        key = (rrset.name.canonicalize(), rrset.rdtype)
        self._rrsets[key] = RRsetEntry(rrset, rrsigs, status, why, self._expiry(ttl, status))
        self._negative.pop(key, None)

    def get_rrset(self, name: dns.name.Name, rdtype: int) -> RRsetEntry | None:
        return self._get(self._rrsets, (name.canonicalize(), rdtype))

    # Negative answers ----------------------------------------------------------------------
    def put_negative(self, name: dns.name.Name, rdtype: int, rcode: str,
                     authority: tuple[dns.rrset.RRset, ...], status: Status, why: str, ttl: int) -> None:
        key = (name.canonicalize(), rdtype)
        self._negative[key] = NegativeEntry(rcode, authority, status, why,
                                            self._expiry(ttl, status, MAX_NEGATIVE_TTL))

    def get_negative(self, name: dns.name.Name, rdtype: int) -> NegativeEntry | None:
        return self._get(self._negative, (name.canonicalize(), rdtype))

    # Delegations (the infrastructure cache) ------------------------------------------------
    def put_delegation(self, zone: dns.name.Name, servers: tuple[Server, ...],
                       nameservers: tuple[dns.name.Name, ...], ttl: int) -> None:
        zone = zone.canonicalize()
        self._delegations[zone] = Delegation(zone, servers, nameservers, self._expiry(ttl, Status.SECURE))

    def get_delegation(self, zone: dns.name.Name) -> Delegation | None:
        return self._get(self._delegations, zone.canonicalize())

    # Zone key trust (the key cache) --------------------------------------------------------
    def put_trust(self, zone: dns.name.Name, status: Status, why: str,
                  dnskeys: dns.rrset.RRset | None, ttl: int) -> ZoneTrust:
        zone = zone.canonicalize()
        entry = ZoneTrust(zone, status, why, dnskeys if status is Status.SECURE else None,
                          self._expiry(ttl, status))
        self._trust[zone] = entry
        return entry

    def get_trust(self, zone: dns.name.Name) -> ZoneTrust | None:
        return self._get(self._trust, zone.canonicalize())

    def clear(self) -> None:
        for table in (self._rrsets, self._negative, self._delegations, self._trust):
            table.clear()

    def __len__(self) -> int:
        return sum(len(t) for t in (self._rrsets, self._negative, self._delegations, self._trust))
