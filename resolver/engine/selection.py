"""Server selection (the infrastructure cache): which of a zone's servers to ask first.

Servers that recently timed out go last for a while, so one dead server does not cost a
timeout on every query; the rest are ordered by smoothed round-trip time, unknown servers
first so that each gets measured (Knot Resolver lib/selection, Unbound infra cache).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

Server = tuple[str, int]

DOWN_FOR = 30.0      # seconds a server that timed out is tried only after the others
MAX_TRACKED = 10_000  # bound on remembered servers (hostile zones can name many)


@dataclass
class _Stats:
    srtt: float | None = None
    down_until: float = 0.0


class ServerSelection:
    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self._stats: dict[Server, _Stats] = {}

    def order(self, servers: Sequence[Server]) -> list[Server]:
        now = self.clock()

        def key(item: tuple[int, Server]):
            index, server = item
            st = self._stats.get(server)
            if st is None:
                return (False, 0.0, index)
            return (st.down_until > now, st.srtt or 0.0, index)
        return [server for _, server in sorted(enumerate(servers), key=key)]

    def _get(self, server: Server) -> _Stats:
        st = self._stats.get(server)
        if st is None:
            if len(self._stats) >= MAX_TRACKED:
                self._stats.clear()
            st = self._stats[server] = _Stats()
        return st

    def answered(self, server: Server, rtt: float) -> None:
        st = self._get(server)
        st.srtt = rtt if st.srtt is None else 0.7 * st.srtt + 0.3 * rtt  # RFC 6298-style smoothing
        st.down_until = 0.0

    def timed_out(self, server: Server) -> None:
        self._get(server).down_until = self.clock() + DOWN_FOR

    def is_down(self, server: Server) -> bool:
        st = self._stats.get(server)
        return st is not None and st.down_until > self.clock()
