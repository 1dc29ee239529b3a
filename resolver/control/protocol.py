"""Frames and messages of the control channel (spec/service.md, Control).

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON; one request frame,
one reply frame. A request is ``{"command", "args", "time", "nonce", "mac"}``; ``mac`` (HMAC-
SHA256 over the canonical JSON of the other four, hex) is required on TCP, where a shared
secret authenticates every request and ``time`` must be within ``FUDGE`` seconds (as TSIG,
RFC 8945 §5.2.3), each nonce accepted once. A reply is ``{"ok", "text", "data"}`` or
``{"ok": false, "error", "unsupported"}``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import os
import struct
import time
from typing import Any

MAX_REQUEST = 64 * 1024  # a command and a few names; anything larger is hostile
MAX_REPLY = 256 * 1024 * 1024  # dump-cache of a large cache
FUDGE = 300  # seconds a request's time may differ from ours (RFC 8945 §5.2.3's usual fudge)
_HEADER = struct.Struct("!I")


class ProtocolError(Exception):
    """A frame or message that does not follow the protocol (one line)."""


def parse_key(text: str) -> bytes:
    """A shared secret in base64 (as TSIG secrets are written); at least 16 bytes."""
    try:
        secret = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the control key must be base64 (e.g. from `openssl rand -base64 32`)") from None
    if len(secret) < 16:
        raise ValueError("the control key must hold at least 16 bytes")
    return secret


def _signed_part(message: dict[str, Any]) -> bytes:
    body = {k: message.get(k) for k in ("command", "args", "time", "nonce")}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def request(command: str, args: list[str], key: bytes | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"command": command, "args": list(args), "time": int(time.time()),
                               "nonce": os.urandom(12).hex()}
    if key is not None:
        message["mac"] = hmac.new(key, _signed_part(message), hashlib.sha256).hexdigest()
    return message


def authentic(message: dict[str, Any], key: bytes, seen: dict[str, float]) -> str | None:
    """None when ``message`` carries a good MAC, a fresh time and an unseen nonce; else why not.
    ``seen`` (nonce -> time) is kept by the caller and pruned here."""
    mac = message.get("mac")
    if not isinstance(mac, str):
        return "this control channel requires a key (HMAC) on every request"
    expected = hmac.new(key, _signed_part(message), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, expected):
        return "bad MAC: wrong control key"
    now = time.time()
    when = message.get("time")
    if not isinstance(when, int) or abs(now - when) > FUDGE:
        return "request time outside the allowed window (clock skew or replay)"
    nonce = message.get("nonce")
    if not isinstance(nonce, str) or nonce in seen:
        return "replayed request"
    for old, at in list(seen.items()):
        if now - at > 2 * FUDGE:
            del seen[old]
    seen[nonce] = now
    return None


def check_request(message: Any) -> tuple[str, list[str]]:
    if not isinstance(message, dict):
        raise ProtocolError("a request is a JSON object")
    command, args = message.get("command"), message.get("args", [])
    if not isinstance(command, str) or not command:
        raise ProtocolError("request without a command")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ProtocolError("args must be a list of strings")
    return command, args


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return _HEADER.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader, limit: int) -> Any:
    """One frame's JSON; ProtocolError for an oversized or unreadable one, IncompleteReadError
    when the peer closed first."""
    (length,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if length > limit:
        raise ProtocolError(f"frame of {length} bytes is over the limit of {limit}")
    body = await reader.readexactly(length)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("frame is not JSON") from None
