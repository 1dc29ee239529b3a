"""Every HTTP error is one JSON object ``{"error": CODE, "status": N, "message": LINE, ...}``;
no traceback ever reaches a client (a bug is a 500 with a fixed message, logged here)."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)
JSON = "application/json"
# What the handlers find in the application (aiohttp AppKeys: typed, no string clashes).
DNS_KEY: web.AppKey = web.AppKey("dns", object)
RESOLVER_KEY: web.AppKey = web.AppKey("resolver", object)
METRICS_KEY: web.AppKey = web.AppKey("metrics", object)
OPENAPI_KEY: web.AppKey = web.AppKey("openapi", dict)


class ApiError(Exception):
    """An error answered as JSON: ``status`` (HTTP), ``code`` (stable word), ``message`` (one
    line) and extra members (e.g. ``parameter``, ``key``)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    body = {"error": code, "status": status, "message": message, **extra}
    return web.Response(status=status, body=json.dumps(body, ensure_ascii=False).encode(),
                        content_type=JSON)


_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 408: "timeout",
          413: "too_large", 414: "uri_too_long", 415: "unsupported_media_type", 431: "headers_too_large"}


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, **exc.extra)
    except web.HTTPException as exc:  # aiohttp's own: unknown route, wrong method, body too large
        if exc.status < 400:
            raise
        return error_response(exc.status, _CODES.get(exc.status, "http_error"), exc.reason)
    except Exception:  # noqa: BLE001 - a bug costs one request, never shows a traceback
        log.exception("HTTP %s %s failed", request.method, request.path)
        return error_response(500, "internal", "internal error (logged by the server)")
