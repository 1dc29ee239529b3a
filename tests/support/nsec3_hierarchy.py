"""A signed hierarchy made only with peer tools (dnssec-keygen, dnssec-signzone; ldns-signzone
for more than 150 NSEC3 iterations, which dnssec-signzone 9.18 refuses), in NSEC or NSEC3
flavours, served by NSD and Knot on loopback — the input of tests/test_interop_nsec3.py.

    cid.              Ed25519          slot 1   trust anchor = dsset-cid.
    ├─ cmcc.cid.      ECDSA P-256      slot 2   DS in cid.
    │  ├─ bj.cmcc.cid. RSA/SHA-256     slot 1   DS in cmcc.cid.
    │  └─ sh., gz., sz.cmcc.cid.       slot 1   unsigned, delegated without DS
    └─ ct.cid.        unsigned         slot 2   delegated without DS

Slot 1 (127.0.62.1) and slot 2 (127.0.62.2) are addresses, not programs: ``serve()`` puts NSD
on slot 1 and Knot on slot 2, or the other way round with ``swapped=True``. The zones name the
slots in their NS/glue, so the same signed files serve both role assignments and each program
serves every shape (NSEC3 apex with an insecure delegation, a zone with an opt-out span, a leaf
zone with a wildcard, an empty non-terminal and CNAMEs, unsigned zones). No server holds both a
parent and its child (each DS query goes to the parent's server only).

Both slots listen on port 53 so that glue works for any iterating resolver.

Keys are made once per key directory and reused by every variant, so one trust anchor (the
dsset of cid.) serves all of them. A ``Variant`` picks the denial of existence: NSEC, or NSEC3
with or without opt-out (``-A``: every NSEC3 of the zone carries the flag and unsigned
delegations get no NSEC3), with a salt, with extra iterations (on every signed zone, or only on
some). Zone files are small, so signing a variant takes well under a second.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from resolver import records

from . import peer_servers
from .peers import run

PREFIX = "127.0.62."
SLOT1, SLOT2 = PREFIX + "1", PREFIX + "2"
PORT = 53

CAPS = {"accel_count": 8, "accel_kind": "gpu", "accel_model": "h100",
        "accel_slug": "nvidia-h100-sxm5-80gb", "accel_vendor": "nvidia", "region": "bj",
        "x-unknown-key": [1, "two"]}
LOAD = {"accel_free": 3, "timestamp": 1795000000, "util": 0.25}
CT_CAPS = {"accel_kind": "cpu", "region": "ct"}

SIGNED = ("bj.cmcc.cid.", "cmcc.cid.", "cid.")  # children first: each parent takes its child's dsset
ALGORITHMS = {"cid.": ["-a", "ED25519"], "cmcc.cid.": ["-a", "ECDSAP256SHA256"],
              "bj.cmcc.cid.": ["-a", "RSASHA256", "-b", "2048"]}
UNSIGNED_IN_CMCC = ("sh", "gz", "sz")


def generic(mapping: dict) -> str:
    """RFC 3597 generic rdata of a CAPS/LOAD map (what BIND, NSD and Knot read)."""
    wire = records.encode(mapping)
    return f"\\# {len(wire)} {wire.hex()}"


# zone: (slot address, body lines after SOA/NS/ns1)
ZONES: dict[str, tuple[str, list[str]]] = {
    "cid.": (SLOT1, [
        "info TXT \"compute identifiers\"",
        "cmcc NS ns1.cmcc", f"ns1.cmcc A {SLOT2}",
        "ct NS ns1.ct", f"ns1.ct A {SLOT2}",
    ]),
    "cmcc.cid.": (SLOT2, [
        "gw A 192.0.2.1",
        "bj NS ns1.bj", f"ns1.bj A {SLOT1}",
        *(line for label in UNSIGNED_IN_CMCC
          for line in (f"{label} NS ns1.{label}", f"ns1.{label} A {SLOT1}")),
    ]),
    "bj.cmcc.cid.": (SLOT1, [
        "pool-1 SVCB 1 . alpn=h2 port=8443",
        "pool-1 A 192.0.2.11",
        f"pool-1 3600 TYPE65380 {generic(CAPS)}",
        f"pool-1 15 TYPE65381 {generic(LOAD)}",
        "a.b A 192.0.2.12",                 # b.bj.cmcc.cid. is an empty non-terminal
        "*.wild A 192.0.2.13",
        "www CNAME pool-1",
        "ext CNAME pool-1.ct.cid.",         # from the signed zone into the unsigned one
    ]),
    "ct.cid.": (SLOT2, [
        "pool-1 SVCB 1 . alpn=h2",
        "pool-1 A 192.0.2.21",
        f"pool-1 3600 TYPE65380 {generic(CT_CAPS)}",
    ]),
    **{f"{label}.cmcc.cid.": (SLOT1, ["pool-1 A 192.0.2.31"]) for label in UNSIGNED_IN_CMCC},
}


@dataclass(frozen=True)
class Variant:
    """How the signed zones deny existence. ``iteration_zones`` limits ``iterations`` to some
    zones (the others get 0); empty means every signed zone."""

    name: str
    nsec3: bool = True
    optout: bool = False
    salt: str = "-"
    iterations: int = 0
    iteration_zones: tuple[str, ...] = ()
    # dnssec-signzone refuses more than 150 iterations (BIND 9.18); ldns-signzone signs those.
    signer: str = "dnssec-signzone"

    def iterations_for(self, zone: str) -> int:
        return self.iterations if not self.iteration_zones or zone in self.iteration_zones else 0

    def signzone_args(self, zone: str) -> list[str]:
        if not self.nsec3:
            return []
        return ["-3", self.salt, "-H", str(self.iterations_for(zone)), *(["-A"] if self.optout else [])]

    def ldns_args(self, zone: str) -> list[str]:
        if not self.nsec3:
            return []
        return ["-n", "-t", str(self.iterations_for(zone)), *(["-s", self.salt] if self.salt != "-" else []),
                *(["-p"] if self.optout else [])]


VARIANTS = {
    "nsec": Variant("nsec", nsec3=False),
    "nsec3": Variant("nsec3"),
    "nsec3-optout": Variant("nsec3-optout", optout=True),
    "nsec3-salt": Variant("nsec3-salt", salt="5ca1ab1e"),
    # RFC 9276 limits: BIND 9.18 and Unbound 1.17 validate up to 150 additional iterations and
    # treat more as insecure (NXDOMAIN/NODATA/wildcard proofs unsigned, positive data still secure).
    "nsec3-iter150": Variant("nsec3-iter150", iterations=150),
    "nsec3-iter151": Variant("nsec3-iter151", iterations=151, iteration_zones=("bj.cmcc.cid.",),
                             signer="ldns-signzone"),
}


@dataclass
class Hierarchy:
    variant: Variant
    directory: Path
    files: dict[str, Path]           # zone → file to serve (signed or not)
    anchor: Path                     # dsset-cid.: the trust anchor
    slots: dict[str, str] = field(default_factory=lambda: {z: a for z, (a, _) in ZONES.items()})

    def zones_at(self, slot: str) -> dict[str, Path]:
        return {z: self.files[z] for z, a in self.slots.items() if a == slot}


def make_keys(keydir: Path) -> Path:
    """One CSK (flags 257) per signed zone, unless the directory already has them."""
    keydir.mkdir(parents=True, exist_ok=True)
    for zone in SIGNED:
        if not list(keydir.glob(f"K{zone}+*.key")):
            run(["dnssec-keygen", "-q", "-K", str(keydir), *ALGORITHMS[zone], "-f", "KSK", "-n", "ZONE", zone])
    return keydir


def _parent(zone: str) -> str:
    return zone.split(".", 1)[1]


def zone_text(zone: str, extra: str = "") -> str:
    address, body = ZONES[zone]
    lines = [f"$ORIGIN {zone}", "$TTL 300", "@ SOA ns1 hostmaster 1 3600 600 86400 60",
             "@ NS ns1", f"ns1 A {address}", *body]
    return "\n".join(lines) + "\n" + extra


def build(directory: Path, variant: Variant, keydir: Path,
          overrides: Mapping[str, Variant] | None = None) -> Hierarchy:
    """Write and sign every zone of ``variant`` into ``directory``; ``overrides`` signs some
    zones another way (e.g. only bj.cmcc.cid. with high iterations)."""
    make_keys(keydir)
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for zone in ZONES:
        if zone not in SIGNED:
            path = directory / f"{zone}zone"
            path.write_text(zone_text(zone))
            files[zone] = path
    for zone in SIGNED:
        extra = "".join((directory / f"dsset-{child}").read_text()
                        for child in SIGNED if _parent(child) == zone)
        source = directory / f"{zone}zone"
        source.write_text(zone_text(zone, extra))
        out = directory / f"{zone}signed"
        how = (overrides or {}).get(zone, variant)
        if how.signer == "ldns-signzone" and how.iterations_for(zone) > 150:
            _ldns_sign(zone, how, keydir, directory, source, out)
        else:
            run(["dnssec-signzone", "-S", "-z", "-K", str(keydir), "-d", str(directory), "-O", "full",
                 *how.signzone_args(zone), "-o", zone, "-f", str(out), str(source)])
        files[zone] = out
    return Hierarchy(variant, directory, files, directory / "dsset-cid.")


def _ldns_sign(zone: str, how: Variant, keydir: Path, directory: Path, source: Path, out: Path) -> None:
    """ldns-signzone with the zone's BIND key (it reads BIND's key files), plus the dsset
    dnssec-signzone would have written."""
    key = next(keydir.glob(f"K{zone}+*.key"))
    run(["ldns-signzone", *how.ldns_args(zone), "-o", zone, "-f", str(out), str(source), str(key)[:-4]])
    (directory / f"dsset-{zone}").write_text(run(["dnssec-dsfromkey", "-2", str(key)]).stdout)


@contextlib.contextmanager
def serve(hierarchy: Hierarchy, workdir: Path, *, swapped: bool = False) -> Iterator[dict[str, str]]:
    """NSD on slot 1 and Knot on slot 2 (or swapped), port 53; yields {"nsd": addr, "knot": addr}."""
    nsd_slot, knot_slot = (SLOT2, SLOT1) if swapped else (SLOT1, SLOT2)
    for sub in ("nsd", "knot"):
        shutil.rmtree(workdir / sub, ignore_errors=True)
    with peer_servers.knot(workdir / "knot", knot_slot, PORT, hierarchy.zones_at(knot_slot)), \
            peer_servers.nsd(workdir / "nsd", nsd_slot, PORT, hierarchy.zones_at(nsd_slot)):
        yield {"nsd": nsd_slot, "knot": knot_slot}


def roles(swapped: bool) -> str:
    """A label for a role assignment: which program serves cid. (slot 1) / cmcc.cid. (slot 2)."""
    return "knot+nsd" if swapped else "nsd+knot"


def names_with_nsec3(zone: str, *, optout: bool) -> set[str]:
    """The owner names an NSEC3 chain of ``zone`` covers with a record of their own (RFC 5155
    §7.1): authoritative names, empty non-terminals, delegation points — under opt-out only
    those with a DS (the signed children)."""
    origin = zone
    owners = {origin, f"ns1.{origin}"}
    delegations: set[str] = set()
    for line in ZONES[zone][1]:
        label, *rest = line.split()
        owner = f"{label}.{origin}"
        owners.add(owner)
        if "NS" in rest[:2]:
            delegations.add(owner)
    glue = {o for o in owners if any(o != d and o.endswith("." + d) for d in delegations)}
    names = owners - glue
    if optout:
        names -= {d for d in delegations if d not in SIGNED}
    for name in list(names):  # empty non-terminals between each name and the apex
        labels = name[: -len(origin)].rstrip(".").split(".")
        for i in range(1, len(labels)):
            names.add(".".join(labels[i:]) + "." + origin)
    return names
