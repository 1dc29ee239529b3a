"""Automatic re-signing of a live zone before its signatures expire (spec/dnssec.md §6).

Every RRset's signatures have a **refresh point**: the moment when only ``refresh`` (a fraction,
0.5 by default: half, spec/dnssec.md §1) of their validity is left. ``Resigner`` keeps one entry
per signed RRset in a heap ordered by refresh point, so finding what is due never walks the zone:

* the zone is scanned once when the server starts (signatures from the zone file and the
  journal), and again only when the index has grown to twice the zone's RRset count (RRsets
  removed meanwhile leave entries that are dropped when they come due);
* every RRset signed afterwards (an UPDATE, a lease expiry, a re-sign) is noted by the
  signer's ``on_sign`` hook: one dict write, and a heap push only for an RRset not yet indexed.

``Upkeep`` runs it on a live zone: a timer fires at the next refresh point (re-checked at
least every ``POLL`` seconds), takes at most ``batch`` due RRsets and hands them to the zone as
one ``Request(resign=...)`` — one signed, journaled change that moves the serial on — and goes
on batch after batch until nothing is due. Times come from the zone's clock, so tests inject one.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import struct
from collections.abc import Callable

from . import wirename
from .live import LiveZone, Request
from .onlinesign import RRsetSigner
from .zonedb import RRSIG, decode_sets

log = logging.getLogger("cid.auth.resign")

POLL = 5.0  # seconds: the timer looks again at least this often (a clock may be stepped)
MAX_BATCHES_PER_TICK = 10_000  # bounded work per wake-up


def refresh_point(inception: int, expiration: int, refresh: float) -> float:
    return expiration - refresh * (expiration - inception)


class Resigner:
    """The refresh-point index of one zone's signatures (module text)."""

    def __init__(self, live: LiveZone, refresh: float = 0.5, batch: int = 500):
        if not 0 < refresh < 1:
            raise ValueError(f"refresh must be between 0 and 1, not {refresh}")
        self.live = live
        self.refresh = refresh
        self.batch = batch
        self.heap: list[tuple[float, bytes, int]] = []
        self.latest: dict[tuple[bytes, int], float] = {}  # (owner wire, type) -> refresh point
        self.scanned = 0
        self.resigned = 0

    def attach(self, signer: RRsetSigner | None) -> None:
        if signer is not None:
            signer.on_sign = self.noted

    def noted(self, owner: bytes, rdtype: int, inception: int, expiration: int) -> None:
        point = expiration - self.refresh * (expiration - inception)
        key = (owner, rdtype)
        if key not in self.latest:
            heapq.heappush(self.heap, (point, owner, rdtype))
        self.latest[key] = point  # the newest signature; an older heap entry is moved on when met
        if len(self.latest) > 2 * max(self.scanned, 10_000):
            self.scan()

    def scan(self) -> None:
        """Index every signed RRset of the zone (one pass)."""
        data = self.live.data
        latest: dict[tuple[bytes, int], float] = {}
        refresh = self.refresh
        for blobs in (data.blobs, data.hashed):
            for key, blob in dict.items(blobs):
                owner = None
                for (rdtype, covered), (_ttl, rdatas) in decode_sets(blob).items():
                    if rdtype != RRSIG:
                        continue
                    if owner is None:
                        owner = data.owner_wire(key).lower()
                    point = min(refresh_point(inc, exp, refresh)
                                for exp, inc in (struct.unpack_from("!II", rd, 8) for rd in rdatas))
                    latest[(owner, covered)] = point
        self.latest = latest
        self.heap = [(point, owner, rdtype) for (owner, rdtype), point in latest.items()]
        heapq.heapify(self.heap)
        self.scanned = len(latest)

    def next_due(self) -> float | None:
        heap, latest = self.heap, self.latest
        while heap:
            point, owner, rdtype = heap[0]
            current = latest.get((owner, rdtype))
            if current is None:
                heapq.heappop(heap)
            elif current > point:
                heapq.heapreplace(heap, (current, owner, rdtype))
            else:
                return point
        return None

    def take(self, now: float) -> list[tuple[bytes, int]]:
        """At most ``batch`` RRsets due at ``now``, as (zone key, type), out of the index."""
        out: list[tuple[bytes, int]] = []
        while len(out) < self.batch:
            point = self.next_due()
            if point is None or point > now:
                break
            _, owner, rdtype = heapq.heappop(self.heap)
            del self.latest[(owner, rdtype)]
            out.append((wirename.key_of_wire(owner), rdtype))
        return out


class Upkeep:
    """The re-signing timer of one live zone (module text)."""

    def __init__(self, live: LiveZone, refresh: float = 0.5, batch: int = 500,
                 clock: Callable[[], float] | None = None):
        self.live = live
        self.clock = clock or live.clock
        self.resigner = Resigner(live, refresh, batch)
        self.resigner.attach(live.signer)
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self._again = False
        self.started = False
        self.steps: list[Callable[[], "asyncio.Future | None"]] = []  # more work per tick (rollover)
        self.roller = None  # rollover.Roller, when the zone has key state

    def set_signer(self, signer: RRsetSigner | None) -> None:
        self.live.signer = signer
        self.resigner.attach(signer)

    # --- timer ------------------------------------------------------------------------------

    def start(self) -> None:
        self.resigner.scan()
        self.started = True
        self.poke()

    def close(self) -> None:
        self.started = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def poke(self) -> asyncio.Task | None:
        """Run a tick now (a stepped clock, a reload); the tick's task."""
        if not self.started:
            return None
        if self._task is not None and not self._task.done():
            self._again = True
            return self._task
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self._task

    def next_due(self) -> float | None:
        dues = [d for d in (self.resigner.next_due(), self.roller.next_due() if self.roller else None)
                if d is not None]
        return min(dues) if dues else None

    def _arm(self) -> None:
        if not self.started:
            return
        due = self.next_due()
        delay = POLL if due is None else min(max(due - self.clock(), 0.0), POLL)
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.poke()

    async def _tick(self) -> None:
        try:
            while True:
                self._again = False
                for step in self.steps:
                    await step()
                await self.resign_due()
                if not self._again:
                    break
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - upkeep must go on after a bad moment
            log.exception("zone %s: re-signing tick failed", self.live.origin)
        finally:
            self._arm()

    async def resign_due(self) -> int:
        """Re-sign every RRset due now, ``batch`` at a time; how many."""
        live, done = self.live, 0
        if live.signer is None or not live.data.signed or live.failed:
            return 0
        for _ in range(MAX_BATCHES_PER_TICK):
            batch = self.resigner.take(self.clock())
            if not batch:
                break
            request = await live.run(Request(resign=batch))
            if request.outcome.rcode:
                log.error("zone %s: re-signing refused: %s", live.origin, request.outcome.reason)
                for key, rdtype in batch:  # try again later rather than lose them
                    self.resigner.noted(live.data.owner_wire(key).lower(), rdtype, int(self.clock()),
                                        int(self.clock()) + 120)
                break
            done += len(batch)
        if done:
            self.resigner.resigned += done
            log.info("zone %s: %d RRset(s) re-signed, serial %d", live.origin, done, live.committed_serial)
        return done

    def status(self) -> dict:
        out = {"next_resign": self.resigner.next_due(), "indexed": len(self.resigner.latest),
               "resigned": self.resigner.resigned}
        if self.roller is not None:
            out.update(self.roller.status())
        return out


def manage(live: LiveZone, zone, clock: Callable[[], float] | None = None) -> Upkeep:
    """Give ``live`` its upkeep: a signer with the zone's validity, the re-signing index."""
    upkeep = Upkeep(live, zone.resign_refresh, zone.resign_batch, clock)
    if live.keys:
        upkeep.set_signer(RRsetSigner(live.keys, clock=live.clock, validity=zone.signature_validity))
    live.maintenance = upkeep
    return upkeep


__all__ = ["Resigner", "Upkeep", "manage", "refresh_point"]
