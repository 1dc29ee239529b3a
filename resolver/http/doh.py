"""DNS over HTTPS (RFC 8484) at ``/dns-query``: GET ``?dns=`` base64url (no padding, §4.1) and
POST ``application/dns-message``. Each query takes the DNS front end's own path
(``RecursiveServer.handle``, as over TCP: no truncation, up to 65535 octets)."""

from __future__ import annotations

import asyncio
import base64
import binascii

from aiohttp import web

from ..serving import DROPPED, LATER
from .errors import DNS_KEY, METRICS_KEY, ApiError

DNS_MESSAGE = "application/dns-message"
MAX_MESSAGE = 65535
HEADER = 12
BODY_TIMEOUT = 10.0  # seconds for a POST body to arrive: a slow client cannot hold a handler
ANSWER_TIMEOUT = 15.0


def _ttl(response: bytes) -> int | None:
    """The least TTL of the answer/authority records (RFC 8484 §5.1 freshness), None if unreadable."""
    import dns.message
    try:
        msg = dns.message.from_wire(response)
    except Exception:  # noqa: BLE001 - the bytes are ours; just give no freshness
        return None
    ttls = [rrset.ttl for rrset in (*msg.answer, *msg.authority)]
    return min(ttls) if ttls else 0


async def _answer(request: web.Request, wire: bytes) -> web.Response:
    if len(wire) < HEADER:
        raise ApiError(400, "bad_dns_message", f"a DNS message is at least {HEADER} octets, got {len(wire)}")
    server = request.app[DNS_KEY]
    loop = asyncio.get_running_loop()
    later: asyncio.Future = loop.create_future()
    outcome = server.handle(wire, True, lambda response: later.done() or later.set_result(response))
    if outcome is None:
        raise ApiError(400, "bad_dns_message", "the DNS message could not be read")
    if outcome is DROPPED:
        raise ApiError(503, "overloaded", "too many resolutions in progress; retry")
    if outcome is LATER:
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT):
                outcome = await later
        except TimeoutError:
            raise ApiError(504, "timeout", "no answer in time") from None
    request.app[METRICS_KEY].count_doh(outcome)
    ttl = _ttl(outcome)
    headers = {"Cache-Control": f"max-age={ttl}"} if ttl is not None else {}
    return web.Response(body=outcome, content_type=DNS_MESSAGE, headers=headers)


async def get(request: web.Request) -> web.Response:
    values = request.query.getall("dns", [])
    if len(values) != 1:
        raise ApiError(400, "bad_parameter", "dns: one base64url DNS message required", parameter="dns")
    text = values[0]
    if len(text) > (MAX_MESSAGE * 4) // 3 + 4 or "=" in text:  # §4.1: padding is not used
        raise ApiError(400, "bad_parameter", "dns: base64url without padding, at most 65535 octets",
                       parameter="dns")
    try:
        wire = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ApiError(400, "bad_parameter", "dns: not base64url", parameter="dns") from None
    return await _answer(request, wire)


async def post(request: web.Request) -> web.Response:
    if request.content_type != DNS_MESSAGE:
        raise ApiError(415, "unsupported_media_type", f"POST a body of type {DNS_MESSAGE}")
    if request.content_length is not None and request.content_length > MAX_MESSAGE:
        raise ApiError(413, "too_large", f"a DNS message is at most {MAX_MESSAGE} octets")
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            wire = await request.read()
    except TimeoutError:
        raise ApiError(408, "timeout", f"the body did not arrive within {BODY_TIMEOUT:g} s") from None
    return await _answer(request, wire)
