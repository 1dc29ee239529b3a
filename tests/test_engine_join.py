"""Engine._join's one-step shortcut (no CNAME or DNAME on the way, nearly every lookup) gives
the Lookup the general chain join gives, for every kind, status and CD setting."""

from __future__ import annotations

import itertools

import dns.name
import dns.rrset
import pytest

from resolver.engine.classify import Kind
from resolver.engine.engine import Engine, _Step
from resolver.status import Status

NAME = dns.name.from_text("pool-1.bj.cmcc.cid.")
ANSWER = dns.rrset.from_text(NAME, 300, "IN", "A", "192.0.2.1")
SIGS = dns.rrset.RRset(NAME, 1, 46, 1)
NSEC = dns.rrset.from_text(NAME, 60, "IN", "NSEC", "z.bj.cmcc.cid. A RRSIG NSEC")
CNAME = dns.rrset.from_text(NAME, 30, "IN", "CNAME", "other.bj.cmcc.cid.")


def _engine(cd: bool) -> Engine:
    return Engine(NAME, "A", {"cid.": ["127.0.0.1"]}, checking_disabled=cd)


def _fields(lookup) -> tuple:
    return tuple((f, getattr(lookup, f)) for f in lookup.__dataclass_fields__)


STEPS = [
    _Step(kind, status, f"why {kind.name} {status.value}", ttl, rrset, rrsigs, authority)
    for kind, status, ttl, (rrset, rrsigs, authority) in itertools.product(
        [k for k in Kind if k not in (Kind.CNAME, Kind.DNAME)], list(Status), (0, 7, 3600),
        [(None, None, ()), (ANSWER, SIGS, ()), (ANSWER, None, (NSEC,)), (None, None, (NSEC,))])
]


@pytest.mark.parametrize("cd", [False, True])
def test_one_step_shortcut_agrees_with_chain_join(cd):
    engine = _engine(cd)
    for step in STEPS:
        fast = engine._join(NAME, 1, [step])
        general = engine._join_chain(NAME, 1, [step])
        assert type(fast) is type(general)
        assert _fields(fast) == _fields(general), step
        assert fast == general


def test_aliases_still_take_the_chain_join():
    engine = _engine(False)
    cname = _Step(Kind.CNAME, Status.SECURE, "cname", 30, CNAME, None)
    answer = _Step(Kind.ANSWER, Status.SECURE, "answer", 300, ANSWER, SIGS)
    joined = engine._join(NAME, 1, [cname, answer])
    assert joined.chain == (CNAME,) and joined.rrset is ANSWER and joined.ttl == 30
    lone = engine._join(NAME, 5, [cname])  # a one-step CNAME chain goes the general way too
    assert lone == engine._join_chain(NAME, 5, [cname]) and lone.chain == (CNAME,)
