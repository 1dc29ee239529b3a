"""Optional reachability probe: one TCP connect per (address, port), timed, then closed.

It feeds resolver.schedule.Reachability, so that endpoint order (spec/resolution.md §4 rule 3)
can prefer addresses that answer quickly. A connect is the cheapest honest measurement that
the service port is open; nothing is sent over it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from ..schedule import Reachability

MAX_PROBES = 32           # per call: a resolution with hundreds of addresses probes the first 32
MAX_CONCURRENT = 8


async def connect_time(address: str, port: int, timeout: float) -> float | None:
    """Seconds to complete a TCP handshake, or None when it fails or times out."""
    start = time.perf_counter()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    except (OSError, asyncio.TimeoutError):
        return None
    elapsed = time.perf_counter() - start
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), timeout)
    except (OSError, asyncio.TimeoutError):
        pass
    return elapsed


async def probe(table: Reachability, targets: Iterable[tuple[str, int]], timeout: float = 0.5) -> None:
    """Measure each distinct (address, port), at most MAX_PROBES, MAX_CONCURRENT at a time."""
    unique = list(dict.fromkeys(targets))[:MAX_PROBES]
    gate = asyncio.Semaphore(MAX_CONCURRENT)

    async def one(address: str, port: int) -> None:
        async with gate:
            rtt = await connect_time(address, port, timeout)
        if rtt is None:
            table.failed(address)
        else:
            table.observe(address, rtt)

    await asyncio.gather(*(one(a, p) for a, p in unique))
