"""A BIND-signed hierarchy whose children of cid. each have one kind of broken name server,
served by NSD, Knot and BIND's named on loopback — the input of tests/test_interop_misbehaving.py.

Addresses (127.0.63.x, port 53 everywhere, so glue works for any iterating resolver):

    .1  PARENT  NSD    cid., the server the resolvers are pointed at
    .2  ROOT    Knot   a fake root "." only: refers everything to cid. (an upward referral)
    .3  KNOT    Knot   good copies of refused., selfref., glueless., glue2., good. and ops.cid.
    .4  NSD     NSD    good copies of servfail., upref., glue., glue2., badsoa2.cid.; REFUSED
                       for refused.cid. and glueless.cid., which it does not have
    .5  NAMED   named  servfail. and glueless.cid. configured with unloadable files (SERVFAIL);
                       badsoa. and badsoa2.cid. with the SOA RRSIG forged; a good dn.cid.
    .6  SIDE    NSD    cid. only, named as a server of children: asked for a name in a child
                       it gives the child's own delegation back (a self-referral: lame for it)
    .8  DEAD_GLUE      nothing listens (cid.'s glue for glue2.cid.'s ns1)
    .9  DEAD           nothing listens (the child's own address for glue.cid.'s server)

    cid.              Ed25519           trust anchor = dsset-cid.
    ├─ refused.cid.   ns1 → NSD (REFUSED)          ns2 → KNOT
    ├─ servfail.cid.  ns1 → NAMED (SERVFAIL)       ns2 → NSD
    ├─ selfref.cid.   ns1 → SIDE (self-referral)   ns2 → KNOT
    ├─ upref.cid.     ns1 → ROOT (upward referral) ns2 → NSD
    ├─ glueless.cid.  ns1..ns4 → NSD, NAMED, SIDE, ROOT (broken as above);
    │                 nsg.ops.cid. without glue → KNOT
    ├─ glue.cid.      ns1: glue in cid. → NSD; the child's own A for ns1 → DEAD
    ├─ glue2.cid.     ns1: glue in cid. → DEAD_GLUE, the child's own A → NSD; ns2 → KNOT
    ├─ dn.cid.        DNAMEs: here → dn.cid., away → good.cid., ops → ops.cid. (unsigned)
    ├─ badsoa.cid.    ns1 → NAMED only (forged SOA RRSIG)
    ├─ badsoa2.cid.   ns1 → NAMED (forged SOA RRSIG), ns2 → NSD (genuine)
    ├─ good.cid.      ns1 → KNOT (the control)
    └─ ops.cid.       unsigned, delegated without DS; holds nsg.ops.cid. A KNOT

Every child is signed with ECDSA P-256 and has a DS in cid.; keys and signing happen once
(dnssec-keygen -K / dnssec-signzone -K -d into the build directory, so no dsset lands in the
working directory). named listens only on addresses configured on an interface: ``serve()``
adds 127.0.63.5/32 to lo and removes it again.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dns.rdata
import dns.rdataclass
import dns.rdatatype

from resolver import records

from . import peer_servers
from .peers import require, run

PREFIX = "127.0.63."
PARENT, ROOT, KNOT, NSD, NAMED, SIDE, DEAD_GLUE, DEAD = (PREFIX + str(i) for i in (1, 2, 3, 4, 5, 6, 8, 9))
UNBOUND_ADDR, OURS_ADDR = PREFIX + "100", PREFIX + "101"
PORT = 53
ROLE = {PARENT: "NSD serving cid.", SIDE: "NSD serving only cid. (self-referral)",
        ROOT: "Knot serving only a fake root (upward referral)", KNOT: "Knot (genuine)",
        NSD: "NSD (genuine; REFUSED for zones it lacks)",
        NAMED: "named (unloadable zones: SERVFAIL; forged SOA RRSIG)",
        DEAD: "nothing listening", DEAD_GLUE: "nothing listening"}

GOOD, UNLOADABLE, FORGED_SOA_SIG = "good", "unloadable", "forged-soa-rrsig"
CAPS = {"accel_count": 4, "accel_kind": "gpu", "region": "lab"}


def generic(mapping: dict) -> str:
    """RFC 3597 generic rdata of a CAPS/LOAD map (what BIND, NSD and Knot read)."""
    wire = records.encode(mapping)
    return f"\\# {len(wire)} {wire.hex()}"


@dataclass(frozen=True)
class Zone:
    name: str
    index: int                                     # pool-1/pool-2 are 192.0.2.<10i+1>/<10i+2>
    ns: tuple[tuple[str, str | None], ...]         # (NS name, glue in cid. or None: no glue)
    copies: Mapping[str, str]                      # server address → GOOD / UNLOADABLE / FORGED_SOA_SIG
    own: Mapping[str, str] = field(default_factory=dict)  # NS name → the child's own A, where it differs
    extra: tuple[str, ...] = ()
    signed: bool = True

    def address(self, label: str) -> str:
        return f"192.0.2.{10 * self.index + int(label[-1])}"

    def text(self) -> str:
        lines = [f"$ORIGIN {self.name}", "$TTL 300", "@ SOA ns1 hostmaster 1 3600 600 86400 60"]
        for ns, glue in self.ns:
            lines.append(f"@ NS {ns}")
            if ns.endswith("." + self.name):
                lines.append(f"{ns} A {self.own.get(ns, glue)}")
        lines += [f"pool-1 A {self.address('pool-1')}", f"pool-2 A {self.address('pool-2')}",
                  "pool-1 SVCB 1 . alpn=h2 port=8443", f"pool-1 3600 TYPE65380 {generic(CAPS)}"]
        lines += self.extra
        return "\n".join(lines) + "\n"


def _ns(zone: str, *servers: str | tuple[str, None]) -> tuple[tuple[str, str | None], ...]:
    """ns1.zone, ns2.zone, ... glued at the given addresses; (name, None) for glueless ones."""
    out = []
    for i, server in enumerate(servers, 1):
        out.append(server if isinstance(server, tuple) else (f"ns{i}.{zone}", server))
    return tuple(out)


CHILDREN: dict[str, Zone] = {z.name: z for z in [
    Zone("refused.cid.", 1, _ns("refused.cid.", NSD, KNOT), {KNOT: GOOD}),
    Zone("servfail.cid.", 2, _ns("servfail.cid.", NAMED, NSD), {NAMED: UNLOADABLE, NSD: GOOD}),
    Zone("selfref.cid.", 3, _ns("selfref.cid.", SIDE, KNOT), {KNOT: GOOD}),
    Zone("upref.cid.", 4, _ns("upref.cid.", ROOT, NSD), {NSD: GOOD}),
    Zone("glueless.cid.", 5, _ns("glueless.cid.", NSD, NAMED, SIDE, ROOT, ("nsg.ops.cid.", None)),
         {KNOT: GOOD, NAMED: UNLOADABLE}),
    Zone("glue.cid.", 6, _ns("glue.cid.", NSD), {NSD: GOOD}, own={"ns1.glue.cid.": DEAD}),
    Zone("glue2.cid.", 12, _ns("glue2.cid.", DEAD_GLUE, KNOT), {NSD: GOOD, KNOT: GOOD},
         own={"ns1.glue2.cid.": NSD}),
    Zone("dn.cid.", 7, _ns("dn.cid.", NAMED), {NAMED: GOOD},
         extra=("here DNAME dn.cid.", "away DNAME good.cid.", "ops DNAME ops.cid.")),
    Zone("badsoa.cid.", 8, _ns("badsoa.cid.", NAMED), {NAMED: FORGED_SOA_SIG}),
    Zone("badsoa2.cid.", 9, _ns("badsoa2.cid.", NAMED, NSD), {NAMED: FORGED_SOA_SIG, NSD: GOOD}),
    Zone("good.cid.", 10, _ns("good.cid.", KNOT), {KNOT: GOOD}),
    Zone("ops.cid.", 11, _ns("ops.cid.", KNOT), {KNOT: GOOD}, signed=False,
         extra=(f"nsg A {KNOT}",)),
]}
SIGNED = [z for z in CHILDREN.values() if z.signed]


def parent_text(ds: str) -> str:
    lines = ["$ORIGIN cid.", "$TTL 300", "@ SOA ns1 hostmaster 1 3600 600 86400 60", "@ NS ns1",
             f"ns1 A {PARENT}", 'info TXT "misbehaving authorities"']
    for zone in CHILDREN.values():
        for ns, glue in zone.ns:
            lines.append(f"{zone.name} NS {ns}")
            if glue is not None:
                lines.append(f"{ns} A {glue}")
    return "\n".join(lines) + "\n" + ds


ROOT_TEXT = f"""$ORIGIN .
$TTL 300
@ SOA a.root. hostmaster. 1 3600 600 86400 60
@ NS a.root.
a.root. A {ROOT}
cid. NS ns1.cid.
ns1.cid. A {PARENT}
"""


@dataclass
class Hierarchy:
    directory: Path
    signed: dict[str, Path]          # zone → signed file (genuine)
    files: dict[str, dict[str, Path]]  # server address → {zone: file it serves}
    anchor: Path                     # dsset-cid.
    forged: dict[str, tuple[dns.rdata.Rdata, dns.rdata.Rdata]]  # zone → (genuine, forged) SOA RRSIG


def _forge_soa_rrsig(signed: Path, out: Path, zone: str) -> tuple[dns.rdata.Rdata, dns.rdata.Rdata]:
    """Copy a signed file with one byte of the apex SOA's RRSIG signature flipped."""
    lines, found = [], None
    for line in signed.read_text().splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[0] == zone and fields[3] == "RRSIG" and fields[4] == "SOA":
            rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.RRSIG, " ".join(fields[4:]))
            signature = bytearray(rd.signature)
            signature[7] ^= 0x01
            bad = rd.replace(signature=bytes(signature))
            found = (rd, bad)
            line = f"{fields[0]} {fields[1]} IN RRSIG {bad.to_text()}"
        lines.append(line)
    assert found is not None, f"no SOA RRSIG in {signed}"
    out.write_text("\n".join(lines) + "\n")
    return found


def build(directory: Path) -> Hierarchy:
    """Keys, zone files, signatures (children first, then cid. with their DS) and each server's
    copies (genuine, unloadable, forged SOA RRSIG)."""
    directory.mkdir(parents=True, exist_ok=True)
    keydir = directory / "keys"
    keydir.mkdir(exist_ok=True)
    signed: dict[str, Path] = {}

    def sign(name: str, text: str, algorithm: str) -> Path:
        run(["dnssec-keygen", "-q", "-K", str(keydir), "-a", algorithm, "-f", "KSK", "-n", "ZONE", name])
        source = directory / f"{name}zone"
        source.write_text(text)
        out = directory / f"{name}signed"
        run(["dnssec-signzone", "-S", "-z", "-K", str(keydir), "-d", str(directory), "-O", "full",
             "-o", name, "-f", str(out), str(source)])
        return out

    for zone in SIGNED:
        signed[zone.name] = sign(zone.name, zone.text(), "ECDSAP256SHA256")
    ds = "".join((directory / f"dsset-{z.name}").read_text() for z in SIGNED)
    signed["cid."] = sign("cid.", parent_text(ds), "ED25519")
    ops = directory / "ops.cid.zone"
    ops.write_text(CHILDREN["ops.cid."].text())
    root = directory / "root.zone"
    root.write_text(ROOT_TEXT)

    files: dict[str, dict[str, Path]] = {PARENT: {"cid.": signed["cid."]}, SIDE: {"cid.": signed["cid."]},
                                          ROOT: {".": root},
                                          KNOT: {}, NSD: {}, NAMED: {}}
    forged: dict[str, tuple[dns.rdata.Rdata, dns.rdata.Rdata]] = {}
    for zone in CHILDREN.values():
        for server, how in zone.copies.items():
            if not zone.signed:
                path = ops
            elif how == GOOD:
                path = signed[zone.name]
            elif how == UNLOADABLE:
                path = directory / f"{zone.name}unloadable"
                path.write_text(f"$ORIGIN {zone.name}\n@ 300 SOA ns1 hostmaster 1 3600 600 86400 60\n"
                                "this is not a resource record\n")
            else:
                path = directory / f"{zone.name}forged"
                forged[zone.name] = _forge_soa_rrsig(signed[zone.name], path, zone.name)
            files[server][zone.name] = path
    return Hierarchy(directory, signed, files, directory / "dsset-cid.", forged)


# --- serving ---------------------------------------------------------------------------------

@contextlib.contextmanager
def loopback_address(address: str) -> Iterator[None]:
    """``ip addr add ADDRESS/32 dev lo`` for named, removed on exit (also if it was left over)."""
    subprocess.run([require("ip"), "addr", "del", f"{address}/32", "dev", "lo"], capture_output=True)
    run(["ip", "addr", "add", f"{address}/32", "dev", "lo"])
    try:
        yield
    finally:
        subprocess.run([require("ip"), "addr", "del", f"{address}/32", "dev", "lo"], capture_output=True)


def _first_good(zones: Mapping[str, Path]) -> dict[str, Path]:
    """The zones with one that loads first (the helpers wait for the first zone's SOA)."""
    good = [z for z, p in zones.items() if not p.name.endswith("unloadable")]
    return {good[0]: zones[good[0]], **zones}


@contextlib.contextmanager
def serve(hierarchy: Hierarchy, workdir: Path) -> Iterator[None]:
    """Every server of the hierarchy, on port 53. named's zones are not checked (some are
    unloadable on purpose) and its address is added to lo for the while."""
    files = hierarchy.files
    for sub in ("parent", "side", "root", "knot", "nsd", "named"):
        shutil.rmtree(workdir / sub, ignore_errors=True)
    with peer_servers.nsd(workdir / "parent", PARENT, PORT, files[PARENT]), \
            peer_servers.nsd(workdir / "side", SIDE, PORT, files[SIDE]), \
            peer_servers.knot(workdir / "root", ROOT, PORT, files[ROOT]), \
            peer_servers.knot(workdir / "knot", KNOT, PORT, _first_good(files[KNOT])), \
            peer_servers.nsd(workdir / "nsd", NSD, PORT, _first_good(files[NSD])), \
            loopback_address(NAMED), \
            peer_servers.named(workdir / "named", NAMED, PORT, _first_good(files[NAMED]),
                               check_zones=False, ready="dn.cid."):  # unloadable zones: SERVFAIL
        yield
