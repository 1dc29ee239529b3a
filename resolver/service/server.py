"""Asyncio serving of the recursive front end: UDP and TCP on each listen address, all
answered by one Resolver (one cache, one in-flight table, one engine configuration).

DNS decisions live in ``answer``; the listeners (``resolver.serving``) move bytes. Denials that
the cached NSECs prove (RFC 8198) are answered at once, without a task, by ``denial.Denials``
(the answer the slow path would give). This module keeps the rendered-response caches and
bounds the work strangers can cause: pending
resolutions (beyond the bound new queries are dropped, as Unbound drops when its query list is
full) and identical queries waiting for one answer; the listeners bound TCP connections,
queries outstanding per connection and idle time (RFC 7766 §6.2).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable

import dns.rcode
import dns.rdatatype

from ..client import Resolver
from ..serving import DROPPED, LATER, TCP_IDLE_TIMEOUT, DnsServer, Handled, Reply, ResponseDict
from .answer import Request, error, read_query, respond, rrsig_response, soa_wanted
from .denial import Denials
from .responses import ResponseCache, Source

log = logging.getLogger(__name__)

MAX_PENDING = 2048  # resolutions in progress across all clients
MAX_WAITERS = 512  # identical queries waiting for one answer in progress
MAX_TCP_CONNECTIONS = 256


class RecursiveServer(DnsServer):
    """Serve ``resolver`` over UDP and TCP on every (host, port) in ``listen``; port 0 picks one."""

    def __init__(self, resolver: Resolver, listen: list[tuple[str, int]], *,
                 max_pending: int = MAX_PENDING, tcp_idle_timeout: float = TCP_IDLE_TIMEOUT,
                 max_tcp_connections: int = MAX_TCP_CONNECTIONS,
                 clock: Callable[[], float] = time.monotonic):
        """``clock`` times the rendered-response cache (monotonic: a wall-clock step must not
        keep old bytes alive)."""
        super().__init__(listen, tcp_idle_timeout=tcp_idle_timeout,
                         max_tcp_connections=max_tcp_connections)
        self.resolver = resolver
        self.max_pending = max_pending
        self.udp_responses = ResponseCache(clock)
        self.tcp_responses = ResponseCache(clock)  # a TCP response may be larger than UDP allows
        self.dropped = 0  # queries dropped because MAX_PENDING resolutions were running
        self._tasks: set[asyncio.Task] = set()
        self._waiting: dict[tuple[bytes, bool], list] = {}  # (query bytes after ID, tcp) → [(id, deliver)]
        self.denials = Denials(resolver, clock)  # denials from cached NSECs, answered without a task

    # Plugged into the listeners --------------------------------------------------------------
    def udp_cache(self) -> tuple[ResponseDict, float | None]:
        # (expiry, response) entries, one clock reading per wake-up: the expiry keeps the TTLs
        # handed out counting down.
        return self.udp_responses._entries, self.udp_responses.clock()

    def udp_fast(self, wire: bytes) -> bytes | None:
        # A question already being answered waits for that answer instead (handle, spawn).
        if self._waiting and (wire[2:], False) in self._waiting:
            return None
        denied = self.denials.answer(wire, False)
        if denied is not None:
            return denied
        return self._counted_down(self.udp_responses, wire)  # the second a popular answer's bytes expire

    def handle(self, wire: bytes, tcp: bool, later: Reply) -> Handled:
        key = wire[2:]
        if tcp:
            cached = self.tcp_responses.get(key)
            if cached is not None:
                return wire[:2] + cached
        if not self._waiting or (key, tcp) not in self._waiting:  # else the answer in progress is this one's too
            denied = self.denials.answer(wire, tcp)
            if denied is not None:
                return denied
            counted = self._counted_down(self.tcp_responses if tcp else self.udp_responses, wire)
            if counted is not None:
                return counted
        outcome = read_query(wire, tcp=tcp)
        if outcome is None or isinstance(outcome, bytes):
            return outcome
        if not self._waiting or (key, tcp) not in self._waiting:
            answered = self.answer_now(outcome, key)
            if answered is not None:
                return answered
        return LATER if self.spawn(outcome, key, later) else DROPPED

    # Answering ------------------------------------------------------------------------------
    async def answer(self, request: Request, key: bytes) -> bytes:
        """Resolve one request and render it; never raises (a bug costs a SERVFAIL)."""
        cache = self.tcp_responses if request.tcp else self.udp_responses
        cached = cache.get(key)  # filled while this request waited for its turn
        if cached is not None:
            return struct.pack("!H", request.query.qid) + cached
        if request.query.qtype == dns.rdatatype.RRSIG:
            return rrsig_response(request, self.resolver.cache)
        try:
            lookup = await self.resolver.lookup(request.query.qname, request.query.qtype, cd=request.cd, policy=False)
            zone = soa_wanted(lookup)
            soa = await self.resolver.lookup(zone, dns.rdatatype.SOA, cd=request.cd, policy=False) if zone is not None else None
            return self._rendered(request, key, lookup, soa)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001
            log.exception("failed to resolve %s %s", request.query.qname, request.query.qtype)
            return error(request, dns.rcode.SERVFAIL)

    def answer_now(self, request: Request, key: bytes) -> bytes | None:
        """``answer``'s bytes when the engine has them without waiting (``lookup_now``), else
        None. Once a second every popular question's rendered response expires; when the
        entry it came from has changed, it is made again here from the cache, without a
        task, and over UDP the answer leaves in the batch its query came in instead of by a
        sendto of its own (while it has not, ``_counted_down`` answers first)."""
        query = request.query
        if query.qtype == dns.rdatatype.RRSIG:
            return None
        try:
            found = self.resolver.lookup_now_entry(query.qname, query.qtype)
            if found is None:
                return None
            lookup, entry = found
            zone = soa_wanted(lookup)
            soa = None
            if zone is not None:
                soa = self.resolver.lookup_now(zone, dns.rdatatype.SOA)
                if soa is None:
                    return None  # ``answer`` looks both up (the first a hit again)
            # Counted down later only when one entry made it: a negative answer that needed
            # its SOA looked up on its own (one without it in the proof) is rendered again.
            source = Source(query.qname, query.qtype, entry) if entry is not None and zone is None else None
            return self._rendered(request, key, lookup, soa, source)
        except Exception:  # noqa: BLE001
            log.exception("failed to answer %s %s", query.qname, query.qtype)
            return error(request, dns.rcode.SERVFAIL)

    def _counted_down(self, cache: ResponseCache, wire: bytes) -> bytes | None:
        """The expired response kept for ``wire``'s question with its TTLs counted down
        (responses.py), when the cache entry it was rendered from is still the one that
        answers it — the bytes ``answer_now`` would render now — else None."""
        key = wire[2:]
        source = cache.source(key)
        if source is None:
            return None
        ttl = self.resolver.still_answers(source.entry, source.qname, source.qtype)
        if ttl is None:
            return None
        body = cache.counted_down(key, source, max(0, ttl))
        return None if body is None else wire[:2] + body

    def _rendered(self, request: Request, key: bytes, lookup, soa, source: Source | None = None) -> bytes:
        """The response to ``request`` from its lookups, kept for identical queries."""
        self.denials.slow_answered(lookup)
        response, reuse = respond(request, lookup, soa)
        (self.tcp_responses if request.tcp else self.udp_responses).put(key, response, reuse, source)
        return response

    def spawn(self, request: Request, key: bytes, deliver: Reply) -> bool:
        """Start answering in a task that hands the bytes to ``deliver``; False when dropped.

        Byte-identical queries (after the ID) that arrive while one is being answered wait for
        that answer instead of starting their own (each gets it with its own ID), so a burst of
        one question — e.g. when its rendered response is refreshed — costs one render."""
        slot = (key, request.tcp)
        waiting = self._waiting.get(slot)
        if waiting is not None:
            if len(waiting) >= MAX_WAITERS:
                self.dropped += 1
                return False
            waiting.append((request.query.qid, deliver))
            return True
        if len(self._tasks) >= self.max_pending:
            self.dropped += 1
            return False
        self._waiting[slot] = [(request.query.qid, deliver)]
        task = asyncio.get_running_loop().create_task(self.answer(request, key))
        self._tasks.add(task)

        def done(finished: asyncio.Task) -> None:
            self._tasks.discard(finished)
            waiters = self._waiting.pop(slot, [])
            if finished.cancelled():
                return
            body = finished.result()[2:]
            for qid, callback in waiters:
                callback(struct.pack("!H", qid) + body)

        task.add_done_callback(done)
        return True

    async def _finish_work(self, timeout: float) -> None:
        # Resolutions in progress at SIGTERM get their answer out if it comes in time.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def _stop_work(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
