"""Rendered responses, keyed by the query's bytes after the ID.

Those bytes hold everything a response depends on — question (with its 0x20 case), RD/CD/AD
flags, EDNS version, payload size and DO — so a repeat query costs one dict lookup and no
engine, validation or rendering work. Entries live at most ``REFRESH`` seconds (and never past
their data's TTL), so the TTLs handed out still count down, as a resolver's must.
"""

from __future__ import annotations

import time
from collections.abc import Callable

REFRESH = 1.0
DEFAULT_LIMIT = 100_000


class ResponseCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic, limit: int = DEFAULT_LIMIT):
        self.clock = clock
        self.limit = limit
        self._entries: dict[bytes, tuple[float, bytes]] = {}

    def get(self, key: bytes) -> bytes | None:
        """The response without its 2-byte ID, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: bytes, response: bytes, ttl: float) -> None:
        if ttl <= 0:
            return
        if len(self._entries) >= self.limit:
            # Bounded against hostile query variety: drop the oldest insertion (dicts keep order).
            self._entries.pop(next(iter(self._entries)), None)
        self._entries[key] = (self.clock() + min(ttl, REFRESH), response[2:])

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
