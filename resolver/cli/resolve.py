"""``cid resolve ID``: endpoints, capabilities and load of a compute identifier, validated.

Exit status: 0 found; 1 not found (NXDOMAIN/NODATA), failed or bogus; 2 usage error.
"""

from __future__ import annotations

import argparse
import json

from . import loop
from .. import identifier as ident
from ..resolution import Resolution
from .main import CliError
from ..client import ValidationRefused
from .options import add_resolver_options, refusal_text, resolver_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "resolve", help="resolve a compute identifier to endpoints, capabilities and load",
        description="Resolve ID (cid:NAME or NAME.) through the DNS, validating with DNSSEC.")
    parser.add_argument("identifier", metavar="ID", help="e.g. cid:pool-7.bj.cmcc.cid")
    add_resolver_options(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        ident.parse(args.identifier)
    except ident.IdentifierError as exc:
        raise CliError(str(exc)) from None
    resolver = resolver_from_args(args)
    try:
        result = loop.run(resolver.resolve(args.identifier))
    except ValidationRefused as exc:  # fail closed (spec/resolution.md §5.1): exit 1, one line
        raise CliError(refusal_text(exc), code=1) from None
    print(json.dumps(result.to_json(), indent=2, ensure_ascii=False) if args.json else format_resolution(result))
    return 0 if result.found else 1


def format_resolution(r: Resolution) -> str:
    """Human-readable lines for one Resolution (also used by cid demo)."""
    lines = [f"{r.identifier}  ({r.name})",
             f"status: {r.status.value} — {r.why}",
             f"rcode: {r.rcode}  ttl: {r.ttl}"]
    if r.rcode == "NXDOMAIN":
        lines.append("not found: the identifier does not exist")
    elif r.rcode == "NOERROR" and not r.endpoints and not r.capabilities:
        lines.append("not found: no SVCB or CAPS records at the identifier")
    for e in r.endpoints:
        port = f" port {e.port}" if e.port is not None else ""
        alpn = f" alpn {','.join(e.alpn)}" if e.alpn else ""
        addresses = " ".join(e.addresses) or "(no addresses)"
        lines.append(f"endpoint {e.priority} {e.target}{port}{alpn} -> {addresses}")
    if r.capabilities:
        lines.append("capabilities: " + " ".join(f"{k}={_value(v)}" for k, v in r.capabilities.items()))
    if r.load is not None:
        lines.append("load: " + " ".join(f"{k}={_value(v)}" for k, v in r.load.items()))
    return "\n".join(lines)


def _value(v) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
