"""Differential test: `cid resolve` / `cid dig` reach the verdicts Unbound reaches on a
hierarchy signed with NSEC3 (and NSEC, the control) by BIND's dnssec-signzone, served by NSD
and Knot.

tests/support/nsec3_hierarchy.py builds the zones (cid. → cmcc.cid. → bj.cmcc.cid. signed,
ct.cid. and three children of cmcc.cid. unsigned) in several variants: NSEC, NSEC3 (no salt, no
extra iterations), NSEC3 with opt-out, with a salt, with 150 iterations (the most BIND 9.18 and
Unbound 1.17 still validate) and with 151 iterations in bj.cmcc.cid. (both treat its denials as
insecure). Each variant is served twice: NSD on the first slot and Knot on the second, then
swapped, so both programs serve every zone shape.

For each (variant, roles) one validating Unbound (stub zone cid., trust anchor = dsset-cid.) is
asked every case with DO=1, RD=1, and our resolver is asked the same through its command line:
`cid resolve ID --json` for identifiers and `cid dig NAME TYPE +json` (no @SERVER: our own
validating resolver) for the rest. The verdicts must agree:

    Unbound SERVFAIL                  ⇔  ours bogus (SERVFAIL)
    Unbound AD=1                      ⇔  ours secure (AD)
    Unbound NOERROR/NXDOMAIN, AD=0    ⇔  ours insecure

with the same rcode and the same answer data. Unbound is also held to the verdict expected of
it (``EXPECTED``), so a broken hierarchy cannot pass by making both sides fail alike.

Both sides' views come from tests/support/unbound_compare.py (shared with
tests/test_interop_misbehaving.py). Every ``cid`` command of one (variant, roles) runs in one
Python process, each through ``resolver.cli.main.main`` with its own arguments and a fresh
Resolver (cold cache), exactly as a separate ``cid`` invocation would, minus the interpreter
start-up (≈0.4 s each; 52 commands per (variant, roles), 12 of those). For `cid dig` the verdict comes from the +json rcode and AD flag
and must agree with the ``;; VALIDATION:`` status of the same command without +json (so an
upstream failure, SERVFAIL with status indeterminate, is not taken for bogus).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import dns.name
import pytest

from support import nsec3_hierarchy as H
from support import peer_servers
from support.net import free_port
from support.unbound_compare import cid_batch, our_commands, our_view, server_dig, server_resolve, split_runs

UNBOUND_ADDR = H.PREFIX + "100"


@dataclass(frozen=True)
class Case:
    kind: str          # "resolve" (cid resolve --json) or "dig" (cid dig NAME TYPE +json)
    name: str
    rdtype: str = "A"
    note: str = ""

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name.rstrip('.')}" + (f"/{self.rdtype}" if self.kind == "dig" else "")


CASES = [
    # issue 6
    Case("resolve", "pool-1.bj.cmcc.cid.", note="exists; AAAA is NODATA"),
    Case("resolve", "nope.bj.cmcc.cid.", note="NXDOMAIN"),
    Case("resolve", "pool-1.ct.cid.", note="in the unsigned child ct.cid."),
    Case("resolve", "gw.cmcc.cid.", note="exists, A only: SVCB/CAPS/LOAD NODATA"),
    # name errors
    Case("dig", "nope.bj.cmcc.cid.", "A", "NXDOMAIN one label below the apex"),
    Case("dig", "x.nope.bj.cmcc.cid.", "A", "NXDOMAIN two labels below the closest encloser"),
    Case("dig", "nope.cmcc.cid.", "A", "NXDOMAIN in the zone with unsigned delegations (opt-out span)"),
    Case("dig", "nope.cid.", "A", "NXDOMAIN at the trust anchor's zone"),
    # no data
    Case("dig", "pool-1.bj.cmcc.cid.", "AAAA", "NODATA"),
    Case("dig", "bj.cmcc.cid.", "TXT", "apex NODATA"),
    Case("dig", "cid.", "TXT", "apex NODATA at the anchor"),
    Case("dig", "b.bj.cmcc.cid.", "A", "empty non-terminal"),
    Case("dig", "a.b.bj.cmcc.cid.", "A", "below the empty non-terminal"),
    # wildcards
    Case("dig", "x.wild.bj.cmcc.cid.", "A", "wildcard expansion"),
    Case("dig", "x.y.wild.bj.cmcc.cid.", "A", "wildcard expansion, two labels"),
    Case("dig", "x.wild.bj.cmcc.cid.", "TXT", "wildcard NODATA"),
    # aliases
    Case("dig", "www.bj.cmcc.cid.", "A", "CNAME in the signed zone"),
    Case("dig", "ext.bj.cmcc.cid.", "A", "CNAME from signed into unsigned"),
    # delegations
    Case("dig", "bj.cmcc.cid.", "DS", "signed delegation"),
    Case("dig", "cmcc.cid.", "DS", "signed delegation from the anchor"),
    Case("dig", "ct.cid.", "DS", "unsigned delegation in cid."),
    Case("dig", "sh.cmcc.cid.", "DS", "unsigned delegation in cmcc.cid."),
    Case("dig", "pool-1.ct.cid.", "A", "below an unsigned delegation of cid."),
    Case("dig", "pool-1.sh.cmcc.cid.", "A", "below an unsigned delegation of cmcc.cid."),
    Case("dig", "nope.sh.cmcc.cid.", "A", "NXDOMAIN below an unsigned delegation"),
    Case("dig", "pool-1.gz.cmcc.cid.", "A", "below another unsigned delegation"),
    # positive controls
    Case("dig", "gw.cmcc.cid.", "A"),
    Case("dig", "pool-1.bj.cmcc.cid.", "TYPE65380", "CAPS"),
]
CASE_IDS = [c.id for c in CASES]

VARIANTS = list(H.VARIANTS)
CONFIGS = [(v, swapped) for v in VARIANTS for swapped in (False, True)]


def _expected(variant: H.Variant, case: Case) -> tuple[str, str]:
    """Unbound's (rcode, verdict) for a case: what RFC 4035/5155/9276 give for these zones."""
    name, rdtype = case.name, case.rdtype
    if case.kind == "resolve":
        rcode = "NXDOMAIN" if name.startswith("nope.") else "NOERROR"
    elif name.startswith("nope.") or ".nope." in name:
        rcode = "NXDOMAIN"
    else:
        rcode = "NOERROR"
    zone = max((z for z in H.ZONES if dns.name.from_text(name).is_subdomain(dns.name.from_text(z))
                and not (rdtype == "DS" and z == name)), key=len)
    if zone not in H.SIGNED:
        return rcode, "insecure"
    denial = case.kind == "resolve" or rcode == "NXDOMAIN" or rdtype in ("AAAA", "TXT") \
        or name in ("b.bj.cmcc.cid.", "x.wild.bj.cmcc.cid.", "x.y.wild.bj.cmcc.cid.") \
        or (rdtype == "DS" and name not in H.SIGNED)
    if name == "pool-1.bj.cmcc.cid." and rdtype == "TYPE65380":
        denial = False
    if case.name in ("pool-1.ct.cid.", "ext.bj.cmcc.cid."):
        return rcode, "insecure"
    if variant.nsec3 and denial:
        # RFC 5155 §9.2: a proof resting on an opt-out NSEC3 covering the next closer name (a
        # name error, a wildcard answer or wildcard NODATA, no DS at an unsigned delegation,
        # which has no NSEC3 of its own under opt-out) cannot show that no signed name is
        # there: Unbound answers without AD. NODATA at a name with its own NSEC3 stays secure.
        wildcard = ".wild." in name
        unsigned_cut = rdtype == "DS" and name not in H.SIGNED
        if variant.optout and (rcode == "NXDOMAIN" or wildcard or unsigned_cut):
            return rcode, "insecure"
        # RFC 9276 §3.2: more iterations than the validator accepts → insecure, not bogus.
        if variant.iterations_for(zone) > 150:
            return rcode, "insecure"
    return rcode, "secure"


# --- fixtures -------------------------------------------------------------------------------

@dataclass
class Observation:
    unbound: dict
    unbound_text: str
    ours: dict
    ours_text: str


def observe_config(base: Path, keydir: Path, hierarchies: dict[str, H.Hierarchy], variant: str,
                   swapped: bool) -> dict[str, Observation]:
    """Serve one (variant, roles), ask Unbound and ours every case, stop the servers."""
    if variant not in hierarchies:
        hierarchies[variant] = H.build(base / variant, H.VARIANTS[variant], keydir)
    hierarchy = hierarchies[variant]
    workdir = base / f"{variant}-{H.roles(swapped)}"
    with H.serve(hierarchy, workdir, swapped=swapped):
        port = free_port(UNBOUND_ADDR)
        with peer_servers.unbound(workdir / "unbound", UNBOUND_ADDR, port, trust_anchor=hierarchy.anchor,
                                  stubs={"cid.": [f"{H.SLOT1}@{H.PORT}"]}):
            theirs = {c.id: (server_resolve if c.kind == "resolve" else server_dig)((UNBOUND_ADDR, port), c)
                      for c in CASES}
        options = ["--hint", f"cid.={H.SLOT1}", "--port", str(H.PORT), "--trust-anchor", str(hierarchy.anchor)]
        # The dig-style run (no +json) adds the ";; VALIDATION:" verdict and why.
        commands = [our_commands(c, options) for c in CASES]
        flat = cid_batch([{"argv": argv} for group in commands for argv in group])
    result = {}
    for case, runs in zip(CASES, split_runs(flat, commands)):
        ours, ours_text = our_view(case, runs)
        result[case.id] = Observation(theirs[case.id][0], theirs[case.id][1], ours, ours_text)
    return result


@pytest.fixture(scope="module")
def observe(tmp_path_factory: pytest.TempPathFactory):
    """observe(variant, swapped) → {case id: Observation}, computed once per (variant, roles);
    each variant is signed once."""
    base = tmp_path_factory.mktemp("nsec3-interop")
    keydir = H.make_keys(base / "keys")
    hierarchies: dict[str, H.Hierarchy] = {}
    observed: dict[tuple[str, bool], dict[str, Observation]] = {}

    def get(variant: str, swapped: bool) -> dict[str, Observation]:
        if (variant, swapped) not in observed:
            observed[variant, swapped] = observe_config(base, keydir, hierarchies, variant, swapped)
        return observed[variant, swapped]

    return get


# --- tests ----------------------------------------------------------------------------------

def _describe(variant: str, swapped: bool, case: Case, seen: Observation) -> str:
    def line(view: dict) -> str:
        return json.dumps(view, sort_keys=True, ensure_ascii=False)
    nsd_slot = H.SLOT2 if swapped else H.SLOT1
    nsd_zones = ", ".join(z for z, (address, _) in H.ZONES.items() if address == nsd_slot)
    return (f"\n{variant}, {H.roles(swapped)} (NSD serves {nsd_zones}): {case.kind} {case.name} "
            f"{case.rdtype if case.kind == 'dig' else ''}  [{case.note}]\n"
            f"  unbound: {line(seen.unbound)}\n"
            f"  ours:    {line(seen.ours)}\n"
            f"--- unbound said\n{seen.unbound_text}\n--- ours said\n{seen.ours_text}")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("variant,swapped", CONFIGS, ids=[f"{v}-{H.roles(s)}" for v, s in CONFIGS])
def test_same_verdict_as_unbound(observe, variant: str, swapped: bool, case: Case) -> None:
    seen = observe(variant, swapped)[case.id]
    detail = _describe(variant, swapped, case, seen)
    expected = _expected(H.VARIANTS[variant], case)
    assert (seen.unbound["rcode"], seen.unbound["verdict"]) == expected, "Unbound itself: " + detail
    assert seen.ours == seen.unbound, detail


def test_variants_have_the_denial_they_claim(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The signed files carry what each variant names (else the comparison tests the wrong thing):
    NSEC3PARAM with the salt and iterations, the opt-out flag on every NSEC3 of an opt-out zone
    and no NSEC3 for its unsigned delegations (so opt-out spans cover them), NSEC in the control."""
    import dns.dnssec
    import dns.zone

    base = tmp_path_factory.mktemp("nsec3-shapes")
    keydir = H.make_keys(base / "keys")
    for name, variant in H.VARIANTS.items():
        hierarchy = H.build(base / name, variant, keydir)
        for zone in H.SIGNED:
            parsed = dns.zone.from_file(str(hierarchy.files[zone]), origin=zone, relativize=False)
            nsec3 = {str(owner).split(".", 1)[0].upper(): rds for owner, rds in parsed.iterate_rdatasets("NSEC3")}
            if not variant.nsec3:
                assert not nsec3 and any(True for _ in parsed.iterate_rdatasets("NSEC")), (name, zone)
                continue
            (param,) = parsed.find_rdataset(zone, "NSEC3PARAM")
            assert (param.algorithm, param.iterations, param.salt.hex() or "-") == \
                (1, variant.iterations_for(zone), variant.salt), (name, zone, param)
            assert {rd.flags for rds in nsec3.values() for rd in rds} == {int(variant.optout)}, (name, zone)
            authoritative = {n for n in H.names_with_nsec3(zone, optout=variant.optout)}
            hashes = {dns.dnssec.nsec3_hash(n, param.salt, param.iterations, 1): n for n in authoritative}
            assert set(nsec3) == set(hashes), (name, zone, sorted(authoritative))
