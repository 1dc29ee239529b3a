"""The recursive front end on the test federation, on a clock the test moves, and queries to it
as the listeners hand them over (tests of answer_now and of counted-down responses)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import dns.flags
import dns.message

from resolver import Resolver
from resolver.service import RecursiveServer
from resolver.service.answer import Request, read_query

from . import federation as F

# Every shape of answer: validated data of several types, NODATA, NXDOMAIN, a wildcard, an
# insecure zone, a CNAME chain.
QUESTIONS = [("pool-7.bj.cmcc.cid.", "A"), ("pool-7.bj.cmcc.cid.", "SVCB"), ("pool-7.bj.cmcc.cid.", "TYPE65380"),
             ("c3.bj.cmcc.cid.", "A"), ("pool-7.bj.cmcc.cid.", "TXT"), ("nothing.bj.cmcc.cid.", "A"),
             ("any.wild.bj.cmcc.cid.", "A"), ("pool-1.open.cid.", "A"), ("backup.bj.cmcc.cid.", "AAAA")]


@contextlib.asynccontextmanager
async def served(fed: F.Federation, now: list[float], host: str) -> AsyncIterator[tuple[Resolver, RecursiveServer]]:
    """A RecursiveServer on ``host`` for the federation, its resolver and itself on the clock ``now[0]``."""
    async with F.serving(fed) as port:
        resolver = Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0, clock=lambda: now[0])
        async with RecursiveServer(resolver, [(host, 0)], clock=lambda: now[0]) as server:
            yield resolver, server


def request(name: str, rdtype: str, *, do: bool, edns: int, tcp: bool, qid: int = 7) -> tuple[Request, bytes]:
    """(the parsed Request, the query's wire) for ``name``/``rdtype``; AD set when DO is not."""
    q = dns.message.make_query(name, rdtype, use_edns=edns, want_dnssec=do)
    q.id = qid
    if not do:
        q.flags |= dns.flags.AD
    wire = q.to_wire()
    parsed = read_query(wire, tcp=tcp)
    assert isinstance(parsed, Request)
    return parsed, wire
