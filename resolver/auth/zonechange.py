"""Incremental change of a served zone: replace, add or delete RRsets without a pass over the zone.

This is the primitive DNS UPDATE, lease expiry and live LOAD refreshes build on
(spec/authoritative.md §3). A change names RRsets (``put``: replace or add, with the RRSIGs that
cover it; ``delete``); ``apply`` then, in one step that readers never see half done:

* rewrites the blob of each name changed (``zonedb``), creating or removing the name — and
  the empty non-terminals above it — in the ordered indexes;
* keeps the denial chain right: in an NSEC zone the NSEC at a name whose types changed gets a
  new bitmap, a new name gets an NSEC pointing where its predecessor pointed and the
  predecessor now points to it, a removed name's predecessor takes over its next name; in an
  NSEC3 zone the same in hash order (a new name and each new empty non-terminal get an NSEC3
  with the chain's parameters and the predecessor's flags; names below a cut get none, nor
  under opt-out do unsigned delegations and the empty non-terminals only they need, RFC 5155
  §7.1, as dnssec-signzone);
* has every NSEC/NSEC3 RRset it recomputed signed by ``sign(owner, type, ttl, rdatas)`` →
  RRSIG rdatas (``rrset_signer`` makes one from zone keys; in a signed zone a recomputed
  RRset without ``sign`` is refused before anything changes). A caller that wants to sign
  itself passes the NSEC RRsets as changes of their own (with their RRSIGs): those are used
  as given;
* reports the names touched (``ChangeReport.dependencies``), by which ``ZoneStore.update``
  drops exactly the cached responses built from them.

Work is a handful of dict operations and bisections per changed name (plus one hash per new
name in an NSEC3 zone). What a change cannot do incrementally is refused, not done slowly:
a delegation added above existing names or removed from above glue that stays (names change
between authoritative and occluded; reload the zone), NSEC3PARAM or a DNAME at the apex (the whole
chain or zone changes: ``whole_zone``, done by rebuilding the chain).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype

from . import nsec3 as n3
from . import rdatawire, wirename
from .respcache import soa_dependency
from .zonedb import (CNAME, DNAME, DS, NS, NSEC, NSEC3, NSEC3PARAM, RRSIG, SOA, Sets, ZoneData,
                     decode_sets, encode)

Signer = Callable[[dns.name.Name, int, int, list[bytes]], list[bytes]]
_DNSSEC_ONLY = frozenset({NSEC, RRSIG})
_BESIDE_CNAME = frozenset({CNAME, NSEC, RRSIG})


@dataclass(frozen=True)
class Change:
    """One RRset: ``rdatas`` (wire form) replace it, or delete it when None."""

    owner: dns.name.Name
    rdtype: int
    ttl: int = 0
    rdatas: tuple[bytes, ...] | None = None
    sigs: tuple[bytes, ...] = ()


def put(owner: dns.name.Name | str, rdataset: dns.rdataset.Rdataset,
        sigs: dns.rdataset.Rdataset | Iterable[bytes] | None = None) -> Change:
    """Replace (or add) the RRset of ``rdataset``'s type at ``owner``, with its RRSIGs."""
    name = dns.name.from_text(owner) if isinstance(owner, str) else owner
    rdatas = tuple(rd.to_wire() for rd in rdataset)
    if isinstance(sigs, dns.rdataset.Rdataset):
        sig_wire = tuple(rd.to_wire() for rd in sigs)
    else:
        sig_wire = tuple(sigs or ())
    return Change(name, int(rdataset.rdtype), rdataset.ttl, rdatas, sig_wire)


def delete(owner: dns.name.Name | str, rdtype: int | str) -> Change:
    name = dns.name.from_text(owner) if isinstance(owner, str) else owner
    return Change(name, int(dns.rdatatype.RdataType.make(rdtype)))


@dataclass
class ChangeReport:
    names: list[bytes] = field(default_factory=list)  # canonical keys of names whose data changed
    dependencies: set[bytes] = field(default_factory=set)
    signed: list[tuple[dns.name.Name, int]] = field(default_factory=list)  # NSEC/NSEC3 re-signed
    whole_zone: bool = False
    dropped: int = 0  # cached responses dropped (set by ZoneStore.update)


def rrset_signer(keys, inception: int | None = None, expiration: int | None = None) -> Signer:
    """A ``sign`` callback signing with the zone's ZSKs (its KSKs when it has only those)."""
    from .signer import signature_window  # the window ``cid zone sign`` uses
    zsks = [k for k in keys if not k.is_ksk] or list(keys)

    def sign(owner: dns.name.Name, rdtype: int, ttl: int, rdatas: list[bytes]) -> list[bytes]:
        start, end = signature_window(inception, expiration, None)
        rrset = dns.rrset.RRset(owner, dns.rdataclass.IN, rdtype)
        for rd in rdatas:
            rrset.add(dns.rdata.from_wire(dns.rdataclass.IN, rdtype, rd, 0, len(rd)), ttl)
        out = []
        for key in zsks:
            sig = dns.dnssec.sign(rrset, key.private_key, key.zone, key.dnskey,
                                  inception=start, expiration=end)
            out.append(sig.to_wire())
        return out
    return sign


class _Staged:
    """New RRsets per name, before they are committed."""

    def __init__(self, zone: ZoneData):
        self.zone = zone
        self.sets: dict[bytes, Sets] = {}
        self.wires: dict[bytes, bytes] = {}
        self.hashed: dict[bytes, Sets] = {}

    def of(self, key: bytes, wire: bytes | None = None) -> Sets:
        found = self.sets.get(key)
        if found is None:
            blob = self.zone.blobs.get(key)
            found = self.sets[key] = decode_sets(blob) if blob is not None else {}
            self.wires[key] = wire if wire is not None else self.zone.owner_wire(key)
        return found

    def hashed_of(self, key: bytes) -> Sets:
        found = self.hashed.get(key)
        if found is None:
            blob = self.zone.hashed.get(key)
            found = self.hashed[key] = decode_sets(blob) if blob is not None else {}
        return found


def apply(zone: ZoneData, changes: Iterable[Change], *, sign: Signer | None = None) -> ChangeReport:
    """Apply ``changes`` to ``zone`` (module text). Raises ValueError, changing nothing, for a
    change it cannot make."""
    report = ChangeReport()
    staged = _Staged(zone)
    apex = zone.apex
    explicit_chain: set[bytes] = set()
    before: dict[bytes, bool] = {}
    for change in changes:
        key = wirename.key_of(change.owner)
        if not key.startswith(apex):
            raise ValueError(f"{change.owner} is not in zone {zone.origin}")
        rdtype = change.rdtype
        if rdtype == NSEC3 and zone.nsec3 is not None:
            sets = staged.hashed_of(key)
        else:
            sets = staged.of(key, change.owner.to_wire())
            before.setdefault(key, _exists(sets))
        if rdtype == NSEC:
            explicit_chain.add(key)
        if change.rdatas:
            sets[(rdtype, 0)] = [change.ttl, dict.fromkeys(change.rdatas)]
        else:
            sets.pop((rdtype, 0), None)
        # Old signatures never outlive the data they signed.
        if change.sigs:
            sets[(RRSIG, rdtype)] = [change.ttl, dict.fromkeys(change.sigs)]
        else:
            sets.pop((RRSIG, rdtype), None)
        if key == apex and rdtype in (NSEC3PARAM, DNAME):
            report.whole_zone = True
        if {t for t, _ in sets} - _BESIDE_CNAME and (CNAME, 0) in sets:
            raise ValueError(f"{change.owner}: CNAME and other data")
    _check_cuts(zone, staged, before)
    if zone.nsec3 is not None:
        _nsec3_upkeep(zone, staged, before, report)
    elif NSEC in _apex_types(zone, staged):
        _nsec_upkeep(zone, staged, before, explicit_chain, report)
    _sign(zone, staged, report, sign)
    _commit(zone, staged, before, report)
    return report


def _exists(sets: Sets) -> bool:
    """Whether a name has data of its own (an NSEC and signatures alone do not count)."""
    return any(t not in _DNSSEC_ONLY for t, _ in sets)


def _apex_types(zone: ZoneData, staged: _Staged) -> set[int]:
    sets = staged.sets.get(zone.apex)
    if sets is None:
        node = zone.node(zone.apex)
        return set(node.rrsets) if node is not None else set()
    return {t for t, _ in sets}


def _below_cut(zone: ZoneData, staged: _Staged, key: bytes) -> bool:
    """Strictly below a zone cut as the batch leaves the zone: an NS the batch adds or removes
    at an ancestor counts (a journal replay brings a delegation and its glue in one batch)."""
    for ancestor in wirename.ancestor_keys(key, zone.apex)[1:-1]:
        sets = staged.sets.get(ancestor)
        if (NS, 0) in sets if sets is not None else ancestor in zone.cuts:
            return True
    return False


def _check_cuts(zone: ZoneData, staged: _Staged, before: dict[bytes, bool]) -> None:
    for key, sets in staged.sets.items():
        if key == zone.apex:
            if (SOA, 0) not in sets or (NS, 0) not in sets:
                raise ValueError(f"zone {zone.origin}: the apex must keep its SOA and NS")
            continue
        was_cut = key in zone.cuts
        is_cut = (NS, 0) in sets
        if was_cut != is_cut and _keeps_descendants(zone, staged, key):
            raise ValueError(f"{wirename.name_of_key(key)}: a delegation added or removed above "
                             "existing names changes what is occluded; reload the zone instead")


def _keeps_descendants(zone: ZoneData, staged: _Staged, key: bytes) -> bool:
    """Whether a name below ``key`` exists before and after the batch (one that the batch
    removes with the cut, as a journal replay removes a delegation and its glue, does not)."""
    names = zone.names
    i = names.bisect_right(key)
    while i < len(names) and names[i].startswith(key):
        sets = staged.sets.get(names[i])
        if sets is None or _exists(sets):
            return True
        i += 1
    return False


def _types(sets: Sets, *, cut: bool, rrsig: bool) -> list[bytes]:
    """NSEC/NSEC3 bitmap type mnemonics of a name (RFC 4034 §4.1.2: at a cut only NS, DS and
    the DNSSEC types are authoritative)."""
    types = {t for t, _ in sets if t not in (NSEC, RRSIG, NSEC3)}
    if cut:
        types &= {NS, DS}
    if rrsig:
        types.add(RRSIG)
    return [dns.rdatatype.to_text(t).encode() for t in sorted(types)]


def _successor(old, removed: set, added: list, k):
    """The element after ``k`` in (``old`` − ``removed``) ∪ ``added`` (sorted), wrapping."""
    return _neighbour(old, removed, added, k, after=True)


def _predecessor(old, removed: set, added: list, k):
    return _neighbour(old, removed, added, k, after=False)


def _neighbour(old, removed: set, added: list, k, *, after: bool):
    import bisect
    n = len(old)
    found_old = None
    if after:
        i = old.bisect_right(k)
        for j in range(i, n):
            if old[j] not in removed:
                found_old = old[j]
                break
        a = bisect.bisect_right(added, k)
        found_new = added[a] if a < len(added) else None
    else:
        i = old.bisect_left(k) - 1
        for j in range(i, -1, -1):
            if old[j] not in removed:
                found_old = old[j]
                break
        a = bisect.bisect_left(added, k) - 1
        found_new = added[a] if a >= 0 else None
    candidates = [c for c in (found_old, found_new) if c is not None]
    if candidates:
        return min(candidates) if after else max(candidates)
    # wrap around: the first (last) element of the whole final set
    rest = [c for c in (old if after else reversed(old)) if c not in removed][:1] + (added[:1] if after else added[-1:])
    if not rest:
        return None
    return min(rest) if after else max(rest)


def _nsec_upkeep(zone: ZoneData, staged: _Staged, before: dict[bytes, bool],
                 explicit: set[bytes], report: ChangeReport) -> None:
    """The NSEC chain around the changed names (module text)."""
    chain = zone.nsec_names
    removed = {k for k in before if k in chain and not _exists(staged.sets[k]) and k not in explicit}
    added = sorted(k for k in before if _exists(staged.sets[k]) and k not in chain
                   and not _below_cut(zone, staged, k) and k not in explicit)
    changed = [k for k in before if k in chain and k not in removed and k not in explicit]
    for key in removed:
        staged.of(key).pop((NSEC, 0), None)
        staged.of(key).pop((RRSIG, NSEC), None)

    def wire_of(key: bytes) -> bytes:
        return staged.wires[key] if key in staged.wires else zone.owner_wire(key)

    def set_nsec(key: bytes) -> None:
        if key in explicit:
            return
        following = _successor(chain, removed, added, key)
        sets = staged.of(key)
        cut = key != zone.apex and (NS, 0) in sets
        types = _types(sets, cut=cut, rrsig=True) + [b"NSEC"]
        rdata = wire_of(following) + rdatawire.bitmap(types)
        old = sets.get((NSEC, 0))
        if old is not None and list(old[1]) == [rdata]:
            return
        ttl = old[0] if old is not None else zone.negative_ttl
        sets[(NSEC, 0)] = [ttl, {rdata: None}]
        sets.pop((RRSIG, NSEC), None)
        report.signed.append((wirename.name_of_wire(wire_of(key)), NSEC))

    touched = set(added) | set(changed)
    touched |= {_predecessor(chain, removed, added, k) for k in [*added, *removed]}
    for key in sorted(t for t in touched if t is not None):
        set_nsec(key)


def _nsec3_upkeep(zone: ZoneData, staged: _Staged, before: dict[bytes, bool],
                  report: ChangeReport) -> None:
    """The NSEC3 chain around the changed names (module text)."""
    chain = zone.nsec3
    assert chain is not None
    alg, iterations, salt = chain.params
    apex = zone.apex
    digests = chain._digests
    apex_digest = chain.digest_of(apex)
    if chain.owner_of_digest(apex_digest) is None:
        raise ValueError(f"zone {zone.origin}: no NSEC3 of the served chain at the apex")
    opt_out = bool(_nsec3_fields(zone, staged, chain, apex_digest)[0] & n3.OPT_OUT)
    affected: dict[bytes, bool] = {}  # name → has an NSEC3 after the batch
    for key in before:
        for ancestor in wirename.ancestor_keys(key, apex):
            if ancestor not in affected:
                affected[ancestor] = _nsec3_member(zone, staged, ancestor, opt_out)
    removed: dict[bytes, bytes] = {}  # digest → name key
    added: dict[bytes, bytes] = {}
    changed: list[bytes] = []
    for key, now in affected.items():
        has = chain.matching(key) is not None
        if has and not now:
            removed[chain.digest_of(key)] = key
        elif has:
            changed.append(key)
        elif now:
            added[n3.key_digest(key, salt, iterations)] = key
    gone = set(removed)

    def owner_of(value: bytes) -> tuple[bytes, bytes]:
        label = n3.b32(value).encode()
        wire = bytes((len(label),)) + label + zone.apex_wire
        return wirename.key_of_wire(wire), wire

    def record_of(value: bytes) -> tuple[int, bytes, int]:
        return _nsec3_fields(zone, staged, chain, value)

    def sets_of(key: bytes) -> Sets:
        sets = staged.sets.get(key)
        if sets is not None:
            return sets
        blob = zone.blobs.get(key)
        return decode_sets(blob) if blob is not None else {}

    def bitmap_of(key: bytes) -> bytes:
        sets = sets_of(key)
        cut = key != apex and (NS, 0) in sets
        rrsig = any(t == RRSIG and (not cut or c == DS) for t, c in sets)
        return rdatawire.bitmap(_types(sets, cut=cut, rrsig=rrsig))

    def write(value: bytes, flags: int, bitmap: bytes, ttl: int) -> None:
        following = _successor(digests, gone, new_values, value)
        rdata = (bytes((alg, flags)) + iterations.to_bytes(2, "big") + bytes((len(salt),)) + salt
                 + bytes((len(following),)) + following + bitmap)
        owner_key, owner_wire = owner_of(value)
        existing = chain.owner_of_digest(value)
        if existing is not None:
            owner_key, owner_wire = existing, zone.owner_wire(existing)
        sets = staged.hashed_of(owner_key)
        old = sets.get((NSEC3, 0))
        if old is not None and list(old[1]) == [rdata]:
            return
        sets[(NSEC3, 0)] = [ttl, {rdata: None}]
        sets.pop((RRSIG, NSEC3), None)
        staged.wires[owner_key] = owner_wire
        report.signed.append((wirename.name_of_wire(owner_wire), NSEC3))

    # A new NSEC3 takes its predecessor's flags and TTL (the chain's opt-out setting).
    new_values: list[bytes] = []
    plans: list[tuple[bytes, int, int]] = []
    for value in sorted(added):
        pred = _predecessor(digests, gone, [], value)
        if pred is None:
            raise ValueError(f"zone {zone.origin}: empty NSEC3 chain")
        flags, _, ttl = record_of(pred)
        new_values.append(value)
        plans.append((value, flags, ttl))
    for value, key in removed.items():
        owner = chain.owner_of_digest(value)
        staged.hashed[owner] = {}
        staged.wires[owner] = zone.owner_wire(owner)
    for value, flags, ttl in plans:
        write(value, flags, bitmap_of(added[value]), ttl)
    neighbours = {_predecessor(digests, gone, new_values, v) for v in [*new_values, *removed]}
    for key in changed:
        neighbours.add(chain.digest_of(key))
    for value in sorted(v for v in neighbours if v is not None and v not in new_values):
        flags, bitmap, ttl = record_of(value)
        name = chain._name_of.get(value)
        if name is not None and name in affected and affected[name]:
            bitmap = bitmap_of(name)
        write(value, flags, bitmap, ttl)


def _nsec3_fields(zone: ZoneData, staged: _Staged, chain: "n3.Nsec3Chain",
                  value: bytes) -> tuple[int, bytes, int]:
    """(flags, bitmap, ttl) of the chain's NSEC3 at digest ``value`` as it stands."""
    owner = chain.owner_of_digest(value)
    sets = staged.hashed_of(owner) if owner is not None else {}
    entry = sets.get((NSEC3, 0))
    for rdata in entry[1] if entry else ():
        if n3.wire_params(rdata) == chain.params:
            salt_len = rdata[4]
            hash_len = rdata[5 + salt_len]
            return rdata[1], rdata[6 + salt_len + hash_len:], entry[0]
    raise ValueError(f"no NSEC3 of the served chain at {n3.b32(value)}")


def _nsec3_member(zone: ZoneData, staged: _Staged, key: bytes, opt_out: bool) -> bool:
    """Whether ``key`` has an NSEC3 once the batch is in (RFC 5155 §7.1): an authoritative
    name, or an empty non-terminal above one. Names below a cut (glue, occluded data) have
    none; under opt-out neither has an unsigned delegation, nor an empty non-terminal only
    such delegations (or glue) lie below (as dnssec-signzone -A)."""
    if _below_cut(zone, staged, key):
        return False
    sets = staged.sets.get(key)
    if sets is None:
        blob = zone.blobs.get(key)
        sets = decode_sets(blob) if blob is not None else {}
    if _exists(sets):
        return key == zone.apex or (NS, 0) not in sets or (DS, 0) in sets or not opt_out
    # An empty non-terminal (or a name the batch empties): a member below it keeps it.
    # Unchanged names keep their place in the chain (a cut above them cannot change here:
    # _check_cuts), so their matching NSEC3 says; changed ones are judged on their new data.
    chain = zone.nsec3
    names = zone.names
    i = names.bisect_right(key)
    while i < len(names) and names[i].startswith(key):
        other = names[i]
        if other in staged.sets:
            if _exists(staged.sets[other]) and _nsec3_member(zone, staged, other, opt_out):
                return True
        elif chain.matching(other) is not None:
            return True
        i += 1
    return any(k.startswith(key) and k != key and k not in zone.blobs and _exists(s)
               and _nsec3_member(zone, staged, k, opt_out) for k, s in staged.sets.items())


def _sign(zone: ZoneData, staged: _Staged, report: ChangeReport, sign: Signer | None) -> None:
    if not report.signed or not zone.signed:
        return
    if sign is None:
        owners = ", ".join(sorted({n.to_text() for n, _ in report.signed}))
        raise ValueError(f"signed zone {zone.origin}: the denial records at {owners} change; "
                         "pass sign= or give them with their RRSIGs")
    for name, rdtype in report.signed:
        key = wirename.key_of(name)
        sets = staged.hashed[key] if rdtype == NSEC3 else staged.sets[key]
        ttl, rdatas = sets[(rdtype, 0)]
        sets[(RRSIG, rdtype)] = [ttl, dict.fromkeys(sign(name, rdtype, ttl, list(rdatas)))]


def _commit(zone: ZoneData, staged: _Staged, before: dict[bytes, bool], report: ChangeReport) -> None:
    deps = report.dependencies
    apex = zone.apex
    for key, sets in staged.sets.items():
        blob = encode(sets)
        old = zone.blobs.get(key)
        if blob == old:
            continue
        report.names.append(key)
        deps.add(key)
        if key == apex:
            old_sets = decode_sets(old) if old is not None else {}
            if old_sets.get((SOA, 0)) != sets.get((SOA, 0)) or old_sets.get((RRSIG, SOA)) != sets.get((RRSIG, SOA)):
                deps.add(soa_dependency(apex))
        if blob:
            if old is None:
                zone.names.add(key)
                wire = staged.wires[key]
                if wire.lower() != wire:
                    zone.spelled[key] = wire
                deps.update(wirename.ancestor_keys(key, apex)[:-1])  # ENTs may appear
            zone.blobs[key] = blob
        else:
            if old is not None:
                del zone.blobs[key]
                zone.names.remove(key)
                zone.spelled.pop(key, None)
                deps.update(wirename.ancestor_keys(key, apex)[:-1])  # ENTs may vanish
        types = {t for t, _ in sets}
        _index(zone.nsec_names, key, NSEC in types)
        if key != apex:
            _member(zone.cuts, key, NS in types)
        _member(zone.dnames, key, DNAME in types)
    chain = zone.nsec3
    for key, sets in staged.hashed.items():
        blob = encode(sets)
        old = zone.hashed.get(key)
        if blob == old:
            continue
        deps.add(key)
        if blob:
            zone.hashed[key] = blob
            wire = staged.wires.get(key) or zone.owner_wire(key)
            if wire.lower() != wire:
                zone.spelled[key] = wire
            if chain is not None and old is None:
                chain.owner_added(key)
        elif old is not None:
            if chain is not None:
                chain.owner_removed(key)
            del zone.hashed[key]
            zone.spelled.pop(key, None)
    if chain is not None:
        for key in before:
            for ancestor in wirename.ancestor_keys(key, apex):
                if zone.exists_key(ancestor):
                    chain.name_added(ancestor)
                else:
                    chain.name_removed(ancestor)
    if apex in staged.sets:
        zone.refresh_apex()
        if report.whole_zone:
            from .nsec3 import Nsec3Chain
            param = zone.node(apex).rrsets.get(NSEC3PARAM)
            zone.nsec3 = Nsec3Chain.for_zone(zone, param) if param is not None else None


def _index(sorted_list, key: bytes, present: bool) -> None:
    if present:
        if key not in sorted_list:
            sorted_list.add(key)
    elif key in sorted_list:
        sorted_list.remove(key)


def _member(members: set[bytes], key: bytes, present: bool) -> None:
    if present:
        members.add(key)
    else:
        members.discard(key)


__all__ = ["Change", "ChangeReport", "apply", "delete", "put", "rrset_signer"]
