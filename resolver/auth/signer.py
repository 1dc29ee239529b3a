"""Zone signing with DNSKEY, RRSIG and NSEC (RFC 4033–4035), and a full-zone verifier.

Signature validity window (the default, copied into spec/): inception = now − 1 hour (so that
resolvers with slow clocks accept new signatures), expiration = now + 14 days. Re-sign well
before expiry; a zone whose signatures expire goes BOGUS everywhere.

What gets signed (RFC 4035 §2.2): every authoritative RRset. At a zone cut only DS and NSEC
are authoritative; NS there belongs to the child and data below the cut (glue, occluded
records) is neither signed nor part of the NSEC chain. Data below a DNAME is occluded too.
NSEC bitmaps at a delegation list only NS, DS, RRSIG and NSEC (RFC 4035 §2.3: bits for data
the parent is not authoritative for MUST be clear). NSEC TTL = min(SOA TTL, SOA MINIMUM)
(RFC 9077). Key roles: per algorithm, KSKs (SEP flag) sign the DNSKEY RRset and ZSKs the rest;
an algorithm with only one kind of key uses it for everything (a CSK). Every algorithm given
signs every RRset, as RFC 6840 §5.11 requires of a zone with several algorithms.

Signing is idempotent: old RRSIG/NSEC/NSEC3/NSEC3PARAM are removed first and DNSKEYs of the
keys given are replaced; other DNSKEYs (pre-published or foreign keys) stay. dnspython's
``sign_zone`` is not used because it puts occluded types into delegation NSEC bitmaps and uses
SOA MINIMUM alone for the NSEC TTL. Signatures are made by dnspython's algorithm classes over
data laid out as RFC 4034 §3.1.8.1 says (the same bytes ``dns.dnssec.sign`` builds, which the
tests check); the RRset's canonical form is built once and shared by every key, which is most
of the cost of signing in Python.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterable
from typing import Any, NamedTuple

import dns.dnssec
import dns.name
import dns.node
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.ANY.RRSIG
import dns.rdtypes.util
import dns.zone
from dns.dnssecalgs import get_algorithm_cls_from_dnskey

from . import parallel_sign, sign_crypto, verify_nsec3, verify_parallel, verify_read
from .keys import ZoneKey

INCEPTION_BACKDATE = 3600  # seconds before now
VALIDITY = 14 * 86400  # seconds after now

RRSIG = dns.rdatatype.RRSIG
NSEC = dns.rdatatype.NSEC
DNSKEY = dns.rdatatype.DNSKEY
_STRIPPED = frozenset({RRSIG, NSEC, dns.rdatatype.NSEC3, dns.rdatatype.NSEC3PARAM})
_DIGESTS = {"SHA256": dns.dnssec.DSDigest.SHA256, "SHA384": dns.dnssec.DSDigest.SHA384}


def _abs(zone: dns.zone.Zone, name: dns.name.Name) -> dns.name.Name:
    return name.derelativize(zone.origin) if zone.relativize else name


def authoritative_names(zone: dns.zone.Zone) -> list[tuple[dns.name.Name, dns.name.Name, bool]]:
    """(key in zone.nodes, absolute name, is_delegation) for every name the zone is authoritative
    for, in DNSSEC canonical order (RFC 4034 §6.1). Empty nodes are skipped."""
    return [(key, name, delegation) for key, name, delegation, _ in
            _authoritative(zone.origin, _canonical_nodes(zone), zone.rdclass)]


def _canonical_nodes(zone: dns.zone.Zone) -> list[tuple[dns.name.Name, dns.name.Name, dns.node.Node]]:
    """(key, absolute name, node) for every node, in DNSSEC canonical order."""
    nodes = [(canonical_key(name), key, name, node) for key, node in zone.nodes.items()
             for name in (_abs(zone, key),)]
    nodes.sort(key=lambda entry: entry[0])
    return [(key, name, node) for _, key, name, node in nodes]


def _authoritative(origin: dns.name.Name, order, rdclass) -> list[tuple[dns.name.Name, dns.name.Name, bool, dns.node.Node]]:
    result = []
    cut: dns.name.Name | None = None
    for key, name, node in order:
        if cut is not None and name.is_subdomain(cut) and name != cut:
            continue  # glue or occluded data below a zone cut or DNAME
        cut = None
        if not node.rdatasets:
            continue
        delegation = node.get_rdataset(rdclass, dns.rdatatype.NS) is not None and name != origin
        if delegation or node.get_rdataset(rdclass, dns.rdatatype.DNAME) is not None:
            cut = name
        result.append((key, name, delegation, node))
    return result


def canonical_key(name: dns.name.Name) -> tuple[bytes, ...]:
    """A sort key giving DNSSEC canonical order (RFC 4034 §6.1): labels compared from the root,
    lowercased, octet by octet, a missing label first — what dns.name.Name's comparison does, as a
    tuple that Python compares without a method call per comparison."""
    return tuple([label.lower() for label in reversed(name.labels)])


def _signable(node: dns.node.Node, delegation: bool):
    for rds in node.rdatasets:
        if rds.rdtype == RRSIG:
            continue
        if delegation and rds.rdtype not in (dns.rdatatype.DS, NSEC):
            continue
        yield rds


def _nsec_types(node: dns.node.Node, delegation: bool) -> list[int]:
    types = {RRSIG, NSEC}
    for rds in node.rdatasets:
        if rds.rdtype in _STRIPPED:
            continue
        if delegation and rds.rdtype not in (dns.rdatatype.NS, dns.rdatatype.DS):
            continue
        types.add(rds.rdtype)
    return sorted(types)


def _strip(zone: dns.zone.Zone, keys: list[ZoneKey]) -> None:
    emptied = []
    for key, node in zone.nodes.items():
        if any(r.rdtype in _STRIPPED for r in node.rdatasets):
            node.rdatasets[:] = [r for r in node.rdatasets if r.rdtype not in _STRIPPED]
        if not node.rdatasets:
            emptied.append(key)
    for key in emptied:
        del zone.nodes[key]
    ours = {(k.algorithm, k.dnskey.key) for k in keys}
    dnskeys = zone.get_rdataset(zone.origin, DNSKEY)
    if dnskeys is not None:
        kept = [rd for rd in dnskeys if (rd.algorithm, rd.key) not in ours]
        zone.delete_rdataset(zone.origin, DNSKEY)
        if kept:
            rds = zone.find_rdataset(zone.origin, DNSKEY, create=True)
            rds.update_ttl(dnskeys.ttl)
            for rd in kept:
                rds.add(rd)


def _roles(keys: list[ZoneKey]) -> tuple[list[Any], list[Any]]:
    """(signers of DNSKEY, signers of everything else) as (private key, algorithm, key tag)."""
    ksks: list[Any] = []
    zsks: list[Any] = []
    for algorithm in sorted({k.algorithm for k in keys}):
        group = [k for k in keys if k.algorithm == algorithm]
        sep = [k for k in group if k.is_ksk] or group
        other = [k for k in group if not k.is_ksk] or group
        ksks += [_wrapped(k) for k in sep]
        zsks += [_wrapped(k) for k in other]
    return ksks, zsks


def _wrapped(key: ZoneKey) -> tuple[Any, int, int]:
    # dnspython's algorithm class encodes the signature as DNSSEC wants (e.g. ECDSA r||s, RFC 6605).
    private = get_algorithm_cls_from_dnskey(key.dnskey)(key=key.private_key)
    # Ed25519 through libsodium: the same bytes (RFC 8032 is deterministic), in ~60 % of the time.
    return sign_crypto.signer_for(private, key.algorithm), key.algorithm, dns.dnssec.key_id(key.dnskey)


def signature_window(inception: int | None, expiration: int | None, now: float | None) -> tuple[int, int]:
    now = time.time() if now is None else now
    start = int(now) - INCEPTION_BACKDATE if inception is None else int(inception)
    end = int(now) + VALIDITY if expiration is None else int(expiration)
    if end <= start:
        raise ValueError("signature expiration must be after inception")
    return start, end


class SignedRRset(NamedTuple):
    """The signatures over one RRset: each is (RRSIG fields 1–7, type covered … key tag; signature)."""

    key: dns.name.Name  # the node's key in zone.nodes
    rdtype: int
    ttl: int
    signatures: list[tuple[tuple[int, int, int, int, int, int, int], bytes]]


class ZoneSignatures(NamedTuple):
    """What signing adds to a zone, before it is put into the zone's nodes.

    ``nsec`` holds (node key, next owner name, types in its bitmap) per authoritative name and
    ``rrsets`` one entry per signed RRset (the NSEC RRsets included), both in DNSSEC canonical
    order. Writing a large signed zone straight from this (``render.zone_text``) avoids building
    about three dnspython objects per record, which would cost more than the signing itself.
    The node keys are the zone's own key objects: use it with the zone it was made from.
    """

    signer: dns.name.Name
    nsec_ttl: int
    nsec: list[tuple[dns.name.Name, dns.name.Name, list[int]]]
    rrsets: list[SignedRRset]

    @property
    def rrsig_count(self) -> int:
        return sum(len(s.signatures) for s in self.rrsets)


class SigningPlan(NamedTuple):
    """A zone prepared for signing (``prepare_signing``): what every RRSIG needs to be made."""

    origin: dns.name.Name
    start: int  # inception
    end: int  # expiration
    nsec_ttl: int
    order: list[tuple[dns.name.Name, dns.name.Name, dns.node.Node]]  # every node: key, absolute name, node
    names: list[tuple[dns.name.Name, dns.name.Name, bool, dns.node.Node]]  # authoritative: … delegation
    nsec: list[tuple[dns.name.Name, dns.name.Name, list[int]]]
    ksks: list[Any]
    zsks: list[Any]

    @property
    def signers(self) -> list[Any]:
        return [role[0] for role in self.ksks + self.zsks]


def sign_zone(
    zone: dns.zone.Zone,
    keys: list[ZoneKey],
    *,
    inception: int | None = None,
    expiration: int | None = None,
    now: float | None = None,
    workers: int | None = None,
) -> dns.zone.Zone:
    """Sign ``zone`` in place (and return it) with NSEC; safe to call again on a signed zone.

    ``workers``: processes that sign (default: one per CPU from parallel_sign.PARALLEL_THRESHOLD
    signatures on).
    """
    attach_signatures(zone, compute_signatures(zone, keys, inception=inception, expiration=expiration,
                                               now=now, workers=workers))
    return zone


def compute_signatures(
    zone: dns.zone.Zone,
    keys: list[ZoneKey],
    *,
    inception: int | None = None,
    expiration: int | None = None,
    now: float | None = None,
    workers: int | None = None,
) -> ZoneSignatures:
    """Prepare ``zone`` for signing (old RRSIG/NSEC removed, DNSKEYs of ``keys`` added) and sign it.

    The NSEC and RRSIG records are returned rather than added: ``attach_signatures`` adds them,
    ``render.zone_text(zone, signatures=...)`` writes the signed zone without adding them.
    """
    plan = prepare_signing(zone, keys, inception=inception, expiration=expiration, now=now)
    jobs = _jobs(zone, plan, 0, len(plan.names))
    signatures = parallel_sign.sign_all(plan.signers, _messages(zone, plan, jobs), workers)
    return ZoneSignatures(plan.origin, plan.nsec_ttl, plan.nsec, _assemble(plan, jobs, signatures))


def prepare_signing(
    zone: dns.zone.Zone,
    keys: list[ZoneKey],
    *,
    inception: int | None = None,
    expiration: int | None = None,
    now: float | None = None,
) -> SigningPlan:
    """Check the keys, remove old RRSIG/NSEC, add the keys' DNSKEYs and lay out the NSEC chain."""
    origin = zone.origin
    if not keys:
        raise ValueError("no keys to sign with")
    for key in keys:
        if key.zone != origin:
            raise ValueError(f"key {key.key_tag} is for {key.zone}, not {origin}")
    start, end = signature_window(inception, expiration, now)
    soa = zone.get_rdataset(origin, dns.rdatatype.SOA)
    if soa is None:
        raise ValueError(f"zone {origin} has no SOA")
    _strip(zone, keys)

    dnskeys = zone.find_rdataset(origin, DNSKEY, create=True)
    ttl = dnskeys.ttl if len(dnskeys) else soa.ttl
    for key in keys:
        dnskeys.add(key.dnskey, ttl)

    order = _canonical_nodes(zone)
    names = _authoritative(origin, order, zone.rdclass)
    nsec = []
    for i, (key, name, delegation, node) in enumerate(names):
        following = names[i + 1][1] if i + 1 < len(names) else origin
        nsec.append((key, following, _nsec_types(node, delegation)))
    ksks, zsks = _roles(keys)
    return SigningPlan(origin, start, end, min(soa.ttl, soa[0].minimum), order, names, nsec, ksks, zsks)


def sign_range(zone: dns.zone.Zone, plan: SigningPlan, lo: int, hi: int) -> list[SignedRRset]:
    """The signatures for ``plan.names[lo:hi]``, made in this process."""
    jobs = _jobs(zone, plan, lo, hi)
    signers = plan.signers
    return _assemble(plan, jobs, [signers[i].sign(data) for i, data in _messages(zone, plan, jobs)])


# A job: (node key, rdtype, TTL, signers, labels, the RRset as RFC 4034 §3.1.8.1 signs it, after the RRSIG fields)
_Job = tuple[dns.name.Name, int, int, list[Any], int, bytes]


def _jobs(zone: dns.zone.Zone, plan: SigningPlan, lo: int, hi: int) -> list[_Job]:
    rdata_origin = plan.origin if zone.relativize else None
    rdclass = zone.rdclass
    nsec_ttl = plan.nsec_ttl
    ksks, zsks = plan.ksks, plan.zsks
    bitmaps: dict[tuple[int, ...], bytes] = {}
    jobs: list[_Job] = []
    for (key, name, delegation, node), (_, following, types) in zip(plan.names[lo:hi], plan.nsec[lo:hi]):
        owner = _canonical_wire(name)
        labels = len(name) - 1 - (1 if name.is_wild() else 0)  # RFC 4034 §3.1.3
        for rds in _signable(node, delegation):
            if rds.rdtype == NSEC:
                continue  # a stale NSEC was stripped; ours is signed below
            # RFC 4034 §6.3: RRs sorted by canonical RDATA; §3.1.8.1: owner|type|class|TTL|len|RDATA.
            head = owner + struct.pack("!HHI", rds.rdtype, rdclass, rds.ttl)
            wires = sorted([_rdata_wire(rd, rdata_origin) for rd in rds])
            body = b"".join([head + struct.pack("!H", len(w)) + w for w in wires])
            jobs.append((key, rds.rdtype, rds.ttl, ksks if rds.rdtype == DNSKEY else zsks, labels, body))
        bitmap = bitmaps.get(tuple(types))
        if bitmap is None:
            windows = dns.rdtypes.util.Bitmap.from_rdtypes(types).windows
            bitmap = bitmaps[tuple(types)] = b"".join(bytes((w, len(b))) + b for w, b in windows)
        # RFC 6840 §5.1: the NSEC next name is not lowercased in the canonical form.
        wire = _name_wire(following) + bitmap
        head = owner + struct.pack("!HHIH", NSEC, rdclass, nsec_ttl, len(wire))
        jobs.append((key, NSEC, nsec_ttl, zsks, labels, head + wire))
    return jobs


def _messages(zone: dns.zone.Zone, plan: SigningPlan, jobs: list[_Job]) -> list[tuple[int, bytes]]:
    """(index into plan.signers, data to sign) per RRSIG, in the order _assemble expects."""
    index = {id(role): i for i, role in enumerate(plan.ksks + plan.zsks)}
    signer_wire = plan.origin.to_digestable()
    start, end = plan.start, plan.end
    pack = struct.Struct("!HBBIIIH").pack
    messages: list[tuple[int, bytes]] = []
    for _, rdtype, ttl, signers, labels, body in jobs:
        for signer in signers:
            header = pack(rdtype, signer[1], labels, ttl, end, start, signer[2])
            messages.append((index[id(signer)], header + signer_wire + body))
    return messages


def _assemble(plan: SigningPlan, jobs: list[_Job], signatures: list[bytes]) -> list[SignedRRset]:
    rrsets: list[SignedRRset] = []
    at = 0
    for key, rdtype, ttl, signers, labels, _ in jobs:
        made = []
        for _, algorithm, key_tag in signers:
            made.append(((rdtype, algorithm, labels, ttl, plan.end, plan.start, key_tag), signatures[at]))
            at += 1
        rrsets.append(SignedRRset(key, rdtype, ttl, made))
    return rrsets


def attach_signatures(zone: dns.zone.Zone, signed: ZoneSignatures) -> None:
    """Put the NSEC and RRSIG records of ``signed`` into ``zone``'s nodes."""
    rdclass = zone.rdclass
    windows_of: dict[tuple[int, ...], Any] = {}
    for key, following, types in signed.nsec:
        windows = windows_of.get(tuple(types))
        if windows is None:
            windows = windows_of[tuple(types)] = dns.rdtypes.util.Bitmap.from_rdtypes(types).windows
        nsec = dns.rdataset.Rdataset(rdclass, NSEC)
        nsec.add(dns.rdtypes.ANY.NSEC.NSEC(rdclass, NSEC, following, windows), signed.nsec_ttl)
        zone.nodes[key].replace_rdataset(nsec)
    for key, rdtype, ttl, signatures in signed.rrsets:
        sigs = dns.rdataset.Rdataset(rdclass, RRSIG, rdtype, ttl)
        for fields, signature in signatures:
            sigs.add(dns.rdtypes.ANY.RRSIG.RRSIG(rdclass, RRSIG, *fields, signed.signer, signature))
        zone.nodes[key].replace_rdataset(sigs)


def _name_wire(name: dns.name.Name) -> bytes:
    return b"".join([bytes((len(label),)) + label for label in name.labels])


def _canonical_wire(name: dns.name.Name) -> bytes:
    # RFC 4034 §6.2: owner names in canonical form are lowercased (ASCII letters only, as bytes.lower).
    return b"".join([bytes((len(label),)) + label.lower() for label in name.labels])


def _rdata_wire(rd: Any, origin: dns.name.Name | None) -> bytes:
    # Addresses are stored as canonical text; packing them directly is what dnspython's to_wire
    # does, minus its generic machinery (most records of a large zone are A or AAAA).
    if rd.rdtype == dns.rdatatype.A:
        return socket.inet_pton(socket.AF_INET, rd.address)
    if rd.rdtype == dns.rdatatype.AAAA:
        return socket.inet_pton(socket.AF_INET6, rd.address)
    return rd.to_digestable(origin)


def ds_records(zone_name: str | dns.name.Name, dnskeys: Iterable[Any], digest: str = "SHA256") -> list[Any]:
    """DS rdata for the zone's secure entry points (RFC 4509 / RFC 6605 digests).

    ``dnskeys`` may be DNSKEY rdata (an rdataset works) or ZoneKeys. Keys with the SEP flag are
    used; when none has it, every zone key is (a zone signed with ZSK-flagged keys only).
    """
    name = zone_name if isinstance(zone_name, dns.name.Name) else dns.name.from_text(zone_name)
    try:
        algorithm = _DIGESTS[digest.upper().replace("-", "")]
    except KeyError:
        raise ValueError(f"unsupported DS digest {digest!r}; use SHA256 or SHA384") from None
    rdatas = [k.dnskey if isinstance(k, ZoneKey) else k for k in dnskeys]
    usable = [rd for rd in rdatas if rd.flags & 0x0100 and not rd.flags & 0x0080]  # ZONE, not REVOKE
    chosen = [rd for rd in usable if rd.flags & 0x0001] or usable
    return [dns.dnssec.make_ds(name, rd, algorithm) for rd in chosen]


def verify_zone(zone: dns.zone.Zone, now: float | None = None, *, workers: int | None = 1) -> list[str]:
    """Problems that would make the zone fail validation; an empty list means valid.

    The checks and problem lines of ``verify_zone_reference`` (below), made from the zone's
    canonical wire form instead of dnspython's generic validation (``verify_parallel``), in
    ``workers`` processes (None: one per CPU for large zones). ``cid zone verify`` reads the
    file straight into that form (``verify_parallel.verify_file``).
    """
    return verify_parallel.verify(verify_read.from_zone(zone), now=now, workers=workers)


def verify_zone_reference(zone: dns.zone.Zone, now: float | None = None) -> list[str]:
    """``verify_zone`` done with dnspython's ``dns.dnssec.validate`` per RRset: the oracle the
    tests hold the fast verifier to, line for line. An empty list means valid.

    Checks: a DNSKEY RRset at the apex signed by its own zone keys; every authoritative RRset
    carries a currently valid RRSIG for each algorithm that signs the DNSKEY RRset; the NSEC
    chain visits every authoritative name in canonical order and closes at the apex; each
    NSEC bitmap matches the types present; no NSEC at occluded names. A zone with an NSEC3PARAM
    at its apex (signed by a peer with NSEC3) has its NSEC3 chain checked instead
    (``verify_nsec3``), and the NSEC chain only if the apex also has an NSEC.
    """
    now = time.time() if now is None else now
    origin = zone.origin
    problems: list[str] = []
    dnskey_rds = zone.get_rdataset(origin, DNSKEY)
    if dnskey_rds is None:
        return [f"{origin} DNSKEY: missing at the zone apex"]
    keyring = {origin: dnskey_rds}

    def valid(name: dns.name.Name, rds: dns.rdataset.Rdataset, sigs: list[Any]) -> str | None:
        sig_rds = dns.rdataset.Rdataset(zone.rdclass, RRSIG, rds.rdtype)
        for sig in sigs:
            sig_rds.add(sig)
        try:
            dns.dnssec.validate((name, rds), (name, sig_rds), keyring, origin=origin, now=now)
        except dns.dnssec.ValidationFailure as exc:
            return _explain(sigs, now) or str(exc) or "no valid signature"
        return None

    def sigs_of(node: dns.node.Node, rdtype: int) -> list[Any]:
        rds = node.get_rdataset(zone.rdclass, RRSIG, rdtype)
        return list(rds) if rds is not None else []

    apex = zone.find_node(origin)
    dnskey_sigs = sigs_of(apex, DNSKEY)
    algorithms = sorted({s.algorithm for s in dnskey_sigs
                         if valid(origin, dnskey_rds, [s]) is None})
    if not algorithms:
        why = _explain(dnskey_sigs, now) or "not signed by any of its own zone keys"
        problems.append(f"{origin} DNSKEY: {why}")
        return problems

    names = authoritative_names(zone)
    auth_keys = {key for key, _, _ in names}
    nsec3 = verify_nsec3.uses_nsec3(zone)
    check_nsec = not nsec3 or zone.get_rdataset(origin, NSEC) is not None
    for i, (key, name, delegation) in enumerate(names):
        node = zone.nodes[key]
        for rds in _signable(node, delegation):
            kind = dns.rdatatype.to_text(rds.rdtype)
            sigs = sigs_of(node, rds.rdtype)
            if not sigs:
                problems.append(f"{name} {kind}: no RRSIG")
                continue
            for algorithm in algorithms:
                of_alg = [s for s in sigs if s.algorithm == algorithm]
                why = valid(name, rds, of_alg) if of_alg else "no signature"
                if why is not None:
                    problems.append(f"{name} {kind}: algorithm {algorithm}: {why}")
        covered = {rds.rdtype for rds in _signable(node, delegation)}
        for rds in node.rdatasets:
            if rds.rdtype == RRSIG and rds.covers not in covered:
                problems.append(f"{name} RRSIG: covers {dns.rdatatype.to_text(rds.covers)}, "
                                "which is absent or not authoritative here")
        if not check_nsec:
            continue
        nsec = node.get_rdataset(zone.rdclass, NSEC)
        following = names[i + 1][1] if i + 1 < len(names) else origin
        if nsec is None or len(nsec) != 1:
            problems.append(f"{name} NSEC: {'missing' if nsec is None else 'more than one'}")
            continue
        rd = nsec[0]
        if rd.next.derelativize(origin) != following:
            problems.append(f"{name} NSEC: next is {rd.next}, expected {following}")
        present = sorted(set(_bitmap(rd.windows)))
        expected = _nsec_types(node, delegation)
        if present != expected:
            shown = " ".join(dns.rdatatype.to_text(t) for t in present)
            want = " ".join(dns.rdatatype.to_text(t) for t in expected)
            problems.append(f"{name} NSEC: bitmap [{shown}] does not match types present [{want}]")
    for key, node in zone.nodes.items():
        if key not in auth_keys and node.get_rdataset(zone.rdclass, NSEC) is not None:
            problems.append(f"{_abs(zone, key)} NSEC: at a name the zone is not authoritative for")
    if nsec3:
        problems += verify_nsec3.verify_nsec3(zone, names)
    return problems


def _explain(sigs: list[Any], now: float) -> str | None:
    """A precise reason when every signature fails for the same time-related cause."""
    if sigs and all(s.expiration < now for s in sigs):
        return f"signature expired at {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(max(s.expiration for s in sigs)))} UTC"
    if sigs and all(s.inception > now for s in sigs):
        return f"signature not valid until {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(min(s.inception for s in sigs)))} UTC"
    return None


def _bitmap(windows) -> Iterable[int]:
    for window, bitmap in windows:
        for i, byte in enumerate(bitmap):
            for bit in range(8):
                if byte & (0x80 >> bit):
                    yield window * 256 + i * 8 + bit
