"""Server selection (resolver.engine.selection) on an injected clock and random source."""

from __future__ import annotations

import random

import pytest

from resolver.engine import selection as S
from resolver.engine.selection import ServerSelection

A, B, C = ("127.0.0.2", 53), ("127.0.0.3", 53), ("127.0.0.4", 53)


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def never_explore(draws: int = 10) -> random.Random:
    """A seeded source whose first ``draws`` draws all say "no exploration"."""
    for seed in range(1000):
        probe = random.Random(seed)
        if all(probe.random() >= S.EXPLORE for _ in range(draws)):
            return random.Random(seed)
    raise AssertionError("no such seed")


def test_unknown_servers_first_then_by_smoothed_rtt():
    sel = ServerSelection(Clock(), never_explore())
    sel.answered(A, 0.300)
    sel.answered(B, 0.010)
    assert sel.order([A, B, C]) == [C, B, A]  # C unmeasured: measure it
    sel.answered(C, 0.100)
    assert sel.order([A, B, C]) == [B, C, A]


def test_rtt_is_smoothed_not_replaced():
    sel = ServerSelection(Clock())
    sel.answered(A, 0.100)
    sel.answered(A, 1.000)  # one slow answer moves the estimate, does not define it
    assert sel.srtt(A) == pytest.approx(0.7 * 0.100 + 0.3 * 1.000)


def test_dead_server_is_held_down_then_retried():
    clock = Clock()
    sel = ServerSelection(clock, never_explore())
    sel.answered(A, 0.001)
    sel.answered(B, 0.500)
    sel.timed_out(A)
    assert sel.is_down(A) and sel.order([A, B]) == [B, A]  # asked last, not never
    clock.now += S.DOWN_FOR - 1
    assert sel.is_down(A)
    clock.now += 2
    assert not sel.is_down(A)
    sel.answered(A, 0.001)
    assert sel.order([A, B]) == [A, B]


def test_exploration_is_rare_deterministic_and_never_picks_a_down_server():
    def firsts(seed: int, down: bool) -> list:
        clock = Clock()
        sel = ServerSelection(clock)
        for server, rtt in ((A, 0.001), (B, 0.050), (C, 0.090)):
            sel.answered(server, rtt)
        if down:
            sel.timed_out(C)
        rng = random.Random(seed)
        return [sel.order([A, B, C], rng)[0] for _ in range(4000)]
    run = firsts(11, False)
    assert run == firsts(11, False)  # replayable
    explored = sum(first != A for first in run) / len(run)
    assert 0.03 < explored < 0.07, explored
    assert {B, C} <= set(run)  # both non-best servers get measured again
    assert C not in firsts(11, True)  # a held-down server is never explored first


def test_timeouts_back_off_exponentially_up_to_a_cap():
    sel = ServerSelection(Clock())
    assert [sel.timeout(1.5, n) for n in range(5)] == [1.5, 3.0, 6.0, 8.0, 8.0]
    assert sel.timeout(10.0, 3) == 10.0  # a configured timeout above the cap is kept, not cut


def test_edns_less_servers_are_remembered_for_a_while():
    clock = Clock()
    sel = ServerSelection(clock)
    assert sel.uses_edns(A)
    sel.edns_failed(A)
    assert not sel.uses_edns(A) and sel.uses_edns(B)
    clock.now += S.NO_EDNS_FOR + 1
    assert sel.uses_edns(A)  # re-probed: a fixed server gets EDNS (and DNSSEC) back


def test_case_fallback_needs_two_mismatches_in_a_row():
    clock = Clock()
    sel = ServerSelection(clock)
    assert sel.case_mismatch(A) is False and sel.uses_case(A)
    sel.case_echoed(A)  # an exact echo in between: the mismatch was a spoof
    assert sel.case_mismatch(A) is False and sel.uses_case(A)
    assert sel.case_mismatch(A) is True and not sel.uses_case(A)
    clock.now += S.NO_CASE_FOR + 1
    assert sel.uses_case(A)


def test_tracked_servers_are_bounded(monkeypatch):
    monkeypatch.setattr(S, "MAX_TRACKED", 10)
    sel = ServerSelection(Clock())
    for i in range(25):
        sel.answered((f"127.0.1.{i}", 53), 0.01)
    assert len(sel._stats) <= 10


def test_no_random_reordering_while_some_server_is_unmeasured():
    """Unmeasured servers are asked first anyway; the order is then fully deterministic."""
    sel = ServerSelection(Clock())
    sel.answered(B, 0.010)
    rng = random.Random(0)
    assert all(sel.order([A, B, C], rng) == [A, C, B] for _ in range(500))
