"""The engine's bridge to the validator (resolver.dnssec): one Check per decision.

The validator's functions are pure; this module only picks their inputs out of a scrubbed
response and turns any exception raised on hostile input into a BOGUS check, so that no
malformed signature or NSEC can crash a resolution or be mistaken for success.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.name
import dns.rdatatype
import dns.rrset

from ..status import Status
from .scrub import Scrubbed

RRSIG = dns.rdatatype.RRSIG


@dataclass(frozen=True)
class Check:
    status: Status
    why: str
    ttl: int | None = None


def _from(verdict) -> Check:
    return Check(verdict.status, verdict.why, getattr(verdict, "ttl", None))


def _guard(what: str, fn, *args, **kw) -> Check:
    try:
        return _from(fn(*args, **kw))
    except Exception as exc:  # hostile input must end as BOGUS, never as a crash or a pass
        return Check(Status.BOGUS, f"{what}: validator error: {exc}")


def check_rrset(rrset, rrsigs, dnskeys, zone: dns.name.Name, now: float) -> Check:
    from ..dnssec.verify import verify_rrset
    return _guard(f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}", verify_rrset,
                  rrset, rrsigs, dnskeys, zone=zone, now=now)


def check_dnskeys(dnskeys, rrsigs, zone: dns.name.Name, now: float, *, ds=None, anchor_keys=None) -> Check:
    from ..dnssec.verify import verify_dnskeys
    return _guard(f"{zone} DNSKEY", verify_dnskeys, dnskeys, rrsigs, zone=zone, now=now,
                  ds=ds, anchor_keys=anchor_keys)


def wildcard_of(rrset, rrsigs) -> dns.name.Name | None:
    from ..dnssec.verify import wildcard_source
    try:
        return wildcard_source(rrset, rrsigs)
    except Exception:
        return None


def signer_of(rrsigs) -> dns.name.Name | None:
    if rrsigs is None or len(rrsigs) == 0:
        return None
    return rrsigs[0].signer


def verified_nsecs(msg: Scrubbed, dnskeys, zone: dns.name.Name, now: float) -> tuple[list, Check | None]:
    """Every NSEC in the authority section, each verified; a single bad one makes it BOGUS
    (an attacker must not be able to mix a forged NSEC in with genuine ones)."""
    nsecs = []
    for rrset in msg.authority:
        if rrset.rdtype != dns.rdatatype.NSEC:
            continue
        check = check_rrset(rrset, msg.sigs("authority", rrset), dnskeys, zone, now)
        if check.status is not Status.SECURE:
            return [], check
        nsecs.append(rrset)
    return nsecs, None


def prove(kind: str, *args) -> Check:
    from ..dnssec import nsec
    fn = {"nxdomain": nsec.prove_nxdomain, "nodata": nsec.prove_nodata,
          "no_ds": nsec.prove_no_ds, "wildcard": nsec.prove_wildcard_expansion}[kind]
    return _guard(f"{kind} proof", fn, *args)


def nsec_shows_unsigned_cut(authority, name: dns.name.Name) -> bool:
    """The (already verified) NSEC at ``name`` says: a delegation (NS) without DS, not an apex."""
    from ..dnssec.nsec import nsec_types
    for rrset in authority:
        if rrset.rdtype == dns.rdatatype.NSEC and rrset.name == name:
            types = nsec_types(rrset[0])
            return (dns.rdatatype.NS in types and dns.rdatatype.DS not in types
                    and dns.rdatatype.SOA not in types)
    return False
