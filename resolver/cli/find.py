"""``cid find NAMESPACE``: identifiers in a namespace and its delegated children whose validated
capabilities and load match every ``--where``, ranked (spec/discovery.md §3, §5).

Exit status: 0 at least one identifier matched; 1 none matched, the namespace does not exist,
the search failed or was refused; 2 usage. All the search logic is ``Resolver.find``; this
module parses options and prints. Heavy modules are imported only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from .main import CliError
from .options import add_resolver_options

if TYPE_CHECKING:
    from ..discovery.search import FindResult, Match
    from ..resolution import Resolution

MAX_DEADLINE = 3600
HELP = "find identifiers in a namespace by capabilities and load"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "find", help=HELP,
        description="Search NAMESPACE (cid:NAME or NAME.) and the namespaces delegated below it "
                    "for identifiers matching every --where, validating with DNSSEC "
                    "(spec/discovery.md §3, §5).")
    parser.add_argument("namespace", metavar="NAMESPACE", help="e.g. cid:cmcc.cid")
    parser.add_argument("--where", action="append", default=[], metavar="EXPR",
                        help="KEY OP VALUE, OP one of = != < <= > >= in notin (lists: 'region in [bj,sh]'); "
                             "registry keys (spec/capabilities.md), extension keys with a '.', or cost; "
                             "units: 80GiB, 512G, 3GHz, 10Gbps, 5min, 80%%; repeat to AND")
    parser.add_argument("--sort", metavar="KEYS",
                        help="rank by KEY[+|-][,KEY[+|-]...], e.g. price_per_hour+,accel_free- "
                             "(no suffix: descending for *_free, *_count, *_bytes, *_norm, *_hz, *_bps; ascending "
                             "otherwise); default: free capacity, or cost with --need")
    parser.add_argument("--limit", type=int, metavar="N", help="print the first N matches")
    parser.add_argument("--currency", metavar="CODE",
                        help="keep prices in this ISO 4217 currency only (with --rates: convert into it)")
    parser.add_argument("--rates", metavar="FILE",
                        help="TOML exchange rates ([rates] base, date, CODE = rate) to compare prices "
                             "in several currencies")
    parser.add_argument("--need", type=int, metavar="N",
                        help="devices needed: keep accel_free >= N, rank by the cost of N devices")
    parser.add_argument("--max-age", metavar="S",
                        help="drop results whose LOAD ts is older than S seconds (also 90s, 5min, 1h)")
    parser.add_argument("--allow-stale", action="store_true",
                        help="let stale LOAD (served from expired cache, or ts older than 5 × TTL) "
                             "count as live capacity")
    parser.add_argument("--deadline", type=float, default=None, metavar="S",
                        help="seconds for the whole search (default 30)")
    add_resolver_options(parser)
    parser.add_argument("--json", action="store_true",
                        help="print the matches as a JSON list; the summary goes to standard error as one JSON object")
    parser.set_defaults(func=run)


def _max_age(text: str | None) -> float | None:
    from ..discovery import units
    if text is None:
        return None
    try:
        value = units.parse_quantity(text, "s")
    except units.UnitError as exc:
        raise CliError(f"--max-age {text}: {exc} (seconds, or 90s, 5min, 1h)") from None
    if not 0 < value <= 10 * 365 * 86400:
        raise CliError(f"--max-age {text}: must be more than 0 seconds and at most 10 years")
    return value


def run(args: argparse.Namespace) -> int:
    from .. import identifier as ident
    from ..client import ValidationRefused
    from ..discovery import ConditionError
    from ..discovery.conditions import parse_sort, parse_where
    from ..discovery.prices import MixedCurrencies, RatesError, currency_code, load_rates
    from .options import refusal_text, resolver_from_args

    # Every usage error is found before a query is sent (spec/discovery.md §3 step 1).
    try:
        ident.parse(args.namespace)
    except ident.IdentifierError as exc:
        raise CliError(str(exc)) from None
    try:
        where = parse_where(args.where)
    except ConditionError as exc:
        raise CliError(f"--where {exc}") from None
    try:
        sort = parse_sort(args.sort) if args.sort is not None else None
    except ConditionError as exc:  # "sort key bogus: unknown key ..." -> "--sort bogus: ..."
        raise CliError(f"--sort {str(exc).removeprefix('sort key ').removeprefix('sort ')}") from None
    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit {args.limit}: must be at least 1")
    if args.need is not None and not 1 <= args.need <= 1_000_000:
        raise CliError(f"--need {args.need}: the devices needed, 1-1000000")
    if args.deadline is not None and not 0 < args.deadline <= MAX_DEADLINE:
        raise CliError(f"--deadline {args.deadline:g}: must be more than 0 and at most {MAX_DEADLINE} seconds")
    try:
        currency = currency_code(args.currency, "--currency") if args.currency is not None else None
    except ConditionError as exc:
        raise CliError(str(exc)) from None
    try:
        rates = load_rates(args.rates) if args.rates is not None else None
    except RatesError as exc:
        raise CliError(f"--rates {exc}") from None
    max_age = _max_age(args.max_age)
    resolver = resolver_from_args(args)
    from . import loop
    try:
        result = loop.run(resolver.find(args.namespace, where=where, sort=sort, limit=args.limit,
                                        deadline=args.deadline, currency=currency, rates=rates,
                                        need=args.need, max_age=max_age, allow_stale=args.allow_stale))
    except ValidationRefused as exc:  # fail closed (spec/resolution.md §5.1): exit 1, one line
        raise CliError(refusal_text(exc), code=1) from None
    except MixedCurrencies as exc:
        raise CliError(f"{exc.what} over prices in several currencies ({', '.join(exc.currencies)}): "
                       "pass --currency CODE to keep one, or --rates FILE to convert them") from None
    except ConditionError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        print(json.dumps(result.summary_json(results=False), ensure_ascii=False), file=sys.stderr)
        return 0 if result.found else 1
    if result.rcode == "NXDOMAIN":  # said plainly, one line (cid find: cid:x: no such namespace ...)
        raise CliError(result.why, code=1)
    if result.results:
        print(format_results(result))
    for line in summary_lines(result):
        print(line, file=sys.stderr)
    return 0 if result.found else 1


def summary_lines(result: FindResult) -> list[str]:
    """What happened, for standard error: what was shown and what was skipped, each with its
    status, then the counts and reasons, then each skipped item."""
    shown = f"{len(result)} shown"
    if result.shown_status is not None:
        shown += f", status {result.shown_status.value}"
    skipped = f"{len(result.skipped) + result.unreported} skipped"
    if result.skipped_status is not None:
        skipped += f", status {result.skipped_status.value}"
    extras = []
    if result.currency:
        extras.append(f"prices in {result.currency}" + (f" (rates of {result.rates.date.isoformat()}, "
                                                        f"{result.rates.source})" if result.rates else ""))
    if result.need is not None:
        extras.append(f"need {result.need}")
    if result.unreported:
        skipped += f" ({result.unreported} not listed one by one)"
    lines = [f"; {result.namespace}: {shown}; {skipped}; " + "; ".join([*extras, *result.notes])]
    lines += [f"; skipped {s.name}: {s.why}" for s in result.skipped]
    return lines


_SHOWN = {"accel_slug", "accel_kind", "accel_free", "accel_count", "cpu_free", "cpu_count",
          "price_per_hour", "currency", "region", "accel_util_ratio", "cost", "ts"}


def format_results(result: FindResult) -> str:
    """One aligned line per identifier with the figures a person chooses by."""
    extra = [k.key for k in result.sort if k.key not in _SHOWN]
    show_cost = result.need is not None or any(k.key == "cost" for k in result.sort)
    rows = [_row(r, m, extra, show_cost) for r, m in zip(result, result.matches)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def _row(r: Resolution, m: Match, extra: list[str], show_cost: bool) -> list[str]:
    from ..discovery.conditions import lookup_key
    caps = r.capabilities
    load = (r.load or {}) if m.load_live else {}
    what = caps.get("accel_slug") or caps.get("accel_kind") or caps.get("kind") or "-"
    if "accel_free" in load or "accel_count" in caps:
        free = f"free {_text(load.get('accel_free', '?'))}/{_text(caps.get('accel_count', '?'))}"
    elif "cpu_free" in load or "cpu_count" in caps:
        free = f"cpu {_text(load.get('cpu_free', '?'))}/{_text(caps.get('cpu_count', '?'))}"
    else:
        free = "-"
    util = f"util {_text(load['accel_util_ratio'])}" if "accel_util_ratio" in load else "-"
    if m.price is not None:
        price_text = f"{_text(m.price)} {m.currency}/h" if m.currency else f"{_text(m.price)}/h"
        if m.compared is not None and m.compare_currency != m.currency:
            price_text += f" (≈{m.compared:.2f} {m.compare_currency})"
    else:
        price_text = "-"
    row = [r.identifier, r.status.value, what, free, util, price_text]
    if show_cost:
        row.append(f"cost {m.cost:.2f} {m.compare_currency}/h" if m.cost is not None else "cost -")
    region = _text(caps.get("region", "-"))
    if r.endpoints and r.endpoints[0].addresses:
        e = r.endpoints[0]
        address = e.addresses[0]
        host = f"[{address}]" if ":" in address else address
        where_to = f"{host}:{e.port}" if e.port is not None else host
    else:
        where_to = "-"
    row += [region, where_to, _age(r, m)]
    for key in extra:
        found, value = lookup_key(r, key) if m.load_live else (key in caps, caps.get(key))
        row.append(f"{key}={_text(value) if found else '-'}")
    return row


def _age(r: Resolution, m: Match) -> str:
    """The age of the LOAD shown: ``age 12s``; ``(stale)`` when it was not used as live data."""
    if r.load is None:
        return "age -"
    text = f"age {m.load_age:.0f}s" if m.load_age is not None else "age ?"
    if m.load_note.startswith("stale"):
        text += " (stale)" if not m.load_live else " (stale, allowed)"
    return text


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
