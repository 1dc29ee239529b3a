"""Drive a sans-I/O Engine with asyncio: perform every Send it hands out (several may be in
flight at once, see engine/surface.py), report each outcome as it comes, until Done."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from ..engine.actions import Done, EngineStateError, Send
from ..engine.engine import Engine
from ..engine.result import Lookup
from .transport import TransportError, query_tcp, start_udp


async def drive(engine: Engine, observe: Callable[[float, str], None] | None = None) -> Lookup:
    """``observe(seconds, outcome)`` is told each upstream exchange's duration (metrics)."""
    # The engine bounds the number of actions (query budget); each exchange is bounded by its
    # timeout. Queries still in flight when the engine is done (an unused prefetch) are cancelled.
    # Finished exchanges queue themselves from their done callback, in the order they finish,
    # and one future wakes this loop: asyncio.wait would register and remove a callback on
    # every pending task each time round, for the same outcome. A UDP exchange is a bare
    # future (transport.start_udp), not a task running coroutines: most queries are UDP.
    loop = asyncio.get_running_loop()
    pending: dict[asyncio.Future, tuple[Send, float]] = {}
    finished: deque[tuple[asyncio.Future, float]] = deque()
    wake: list[asyncio.Future | None] = [None]
    clock = time.perf_counter

    def on_done(future: asyncio.Future) -> None:
        finished.append((future, clock() if observe is not None else 0.0))
        waiter = wake[0]
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    try:
        while True:
            for action in engine.next_actions():
                if isinstance(action, Done):
                    return action.result
                started = clock() if observe is not None else 0.0
                if action.tcp:
                    future = asyncio.ensure_future(query_tcp(action.query, action.server, action.timeout, action.wire))
                else:
                    future = start_udp(action.query, action.server, action.timeout, action.wire)
                pending[future] = (action, started)
                future.add_done_callback(on_done)
            if not pending:
                raise EngineStateError("the engine waits but has no query in flight")
            while not finished:
                wake[0] = loop.create_future()
                try:
                    await wake[0]
                finally:
                    wake[0] = None
            while finished:
                future, ended = finished.popleft()
                action, started = pending.pop(future)
                outcome, value = _outcome(future)
                if observe is not None:
                    observe(ended - started, outcome)
                if outcome == "response":
                    engine.on_response(action.token, value, action.server)
                elif outcome == "timeout":
                    engine.on_timeout(action.token)
                else:
                    engine.on_error(action.token, value)
    finally:
        for future in pending:
            future.remove_done_callback(on_done)
            if future.done():
                if not future.cancelled():
                    future.exception()  # retrieved: no "never retrieved" report for an unused one
            else:
                future.cancel()


def _outcome(future: asyncio.Future) -> tuple[str, object]:
    try:
        return "response", future.result()
    except TimeoutError:
        return "timeout", None
    except (TransportError, OSError) as exc:
        # Refused/reset/unreachable: the engine moves to the next server.
        return "error", str(exc) or type(exc).__name__
