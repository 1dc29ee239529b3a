"""The result of resolving a compute identifier: endpoints, capabilities, live load, and how
far all of it is trusted. ``to_json`` is the schema of ``cid resolve --json`` and the HTTP API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
