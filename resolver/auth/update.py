"""RFC 2136 dynamic update, evaluated against an overlay of a served zone (sans-I/O).

``Overlay`` holds the RRsets of the names a batch of updates touches, on top of the served
``ZoneData`` (which does not change until the batch is applied); ``evaluate`` runs one parsed,
authenticated UPDATE against it in RFC 2136 order:

1. zone section (§3.1): one SOA-type RR naming a zone we serve (NOTAUTH otherwise; dnspython's
   parser already refuses other shapes with FORMERR);
2. prerequisites (§2.4, §3.2): name in use / not in use (YXDOMAIN, NXDOMAIN), RRset exists
   (value independent or dependent) / does not exist (YXRRSET, NXRRSET); names outside the
   zone are NOTZONE;
3. prescan of the update section (§3.4.1): meta types and bad classes are FORMERR, names
   outside the zone NOTZONE;
4. permission (§3.3): every RR added or deleted must be covered by a grant of the TSIG key
   (``policy``), and DNSSEC records are the server's (REFUSED, EDE 18 "Prohibited");
5. the changes (§3.4.2), in message order, then the zone rules (REFUSED with EDE 0 and a
   reason, nothing changed): CNAME beside other data, data below a zone cut (glue excepted),
   a delegation added or removed above existing names, deleting the apex SOA, NS or DNSKEY,
   CAPS/LOAD that break the key registry (``registry.validate_caps``/``validate_load``).

Where RFC 2136 says to ignore silently (an add of a CNAME beside data, a delete of the apex
SOA or last NS), this server refuses with a reason instead: a registrar learns why.

An update that fails changes nothing (``Overlay.begin``/``rollback``); one that succeeds stays
in the overlay, and the next update of the batch sees it, as if each had been applied alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.update

from ..records import capsmap, registry
from . import wirename
from .onlinesign import canonical_rdata
from .policy import SERVER_TYPES, TsigKey
from .zonedb import NSEC, NSEC3, RRSIG, ZoneData, decode_sets

SOA, NS, CNAME, DNSKEY, DS, A, AAAA = 6, 2, 5, 48, 43, 1, 28
CAPS, LOAD = 65380, 65381
ANY = int(dns.rdataclass.ANY)
NONE = int(dns.rdataclass.NONE)
IN = int(dns.rdataclass.IN)
_META_TYPES = frozenset(int(t) for t in (dns.rdatatype.ANY, dns.rdatatype.AXFR, dns.rdatatype.IXFR,
                                         dns.rdatatype.MAILA, dns.rdatatype.MAILB, dns.rdatatype.OPT,
                                         dns.rdatatype.TSIG, dns.rdatatype.TKEY, dns.rdatatype.NONE))
_DNSSEC = frozenset({RRSIG, NSEC, NSEC3})
_GLUE = frozenset({A, AAAA})

EDE_OTHER = 0
EDE_PROHIBITED = 18
EDE_NOT_AUTHORITATIVE = 20

# RRsets of one name: rdtype -> [ttl, {rdata: None}] (ordered, no duplicates)
State = dict[int, list]


class Refused(Exception):
    """An update refused with ``rcode`` and a reason (EDE extra text and the log line)."""

    def __init__(self, rcode: int, reason: str, ede: int = EDE_OTHER):
        super().__init__(reason)
        self.rcode, self.reason, self.ede = rcode, reason, ede


@dataclass
class Outcome:
    rcode: int = dns.rcode.NOERROR
    reason: str | None = None
    ede: int | None = None
    changed: bool = False
    # RRs this update added (for leases) and deleted, as (key, rdtype, canonical rdata)
    added: list[tuple[bytes, bytes, int, bytes]] = field(default_factory=list)  # (key, owner wire, type, rdata)
    deleted: list[tuple[bytes, int, bytes]] = field(default_factory=list)
    names: set[dns.name.Name] = field(default_factory=set)  # owners the update adds to


class Overlay:
    """The RRsets of touched names over a zone that stays as it is until the batch is applied."""

    def __init__(self, zone: ZoneData):
        self.zone = zone
        self.apex = zone.apex
        self.origin = zone.origin
        self.states: dict[bytes, State] = {}
        self.original: dict[bytes, State] = {}
        self.wires: dict[bytes, bytes] = {}
        self._undo: dict[bytes, State | None] | None = None

    # --- reading -------------------------------------------------------------------------

    def state(self, key: bytes) -> State:
        found = self.states.get(key)
        if found is None:
            found = self._load(key)
            self.original[key] = {t: [e[0], dict(e[1])] for t, e in found.items()}
            self.states[key] = found
        return found

    def _load(self, key: bytes) -> State:
        blob = self.zone.blobs.get(key)
        if blob is None:
            return {}
        return {t: e for (t, c), e in decode_sets(blob).items() if c == 0 and t not in _DNSSEC}

    def peek(self, key: bytes) -> State:
        """The state without marking the name touched."""
        found = self.states.get(key)
        return found if found is not None else self._load(key)

    def wire(self, key: bytes) -> bytes:
        found = self.wires.get(key)
        return found if found is not None else self.zone.owner_wire(key)

    def exists(self, key: bytes) -> bool:
        return bool(self.peek(key))

    def descendants(self, key: bytes, *, original: bool = False):
        """Keys of names strictly below ``key`` that own data (now, or in the zone before)."""
        names = self.zone.names
        i = names.bisect_right(key)
        seen = set()
        while i < len(names) and names[i].startswith(key):
            other = names[i]
            i += 1
            seen.add(other)
            if original or self.peek(other):
                yield other
        if not original:
            for other, state in list(self.states.items()):
                if other != key and other.startswith(key) and other not in seen and state:
                    yield other

    def cut_above(self, key: bytes) -> bytes | None:
        """The highest zone cut strictly above ``key`` (below the apex), as things stand now."""
        for ancestor in reversed(wirename.ancestor_keys(key, self.apex)[1:-1]):
            if NS in self.peek(ancestor):
                return ancestor
        return None

    # --- transactions ------------------------------------------------------------------------

    def begin(self) -> None:
        self._undo = {}

    def _touch(self, key: bytes) -> State:
        state = self.state(key)
        if self._undo is not None and key not in self._undo:
            self._undo[key] = {t: [e[0], dict(e[1])] for t, e in state.items()}
        return state

    def rollback(self) -> None:
        for key, saved in (self._undo or {}).items():
            self.states[key] = saved
        self._undo = None

    def end(self) -> None:
        self._undo = None

    # --- changing ----------------------------------------------------------------------------

    def add(self, key: bytes, wire: bytes, rdtype: int, ttl: int, rdata: bytes) -> bool:
        state = self._touch(key)
        self.wires.setdefault(key, wire)
        entry = state.get(rdtype)
        if entry is None:
            state[rdtype] = [ttl, {rdata: None}]
            return True
        changed = entry[0] != ttl
        entry[0] = ttl
        if rdata in entry[1]:
            return changed
        canon = canonical_rdata(rdtype, rdata)
        if any(canonical_rdata(rdtype, have) == canon for have in entry[1]):
            return changed
        if rdtype in (SOA, CNAME):
            entry[1] = {rdata: None}
        else:
            entry[1][rdata] = None
        return True

    def delete_rr(self, key: bytes, rdtype: int, rdata: bytes) -> bool:
        state = self._touch(key)
        entry = state.get(rdtype)
        if entry is None:
            return False
        if rdata in entry[1]:
            del entry[1][rdata]
            if not entry[1]:
                del state[rdtype]
            return True
        canon = canonical_rdata(rdtype, rdata)
        for have in list(entry[1]):
            if canonical_rdata(rdtype, have) == canon:
                del entry[1][have]
                if not entry[1]:
                    del state[rdtype]
                return True
        return False

    def delete_rrset(self, key: bytes, rdtype: int) -> list[bytes]:
        state = self._touch(key)
        entry = state.pop(rdtype, None)
        return list(entry[1]) if entry else []

    def set_rrset(self, key: bytes, wire: bytes, rdtype: int, ttl: int, rdatas: list[bytes]) -> None:
        state = self._touch(key)
        self.wires.setdefault(key, wire)
        if rdatas:
            state[rdtype] = [ttl, dict.fromkeys(rdatas)]
        else:
            state.pop(rdtype, None)

    def touched(self) -> list[bytes]:
        """Keys whose RRsets differ from the zone's."""
        return [k for k, s in self.states.items() if s != self.original.get(k)]


def _key_of(name: dns.name.Name) -> bytes:
    return wirename.key_of_labels(name.labels)


def _in_zone(overlay: Overlay, name: dns.name.Name) -> bool:
    return name.is_subdomain(overlay.origin)


# --- prerequisites --------------------------------------------------------------------------

def check_prerequisites(overlay: Overlay, prereqs) -> None:
    """RFC 2136 §3.2; raises Refused with the RCODE the first failing prerequisite calls for."""
    value_sets: dict[tuple[bytes, int], list[bytes]] = {}
    for rrset in prereqs:
        name = rrset.name
        rdtype = int(rrset.rdtype)
        if rrset.ttl != 0:
            raise Refused(dns.rcode.FORMERR, f"prerequisite {name} {dns.rdatatype.to_text(rdtype)}: TTL must be 0")
        if not _in_zone(overlay, name):
            raise Refused(dns.rcode.NOTZONE, f"prerequisite {name} is outside zone {overlay.origin}")
        key = _key_of(name)
        state = overlay.peek(key)
        deleting = rrset.deleting
        if deleting == ANY:
            if rdtype == dns.rdatatype.ANY:
                if not state:
                    raise Refused(dns.rcode.NXDOMAIN, f"prerequisite: {name} is not in use")
            elif rdtype not in state:
                raise Refused(dns.rcode.NXRRSET, f"prerequisite: no {dns.rdatatype.to_text(rdtype)} RRset at {name}")
        elif deleting == NONE:
            if rdtype == dns.rdatatype.ANY:
                if state:
                    raise Refused(dns.rcode.YXDOMAIN, f"prerequisite: {name} is in use")
            elif rdtype in state:
                raise Refused(dns.rcode.YXRRSET, f"prerequisite: {name} has a {dns.rdatatype.to_text(rdtype)} RRset")
        elif int(rrset.rdclass) == IN:
            if rdtype in _META_TYPES:
                raise Refused(dns.rcode.FORMERR, f"prerequisite {name}: type {dns.rdatatype.to_text(rdtype)}")
            for rd in rrset:
                value_sets.setdefault((key, rdtype), []).append(rd.to_wire())
        else:
            raise Refused(dns.rcode.FORMERR, f"prerequisite {name}: class {dns.rdataclass.to_text(rrset.rdclass)}")
    for (key, rdtype), rdatas in value_sets.items():
        entry = overlay.peek(key).get(rdtype)
        want = {canonical_rdata(rdtype, rd) for rd in rdatas}
        have = {canonical_rdata(rdtype, rd) for rd in entry[1]} if entry else set()
        if want != have:
            raise Refused(dns.rcode.NXRRSET, f"prerequisite: the {dns.rdatatype.to_text(rdtype)} RRset at "
                          f"{wirename.name_of_key(key)} is not the one given")


# --- the update section ---------------------------------------------------------------------

@dataclass
class Op:
    kind: str  # "add", "delete_rr", "delete_rrset", "delete_name"
    name: dns.name.Name
    rdtype: int
    ttl: int = 0
    rdata: bytes | None = None


def prescan(overlay: Overlay, updates) -> list[Op]:
    """RFC 2136 §3.4.1: the update section as operations, or Refused(FORMERR/NOTZONE)."""
    ops = []
    for rrset in updates:
        name = rrset.name
        rdtype = int(rrset.rdtype)
        if not _in_zone(overlay, name):
            raise Refused(dns.rcode.NOTZONE, f"{name} is outside zone {overlay.origin}")
        deleting = rrset.deleting
        tname = dns.rdatatype.to_text(rdtype)
        if deleting is None:
            if int(rrset.rdclass) != IN:
                raise Refused(dns.rcode.FORMERR, f"{name} {tname}: class {dns.rdataclass.to_text(rrset.rdclass)}")
            if rdtype in _META_TYPES:
                raise Refused(dns.rcode.FORMERR, f"{name}: cannot add type {tname}")
            for rd in rrset:
                ops.append(Op("add", name, rdtype, rrset.ttl, rd.to_wire()))
        elif deleting == ANY:
            if rdtype == dns.rdatatype.ANY:
                ops.append(Op("delete_name", name, rdtype))
            elif rdtype in _META_TYPES:
                raise Refused(dns.rcode.FORMERR, f"{name}: cannot delete type {tname}")
            else:
                ops.append(Op("delete_rrset", name, rdtype))
        elif deleting == NONE:
            if rdtype in _META_TYPES:
                raise Refused(dns.rcode.FORMERR, f"{name}: cannot delete type {tname} by value")
            if rrset.ttl != 0:
                raise Refused(dns.rcode.FORMERR, f"{name} {tname}: a delete by value must have TTL 0")
            for rd in rrset:
                ops.append(Op("delete_rr", name, rdtype, 0, rd.to_wire()))
        else:
            raise Refused(dns.rcode.FORMERR, f"{name}: class {dns.rdataclass.to_text(deleting)}")
    return ops


def check_permission(overlay: Overlay, ops: list[Op], key: TsigKey | None, *, browse: bool) -> list[Op]:
    """RFC 2136 §3.3 with the key's grants; returns the ops to carry out (client changes to
    server-maintained browse names are dropped: the server derives them)."""
    from .browse import is_browse_name
    kept = []
    for op in ops:
        if browse and is_browse_name(overlay.origin, op.name):
            continue
        if op.rdtype in SERVER_TYPES:
            raise Refused(dns.rcode.REFUSED, f"{op.name} {dns.rdatatype.to_text(op.rdtype)}: DNSSEC records "
                          "are made by the server", EDE_PROHIBITED)
        if key is None:
            raise Refused(dns.rcode.REFUSED, "unsigned update", EDE_PROHIBITED)
        if op.kind == "delete_name":
            types = [t for t in overlay.peek(_key_of(op.name))]
            denied = [t for t in types if not key.allows(overlay.origin, op.name, t)]
            if not any(g.covers_name(op.name) for g in key.grants_for(overlay.origin)) or denied:
                what = ", ".join(dns.rdatatype.to_text(t) for t in denied) or "names"
                raise Refused(dns.rcode.REFUSED, f"key {key.name} may not delete {what} at {op.name}",
                              EDE_PROHIBITED)
        elif not key.allows(overlay.origin, op.name, op.rdtype):
            raise Refused(dns.rcode.REFUSED, f"key {key.name} may not change {op.name} "
                          f"{dns.rdatatype.to_text(op.rdtype)}", EDE_PROHIBITED)
        kept.append(op)
    return kept


def apply_ops(overlay: Overlay, ops: list[Op], outcome: Outcome, *, our_dnskeys: set[bytes]) -> None:
    """RFC 2136 §3.4.2 on the overlay, refusing what would break the zone's apex."""
    apex = overlay.apex
    for op in ops:
        key = _key_of(op.name)
        wire = op.name.to_wire()
        at_apex = key == apex
        tname = dns.rdatatype.to_text(op.rdtype)
        if op.kind == "add":
            if at_apex and op.rdtype == SOA:
                op = _soa_add(overlay, op)
                if op is None:
                    continue
            elif op.rdtype == SOA:
                raise Refused(dns.rcode.REFUSED, f"{op.name}: SOA below the zone apex")
            if overlay.add(key, wire, op.rdtype, op.ttl, op.rdata):
                outcome.changed = True
            outcome.added.append((key, wire, op.rdtype, canonical_rdata(op.rdtype, op.rdata)))
            outcome.names.add(op.name)
        elif op.kind == "delete_rr":
            if at_apex and op.rdtype == SOA:
                raise Refused(dns.rcode.REFUSED, f"{op.name}: the apex SOA cannot be deleted")
            if at_apex and op.rdtype == DNSKEY and canonical_rdata(DNSKEY, op.rdata) in our_dnskeys:
                raise Refused(dns.rcode.REFUSED, f"{op.name}: the DNSKEY of a signing key cannot be deleted")
            if overlay.delete_rr(key, op.rdtype, op.rdata):
                outcome.changed = True
                outcome.deleted.append((key, op.rdtype, canonical_rdata(op.rdtype, op.rdata)))
            if at_apex and op.rdtype == NS and NS not in overlay.peek(key):
                raise Refused(dns.rcode.REFUSED, f"{op.name}: the last apex NS cannot be deleted")
        elif op.kind == "delete_rrset":
            if at_apex and op.rdtype in (SOA, NS, DNSKEY):
                raise Refused(dns.rcode.REFUSED, f"{op.name}: the apex {tname} RRset cannot be deleted")
            for rdata in overlay.delete_rrset(key, op.rdtype):
                outcome.changed = True
                outcome.deleted.append((key, op.rdtype, canonical_rdata(op.rdtype, rdata)))
        else:  # delete_name
            if at_apex:
                raise Refused(dns.rcode.REFUSED, f"{op.name}: deleting every RRset at the apex would "
                              "delete its SOA, NS and DNSKEY")
            for rdtype in list(overlay.peek(key)):
                for rdata in overlay.delete_rrset(key, rdtype):
                    outcome.changed = True
                    outcome.deleted.append((key, rdtype, canonical_rdata(rdtype, rdata)))


def _soa_add(overlay: Overlay, op: Op) -> Op | None:
    """RFC 2136 §3.4.2.2: an SOA whose serial is not newer is ignored."""
    from .serial import serial_gt
    entry = overlay.peek(overlay.apex).get(SOA)
    current = int.from_bytes(next(iter(entry[1]))[-20:-16], "big") if entry else 0
    new = int.from_bytes(op.rdata[-20:-16], "big")
    return op if serial_gt(new, current) else None


def check_zone_rules(overlay: Overlay, keys: list[bytes], *, caps_strict: bool = True) -> None:
    """The rules a changed name must keep (module text, step 5)."""
    apex = overlay.apex
    for key in keys:
        state = overlay.peek(key)
        name = wirename.name_of_key(key)
        if CNAME in state and len(state) > 1:
            others = ", ".join(dns.rdatatype.to_text(t) for t in state if t != CNAME)
            raise Refused(dns.rcode.REFUSED, f"{name}: CNAME and other data ({others})")
        if key == apex:
            if SOA not in state or NS not in state:
                raise Refused(dns.rcode.REFUSED, f"{name}: the apex must keep its SOA and NS")
        else:
            cut = overlay.cut_above(key)
            if cut is not None and set(state) - _GLUE:
                bad = ", ".join(dns.rdatatype.to_text(t) for t in state if t not in _GLUE)
                raise Refused(dns.rcode.REFUSED, f"{name}: {bad} below the zone cut at "
                              f"{wirename.name_of_key(cut)} (only glue addresses may be there)")
            was_cut = NS in overlay.original.get(key, overlay.peek(key))
            is_cut = NS in state
            if was_cut != is_cut:
                if is_cut and any(True for _ in overlay.descendants(key, original=True)):
                    raise Refused(dns.rcode.REFUSED, f"{name}: a delegation added above existing names "
                                  "(add the NS first, or with its glue in one update)")
                if not is_cut and any(True for _ in overlay.descendants(key)):
                    raise Refused(dns.rcode.REFUSED, f"{name}: a delegation removed above names below it "
                                  "(delete its glue in the same update)")
                if is_cut:
                    for below in overlay.descendants(key):
                        if set(overlay.peek(below)) - _GLUE:
                            raise Refused(dns.rcode.REFUSED, f"{wirename.name_of_key(below)}: data below "
                                          f"the new zone cut at {name}")
        for rdtype, check in ((CAPS, registry.validate_caps), (LOAD, registry.validate_load)):
            entry = state.get(rdtype)
            if entry is None:
                continue
            for rdata in entry[1]:
                try:
                    mapping = capsmap.decode(rdata)
                except capsmap.CapsError as exc:
                    raise Refused(dns.rcode.REFUSED, f"{name} {dns.rdatatype.to_text(rdtype)}: {exc}") from None
                problems = check(mapping)
                if problems and caps_strict:
                    raise Refused(dns.rcode.REFUSED, f"{name} {dns.rdatatype.to_text(rdtype)}: "
                                  + "; ".join(problems))


def evaluate(overlay: Overlay, message: dns.update.UpdateMessage, key: TsigKey | None, *,
             browse: bool = True, caps_strict: bool = True,
             our_dnskeys: set[bytes] = frozenset()) -> Outcome:
    """One UPDATE against the overlay (module text); a failure leaves the overlay as it was."""
    outcome = Outcome()
    overlay.begin()
    try:
        check_prerequisites(overlay, message.prerequisite)
        ops = prescan(overlay, message.update)
        ops = check_permission(overlay, ops, key, browse=browse)
        apply_ops(overlay, ops, outcome, our_dnskeys=our_dnskeys)
        check_zone_rules(overlay, sorted({_key_of(op.name) for op in ops}), caps_strict=caps_strict)
    except Refused as exc:
        overlay.rollback()
        return Outcome(exc.rcode, exc.reason, exc.ede if exc.rcode == dns.rcode.REFUSED else None)
    overlay.end()
    return outcome


__all__ = ["Op", "Outcome", "Overlay", "Refused", "apply_ops", "check_permission",
           "check_prerequisites", "check_zone_rules", "evaluate", "prescan"]
