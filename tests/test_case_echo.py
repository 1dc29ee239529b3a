"""exact_echo (resolver/engine/case.py) against match, the oracle: on real replies and fuzzed
ones (ID, flags, QDCOUNT, question bytes, case, truncation), whenever exact_echo says EXACT
from the bytes, match on the parsed reply says EXACT too; and it does say so for honest replies."""

from __future__ import annotations

import random

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rrset

from resolver.engine.case import Match, exact_echo, match, parse_reply, randomise
from resolver.engine.querywire import build_query


def _pair(rng: random.Random):
    name = randomise(dns.name.from_text(rng.choice(["pool-7.bj.cmcc.cid.", "cid.", "a.b.c.d.e.", "."])), rng)
    qtype = rng.choice([1, 28, 64, 48, 65380])
    query, wire = build_query(name, qtype, rng.getrandbits(16), rng.random() < 0.8, 1232)
    reply = dns.message.make_response(query)
    if rng.random() < 0.7:
        reply.answer.append(dns.rrset.from_text(name, 300, "IN", "A", "127.0.0.1"))
    return query, wire, reply.to_wire()


def _mutate(rng: random.Random, data: bytes, wire: bytes) -> bytes:
    body = bytearray(data)
    how = rng.randrange(6)
    if how == 0 and len(body) > 2:
        body[rng.randrange(2)] ^= 1 << rng.randrange(8)  # ID
    elif how == 1:
        body[2] ^= 1 << rng.randrange(8)  # flags (QR among them)
    elif how == 2:
        body[5] = rng.choice((0, 2, 1))  # QDCOUNT
    elif how == 3 and len(body) > 13:
        i = rng.randrange(12, min(len(body), len(wire)))
        body[i] ^= 0x20 if rng.random() < 0.5 else rng.randrange(1, 256)  # case or any byte
    elif how == 4:
        body = body[:rng.randrange(len(body) + 1)]
    return bytes(body)


def test_exact_echo_never_disagrees_with_match():
    rng = random.Random(3)
    said = agreed = 0
    for _ in range(6000):
        query, wire, data = _pair(rng)
        if rng.random() < 0.7:
            data = _mutate(rng, data, wire)
        fast = exact_echo(wire, data)
        try:
            oracle = match(query, parse_reply(data, query, wire))
        except (dns.exception.DNSException, ValueError):
            oracle = None  # unparseable: transport drops it before asking either
        if fast and oracle is not None:  # transport asks only about replies that parse
            said += 1
            assert oracle is Match.EXACT, data.hex()
        agreed += oracle is Match.EXACT
    assert said > 1000 and agreed >= said


def test_honest_replies_are_exact_echoes():
    rng = random.Random(4)
    for _ in range(200):
        query, wire, data = _pair(rng)
        assert exact_echo(wire, data) and match(query, parse_reply(data, query, wire)) is Match.EXACT


def test_randomise_flips_each_letter_with_even_odds_and_nothing_else():
    """0x20 case (randomise): every ASCII letter is upper-cased about half the time, each
    position on its own; digits, '-', '_' and label lengths never change; seeded and system
    sources alike."""
    import collections

    from resolver.engine.entropy import SHARED
    name = dns.name.from_text("gpu-7.x_y.Bj.CMCC.cid.")
    lowered = b"".join(name.labels).lower()
    for rng in (random.Random(0), SHARED):
        upper = collections.Counter()
        for _ in range(4000):
            out = randomise(name, rng)
            assert [len(label) for label in out.labels] == [len(label) for label in name.labels]
            joined = b"".join(out.labels)
            assert joined.lower() == lowered
            upper.update(i for i, c in enumerate(joined) if c != lowered[i])
        for i, c in enumerate(lowered):
            if 0x61 <= c <= 0x7A:
                assert 1700 < upper[i] < 2300, (i, upper[i])
            else:
                assert upper[i] == 0
    assert randomise(dns.name.root, SHARED) == dns.name.root


def _match_reference(query, response):
    """match as it was before its one-question fast path: the oracle."""
    if response.id != query.id or not response.flags & dns.flags.QR:
        return Match.MISMATCH
    if not response.question:
        return Match.NO_QUESTION
    if response.question != query.question:
        return Match.MISMATCH
    if response.question[0].name.labels != query.question[0].name.labels:
        return Match.CASE
    return Match.EXACT


def test_match_agrees_with_the_plain_comparison():
    import dns.flags
    rng = random.Random(7)
    seen = set()
    for _ in range(6000):
        query, wire, data = _pair(rng)
        if rng.random() < 0.7:
            data = _mutate(rng, data, wire)
        try:
            response = dns.message.from_wire(data)
        except dns.exception.DNSException:
            continue
        if rng.random() < 0.2 and response.question and (response.question[0].rdtype, response.question[0].rdclass) == (1, 1):
            response.question[0].add(dns.rdata.from_text("IN", "A", "127.0.0.1"))  # a record in it
        elif rng.random() < 0.05:  # none (a bare error of an old server)
            response.question = []
        elif rng.random() < 0.1:  # or two questions
            response.question.append(dns.rrset.RRset(query.question[0].name, 1, 1))
        outcome = match(query, response)
        assert outcome is _match_reference(query, response)
        seen.add(outcome)
    assert seen == set(Match)
