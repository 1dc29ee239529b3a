"""The flood fast path for NSEC3 zones (resolver/service/denial_nsec3.py): its decision against
resolver.dnssec.nsec3 on real, fuzzed and hostile record sets, and its responses byte for byte
against the slow path (RecursiveServer.answer) over the NSEC3 test federation (bj.cmcc.cid.
without opt-out, cid. with opt-out: the latter must never be answered fast)."""

from __future__ import annotations

import base64
import random

import dns.dnssec
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from resolver.dnssec import nsec3 as n3
from resolver.service.denial_nsec3 import Nsec3Chain, Nsec3Facts, prove_apex_child_nxdomain
from resolver.status import Status
from support.nsec3_chain import nsec3_chain
from test_service_aggressive import fast_and_slow_over, random_label, variants

N = dns.name.from_text
ZONE = "bj.cmcc.cid."


# --- the decision -----------------------------------------------------------------------------------

def _facts(rrset, zone):
    usable, _ = n3.usable_nsec3s([rrset], zone)
    return Nsec3Facts(usable[0]) if usable else None


def _around(chain_rrsets, digest):
    """What Cache.nsec3_around gives: the record with the greatest owner <= digest (else the last)."""
    ordered = sorted(chain_rrsets, key=lambda r: base64.b32hexdecode(r.name.labels[0].upper()))
    owners = [base64.b32hexdecode(r.name.labels[0].upper()) for r in ordered]
    best = ordered[-1]
    for owner, rrset in zip(owners, ordered):
        if owner <= digest:
            best = rrset
    return best


@pytest.mark.parametrize("opt_out,iterations,salt", [(False, 0, b""), (True, 0, b""), (False, 3, b"\xab"),
                                                     (False, n3.MAX_ITERATIONS + 1, b"")])
def test_fast_decision_agrees_with_the_nsec3_module(opt_out, iterations, salt):
    zone = N("ops.cid.")
    rng = random.Random(5155 + iterations)
    names = {"@": ["SOA", "NS", "DNSKEY", "NSEC3PARAM"], "a": ["A"], "d": ["NS", "DS"], "*.w": ["TXT"], "w": [],
             "dn": ["DNAME"]}
    for _ in range(30):
        names[random_label(rng)] = ["A"]
    full = list(nsec3_chain(zone, names, salt=salt, iterations=iterations, opt_out=opt_out).values())
    hashed = Nsec3Chain(zone, (1, iterations, salt))
    agreed = 0
    for trial in range(400):
        # The cache holds a subset of the chain (what earlier answers brought), sometimes all.
        cached = full if trial % 4 == 0 else rng.sample(full, rng.randrange(1, len(full)))
        label = rng.choice([random_label(rng), "a", "d", "w", "dn", "*", "x" * 63])
        qname = dns.name.Name((label.encode(),) + zone.labels)
        digest = n3.nsec3_digest(qname, salt, iterations)
        picked = [_around(cached, t) for t in (digest, hashed.apex, hashed.wildcard)]
        facts = [_facts(r, zone) for r in picked]
        fast = prove_apex_child_nxdomain(hashed, digest, *facts) if None not in facts else None
        unique = []
        for r in picked:
            if all(r is not u for u in unique):
                unique.append(r)
        slow = n3.prove_nxdomain(qname, unique, zone)
        # The fast path may decline what the slow path proves (the slow path then answers),
        # never the reverse; and when it answers, with the same TTL.
        if fast is not None:
            assert slow.status is Status.SECURE and slow.ttl == fast, (qname, slow.why)
            agreed += 1
    if not opt_out and iterations <= n3.MAX_ITERATIONS:
        assert agreed > 50  # it does answer the common shape
    else:
        assert agreed == 0  # opt-out spans and over-limit chains are never SECURE


def test_decision_refuses_a_matching_hash_and_parent_side_apex_records():
    zone = N("ops.cid.")
    chain = nsec3_chain(zone, {"@": ["SOA", "NS"], "a": ["A"]})
    hashed = Nsec3Chain(zone, (1, 0, b""))
    apex = _facts(chain[zone], zone)
    a_name = N("a.ops.cid.")
    a = _facts(chain[a_name], zone)
    digest_a = n3.nsec3_digest(a_name, b"", 0)
    assert prove_apex_child_nxdomain(hashed, digest_a, a, apex, apex) is None  # a exists
    delegation = _facts(nsec3_chain(zone, {"@": ["NS"], "a": ["A"]})[zone], zone)  # NS without SOA
    other = N("zzz.ops.cid.")
    assert prove_apex_child_nxdomain(hashed, n3.nsec3_digest(other, b"", 0), apex, delegation, apex) is None


# --- responses, byte for byte -------------------------------------------------------------------------

@pytest.fixture
async def fast_and_slow_nsec3():
    from support import federation as F
    from support.nsec3_chain import nsec3_federation
    from support.signing import NOW
    async with fast_and_slow_over(nsec3_federation(F.build(now=NOW))) as fs:
        yield fs


async def test_nsec3_fast_path_answers_exactly_as_the_slow_path(fast_and_slow_nsec3):
    fs = fast_and_slow_nsec3
    rng = random.Random(8198)
    await fs.ask(f"pool-7.{ZONE}", "A", do=True)
    for _ in range(40):
        await fs.ask(f"{random_label(rng)}.{ZONE}", "A")
    fs.mono[0] += 2
    fs.fast = fs.total = 0
    for _ in range(80):
        name = f"{random_label(rng)}.{ZONE}"
        for variant, options in variants(rng, name):
            got, want = await fs.ask(variant, rng.choice(["A", "AAAA", "SVCB", "TXT"]), **options)
            assert dns.message.from_wire(want).rcode() == dns.rcode.NXDOMAIN
    assert fs.fast >= 0.6 * fs.total, (fs.fast, fs.total)
    # Other shapes go the slow way or agree: existing names, the wildcard, deeper names, the
    # empty non-terminal, DS; and the opt-out zone cid. (INSECURE: never synthesised).
    for label in ("pool-7", "wild", "x.wild", "*.wild", "a.b.nope", "c0", "ns", "*"):
        for rdtype in ("A", "TXT", "DS"):
            await fs.ask(f"{label}.{ZONE}", rdtype, do=True)
    before = fs.fast
    for _ in range(20):
        await fs.ask(f"{random_label(rng)}.cid.", "A", do=True)
    assert fs.fast == before  # opt-out: never from the fast path


async def test_nsec3_fast_path_follows_the_cache(fast_and_slow_nsec3):
    """Flushed NSEC3s, expired ones and a zone whose trust is gone are seen at once or within
    REFRESH (the fast path reads the chain from the cache for every query)."""
    fs = fast_and_slow_nsec3
    rng = random.Random(77)
    await fs.ask(f"pool-7.{ZONE}", "A")
    for _ in range(40):
        await fs.ask(f"{random_label(rng)}.{ZONE}", "A")
    fs.mono[0] += 2
    got, _ = await fs.ask(f"{random_label(rng)}.{ZONE}", "A")
    assert got is not None
    fs.server.resolver.cache.flush(subtree=ZONE)
    got, want = await fs.ask(f"{random_label(rng)}.{ZONE}", "A")  # compared with the slow path if given
    fs.clock[0] += 100_000  # everything expired
    fs.mono[0] += 2
    got, want = await fs.ask(f"{random_label(rng)}.{ZONE}", "A", do=True)
    assert got is None
