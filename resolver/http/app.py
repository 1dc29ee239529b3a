"""The aiohttp application and its listener: routes, bounds (request size, header size and
count, idle and slow clients, connections) and errors as JSON even for requests aiohttp's
parser rejects before any route runs."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from . import api, doh, metrics, openapi
from .errors import DNS_KEY, METRICS_KEY, OPENAPI_KEY, RESOLVER_KEY, error_response, json_errors

log = logging.getLogger(__name__)

MAX_BODY = doh.MAX_MESSAGE  # the only body accepted is one DNS message (413 beyond)
MAX_HEADERS = 64
MAX_LINE = 8190  # request line (URL) octets; longer: 400
MAX_FIELD = 8190
IDLE_TIMEOUT = 10.0  # a connection without a complete request for this long is closed
MAX_CONNECTIONS = 512

_JSON_RESPONSES = {"200": {"description": "OK", "content": {"application/json": {}, "application/msgpack": {}}}}
ROUTES: list[tuple[str, str, Any, dict]] = [
    ("GET", "/v1/resolve/{identifier}", api.resolve, {
        "summary": "Resolve one identifier (spec/json.md)",
        "parameters": [{"name": "identifier", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "the Resolution", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Resolution"}},
            "application/msgpack": {"schema": {"$ref": "#/components/schemas/Resolution"}}}},
            "403": {"description": "refused by the validation policy"},
            "404": {"description": "NXDOMAIN"}, "502": {"description": "bogus or failed"}}}),
    ("GET", "/v1/find", api.find, {
        "summary": "Find identifiers by capabilities and load (spec/discovery.md §3)",
        "parameters": [{"name": n, "in": "query", "required": n == "namespace", "schema": {"type": "string"}}
                       for n in ("namespace", "where", "sort", "limit", "currency", "need", "max_age",
                                 "allow_stale", "deadline")],
        "responses": _JSON_RESPONSES}),
    ("GET", "/dns-query", doh.get, {"summary": "DoH, RFC 8484 GET", "parameters": [
        {"name": "dns", "in": "query", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "DNS response", "content": {doh.DNS_MESSAGE: {}}}}}),
    ("POST", "/dns-query", doh.post, {"summary": "DoH, RFC 8484 POST",
        "requestBody": {"required": True, "content": {doh.DNS_MESSAGE: {}}},
        "responses": {"200": {"description": "DNS response", "content": {doh.DNS_MESSAGE: {}}}}}),
    ("GET", "/healthz", None, {"summary": "Liveness: 200 while the DNS listeners are bound",
                               "responses": {"200": {"description": "serving"}, "503": {"description": "not serving"}}}),
    ("GET", "/metrics", metrics.handler, {"summary": "Prometheus text exposition",
                                          "responses": {"200": {"description": "metrics"}}}),
    ("GET", "/v1/openapi.json", None, {"summary": "This document",
                                       "responses": {"200": {"description": "OpenAPI 3.1"}}}),
]


async def healthz(request: web.Request) -> web.Response:
    addresses = request.app[DNS_KEY].addresses
    body = {"status": "ok" if addresses else "not serving", "dns": [f"{h}:{p}" for h, p in addresses]}
    return web.json_response(body, status=200 if addresses else 503)


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI_KEY])


@web.middleware
async def counted(request: web.Request, handler) -> web.StreamResponse:
    response = await handler(request)
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    request.app[METRICS_KEY].count_http(route, response.status)
    return response


def make_app(dns_server, resolver) -> web.Application:
    """The application over ``dns_server`` (a RecursiveServer, for DoH and counters) and its Resolver."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[counted, json_errors])
    app[DNS_KEY], app[RESOLVER_KEY] = dns_server, resolver
    app[METRICS_KEY] = metrics.Metrics(dns_server, resolver)
    own = {"/healthz": healthz, "/v1/openapi.json": openapi_json}
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, handler or own[path])
    app[OPENAPI_KEY] = openapi.document([(m, p, op) for m, p, _, op in ROUTES])
    return app


AUTH_PATHS = ("/v1/resolve/{identifier}", "/v1/find", "/dns-query", "/healthz", "/metrics", "/v1/openapi.json")


class _AuthQueries:
    """What DoH reaches on the authoritative server: standard queries only. Transfers need the
    client's address for the ACL and UPDATEs belong on the DNS port (RFC 8484 carries queries),
    so both are REFUSED here; the counters and addresses are the DNS server's."""

    def __init__(self, server):
        self.server = server

    @property
    def addresses(self):
        return self.server.addresses

    def handle(self, wire: bytes, tcp: bool, later):
        from ..auth.primary import header_only
        from ..auth.transfer import is_transfer
        if len(wire) >= 12 and ((wire[2] >> 3) & 0xF != 0 or is_transfer(wire)):
            return header_only(wire, 5)  # REFUSED
        return self.server.handle(wire, tcp, later)


def _auth_operation(path: str, operation: dict) -> dict:
    """The resolver's operation, its 404 saying what else it means on the authoritative server."""
    if path not in ("/v1/resolve/{identifier}", "/v1/find"):
        return operation
    responses = {**operation["responses"], "404": {"description": "NXDOMAIN, or not_served: under no zone this server serves"}}
    return {**operation, "responses": responses}


def make_auth_app(dns_server, resolver=None) -> web.Application:
    """``cid serve auth --http``: /v1/resolve and /v1/find (the same handlers as the resolver's,
    over ``resolver``, an auth_resolve.AuthResolver; by default one anchored at the served
    zones' own keys), DoH (queries), /healthz, /metrics (auth_metrics) and the OpenAPI
    document, over ``dns_server`` (an AuthServer)."""
    from . import auth_metrics
    from .auth_resolve import AuthResolver
    if resolver is None:
        resolver = AuthResolver(dns_server.store, lambda: dns_server.addresses)
    app = web.Application(client_max_size=MAX_BODY, middlewares=[counted, json_errors])
    app[DNS_KEY], app[RESOLVER_KEY] = _AuthQueries(dns_server), resolver
    app[METRICS_KEY] = auth_metrics.AuthMetrics(dns_server, resolver)
    own = {"/healthz": healthz, "/v1/openapi.json": openapi_json}
    routes = [(m, path, handler, _auth_operation(path, op)) for m, path, handler, op in ROUTES if path in AUTH_PATHS]
    for method, path, handler, _ in routes:
        app.router.add_route(method, path, own.get(path, handler))
    app[OPENAPI_KEY] = openapi.document([(m, path, op) for m, path, _, op in routes])

    async def close_resolver(_app: web.Application) -> None:
        await resolver.close()
    app.on_cleanup.append(close_resolver)
    return app


class _JsonErrorHandler(RequestHandler):
    """aiohttp's connection handler, with its own errors (unparseable request, header too
    large, a bug) answered as JSON instead of text, and a bound on open connections."""

    __slots__ = ()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if len(self._manager.connections) > MAX_CONNECTIONS:  # type: ignore[union-attr]
            transport.close()

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= 500:
            log.error("HTTP request failed", exc_info=exc)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started")
        text = "internal error (logged by the server)" if status >= 500 else (message or "bad request")
        response = error_response(status, "bad_request" if status < 500 else "internal", text.splitlines()[0][:200])
        response.force_close()
        return response


class HttpFrontEnd:
    """``app`` served on (host, port); port 0 picks one (``address`` after start)."""

    def __init__(self, app: web.Application, host: str, port: int):
        self.app, self.host, self.port = app, host, port
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.base_events.Server | None = None
        self.address: tuple[str, int] | None = None
        self.reuse_port = False  # --workers N: every worker listens on the one address

    async def start(self) -> None:
        runner = web.AppRunner(self.app, access_log=None, keepalive_timeout=IDLE_TIMEOUT,
                               max_line_size=MAX_LINE, max_field_size=MAX_FIELD, max_headers=MAX_HEADERS,
                               handle_signals=False)
        await runner.setup()
        self._runner = runner
        server = runner.server
        kwargs = dict(keepalive_timeout=IDLE_TIMEOUT, max_line_size=MAX_LINE, max_field_size=MAX_FIELD,
                      max_headers=MAX_HEADERS, access_log=None)
        loop = asyncio.get_running_loop()
        try:
            self._listener = await loop.create_server(
                lambda: _JsonErrorHandler(server, loop=loop, **kwargs), self.host, self.port,
                reuse_address=True, reuse_port=self.reuse_port or None, backlog=1024)
        except OSError:
            await runner.cleanup()
            raise
        self.address = self._listener.sockets[0].getsockname()[:2]

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            await self._listener.wait_closed()
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class DnsWithHttp:
    """A DNS front end and its HTTP front end started and stopped together (``cid serve
    resolver --http``); ``addresses`` are the DNS ones, ``http.address`` the HTTP one."""

    def __init__(self, dns_server, http: HttpFrontEnd):
        self.dns, self.http = dns_server, http

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return self.dns.addresses

    async def start(self) -> None:
        await self.dns.start()
        try:
            await self.http.start()
        except BaseException:
            await self.dns.close()
            raise

    async def drain(self, timeout: float = 5.0) -> None:
        await self.http.close()
        await self.dns.drain(timeout)

    async def close(self) -> None:
        await self.http.close()
        await self.dns.close()
