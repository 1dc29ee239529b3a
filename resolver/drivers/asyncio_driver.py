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
from .transport import TransportError, exchange


async def drive(engine: Engine, observe: Callable[[float, str], None] | None = None) -> Lookup:
    """``observe(seconds, outcome)`` is told each upstream exchange's duration (metrics)."""
    # The engine bounds the number of actions (query budget); each exchange is bounded by its
    # timeout. Queries still in flight when the engine is done (an unused prefetch) are cancelled.
    # Finished exchanges queue themselves from their done callback, in the order they finish,
    # and one future wakes this loop: asyncio.wait would register and remove a callback on
    # every pending task each time round, for the same outcome.
    loop = asyncio.get_running_loop()
    pending: dict[asyncio.Future, Send] = {}
    finished: deque[asyncio.Future] = deque()
    wake: list[asyncio.Future | None] = [None]

    def on_done(task: asyncio.Future) -> None:
        finished.append(task)
        waiter = wake[0]
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    try:
        while True:
            for action in engine.next_actions():
                if isinstance(action, Done):
                    return action.result
                task = asyncio.ensure_future(_perform(action, observe))
                pending[task] = action
                task.add_done_callback(on_done)
            if not pending:
                raise EngineStateError("the engine waits but has no query in flight")
            while not finished:
                wake[0] = loop.create_future()
                try:
                    await wake[0]
                finally:
                    wake[0] = None
            while finished:
                task = finished.popleft()
                action = pending.pop(task)
                outcome, value = task.result()
                if outcome == "response":
                    engine.on_response(action.token, value, action.server)
                elif outcome == "timeout":
                    engine.on_timeout(action.token)
                else:
                    engine.on_error(action.token, value)
    finally:
        for task in pending:
            task.remove_done_callback(on_done)
            task.cancel()


async def _perform(action: Send, observe: Callable[[float, str], None] | None = None) -> tuple[str, object]:
    if observe is not None:
        started = time.perf_counter()
        outcome = await _perform(action)
        observe(time.perf_counter() - started, outcome[0])
        return outcome
    try:
        return "response", await exchange(action.query, action.server, tcp=action.tcp, timeout=action.timeout,
                                         wire=action.wire)
    except TimeoutError:
        return "timeout", None
    except (TransportError, OSError) as exc:
        # Refused/reset/unreachable: the engine moves to the next server.
        return "error", str(exc) or type(exc).__name__
