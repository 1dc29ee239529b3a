"""The outcome of one lookup (name, type): answer, validation status and how it was reached."""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.name
import dns.rrset

from ..status import Status
from .trace import TraceEvent

# Weakest first: the status of a combination is the minimum (RFC 4035 §4.3 ordering of trust).
STRENGTH = {Status.BOGUS: 0, Status.INDETERMINATE: 1, Status.INSECURE: 2, Status.SECURE: 3}


def weakest(*statuses: Status) -> Status:
    return min(statuses, key=STRENGTH.__getitem__)


@dataclass(frozen=True)
class Lookup:
    """Result of ``Resolver.lookup``/an Engine run.

    ``rcode`` is "NOERROR", "NXDOMAIN" or "SERVFAIL" (upstream failure or bogus data, as a
    validating resolver answers). ``rrset`` is the final answer (None for negative answers
    and failures; never set when the status is bogus); ``chain`` are the CNAMEs followed
    on the way (their signatures in ``chain_rrsigs``), ``rrsigs`` the signatures of ``rrset``. ``ttl`` is the least TTL involved.
    """

    qname: dns.name.Name
    rdtype: int
    rcode: str
    status: Status
    why: str
    ttl: int
    rrset: dns.rrset.RRset | None = None
    rrsigs: dns.rrset.RRset | None = None
    chain: tuple[dns.rrset.RRset, ...] = ()
    authority: tuple[dns.rrset.RRset, ...] = ()
    trace: tuple[TraceEvent, ...] = field(default=(), compare=False)
    # RRSIGs of each CNAME in ``chain`` (None where unsigned), so a front end can hand the
    # whole chain to DNSSEC-aware clients (RFC 4035 §3.2.1).
    chain_rrsigs: tuple[dns.rrset.RRset | None, ...] = ()
    # Served from expired cache because every authority failed (RFC 8767); ``why`` says so.
    stale: bool = False

    def replaced(self, **changes) -> Lookup:
        """``dataclasses.replace(self, **changes)`` without its per-call field introspection
        (about 6 us; every lookup's trace and every hot hit's TTL go through it). Lookup has no
        __post_init__, InitVar or slots, so a copy of its fields with ``changes`` set is what
        replace builds; an unknown field is a TypeError, as there (tests/test_result.py)."""
        fields = self.__dict__
        unknown = changes.keys() - fields.keys()
        if unknown:
            raise TypeError(f"Lookup has no field {sorted(unknown)[0]!r}")
        new = object.__new__(type(self))
        state = new.__dict__
        state.update(fields)
        state.update(changes)
        return new

    @property
    def found(self) -> bool:
        return self.rcode == "NOERROR" and self.rrset is not None
