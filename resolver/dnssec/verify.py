"""RRset signature and DNSKEY-chain validation (RFC 4033-4035, RFC 6840) with an explicit clock.

This module is the policy a validating resolver must apply around the cryptography and that
dnspython leaves to the caller: signer/zone binding, RRSIG labels and wildcards, serial-number
time arithmetic with clock skew, key flags, DS digest selection, and the TTL the validated data
may be cached for. The signed data and DS digests are built by ``canonical`` (the same bytes as
dnspython's, differential test tests/test_canonical.py); signatures are checked with
dnspython's public-key objects (``cryptography``), Ed25519 through libsodium first
(``sign_crypto.ed25519_verifier``, OpenSSL's verdict always).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
from dns.dnssectypes import Algorithm, DSDigest
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.RRSIG import RRSIG

from resolver.auth.sign_crypto import ed25519_verifier
from resolver.dnssec.canonical import ds_digest, signed_data
from resolver.nametext import in_zone, name_text, same_name, type_text
from resolver.status import Status

# Signature algorithms we validate (RFC 8624 §3.1 MUST/RECOMMENDED set that dnspython implements).
# RSASHA1 (5) and RSASHA1-NSEC3-SHA1 (7) are deliberately absent: SHA-1 signatures are forgeable
# in practice (chosen-prefix collisions), so a zone signed only with them is treated as unsigned
# (INSECURE, RFC 4035 §5.2) rather than trusted.
SUPPORTED_ALGORITHMS: frozenset[int] = frozenset(
    {
        Algorithm.RSASHA256,
        Algorithm.RSASHA512,
        Algorithm.ECDSAP256SHA256,
        Algorithm.ECDSAP384SHA384,
        Algorithm.ED25519,
        Algorithm.ED448,
    }
)

# DS digest types, strongest preference first. SHA-1 stays usable only as a last resort (RFC 4509 §3).
STRONG_DIGESTS: frozenset[int] = frozenset({DSDigest.SHA256, DSDigest.SHA384})
SUPPORTED_DIGESTS: frozenset[int] = STRONG_DIGESTS | {DSDigest.SHA1}

_FLAG_ZONE = 0x0100  # RFC 4034 §2.1.1, bit 7
_FLAG_REVOKE = 0x0080  # RFC 5011 §2.1, bit 8
_DNSSEC_PROTOCOL = 3  # RFC 4034 §2.1.2

_MOD32 = 1 << 32


@dataclass(frozen=True)
class Verdict:
    """Outcome of one validation step.

    ``ttl`` is how long the validated data may be cached (RFC 4035 §5.3.3: never beyond the
    RRSIG original TTL nor the signature expiration). ``wildcard`` is set when the data was
    synthesised from a wildcard (the caller must then prove the expansion, RFC 4035 §5.3.4).
    ``proof`` names the kind of denial proven by nsec.py (``"nxdomain"``, ``"nodata"``, ...).
    """

    status: Status
    why: str
    ttl: int | None = None
    wildcard: dns.name.Name | None = None
    proof: str | None = None
    steps: tuple[str, ...] = ()  # NSEC3 proofs: each record used and what it matched or covered

    @property
    def secure(self) -> bool:
        return self.status is Status.SECURE


def _bogus(why: str) -> Verdict:
    return Verdict(Status.BOGUS, why)


# --- RFC 1982 serial arithmetic on the 32-bit RRSIG time fields (RFC 4034 §3.1.5) -------------


def serial_diff(a: int, b: int) -> int:
    """Signed distance a - b in 32-bit serial-number space (|result| < 2**31)."""
    d = (a - b) % _MOD32
    return d - _MOD32 if d >= 1 << 31 else d


def _time_problem(rrsig: RRSIG, now: float, skew: int) -> str | None:
    now32 = int(now) % _MOD32
    if serial_diff(rrsig.expiration, rrsig.inception) <= 0:
        return "expiration is not after inception"
    if serial_diff(rrsig.expiration, now32) < -skew:
        return f"signature expired ({rrsig.expiration} < now {int(now)} - skew {skew})"
    if serial_diff(rrsig.inception, now32) > skew:
        return f"signature not yet valid (inception {rrsig.inception} > now {int(now)} + skew {skew})"
    return None


def seconds_left(rrsig: RRSIG, now: float) -> int:
    """Seconds until the signature expires (0 when already past it but inside the skew)."""
    return max(0, serial_diff(rrsig.expiration, int(now) % _MOD32))


# --- keys ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def key_tag(key: DNSKEY) -> int:
    """RFC 4034 Appendix B key tag (cached: rdata objects are immutable and hashable)."""
    return dns.dnssec.key_id(key)


def usable_zone_key(key: DNSKEY) -> bool:
    """A key that may ever validate anything: ZONE flag, protocol 3, not revoked.

    Stricter than dnspython, which lets a revoked key validate its own DNSKEY RRset (RFC 5011
    §2.1 only needs that for trust-anchor rollover, which we do not run): a revoked key is dead.
    """
    flags = int(key.flags)  # an int, not the Flag enum: enum & costs more than the rest
    return bool(flags & _FLAG_ZONE) and not flags & _FLAG_REVOKE and key.protocol == _DNSSEC_PROTOCOL


def _owner_labels(name: dns.name.Name) -> int:
    """The RRSIG Labels value for an owner name: root and a leading '*' are not counted (RFC 4034 §3.1.3).
    From the labels themselves: len(name) and is_wild() are calls, and every answer asks this."""
    labels = name.labels
    n = len(labels) - 1
    return n - 1 if labels and labels[0] == b"*" else n


def wildcard_source(rrset: dns.rrset.RRset, rrsigs: dns.rrset.RRset | None) -> dns.name.Name | None:
    """The wildcard the RRset was synthesised from (RRSIG labels < owner labels), else None.

    Uses the first RRSIG whose labels value is plausible; verify_rrset reports the one it
    actually validated in ``Verdict.wildcard``, which callers should prefer.
    """
    if not rrsigs:
        return None
    for rrsig in rrsigs:
        w = _wildcard_for(rrset.name, rrsig.labels)
        if w is not None:
            return w
    return None


def _wildcard_for(owner: dns.name.Name, labels: int) -> dns.name.Name | None:
    names = owner.labels
    if names and names[0] == b"*":  # a wild owner is the wildcard itself, not an expansion
        return None
    if labels >= len(names) - 1:  # _owner_labels of a name that is not wild
        return None
    suffix = owner.split(labels + 1)[1]
    return dns.name.Name((b"*",) + suffix.labels)


# --- one RRset -----------------------------------------------------------------------------------


def _check_one(
    rrset: dns.rrset.RRset,
    rrsig: RRSIG,
    keys_by_tag: dict[tuple[int, int], list[DNSKEY]],
    zone: dns.name.Name,
    now: float,
    skew: int,
) -> str | None:
    """Why this one RRSIG does not validate the RRset, or None when it does."""
    if rrsig.type_covered != rrset.rdtype:
        return f"covers {type_text(rrsig.type_covered)}"
    if not same_name(rrsig.signer, zone):
        # RFC 4035 §5.3.1: the signer must be the zone holding the RRset; accepting another
        # zone's key would let any zone sign for names it does not own.
        return f"signer {rrsig.signer} is not zone {zone}"
    if rrsig.labels > _owner_labels(rrset.name):
        return f"labels {rrsig.labels} exceed owner's {_owner_labels(rrset.name)}"
    if rrsig.algorithm not in SUPPORTED_ALGORITHMS:
        return f"unsupported algorithm {rrsig.algorithm}"
    problem = _time_problem(rrsig, now, skew)
    if problem:
        return problem
    candidates = keys_by_tag.get((rrsig.key_tag, rrsig.algorithm))
    if not candidates:
        return f"no usable DNSKEY with tag {rrsig.key_tag} algorithm {rrsig.algorithm}"
    if rrsig.rdclass != rrset.rdclass:
        return "RRSIG class differs from the RRset's"  # RFC 4035 §5.3.1
    try:
        # Our own serial-arithmetic window check above is authoritative (it also covers a
        # window straddling the 2**32 wrap), so only the signature itself is left to check.
        _verify_signature(rrset, rrsig, candidates)
    except Exception as exc:  # noqa: BLE001 - malformed key or signature bytes: fail closed
        return f"signature invalid ({exc or type(exc).__name__})"
    return None


@functools.lru_cache(maxsize=4096)
def _signature_check(key: DNSKEY):
    """``check(signature, data) -> bool`` for ``key``, built once per DNSKEY (loading the key is
    a large share of a cold verification's work otherwise). Ed25519 goes through libsodium,
    about half OpenSSL's CPU time a signature, with OpenSSL asked again for anything libsodium
    refuses, so the verdict is always OpenSSL's (``sign_crypto.ed25519_verifier``, differential
    test in tests/test_verify_fast.py); other algorithms use dnspython's public-key object."""
    public = dns.dnssec.get_algorithm_cls_from_dnskey(key).public_cls.from_dnskey(key)
    if key.algorithm == Algorithm.ED25519:
        return ed25519_verifier(key.key, public)
    verify = public.verify

    def check(signature: bytes, data: bytes) -> bool:
        try:
            verify(signature, data)
            return True
        except Exception:  # noqa: BLE001 - any failure of one candidate means "try the next"
            return False

    return check


def _verify_signature(rrset: dns.rrset.RRset, rrsig: RRSIG, candidates: list[DNSKEY]) -> None:
    """What dns.dnssec.validate_rrsig does once the policy checks are ours: canonical signed
    data (RFC 4034 §3.1.8.1, §6.2: canonical.signed_data, dnspython's bytes), then each
    candidate key in turn."""
    data = signed_data(rrset, rrsig)
    for key in candidates:
        try:
            if _signature_check(key)(rrsig.signature, data):
                return
        except Exception:  # noqa: BLE001 - a malformed key or signature: try the next
            continue
    raise dns.dnssec.ValidationFailure("verify failure")


def _index_keys(dnskeys) -> dict[tuple[int, int], list[DNSKEY]]:
    index: dict[tuple[int, int], list[DNSKEY]] = {}
    for key in dnskeys:
        if usable_zone_key(key):
            index.setdefault((key_tag(key), key.algorithm), []).append(key)
    return index


def verify_rrset(
    rrset: dns.rrset.RRset,
    rrsigs: dns.rrset.RRset | None,
    dnskeys: dns.rrset.RRset | dns.rdataset.Rdataset,
    *,
    zone: dns.name.Name,
    now: float,
    skew: int = 300,
) -> Verdict:
    """SECURE when at least one RRSIG by a key of ``zone`` validates ``rrset`` at time ``now``.

    ``dnskeys`` must be the already-validated DNSKEY RRset of ``zone``. BOGUS lists why each
    signature failed. A SECURE verdict from a wildcard expansion carries ``wildcard``.
    """
    zone = _as_name(zone)
    if dnskeys.rdtype != dns.rdatatype.DNSKEY:
        return _bogus(f"expected DNSKEY records of {zone}, got {type_text(dnskeys.rdtype)}")
    if isinstance(dnskeys, dns.rrset.RRset) and not same_name(dnskeys.name, zone):
        return _bogus(f"DNSKEY RRset owner {dnskeys.name} is not zone {zone}")
    if not in_zone(rrset.name, zone):
        return _bogus(f"{rrset.name} is not in zone {zone}")
    label = f"{name_text(rrset.name)} {type_text(rrset.rdtype)}"
    if not rrsigs:
        return _bogus(f"{label}: no RRSIG")
    if rrsigs.rdtype != dns.rdatatype.RRSIG:
        return _bogus(f"{label}: expected RRSIG records, got {type_text(rrsigs.rdtype)}")
    if not same_name(rrsigs.name, rrset.name) or rrsigs.rdclass != rrset.rdclass:
        return _bogus(f"{label}: RRSIGs belong to {rrsigs.name}")
    keys_by_tag = _index_keys(dnskeys)
    problems: list[str] = []
    for rrsig in rrsigs:
        problem = _check_one(rrset, rrsig, keys_by_tag, zone, now, skew)
        if problem is None:
            ttl = min(rrset.ttl, rrsig.original_ttl, seconds_left(rrsig, now))
            wildcard = _wildcard_for(rrset.name, rrsig.labels)
            why = f"{label}: signed by {name_text(zone)} key {rrsig.key_tag} alg {rrsig.algorithm}"
            if wildcard is not None:
                why += f" (expanded from {wildcard})"
            return Verdict(Status.SECURE, why, ttl, wildcard=wildcard)
        problems.append(f"RRSIG {rrsig.key_tag}/{rrsig.algorithm}: {problem}")
    return _bogus(f"{label}: no valid signature: " + "; ".join(problems))


# --- DNSKEY RRset against DS / trust anchor ------------------------------------------------------


def _usable_ds(ds: dns.rdataset.Rdataset) -> list:
    """DS records we may use: supported algorithm and digest; SHA-1 only when nothing stronger.

    RFC 4509 §3 ignores SHA-1 DS when a SHA-256 DS is present. We apply that to the whole DS
    RRset (counting only stronger DS we can actually use): a per-key rule would let a forged key
    second-preimaging one key's SHA-1 digest in while the parent also publishes SHA-256.
    """
    supported = [d for d in ds if d.algorithm in SUPPORTED_ALGORITHMS and d.digest_type in SUPPORTED_DIGESTS]
    if any(d.digest_type in STRONG_DIGESTS for d in supported):
        supported = [d for d in supported if d.digest_type in STRONG_DIGESTS]
    return supported


def _ds_matches(zone: dns.name.Name, key: DNSKEY, ds) -> bool:
    if key.algorithm != ds.algorithm or key_tag(key) != ds.key_tag:
        return False
    # dns.dnssec.make_ds's digest (canonical.ds_digest, differential test in test_canonical).
    made = ds_digest(zone, key, ds.digest_type)
    return made is not None and made == ds.digest


def _same_key(a: DNSKEY, b: DNSKEY) -> bool:
    # Flags are not compared: the REVOKE bit changes them (and the tag); usable_zone_key()
    # already refuses revoked zone keys, so a revoked anchor never matches.
    return a.algorithm == b.algorithm and a.protocol == b.protocol and a.key == b.key


def verify_dnskeys(
    dnskeys: dns.rrset.RRset,
    rrsigs: dns.rrset.RRset | None,
    *,
    zone: dns.name.Name,
    now: float,
    ds: dns.rdataset.Rdataset | None = None,
    anchor_keys: dns.rdataset.Rdataset | None = None,
    skew: int = 300,
) -> Verdict:
    """Validate a zone's DNSKEY RRset from its parent's (validated) DS set or a trust anchor.

    SECURE: a key matching a usable DS (or equal to an anchor key) signs the DNSKEY RRset.
    INSECURE: every DS / anchor uses an algorithm or digest we do not implement (RFC 4035 §5.2).
    BOGUS otherwise.
    """
    zone = _as_name(zone)
    if not same_name(dnskeys.name, zone) or dnskeys.rdtype != dns.rdatatype.DNSKEY:
        return _bogus(f"expected the DNSKEY RRset of {zone}, got {dnskeys.name} {type_text(dnskeys.rdtype)}")
    if ds is None and anchor_keys is None:
        return _bogus(f"{zone} DNSKEY: no DS and no trust anchor to validate against")
    given = len(ds or ()) + len(anchor_keys or ())
    if given == 0:
        # An empty DS set is not "unsigned": absence of DS must be proven by NSEC (prove_no_ds),
        # otherwise stripping the DS from a referral would downgrade a signed zone to INSECURE.
        return _bogus(f"{zone} DNSKEY: empty DS set and no trust anchor")
    trusted: list[DNSKEY] = []
    usable_points = 0
    if ds is not None:
        usable = _usable_ds(ds)
        usable_points += len(usable)
        for key in dnskeys:
            if usable_zone_key(key) and any(_ds_matches(zone, key, d) for d in usable):
                trusted.append(key)
    if anchor_keys is not None:
        anchors = [k for k in anchor_keys if k.algorithm in SUPPORTED_ALGORITHMS]
        usable_points += len(anchors)
        for key in dnskeys:
            if usable_zone_key(key) and key not in trusted and any(_same_key(key, a) for a in anchors):
                trusted.append(key)
    if usable_points == 0:
        return Verdict(
            Status.INSECURE,
            f"{zone}: DS/anchor use only unsupported algorithms or digests (RFC 4035 §5.2)",
        )
    if not trusted:
        return _bogus(f"{zone} DNSKEY: no usable key matches the DS set or trust anchor")
    verdict = verify_rrset(
        dnskeys, rrsigs, dns.rdataset.from_rdata_list(0, trusted), zone=zone, now=now, skew=skew
    )
    if not verdict.secure:
        return _bogus(f"DNSKEY RRset not signed by a DS/anchor-matched key: {verdict.why}")
    if verdict.wildcard is not None:
        return _bogus(f"{zone} DNSKEY: signature claims wildcard expansion")
    return verdict


def _as_name(name: dns.name.Name | str) -> dns.name.Name:
    return name if isinstance(name, dns.name.Name) else dns.name.from_text(name)
