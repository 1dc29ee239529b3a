"""Canonical forms for DNSSEC verification, built directly (issue 11: the cold path).

dnspython is the oracle: ``signed_data`` returns exactly the bytes of
``dns.dnssec._make_rrsig_signature_data(rrset, rrsig)`` and raises
``dns.dnssec.ValidationFailure`` where it does; ``ds_digest`` returns the digest of
``dns.dnssec.make_ds(owner, key, digest_type)``. tests/test_canonical.py feeds both the same
real and fuzzed RRsets (mixed-case owners and signer names, upper-case names inside RDATA,
wildcard owners, wrong labels counts, several records, every digest type) and they must agree
or both reject.

What is done here rather than by dnspython, and why it is the same:

* the signed data (RFC 4034 §3.1.8.1): the RRSIG RDATA up to the signer packed from its fields
  (dnspython renders the whole RRSIG and keeps the first 18 octets), then the signer and the
  owner in canonical form (RFC 4034 §6.2: ASCII letters lowercased, no compression; the owner
  replaced by ``*.`` and the last ``labels`` labels when the RRSIG was made for a wildcard,
  §3.1.3), then each record's canonical RDATA in canonical order (§6.3). Canonical RDATA is
  still dnspython's ``to_digestable``: it knows which types have names to lowercase (RFC 4034
  §6.2 as amended by RFC 6840 §5.1), which ours must not re-decide;
* the DS digest (RFC 4034 §5.1.4): hash of the canonical owner and the DNSKEY RDATA, without
  building a DS record to compare (dnspython parses the DS it makes from wire again).
"""

from __future__ import annotations

import hashlib
import struct

import dns.dnssec
import dns.name
import dns.rrset
from dns.rdtypes.ANY.RRSIG import RRSIG

_HEAD = struct.Struct("!HBBIIIH")  # RRSIG RDATA before the signer (RFC 4034 §3.1)
_FIXED = struct.Struct("!HHI")  # TYPE, CLASS, original TTL of each signed record
_LENGTH = struct.Struct("!H")
_HASHES = {1: hashlib.sha1, 2: hashlib.sha256, 4: hashlib.sha384}  # RFC 4034, RFC 4509, RFC 6605


_CANONICAL: dict[tuple[bytes, ...], bytes] = {}  # labels -> canonical wire form (zones, owners recur)
_CANONICAL_MAX = 128  # the repeating names (zones, signers); more would keep leaf names alive


def canonical_name(labels: tuple[bytes, ...]) -> bytes:
    """The canonical wire form of an absolute name's labels (RFC 4034 §6.2): each label behind
    its length, ASCII letters lowercased (``bytes.lower`` is ASCII-only, as dnspython's; label
    lengths are below 64, which it leaves alone). Remembered per spelling, a bounded few."""
    found = _CANONICAL.get(labels)
    if found is None:
        found = b"".join([bytes((len(label),)) + label for label in labels]).lower()
        if len(_CANONICAL) >= _CANONICAL_MAX:
            _CANONICAL.clear()
        _CANONICAL[labels] = found
    return found


def signed_data(rrset: dns.rrset.RRset, rrsig: RRSIG) -> bytes:
    """What ``rrsig`` signs over ``rrset`` (RFC 4034 §3.1.8.1): the bytes dnspython's
    ``_make_rrsig_signature_data`` builds, with its failures (relative names, labels above the
    owner's, a wildcard owner with another labels count)."""
    name, signer = rrset.name, rrsig.signer
    if not (name.is_absolute() and signer.is_absolute()):
        return dns.dnssec._make_rrsig_signature_data(rrset, rrsig)  # noqa: SLF001 - its errors
    labels = name.labels
    count = len(labels)  # the root label included
    if labels[0] == b"*" and rrsig.labels != count - 2:
        raise dns.dnssec.ValidationFailure("wild owner name has wrong label length")
    if count - 1 < rrsig.labels:
        raise dns.dnssec.ValidationFailure("owner name longer than RRSIG labels")
    if rrsig.labels < count - 1:
        owner = b"\x01*" + canonical_name(labels[count - rrsig.labels - 1:])
    else:
        owner = canonical_name(labels)
    prefix = owner + _FIXED.pack(rrset.rdtype, rrset.rdclass, rrsig.original_ttl)
    parts = [_HEAD.pack(rrsig.type_covered, rrsig.algorithm, rrsig.labels, rrsig.original_ttl,
                        rrsig.expiration, rrsig.inception, rrsig.key_tag), canonical_name(signer.labels)]
    for rdata in sorted([rd.to_digestable() for rd in rrset]):
        parts += (prefix, _LENGTH.pack(len(rdata)), rdata)
    return b"".join(parts)


def ds_digest(owner: dns.name.Name, key, digest_type: int) -> bytes | None:
    """The digest a DS of ``digest_type`` holds for DNSKEY ``key`` at ``owner`` (RFC 4034
    §5.1.4), as ``dns.dnssec.make_ds`` computes it; None for a digest type it does not know."""
    make = _HASHES.get(digest_type)
    if make is None:
        return None
    if not owner.is_absolute():
        raise dns.name.NeedAbsoluteNameOrOrigin  # as make_ds's to_wire() of the owner
    return make(canonical_name(owner.labels) + key.to_wire()).digest()
