"""``cid dig NAME [TYPE]`` without @SERVER: answer with our own validating resolver, printed in
dig's layout; AD only when the answer is secure; ``+trace`` prints each delegation step and
each validation verdict, one per line, before the answer. ``+json`` adds the validation
status and why (``"validation": {"status", "why"}``) to dig's JSON form."""

from __future__ import annotations

import argparse
import json

from .main import CliError


def dig_via_resolver(args: argparse.Namespace) -> int:
    import dns.exception
    import dns.name
    import dns.rdatatype

    from . import loop
    from .dig import header
    from .options import resolver_from_args
    from .output import message_to_json, render_message

    try:
        qname = dns.name.from_text(args.name)
        rdtype = dns.rdatatype.from_text(getattr(args, "rdtype", None) or "A")
    except (dns.exception.DNSException, ValueError) as exc:
        raise CliError(f"{args.name!r}: {exc}") from None
    resolver = resolver_from_args(args)
    cd = bool(getattr(args, "cd", False))
    # Like dig, it shows what came, with its validation status (AD and ;; VALIDATION:), even when
    # cid resolve would refuse it.
    lookup = loop.run(resolver.lookup(qname, rdtype, cd=cd, tcp=bool(getattr(args, "tcp", False)), policy=False))
    message = to_message(lookup, dnssec=bool(getattr(args, "dnssec", False)), cd=cd)
    style = "json" if getattr(args, "json", False) else "short" if getattr(args, "short", False) else "dig"
    config = getattr(args, "config_file", None)
    if style == "json":
        doc = message_to_json(message)
        doc["validation"] = {"status": lookup.status.value, "why": lookup.why}
        if config is not None:
            doc["config"] = str(config)
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    out = []
    if style == "dig":
        out.append("\n" + header(args))
        if config is not None:
            out.append(f"; (resolver settings from {config})")
    if getattr(args, "trace", False):
        if config is not None and style != "dig":
            out.append(f";; resolver settings from {config}")
        out.extend(str(event) for event in lookup.trace)
    out.append(render_message(message, style))
    if style == "dig":
        out.append(f";; VALIDATION: {lookup.status.value} ({lookup.why})")
        out.append(f";; QUERIES: {sum(1 for e in lookup.trace if type(e).__name__ == 'QuerySent')}")
    print("\n".join(line for line in out if line))
    return 0


def to_message(lookup, *, dnssec: bool, cd: bool):
    """The response a validating recursive resolver would send for this lookup."""
    import dns.flags
    import dns.message
    import dns.rcode
    import dns.rdatatype

    from ..status import Status

    query = dns.message.make_query(lookup.qname, lookup.rdtype, want_dnssec=dnssec)
    if cd:
        query.flags |= dns.flags.CD
    response = dns.message.make_response(query, recursion_available=True)
    if dnssec:
        response.use_edns(0, dns.flags.DO, 1232)
    response.set_rcode(dns.rcode.from_text(lookup.rcode))
    if lookup.status is Status.SECURE and lookup.rcode != "SERVFAIL":
        response.flags |= dns.flags.AD  # RFC 4035 §3.2.3: only for data we validated
    response.answer = list(lookup.chain)
    if lookup.rrset is not None:
        response.answer.append(lookup.rrset)
        if dnssec and lookup.rrsigs is not None:
            response.answer.append(lookup.rrsigs)
    for rrset in lookup.authority:
        if rrset.rdtype == dns.rdatatype.SOA or dnssec:
            response.authority.append(rrset)
    return response
