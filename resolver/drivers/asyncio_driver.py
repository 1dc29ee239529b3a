"""Drive a sans-I/O Engine with asyncio: perform each Send, report back, until Done."""

from __future__ import annotations

from ..engine.actions import Done, Send
from ..engine.engine import Engine
from ..engine.result import Lookup
from .transport import TransportError, exchange


async def drive(engine: Engine) -> Lookup:
    # The engine bounds the number of actions (query budget); each await is bounded by its timeout.
    while True:
        action = engine.next_action()
        if isinstance(action, Done):
            return action.result
        assert isinstance(action, Send)
        try:
            response = await exchange(action.query, action.server, tcp=action.tcp, timeout=action.timeout)
        except TimeoutError:
            engine.on_timeout(action.token)
        except (TransportError, OSError) as exc:
            # Refused/reset/unreachable: the engine moves to the next server.
            engine.on_error(action.token, str(exc) or type(exc).__name__)
        else:
            engine.on_response(action.token, response, action.server)
