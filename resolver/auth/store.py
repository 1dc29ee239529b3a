"""The zones an authoritative server answers from, indexed once when a zone is added.

Everything the answering code needs per query (RRsets by owner and type, their RRSIGs, zone cuts,
the sorted NSEC chain or the NSEC3 chain with each name's matching NSEC3 (``nsec3``), names that
exist including empty non-terminals) is computed in ``add`` so that a query costs work
proportional to its answer, not to the zone. A zone changed after
``add`` must be added again: the index is swapped atomically, so readers never see half a zone.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdataset
import dns.zone

from .nsec3 import Nsec3Chain, chain_params, params_of
from .wire import WireMemo

RRSIG = dns.rdatatype.RRSIG
NSEC = dns.rdatatype.NSEC
NSEC3 = dns.rdatatype.NSEC3
NSEC3PARAM = dns.rdatatype.NSEC3PARAM
NS = dns.rdatatype.NS
SOA = dns.rdatatype.SOA
DNSKEY = dns.rdatatype.DNSKEY


def canonical_key(name: dns.name.Name) -> tuple[bytes, ...]:
    """Sort key giving the DNSSEC canonical order of names (RFC 4034 §6.1).

    Labels compared right to left as lower-cased octet strings; tuple and bytes comparison
    already put a missing label (a parent) before any present one.
    """
    return tuple(label.lower() for label in reversed(name.labels))


class NodeData:
    """The RRsets at one owner name: data by type, signatures by covered type.

    The values are the zone's own Rdataset objects (the owner is ``name``), shared rather than
    copied: a 100k-name zone is indexed in a fraction of the time and memory.
    """

    __slots__ = ("name", "rrsets", "sigs")

    def __init__(self, name: dns.name.Name):
        self.name = name
        self.rrsets: dict[int, dns.rdataset.Rdataset] = {}
        self.sigs: dict[int, dns.rdataset.Rdataset] = {}


class ZoneIndex:
    """One served zone, indexed for answering (see module docstring)."""

    def __init__(self, zone: dns.zone.Zone):
        origin = zone.origin
        if origin is None or not origin.is_absolute():
            raise ValueError("zone has no absolute origin")
        self.zone = zone
        self.origin: dns.name.Name = origin
        self.nodes: dict[dns.name.Name, NodeData] = {}
        nsec3_nodes: list[NodeData] = []
        for name, node in zone.nodes.items():
            owner = name if name.is_absolute() else name.derelativize(origin)
            data = NodeData(owner)
            for rdataset in node.rdatasets:
                if rdataset.rdtype == RRSIG:
                    data.sigs[rdataset.covers] = rdataset
                else:
                    data.rrsets[rdataset.rdtype] = rdataset
            if NSEC3 in data.rrsets and len(data.rrsets) == 1:
                # A hashed owner name is not a name of the zone (RFC 5155 §7.1): queries for it
                # get NXDOMAIN, as from Knot and NSD; the chain is indexed below.
                nsec3_nodes.append(data)
            elif data.rrsets or data.sigs:
                self.nodes[owner] = data

        apex = self.nodes.get(origin)
        if apex is None or SOA not in apex.rrsets:
            raise ValueError(f"zone {origin} has no SOA at its apex")
        self.apex = apex
        soa = apex.rrsets[SOA]
        # Negative answers are cached for min(SOA TTL, SOA MINIMUM) (RFC 2308 §3, RFC 4035 §3.1.3).
        self.negative_ttl = min(soa.ttl, soa[0].minimum)
        self.negative_soa = _with_ttl(soa, self.negative_ttl)
        soa_sig = apex.sigs.get(SOA)
        self.negative_soa_sig = _with_ttl(soa_sig, self.negative_ttl) if soa_sig else None
        self.signed = NSEC in apex.rrsets or DNSKEY in apex.rrsets

        # Zone cuts and existing names, keyed by lower-cased label tuples so that walking a
        # name's ancestors is tuple slicing rather than building Name objects.
        self.cuts: frozenset[dns.name.Name] = frozenset(
            n for n, d in self.nodes.items() if n != origin and NS in d.rrsets
        )
        self._cut_keys = frozenset(_key(n) for n in self.cuts)
        # Every name that exists, including empty non-terminals (RFC 4592 §2.2.2): an ENT
        # answers NODATA, and it can be a closest encloser.
        existing: set[tuple[bytes, ...]] = set()
        depth = len(origin.labels)
        for name in self.nodes:
            key = _key(name)
            for i in range(len(key) - depth + 1):
                if key[i:] in existing:
                    break
                existing.add(key[i:])
        self._existing_keys = frozenset(existing)
        self._depth = depth
        # NSEC3 (RFC 5155): only when the apex names a chain, so NSEC zones pay nothing.
        nsec3param = apex.rrsets.get(NSEC3PARAM)
        self.nsec3: Nsec3Chain | None = (
            _nsec3_chain(nsec3param, depth, nsec3_nodes, self._existing_keys)
            if nsec3param is not None else None
        )

        nsec_owners = sorted((canonical_key(n), n) for n, d in self.nodes.items() if NSEC in d.rrsets)
        self._nsec_keys = [k for k, _ in nsec_owners]
        self._nsec_names = [n for _, n in nsec_owners]
        # Rendered record bytes of this zone's RRsets (resolver.auth.wire), filled on demand.
        self.wire = WireMemo()

    def exists(self, name: dns.name.Name) -> bool:
        """Whether ``name`` owns data or is an empty non-terminal in this zone."""
        return _key(name) in self._existing_keys

    def find_cut(self, qname: dns.name.Name) -> dns.name.Name | None:
        """The highest zone cut at or above qname (below the apex), if any."""
        if not self._cut_keys:
            return None
        key = _key(qname)
        cuts = self._cut_keys
        for i in range(len(key) - self._depth - 1, -1, -1):  # from just below the apex down
            if key[i:] in cuts:
                return dns.name.Name(qname.labels[i:])
        return None

    def closest_encloser(self, qname: dns.name.Name) -> dns.name.Name:
        """The deepest existing name at or above qname (RFC 4592 §3.3.1)."""
        key = _key(qname)
        for i in range(len(key) - self._depth + 1):
            if key[i:] in self._existing_keys:
                return dns.name.Name(qname.labels[i:])
        return self.origin

    def covering_nsec(self, name: dns.name.Name) -> NodeData | None:
        """The node whose NSEC matches or covers ``name`` (predecessor in canonical order)."""
        if not self._nsec_keys:
            return None
        i = bisect.bisect_right(self._nsec_keys, canonical_key(name)) - 1
        # Before the first owner can only mean a name outside the zone; the last NSEC wraps.
        return self.nodes[self._nsec_names[i if i >= 0 else -1]]


def _nsec3_chain(nsec3param: dns.rdataset.Rdataset, depth: int, nodes: list[NodeData],
                 existing: frozenset[tuple[bytes, ...]]) -> Nsec3Chain | None:
    """The chain of the first usable NSEC3PARAM that has NSEC3 records (RFC 5155 §7.3)."""
    for params in chain_params(nsec3param):
        if any(params_of(rd) == params for node in nodes for rd in node.rrsets[NSEC3]):
            return Nsec3Chain(params, depth, nodes, existing)
    return None  # no usable chain: negative answers carry the SOA only


def _key(name: dns.name.Name) -> tuple[bytes, ...]:
    return tuple(label.lower() for label in name.labels)


def _with_ttl(rdataset: dns.rdataset.Rdataset, ttl: int) -> dns.rdataset.Rdataset:
    copy = rdataset.copy()
    copy.ttl = ttl
    return copy


class ZoneStore:
    """The served zones. ``find`` picks the deepest zone at or above a name."""

    def __init__(self, zones: Iterable[dns.zone.Zone] = ()):
        self._index: dict[dns.name.Name, ZoneIndex] = {}
        self._by_key: dict[tuple[bytes, ...], ZoneIndex] = {}
        # Bumped on every change. ``responses`` / ``tcp_responses`` cache rendered answers
        # (resolver.auth.answer) by query bytes after the ID, so they are emptied whenever
        # the served data changes.
        self.generation = 0
        self.responses: dict[bytes, bytes] = {}
        self.tcp_responses: dict[bytes, bytes] = {}
        for zone in zones:
            self.add(zone)

    def add(self, zone: dns.zone.Zone) -> None:
        """Serve ``zone`` (replacing a zone of the same name). Only class IN is served."""
        if zone.rdclass != dns.rdataclass.IN:
            raise ValueError(f"zone {zone.origin}: only class IN is served")
        index = ZoneIndex(zone)
        self._index = {**self._index, index.origin: index}
        self._changed()

    def remove(self, origin: dns.name.Name | str) -> None:
        name = dns.name.from_text(origin) if isinstance(origin, str) else origin
        self._index = {k: v for k, v in self._index.items() if k != name}
        self._changed()

    def _changed(self) -> None:
        self._by_key = {_key(origin): index for origin, index in self._index.items()}
        self.generation += 1
        self.responses = {}
        self.tcp_responses = {}

    @property
    def zones(self) -> list[dns.zone.Zone]:
        return [index.zone for index in self._index.values()]

    def find_index(self, qname: dns.name.Name) -> ZoneIndex | None:
        """The index of the deepest served zone at or above ``qname``."""
        by_key = self._by_key
        if not by_key:
            return None
        key = _key(qname)
        for i in range(len(key)):
            found = by_key.get(key[i:])
            if found is not None:
                return found
        return None

    def find(self, qname: dns.name.Name | str) -> dns.zone.Zone | None:
        """The deepest served zone at or above ``qname``."""
        name = dns.name.from_text(qname) if isinstance(qname, str) else qname
        found = self.find_index(name)
        return found.zone if found else None
