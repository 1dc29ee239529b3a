"""Rendered authoritative responses by query bytes, dropped by the names they were made from.

``answer.answer_query`` renders a response once per distinct query (the bytes after the ID:
question with its case, flags, EDNS payload and DO all shape the answer) and stores it here
with its **dependencies**: the canonical keys (``wirename``) of every name whose data or
absence the answer was decided by — the query name and its ancestors below the apex (a cut or
DNAME appearing there changes the answer), each CNAME target likewise, the wildcard looked for,
the owners of every RRset in the response (NSEC and NSEC3 neighbours, glue, additional data) —
and ``soa_dependency(apex)`` for the negative SOA. A change to a zone (``zonechange``) reports
the names it touched; ``drop`` removes exactly the responses that depend on one of them.

The UDP listener (``resolver.serving``) answers repeats straight from ``udp.responses``, so
entries are removed from that very dict rather than checked at lookup.

Memory is bounded: every entry is charged its bytes plus a fixed overhead; past ``max_bytes``
the oldest quarter is evicted (FIFO: dicts keep insertion order), so hostile query variety
cannot grow the process, and the dependency index is compacted once stale references (from
evicted entries) outnumber live ones.
"""

from __future__ import annotations

from collections.abc import Iterable

# Room for every distinct answer of a 100k-name signed zone (~110k questions × ~700 B): a
# cyclic query mix larger than the cache would miss on every query (FIFO eviction).
DEFAULT_MAX_BYTES = 128 * 1024 * 1024
ENTRY_OVERHEAD = 390  # dict slots, key and value objects, the dependency tuple (tracemalloc, rounded)
PER_DEPENDENCY = 16


def soa_dependency(apex: bytes) -> bytes:
    """The dependency of every negative answer of the zone at ``apex`` on its SOA (a key can
    never end in 0xff: canonical keys end with a label's 00)."""
    return apex + b"\xffSOA"


class _Half:
    """One transport's responses (a TCP answer may exceed what a UDP client can take)."""

    __slots__ = ("responses", "deps_of", "by_dep", "bytes", "refs", "live_refs")

    def __init__(self) -> None:
        self.responses: dict[bytes, bytes] = {}
        self.deps_of: dict[bytes, tuple[bytes, ...]] = {}
        self.by_dep: dict[bytes, list[bytes]] = {}
        self.bytes = 0
        self.refs = 0  # references in by_dep, stale ones included
        self.live_refs = 0

    def clear(self) -> None:
        self.responses.clear()
        self.deps_of.clear()
        self.by_dep.clear()
        self.bytes = self.refs = self.live_refs = 0


class ResponseCache:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_bytes = max_bytes
        self.udp = _Half()
        self.tcp = _Half()

    def get(self, key: bytes, tcp: bool) -> bytes | None:
        return (self.tcp if tcp else self.udp).responses.get(key)

    def put(self, key: bytes, response: bytes, deps: Iterable[bytes], tcp: bool) -> None:
        half = self.tcp if tcp else self.udp
        if key in half.responses:
            return
        deps = tuple(set(deps))
        half.responses[key] = response
        half.deps_of[key] = deps
        by_dep = half.by_dep
        for dep in deps:
            found = by_dep.get(dep)
            if found is None:
                by_dep[dep] = [key]
            else:
                found.append(key)
        half.refs += len(deps)
        half.live_refs += len(deps)
        half.bytes += _cost(key, response, deps)
        if self.udp.bytes + self.tcp.bytes > self.max_bytes:
            self._evict(half)

    def drop(self, deps: Iterable[bytes]) -> int:
        """Remove every response depending on one of ``deps``; returns how many."""
        dropped = 0
        for half in (self.udp, self.tcp):
            for dep in deps:
                keys = half.by_dep.pop(dep, None)
                if keys is None:
                    continue
                half.refs -= len(keys)
                for key in keys:
                    dropped += self._remove(half, key)
            if half.refs > 2 * half.live_refs + 1024:
                self._compact(half)
        return dropped

    def clear(self) -> None:
        self.udp.clear()
        self.tcp.clear()

    def __len__(self) -> int:
        return len(self.udp.responses) + len(self.tcp.responses)

    def _remove(self, half: _Half, key: bytes) -> int:
        response = half.responses.pop(key, None)
        if response is None:
            return 0
        deps = half.deps_of.pop(key)
        half.bytes -= _cost(key, response, deps)
        half.live_refs -= len(deps)
        return 1

    def _evict(self, half: _Half) -> None:
        victims = list(half.responses)[:max(1, len(half.responses) // 4)]
        for key in victims:
            self._remove(half, key)
        if half.refs > 2 * half.live_refs + 1024:
            self._compact(half)

    @staticmethod
    def _compact(half: _Half) -> None:
        by_dep: dict[bytes, list[bytes]] = {}
        for key, deps in half.deps_of.items():
            for dep in deps:
                found = by_dep.get(dep)
                if found is None:
                    by_dep[dep] = [key]
                else:
                    found.append(key)
        half.by_dep = by_dep
        half.refs = half.live_refs


def _cost(key: bytes, response: bytes, deps: tuple[bytes, ...]) -> int:
    return len(key) + len(response) + ENTRY_OVERHEAD + PER_DEPENDENCY * len(deps)
