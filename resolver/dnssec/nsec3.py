"""Authenticated denial of existence with NSEC3 (RFC 5155 §8, RFC 9276 §3.2).

Callers pass NSEC3 RRsets whose signatures they already verified (verify_rrset) for ``zone``.
Every proof returns SECURE only when it is complete; INSECURE where the RFCs say a genuine
proof cannot give more (an opt-out span, §9.2; iterations above MAX_ITERATIONS, RFC 9276);
otherwise BOGUS with the precise missing piece. The ``why`` of every verdict names each NSEC3
used (its hashed owner, and the name it matches or covers with that name's hash), so that
``cid dig +trace`` shows an operator which record proved what, or what a broken chain lacks.

Hashes are compared as raw digests: base32hex preserves their order, so this is the order of
the hashed owner names (RFC 5155 §1.3, §3.1.7).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import dns.name
import dns.rdatatype
import dns.rrset

from resolver.dnssec.nsec import nsec_types
from resolver.dnssec.verify import Verdict
from resolver.status import Status

# RFC 9276 §3.2: validators may treat NSEC3 with more iterations as insecure, and the big
# validators do: Unbound 1.17 (val-nsec3-keysize-iterations "1024 150 2048 150 4096 150") and
# BIND 9.18 (150) answer such zones without AD. Above this, a proof is INSECURE, never SECURE.
# Checked before any hashing, so a hostile zone cannot make us spend more than
# (MAX_ITERATIONS + 1) SHA-1 per name hashed (and a name has at most 127 labels).
MAX_ITERATIONS = 150
SHA1 = 1  # the only NSEC3 hash algorithm (RFC 5155 §11)
OPT_OUT = 0x01
_HASH_LEN = {SHA1: 20}

_NS, _SOA, _DS, _CNAME, _DNAME = (dns.rdatatype.NS, dns.rdatatype.SOA, dns.rdatatype.DS,
                                  dns.rdatatype.CNAME, dns.rdatatype.DNAME)
Params = tuple[int, int, bytes]  # (hash algorithm, iterations, salt)


def digest_wire(wire: bytes, salt: bytes, iterations: int) -> bytes:
    """RFC 5155 §5: IH(salt, x, k) with SHA-1, ``wire`` being a name's canonical (lower-case)
    wire form. The one implementation the validator, the server and the resolver's fast path
    share: dnspython's dns.dnssec.nsec3_hash (which returns base32hex text) is the oracle in
    the tests."""
    digest = hashlib.sha1(wire + salt).digest()
    for _ in range(iterations):
        digest = hashlib.sha1(digest + salt).digest()
    return digest


def nsec3_digest(name: dns.name.Name, salt: bytes, iterations: int) -> bytes:
    """digest_wire of ``name`` in any case."""
    return digest_wire(b"".join(bytes((len(label),)) + label.lower() for label in name.labels), salt, iterations)


def b32(digest: bytes) -> str:
    """A digest as the lower-case unpadded base32hex label of NSEC3 owner names."""
    return base64.b32hexencode(digest).decode().rstrip("=").lower()


def owner_digest(label: bytes) -> bytes | None:
    """The digest a hashed owner label spells (base32hex, any case), or None."""
    text = label.upper()
    try:
        return base64.b32hexdecode(text + b"=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True)
class Nsec3:
    """One usable NSEC3 record of ``zone``."""

    name: dns.name.Name  # its owner: <hash>.<zone>
    owner: bytes  # the digest the owner label spells
    next: bytes
    types: frozenset[int]
    opt_out: bool
    params: Params
    ttl: int

    def covers(self, digest: bytes) -> bool:
        """owner < digest < next in hash order; the last record of the chain (next <= owner)
        wraps round to the first (RFC 5155 §3.1.7)."""
        if self.owner < self.next:
            return self.owner < digest < self.next
        return digest > self.owner or digest < self.next

    def span(self) -> str:
        return f"{b32(self.owner)} -> {b32(self.next)}" + (" (opt-out)" if self.opt_out else "")


def usable_nsec3s(rrsets: Iterable[dns.rrset.RRset], zone: dns.name.Name) -> tuple[list[Nsec3], list[str]]:
    """The NSEC3 records of ``rrsets`` a validator may use for ``zone``, and notes on the rest."""
    good: list[Nsec3] = []
    notes: list[str] = []
    for rrset in rrsets:
        if rrset.rdtype != dns.rdatatype.NSEC3:
            notes.append(f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} is not NSEC3")
            continue
        # The owner is exactly one hashed label above the zone's apex (RFC 5155 §3): a record
        # of another zone (a parent's, a child's, an unrelated one replayed) proves nothing here.
        if len(rrset.name) != len(zone) + 1 or not rrset.name.is_subdomain(zone):
            notes.append(f"NSEC3 {rrset.name} is not a hashed name of zone {zone}")
            continue
        owner = owner_digest(rrset.name.labels[0])
        if owner is None:
            notes.append(f"NSEC3 {rrset.name}: owner label is not base32hex")
            continue
        for rd in rrset:
            if rd.flags & ~OPT_OUT:
                notes.append(f"NSEC3 {rrset.name}: flags {rd.flags} (RFC 5155 §8.2: ignored)")
                continue
            if rd.algorithm not in _HASH_LEN:
                notes.append(f"NSEC3 {rrset.name}: unknown hash algorithm {rd.algorithm} (RFC 5155 §8.1: ignored)")
                continue
            size = _HASH_LEN[rd.algorithm]
            if len(owner) != size or len(rd.next) != size:
                notes.append(f"NSEC3 {rrset.name}: hash length is not {size} octets")
                continue
            good.append(Nsec3(rrset.name, owner, rd.next, nsec_types(rd), bool(rd.flags & OPT_OUT),
                              (rd.algorithm, rd.iterations, rd.salt), rrset.ttl))
    return good, notes


class _Proof:
    """The usable NSEC3s of one response with a memo of hashes, under one set of parameters."""

    def __init__(self, records: list[Nsec3], zone: dns.name.Name, params: Params, notes: list[str]):
        self.records = records
        self.notes = notes  # records ignored, shown with a failed proof
        self.zone = zone
        self.salt = params[2]
        self.iterations = params[1]
        self._digests: dict[dns.name.Name, bytes] = {}

    def digest(self, name: dns.name.Name) -> bytes:
        found = self._digests.get(name)
        if found is None:
            found = self._digests[name] = nsec3_digest(name, self.salt, self.iterations)
        return found

    def matching(self, name: dns.name.Name) -> Nsec3 | None:
        digest = self.digest(name)
        return next((r for r in self.records if r.owner == digest), None)

    def covering(self, name: dns.name.Name) -> Nsec3 | None:
        digest = self.digest(name)
        return next((r for r in self.records if r.covers(digest)), None)

    def named(self, name: dns.name.Name) -> str:
        return f"{name} (hash {b32(self.digest(name))})"

    def bogus(self, why: str) -> Verdict:
        """BOGUS, with every usable record of the response listed (a broken chain shows what
        was there and what the names hash to)."""
        steps = [why] + [f"NSEC3 in response: {r.span()} [{_types(r)}]" for r in self.records]
        return Verdict(Status.BOGUS, _noted(why, self.notes), steps=tuple(steps))

    def closest_encloser(self, qname: dns.name.Name) -> _Encloser | str:
        """RFC 5155 §8.3: the longest ancestor of qname matched by an NSEC3 whose child towards
        qname (the next closer name) is covered by one. A string says why there is none.

        An NSEC3 matching qname itself means qname exists; the caller decides what that means.
        """
        nearer: dns.name.Name | None = None  # the candidate one label longer than ``name``
        name = qname
        while True:
            match = self.matching(name)
            if match is not None:
                if nearer is None:
                    return _Encloser(name, match, None, None)
                cover = self.covering(nearer)
                if cover is None:
                    return f"NSEC3 {b32(match.owner)} matches {name}, but no NSEC3 covers the next closer {self.named(nearer)}"
                # A parent-side delegation NSEC3 (NS without SOA) or a DNAME cannot be the
                # closest encloser: names below it are not this zone's (§8.3, RFC 6840 §4.1).
                if _DNAME in match.types:
                    return f"NSEC3 {b32(match.owner)} at closest encloser {name} has DNAME"
                if _NS in match.types and _SOA not in match.types:
                    return f"NSEC3 {b32(match.owner)} at closest encloser {name} is a delegation (NS without SOA)"
                return _Encloser(name, match, nearer, cover)
            if name == self.zone:
                return f"no NSEC3 matches {self.named(qname)} or any ancestor up to the apex"
            nearer = name
            name = name.parent()


@dataclass(frozen=True)
class _Encloser:
    name: dns.name.Name
    match: Nsec3
    next_closer: dns.name.Name | None  # None: qname itself is matched (it exists)
    cover: Nsec3 | None

    def steps(self, proof: _Proof) -> list[str]:
        return [f"NSEC3 {b32(self.match.owner)} matches closest encloser {self.name}",
                f"NSEC3 {self.cover.span()} covers next closer {proof.named(self.next_closer)}"]

    def text(self, proof: _Proof) -> str:
        return "; ".join(self.steps(proof))


def _types(record: Nsec3) -> str:
    return " ".join(dns.rdatatype.to_text(t) for t in sorted(record.types))


def _noted(why: str, notes: list[str]) -> str:
    return why + (" [ignored: " + "; ".join(notes) + "]" if notes else "")


def _bogus(why: str, notes: list[str]) -> Verdict:
    return Verdict(Status.BOGUS, _noted(why, notes), steps=(why,))


def _verdict(status: Status, what: str, steps: list[str], proof: str, *used: Nsec3 | None) -> Verdict:
    """``what: step; step; ...`` — each step one NSEC3 and what it matched or covered."""
    # Cached no longer than the records proving it (RFC 2308 §5, RFC 9077 §3).
    ttls = [r.ttl for r in used if r is not None]
    return Verdict(status, f"{what}: " + "; ".join(steps), ttl=min(ttls) if ttls else None, proof=proof,
                   steps=tuple(steps))


def _start(qname: dns.name.Name, rrsets, zone: dns.name.Name, what: str) -> _Proof | Verdict:
    """The proof context, or the verdict that ends it early: no usable records (bogus),
    parameters that disagree (bogus, §8.2), too many iterations (insecure, RFC 9276 §3.2)."""
    if not qname.is_subdomain(zone):
        return Verdict(Status.BOGUS, f"{qname} is not in zone {zone}")
    records, notes = usable_nsec3s(rrsets, zone)
    if not records:
        return _bogus(f"{what} unproven: no usable NSEC3 of zone {zone}", notes)
    params = {r.params for r in records}
    if len(params) > 1:
        shown = ", ".join(f"alg {a} iterations {i} salt {s.hex() or '-'}" for a, i, s in sorted(params))
        return _bogus(f"{what} unproven: NSEC3 parameters disagree ({shown}; RFC 5155 §8.2)", notes)
    (param,) = params
    if param[1] > MAX_ITERATIONS:
        return Verdict(Status.INSECURE, f"{what}: NSEC3 of {zone} use {param[1]} iterations, above the limit of "
                       f"{MAX_ITERATIONS} (RFC 9276 §3.2): treated as unsigned",
                       ttl=min(r.ttl for r in records), proof="nsec3-iterations")
    return _Proof(records, zone, param, notes)


def prove_nxdomain(qname: dns.name.Name, rrsets: list[dns.rrset.RRset], zone: dns.name.Name) -> Verdict:
    """RFC 5155 §8.4: closest encloser proof, and an NSEC3 covering the wildcard at it."""
    what = f"NXDOMAIN {qname}"
    proof = _start(qname, rrsets, zone, what)
    if isinstance(proof, Verdict):
        return proof
    ce = proof.closest_encloser(qname)
    if isinstance(ce, str):
        return proof.bogus(f"{what} unproven: {ce}")
    if ce.next_closer is None:
        return proof.bogus(f"{what} contradicted: NSEC3 {b32(ce.match.owner)} matches {qname}, so it exists")
    wild = dns.name.Name((b"*",) + ce.name.labels)
    if proof.matching(wild) is not None:
        return proof.bogus(f"{what} contradicted: an NSEC3 matches wildcard {wild}, so it exists")
    wcover = proof.covering(wild)
    if wcover is None:
        return proof.bogus(f"{what} unproven: {ce.text(proof)}; no NSEC3 covers wildcard {proof.named(wild)}")
    steps = ce.steps(proof) + [f"NSEC3 {wcover.span()} covers wildcard {proof.named(wild)}"]
    if ce.cover.opt_out:
        # §9.2: an opt-out span may hide an unsigned delegation, so the name may exist there.
        return _verdict(Status.INSECURE, what, steps + ["the next closer is in an opt-out span (RFC 5155 §9.2)"],
                        "nxdomain-optout", ce.match, ce.cover, wcover)
    return _verdict(Status.SECURE, what, steps, "nxdomain", ce.match, ce.cover, wcover)


def _nodata_refusal(record: Nsec3, name: dns.name.Name, qtype: int) -> str | None:
    tname = dns.rdatatype.to_text(qtype)
    if qtype in record.types:
        return f"NSEC3 {b32(record.owner)} at {name} lists {tname}"
    if _CNAME in record.types:
        return f"NSEC3 {b32(record.owner)} at {name} lists CNAME"
    if qtype == _DS:
        # DS lives in the parent: the child apex's record (SOA set) cannot deny it (RFC 6840 §4.4).
        if _SOA in record.types and name != dns.name.root:  # the root, without a parent, denies its own
            return f"NSEC3 {b32(record.owner)} at {name} is a zone apex (SOA set); DS is denied by the parent"
    elif _NS in record.types and _SOA not in record.types:
        # The parent side of a cut speaks only for NS and DS; the child's data is elsewhere.
        return f"NSEC3 {b32(record.owner)} at {name} is parent-side of a delegation (NS without SOA)"
    return None


def prove_nodata(qname: dns.name.Name, qtype: int, rrsets: list[dns.rrset.RRset], zone: dns.name.Name) -> Verdict:
    """RFC 5155 §8.5-8.7: an NSEC3 matching qname without qtype (empty non-terminals have one
    too); for DS without a match, an opt-out span covering the next closer (insecure); else a
    wildcard NODATA (closest encloser proof and a matching wildcard NSEC3 without qtype)."""
    qtype = dns.rdatatype.RdataType.make(qtype)
    tname = dns.rdatatype.to_text(qtype)
    what = f"NODATA {qname} {tname}"
    proof = _start(qname, rrsets, zone, what)
    if isinstance(proof, Verdict):
        return proof
    match = proof.matching(qname)
    if match is not None:
        refusal = _nodata_refusal(match, qname, qtype)
        if refusal:
            return proof.bogus(f"{what} unproven: {refusal}")
        return _verdict(Status.SECURE, what, [f"NSEC3 {b32(match.owner)} matches {qname} and lacks it"],
                        "nodata", match)
    ce = proof.closest_encloser(qname)
    if isinstance(ce, str):
        return proof.bogus(f"{what} unproven: {ce}")
    wild = dns.name.Name((b"*",) + ce.name.labels)
    wmatch = proof.matching(wild)
    if wmatch is not None and qtype != _DS:
        refusal = _nodata_refusal(wmatch, wild, qtype)
        if refusal:
            return proof.bogus(f"wildcard {what} unproven: {refusal}")
        steps = ce.steps(proof) + [f"NSEC3 {b32(wmatch.owner)} matches wildcard {wild} and lacks it"]
        if ce.cover.opt_out:
            # The next closer lies in an opt-out span: an unsigned delegation there could hold
            # the name, so the wildcard need not apply (§9.2; Unbound answers this insecure too).
            return _verdict(Status.INSECURE, what, steps + ["the next closer is in an opt-out span (RFC 5155 §9.2)"],
                            "nodata-wildcard-optout", ce.match, ce.cover, wmatch)
        return _verdict(Status.SECURE, what, steps, "nodata-wildcard", ce.match, ce.cover, wmatch)
    if ce.cover.opt_out:
        # §8.6 (DS) and RFC 5155 errata 3441 (an empty non-terminal above unsigned delegations
        # only has no NSEC3 under opt-out): the span proves only that nothing signed is there.
        return _verdict(Status.INSECURE, what, ce.steps(proof) + ["in an opt-out span (RFC 5155 §8.6, §9.2)"],
                        "nodata-optout", ce.match, ce.cover)
    return proof.bogus(f"{what} unproven: no NSEC3 matches {proof.named(qname)}, and {ce.text(proof)} "
                       "without opt-out: the name does not exist")


def prove_no_ds(child: dns.name.Name, rrsets: list[dns.rrset.RRset], zone: dns.name.Name) -> Verdict:
    """A referral from ``zone`` to ``child`` without DS (RFC 5155 §8.9): SECURE when the NSEC3
    matching child shows NS without DS and SOA (so the child is provably unsigned); INSECURE
    when child lies in an opt-out span (an unsigned delegation may exist there); else BOGUS —
    in particular when the chain proves child does not exist (a forged referral)."""
    if child == zone or not child.is_subdomain(zone):
        return Verdict(Status.BOGUS, f"{child} is not below zone {zone}")
    what = f"no-DS {child}"
    proof = _start(child, rrsets, zone, what)
    if isinstance(proof, Verdict):
        return proof
    match = proof.matching(child)
    if match is not None:
        if _SOA in match.types:
            return proof.bogus(f"{what} unproven: NSEC3 {b32(match.owner)} has SOA, it is a zone apex")
        if _DS in match.types:
            return proof.bogus(f"{what} unproven: NSEC3 {b32(match.owner)} lists DS")
        if _NS not in match.types:
            return proof.bogus(f"{what} unproven: NSEC3 {b32(match.owner)} lacks NS, {child} is not a delegation")
        return _verdict(Status.SECURE, f"no DS for {child}",
                        [f"NSEC3 {b32(match.owner)} matches it with NS, no DS, no SOA"], "no-ds", match)
    ce = proof.closest_encloser(child)
    if isinstance(ce, str):
        return proof.bogus(f"{what} unproven: {ce}")
    if ce.cover.opt_out:
        return _verdict(Status.INSECURE, f"no DS for {child}", ce.steps(proof) + [
            "an opt-out span: an unsigned delegation may exist there (RFC 5155 §6, §8.6)"],
            "no-ds-optout", ce.match, ce.cover)
    return proof.bogus(f"{what} refuted: {ce.text(proof)} without opt-out: {child} does not exist in {zone}")


def prove_wildcard_expansion(qname: dns.name.Name, wildcard: dns.name.Name, rrsets: list[dns.rrset.RRset],
                             zone: dns.name.Name) -> Verdict:
    """RFC 5155 §8.8: an answer synthesised from ``wildcard`` (its RRSIG labels say which) is
    genuine only if an NSEC3 covers the next closer name: qname does not exist and nothing
    between it and the wildcard's parent does."""
    if not qname.is_subdomain(zone):
        return Verdict(Status.BOGUS, f"{qname} is not in zone {zone}")
    if not wildcard.is_wild() or not wildcard.is_subdomain(zone):
        return Verdict(Status.BOGUS, f"{wildcard} is not a wildcard in zone {zone}")
    source = wildcard.parent()
    if qname == wildcard or qname == source or not qname.is_subdomain(source):
        return Verdict(Status.BOGUS, f"{qname} cannot be an expansion of {wildcard}")
    what = f"wildcard expansion {qname} from {wildcard}"
    proof = _start(qname, rrsets, zone, what)
    if isinstance(proof, Verdict):
        return proof
    next_closer = qname.split(len(source) + 1)[1]
    cover = proof.covering(next_closer)
    if cover is None:
        return proof.bogus(f"{what} unproven: no NSEC3 covers the next closer {proof.named(next_closer)}")
    steps = [f"NSEC3 {cover.span()} covers next closer {proof.named(next_closer)}"]
    if cover.opt_out:
        return _verdict(Status.INSECURE, what, steps + ["an opt-out span (RFC 5155 §9.2)"], "wildcard-optout", cover)
    return _verdict(Status.SECURE, what, steps, "wildcard", cover)


def shows_unsigned_cut(rrsets: Iterable[dns.rrset.RRset], name: dns.name.Name) -> bool:
    """Some (already verified) NSEC3 matches ``name`` and says: a delegation (NS) without DS,
    not an apex. Hashes with each record's own parameters, within the iteration limit."""
    for rrset in rrsets:
        if rrset.rdtype != dns.rdatatype.NSEC3 or len(rrset.name) < 2:
            continue
        zone = rrset.name.parent()
        if name == zone or not name.is_subdomain(zone):
            continue
        for record in usable_nsec3s([rrset], zone)[0]:
            if record.params[1] > MAX_ITERATIONS:
                continue
            if nsec3_digest(name, record.params[2], record.params[1]) == record.owner:
                t = record.types
                return _NS in t and _DS not in t and _SOA not in t
    return False
