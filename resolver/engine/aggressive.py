"""Aggressive use of DNSSEC-validated cache (RFC 8198 §5.1): an NSEC cached from one answer
proves NXDOMAIN or NODATA for every other name it covers, so the resolver answers those
without asking upstream — cheaper, and a random-subdomain flood stops at the resolver.

Only NSECs that validated SECURE are in the NSEC cache, and they are used only while their
zone's keys are still trusted (a zone whose trust has expired or changed must be asked
again). The proof is the same code that checks upstream answers (resolver.dnssec.nsec), so
a synthesised denial is exactly as strong as one received.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.name
import dns.rdatatype
import dns.rrset

from ..status import Status
from .cache import Cache
from .validate import prove

MAX_LABELS = 128  # bounds the wildcard walk (a DNS name has at most 127 labels)


@dataclass(frozen=True)
class Denial:
    rcode: str  # "NXDOMAIN" or "NOERROR" (NODATA)
    why: str
    ttl: int
    authority: tuple[dns.rrset.RRset, ...]  # the NSECs with their RRSIGs


def deny_from_cache(cache: Cache, name: dns.name.Name, qtype: int) -> Denial | None:
    """A SECURE NXDOMAIN/NODATA for (name, qtype) from cached NSECs, or None (ask upstream)."""
    # DS lives in the parent (RFC 4035 §3.1.4.1): its denial comes from the parent's chain.
    probe = name.parent() if qtype == dns.rdatatype.DS and name != dns.name.root else name
    zone = cache.nsec_zone(probe)
    if zone is None:
        return None
    trust = cache.get_trust(zone)
    if trust is None or trust.status is not Status.SECURE:
        return None
    # The NSEC matching or covering the name, and those around the wildcards at each
    # possible closest encloser (RFC 4035 §5.4): the proof picks what it needs.
    entries = {}
    targets = [name]
    encloser = name
    for _ in range(MAX_LABELS):
        if encloser == zone or encloser == dns.name.root:
            break
        encloser = encloser.parent()
        targets.append(dns.name.Name((b"*",) + encloser.labels))
    for target in targets:
        entry = cache.nsec_around(zone, target)
        if entry is not None:
            entries[(entry.name, entry.zone)] = entry
    if not entries:
        return None
    records = [e.records() for e in entries.values()]  # built from the packed cache form once
    nsecs = [nsec for nsec, _ in records]
    check = prove("nxdomain", name, nsecs, zone)
    rcode = "NXDOMAIN"
    if check.status is not Status.SECURE:
        check = prove("nodata", name, qtype, nsecs, zone)
        rcode = "NOERROR"
    if check.status is not Status.SECURE:
        return None
    left = min(cache.remaining(e) for e in entries.values())
    ttl = min(left, check.ttl) if check.ttl is not None else left
    authority = tuple(r for pair in records for r in pair)
    return Denial(rcode, f"from cached NSEC (RFC 8198): {check.why}", ttl, authority)
