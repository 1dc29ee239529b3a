"""Random zones for differential tests of authoritative servers (ours vs NSD vs Knot), signed by
BIND's ``dnssec-signzone -O full`` (NSEC, NSEC3, NSEC3 with opt-out) or left unsigned, and a
random battery of questions about each.

A zone (``generate(seed, origin)``) is built from a ``random.Random(seed)`` only, so a seed
reproduces it exactly. It holds, in random amounts and places:

- names with data one to four labels deep (A, AAAA, TXT, MX, SRV, SVCB in presentation and in
  RFC 3597 form, CAPS as ``TYPE65380 \\# ...``), random TTLs, shared ancestors that become empty
  non-terminals;
- wildcards (TXT/A, CNAME; some with names below the wildcard's parent, some with a name below the
  wildcard owner itself), sometimes one at the apex;
- CNAME chains: in zone (ending at data, at nothing, at a wildcard, below a cut, below a DNAME),
  out of zone, loops of one to three names;
- delegations with and without DS, glue below the cut, sibling glue (the server of one child
  named below another child), out-of-zone servers, occluded data below the cut, one with so many
  servers that the referral does not fit 512 octets;
- DNAME to a name in the zone and out of it, some with (occluded) names below them;
- mixed-case owner names and targets (the same name sometimes spelled in two cases);
- large RRsets (many A records, long TXT strings) that truncate over UDP.

Nothing a loader must reject is generated (no CNAME beside other data, no out-of-zone owners, no
DNAME beside CNAME or NS), except what RFCs call occluded data, which every server must load and
never serve.

``battery(zone, rng)`` picks questions from each category (``Question``: name, type, DO, transport
``udp`` with an EDNS payload or none, or ``tcp``), with query names re-cased at random.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import string
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdata
import dns.rdatatype

import resolver  # noqa: F401  (registers CAPS/LOAD: peers' TYPE65380 prints as CAPS for all)

from . import peer_servers
from .net import free_port
from .peers import run

CAPS_HEX = "82ab616363656c5f636f756e7408aa616363656c5f6b696e64a3677075"  # {"accel_count": 8, "accel_kind": "gpu"}
# SVCB 1 . alpn=h2 port=8443 in RFC 3597 form (key 1 alpn "h2", key 3 port 8443)
SVCB_GENERIC = "\\# 16 0001 00 0001 0003 026832 0003 0002 20fb"
WORDS = ("a", "b", "c", "pool", "gpu", "node", "x1", "rack", "bj", "sh", "www", "mail")
TTLS = (30, 60, 300, 3600, 86400)
MODES = ("unsigned", "nsec", "nsec3", "nsec3-optout")
OUT_OF_ZONE = ("host.example.net.", "target.example.org.", "a.b.example.com.")


@dataclass
class Zone:
    """One generated zone: its master-file text and what the battery needs to know of it."""

    seed: int
    origin: str  # absolute, lower case
    lines: list[str] = field(default_factory=list)
    data: dict[str, set[str]] = field(default_factory=dict)  # relative lower-case name -> types
    spelling: dict[str, str] = field(default_factory=dict)  # relative lower-case -> as written
    wildcards: list[str] = field(default_factory=list)  # wildcard owners ("*.w", "*")
    cnames: list[str] = field(default_factory=list)
    cuts: dict[str, bool] = field(default_factory=dict)  # delegation -> has DS
    below_cuts: list[str] = field(default_factory=list)  # glue and occluded names
    dnames: list[str] = field(default_factory=list)
    below_dnames: list[str] = field(default_factory=list)  # occluded names below a DNAME
    big: list[str] = field(default_factory=list)  # names with RRsets too large for 512 octets

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def absolute(self, relative: str) -> str:
        return self.origin if relative in ("", "@") else f"{relative}.{self.origin}"

    def ents(self) -> list[str]:
        """Empty non-terminals: ancestors of authoritative names that have no data themselves."""
        occluded = [*self.cuts, *self.dnames]
        out = set()
        for name in self.data:
            labels = name.split(".")
            for i in range(1, len(labels)):
                ancestor = ".".join(labels[i:])
                if ancestor not in self.data and not _below_any(ancestor, occluded, strict=False):
                    out.add(ancestor)
        return sorted(out)

    def optout_ents(self) -> list[str]:
        """Empty non-terminals with nothing below them but unsigned delegations (and their glue
        or occluded data): under opt-out they get no NSEC3 (RFC 5155 §7.1)."""
        unsigned = [cut for cut, has_ds in self.cuts.items() if not has_ds]
        out = []
        for ent in self.ents():
            below = [n for n in self.data if n.endswith("." + ent)]
            if below and all(_below_any(n, unsigned, strict=False) for n in below):
                out.append(ent)
        return out

    def authoritative(self) -> list[str]:
        """Names with data served as authoritative data (not below a cut or a DNAME)."""
        return sorted(n for n in self.data if n and not _below_any(n, [*self.cuts, *self.dnames])
                      and n not in self.cuts)


def _below_any(name: str, owners: list[str], strict: bool = True) -> bool:
    for owner in owners:
        if name.endswith("." + owner) or (not strict and name == owner):
            return True
    return False


class _Builder:
    def __init__(self, seed: int, origin: str):
        self.rng = random.Random(seed)
        # Case decisions draw from their own generator: the zone's shape does not depend on the
        # length of the origin, so one seed gives the same zone under every origin.
        self.case_rng = random.Random(seed + 0x5EED)
        self.zone = Zone(seed, origin.lower())
        self.used: set[str] = set()
        self.ttls: dict[tuple[str, str], int] = {}

    # -- names ----------------------------------------------------------------------------------
    def label(self) -> str:
        rng = self.rng
        if rng.random() < 0.6:
            return rng.choice(WORDS)
        return rng.choice(WORDS) + "-" + str(rng.randrange(100))

    def fresh(self, depth: int | None = None, under: str = "", leaf: bool = False) -> str:
        """A new relative name (lower case) not used yet for anything; with ``leaf``, nothing
        is below it either."""
        for _ in range(1000):
            d = depth or self.rng.choice((1, 1, 2, 2, 3, 4))
            labels = [self.label() for _ in range(d)]
            name = ".".join(labels) + (("." + under) if under else "")
            if leaf and any(u.endswith("." + name) for u in (*self.used, *self.zone.data)):
                continue
            if name not in self.used and not self._conflicts(name):
                self.used.add(name)
                return name
        raise RuntimeError("name space exhausted")

    def _conflicts(self, name: str) -> bool:
        """True when ``name`` is at or below a cut, a DNAME or a CNAME owner (or one of their
        ancestors is being created below it), or is an ancestor of a CNAME/DNAME owner."""
        z = self.zone
        blocked = [*z.cuts, *z.dnames]
        if _below_any(name, blocked, strict=False):
            return True
        for special in [*z.cuts, *z.dnames, *z.cnames]:
            if special.endswith("." + name):
                return True  # would put data above a special name: fine for cuts, but keep simple
        return name in z.cnames or name in z.data

    def spell(self, name: str) -> str:
        """Mixed case now and then, sometimes a different spelling of the same name."""
        rng = self.case_rng
        if name in self.zone.spelling and rng.random() < 0.8:
            return self.zone.spelling[name]
        if rng.random() < 0.25:
            spelled = "".join(c.upper() if c.isalpha() and rng.random() < 0.5 else c for c in name)
        else:
            spelled = name
        self.zone.spelling.setdefault(name, spelled)
        return spelled

    def target(self, name: str) -> str:
        """A name in the zone as an RDATA target (absolute, random case)."""
        absolute = self.zone.absolute(name)
        if self.case_rng.random() < 0.2:
            absolute = "".join(c.upper() if c.isalpha() and self.case_rng.random() < 0.5 else c
                               for c in absolute)
        return absolute

    def ttl(self) -> int:
        return self.rng.choice(TTLS)

    def add(self, name: str, rdtype: str, rdatas: list[str], ttl: int | None = None,
            record: bool = True) -> None:
        key = (name, "SVCB" if rdtype == "TYPE64" else rdtype)
        ttl = self.ttls.setdefault(key, self.ttl() if ttl is None else ttl)  # RFC 2181 §5.2
        owner = self.spell(name) if name else "@"
        for rdata in rdatas:
            self.zone.lines.append(f"{owner} {ttl} IN {rdtype} {rdata}")
        if record:
            self.zone.data.setdefault(name, set()).add(rdtype)

    # -- data -----------------------------------------------------------------------------------
    def address(self) -> str:
        return f"192.0.2.{self.rng.randrange(1, 255)}"

    def data_rrsets(self, name: str, names_so_far: list[str]) -> None:
        rng = self.rng
        types = rng.sample(["A", "AAAA", "TXT", "MX", "SRV", "SVCB", "SVCBG", "CAPS"],
                           rng.choice((1, 1, 2, 3)))
        if "SVCB" in types and "SVCBG" in types:
            types.remove("SVCBG")
        for t in types:
            if t == "A":
                self.add(name, "A", sorted({self.address() for _ in range(rng.choice((1, 1, 2, 3)))}))
            elif t == "AAAA":
                self.add(name, "AAAA", [f"2001:db8::{rng.randrange(1, 0xffff):x}"])
            elif t == "TXT":
                self.add(name, "TXT", [f'"{self.word()}"' for _ in range(rng.choice((1, 2)))])
            elif t == "MX":
                exchange = (self.target(rng.choice(names_so_far)) if names_so_far and rng.random() < 0.7
                            else rng.choice(OUT_OF_ZONE))
                self.add(name, "MX", [f"{rng.randrange(0, 50)} {exchange}"])
            elif t == "SRV":
                host = (self.target(rng.choice(names_so_far)) if names_so_far and rng.random() < 0.6
                        else rng.choice(OUT_OF_ZONE))
                self.add(name, "SRV", [f"0 5 {rng.randrange(1, 65535)} {host}"])
            elif t == "SVCB":
                svc_target = "." if rng.random() < 0.6 or not names_so_far else self.target(rng.choice(names_so_far))
                self.add(name, "SVCB", [f"1 {svc_target} alpn=h2 port=8443"])
            elif t == "SVCBG":
                self.add(name, "TYPE64", [SVCB_GENERIC])
                self.zone.data[name].discard("TYPE64")
                self.zone.data[name].add("SVCB")
            elif t == "CAPS":
                self.add(name, "TYPE65380", [f"\\# {len(CAPS_HEX) // 2} {CAPS_HEX}"])

    def word(self) -> str:
        return "".join(self.rng.choice(string.ascii_lowercase) for _ in range(self.rng.randrange(3, 12)))


def generate(seed: int, origin: str, *, size: int = 1, dname_children: bool = False) -> Zone:
    """A random zone for ``origin``; ``size`` scales the number of names (1: ~30–60 names).

    ``dname_children``: names with data below some DNAMEs (RFC 6672 §2.4 forbids them;
    dnssec-signzone and named-checkzone accept such a zone, Knot and NSD refuse to load it)."""
    b = _Builder(seed, origin)
    z, rng = b.zone, b.rng
    soa_ttl, minimum = rng.choice((300, 3600)), rng.choice((60, 300, 7200))
    z.lines += [f"$ORIGIN {z.origin}", f"$TTL {rng.choice((300, 3600))}",
                f"@ {soa_ttl} IN SOA ns1 hostmaster.{z.origin} {seed % 1000000 + 1} 7200 900 1209600 {minimum}"]
    b.add("", "NS", [b.target("ns1"), *(["ns.example.net."] if rng.random() < 0.5 else [])], record=False)
    z.data.setdefault("", set()).update({"SOA", "NS"})
    b.used.add("ns1")
    b.add("ns1", "A", ["127.0.71.250"])

    plain: list[str] = ["ns1"]
    for _ in range(rng.randrange(8, 16) * size):
        name = b.fresh()
        b.data_rrsets(name, plain)
        plain.append(name)
    if rng.random() < 0.5:  # a name given in two spellings (BIND keeps the first it reads)
        name = rng.choice(plain)
        b.zone.spelling.setdefault(name, name)
        b.zone.spelling[name], kept = name.upper(), b.zone.spelling[name]
        b.add(name, "TXT", [f'"{b.word()}"'])
        b.zone.spelling[name] = kept

    # large RRsets
    big = b.fresh(1)
    b.add(big, "A", [f"198.51.100.{i}" for i in range(1, rng.randrange(30, 60))])
    bigtxt = b.fresh(1)
    b.add(bigtxt, "TXT", [f'"{i:02d}{"x" * 200}"' for i in range(rng.randrange(6, 12))])
    z.big += [big, bigtxt]
    plain += [big, bigtxt]

    # wildcards
    for _ in range(rng.randrange(1, 3) * size):
        parent = b.fresh(rng.choice((1, 1, 2)))
        owner = f"*.{parent}"
        b.used.add(owner)
        if rng.random() < 0.3:
            target = rng.choice(plain)
            b.add(owner, "CNAME", [b.target(target)])
            z.cnames.append(owner)
        else:
            b.add(owner, "TXT", [f'"wild-{b.word()}"'])
            if rng.random() < 0.5:
                b.add(owner, "A", [b.address()])
        z.wildcards.append(owner)
        if rng.random() < 0.6:  # an existing sibling: closest encloser proofs vary
            sibling = b.fresh(1, under=parent)
            b.add(sibling, "A", [b.address()])
            plain.append(sibling)
        if rng.random() < 0.3:  # a name below the wildcard owner (the owner is then not a leaf)
            below = f"{b.label()}.{owner}"
            b.used.add(below)
            b.add(below, "TXT", [f'"below-wild"'])
    if rng.random() < 0.3:
        b.add("*", "TXT", ['"apex-wild"'])
        z.wildcards.append("*")

    # delegations
    cuts = []
    for i in range(rng.randrange(2, 5) * size):
        cut = b.fresh(rng.choice((1, 1, 2)))
        z.cuts[cut] = rng.random() < 0.5
        servers = []
        for _ in range(rng.choice((1, 2))):
            glue = f"ns{rng.randrange(10)}.{cut}"
            if glue not in servers:
                servers.append(glue)
        if rng.random() < 0.3:
            servers.append(rng.choice(OUT_OF_ZONE))
        if cuts and rng.random() < 0.3:
            servers.append(f"ns0.{rng.choice(cuts)}")  # sibling glue
        b.add(cut, "NS", [b.target(s) if not s.endswith(".") else s for s in servers])
        for s in servers:
            if s.endswith("." + cut):
                b.add(s, "A", [b.address()], record=True)
                if rng.random() < 0.3:
                    b.add(s, "AAAA", [f"2001:db8::{rng.randrange(1, 0xffff):x}"])
                z.below_cuts.append(s)
        if z.cuts[cut]:
            digest = "".join(rng.choice("0123456789abcdef") for _ in range(64))
            b.add(cut, "DS", [f"{rng.randrange(65536)} 15 2 {digest}"])
        if rng.random() < 0.4:  # occluded data below the cut
            occluded = f"{b.label()}.{cut}"
            b.add(occluded, "TXT", ['"occluded"'])
            z.below_cuts.append(occluded)
        cuts.append(cut)
    # sibling glue needs its target to exist: ns0 of each cut named by another
    for cut in cuts:
        glue = f"ns0.{cut}"
        if glue not in z.below_cuts and any(f" ns0.{cut}" in ln.lower() for ln in z.lines):
            b.add(glue, "A", [b.address()])
            z.below_cuts.append(glue)
    # a referral too large for 512 octets (all glue in the bailiwick)
    fat = b.fresh(1)
    z.cuts[fat] = False
    servers = [f"ns{i}.{fat}" for i in range(rng.randrange(10, 16))]
    b.add(fat, "NS", [b.target(s) for s in servers])
    for s in servers:
        b.add(s, "A", [b.address()])
        b.add(s, "AAAA", [f"2001:db8::{rng.randrange(1, 0xffff):x}"])
        z.below_cuts.append(s)

    # DNAME
    for _ in range(rng.randrange(1, 3) * size):
        owner = b.fresh(rng.choice((1, 2)), leaf=not dname_children)
        if rng.random() < 0.6:
            target = b.target(rng.choice([*plain, *(w[2:] for w in z.wildcards if w != "*")]))
        else:
            target = rng.choice(OUT_OF_ZONE)
        b.add(owner, "DNAME", [target])
        z.dnames.append(owner)
        if dname_children and rng.random() < 0.7:
            below = f"{b.label()}.{owner}"
            b.add(below, "A", [b.address()])
            z.below_dnames.append(below)

    # CNAMEs: chains in zone, out of zone, to nothing, loops
    for _ in range(rng.randrange(3, 7) * size):
        kind = rng.choice(("data", "data", "chain", "out", "nx", "wild", "cut", "dname", "loop"))
        if kind == "loop":
            loop = [b.fresh(1) for _ in range(rng.choice((1, 2, 3)))]
            for i, name in enumerate(loop):
                b.add(name, "CNAME", [b.target(loop[(i + 1) % len(loop)])])
                z.cnames.append(name)
            continue
        name = b.fresh(rng.choice((1, 1, 2)))
        if kind == "data":
            target = b.target(rng.choice(plain))
        elif kind == "chain" and z.cnames:
            target = b.target(rng.choice(z.cnames))
        elif kind == "out":
            target = rng.choice(OUT_OF_ZONE)
        elif kind == "wild" and z.wildcards:
            w = rng.choice(z.wildcards)
            target = b.target(f"{b.label()}.{w[2:]}" if w != "*" else b.label() + "-wild")
        elif kind == "cut":
            target = b.target(f"host.{rng.choice(list(z.cuts))}")
        elif kind == "dname" and z.dnames:
            target = b.target(f"{b.label()}.{rng.choice(z.dnames)}")
        else:
            target = b.target(f"nothing-{rng.randrange(100)}")
        b.add(name, "CNAME", [target])
        z.cnames.append(name)
    return z


# --- signing ----------------------------------------------------------------------------------

@dataclass
class Signed:
    zone: Zone
    mode: str
    path: Path  # the file every server loads


def sign(directory: Path, zone: Zone, mode: str, rng: random.Random | None = None) -> Signed:
    """Write the zone and, unless ``mode`` is ``unsigned``, sign it with a fresh Ed25519 CSK by
    ``dnssec-signzone -S -z -O full`` (NSEC; or NSEC3 with a random salt and 0–3 iterations, with
    opt-out for ``nsec3-optout``). Keys and dsset files stay in ``directory``."""
    rng = rng or random.Random(zone.seed)
    directory.mkdir(parents=True, exist_ok=True)
    stem = zone.origin.rstrip(".")
    unsigned = directory / f"{stem}.zone"
    unsigned.write_text(zone.text)
    if mode == "unsigned":
        return Signed(zone, mode, unsigned)
    keydir = directory / f"keys-{stem}"
    keydir.mkdir(exist_ok=True)
    if not any(keydir.glob("*.key")):
        run(["dnssec-keygen", "-q", "-K", str(keydir), "-a", "ED25519", "-f", "KSK", zone.origin])
    args = ["dnssec-signzone", "-S", "-z", "-O", "full", "-K", str(keydir), "-d", str(directory),
            "-o", zone.origin, "-f", str(directory / f"{stem}.signed")]
    if mode.startswith("nsec3"):
        salt = "-" if rng.random() < 0.5 else "".join(rng.choice("0123456789abcdef") for _ in range(8))
        args += ["-3", salt, "-H", str(rng.choice((0, 0, 1, 3)))]
        if mode == "nsec3-optout":
            args.append("-A")
    run([*args, str(unsigned)], timeout=120)
    return Signed(zone, mode, directory / f"{stem}.signed")


# --- questions --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Question:
    name: str  # absolute, as sent (random case)
    rdtype: str
    do: bool
    transport: str  # "tcp", "udp" (no EDNS) or "udp<payload>"

    def __str__(self) -> str:
        return f"{self.name} {self.rdtype} {'+dnssec' if self.do else '+nodnssec'} {self.transport}"


TYPES = ("A", "AAAA", "TXT", "MX", "SRV", "SVCB", "TYPE65380", "NS", "CNAME", "DNAME", "DS", "SOA",
         "ANY", "NSEC", "PTR")
TRANSPORTS = ("udp1232", "udp1232", "udp4096", "udp512", "udp", "tcp")


def recase(rng: random.Random, name: str) -> str:
    if rng.random() < 0.3:
        return "".join(c.swapcase() if c.isalpha() and rng.random() < 0.5 else c for c in name)
    return name


def battery(signed: Signed, rng: random.Random, count: int = 150) -> list[Question]:
    """``count`` questions about the zone, from every category (see module docstring)."""
    z = signed.zone
    names: list[tuple[str, list[str]]] = []  # (relative name, types worth asking)
    auth = z.authoritative()
    for n in auth:
        names.append((n, sorted(z.data[n]) + ["ANY", rng.choice(TYPES)]))
    names.append(("", ["SOA", "NS", "DNSKEY", "ANY", "DS", "NSEC3PARAM", "TXT", "NSEC"]))
    for n in z.ents():
        names.append((n, ["A", "TXT", "DS", "ANY"]))
    for w in z.wildcards:
        parent = w[2:] if w != "*" else ""
        below = f"{rng.choice(WORDS)}-q" + (f".{parent}" if parent else "")
        deeper = f"x.y.{below}"
        for n in (below, deeper):
            names.append((n, ["TXT", "A", "AAAA", "CNAME", "ANY", "DS"]))
        names.append((w, ["TXT", "A", "MX"]))
        names.append((f"q.{w}", ["TXT", "A"]))
    for c in z.cnames:
        names.append((c, ["A", "CNAME", "TXT", "ANY", "AAAA"]))
    for cut, has_ds in z.cuts.items():
        names.append((cut, ["DS", "NS", "A", "ANY", "SOA"]))
        names.append((f"www.{cut}", ["A", "DS"]))
    for n in z.below_cuts:
        names.append((n, ["A", "AAAA", "TXT"]))
    for d in z.dnames:
        names.append((d, ["DNAME", "A", "CNAME", "ANY"]))
        names.append((f"q.{d}", ["A", "TXT", "DNAME", "CNAME"]))
        names.append((f"a.b.{d}", ["A", "TXT"]))
    for n in z.below_dnames:
        names.append((n, ["A", "TXT"]))
    bases = ["", *rng.sample(auth, min(5, len(auth))), *z.ents()[:3]]
    for _ in range(10):
        base = rng.choice(bases)
        depth = rng.choice((1, 1, 2, 3))
        n = ".".join(f"nx{rng.randrange(1000)}" for _ in range(depth)) + (f".{base}" if base else "")
        names.append((n, ["A", "TXT", "DS"]))
    for n in z.big:
        names.append((n, ["A", "TXT", "ANY"]))

    questions: list[Question] = []
    seen: set[tuple[str, str, bool, str]] = set()
    # the large RRsets over every transport, with DO (the test of TC)
    for n in z.big:
        for rdtype in ("A", "TXT"):
            for transport in ("udp", "udp512", "udp1232", "tcp"):
                questions.append(Question(z.absolute(n), rdtype, True, transport))
    while len(questions) < count:
        n, types = rng.choice(names)
        q = Question(recase(rng, z.absolute(n)), rng.choice(types),
                     signed.mode != "unsigned" and rng.random() < 0.75 or rng.random() < 0.2,
                     rng.choice(TRANSPORTS))
        if q.do and q.transport == "udp":
            q = Question(q.name, q.rdtype, q.do, "udp1232")
        key = (q.name.lower(), q.rdtype, q.do, q.transport)
        if key not in seen:
            seen.add(key)
            questions.append(q)
    return questions


# --- asking three servers ---------------------------------------------------------------------

def make_query(q: Question) -> dns.message.Message:
    if q.transport == "udp":
        query = dns.message.make_query(q.name, q.rdtype, use_edns=False)
    else:
        payload = 1232 if q.transport == "tcp" else int(q.transport[3:])
        query = dns.message.make_query(q.name, q.rdtype, want_dnssec=q.do, payload=payload)
    query.flags = 0  # no RD: an authoritative question
    return query


@dataclass(frozen=True)
class Reply:
    message: dns.message.Message
    size: int  # octets on the wire (dnspython's to_wire() would compress differently)


def ask(server: tuple[str, int], q: Question, timeout: float = 5) -> Reply:
    query = make_query(q)
    wire = query.to_wire()
    if q.transport == "tcp":
        with socket.create_connection(server, timeout=timeout) as s:
            s.sendall(struct.pack("!H", len(wire)) + wire)
            data = _read_exactly(s, 2)
            data = _read_exactly(s, struct.unpack("!H", data)[0])
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.connect(server)
            for attempt in range(3):
                s.send(wire)
                try:
                    data = s.recv(65535)
                    break
                except TimeoutError:
                    if attempt == 2:
                        raise
    message = dns.message.from_wire(data, ignore_trailing=True)
    if message.id != query.id:
        raise RuntimeError(f"{server}: reply with another ID to {q}")
    return Reply(message, len(data))


def _read_exactly(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise EOFError("connection closed")
        out += chunk
    return out


def view(response: dns.message.Message, folded: bool = True) -> frozenset[str]:
    """The response as comparable texts: a header line (rcode, flags, EDNS version, DO), then one
    line per RR with its section and TTL; RDATA in its canonical form (names inside lower-cased,
    RFC 4034 §6.2: their case on the wire follows compression pointers, an artefact of rendering).
    ``folded``: owner names lower-cased too; else as the server sent them.

    A truncated response (TC) is its header line alone: what a server keeps of the sections
    then is its own choice (RFC 2181 §9: the client discards it and asks over TCP)."""
    out = {f"rcode={dns.rcode.to_text(response.rcode())} flags={dns.flags.to_text(response.flags)} "
           f"edns={response.edns} do={bool(response.ednsflags & dns.flags.DO)}"}
    if response.flags & dns.flags.TC:
        return frozenset(out)
    for section in ("answer", "authority", "additional"):
        for rrset in getattr(response, section):
            for rd in rrset:
                wire = rd.to_digestable()
                canonical = dns.rdata.from_wire(rd.rdclass, rd.rdtype, wire, 0, len(wire))
                if rd.rdtype in (dns.rdatatype.SVCB, dns.rdatatype.HTTPS):
                    # RFC 4034 §6.2 predates SVCB: NSD lower-cases its TargetName, Knot does not
                    canonical = canonical.replace(target=canonical.target.canonicalize())
                text = canonical.to_text()
                owner = rrset.name.to_text().lower() if folded else rrset.name.to_text()
                out.add(f"{section} {owner} {rrset.ttl} {dns.rdatatype.to_text(rrset.rdtype)} {text}")
    return frozenset(out)


@contextlib.contextmanager
def three_servers(workdir: Path, zones: list[Signed], addresses: dict[str, str],
                  ours_src: Path | None = None, not_on_peers: list[str] = ()
                  ) -> Iterator[dict[str, tuple[str, int]]]:
    """knotd, nsd (one server process) and ``cid serve auth`` (a subprocess, as operators run
    it) serving every zone, each on its own address (``{"knot": ..., "nsd": ..., "ours": ...}``);
    yields once each server answers SOA for every zone. ``ours_src``: a directory holding the
    ``resolver`` package to run instead of the installed one (e.g. an exported commit).
    ``not_on_peers``: origins Knot and NSD are given but refuse to load (not waited for there)."""
    files = {s.zone.origin: s.path for s in zones}
    with contextlib.ExitStack() as stack:
        ports = {who: free_port(address) for who, address in addresses.items()}
        stack.enter_context(peer_servers.knot(workdir / "knot", addresses["knot"], ports["knot"], files))
        stack.enter_context(peer_servers.nsd(workdir / "nsd", addresses["nsd"], ports["nsd"], files))
        args = [sys.executable, "-m", "resolver", "serve", "auth",
                "--listen", f"{addresses['ours']}:{ports['ours']}"]
        for path in files.values():
            args += ["--zone", str(path)]
        log = workdir / "ours.log"
        proc = stack.enter_context(_process(args, log, ours_src))
        servers = {who: (addresses[who], ports[who]) for who in addresses}
        for origin in files:
            for who, (address, port) in servers.items():
                if who != "ours" and origin in not_on_peers:
                    continue
                _wait_for_zone(address, port, origin, proc if who == "ours" else None, log)
        yield servers


@contextlib.contextmanager
def _process(args: list[str], log: Path, src: Path | None) -> Iterator[subprocess.Popen]:
    """``peer_servers.process`` with the package path put first (``src``)."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [env.get("PYTHONPATH")])])
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=src or None)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _wait_for_zone(address: str, port: int, origin: str, proc, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    query = dns.message.make_query(origin, "SOA")
    query.flags = 0
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"cid serve auth exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            response = dns.query.udp(query, address, port=port, timeout=0.5)
            if response.rcode() == dns.rcode.NOERROR and response.answer:
                return
        except (dns.exception.Timeout, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{address}:{port} does not serve {origin}")


# --- documented differences of presentation, removed before comparing ---------------------------

def _fields(line: str) -> list[str]:
    return line.split(" ", 4)  # section, owner, ttl, type, rdata


def _targets(lines: frozenset[str], section: str = "answer") -> set[str]:
    """Names whose addresses additional-section processing may add (RFC 1035 §3.3.x, RFC 9460
    §4.2) for the RRs of ``section``."""
    out = set()
    for line in lines:
        f = _fields(line)
        if f[0] != section or len(f) < 5:
            continue
        if f[3] == "NS":
            out.add(f[4])
        elif f[3] == "MX":
            out.add(f[4].split()[1])
        elif f[3] == "SRV":
            out.add(f[4].split()[3])
        elif f[3] == "SVCB":
            target = f[4].split()[1]
            out.add(f[1] if target == "." else target)
    return out


def without_nsd_apex_ns(lines: frozenset[str], origin: str) -> frozenset[str]:
    """NSD (minimal-responses off, its default) puts the apex NS RRset (and its RRSIG) in the
    authority section of positive answers and the addresses of those servers in the additional
    section. Removed: those authority lines, and additional lines of an apex server's name that
    no answer record names."""
    apex_ns = {l for l in lines if l.startswith(f"authority {origin} ")
               and (_fields(l)[3] == "NS" or (_fields(l)[3] == "RRSIG" and _fields(l)[4].startswith("NS ")))}
    if not apex_ns:
        return lines
    servers = {_fields(l)[4] for l in apex_ns if _fields(l)[3] == "NS"} - _targets(lines)
    return frozenset(l for l in lines if l not in apex_ns
                     and not (l.startswith("additional ") and _fields(l)[1] in servers))


def without_our_svcb_additionals(lines: frozenset[str]) -> frozenset[str]:
    """RFC 9460 §4.2: for an SVCB RRset with TargetName "." we add the owner's own addresses;
    Knot 3.2 and NSD 4.6 do not (for other targets all three add them). Removed from our view
    (A, AAAA, their RRSIGs)."""
    svcb = set()
    for line in lines:
        f = _fields(line)
        if f[0] == "answer" and f[3] == "SVCB" and f[4].split()[1] == ".":
            svcb.add(f[1].lower())
    return frozenset(l for l in lines if not (
        l.startswith("additional ") and _fields(l)[1].lower() in svcb
        and (_fields(l)[3] in ("A", "AAAA") or (_fields(l)[3] == "RRSIG" and _fields(l)[4].split()[0] in ("A", "AAAA")))))


# --- comparing ----------------------------------------------------------------------------------

PEERS = ("knot", "nsd")


@dataclass
class Case:
    """One question asked of the three servers, with the views compared."""

    signed: Signed
    question: Question
    replies: dict[str, Reply]
    folded: dict[str, frozenset[str]]  # after the documented normalisations
    exact: dict[str, frozenset[str]]
    extra: dict[str, object] = field(default_factory=dict)  # ours over TCP when ours truncated

    @property
    def limit(self) -> int:
        """The UDP size the question allows (servers cap EDNS payloads at 1232)."""
        t = self.question.transport
        return 65535 if t == "tcp" else 512 if t == "udp" else max(512, min(1232, int(t[3:])))

    def ours_tc_justified(self) -> bool:
        """We truncated, and our whole response (asked again over TCP) is larger than allowed."""
        full = self.extra.get("ours_tcp_size")
        return self.flag("ours", dns.flags.TC) and full is not None and full > self.limit

    def lines(self, who: str, section: str | None = None) -> set[str]:
        return {l for l in self.folded[who] if section is None or l.startswith(section + " ")}

    def header(self, who: str) -> str:
        return next(l for l in self.folded[who] if l.startswith("rcode="))

    def flag(self, who: str, flag: int) -> bool:
        return bool(self.replies[who].message.flags & flag)

    def diff(self, a: str, b: str) -> set[str]:
        return set(self.folded[a] ^ self.folded[b])

    def diff_sections(self, a: str, b: str) -> set[str]:
        return {l.split(" ", 1)[0] for l in self.diff(a, b)}


def normalised(signed: Signed, replies: dict[str, Reply], folded: bool) -> dict[str, frozenset[str]]:
    views = {who: view(r.message, folded) for who, r in replies.items()}
    views["nsd"] = without_nsd_apex_ns(views["nsd"], signed.zone.origin if folded else _origin_as_sent(views["nsd"], signed))
    views["ours"] = without_our_svcb_additionals(views["ours"])
    return views


def _origin_as_sent(lines: frozenset[str], signed: Signed) -> str:
    for line in lines:
        f = _fields(line)
        if len(f) > 1 and f[1].lower() == signed.zone.origin:
            return f[1]
    return signed.zone.origin


def make_case(signed: Signed, q: Question, replies: dict[str, Reply]) -> Case:
    return Case(signed, q, replies, normalised(signed, replies, True), normalised(signed, replies, False))


@dataclass(frozen=True)
class Known:
    """A known difference: ``applies`` recognises it; ``ours`` says which side we are on
    (``"knot"``, ``"nsd"``, or ``"own"`` checked by ``ours_ok``)."""

    label: str
    why: str
    applies: object  # Callable[[Case], bool]
    ours: str
    ours_ok: object = None  # Callable[[Case], bool] for ours == "own"


@dataclass
class Verdict:
    case: Case
    kind: str  # "same", "peers-differ", "ours-differs", "unexplained"
    label: str = ""
    ours_as: str = ""  # for peers-differ: "knot", "nsd" or "own"
    ok: bool = True

    def describe(self) -> str:
        c = self.case
        out = [f"{self.kind} [{self.label}] zone {c.signed.zone.origin} (seed {c.signed.zone.seed}, "
               f"{c.signed.mode}) question {c.question}: ours as {self.ours_as or '-'}"
               f"{'' if self.ok else ' (NOT as expected)'}"]
        every = set().union(*c.folded.values())
        for line in sorted(every):
            tag = "".join(w[0] if line in c.folded[w] else "." for w in ("knot", "nsd", "ours"))
            if tag != "kno":
                out.append(f"    {tag} {line}")
        if c.folded["knot"] == c.folded["nsd"] == c.folded["ours"]:
            every = set().union(*c.exact.values())
            for line in sorted(every):
                tag = "".join(w[0] if line in c.exact[w] else "." for w in ("knot", "nsd", "ours"))
                if tag != "kno":
                    out.append(f"    {tag} {line}")
        out.append("    sizes: " + ", ".join(f"{w} {r.size} B" for w, r in c.replies.items()))
        return "\n".join(out)


def judge(case: Case, peer_differences: list[Known], our_defects: list[Known]) -> Verdict:
    f, e = case.folded, case.exact
    if f["knot"] == f["nsd"]:
        if f["ours"] == f["knot"]:
            if e["knot"] == e["nsd"] and e["ours"] != e["knot"]:
                kind = "ours-differs"  # in the case of names only, where both peers agree on it
            else:
                return Verdict(case, "same")
        else:
            kind = "ours-differs"
        for known in our_defects:
            if known.applies(case):
                return Verdict(case, kind, known.label, "own")
        return Verdict(case, kind, "unexplained", "own", ok=False)
    ours_as = "knot" if f["ours"] == f["knot"] else "nsd" if f["ours"] == f["nsd"] else "own"
    for known in peer_differences:
        if known.applies(case):
            ok = (ours_as == known.ours) if known.ours != "own" else (
                ours_as in PEERS or bool(known.ours_ok and known.ours_ok(case)))
            return Verdict(case, "peers-differ", known.label, ours_as, ok)
    return Verdict(case, "unexplained", "", ours_as, ok=False)


# --- the known differences ----------------------------------------------------------------------

def _rdata_names(lines: set[str] | frozenset[str]) -> set[str]:
    """Names inside the RDATA of the RRs in ``lines`` (lower case): where a compressing server's
    pointers may lead."""
    out = set()
    for line in lines:
        f = _fields(line)
        if len(f) < 5:
            continue
        rd = f[4].split()
        if f[3] in ("NS", "CNAME", "DNAME", "PTR"):
            out.add(rd[0])
        elif f[3] == "MX":
            out.add(rd[1])
        elif f[3] == "SRV":
            out.add(rd[3])
        elif f[3] == "SVCB":
            out.add(rd[1])
        elif f[3] == "SOA":
            out.update(rd[:2])
    return {n.lower() for n in out}


def _owner_case_only(c: Case) -> bool:
    """Folded views equal, the exact ones differ in the case of owner names only."""
    return c.folded["knot"] == c.folded["nsd"] == c.folded["ours"]


def _ours_truncates_what_fits(c: Case) -> bool:
    """We set TC where Knot and NSD send the whole response: ours, rendered over TCP, is larger
    than the UDP limit while theirs fit (no name compression inside RDATA)."""
    return (not c.flag("knot", dns.flags.TC) and not c.flag("nsd", dns.flags.TC)
            and c.ours_tc_justified()
            and c.limit >= max(c.replies["knot"].size, c.replies["nsd"].size))


def _peers_truncate_differently(c: Case) -> bool:
    """Knot and NSD differ on TC alone: their whole responses differ in size (NSD adds the apex
    NS RRset, the proofs differ) and one fits the UDP limit where the other does not. We must set
    TC exactly when our own whole response does not fit."""
    return (c.flag("knot", dns.flags.TC) != c.flag("nsd", dns.flags.TC)
            and (c.header("knot").replace(" TC", "") == c.header("nsd").replace(" TC", "")))


def _ours_tc_when_needed(c: Case) -> bool:
    return c.ours_tc_justified() or (not c.flag("ours", dns.flags.TC) and c.replies["ours"].size <= c.limit)


def _is_referral(c: Case, who: str) -> bool:
    m = c.replies[who].message
    return not (m.flags & dns.flags.AA) and any(r.rdtype == dns.rdatatype.NS for r in m.authority)


def _nsd_fills_referral(c: Case) -> bool:
    """A referral (also one at the end of a CNAME chain) whose in-bailiwick glue does not fit:
    Knot and we set TC (RFC 9471 §3), NSD 4.6 sends the glue that fits without TC."""
    return (c.flag("knot", dns.flags.TC) and not c.flag("nsd", dns.flags.TC)
            and any(_fields(l)[3] == "NS" for l in c.lines("nsd", "authority")))


def _ours_truncated(c: Case) -> bool:
    return c.flag("ours", dns.flags.TC)


def _any_one_rrset(c: Case) -> bool:
    return c.question.rdtype == "ANY" and c.diff_sections("knot", "nsd") <= {"answer", "additional"}


def _ours_any_is_one_rrset(c: Case) -> bool:
    types = {_fields(l)[3] for l in c.lines("ours", "answer")}
    sigs = {_fields(l)[4].split()[0] for l in c.lines("ours", "answer") if _fields(l)[3] == "RRSIG"}
    data = types - {"RRSIG"}
    return len(data) == 1 and sigs <= data


def _only(c: Case, a: str, b: str, pred) -> bool:
    """Every line in which ``a`` and ``b`` differ satisfies ``pred(line, in_a)``."""
    d = c.diff(a, b)
    return bool(d) and all(pred(l, l in c.folded[a]) for l in d)


def _sig_of(line: str, types: tuple[str, ...]) -> bool:
    f = _fields(line)
    return f[3] in types or (f[3] == "RRSIG" and f[4].split()[0] in types)


def _no_mx_srv_additional(c: Case) -> bool:
    """Knot and NSD add the addresses of MX and SRV targets in the zone (RFC 1035 §3.3.9,
    RFC 2782); we add none."""
    targets = set()
    for line in c.lines("knot", "answer"):
        f = _fields(line)
        if f[3] == "MX":
            targets.add(f[4].split()[1])
        elif f[3] == "SRV":
            targets.add(f[4].split()[3])
    return _only(c, "knot", "ours", lambda l, in_knot: in_knot and l.startswith("additional ")
                 and _fields(l)[1] in targets and _sig_of(l, ("A", "AAAA")))


def _ds_in_unsigned_referral(c: Case) -> bool:
    """An unsigned zone with DS records at its delegations (and DO in the query): we put the DS
    RRset in referrals, Knot and NSD do not (they send DS with referrals from signed zones only)."""
    return c.signed.mode == "unsigned" and _only(
        c, "ours", "knot", lambda l, in_ours: in_ours and l.startswith("authority ")
        and _fields(l)[3] == "DS")


def _cname_query_below_dname(c: Case) -> bool:
    """QTYPE CNAME below a DNAME: Knot and NSD answer the DNAME and the synthesised CNAME (which
    answers the question) and stop; we follow the CNAME's target as for any other type."""
    return c.question.rdtype == "CNAME" and any(
        _fields(l)[3] == "DNAME" for l in c.lines("knot", "answer")) and c.lines(
        "knot", "answer") <= c.lines("ours", "answer") | {l for l in c.lines("knot", "answer")
                                                           if _fields(l)[3] == "RRSIG"}


def _aa_cleared_by_cname_into_cut(c: Case) -> bool:
    """A CNAME (or DNAME) chain from authoritative data into a delegation: Knot and NSD keep AA
    (the answer's first RRset is ours to vouch for) and add the referral; we clear AA."""
    if not (c.flag("knot", dns.flags.AA) and c.flag("nsd", dns.flags.AA)
            and not c.flag("ours", dns.flags.AA)
            and c.diff("knot", "ours") <= {c.header("knot"), c.header("ours")}):
        return False
    m = c.extra.get("ours_tcp") or c.replies["ours"].message  # truncated: the TCP answer shows it
    return (any(r.rdtype in (dns.rdatatype.CNAME, dns.rdatatype.DNAME) for r in m.answer)
            and any(r.rdtype == dns.rdatatype.NS for r in m.authority))


def _nsd_literal_wildcard_nodata(c: Case) -> bool:
    """The wildcard owner itself asked for a type it lacks (NSEC3 zone): NSD adds the NSEC3 of
    the wildcard's parent to the matching one (spec/dnssec.md §5); Knot and we do not."""
    if not (c.signed.mode.startswith("nsec3") and c.question.name.lower().startswith("*.")):
        return False
    if c.flag("nsd", dns.flags.TC) and not c.flag("knot", dns.flags.TC):
        return True  # NSD's longer proof (and the apex NS RRset) no longer fits
    return _only(c, "nsd", "knot", lambda l, in_nsd: in_nsd and _sig_of(l, ("NSEC3",)))


def _nsd_optout_ent(c: Case) -> bool:
    """Names at or below an empty non-terminal that only unsigned delegations make, under
    opt-out (it has no NSEC3): NSD's proof differs from Knot's closest provable encloser proof
    (spec/dnssec.md §5), NSD's proves nothing; we answer as Knot. (NSD's shorter proof may fit
    512 octets where Knot's and ours set TC.)"""
    if c.signed.mode != "nsec3-optout":
        return False
    name = c.question.name.lower()
    if not any(name == c.signed.zone.absolute(e) or name.endswith("." + c.signed.zone.absolute(e))
               for e in c.signed.zone.optout_ents()):
        return False
    if c.flag("knot", dns.flags.TC) and not c.flag("nsd", dns.flags.TC):
        return True
    return c.diff_sections("nsd", "knot") <= {"authority"} and all(
        _sig_of(l, ("NSEC3", "SOA")) for l in c.diff("nsd", "knot"))


def _knot_nxdomain_below_optout_ent(c: Case) -> bool:
    """A name that does not exist below an opt-out empty non-terminal (for QTYPE DS, or two or
    more labels below it): Knot 3.2 answers NXDOMAIN without AA and with an empty authority
    section, NSD with NSEC3s and no SOA; we give AA, the SOA and the closest provable encloser
    proof (as Knot does one label below for other types)."""
    k = c.replies["knot"].message
    return (c.signed.mode == "nsec3-optout" and k.rcode() == dns.rcode.NXDOMAIN
            and not k.authority and not k.flags & dns.flags.AA)


def _ours_nxdomain_proof(c: Case) -> bool:
    m = c.replies["ours"].message
    return (m.rcode() == dns.rcode.NXDOMAIN and bool(m.flags & dns.flags.AA)
            and any(r.rdtype == dns.rdatatype.SOA for r in m.authority)
            and sum(r.rdtype == dns.rdatatype.NSEC3 for r in m.authority) in (2, 3))


def _nsd_drops_additional_sigs(c: Case) -> bool:
    """Over 512-octet UDP, NSD (whose answer carries the apex NS RRset, removed from the view)
    leaves out additional data (addresses, their RRSIGs) that Knot still fits."""
    return c.question.transport in ("udp", "udp512") and _only(
        c, "knot", "nsd", lambda l, in_knot: in_knot and l.startswith("additional "))


def _ours_as_knot_but_additional(c: Case) -> bool:
    return c.lines("ours") - c.lines("ours", "additional") == c.lines("knot") - c.lines("knot", "additional")


def _knot_svcb_additional(c: Case) -> bool:
    """SVCB answers with an in-zone TargetName: Knot 3.2 has its own additional-section rules
    (it adds the target's SVCB RRset and, with DO, the NSEC/NSEC3 denying a missing address
    type; it leaves out addresses of a target that is also an apex server); NSD and we add the
    target's A and AAAA (RFC 9460 §4.2)."""
    return any(_fields(l)[3] == "SVCB" for l in c.lines("knot", "answer")) and bool(
        c.diff("knot", "nsd")) and c.diff_sections("knot", "nsd") == {"additional"}


def _same_answer_and_authority(c: Case) -> bool:
    return (c.lines("ours", "answer") == c.lines("knot", "answer") == c.lines("nsd", "answer")
            and c.lines("ours", "authority") == c.lines("knot", "authority") == c.lines("nsd", "authority"))


def _knot_nsec_query_at_cname(c: Case) -> bool:
    """QTYPE NSEC at a CNAME, in an unsigned or NSEC3 zone: Knot answers NODATA, NSD and we give
    the CNAME and follow it, as for any type the name lacks."""
    return (c.question.rdtype == "NSEC" and c.signed.mode != "nsec"
            and (c.flag("nsd", dns.flags.TC)
                 or any(_fields(l)[3] == "CNAME" for l in c.lines("nsd", "answer")))
            and not c.flag("knot", dns.flags.TC) and not c.lines("knot", "answer"))


def _ours_answer_as_nsd(c: Case) -> bool:
    return c.lines("ours", "answer") == c.lines("nsd", "answer") or c.ours_tc_justified()


def _nsd_nxdomain_after_dname(c: Case) -> bool:
    """The name a DNAME leads to does not exist: NSD leaves out one NSEC/NSEC3 of the name error
    proof (the one covering the new name), Knot and we send the whole proof."""
    return any(_fields(l)[3] == "DNAME" for l in c.lines("knot", "answer")) and _only(
        c, "knot", "nsd", lambda l, in_knot: in_knot and l.startswith("authority ")
        and _sig_of(l, ("NSEC", "NSEC3")))


def _nsd_wildcard_proof_below_wildcard_owner(c: Case) -> bool:
    """NSEC zones where names exist below a wildcard owner (``b.*.w``): for a wildcard NODATA or
    name error that the wildcard's neighbourhood decides, NSD sends the NSEC preceding the
    wildcard owner, which does not cover the query name; Knot and we the NSEC that covers it."""
    return (c.signed.mode == "nsec" and any(".*." in "." + n and not n.startswith("*.")
                                            for n in c.signed.zone.data)
            and _only(c, "knot", "nsd", lambda l, _: l.startswith("authority ") and _sig_of(l, ("NSEC",))))


PEER_DIFFERENCES = [
    Known("any", "ANY (RFC 8482 §4.1: one RRset of the server's choice): Knot 3.2 gives the "
          "lowest-numbered type at the name, RRSIG included (so often only signatures, even "
          "without DO); NSD another; we the lowest-numbered type other than RRSIG and NSEC",
          _any_one_rrset, "own", _ours_any_is_one_rrset),
    Known("referral-glue-does-not-fit", _nsd_fills_referral.__doc__, _nsd_fills_referral, "own",
          _ours_truncated),
    Known("nsec3-literal-wildcard-nodata", _nsd_literal_wildcard_nodata.__doc__,
          _nsd_literal_wildcard_nodata, "knot"),
    Known("knot-nxdomain-below-optout-ent", _knot_nxdomain_below_optout_ent.__doc__,
          _knot_nxdomain_below_optout_ent, "own", _ours_nxdomain_proof),
    Known("nsec3-optout-ent", _nsd_optout_ent.__doc__, _nsd_optout_ent, "knot"),
    Known("svcb-additional", _knot_svcb_additional.__doc__, _knot_svcb_additional, "own",
          _same_answer_and_authority),
    Known("knot-nsec-query-at-cname", _knot_nsec_query_at_cname.__doc__, _knot_nsec_query_at_cname,
          "own", _ours_answer_as_nsd),
    Known("nsd-nsec-below-wildcard-owner", _nsd_wildcard_proof_below_wildcard_owner.__doc__,
          _nsd_wildcard_proof_below_wildcard_owner, "knot"),
    Known("nsd-nxdomain-after-dname", _nsd_nxdomain_after_dname.__doc__, _nsd_nxdomain_after_dname,
          "knot"),
    Known("nsd-less-additional-at-512", _nsd_drops_additional_sigs.__doc__,
          _nsd_drops_additional_sigs, "own", _ours_as_knot_but_additional),
    Known("peers-truncate-differently", _peers_truncate_differently.__doc__,
          _peers_truncate_differently, "own", _ours_tc_when_needed),
]

OUR_DEFECTS = [
    Known("owner-case", "the case of owner names, where Knot and NSD agree on it: they write "
          "owners lower-case (as loaded) or with the case of the earlier name their compression "
          "pointer leads to (often a name inside RDATA); we write a spelling from the zone file "
          "(the NSEC3 owners BIND writes in upper case, glue as the NS target spells it)",
          _owner_case_only, "own"),
    Known("tc-where-peers-fit", "we set TC where Knot and NSD fit the response: we do not "
          "compress names inside RDATA (NS, SOA, CNAME, MX, ... targets), so ours is larger",
          _ours_truncates_what_fits, "own"),
    Known("no-mx-srv-additional", _no_mx_srv_additional.__doc__, _no_mx_srv_additional, "own"),
    Known("ds-in-unsigned-referral", _ds_in_unsigned_referral.__doc__, _ds_in_unsigned_referral, "own"),
    Known("cname-query-below-dname", _cname_query_below_dname.__doc__, _cname_query_below_dname, "own"),
    Known("aa-cleared-by-cname-into-cut", _aa_cleared_by_cname_into_cut.__doc__,
          _aa_cleared_by_cname_into_cut, "own"),
]


def ask_all(servers: dict[str, tuple[str, int]], signed: Signed, q: Question) -> Case:
    """Ask every server; when we truncate and a peer does not, also measure ours over TCP."""
    replies = {who: ask(address, q) for who, address in servers.items()}
    case = make_case(signed, q, replies)
    if replies["ours"].message.flags & dns.flags.TC and q.transport != "tcp":
        tcp = Question(q.name, q.rdtype, q.do, "tcp")
        full = ask(servers["ours"], tcp)
        case.extra["ours_tcp_size"], case.extra["ours_tcp"] = full.size, full.message
    return case
