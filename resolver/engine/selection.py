"""Server selection (the infrastructure cache): which of a zone's servers to ask first, how
long to wait, and what each server is known not to support.

* Order: servers that recently timed out, refused the connection or were unreachable go last
  for ``DOWN_FOR`` seconds (held down: one dead server does not cost a timeout, or a wasted
  try, on every query); the rest by smoothed round-trip time,
  unknown servers first so that each gets measured (Knot Resolver lib/selection, Unbound
  infra cache). Once all live servers are measured, with probability ``EXPLORE`` a random
  other live server goes first, so a server whose RTT was measured once on a bad day is
  measured again (Knot's ε-greedy choice).
  The random source is passed in, so tests are deterministic.
* Timeout: the configured per-query timeout, doubled for each earlier attempt at the same
  server within one question (exponential backoff, RFC 1536 §1), capped at ``MAX_TIMEOUT``.
* Capabilities: a server that answered FORMERR/NOTIMP without an OPT record to an EDNS query
  is asked without EDNS for ``NO_EDNS_FOR`` seconds (RFC 6891 §7); a server that twice in a
  row did not echo the 0x20 case of the question is asked in lower case for ``NO_CASE_FOR``
  seconds. Both are re-probed afterwards, so a fixed server regains the protection.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Server = tuple[str, int]

DOWN_FOR = 30.0        # seconds a server that timed out is tried only after the others
EXPLORE = 0.05         # share of choices that try a non-best server first
MAX_TIMEOUT = 8.0      # backoff cap for one attempt (seconds)
NO_EDNS_FOR = 900.0    # as Unbound's infra-host-ttl
NO_CASE_FOR = 3600.0
CASE_STRIKES = 2       # consecutive case mismatches before a server counts as not echoing
MAX_TRACKED = 10_000   # bound on remembered servers (hostile zones can name many)
# Failure reasons (drivers/transport.py's words) that mean "nothing is there": reported at once
# by the kernel (ICMP port/host/network unreachable, TCP RST), never retried, held down.
UNREACHABLE = frozenset({"connection refused", "network unreachable", "host unreachable"})


@dataclass
class _Stats:
    srtt: float | None = None
    down_until: float = 0.0
    no_edns_until: float = 0.0
    no_case_until: float = 0.0
    case_strikes: int = 0


class ServerSelection:
    def __init__(self, clock: Callable[[], float], rng: random.Random | None = None):
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        self._stats: dict[Server, _Stats] = {}
        # The longest one attempt may wait. ``cid ... --timeout S`` sets it to S, so that every
        # try waits S as its help says; Resolver(timeout=...) keeps the doubling up to 8 s.
        self.max_timeout = MAX_TIMEOUT

    def order(self, servers: Sequence[Server], rng: random.Random | None = None) -> list[Server]:
        if len(servers) == 1:  # nothing to order, nobody to explore
            return [servers[0]]
        now = self.clock()

        def key(item: tuple[int, Server]):
            index, server = item
            st = self._stats.get(server)
            if st is None:
                return (False, 0.0, index)
            return (st.down_until > now, st.srtt or 0.0, index)
        ordered = [server for _, server in sorted(enumerate(servers), key=key)]
        # Unmeasured servers already come first (that is exploration); once every live server
        # has an RTT, now and then try one that is not the best.
        best = self._stats.get(ordered[0]) if ordered else None
        live = [s for s in ordered[1:] if not self.is_down(s)]
        rng = rng if rng is not None else self.rng
        if live and best is not None and best.srtt is not None and rng.random() < EXPLORE:
            pick = live[rng.randrange(len(live))]
            ordered.remove(pick)
            ordered.insert(0, pick)
        return ordered

    def timeout(self, base: float, attempt: int) -> float:
        """Wait for attempt ``attempt`` (0 = first) at one server: exponential backoff, capped
        at ``max_timeout`` (MAX_TIMEOUT unless set; never below ``base``)."""
        return min(base * (2 ** attempt), max(base, self.max_timeout))

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

    def unreachable(self, server: Server) -> None:
        """Connection refused or no route: held down like a timeout (it costs no wait, but
        a try that cannot succeed should not come before servers that may answer)."""
        self._get(server).down_until = self.clock() + DOWN_FOR

    def is_down(self, server: Server) -> bool:
        st = self._stats.get(server)
        return st is not None and st.down_until > self.clock()

    def srtt(self, server: Server) -> float | None:
        st = self._stats.get(server)
        return st.srtt if st is not None else None

    # EDNS ---------------------------------------------------------------------------------
    def edns_failed(self, server: Server) -> None:
        self._get(server).no_edns_until = self.clock() + NO_EDNS_FOR

    def uses_edns(self, server: Server) -> bool:
        st = self._stats.get(server)
        return st is None or st.no_edns_until <= self.clock()

    # 0x20 ---------------------------------------------------------------------------------
    def case_mismatch(self, server: Server) -> bool:
        """Count a case-only mismatch; True when the server now counts as not echoing case.
        Two in a row are needed, so a spoofer must guess ID and port twice to turn it off."""
        st = self._get(server)
        st.case_strikes += 1
        if st.case_strikes >= CASE_STRIKES:
            st.case_strikes = 0
            st.no_case_until = self.clock() + NO_CASE_FOR
            return True
        return False

    def case_echoed(self, server: Server) -> None:
        st = self._stats.get(server)
        if st is not None:
            st.case_strikes = 0

    def uses_case(self, server: Server) -> bool:
        st = self._stats.get(server)
        return st is None or st.no_case_until <= self.clock()
