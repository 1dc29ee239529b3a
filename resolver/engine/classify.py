"""What a scrubbed response means for the question asked (RFC 1034 §4.3.2 from the client side)."""

from __future__ import annotations

import enum

import dns.name
import dns.rcode
import dns.rdatatype

from .scrub import Scrubbed


class Kind(enum.Enum):
    ANSWER = "answer"        # the RRset asked for
    CNAME = "cname"          # an alias at the name; follow it
    DNAME = "dname"          # a DNAME at an ancestor rewrites the name (RFC 6672); follow the result
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"        # the name exists, the type does not
    REFERRAL = "referral"    # NS for a child zone on the way to the name
    LAME = "lame"            # nothing usable: try another server


def classify(msg: Scrubbed, zone: dns.name.Name, qname: dns.name.Name, qtype: int) -> Kind:
    if msg.find("answer", qname, qtype) is not None:
        return Kind.ANSWER
    if qtype != dns.rdatatype.DNAME and dname_for(msg, qname) is not None:
        # Before CNAME: the CNAME a server synthesises from a DNAME is unsigned (RFC 6672
        # §3.4); the resolver derives it from the validated DNAME itself.
        return Kind.DNAME
    if qtype != dns.rdatatype.CNAME and msg.find("answer", qname, dns.rdatatype.CNAME) is not None:
        return Kind.CNAME
    if msg.rcode == dns.rcode.NXDOMAIN:
        return Kind.NXDOMAIN
    if msg.rcode != dns.rcode.NOERROR or msg.answer:
        return Kind.LAME
    has_soa = any(r.rdtype == dns.rdatatype.SOA for r in msg.authority)
    if referral_ns(msg, zone) is not None and not has_soa:
        # A referral, whatever the AA bit says: some servers set AA on delegations they
        # serve (RFC 1034 §4.3.2 step 3b; Unbound treats them as referrals too).
        return Kind.REFERRAL
    if not has_soa and (msg.foreign_ns or any(r.rdtype == dns.rdatatype.NS for r in msg.authority)):
        # NS only for the zone itself or above it, no SOA: a self- or upward referral, even
        # with AA=1 — lame, never an authoritative NODATA (RFC 4697 §2.5).
        return Kind.LAME
    if msg.aa or has_soa or msg.stray:
        # A non-authoritative reply holding only RRsets unrelated to the question (which the
        # scrubber removed) says nothing exists for it: NODATA, as Unbound takes it.
        return Kind.NODATA
    return Kind.LAME  # non-authoritative empty answer (RFC 4697 §2.5)


def referral_ns(msg: Scrubbed, zone: dns.name.Name):
    """The deepest NS RRset below ``zone`` in the authority section (the scrubber already kept
    only cuts on the path to the query name)."""
    best = None
    for rrset in msg.authority:
        if rrset.rdtype == dns.rdatatype.NS and rrset.name != zone and rrset.name.is_subdomain(zone):
            if best is None or len(rrset.name) > len(best.name):
                best = rrset
    return best


def dname_for(msg: Scrubbed, qname: dns.name.Name):
    """The DNAME RRset of the answer that applies to ``qname``: the deepest one owned by a
    proper ancestor of it (RFC 6672 §2.2), or None."""
    best = None
    for rrset in msg.answer:
        if (rrset.rdtype == dns.rdatatype.DNAME and len(rrset) == 1 and rrset.name != qname
                and qname.is_subdomain(rrset.name) and (best is None or len(rrset.name) > len(best.name))):
            best = rrset
    return best
