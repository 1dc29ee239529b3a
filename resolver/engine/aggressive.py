"""Aggressive use of DNSSEC-validated cache (RFC 8198 §5.1): an NSEC or NSEC3 cached from one
answer proves NXDOMAIN or NODATA for every other name it covers, so the resolver answers those
without asking upstream — cheaper, and a random-subdomain flood stops at the resolver.

Only records that validated SECURE are in the cache, and they are used only while their
zone's keys are still trusted (a zone whose trust has expired or changed must be asked
again). The proof is the same code that checks upstream answers (resolver.dnssec.nsec and
nsec3), so a synthesised denial is exactly as strong as one received; in particular an NSEC3
opt-out span proves only INSECURE, so it never synthesises anything (RFC 8198 §5.3).
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
    authority: tuple[dns.rrset.RRset, ...]  # the NSECs/NSEC3s with their RRSIGs
    steps: tuple[str, ...] = ()  # NSEC3: what each record proved (trace)


def deny_from_cache(cache: Cache, name: dns.name.Name, qtype: int) -> Denial | None:
    """A SECURE NXDOMAIN/NODATA for (name, qtype) from cached NSECs or NSEC3s, or None (ask upstream)."""
    # DS lives in the parent (RFC 4035 §3.1.4.1): its denial comes from the parent's chain.
    probe = name.parent() if qtype == dns.rdatatype.DS and name != dns.name.root else name
    zone = cache.nsec_zone(probe)
    if zone is None:
        return None
    trust = cache.get_trust(zone)
    if trust is None or trust.status is not Status.SECURE:
        return None
    # Every name the proof may need: the name, its ancestors inside the zone (closest
    # encloser candidates) and the wildcard below each (RFC 4035 §5.4, RFC 5155 §8.3-8.7).
    targets = [name]
    encloser = name
    for _ in range(MAX_LABELS):
        if encloser == zone or encloser == dns.name.root:
            break
        encloser = encloser.parent()
        targets.append(encloser)
        targets.append(dns.name.Name((b"*",) + encloser.labels))
    entries = {}
    for target in targets:
        entry = cache.nsec_around(zone, target)
        if entry is not None:
            entries[(entry.name, entry.zone)] = entry
    params = cache.nsec3_params(zone)
    if params is not None:
        from ..dnssec.nsec3 import nsec3_digest
        for target in targets:
            entry = cache.nsec3_around(zone, nsec3_digest(target, params[2], params[1]))
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
    kind = "NSEC3" if any(r.rdtype == dns.rdatatype.NSEC3 for r in nsecs) else "NSEC"
    return Denial(rcode, f"from cached {kind} (RFC 8198): {check.why}", ttl, authority, check.steps)
