"""The zones an authoritative server answers from, and the responses it has rendered.

Each zone is a ``zonedb.ZoneData``: names in canonical order with their RRsets in wire form,
indexed when it is built (from a master file by ``zoneload``, or from a dnspython zone here) so
that a query costs work proportional to its answer, not to the zone. Adding or removing a zone
swaps the set of zones atomically, so readers never see half a zone; changing RRsets inside a
served zone goes through ``update`` (``zonechange``), which touches only the names changed and
drops only the cached responses that depended on them (``respcache``).
"""

from __future__ import annotations

from collections.abc import Iterable

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.zone

from . import wirename
from .respcache import DEFAULT_MAX_BYTES, ResponseCache
from .zonedb import ZoneBuilder, ZoneData

ZoneIndex = ZoneData  # the name callers used before the compact store


def canonical_key(name: dns.name.Name) -> tuple[bytes, ...]:
    """Sort key giving the DNSSEC canonical order of names (RFC 4034 §6.1), as a label tuple."""
    return tuple(label.lower() for label in reversed(name.labels))


def from_zone(zone: dns.zone.Zone) -> ZoneData:
    """The compact form of a dnspython zone (names derelativized, records in its order)."""
    origin = zone.origin
    if origin is None or not origin.is_absolute():
        raise ValueError("zone has no absolute origin")
    if zone.rdclass != dns.rdataclass.IN:
        raise ValueError(f"zone {origin}: only class IN is served")
    builder = ZoneBuilder(origin)
    for name, node in zone.nodes.items():
        owner = name if name.is_absolute() else name.derelativize(origin)
        key = wirename.key_of_labels(owner.labels)
        wire = owner.to_wire()
        for rds in node.rdatasets:
            covers = int(rds.covers) if rds.rdtype == dns.rdatatype.RRSIG else 0
            for rd in rds:
                builder.add(key, wire, int(rds.rdtype), covers, rds.ttl, rd.to_wire(origin=origin))
    data = builder.finish()
    data.source = zone
    return data


class ZoneStore:
    """The served zones. ``find_index`` picks the deepest zone at or above a name."""

    def __init__(self, zones: Iterable[dns.zone.Zone | ZoneData] = (), *,
                 cache_bytes: int = DEFAULT_MAX_BYTES):
        self._by_key: dict[bytes, ZoneData] = {}
        # Bumped whenever a zone is added, removed or changed.
        self.generation = 0
        self.cache = ResponseCache(cache_bytes)
        for zone in zones:
            self.add(zone)

    # Rendered answers by query bytes after the ID (see resolver.auth.answer); the UDP
    # listener reads ``responses`` directly.
    @property
    def responses(self) -> dict[bytes, bytes]:
        return self.cache.udp.responses

    @property
    def tcp_responses(self) -> dict[bytes, bytes]:
        return self.cache.tcp.responses

    def add(self, zone: dns.zone.Zone | ZoneData) -> ZoneData:
        """Serve ``zone`` (replacing a zone of the same name). Only class IN is served."""
        data = zone if isinstance(zone, ZoneData) else from_zone(zone)
        self._by_key = {**self._by_key, data.apex: data}
        self._changed()
        return data

    def remove(self, origin: dns.name.Name | str) -> None:
        name = dns.name.from_text(origin) if isinstance(origin, str) else origin
        key = wirename.key_of(name)
        self._by_key = {k: v for k, v in self._by_key.items() if k != key}
        self._changed()

    def _changed(self) -> None:
        self.generation += 1
        self.cache.clear()

    def update(self, origin: dns.name.Name | str, changes, *, sign=None):
        """Apply RRset changes to one served zone (see ``zonechange.apply``); the responses that
        depended on the names changed are dropped, no others."""
        from . import zonechange
        name = dns.name.from_text(origin) if isinstance(origin, str) else origin
        data = self._by_key.get(wirename.key_of(name))
        if data is None:
            raise KeyError(f"zone {name} is not served")
        report = zonechange.apply(data, changes, sign=sign)
        self.generation += 1
        if report.whole_zone:
            self.cache.clear()
        else:
            report.dropped = self.cache.drop(report.dependencies)
        return report

    @property
    def zones(self) -> list[ZoneData]:
        return list(self._by_key.values())

    def zone(self, origin: dns.name.Name | str) -> ZoneData | None:
        name = dns.name.from_text(origin) if isinstance(origin, str) else origin
        return self._by_key.get(wirename.key_of(name))

    def find_key(self, key: bytes) -> ZoneData | None:
        """The deepest served zone at or above the name with canonical ``key``."""
        by_key = self._by_key
        if not by_key:
            return None
        for ancestor in wirename.ancestor_keys(key):
            found = by_key.get(ancestor)
            if found is not None:
                return found
        return None

    def find_index(self, qname: dns.name.Name) -> ZoneData | None:
        """The deepest served zone at or above ``qname``."""
        return self.find_key(wirename.key_of_labels(qname.labels))

    def find(self, qname: dns.name.Name | str) -> ZoneData | None:
        name = dns.name.from_text(qname) if isinstance(qname, str) else qname
        return self.find_index(name)
