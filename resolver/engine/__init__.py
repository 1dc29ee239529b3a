"""Sans-I/O resolution engine: produces queries to send, consumes responses and timeouts.

``Engine(qname, qtype, hints, trust_anchor, cache, now=clock)``; ``next_action()`` gives a
Send or Done; report back with ``on_response`` / ``on_timeout`` / ``on_error``.
"""

from .actions import Done, EngineStateError, Send
from .cache import Cache
from .engine import Budget, Engine
from .result import Lookup

__all__ = ["Budget", "Cache", "Done", "Engine", "EngineStateError", "Lookup", "Send"]
