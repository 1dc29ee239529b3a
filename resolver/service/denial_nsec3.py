"""The flood fast path for zones signed with NSEC3 (RFC 5155, RFC 8198): NXDOMAIN for a name one
label below the apex of a zone whose NSEC3 chain is cached — the random-subdomain flood's shape.

Such a name's proof (RFC 5155 §8.4) is always the same three records: the NSEC3 matching the apex
(the closest encloser), the one covering the name's hash (the next closer) and the one covering
the hash of ``*.<apex>``. Only the middle one depends on the name: one SHA-1 (RFC 9276's zero
iterations; at most MAX_ITERATIONS), a bisection in the cache's chain (``Cache.nsec3_around``,
asked for every query: never a stale mirror), and the records' bytes prepared once per cache
entry. The decision is resolver.dnssec.nsec3's for exactly the records the engine's
deny_from_cache would gather (tests/test_service_aggressive_nsec3.py compares both, and the
responses byte for byte): anything else — an opt-out span, a hash that matches, deeper names,
NODATA, a zone with NSEC records cached too — goes the slow way.
"""

from __future__ import annotations

import dns.name
import dns.rdatatype

from ..dnssec.nsec3 import MAX_ITERATIONS, digest_wire, nsec3_digest, usable_nsec3s

_SOA, _NS, _DNAME = dns.rdatatype.SOA, dns.rdatatype.NS, dns.rdatatype.DNAME


class Nsec3Chain:
    """A zone's cached NSEC3 parameters and the two digests every flood proof needs."""

    __slots__ = ("params", "salt", "iterations", "apex", "wildcard", "zone_key")

    def __init__(self, zone: dns.name.Name, params: tuple[int, int, bytes]):
        from ..engine.cache_entries import _nkey
        self.zone_key = _nkey(zone)  # the zone's key in the cache (Cache.nsec3_around_key)
        self.params = params
        self.iterations, self.salt = params[1], params[2]
        self.apex = nsec3_digest(zone, self.salt, self.iterations)
        self.wildcard = nsec3_digest(dns.name.Name((b"*",) + zone.labels), self.salt, self.iterations)

    def digest(self, name_wire: bytes) -> bytes:
        """RFC 5155 §5 over a name's canonical (lower-case) wire form."""
        return digest_wire(name_wire, self.salt, self.iterations)


class Nsec3Facts:
    """What the proof reads of one cached NSEC3 entry."""

    __slots__ = ("owner", "next", "types", "opt_out", "ttl", "wraps")

    def __init__(self, record):
        self.owner, self.next, self.types = record.owner, record.next, record.types
        self.opt_out, self.ttl = record.opt_out, record.ttl
        self.wraps = record.next <= record.owner

    def covers(self, digest: bytes) -> bool:
        if self.wraps:
            return digest > self.owner or digest < self.next
        return self.owner < digest < self.next


def nsec3_facts(entry, zone: dns.name.Name) -> Nsec3Facts | None:
    """The facts of a cached NSEC3 entry, or None if the proofs could not use it."""
    rrset, _ = entry.records()
    usable, _ = usable_nsec3s([rrset], zone)
    return Nsec3Facts(usable[0]) if len(usable) == 1 else None


def prove_apex_child_nxdomain(chain: Nsec3Chain, digest: bytes, near, apex, wild) -> int | None:
    """resolver.dnssec.nsec3.prove_nxdomain for a name one label below the apex, from the three
    facts the cache gives around the name's, the apex's and the wildcard's digests: the proof
    TTL when SECURE, else None (opt-out spans are INSECURE, matches refute it: the slow path)."""
    if chain.iterations > MAX_ITERATIONS:
        return None
    # closest encloser (§8.3): the name itself must not match; the apex must, and must be a
    # zone apex (not DNAME, not a parent-side delegation record), and the next closer — the
    # name — be covered.
    for facts in (near, apex, wild):
        if facts.owner == digest:
            return None
    if apex.owner != chain.apex or _DNAME in apex.types or (_NS in apex.types and _SOA not in apex.types):
        return None
    if near.opt_out or not near.covers(digest):
        return None
    if wild.owner == chain.wildcard or not wild.covers(chain.wildcard):
        return None
    return min(near.ttl, apex.ttl, wild.ttl)
