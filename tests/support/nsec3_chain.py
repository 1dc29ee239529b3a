"""NSEC3 test data built with dnspython (RFC 5155): chains from a list of names, and a signed
NSEC zone turned into an NSEC3 zone (our signer is NSEC-only, spec/dnssec.md).

Hashes come from dnspython's ``dns.dnssec.nsec3_hash`` (the oracle), never from the code
under test.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping

import dns.dnssec
import dns.name
import dns.node
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zone

from .signing import name as as_name

RRSIG, NSEC, NSEC3, NSEC3PARAM = (dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3,
                                  dns.rdatatype.NSEC3PARAM)


def hashed(owner: str | dns.name.Name, zone: str | dns.name.Name, salt: bytes = b"", iterations: int = 0) -> dns.name.Name:
    """The NSEC3 owner name of ``owner`` in ``zone``."""
    label = dns.dnssec.nsec3_hash(as_name(owner), salt, iterations, 1).lower()
    return dns.name.Name((label.encode(),) + as_name(zone).labels)


def nsec3_rdata(next_hash: bytes, types: Iterable[str | int], *, salt: bytes = b"", iterations: int = 0,
                opt_out: bool = False, algorithm: int = 1, flags: int | None = None):
    text_types = " ".join(t if isinstance(t, str) else dns.rdatatype.to_text(t) for t in types)
    salt_text = salt.hex() if salt else "-"
    nxt = base64.b32hexencode(next_hash).decode().rstrip("=").lower()
    f = flags if flags is not None else (1 if opt_out else 0)
    return dns.rdata.from_text(dns.rdataclass.IN, NSEC3, f"{algorithm} {f} {iterations} {salt_text} {nxt} {text_types}")


def nsec3_chain(zone: str | dns.name.Name, names: Mapping[str, Iterable[str]], *, salt: bytes = b"",
                iterations: int = 0, opt_out: bool = False, ttl: int = 300) -> dict[dns.name.Name, dns.rrset.RRset]:
    """Complete NSEC3 chain: names (absolute or relative to zone, including empty non-terminals
    with no types) → their RR types; RRSIG is added to each non-empty bitmap that is not an
    insecure delegation (NS without DS). Keyed by the original (unhashed) name."""
    zone = as_name(zone)
    owners = {dns.name.from_text(n, zone): list(t) for n, t in names.items()}
    owners.setdefault(zone, ["SOA", "NS", "DNSKEY", "NSEC3PARAM"])
    digests = {n: base64.b32hexdecode(dns.dnssec.nsec3_hash(n, salt, iterations, 1)) for n in owners}
    ordered = sorted(owners, key=lambda n: digests[n])
    chain: dict[dns.name.Name, dns.rrset.RRset] = {}
    for i, owner in enumerate(ordered):
        nxt = digests[ordered[(i + 1) % len(ordered)]]
        types = set(owners[owner])
        insecure_cut = "NS" in types and "DS" not in types and "SOA" not in types
        if types and not insecure_cut:
            types.add("RRSIG")
        rd = nsec3_rdata(nxt, sorted(types, key=dns.rdatatype.from_text), salt=salt, iterations=iterations,
                         opt_out=opt_out)
        rrset = dns.rrset.RRset(hashed(owner, zone, salt, iterations), dns.rdataclass.IN, NSEC3)
        rrset.add(rd, ttl)
        chain[owner] = rrset
    return chain


def to_nsec3(zone: dns.zone.Zone, keys, *, salt: bytes = b"", iterations: int = 0, opt_out: bool = False,
             inception: int, expiration: int) -> None:
    """Turn a zone signed with NSEC into one signed with NSEC3 (in place), the way
    dnssec-signzone -3 builds it: one NSEC3 per authoritative name and empty non-terminal,
    insecure delegations (and the empty non-terminals only they need) left out under opt-out;
    an NSEC3PARAM at the apex; the new RRsets signed with the zone's ZSKs (ZoneKey objects)."""
    origin = zone.origin
    rdclass = zone.rdclass
    ttl = zone.get_rdataset(origin, dns.rdatatype.SOA)[0].minimum
    for node in zone.nodes.values():
        node.delete_rdataset(rdclass, NSEC)
        node.delete_rdataset(rdclass, RRSIG, NSEC)
    cuts = {_abs(origin, n) for n, node in zone.nodes.items()
            if node.get_rdataset(rdclass, dns.rdatatype.NS) is not None and _abs(origin, n) != origin}
    names: dict[dns.name.Name, list[str]] = {}
    for n, node in zone.nodes.items():
        owner = _abs(origin, n)
        if any(owner != c and owner.is_subdomain(c) for c in cuts):
            continue  # glue / occluded: not authoritative
        types = [dns.rdatatype.to_text(r.rdtype) for r in node.rdatasets if r.rdtype != RRSIG]
        if owner in cuts:
            types = [t for t in types if t in ("NS", "DS")]
            if opt_out and "DS" not in types:
                continue
        if owner == origin:
            types.append("NSEC3PARAM")
        names[owner] = types
    for owner in list(names):  # empty non-terminals
        parent = owner
        while parent != origin:
            parent = parent.parent()
            names.setdefault(parent, [])
    chain = nsec3_chain(origin, {n.to_text(): t for n, t in names.items()}, salt=salt, iterations=iterations,
                        opt_out=opt_out, ttl=ttl)
    param = dns.rdata.from_text(rdclass, NSEC3PARAM, f"1 0 {iterations} {salt.hex() if salt else '-'}")
    zsks = [k for k in keys if not k.flags & 1] or list(keys)
    apex = zone.find_node(origin)
    rds = apex.find_rdataset(rdclass, NSEC3PARAM, create=True)
    rds.add(param, 0)
    _sign_into(zone, origin, rds, zsks, inception, expiration)
    for rrset in chain.values():
        node = zone.find_node(rrset.name, create=True)
        target = node.find_rdataset(rdclass, NSEC3, create=True)
        target.update(rrset)
        target.ttl = rrset.ttl
        _sign_into(zone, rrset.name, target, zsks, inception, expiration)


def _sign_into(zone: dns.zone.Zone, owner: dns.name.Name, rdataset: dns.rdataset.Rdataset, keys, inception: int,
               expiration: int) -> None:
    rrset = dns.rrset.RRset(owner, rdataset.rdclass, rdataset.rdtype)
    rrset.update(rdataset)
    rrset.ttl = rdataset.ttl
    sigs = zone.find_node(owner).find_rdataset(zone.rdclass, RRSIG, rdataset.rdtype, create=True)
    for key in keys:
        sigs.add(dns.dnssec.sign(rrset, key.private_key, zone.origin, key.dnskey, inception=inception,
                                 expiration=expiration, origin=zone.origin, policy=dns.dnssec.allow_all_policy),
                 rdataset.ttl)


def _abs(origin: dns.name.Name, n: dns.name.Name) -> dns.name.Name:
    return n if n.is_absolute() else n.derelativize(origin)


def nsec3_federation(fed, *, opt_out=("cid.",), salt: bytes = b"", iterations: dict[str, int] | None = None):
    """The signed test federation (support/federation.py) with cid., cmcc.cid. and bj.cmcc.cid.
    turned into NSEC3 zones, in place; ``opt_out``: the zones whose chains use opt-out (cid.
    by default, so its unsigned child open.cid. has no NSEC3); ``iterations``: per zone."""
    for zone in ("cid.", "cmcc.cid.", "bj.cmcc.cid."):
        to_nsec3(fed.zones[zone], [fed.keys[zone]], salt=salt, iterations=(iterations or {}).get(zone, 0),
                 opt_out=zone in opt_out, inception=int(fed.now - 3600), expiration=int(fed.now + 10 * 86400))
    return fed
