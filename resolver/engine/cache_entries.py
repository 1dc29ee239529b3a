"""What the cache holds: one class per kind of entry (RRsets, negative answers and NSECs
kept packed as DNS wire bytes; delegations, zone trust and resolutions as built objects), the
``CacheRecord`` lines of ``Cache.dump()``, each entry's size estimate, and the name keys the
entries share (see cache.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dns.name
import dns.rdatatype
import dns.rrset

from ..status import Status
from ..resolution import unpack as unpack_resolution
from .packed import unpack

Server = tuple[str, int]

# Size estimates, fitted to tracemalloc measurements (tools/cache_memory.py). A packed entry
# (RRset, negative, NSEC): the entry, its key and LRU link, plus the packed bytes and each
# record's owner and header as a message carries them. Built objects (delegations, trust,
# resolutions, the hot layer): the objects, each record's Python object (an RRSIG's more:
# its signer name and header fields) and the bytes.
PACKED_OVERHEAD = 300
RESOLUTION_OVERHEAD = 400  # a packed resolution: entry, key tuple and text, expiry and LRU link
BUILT_RESOLUTION_OVERHEAD = 256  # its Resolution rebuilt (hot): beyond the caller's estimate
ENTRY_OVERHEAD = 900
RDATA_OVERHEAD = 100
PARAM_OVERHEAD = 300  # per SvcParam of a built SVCB/HTTPS record
MAP_ENTRY_OVERHEAD = 330  # per key of a built CAPS/LOAD map
RRSIG_OVERHEAD = 1100
WIRE_FACTOR = 1.2


class RRsetEntry:
    """An RRset with its RRSIGs, kept packed (engine/packed.py); ``rrset``, ``rrsigs`` and
    ``proof`` build fresh dnspython objects on each access. Immutable once stored."""

    __slots__ = ("key", "_spelling", "status", "_why", "expires", "ttl", "size", "_wire")

    def __init__(self, key: tuple, spelling: dns.name.Name | None, status: Status, why: str | tuple[str],
                 expires: float, ttl: int, size: int, wire: bytes):
        self.key, self._spelling, self.status, self._why = key, spelling, status, why
        self.expires, self.ttl, self.size, self._wire = expires, ttl, size, wire  # wire: rrset, rrsigs, proof

    @property
    def name(self) -> dns.name.Name:
        """The owner: from the key (no Name object is kept per entry) unless spelled otherwise."""
        return self._spelling if self._spelling is not None else _key_name(self.key[1])

    @property
    def rdtype(self) -> int:
        return self.key[2]

    @property
    def why(self) -> str:
        return _expand(self._why, self.name)

    def records(self) -> tuple[dns.rrset.RRset, dns.rrset.RRset | None]:
        """(rrset, rrsigs), built together (one pass over the bytes)."""
        rrset, rrsigs = unpack(self._wire, self.name, 2)
        return rrset, rrsigs

    @property
    def rrset(self) -> dns.rrset.RRset:
        return self.records()[0]

    @property
    def rrsigs(self) -> dns.rrset.RRset | None:
        return self.records()[1]

    @property
    def proof(self) -> tuple[dns.rrset.RRset, ...]:
        """For a wildcard expansion: the NSECs (and RRSIGs) proving the name itself does not
        exist (RFC 4035 §3.1.3.3), handed on to DNSSEC-aware clients with the data."""
        return tuple(unpack(self._wire, self.name)[2:])


class NegativeEntry:
    """NXDOMAIN (for every type) or NODATA for (name, type), with the records that prove it
    (packed; ``authority`` builds them on access)."""

    __slots__ = ("key", "rdtype", "rcode", "status", "_why", "expires", "ttl", "size", "_wire")

    def __init__(self, key: tuple, rdtype: int, rcode: str, status: Status, why: str | tuple[str],
                 expires: float, ttl: int, size: int, wire: bytes):
        self.key, self.rdtype, self.rcode, self.status, self._why = key, rdtype, rcode, status, why
        self.expires, self.ttl, self.size, self._wire = expires, ttl, size, wire

    @property
    def name(self) -> dns.name.Name:
        """The owner, lower case (from the key)."""
        return _key_name(self.key[1])

    @property
    def why(self) -> str:
        return _expand(self._why, self.name)

    @property
    def authority(self) -> tuple[dns.rrset.RRset, ...]:
        return tuple(unpack(self._wire))


class NsecEntry:
    """A validated (SECURE) NSEC of ``zone``, kept for aggressive negative answers (RFC 8198)."""

    __slots__ = ("zone", "name", "expires", "ttl", "size", "_wire")
    status = Status.SECURE

    def __init__(self, zone: dns.name.Name, name: dns.name.Name, expires: float, ttl: int, size: int, wire: bytes):
        self.zone, self.name, self.expires, self.ttl, self.size, self._wire = zone, name, expires, ttl, size, wire

    def records(self) -> tuple[dns.rrset.RRset, dns.rrset.RRset]:
        rrset, rrsigs = unpack(self._wire, self.name)
        return rrset, rrsigs

    @property
    def rrset(self) -> dns.rrset.RRset:
        return self.records()[0]

    @property
    def rrsigs(self) -> dns.rrset.RRset:
        return self.records()[1]


@dataclass(frozen=True, slots=True)
class Delegation:
    zone: dns.name.Name
    servers: tuple[Server, ...]
    nameservers: tuple[dns.name.Name, ...]
    expires: float
    ttl: int = 0
    size: int = 0
    status: Status | None = None

    @property
    def name(self) -> dns.name.Name:
        return self.zone


@dataclass(frozen=True, slots=True)
class ZoneTrust:
    """How far a zone's keys are trusted; ``dnskeys`` set only when SECURE."""

    zone: dns.name.Name
    status: Status
    why: str
    dnskeys: dns.rrset.RRset | None
    expires: float
    ttl: int = 0
    size: int = 0

    @property
    def name(self) -> dns.name.Name:
        return self.zone


class ResolutionEntry:
    """A whole Resolution, memoised by the text it was asked for (the message cache).

    Kept packed (resolution.pack; ``value`` None) while it is not being hit: the cache's
    get_resolution builds ``value`` on a hit and keeps it built while the entry is in the hot
    layer (Cache._hot_res). A value that cannot be packed exactly is kept as given. ``why``
    (with the owner's name as a placeholder, shared between entries) and the value's ``ttl``
    as of ``stored`` are kept apart from the bytes. The name is kept as its shared cache key,
    not as a Name object (see RRsetEntry)."""

    __slots__ = ("_name", "value", "status", "expires", "stored", "ttl", "size", "_packed", "_why", "_vttl",
                 "_hot_size")

    def __init__(self, name: bytes | tuple, value: Any, status: Status, expires: float, stored: float,
                 ttl: int = 0, size: int = 0, packed: bytes | None = None, why: str | tuple[str] = "",
                 vttl: int = 0, hot_size: int = 0):
        self._name, self.value, self.status, self.expires, self.stored = name, value, status, expires, stored
        self.ttl, self.size, self._packed, self._why = ttl, size, packed, why
        self._vttl, self._hot_size = vttl, hot_size

    @property
    def name(self) -> dns.name.Name:
        return _key_name(self._name)

    def built(self, identifier: str) -> Any:
        """The value, built from the packed bytes when it is not built already."""
        if self.value is not None or self._packed is None:
            return self.value
        owner = self.name
        return unpack_resolution(self._packed, identifier, owner.to_text(), _expand(self._why, owner), self._vttl)

    def copy(self, value: Any) -> ResolutionEntry:
        """The same entry holding ``value``: handed out when the value cannot be kept built."""
        return ResolutionEntry(self._name, value, self.status, self.expires, self.stored, self.ttl, self.size,
                               self._packed, self._why, self._vttl, self._hot_size)


Entry = RRsetEntry | NegativeEntry | NsecEntry | Delegation | ZoneTrust | ResolutionEntry


@dataclass(frozen=True)
class CacheRecord:
    """One line of ``Cache.dump()``: what is cached, how trusted, and how long it has left."""

    kind: str  # rrset, negative, nsec, delegation, trust, resolution
    name: str
    type: str  # RR type; NXDOMAIN entries: "ANY"; delegation/trust/resolution: "NS"/"DNSKEY"/"-"
    status: str | None
    ttl: int  # seconds left; 0 once expired
    stale: bool  # expired, kept only to be served stale
    rcode: str | None = None
    size: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "type": self.type, "status": self.status,
                "ttl": self.ttl, "stale": self.stale, "rcode": self.rcode, "size": self.size}


def wire_size(*rrsets: dns.rrset.RRset | None) -> int:
    """The length of ``rrsets`` as ``RRset.to_wire`` writes them without a compression table
    (every name in full, relative ones completed with the root), added up per record instead
    of rendered: each record is its owner, 10 octets of header and its own ``to_wire()`` (which
    the lean reader's records hold); an empty RRset is written as one header without RDATA."""
    size = 0
    for rrset in rrsets:
        if rrset is None:
            continue
        labels = rrset.name.labels
        owner = sum(map(len, labels)) + len(labels) + (0 if rrset.name.is_absolute() else 1)
        size += (owner + 10) * (len(rrset) or 1) + sum([len(rd.to_wire(origin=dns.name.root)) for rd in rrset])
    return size


def _estimate(packed: bytes, *rrsets: dns.rrset.RRset | None) -> int:
    """Bytes an entry holds: fixed overhead plus about the records' uncompressed DNS wire
    length (the packed bytes, plus each record's owner and header as a message carries them:
    an upper bound of what is stored, so the budget errs on the safe side)."""
    size = PACKED_OVERHEAD + len(packed)
    for rrset in rrsets:
        if rrset is not None:
            size += len(rrset) * (len(rrset.name) + sum(map(len, rrset.name.labels)) + 8)
    return size


def materialised_size(*rrsets: dns.rrset.RRset | None) -> int:
    """What the dnspython objects of ``rrsets`` cost (fitted with tracemalloc): the hot layer.
    SVCB/HTTPS parameters and CAPS/LOAD map entries are objects of their own, each counted."""
    size = ENTRY_OVERHEAD + int(WIRE_FACTOR * wire_size(*rrsets))
    for rrset in rrsets:
        if rrset is None:
            continue
        if rrset.rdtype == dns.rdatatype.RRSIG:
            size += len(rrset) * RRSIG_OVERHEAD
            continue
        for rd in rrset:
            size += RDATA_OVERHEAD
            params = getattr(rd, "params", None)  # SVCB, HTTPS (a dns.immutable.Dict)
            if isinstance(params, Mapping):
                size += PARAM_OVERHEAD * len(params)
            mapped = getattr(getattr(rd, "data", None), "value", None)  # CAPS, LOAD (records/mapdata.py)
            if isinstance(mapped, dict):
                size += MAP_ENTRY_OVERHEAD * len(mapped)
    return size


def _nkey(name: dns.name.Name) -> bytes | tuple[bytes, ...]:
    """A name's key in the RRset and negative caches: its labels joined in lower case. A bytes
    key hashes once (CPython caches it); a Name hashes label by label on every lookup, which
    would dominate a cache hit. A label holding a dot would make the join ambiguous: such a
    name keys by its lower-cased labels instead (a tuple never equals a bytes key)."""
    labels = name.labels
    joined = b".".join(labels).lower()
    if joined.count(b".") != len(labels) - 1:
        return tuple(label.lower() for label in labels)
    return joined


def _key_name(key: bytes | tuple[bytes, ...]) -> dns.name.Name:
    return dns.name.Name(key.split(b".") if type(key) is bytes else key)


def _spelled(key: bytes | tuple[bytes, ...], name: dns.name.Name) -> dns.name.Name | None:
    """``name`` when the key would not give it back exactly (upper case letters), else None."""
    if (b".".join(name.labels) if type(key) is bytes else name.labels) == key:
        return None
    return name


def _expand(why: str | tuple[str], name: dns.name.Name) -> str:
    return why[0].replace("\x00", name.to_text()) if type(why) is tuple else why
