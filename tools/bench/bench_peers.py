"""Peer servers for benchmarks: the same runners the tests use (tests/support/peer_servers.py).

NSD runs with response rate limiting off and Unbound with a control socket, so caches can be
flushed between cold samples.
"""

from __future__ import annotations

import hierarchy  # noqa: F401  (puts tests/ on sys.path)
from support.peer_servers import Unbound, nsd, unbound

__all__ = ["Unbound", "nsd", "unbound"]
