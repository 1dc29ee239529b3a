"""``GET /v1/resolve/{identifier}`` and ``GET /v1/find``: the Resolver's resolve and find with
its policy (spec/resolution.md §5.1), the CLI's query language and errors (spec/discovery.md §3)."""

from __future__ import annotations

import re

from aiohttp import web

from .. import identifier as ident
from ..client import Resolver, ValidationRefused
from ..discovery import ConditionError
from ..discovery.conditions import parse_sort, parse_where
from ..discovery.prices import MixedCurrencies, currency_code
from ..status import Status
from .content import encoded
from .errors import RESOLVER_KEY, ApiError

MAX_IDENTIFIER = 300  # characters: a DNS name is at most 253 written, plus "cid:"
MAX_WHERE = 16  # conditions per find
MAX_DEADLINE = 30.0  # seconds a find may take
_FIRST_TOKEN = re.compile(r"\s*([^\s=!<>\[\]\"]+)")


def _identifier(text: str, parameter: str) -> str:
    if len(text) > MAX_IDENTIFIER:
        raise ApiError(400, "bad_identifier", f"{parameter}: longer than {MAX_IDENTIFIER} characters",
                       parameter=parameter)
    try:
        ident.parse(text)
    except ident.IdentifierError as exc:
        raise ApiError(400, "bad_identifier", str(exc), parameter=parameter) from None
    return text


def _refused(exc: ValidationRefused) -> ApiError:
    """Policy refusals: 403, nothing of the refused answer in the body."""
    code = "unvalidated" if exc.status is Status.INDETERMINATE else "insecure"
    return ApiError(403, code, f"{exc.name}: refused, the answer is {exc.status.value} ({exc.why})",
                    identifier=exc.name, dns_status=exc.status.value)


async def resolve(request: web.Request) -> web.Response:
    resolver: Resolver = request.app[RESOLVER_KEY]
    identifier = _identifier(request.match_info["identifier"], "identifier")
    try:
        result = await resolver.resolve(identifier)
    except ValidationRefused as exc:
        raise _refused(exc) from None
    body = result.to_json()
    if result.status is Status.BOGUS:
        raise ApiError(502, "bogus", f"{result.identifier}: answer failed DNSSEC validation ({result.why})",
                       identifier=result.identifier, dns_status="bogus")
    if result.rcode == "NXDOMAIN":
        raise ApiError(404, "nxdomain", f"{result.identifier}: no such identifier",
                       identifier=result.identifier, resolution=body)
    if result.rcode == "SERVFAIL":
        raise ApiError(502, "resolution_failed", f"{result.identifier}: {result.why}",
                       identifier=result.identifier, resolution=body)
    return encoded(request, body)


def _one(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise ApiError(400, "bad_parameter", f"{name}: given {len(values)} times, once at most", parameter=name)
    return values[0] if values else None


def _number(request: web.Request, name: str, kind: type, low: float, high: float):
    text = _one(request, name)
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name}={text[:64]!r}: not a number", parameter=name) from None
    if not low <= value <= high or value != value:
        raise ApiError(400, "bad_parameter", f"{name}={text[:64]}: must be {low:g}-{high:g}", parameter=name)
    return value


async def find(request: web.Request) -> web.Response:
    resolver: Resolver = request.app[RESOLVER_KEY]
    known = {"namespace", "where", "sort", "limit", "currency", "need", "max_age", "allow_stale", "deadline"}
    unknown = sorted(set(request.query) - known)
    if unknown:
        raise ApiError(400, "bad_parameter", f"unknown parameter {unknown[0][:64]!r} (known: {', '.join(sorted(known))})",
                       parameter=unknown[0][:64])
    namespace = _one(request, "namespace")
    if namespace is None:
        raise ApiError(400, "bad_parameter", "namespace: required (e.g. namespace=cid:cmcc.cid)", parameter="namespace")
    _identifier(namespace, "namespace")
    conditions = request.query.getall("where", [])
    if len(conditions) > MAX_WHERE:
        raise ApiError(400, "bad_parameter", f"where: more than {MAX_WHERE} conditions", parameter="where")
    where = []
    for text in conditions:  # one by one, so the error names the condition and its key
        try:
            where.extend(parse_where([text]))
        except ConditionError as exc:
            token = _FIRST_TOKEN.match(text)
            raise ApiError(400, "bad_condition", f"where {exc}", parameter="where",
                           key=token.group(1)[:64] if token else None) from None
    sort_text = _one(request, "sort")
    try:
        sort = parse_sort(sort_text) if sort_text is not None else None
    except ConditionError as exc:
        token = _FIRST_TOKEN.match(sort_text.split(",")[0].rstrip("+-")) if sort_text else None
        raise ApiError(400, "bad_sort", f"sort {exc}", parameter="sort",
                       key=token.group(1).rstrip("+-")[:64] if token else None) from None
    limit = _number(request, "limit", int, 1, 10_000)
    need = _number(request, "need", int, 1, 1_000_000)
    max_age = _number(request, "max_age", float, 0.001, 10 * 365 * 86400)
    deadline = _number(request, "deadline", float, 0.001, MAX_DEADLINE) or MAX_DEADLINE
    allow_stale = _one(request, "allow_stale")
    if allow_stale not in (None, "true", "false"):
        raise ApiError(400, "bad_parameter", "allow_stale: true or false", parameter="allow_stale")
    currency = _one(request, "currency")
    try:
        currency = currency_code(currency, "currency") if currency is not None else None
        result = await resolver.find(namespace, where=where, sort=sort, limit=limit, deadline=deadline,
                                     currency=currency, need=need, max_age=max_age,
                                     allow_stale=allow_stale == "true")
    except ValidationRefused as exc:
        raise _refused(exc) from None
    except MixedCurrencies as exc:
        raise ApiError(400, "mixed_currencies", f"{exc.what} over prices in several currencies "
                       f"({', '.join(exc.currencies)}): pass currency=CODE", parameter="currency") from None
    except ConditionError as exc:
        raise ApiError(400, "bad_condition", str(exc)) from None
    if result.rcode == "NXDOMAIN":
        raise ApiError(404, "nxdomain", result.why, identifier=namespace)
    return encoded(request, result.summary_json(results=True))
