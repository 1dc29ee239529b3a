"""QNAME minimisation (RFC 9156), relaxed mode: which name and type to ask a zone's servers.

A server of zone Z learns only the next label(s) below Z, not the whole name or the real
type, until the name is one label below the closest known cut. Minimised queries use QTYPE
A (RFC 9156 §2.1 notes that NS queries are mishandled by some servers and stand out; A is
what every server answers and what the resolver would ask anyway). The parent answers a
minimised query at a cut with the same referral (NS, DS or NSEC, glue) as the full one.

Relaxed mode (RFC 9156 §2.3, §4): a minimised query that fails (timeout, SERVFAIL, REFUSED,
lame, FORMERR) or gets an unvalidated NXDOMAIN — some servers deny empty non-terminals —
turns minimisation off for the rest of that lookup and the full name is asked. Only an
NXDOMAIN proven by validated NSEC ends the lookup early (RFC 8020: nothing exists below a
name that does not exist).

The number of minimisation steps is bounded as RFC 9156 §2.3 recommends (and as Unbound and
PowerDNS do): the first MINIMISE_ONE_LAB steps add one label each, later ones spread the
remaining labels over the steps left, and after MAX_MINIMISE_COUNT steps the full name is
asked, so a name of 127 labels costs at most 10 extra queries.
"""

from __future__ import annotations

import dns.name
import dns.rdatatype

MAX_MINIMISE_COUNT = 10
MINIMISE_ONE_LAB = 4
QTYPE = dns.rdatatype.A


class Minimiser:
    """Per-lookup state: ``next(zone)`` gives the name to ask the servers of ``zone``."""

    def __init__(self, qname: dns.name.Name, qtype: int, enabled: bool = True):
        self.qname = qname
        self.qtype = qtype
        self.enabled = enabled
        self.steps = 0
        self._known: dns.name.Name | None = None  # deepest name shown to exist below the cut
        self.fallback_reason: str | None = None

    def next(self, zone: dns.name.Name) -> tuple[dns.name.Name, int, bool]:
        """(name, type, minimised) for the next query to a server of ``zone``."""
        if not self.enabled or not self.qname.is_subdomain(zone):
            return self.qname, self.qtype, False
        base = zone
        if self._known is not None and self._known.is_subdomain(zone) and self._known != zone:
            base = self._known
        have, want = len(base), len(self.qname)
        if want - have <= 1:
            return self.qname, self.qtype, False
        if self.steps < MINIMISE_ONE_LAB:
            add = 1
        elif self.steps < MAX_MINIMISE_COUNT:
            add = max(1, (want - have) // (MAX_MINIMISE_COUNT - self.steps))
        else:
            return self.qname, self.qtype, False
        if have + add >= want:
            return self.qname, self.qtype, False
        return self.qname.split(have + add)[1], QTYPE, True

    def asked(self, name: dns.name.Name) -> None:
        """A minimised query for ``name`` was answered without a referral (the name exists,
        no cut there): the next query adds labels below it."""
        self.steps += 1
        self._known = name

    def referred(self) -> None:
        """A minimised query brought a referral: the next query starts below the new cut."""
        self.steps += 1

    def give_up(self, reason: str) -> None:
        self.enabled = False
        self.fallback_reason = reason
