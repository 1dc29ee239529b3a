"""The result of resolving a compute identifier: endpoints, capabilities, live load, and how
far all of it is trusted. ``to_json`` is the schema of ``cid resolve --json`` and the HTTP API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack

from .status import Status


@dataclass(frozen=True, slots=True)
class Endpoint:
    target: str
    priority: int
    port: int | None
    alpn: tuple[str, ...]
    addresses: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "priority": self.priority, "port": self.port,
                "alpn": list(self.alpn), "addresses": list(self.addresses)}


@dataclass(frozen=True, slots=True)
class Resolution:
    identifier: str          # the cid: spelling
    name: str                # the DNS spelling (trailing dot)
    rcode: str               # NOERROR, NXDOMAIN or SERVFAIL
    status: Status
    why: str
    ttl: int
    endpoints: tuple[Endpoint, ...]
    capabilities: Mapping[str, Any]
    load: Mapping[str, Any] | None
    trace: tuple = field(default=(), compare=False, repr=False)
    # LOAD's TTL as received: LOAD whose ``ts`` is older than 5 × this is stale and ignored
    # when ranking by free capacity (spec/resolution.md §4).
    load_ttl: int | None = field(default=None, compare=False, repr=False)
    # Built (partly) from expired cache because every authority failed (RFC 8767).
    stale: bool = False
    # Some answer used could not be validated at all (indeterminate and not a failure: no
    # trust anchor covers it): what the validation policy refuses (spec/resolution.md §5.1).
    unvalidated: bool = field(default=False, compare=False, repr=False)
    # The LOAD itself came from expired cache (RFC 8767): never live capacity (discovery.md §5.5).
    load_stale: bool = field(default=False, compare=False, repr=False)

    @property
    def found(self) -> bool:
        """Something usable was resolved and nothing used was bogus."""
        return (self.rcode == "NOERROR" and self.status is not Status.BOGUS
                and bool(self.endpoints or self.capabilities))

    def to_json(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "name": self.name,
            "rcode": self.rcode,
            "status": self.status.value,
            "why": self.why,
            "ttl": self.ttl,
            "endpoints": [e.to_json() for e in self.endpoints],
            "capabilities": dict(self.capabilities),
            "load": dict(self.load) if self.load is not None else None,
            "stale": self.stale,
        }


# Compact form (the resolution cache) ------------------------------------------------------------
# A memoised Resolution as built objects costs about 1.1 KiB (the dataclasses, every string,
# tuple and dict); as msgpack bytes about 200 B. The cache keeps this form for identifiers that
# are not being hit and rebuilds the objects on a hit (engine/cache.py, its hot layer).
_RCODES = {r: r for r in ("NOERROR", "NXDOMAIN", "SERVFAIL")}
_STATUSES = {s.value: s for s in Status}


def pack(res: Resolution, identifier: str, name: str) -> bytes | None:
    """``res`` as bytes, without its ``why`` and ``ttl`` (the cache keeps those apart) and
    without the ``identifier`` and ``name`` it is stored under when they are the same text.
    None when it cannot be packed exactly (a trace, or a map with values msgpack lacks)."""
    if res.trace or type(res.capabilities) is not dict or (res.load is not None and type(res.load) is not dict):
        return None
    endpoints = [[None if e.target == res.name else e.target, e.priority, e.port, list(e.alpn),
                  list(e.addresses)]
                 for e in res.endpoints]
    row = [None if res.identifier == identifier else res.identifier, None if res.name == name else res.name,
           res.rcode, res.status.value, endpoints, res.capabilities, res.load, res.load_ttl, res.stale,
           res.unvalidated, res.load_stale]
    try:
        return msgpack.packb(row, use_bin_type=True, strict_types=True)
    except (TypeError, ValueError, OverflowError):  # e.g. a tuple, an IntEnum or a surrogate in a map
        return None


def unpack(data: bytes, identifier: str, name: str, why: str, ttl: int) -> Resolution:
    """The Resolution ``pack`` was given (with ``why`` and ``ttl``), as fresh objects."""
    ident_text, name_text, rcode, status, endpoints, caps, load, load_ttl, stale, unvalidated, load_stale = \
        msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=False)
    name = name if name_text is None else name_text
    return Resolution(identifier if ident_text is None else ident_text, name, _RCODES.get(rcode, rcode),
                      _STATUSES[status], why, ttl,
                      tuple(Endpoint(name if target is None else target, priority, port, tuple(alpn), tuple(addresses))
                            for target, priority, port, alpn, addresses in endpoints),
                      caps, load, (), load_ttl, stale, unvalidated, load_stale)
