"""Live changes in NSEC3 zones around zone cuts, against BIND as the oracle (RFC 5155 §7.1).

Each case: a START zone signed by ``dnssec-signzone -3 SALT -H N [-A]`` is loaded, a sequence of
change batches (delegations with and without DS, glue, data below a cut, names that make and
unmake empty non-terminals) is applied with ``zonechange.apply``; the NSEC3 chain we end with
(owner hashes, flags, next hashes, bitmaps, TTLs) must be the one ``dnssec-signzone`` makes
signing the END zone from scratch with the same parameters, and the exported zone must pass
``dnssec-verify`` and ``cid zone verify``; without opt-out, ``ldns-signzone``'s chain too. The same end state reached by replaying the change
as a journal diff (``live.apply_diff``, the startup path) must be the same zone.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdatatype
import dns.rdataset
import dns.zone
import pytest

import resolver  # noqa: F401
from resolver.auth import export, journal, live, zonechange, zoneload
from resolver.auth.keys import load_zone_keys
from resolver.auth.store import ZoneStore

from support.live_primary import cid
from support.nsec3_zones import bind_sign
from support.peers import run

ORIGIN = "cut.test."
DS_HEX = "0102030405060708091011121314151617181920212223242526272829303132"
Model = dict[str, dict[str, list[str]]]  # owner relative to ORIGIN ("@") → type → rdata texts
Op = tuple[str, str, list[str] | None]  # (owner, type, rdatas; None deletes the RRset)

BASE: Model = {
    "@": {"SOA": ["ns1 hostmaster 1 7200 900 1209600 300"], "NS": ["ns1"]},
    "ns1": {"A": ["192.0.2.1"]},
    "www": {"A": ["192.0.2.80"], "TXT": ["\"web\""]},
    "a.b.c": {"TXT": ["\"deep\""]},
    "sec": {"NS": ["ns.sec"], "DS": [f"12345 15 2 {DS_HEX}"]},
    "ns.sec": {"A": ["192.0.2.2"]},
    "ins": {"NS": ["ns.ins"]},
    "ns.ins": {"A": ["192.0.2.3"]},
    "x.ent": {"NS": ["ns.x.ent"]},
    "ns.x.ent": {"A": ["192.0.2.4"]},
}


def delegation(cut: str, *, ds: bool) -> list[Op]:
    ops: list[Op] = [(cut, "NS", [f"ns.{cut}"]), (f"ns.{cut}", "A", ["192.0.2.53"])]
    return ops + ([(cut, "DS", [f"4242 15 2 {DS_HEX}"])] if ds else [])


# (name, batches): each batch is one zonechange.apply call.
CASES: list[tuple[str, list[list[Op]]]] = [
    ("add-secure-delegation", [delegation("new", ds=True), delegation("d.e.deep", ds=True)]),
    ("add-insecure-delegation", [delegation("new", ds=False), delegation("d.e.deep", ds=False)]),
    ("remove-delegations", [[("ns.sec", "A", None)], [("sec", "NS", None), ("sec", "DS", None)],
                            [("ns.x.ent", "A", None), ("x.ent", "NS", None)]]),
    ("glue-alone", [[("ns2.sec", "A", ["192.0.2.9"]), ("ns.ins", "A", None)],
                    [("ns.ins", "A", ["192.0.2.10"]), ("deep.glue.ns.x.ent", "AAAA", ["2001:db8::1"])]]),
    ("data-below-cut", [[("foo.sec", "TXT", ["\"occluded\""]), ("bar.x.ent", "A", ["192.0.2.7"])],
                        [("ins", "TXT", ["\"at the cut\""])], [("foo.sec", "TXT", None)]]),
    ("ds-comes-and-goes", [[("ins", "DS", [f"777 15 2 {DS_HEX}"])], [("sec", "DS", None)],
                           [("x.ent", "DS", [f"778 15 2 {DS_HEX}"])], [("x.ent", "DS", None)]]),
    ("empty-non-terminals", [[("q.r.s", "A", ["192.0.2.11"])], [("a.b.c", "TXT", None)],
                             [("b.c", "TXT", ["\"was empty\""]), ("z.y.x.ent", "A", ["192.0.2.12"])],
                             [("q.r.s", "A", None), ("r.s", "A", ["192.0.2.13"])]]),
    ("ent-only-insecure", [[("y.ent", "A", ["192.0.2.14"])], [("y.ent", "A", None)],
                           delegation("p.q.only", ds=False), delegation("r.q.only", ds=True)]),
    ("apex-neighbours", [[("www", "A", None), ("www", "TXT", None)], [("ns1", "AAAA", ["2001:db8::53"])]]),
]

MODES = {"plain": ("-", 0, False), "opt-out": ("a1b2c3", 3, True)}


# --- the zone model ------------------------------------------------------------------------------

def changed(model: Model, batch: list[Op]) -> Model:
    out = copy.deepcopy(model)
    for owner, rdtype, rdatas in batch:
        types = out.setdefault(owner, {})
        if rdatas is None:
            types.pop(rdtype, None)
        else:
            types[rdtype] = list(rdatas)
        if not types:
            del out[owner]
    return out


def text_of(model: Model) -> str:
    lines = ["$TTL 3600", f"$ORIGIN {ORIGIN}"]
    for owner, types in model.items():
        for rdtype, rdatas in types.items():
            lines += [f"{owner} {rdtype} {rd}" for rd in rdatas]
    return "\n".join(lines) + "\n"


def absolute(owner: str) -> dns.name.Name:
    return dns.name.from_text(owner, dns.name.from_text(ORIGIN))


def cuts_of(model: Model) -> set[dns.name.Name]:
    return {absolute(o) for o, t in model.items() if o != "@" and "NS" in t}


def signed_here(model: Model, owner: str, rdtype: str) -> bool:
    """Whether BIND signs this RRset: authoritative data only (RFC 4035 §2.2)."""
    name = absolute(owner)
    cuts = cuts_of(model)
    if any(name != c and name.is_subdomain(c) for c in cuts):
        return False
    return name not in cuts or rdtype == "DS"


# --- the chain, as a comparable value --------------------------------------------------------------

def chain_of(text: str) -> dict[str, tuple]:
    zone = dns.zone.from_text(text, ORIGIN, relativize=False, check_origin=False)
    out = {}
    for name, rds in zone.iterate_rdatasets(dns.rdatatype.NSEC3):
        for rd in rds:
            types = sorted(dns.rdatatype.to_text(t) for w in rd.windows for t in _types(w))
            out[name.labels[0].decode().lower()] = (rd.flags, rd.iterations, rd.salt, rd.next, rds.ttl, types)
    return out


def _types(window) -> list[int]:
    number, bits = window
    return [number * 256 + i * 8 + j for i, byte in enumerate(bits) for j in range(8) if byte & (0x80 >> j)]


# --- one case --------------------------------------------------------------------------------------

@dataclass
class Outcome:
    ours: dict
    oracle: dict
    text: str
    ldns: dict | None


def run_case(tmp: Path, start: Model, batches: list[list[Op]], mode: str) -> Outcome:
    salt, iterations, opt_out = MODES[mode]
    first = bind_sign(tmp / "start", ORIGIN, opt_out=opt_out, salt=salt, iterations=iterations,
                      text=text_of(start))
    data = zoneload.load(first.path, ORIGIN).zone
    replayed = zoneload.load(first.path, ORIGIN).zone
    before_text = export.zone_text(data)
    sign = zonechange.rrset_signer(load_zone_keys(first.keydir, ORIGIN))
    model = start
    for batch in batches:
        model = changed(model, batch)
        changes = []
        for owner, rdtype, rdatas in batch:
            name = absolute(owner)
            if rdatas is None:
                changes.append(zonechange.delete(name, rdtype))
                continue
            rds = dns.rdataset.from_text_list("IN", rdtype, 3600, rdatas, origin=dns.name.from_text(ORIGIN),
                                              relativize=False)
            wires = [rd.to_wire() for rd in rds]
            sigs = sign(name, int(rds.rdtype), rds.ttl, wires) if signed_here(model, owner, rdtype) else ()
            changes.append(zonechange.put(name, rds, sigs))
        zonechange.apply(data, changes, sign=sign)
    text = export.zone_text(data)
    # The oracle: BIND signing the end zone from scratch.
    last = bind_sign(tmp / "end", ORIGIN, opt_out=opt_out, salt=salt, iterations=iterations, text=text_of(model))
    # Journal replay: the whole change as one diff, applied to the start zone as at startup.
    live.apply_diff(ZoneStore([replayed]), replayed, diff_of(before_text, text))
    assert spelled_alike(export.zone_text(replayed)) == spelled_alike(text)
    return Outcome(chain_of(text), chain_of(last.path.read_text()), text,
                   ldns_chain(last, salt, iterations) if not opt_out else None)


def ldns_chain(signed, salt: str, iterations: int) -> dict:
    """The chain ldns-signzone makes of the end zone (a second oracle; not under opt-out, where
    ldns keeps NSEC3s for unsigned delegations that BIND leaves out, as RFC 5155 §7.1 allows)."""
    out = signed.path.with_suffix(".ldns")
    keybase = str(next(signed.keydir.glob("*.key"))).removesuffix(".key")
    run(["ldns-signzone", "-n", "-s", "" if salt == "-" else salt, "-t", str(iterations), "-o", ORIGIN,
         "-f", str(out), str(signed.unsigned), keybase])
    return chain_of(out.read_text())


def spelled_alike(text: str) -> list[str]:
    """The lines of an export with owners lower-cased: a hashed owner removed and added again
    may change its spelling (BIND writes them upper-case, we lower-case); names compare
    case-insensitively (RFC 4343)."""
    return [owner.lower() + rest for owner, rest in (line.split(" ", 1) for line in text.splitlines())]


def diff_of(before: str, after: str) -> journal.Diff:
    def rrs(text: str) -> set[bytes]:
        zone = dns.zone.from_text(text, ORIGIN, relativize=False, check_origin=False)
        out = set()
        for name, rds in zone.iterate_rdatasets():
            for rd in rds:
                out.add(journal.rr_wire(name.to_wire(), int(rds.rdtype), rds.ttl, rd.to_wire()))
        return out
    old, new = rrs(before), rrs(after)
    return journal.Diff(1, 2, tuple(sorted(old - new)), tuple(sorted(new - old)))


def verify(tmp: Path, text: str) -> None:
    path = tmp / "ours.db"
    path.write_text(text)
    run(["dnssec-verify", "-q", "-z", "-o", ORIGIN, str(path)])
    proc = cid("zone", "verify", str(path))
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stdout + proc.stderr


def check(tmp: Path, start: Model, batches: list[list[Op]], mode: str, *, verify_export: bool = True) -> None:
    outcome = run_case(tmp, start, batches, mode)
    missing = sorted(set(outcome.oracle) - set(outcome.ours))
    extra = sorted(set(outcome.ours) - set(outcome.oracle))
    assert not missing and not extra, f"hashes BIND has and we lack {missing}; we have, BIND not {extra}"
    for owner, record in outcome.oracle.items():
        assert outcome.ours[owner] == record, owner
    assert outcome.ldns is None or outcome.ldns == outcome.ours
    if verify_export:
        verify(tmp, outcome.text)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,batches", CASES, ids=[c[0] for c in CASES])
def test_change_equals_bind_signing_the_end_zone(tmp_path, name, batches, mode):
    check(tmp_path, BASE, batches, mode, verify_export=mode == "opt-out" or name.startswith("add"))


def test_delegation_above_existing_names_is_refused(tmp_path):
    first = bind_sign(tmp_path, ORIGIN, salt="-", text=text_of(BASE))
    data = zoneload.load(first.path, ORIGIN).zone
    before = export.zone_text(data)
    sign = zonechange.rrset_signer(load_zone_keys(first.keydir, ORIGIN))
    with pytest.raises(ValueError, match="reload the zone"):
        zonechange.apply(data, [zonechange.put(absolute("b.c"), dns.rdataset.from_text("IN", "NS", 3600, "ns.x."))],
                         sign=sign)
    assert export.zone_text(data) == before


# --- random zones and change sequences -------------------------------------------------------------

LABELS = ["a", "b", "c", "d", "e", "f"]


def random_name(rng: random.Random) -> str:
    return ".".join(rng.choice(LABELS) for _ in range(rng.randint(1, 3)))


def below(name: str, cut: str) -> bool:
    return name != cut and name.endswith("." + cut)


def random_start(rng: random.Random) -> Model:
    model: Model = {"@": dict(BASE["@"]), "ns1": dict(BASE["ns1"])}
    for _ in range(rng.randint(6, 14)):
        owner = random_name(rng)
        if owner not in model and not any(below(owner, c) or below(c, owner) for c in _cuts(model)):
            model[owner] = {"A": [f"192.0.2.{rng.randint(1, 250)}"]}
    for _ in range(rng.randint(1, 3)):
        cut = random_name(rng)
        if cut in model or any(below(o, cut) or below(cut, o) for o in model if o != "@"):
            continue
        for owner, rdtype, rdatas in delegation(cut, ds=rng.random() < 0.5):
            model.setdefault(owner, {})[rdtype] = rdatas
    return model


def _cuts(model: Model) -> list[str]:
    return [o for o, t in model.items() if o != "@" and "NS" in t]


def random_batch(rng: random.Random, model: Model) -> list[Op]:
    """One legal batch: what zonechange refuses (a cut over existing names) is not generated."""
    cuts = _cuts(model)
    names = [o for o in model if o not in ("@", "ns1")]
    choice = rng.randrange(7)
    if choice == 0 or not names:  # a new name, maybe deep (ENTs), maybe below a cut
        return [(random_name(rng), "TXT", [f"\"{rng.randint(0, 99)}\""])]
    if choice == 1:  # a name goes (a cut only once nothing is left below it)
        owner = rng.choice(names)
        if owner in cuts and any(below(o, owner) for o in model):
            return [(o, t, None) for o in model if below(o, owner) for t in model[o]]
        return [(owner, t, None) for t in model[owner]]
    if choice == 2:  # a new delegation where nothing lies below
        cut = random_name(rng)
        if cut in model or any(below(o, cut) for o in model):
            return []
        return delegation(cut, ds=rng.random() < 0.5)
    if choice == 3 and cuts:  # DS on or off
        cut = rng.choice(cuts)
        return [(cut, "DS", None if "DS" in model[cut] else [f"99 15 2 {DS_HEX}"])]
    if choice == 4 and cuts:  # more glue, or less
        cut = rng.choice(cuts)
        glue = f"ns{rng.randint(2, 3)}.{cut}"
        return [(glue, "A", None if glue in model else ["192.0.2.99"])]
    if choice == 5:  # a type more or less at a name
        owner = rng.choice(names)
        return [(owner, "AAAA", None if "AAAA" in model[owner] else ["2001:db8::99"])]
    return [(random_name(rng), "A", ["192.0.2.100"]), (rng.choice(names), "TXT", ["\"x\""])]


def random_case(seed: int) -> tuple[Model, list[list[Op]], str]:
    rng = random.Random(seed)
    start = random_start(rng)
    model, batches = start, []
    for _ in range(rng.randint(3, 8)):
        batch = random_batch(rng, model)
        if batch:
            batches.append(batch)
            model = changed(model, batch)
    return start, batches, rng.choice(list(MODES))


@pytest.mark.parametrize("seed", range(4))
def test_random_changes_equal_bind(tmp_path, seed):
    start, batches, mode = random_case(seed)
    check(tmp_path, start, batches, mode, verify_export=seed == 0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 160))
def test_random_changes_equal_bind_long(tmp_path, seed):
    start, batches, mode = random_case(seed)
    check(tmp_path, start, batches, mode)
