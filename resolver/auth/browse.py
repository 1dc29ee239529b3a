"""Browse names (spec/discovery.md §1–2) derived from a zone's own data.

An **identifier** of zone N is a name at or below N, not at or below a zone cut, none of
whose labels below N starts with ``_``, that owns SVCB or CAPS. It is listed by
``_compute.N PTR <identifier>`` and by one sub-type PTR per selector its CAPS carries with a
label-safe value (``registry.browse_names``); every delegated child C of N is listed by
``_children._compute.N PTR C``. PTRs take the TTL of the CAPS they mirror (else the SVCB's,
else the NS RRset's for ``_children``), unless the PTR RRset already has one.

Two users, one rule:

* ``cid zone sign`` (static zones): ``add_browse_names(zone)`` adds the PTRs the zone's data
  calls for to a dnspython zone before it is signed (PTRs already there stay: operators may
  list more);
* the live server (``update``): ``listing(apex, name, rrsets)`` says which browse names list
  a name given its RRsets before and after a change, and the difference becomes PTR adds
  and deletes in the same change.
"""

from __future__ import annotations

from collections.abc import Mapping

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.PTR
import dns.zone

from ..records import capsmap, registry

SVCB, NS, PTR = 64, 2, 12
CAPS, LOAD = 65380, 65381
DEFAULT_TTL = 3600
# Data at a name as the live path holds it: rdtype -> (ttl, [rdata wire]).
RRsets = Mapping[int, tuple[int, list[bytes]]]


def is_identifier_name(apex: dns.name.Name, name: dns.name.Name) -> bool:
    """Whether ``name`` may be an identifier of the zone at ``apex`` (no ``_`` label below it)."""
    if not name.is_subdomain(apex):
        return False
    relative = name.labels[: len(name.labels) - len(apex.labels)]
    return not any(label.startswith(b"_") for label in relative)


def service_apex(apex: dns.name.Name) -> dns.name.Name:
    """``_compute.N``: every browse name of N is at or below it."""
    return registry.browse_name(apex)


def is_browse_name(apex: dns.name.Name, name: dns.name.Name) -> bool:
    return name.is_subdomain(service_apex(apex))


def caps_maps(rdatas: list[bytes]) -> list[dict]:
    maps = []
    for rdata in rdatas:
        try:
            maps.append(capsmap.decode(rdata))
        except capsmap.CapsError:
            continue
    return maps


def listing(apex: dns.name.Name, name: dns.name.Name, rrsets: RRsets, *,
            below_cut: bool = False) -> dict[dns.name.Name, int]:
    """The browse names listing ``name`` (to their PTR TTL) given the name's RRsets."""
    if below_cut or not is_identifier_name(apex, name) or (name != apex and NS in rrsets):
        return {}
    caps = rrsets.get(CAPS)
    svcb = rrsets.get(SVCB)
    if not caps and not svcb:
        return {}
    ttl = caps[0] if caps else svcb[0]
    names = {registry.browse_name(apex): ttl}
    for mapping in caps_maps(caps[1]) if caps else ():
        for browse in registry.browse_names(apex, mapping)[1:]:
            names[browse] = ttl
    return names


def child_listing(apex: dns.name.Name, name: dns.name.Name, rrsets: RRsets, *,
                  below_cut: bool = False) -> dict[dns.name.Name, int]:
    """``{_children._compute.N: ttl}`` when ``name`` is a delegation of N, else empty."""
    if name == apex or below_cut or NS not in rrsets or not name.is_subdomain(apex):
        return {}
    return {registry.children_name(apex): rrsets[NS][0]}


def ptr_rdata(target: dns.name.Name) -> bytes:
    return target.to_wire()


# --- static zones (cid zone sign) -----------------------------------------------------------

def add_browse_names(zone: dns.zone.Zone) -> int:
    """Add to ``zone`` (a dnspython zone, before signing) every browse PTR its data calls for:
    ``_compute``/sub-type PTRs for its identifiers and ``_children`` PTRs for its delegations.
    Existing PTRs stay. Returns how many PTRs were added."""
    apex = zone.origin
    rdclass = zone.rdclass
    entries = []
    for key, node in zone.nodes.items():
        name = key.derelativize(apex) if not key.is_absolute() else key
        entries.append((name, node))
    cuts = {name for name, node in entries
            if name != apex and node.get_rdataset(rdclass, dns.rdatatype.NS) is not None}
    wanted: dict[dns.name.Name, dict[dns.name.Name, int]] = {}
    for name, node in entries:
        if any(name != cut and name.is_subdomain(cut) for cut in _ancestors_in(name, apex, cuts)):
            continue
        rrsets = {int(rds.rdtype): (rds.ttl, [rd.to_wire() for rd in rds]) for rds in node.rdatasets
                  if rds.rdtype in (SVCB, CAPS, NS)}
        for browse, ttl in {**listing(apex, name, rrsets), **child_listing(apex, name, rrsets)}.items():
            wanted.setdefault(browse, {})[name] = ttl
    added = 0
    for browse, targets in sorted(wanted.items()):
        owner = browse.relativize(apex) if zone.relativize else browse
        rds = zone.find_rdataset(owner, dns.rdatatype.PTR, create=True)
        have = {rd.target.derelativize(apex) for rd in rds}
        ttl = rds.ttl if len(rds) else min(targets.values())
        for target in sorted(targets):
            if target not in have:
                rds.add(dns.rdtypes.ANY.PTR.PTR(rdclass, dns.rdatatype.PTR, target), ttl)
                added += 1
    return added


def _ancestors_in(name: dns.name.Name, apex: dns.name.Name, cuts: set[dns.name.Name]):
    if not cuts:
        return ()
    found = []
    parent = name
    while parent != apex and len(parent) > len(apex):
        parent = parent.parent()
        if parent in cuts:
            found.append(parent)
    return found


__all__ = ["add_browse_names", "child_listing", "is_browse_name", "is_identifier_name", "listing",
           "service_apex"]
