"""Authenticated denial of existence with NSEC (RFC 4035 §5.4, RFC 7129, RFC 6840 §4).

Callers pass NSEC RRsets whose signatures they already verified (verify_rrset) for ``zone``.
Every function returns SECURE only when the proof is complete, otherwise BOGUS with the
precise missing piece. Names are compared with dnspython's canonical ordering (RFC 4034 §6.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.name
import dns.rdatatype
import dns.rrset

from resolver.dnssec.verify import Verdict
from resolver.status import Status

_NS, _SOA, _DS, _CNAME, _DNAME = (
    dns.rdatatype.NS,
    dns.rdatatype.SOA,
    dns.rdatatype.DS,
    dns.rdatatype.CNAME,
    dns.rdatatype.DNAME,
)


@dataclass(frozen=True)
class _Nsec:
    owner: dns.name.Name
    next: dns.name.Name
    types: frozenset[int]
    ttl: int

    @property
    def is_delegation(self) -> bool:
        """Parent-side NSEC of a zone cut: NS without SOA (RFC 6840 §4.1)."""
        return _NS in self.types and _SOA not in self.types

    def covers(self, name: dns.name.Name) -> bool:
        """owner < name < next canonically; the last NSEC of the chain (next <= owner, i.e. next
        is the apex) covers every name after its owner (RFC 4034 §4.1.1)."""
        if self.owner < self.next:
            return self.owner < name < self.next
        return name > self.owner

    def denies_below(self, name: dns.name.Name) -> str | None:
        """Why this NSEC may not deny ``name`` although its range spans it, or None.

        An NSEC owned by a proper ancestor of ``name`` that is a delegation (NS, no SOA) or a
        DNAME belongs to the parent side; names below it live in another zone or are
        redirected, so its range says nothing about them (RFC 6840 §4.1). Accepting it would
        let a parent deny every name of its child.
        """
        if name != self.owner and name.is_subdomain(self.owner):
            if self.is_delegation:
                return f"NSEC at delegation {self.owner} cannot deny {name} below it"
            if _DNAME in self.types:
                return f"NSEC at DNAME {self.owner} cannot deny {name} below it"
        return None


def nsec_types(rdata) -> frozenset[int]:
    """The RR types present in an NSEC type bitmap (RFC 4034 §4.1.2)."""
    types: set[int] = set()
    for window, bitmap in rdata.windows:
        for i, byte in enumerate(bitmap):
            for bit in range(8):
                if byte & (0x80 >> bit):
                    types.add(window * 256 + i * 8 + bit)
    return frozenset(types)


def _collect(nsecs: list[dns.rrset.RRset], zone: dns.name.Name) -> tuple[list[_Nsec], list[str]]:
    """Usable NSECs of ``zone`` and notes on the ones refused."""
    good: list[_Nsec] = []
    notes: list[str] = []
    for rrset in nsecs:
        if rrset.rdtype != dns.rdatatype.NSEC:
            notes.append(f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} is not NSEC")
            continue
        if not rrset.name.is_subdomain(zone):
            # Another zone's NSEC says nothing about this zone's names (and a signed NSEC from an
            # unrelated zone replayed here must not count).
            notes.append(f"NSEC {rrset.name} is outside zone {zone}")
            continue
        if len(rrset) != 1:
            notes.append(f"NSEC {rrset.name} has {len(rrset)} records (RFC 4034 §4 allows one)")
            continue
        rdata = rrset[0]
        if not rdata.next.is_subdomain(zone):
            notes.append(f"NSEC {rrset.name} next name {rdata.next} is outside zone {zone}")
            continue
        if rdata.next <= rrset.name and rdata.next != zone:
            # Only the last NSEC of a chain wraps, and it wraps to the apex (RFC 4034 §4.1.1); any
            # other "backwards" range would cover half the name space.
            notes.append(f"NSEC {rrset.name} wraps to {rdata.next}, not to the apex {zone}")
            continue
        good.append(_Nsec(rrset.name, rdata.next, nsec_types(rdata), rrset.ttl))
    return good, notes


def _secure(why: str, proof: str, *used: _Nsec) -> Verdict:
    # The denial may be cached no longer than the NSECs proving it (RFC 2308 §5, RFC 9077 §3).
    return Verdict(Status.SECURE, why, ttl=min(n.ttl for n in used), proof=proof)


def _bogus(why: str, notes: list[str]) -> Verdict:
    if notes:
        why += " [ignored: " + "; ".join(notes) + "]"
    return Verdict(Status.BOGUS, why)


def _matching(records: list[_Nsec], name: dns.name.Name) -> _Nsec | None:
    for r in records:
        if r.owner == name:
            return r
    return None


def _covering(records: list[_Nsec], name: dns.name.Name, notes: list[str]) -> _Nsec | None:
    for r in records:
        if r.covers(name):
            refusal = r.denies_below(name)
            if refusal:
                notes.append(refusal)
                continue
            return r
    return None


def _common_ancestor(a: dns.name.Name, b: dns.name.Name) -> dns.name.Name:
    _, _, common_labels = a.fullcompare(b)  # counts the root label
    return dns.name.Name(a.labels[len(a.labels) - common_labels :])


def closest_encloser(qname: dns.name.Name, cover: _Nsec, zone: dns.name.Name) -> dns.name.Name:
    """Deepest existing ancestor of a nonexistent qname, from the NSEC covering it (RFC 7129 §5.5).

    Both the owner and the next name exist, so their ancestors exist; the deeper common
    ancestor with qname is the closest encloser, and the next-closer name lies inside the
    covered range, so nothing deeper exists.
    """
    ce = max(_common_ancestor(qname, cover.owner), _common_ancestor(qname, cover.next), key=len)
    return ce if ce.is_subdomain(zone) else zone


def _wild(ce: dns.name.Name) -> dns.name.Name:
    return dns.name.Name((b"*",) + ce.labels)


def _check_qname(qname: dns.name.Name, zone: dns.name.Name) -> str | None:
    if not qname.is_subdomain(zone):
        return f"{qname} is not in zone {zone}"
    return None


def _prove_nonexistence(
    qname: dns.name.Name, records: list[_Nsec], zone: dns.name.Name, notes: list[str]
) -> tuple[_Nsec | None, str | None]:
    """(covering NSEC, None) when qname provably does not exist, else (None, why not)."""
    if _matching(records, qname):
        return None, f"an NSEC owned by {qname} shows it exists"
    cover = _covering(records, qname, notes)
    if cover is None:
        return None, f"no NSEC covers {qname}"
    if cover.next != qname and cover.next.is_subdomain(qname):
        return None, f"{qname} is an empty non-terminal (NSEC {cover.owner} -> {cover.next})"
    return cover, None


def prove_nxdomain(qname: dns.name.Name, nsecs: list[dns.rrset.RRset], zone: dns.name.Name) -> Verdict:
    """NXDOMAIN: an NSEC covers qname and one covers the wildcard at its closest encloser."""
    problem = _check_qname(qname, zone)
    if problem:
        return Verdict(Status.BOGUS, problem)
    records, notes = _collect(nsecs, zone)
    cover, problem = _prove_nonexistence(qname, records, zone, notes)
    if cover is None:
        return _bogus(f"NXDOMAIN {qname} unproven: {problem}", notes)
    ce = closest_encloser(qname, cover, zone)
    wild = _wild(ce)
    if _matching(records, wild):
        return _bogus(f"NXDOMAIN {qname} contradicted: wildcard {wild} exists", notes)
    wcover = _covering(records, wild, notes)
    if wcover is None:
        return _bogus(f"NXDOMAIN {qname} unproven: no NSEC covers wildcard {wild}", notes)
    return _secure(
        f"NXDOMAIN {qname}: NSEC {cover.owner} -> {cover.next} covers it; "
        f"closest encloser {ce}; NSEC {wcover.owner} -> {wcover.next} covers {wild}",
        "nxdomain",
        cover,
        wcover,
    )


def _nodata_refusal(n: _Nsec, qname: dns.name.Name, qtype: int, zone: dns.name.Name) -> str | None:
    tname = dns.rdatatype.to_text(qtype)
    if qtype in n.types:
        return f"NSEC at {n.owner} lists {tname}"
    if _CNAME in n.types:
        return f"NSEC at {n.owner} lists CNAME"
    if qtype == _DS:
        # DS lives in the parent: the child's apex NSEC (SOA set) cannot deny it (RFC 6840 §4.4).
        # The root has no parent, so its own apex NSEC answers `. DS`.
        if _SOA in n.types and not (n.owner == zone == dns.name.root):
            return f"NSEC at {n.owner} is the child apex (SOA set); DS is denied by the parent"
    elif n.is_delegation:
        # The parent-side NSEC at a cut only speaks for the parent's data (NS, DS); the child's
        # data is authoritative elsewhere (RFC 6840 §4.4).
        return f"NSEC at {n.owner} is parent-side of a delegation (NS without SOA)"
    if qtype != _DS and n.owner == zone and _SOA not in n.types:
        return f"NSEC at apex {zone} lacks SOA"
    return None


def prove_nodata(
    qname: dns.name.Name, qtype: int, nsecs: list[dns.rrset.RRset], zone: dns.name.Name
) -> Verdict:
    """NODATA: qname exists without qtype (or CNAME); also empty non-terminals and wildcard NODATA."""
    problem = _check_qname(qname, zone)
    if problem:
        return Verdict(Status.BOGUS, problem)
    qtype = dns.rdatatype.RdataType.make(qtype)
    tname = dns.rdatatype.to_text(qtype)
    records, notes = _collect(nsecs, zone)
    match = _matching(records, qname)
    if match is not None:
        refusal = _nodata_refusal(match, qname, qtype, zone)
        if refusal:
            return _bogus(f"NODATA {qname} {tname} unproven: {refusal}", notes)
        return _secure(f"NODATA {qname} {tname}: NSEC at {qname} lacks it", "nodata", match)
    cover = _covering(records, qname, notes)
    if cover is None:
        return _bogus(f"NODATA {qname} {tname} unproven: no NSEC matches or covers it", notes)
    if cover.next != qname and cover.next.is_subdomain(qname):
        # RFC 7129 §3.2: an empty non-terminal has no NSEC of its own; the NSEC before it, whose
        # next name lies below it, proves it exists and holds no data at all.
        return _secure(
            f"NODATA {qname} {tname}: empty non-terminal (NSEC {cover.owner} -> {cover.next})",
            "nodata-ent",
            cover,
        )
    ce = closest_encloser(qname, cover, zone)
    wild = _wild(ce)
    wmatch = _matching(records, wild)
    if wmatch is None:
        return _bogus(f"NODATA {qname} {tname} unproven: {qname} does not exist and no NSEC at {wild}", notes)
    refusal = _nodata_refusal(wmatch, wild, qtype, zone)
    if refusal:
        return _bogus(f"wildcard NODATA {qname} {tname} unproven: {refusal}", notes)
    return _secure(
        f"NODATA {qname} {tname}: no such name (NSEC {cover.owner} -> {cover.next}), wildcard {wild} lacks it",
        "nodata-wildcard",
        cover,
        wmatch,
    )


def prove_no_ds(child: dns.name.Name, nsecs: list[dns.rrset.RRset], zone: dns.name.Name) -> Verdict:
    """SECURE when the parent ``zone`` proves the delegation to ``child`` carries no DS.

    Proof is the parent-side NSEC at child with NS set and DS, SOA absent (RFC 4035 §5.2,
    RFC 6840 §4.4). An NSEC covering child proves there is no delegation at all: BOGUS.
    """
    if child == zone or not child.is_subdomain(zone):
        return Verdict(Status.BOGUS, f"{child} is not below zone {zone}")
    records, notes = _collect(nsecs, zone)
    match = _matching(records, child)
    if match is not None:
        if _SOA in match.types:
            return _bogus(f"no-DS {child} unproven: NSEC has SOA, it is the child's apex NSEC", notes)
        if _DS in match.types:
            return _bogus(f"no-DS {child} unproven: NSEC lists DS", notes)
        if _NS not in match.types:
            return _bogus(f"no-DS {child} unproven: NSEC lacks NS, {child} is not a delegation", notes)
        return _secure(f"no DS for {child}: parent NSEC at {child} has NS, no DS, no SOA", "no-ds", match)
    cover, problem = _prove_nonexistence(child, records, zone, notes)
    if cover is None:
        return _bogus(f"no-DS {child} unproven: {problem}", notes)
    # NSEC has no opt-out: a name the chain proves absent cannot be a delegation, so the
    # referral is forged. Taking it as "provably unsigned" would let an attacker serve any
    # name that does not exist as insecure data.
    return _bogus(f"no-DS {child} refuted: {child} does not exist in {zone} "
                  f"(NSEC {cover.owner} -> {cover.next}), so there is no delegation to it", notes)


def prove_wildcard_expansion(
    qname: dns.name.Name, wildcard: dns.name.Name, nsecs: list[dns.rrset.RRset], zone: dns.name.Name
) -> Verdict:
    """The answer for qname was synthesised from ``wildcard``: prove qname does not exist and that
    no encloser closer than the wildcard's parent does (RFC 4035 §5.3.4)."""
    problem = _check_qname(qname, zone)
    if problem:
        return Verdict(Status.BOGUS, problem)
    if not wildcard.is_wild() or not wildcard.is_subdomain(zone):
        return Verdict(Status.BOGUS, f"{wildcard} is not a wildcard in zone {zone}")
    source = wildcard.parent()
    if qname == wildcard or qname == source or not qname.is_subdomain(source):
        return Verdict(Status.BOGUS, f"{qname} cannot be an expansion of {wildcard}")
    records, notes = _collect(nsecs, zone)
    cover, problem = _prove_nonexistence(qname, records, zone, notes)
    if cover is None:
        return _bogus(f"wildcard expansion {qname} from {wildcard} unproven: {problem}", notes)
    ce = closest_encloser(qname, cover, zone)
    if ce != source:
        return _bogus(
            f"wildcard expansion {qname} from {wildcard} refuted: closest encloser is {ce}, not {source}",
            notes,
        )
    return _secure(
        f"{qname} synthesised from {wildcard}: NSEC {cover.owner} -> {cover.next} proves no closer match",
        "wildcard",
        cover,
    )
