"""Response bodies: JSON by default, msgpack when the client prefers ``application/msgpack``
(RFC 9110 §12.5.1 Accept with q-values)."""

from __future__ import annotations

import json
from typing import Any

import msgpack
from aiohttp import web

from .errors import JSON, ApiError

MSGPACK = "application/msgpack"
_MSGPACK_TYPES = (MSGPACK, "application/x-msgpack")
_JSON_TYPES = (JSON, "application/*", "*/*")


def _preferences(accept: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for part in accept.split(",")[:32]:  # bounded: a hostile header cannot cost more
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        q = 1.0
        for f in fields[1:]:
            if f.lower().startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        if media:
            found[media] = max(q, found.get(media, 0.0)) if q == q else 0.0
    return found


def wants_msgpack(request: web.Request) -> bool:
    """True for msgpack; raises ApiError 406 when the client accepts neither form."""
    accept = request.headers.get("Accept", "").strip()
    if not accept:
        return False
    prefs = _preferences(accept)
    mp = max((prefs.get(t, 0.0) for t in _MSGPACK_TYPES), default=0.0)
    js = max((prefs.get(t, 0.0) for t in _JSON_TYPES), default=0.0)
    if mp <= 0 and js <= 0:
        raise ApiError(406, "not_acceptable", f"this API answers {JSON} or {MSGPACK}")
    return mp > js


def encoded(request: web.Request, body: Any, status: int = 200) -> web.Response:
    if wants_msgpack(request):
        return web.Response(status=status, body=msgpack.packb(body, use_bin_type=True), content_type=MSGPACK)
    return web.Response(status=status, body=json.dumps(body, ensure_ascii=False).encode(), content_type=JSON)
