"""Differential test on random zones: ``cid serve auth`` vs Knot and NSD (issue 8, Correctness).

``support.random_zones`` generates zones with wildcards, empty non-terminals, CNAME chains (in
zone, out of zone, loops), delegations with and without DS, glue and occluded data below cuts,
DNAME, mixed-case owners, SVCB and CAPS in RFC 3597 form and large RRsets; each is served
unsigned and signed by ``dnssec-signzone -O full`` (NSEC, NSEC3, NSEC3 opt-out) by knotd, nsd and
``cid serve auth`` (a subprocess, as operators run it). A random battery of questions per zone
(names with data × their types and others, names below wildcards, ENTs, absent names at several
depths, below DNAMEs and cuts, DS at cuts, ANY, random case, DO or not, UDP without EDNS or with
512/1232/4096 octets, TCP) goes to all three; rcode, flags and every section as sets of RR texts
(TTLs included) are compared.

Where Knot and NSD agree, we must too; where they differ, the difference must be one of
``random_zones.PEER_DIFFERENCES`` and we must be on the side it states. A few ways in which we
differ from both peers are recognised by ``random_zones.OUR_DEFECTS`` (reported on issue 8, the
store and answer code are being rewritten): the test lets those pass and prints their count,
and fails on anything else. The longer run is ``tools/auth_fuzz.py``.
"""

from __future__ import annotations

import collections
import random

import pytest

from support import random_zones as rz

SEEDS = (1, 2, 14)  # together they show every known difference at least once but two
QUESTIONS = 100
ADDRESSES = {"knot": "127.0.71.1", "nsd": "127.0.71.2", "ours": "127.0.71.3"}
DNAME_SEED = 5  # a zone with data below DNAMEs (Knot and NSD refuse to load it)


@pytest.fixture(scope="module")
def zones(tmp_path_factory) -> list[rz.Signed]:
    directory = tmp_path_factory.mktemp("random-zones")
    return [rz.sign(directory, rz.generate(seed, f"r{seed}-{mode}.test."), mode)
            for seed in SEEDS for mode in rz.MODES]


@pytest.fixture(scope="module")
def dname_zone(tmp_path_factory) -> rz.Signed:
    directory = tmp_path_factory.mktemp("dname-children")
    return rz.sign(directory, rz.generate(DNAME_SEED, "occluded-nsec.test.", dname_children=True), "nsec")


@pytest.fixture(scope="module")
def servers(zones, dname_zone, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("servers")
    with rz.three_servers(workdir, [*zones, dname_zone], ADDRESSES,
                          not_on_peers=[dname_zone.zone.origin]) as running:
        yield running, workdir


def _ours_fits_where_peers_truncate(c: rz.Case) -> bool:
    """Knot and NSD both set TC; ours is the whole response (the same as asked over TCP) and
    fits the limit: theirs are larger (Knot compresses against fewer earlier names, NSD adds the
    apex NS RRset). RFC 2181 §9: TC only when the data does not fit."""
    full = c.extra.get("ours_whole")
    return (c.flag("knot", rz.dns.flags.TC) and c.flag("nsd", rz.dns.flags.TC)
            and not c.flag("ours", rz.dns.flags.TC) and c.replies["ours"].size <= c.limit
            and full is not None and rz.view(full) == rz.view(c.replies["ours"].message))


OURS_ONLY_SMALLER = rz.Known("ours-fits-where-peers-truncate", _ours_fits_where_peers_truncate.__doc__,
                             _ours_fits_where_peers_truncate, "own")


def _ask_all(running, signed: rz.Signed, q: rz.Question) -> rz.Case:
    case = rz.ask_all(running, signed, q)
    if q.transport != "tcp" and not case.flag("ours", rz.dns.flags.TC) \
            and case.flag("knot", rz.dns.flags.TC) and case.flag("nsd", rz.dns.flags.TC):
        tcp = rz.Question(q.name, q.rdtype, q.do, "tcp")
        case.extra["ours_whole"] = rz.ask(running["ours"], tcp).message
    return case


@pytest.fixture(scope="module")
def verdicts(zones, servers) -> dict[str, list[rz.Verdict]]:
    running, _ = servers
    out = {}
    for signed in zones:
        rng = random.Random(signed.zone.seed * 7 + rz.MODES.index(signed.mode))
        out[signed.zone.origin] = [
            rz.judge(_ask_all(running, signed, q), rz.PEER_DIFFERENCES,
                     [*rz.OUR_DEFECTS, OURS_ONLY_SMALLER])
            for q in rz.battery(signed, rng, QUESTIONS)]
    return out


ORIGINS = [f"r{seed}-{mode}.test." for seed in SEEDS for mode in rz.MODES]


@pytest.mark.parametrize("origin", ORIGINS)
def test_ours_answers_as_knot_and_nsd(verdicts, origin):
    bad = [v for v in verdicts[origin] if not v.ok]
    assert not bad, f"{len(bad)} of {len(verdicts[origin])} questions:\n" + "\n".join(
        v.describe() for v in bad[:10])


def test_every_kind_of_answer_was_compared(verdicts):
    """Guards the comparisons: the battery reaches every shape the generator makes."""
    every = [v for vs in verdicts.values() for v in vs]
    same = [v.case for v in every if v.kind == "same"]
    assert len(same) > len(every) / 2

    def seen(pred) -> bool:
        return any(pred(c.replies["knot"].message) for c in same)

    import dns.flags
    import dns.rcode
    import dns.rdatatype as t
    assert seen(lambda m: m.rcode() == dns.rcode.NXDOMAIN and any(r.rdtype == t.NSEC3 for r in m.authority))
    assert seen(lambda m: m.rcode() == dns.rcode.NXDOMAIN and any(r.rdtype == t.NSEC for r in m.authority))
    assert seen(lambda m: any(r.rdtype == t.DNAME for r in m.answer))
    assert seen(lambda m: sum(r.rdtype == t.CNAME for r in m.answer) >= 2)  # a chain
    assert seen(lambda m: not m.flags & dns.flags.AA and any(r.rdtype == t.DS for r in m.authority))
    assert seen(lambda m: not m.flags & dns.flags.AA and any(r.rdtype == t.NS for r in m.authority))
    assert seen(lambda m: bool(m.flags & dns.flags.TC))
    assert seen(lambda m: any(r.rdtype == t.RRSIG and r[0].labels < len(r.name) - 1 for r in m.answer))  # wildcard
    assert seen(lambda m: any(r.rdtype == 65380 for r in m.answer))


# Peer differences these seeds show (the others need other zones: tools/auth_fuzz.py finds them).
PEER_DIFFERENCES_SEEN = {"any", "referral-glue-does-not-fit", "nsec3-literal-wildcard-nodata",
                         "nsd-nsec-below-wildcard-owner", "knot-nxdomain-below-optout-ent",
                         "nsec3-optout-ent"}


def test_known_peer_differences_are_seen(verdicts):
    """The recorded differences between Knot and NSD still occur (they stay true); our own
    differences (OUR_DEFECTS) are counted and printed, not required: fixing them is the goal."""
    labels = collections.Counter(v.label for vs in verdicts.values() for v in vs if v.label)
    assert PEER_DIFFERENCES_SEEN <= set(labels), (sorted(PEER_DIFFERENCES_SEEN - set(labels)), labels)
    print("\n".join(f"{n:5d} {label}" for label, n in labels.most_common()))


def test_peers_refuse_data_below_dname(servers, dname_zone):
    """RFC 6672 §2.4 forbids data below a DNAME. dnssec-signzone signs such a zone; Knot ("child
    record exists under DNAME") and NSD ("DNAME ... has data below it") refuse to load it."""
    running, workdir = servers
    origin = dname_zone.zone.origin
    assert dname_zone.zone.below_dnames
    knot = (workdir / "knot" / "knot.out").read_text()
    assert f"[{origin}] check, node" in knot and "child record exists under DNAME" in knot
    nsd = (workdir / "nsd" / "nsd.log").read_text()
    assert f"zone {origin} file" in nsd and "has data below it" in nsd
    for who in ("knot", "nsd"):
        q = rz.Question(origin, "SOA", False, "udp1232")
        assert rz.ask(running[who], q).message.rcode() != rz.dns.rcode.NOERROR


# --- the cases where we differed from both Knot and NSD (issue 8 report) ----------------------
# All closed: owner-case and tc-where-peers-fit by wire.CompressingWriter (names inside RFC 1035
# RDATA compressed, owners and those names written lower-cased as the peers load them).

@pytest.mark.parametrize("label", [k.label for k in rz.OUR_DEFECTS])
def test_ours_never_differs_from_both_peers(verdicts, label):
    cases = [v for vs in verdicts.values() for v in vs if v.kind == "ours-differs" and v.label == label]
    assert not cases, f"{len(cases)} cases of {label}; first:\n" + "\n".join(v.describe() for v in cases[:3])


def test_no_data_served_below_dname(servers, dname_zone):
    """Knot and NSD refuse such a zone; if we load it, the DNAME must still apply (RFC 6672 §2.3:
    names below it are never answered from the occluded data)."""
    running, _ = servers
    import dns.rdatatype
    for name in dname_zone.zone.below_dnames:
        m = rz.ask(running["ours"], rz.Question(dname_zone.zone.absolute(name), "A", True, "tcp")).message
        if m.rcode() in (rz.dns.rcode.REFUSED, rz.dns.rcode.SERVFAIL):
            continue  # refused the zone, as the peers do
        assert any(r.rdtype == dns.rdatatype.DNAME for r in m.answer), m.to_text()
