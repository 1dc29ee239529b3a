"""What the engine asks of its driver (Send) and how it ends (Done): the sans-I/O boundary.

The engine never touches a socket or a clock it was not given. A driver loops:
``action = engine.next_action()``; for a Send it performs the query and reports back with
``engine.on_response(action.token, wire_or_message, from_addr)`` or ``engine.on_timeout(token)``;
a Done carries the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dns.message


@dataclass(frozen=True, eq=False)
class Send:
    """Send ``query`` to ``server`` (host, port) over UDP, or TCP when ``tcp``; wait at most ``timeout``.
    ``wire``, when given, is ``query.to_wire()`` already rendered (drivers send it as is)."""

    query: dns.message.Message
    server: tuple[str, int]
    tcp: bool
    timeout: float
    token: int
    wire: bytes | None = None


@dataclass(frozen=True)
class Done:
    """The resolution is over; ``result`` is a resolver.engine.result.Lookup."""

    result: Any


class EngineStateError(RuntimeError):
    """The driver broke the protocol: wrong token, response without a Send, next_action too early."""
