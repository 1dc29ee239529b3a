"""Rendered responses, keyed by the query's bytes after the ID.

Those bytes hold everything a response depends on — question (with its 0x20 case), RD/CD/AD
flags, EDNS version, payload size and DO — so a repeat query costs one dict lookup and no
engine, validation or rendering work. Entries live at most ``REFRESH`` seconds (and never past
their data's TTL), so the TTLs handed out still count down, as a resolver's must.

Once that second is up, a response whose ``Source`` names the cache entry it was rendered
from is counted down instead of rendered again while that same entry still answers
(``counted_down``): every TTL in it was ``min(C, cap)``, ``C`` fixed by the records and ``cap``
the answer's remaining TTL (service/answer.py ``respond``), so at a later ``cap' <= cap`` the
rendering would hold ``min(C, cap') = min(old TTL, cap')`` — the old bytes with each TTL field
lowered to ``cap'``. That costs a few microseconds where rendering costs tens, once a second
for every popular question in every worker. A Source keeps its cache entry alive (packed
bytes, about the size of the response) until the response is rendered again or pushed out by
``limit``, so an identity check can never be fooled by a new entry at the old one's address.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dns.name

REFRESH = 1.0
DEFAULT_LIMIT = 100_000

_COUNTS = struct.Struct("!4H")  # QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT, after the ID and flags
_RR_HEAD = struct.Struct("!HHIH")  # TYPE, CLASS, TTL, RDLENGTH
_TTL = struct.Struct("!I")
_OPT = 41  # its "TTL" is the extended RCODE and flags (RFC 6891 §6.1.3): never counted down


@dataclass(frozen=True, slots=True)
class Source:
    """What a response was rendered from: the answer to (qname, qtype) built from cache
    ``entry`` alone."""

    qname: dns.name.Name
    qtype: int
    entry: Any


class ResponseCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic, limit: int = DEFAULT_LIMIT):
        self.clock = clock
        self.limit = limit
        # (expiry, response without its ID[, Source, TTL offsets, cap]): the UDP listeners
        # read the first two.
        self._entries: dict[bytes, tuple] = {}
        self.counted = 0  # responses counted down instead of rendered again

    def get(self, key: bytes) -> bytes | None:
        """The response without its 2-byte ID, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            if len(entry) == 2:  # one with a Source stays, to be counted down
                self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: bytes, response: bytes, ttl: float, source: Source | None = None) -> None:
        """Keep ``response`` for identical queries for ``ttl`` seconds (at most REFRESH). With
        ``source`` it can be counted down after: ``ttl`` is then the answer's remaining TTL,
        the ``cap`` of every TTL in it."""
        if ttl <= 0:
            return
        if len(self._entries) >= self.limit:
            # Bounded against hostile query variety: drop the oldest insertion (dicts keep order).
            self._entries.pop(next(iter(self._entries)), None)
        body = response[2:]
        expiry = self.clock() + min(ttl, REFRESH)
        fields = ttl_fields(body) if source is not None else None
        if fields is None:
            self._entries[key] = (expiry, body)
        else:
            self._entries[key] = (expiry, body, source, fields, ttl)

    def source(self, key: bytes) -> Source | None:
        """The Source of the response kept for ``key``, fresh or not."""
        entry = self._entries.get(key)
        return entry[2] if entry is not None and len(entry) > 2 else None

    def counted_down(self, key: bytes, source: Source, cap: int) -> bytes | None:
        """The response kept for ``key`` from ``source`` with its TTLs lowered to ``cap``,
        kept for ``min(cap, REFRESH)`` seconds more. The caller has checked that the same
        entry still answers and ``cap`` is its remaining TTL now; None unless
        ``0 < cap <=`` the cap it was rendered (or last counted down) with."""
        entry = self._entries.get(key)
        if entry is None or len(entry) < 3 or entry[2] is not source or not 0 < cap <= entry[4]:
            return None
        body = count_down(entry[1], entry[3], cap)
        self._entries[key] = (self.clock() + min(cap, REFRESH), body, source, entry[3], cap)
        self.counted += 1
        return body

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def ttl_fields(body: bytes) -> tuple[int, ...] | None:
    """Offsets of the TTL of every record but OPT in ``body`` (a response without its ID),
    or None if it does not read as a whole DNS message: then it is never counted down."""
    try:
        qd, an, ns, ar = _COUNTS.unpack_from(body, 2)
        pos = 10
        for _ in range(qd):
            pos = _skip_name(body, pos) + 4
        fields = []
        for _ in range(an + ns + ar):
            pos = _skip_name(body, pos)
            rdtype, _, _, length = _RR_HEAD.unpack_from(body, pos)
            if rdtype != _OPT:
                fields.append(pos + 4)
            pos += _RR_HEAD.size + length
    except (struct.error, IndexError, ValueError):
        return None
    if pos != len(body):
        return None
    return tuple(fields)


def _skip_name(body: bytes, pos: int) -> int:
    """Where the name at ``pos`` ends (labels, then a root label or a compression pointer)."""
    while True:
        length = body[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            if pos + 2 > len(body):
                raise ValueError("cut pointer")
            return pos + 2
        if length & 0xC0:
            raise ValueError("label type")
        pos += 1 + length


def count_down(body: bytes, fields: tuple[int, ...], cap: int) -> bytes:
    """``body`` with every TTL at ``fields`` above ``cap`` lowered to ``cap``."""
    out = bytearray(body)
    unpack, pack = _TTL.unpack_from, _TTL.pack_into
    for at in fields:
        if unpack(out, at)[0] > cap:
            pack(out, at, cap)
    return bytes(out)
