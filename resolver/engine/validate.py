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

from ..dnssec.verify import verify_dnskeys, verify_rrset, wildcard_source
from ..nametext import type_text
from ..status import Status
from .scrub import Scrubbed

RRSIG = dns.rdatatype.RRSIG


@dataclass(frozen=True)
class Check:
    status: Status
    why: str
    ttl: int | None = None
    steps: tuple[str, ...] = ()  # what each NSEC3 of a denial proved (cid dig +trace)


def _from(verdict) -> Check:
    return Check(verdict.status, verdict.why, getattr(verdict, "ttl", None), getattr(verdict, "steps", ()))


def _guard(what, fn, *args, **kw) -> Check:
    """``what``: the text naming the checked data, or a callable making it (only an error
    needs it: a name's text costs more than many checks)."""
    try:
        return _from(fn(*args, **kw))
    except Exception as exc:  # hostile input must end as BOGUS, never as a crash or a pass
        return Check(Status.BOGUS, f"{what() if callable(what) else what}: validator error: {exc}")


def check_rrset(rrset, rrsigs, dnskeys, zone: dns.name.Name, now: float) -> Check:
    return _guard(lambda: f"{rrset.name} {type_text(rrset.rdtype)}", verify_rrset,
                  rrset, rrsigs, dnskeys, zone=zone, now=now)


def check_dnskeys(dnskeys, rrsigs, zone: dns.name.Name, now: float, *, ds=None, anchor_keys=None) -> Check:
    return _guard(lambda: f"{zone} DNSKEY", verify_dnskeys, dnskeys, rrsigs, zone=zone, now=now,
                  ds=ds, anchor_keys=anchor_keys)


def wildcard_of(rrset, rrsigs) -> dns.name.Name | None:
    try:
        return wildcard_source(rrset, rrsigs)
    except Exception:
        return None


def signer_of(rrsigs) -> dns.name.Name | None:
    if rrsigs is None or len(rrsigs) == 0:
        return None
    return rrsigs[0].signer


DENIAL_TYPES = (dns.rdatatype.NSEC, dns.rdatatype.NSEC3)


def verified_nsecs(msg: Scrubbed, dnskeys, zone: dns.name.Name, now: float) -> tuple[list, Check | None]:
    """Every NSEC and NSEC3 in the authority section, each verified; a single bad one makes it
    BOGUS (an attacker must not be able to mix a forged record in with genuine ones)."""
    nsecs = []
    for rrset in msg.authority:
        if rrset.rdtype not in DENIAL_TYPES:
            continue
        check = check_rrset(rrset, msg.sigs("authority", rrset), dnskeys, zone, now)
        if check.status is not Status.SECURE:
            return [], check
        nsecs.append(rrset)
    return nsecs, None


def prove(kind: str, *args) -> Check:
    """Run one denial proof over the (verified) records among ``args``: NSEC proofs when the
    records include NSEC, NSEC3 proofs (RFC 5155 §8) when they hold only NSEC3, and both in
    turn for a response carrying both (the stronger verdict wins)."""
    from ..dnssec import nsec, nsec3
    position = {"nxdomain": 1, "nodata": 2, "no_ds": 1, "wildcard": 2}[kind]
    records = args[position]
    has_nsec = any(r.rdtype == dns.rdatatype.NSEC for r in records)
    has_nsec3 = any(r.rdtype == dns.rdatatype.NSEC3 for r in records)
    checks = []
    for module, present in ((nsec, has_nsec), (nsec3, has_nsec3)):
        if present or (module is nsec and not has_nsec3):
            fn = {"nxdomain": module.prove_nxdomain, "nodata": module.prove_nodata,
                  "no_ds": module.prove_no_ds, "wildcard": module.prove_wildcard_expansion}[kind]
            mine = [r for r in records if r.rdtype == (dns.rdatatype.NSEC3 if module is nsec3 else dns.rdatatype.NSEC)]
            call = (*args[:position], mine, *args[position + 1:])
            checks.append(_guard(f"{kind} proof", fn, *call))
    if len(checks) == 1:
        return checks[0]
    order = {Status.SECURE: 0, Status.INSECURE: 1, Status.BOGUS: 2, Status.INDETERMINATE: 3}
    return min(checks, key=lambda c: order[c.status])


def nsec_shows_unsigned_cut(authority, name: dns.name.Name) -> bool:
    """The (already verified) NSEC or NSEC3 matching ``name`` says: a delegation (NS) without
    DS, not an apex."""
    from ..dnssec.nsec import nsec_types
    from ..dnssec.nsec3 import shows_unsigned_cut
    for rrset in authority:
        if rrset.rdtype == dns.rdatatype.NSEC and rrset.name == name:
            types = nsec_types(rrset[0])
            return (dns.rdatatype.NS in types and dns.rdatatype.DS not in types
                    and dns.rdatatype.SOA not in types)
    return shows_unsigned_cut(authority, name)
