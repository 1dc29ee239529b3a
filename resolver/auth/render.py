"""Master-file text of a zone, fast: the writer behind ``zonefile.zone_to_text``.

Every line is exactly what dnspython's ``Rdata.to_text`` produces (tests compare the two on
varied zones), but the commonest record types are rendered from their fields, owner names and
type names are rendered once and reused, and a zone being signed can be written straight from
``signer.ZoneSignatures`` without first building an NSEC and an RRSIG object per name. Anything
unusual (escaped or relative names, other types, CAPS/LOAD in RFC 3597 form) goes through
dnspython.

Line layout: ``<owner> <ttl> <class> <type> <rdata>``, absolute names, one record per line; SOA
first at a name, then each type followed by its RRSIG; names in DNSSEC canonical order. With
``generic=True`` our private types are written in RFC 3597 form everywhere they appear (records,
RRSIG type covered, NSEC and NSEC3 bitmaps), so BIND, NSD, Knot and ldns can read the file.
"""

from __future__ import annotations

import binascii
import re
import time
from typing import Any

import dns.name
import dns.node
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone

from .. import records
from .signer import ZoneSignatures, _canonical_nodes

PRIVATE_TYPES = frozenset({int(records.CAPS), int(records.LOAD)})  # unknown to peer software
_A, _AAAA, _NS, _CNAME, _PTR, _DNAME = (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.NS,
                                        dns.rdatatype.CNAME, dns.rdatatype.PTR, dns.rdatatype.DNAME)
_RRSIG, _NSEC, _SOA = dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.SOA
_NSEC3 = dns.rdatatype.NSEC3
_TARGET_TYPES = frozenset({_NS, _CNAME, _PTR, _DNAME})  # rdata = one domain name, field "target"
# A label needing an escape in presentation form (dnspython's name._escapify rules).
_SPECIAL = re.compile(rb'[^\x21-\x7e]|["().;\\@$]')
_BASE64_CHUNK = 32  # dnspython breaks base64 into 32-character words


class _Texts:
    """Caches of presentation text shared by every line of one zone."""

    def __init__(self, generic: bool, origin: dns.name.Name | None):
        self.generic = generic
        self.origin = origin
        self.names: dict[tuple[bytes, ...], str] = {}
        self.types: dict[int, str] = {}
        self.times: dict[int, str] = {}
        self.rrsig_heads: dict[tuple[Any, ...], str] = {}

    def name(self, name: dns.name.Name) -> str:
        # Keyed by the labels as spelled: Name equality ignores case, the text must not.
        labels = name.labels
        text = self.names.get(labels)
        if text is None:
            if len(labels) > 1 and not labels[-1] and not _SPECIAL.search(b"".join(labels)):
                text = b".".join(labels).decode("ascii")
            else:
                text = name.to_text()
            self.names[labels] = text
        return text

    def type(self, rdtype: int) -> str:
        text = self.types.get(rdtype)
        if text is None:
            if self.generic and rdtype in PRIVATE_TYPES:
                text = f"TYPE{rdtype}"
            else:
                text = dns.rdatatype.to_text(rdtype)
            self.types[rdtype] = text
        return text

    def time(self, when: int) -> str:
        text = self.times.get(when)
        if text is None:
            text = self.times[when] = time.strftime("%Y%m%d%H%M%S", time.gmtime(when))
        return text

    def rrsig(self, covered: int, algorithm: int, labels: int, ttl: int, expiration: int, inception: int,
              key_tag: int, signer: dns.name.Name, signature: bytes) -> str:
        # Every field but the signature repeats across a zone's RRSIGs: render them once.
        fields = (covered, algorithm, labels, ttl, expiration, inception, key_tag, signer.labels)
        head = self.rrsig_heads.get(fields)
        if head is None:
            head = self.rrsig_heads[fields] = (
                f"{self.type(covered)} {int(algorithm)} {labels} {ttl} {self.time(expiration)} "
                f"{self.time(inception)} {key_tag} {self.name(signer)} ")
        b64 = binascii.b2a_base64(signature, newline=False).decode("ascii")
        if len(b64) > _BASE64_CHUNK:
            b64 = " ".join([b64[i:i + _BASE64_CHUNK] for i in range(0, len(b64), _BASE64_CHUNK)])
        return head + b64

    def nsec(self, following: dns.name.Name, types: list[int]) -> str:
        return " ".join([self.name(following), *[self.type(t) for t in types]])

    def rdata(self, rd: dns.rdata.Rdata) -> str:
        rdtype = rd.rdtype
        if rdtype == _A or rdtype == _AAAA:
            return rd.address  # stored in canonical text form
        if rdtype in _TARGET_TYPES and rd.target.is_absolute():
            return self.name(rd.target)
        if rdtype == _RRSIG and rd.signer.is_absolute():
            return self.rrsig(rd.type_covered, rd.algorithm, rd.labels, rd.original_ttl, rd.expiration,
                              rd.inception, rd.key_tag, rd.signer, rd.signature)
        if rdtype == _NSEC and rd.next.is_absolute():
            return self.nsec(rd.next, list(_bitmap_types(rd.windows)))
        return _dnspython_text(rd, self.generic, self.origin)


def _dnspython_text(rd: dns.rdata.Rdata, generic: bool, origin: dns.name.Name | None) -> str:
    # origin + relativize=False: relative names (a relativized zone) are written absolute.
    text = rd.to_text(origin=origin, relativize=False)
    if not generic:
        return text
    if rd.rdtype in PRIVATE_TYPES:
        return rd.to_generic().to_text()
    if rd.rdtype == _RRSIG and rd.type_covered in PRIVATE_TYPES:
        return f"TYPE{rd.type_covered} " + text.split(" ", 1)[1]
    if rd.rdtype == _NSEC:
        types = [f"TYPE{t}" if t in PRIVATE_TYPES else dns.rdatatype.to_text(t) for t in _bitmap_types(rd.windows)]
        return " ".join([rd.next.derelativize(origin).to_text() if origin else rd.next.to_text(), *types])
    if rd.rdtype == _NSEC3:
        # A peer-signed NSEC3 zone written back out: algorithm, flags, iterations, salt, next hash.
        types = [f"TYPE{t}" if t in PRIVATE_TYPES else dns.rdatatype.to_text(t) for t in _bitmap_types(rd.windows)]
        return " ".join([*text.split()[:5], *types])
    return text


def _bitmap_types(windows) -> list[int]:
    types = []
    for window, bitmap in windows:
        for i, byte in enumerate(bitmap):
            if byte:
                for bit in range(8):
                    if byte & (0x80 >> bit):
                        types.append(window * 256 + i * 8 + bit)
    return types


def zone_text(zone: dns.zone.Zone, *, generic: bool = False, signatures: ZoneSignatures | None = None) -> str:
    """The zone as a master file (see the module text); with ``signatures``, as if
    ``signer.attach_signatures(zone, signatures)`` had been called first."""
    origin = zone.origin
    order = [(key, node) for key, _, node in _canonical_nodes(zone)]
    head = f"$ORIGIN {origin}\n" if origin is not None else ""
    return head + nodes_text(zone, order, generic=generic, signatures=signatures)


def nodes_text(zone: dns.zone.Zone, order: list[tuple[dns.name.Name, dns.node.Node]], *, generic: bool,
               signatures: ZoneSignatures | None) -> str:
    """The lines of the nodes in ``order`` (key, node); ``signatures`` must cover exactly those."""
    origin = zone.origin
    texts = _Texts(generic, origin)
    rdclass = dns.rdataclass.to_text(zone.rdclass)
    lines: list[str] = []
    # Looked up by key identity: the signatures were made from this zone's own key objects, and
    # hashing a dns.name.Name is slow.
    sigs_at: dict[int, list[Any]] = {}
    nsec_at: dict[int, tuple[dns.name.Name, list[int]]] = {}
    if signatures is not None:
        nsec_at = {id(key): (following, types) for key, following, types in signatures.nsec}
        for signed in signatures.rrsets:
            sigs_at.setdefault(id(signed.key), []).append(signed)
    used = 0
    append = lines.append
    for key, node in order:
        owner = texts.name(key.derelativize(origin) if origin else key)
        entries: list[tuple[Any, ...]] = []
        for rds in node.rdatasets:
            base = rds.covers if rds.rdtype == _RRSIG else rds.rdtype
            entries.append((base != _SOA, base, rds.rdtype == _RRSIG, 0, rds))
        if signatures is not None:
            nsec = nsec_at.get(id(key))
            if nsec is not None:
                entries.append((True, _NSEC, False, 1, nsec))
                used += 1
            for signed in sigs_at.get(id(key), ()):
                entries.append((signed.rdtype != _SOA, signed.rdtype, True, 2, signed))
                used += 1
        # SOA first (RFC 1035 §5.2 expects it to open the file), then each type followed by its RRSIG.
        entries.sort(key=lambda e: e[:3])
        for entry in entries:
            kind, item = entry[3], entry[4]
            if kind == 0:
                prefix = f"{owner} {item.ttl} {rdclass} {texts.type(item.rdtype)} "
                for rd in item:
                    append((prefix + texts.rdata(rd)).rstrip())
            elif kind == 1:
                assert signatures is not None
                append(f"{owner} {signatures.nsec_ttl} {rdclass} {texts.type(_NSEC)} {texts.nsec(*item)}")
            else:
                assert signatures is not None
                prefix = f"{owner} {item.ttl} {rdclass} RRSIG "
                for fields, signature in item.signatures:
                    append(prefix + texts.rrsig(*fields, signatures.signer, signature))
    if signatures is not None and used != len(signatures.nsec) + len(signatures.rrsets):
        raise ValueError("the signatures are not for these nodes of this zone")
    lines.append("")
    return "\n".join(lines) if len(lines) > 1 else ""
