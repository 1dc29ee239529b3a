"""``cid find NAMESPACE``: identifiers in a namespace and its delegated children whose validated
capabilities and load match every ``--where``, ranked (spec/discovery.md §3).

Exit status: 0 at least one identifier matched; 1 none matched or the search failed; 2 usage.
All the search logic is ``Resolver.find``; this module parses options and prints.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import loop
from .. import identifier as ident
from ..discovery import ConditionError, FindResult, SortKey, parse_where
from ..discovery.conditions import lookup_key
from ..resolution import Resolution
from .main import CliError
from ..client import ValidationRefused
from .options import add_resolver_options, refusal_text, resolver_from_args

MAX_DEADLINE = 3600


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "find", help="find identifiers in a namespace by capabilities and load",
        description="Search NAMESPACE (cid:NAME or NAME.) and the namespaces delegated below it "
                    "for identifiers matching every --where, validating with DNSSEC.")
    parser.add_argument("namespace", metavar="NAMESPACE", help="e.g. cid:cmcc.cid")
    parser.add_argument("--where", action="append", default=[], metavar="EXPR",
                        help="KEY OP VALUE with OP one of = != < <= > >= (LOAD first, then CAPS); "
                             "repeat to AND, e.g. --where accel_vendor=nvidia --where 'accel_free>=2'")
    parser.add_argument("--sort", metavar="KEY",
                        help="rank by KEY (descending for *_free, *_count, *_bytes, *_norm; "
                             "ascending otherwise; --sort=-KEY reverses); default: free capacity")
    parser.add_argument("--limit", type=int, metavar="N", help="print the first N matches")
    parser.add_argument("--deadline", type=float, default=None, metavar="S",
                        help="seconds for the whole search (default 30)")
    add_resolver_options(parser)
    parser.add_argument("--json", action="store_true", help="print the matches as a JSON list")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Every usage error is found before a query is sent.
    try:
        ident.parse(args.namespace)
        parse_where(args.where)
        if args.sort is not None:
            SortKey.parse(args.sort)
    except (ident.IdentifierError, ConditionError) as exc:
        raise CliError(str(exc)) from None
    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit {args.limit}: must be at least 1")
    if args.deadline is not None and not 0 < args.deadline <= MAX_DEADLINE:
        raise CliError(f"--deadline {args.deadline:g}: must be more than 0 and at most {MAX_DEADLINE} seconds")
    resolver = resolver_from_args(args)
    try:
        result = loop.run(resolver.find(args.namespace, where=args.where, sort=args.sort,
                                           limit=args.limit, deadline=args.deadline))
    except ValidationRefused as exc:  # fail closed (spec/resolution.md §5.1): exit 1, one line
        raise CliError(refusal_text(exc), code=1) from None
    if args.json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    elif result.results:
        print(format_results(result, args.sort))
    for line in summary_lines(result):
        print(line, file=sys.stderr)
    return 0 if result.found else 1


def summary_lines(result: FindResult) -> list[str]:
    """What happened, for standard error: status, counts, and each skipped item."""
    lines = [f"; {result.namespace}: {len(result)} shown, status {result.status.value}: {result.why}"]
    lines += [f"; skipped {s.name}: {s.why}" for s in result.skipped]
    return lines


def format_results(result: FindResult, sort: str | None = None) -> str:
    """One aligned line per identifier with the figures a person chooses by."""
    extra = SortKey.parse(sort).key if sort else None
    rows = [_row(r, extra) for r in result]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


_SHOWN = {"accel_slug", "accel_kind", "accel_free", "accel_count", "cpu_free", "cpu_count",
          "price_per_hour", "currency", "region", "accel_util_ratio"}


def _row(r: Resolution, extra: str | None) -> list[str]:
    caps, load = r.capabilities, r.load or {}
    what = caps.get("accel_slug") or caps.get("accel_kind") or caps.get("kind") or "-"
    if "accel_free" in load or "accel_count" in caps:
        free = f"free {_text(load.get('accel_free', '?'))}/{_text(caps.get('accel_count', '?'))}"
    elif "cpu_free" in load or "cpu_count" in caps:
        free = f"cpu {_text(load.get('cpu_free', '?'))}/{_text(caps.get('cpu_count', '?'))}"
    else:
        free = "-"
    util = f"util {_text(load['accel_util_ratio'])}" if "accel_util_ratio" in load else "-"
    found, price = lookup_key(r, "price_per_hour")
    price_text = f"{_text(price)} {caps.get('currency', '')}/h".replace(" /h", "/h") if found else "-"
    region = _text(caps.get("region", "-"))
    if r.endpoints and r.endpoints[0].addresses:
        e = r.endpoints[0]
        address = e.addresses[0]
        host = f"[{address}]" if ":" in address else address
        where_to = f"{host}:{e.port}" if e.port is not None else host
    else:
        where_to = "-"
    row = [r.identifier, r.status.value, what, free, util, price_text, region, where_to]
    if extra and extra not in _SHOWN:
        found, value = lookup_key(r, extra)
        row.append(f"{extra}={_text(value) if found else '-'}")
    return row


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
