"""The benchmark hierarchy: three signed levels, cid. → cmcc.cid. → bj.cmcc.cid., each zone on its
own loopback address, each signed with an Ed25519 KSK/ZSK pair (so a validator walks
DS → KSK → DNSKEY RRset → ZSK → data at every level, as for the demo federation).

Addresses live in 127.0.53.0/24 (or, for port 53, a free 127.0.N.0/24 with N in 100..249) so a
benchmark does not collide with the test suite's servers (127.0.0.x, 127.0.10.x, 127.0.30.x).
Zones are written in RFC 3597 generic form so NSD serves them.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.zone

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT, ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import resolver  # noqa: E402,F401  (registers CAPS/LOAD)
from resolver.auth import keys as zkeys  # noqa: E402
from resolver.auth import signer, zonefile  # noqa: E402

APEX = "cid."
LEAF = "bj.cmcc.cid."
PARENT = {"cmcc.cid.": "cid.", "bj.cmcc.cid.": "cmcc.cid."}
HOSTS = {"cid.": 1, "cmcc.cid.": 2, "bj.cmcc.cid.": 3}
UNBOUND_HOST = 10
DEFAULT_NET = "127.0.53"


@dataclass(frozen=True)
class Hierarchy:
    directory: Path
    files: dict[str, Path]       # zone name → signed master file (generic CAPS/LOAD)
    zones: dict[str, dns.zone.Zone]
    trust_anchor: Path           # DS of cid. (master-file format, as Unbound's trust-anchor-file)
    identifiers: tuple[str, ...]  # cid:pool-N.bj.cmcc.cid
    net: str = DEFAULT_NET        # zone servers on NET.1-3, Unbound on NET.10

    @property
    def addresses(self) -> dict[str, str]:
        return {zone: f"{self.net}.{host}" for zone, host in HOSTS.items()}

    @property
    def unbound_address(self) -> str:
        return f"{self.net}.{UNBOUND_HOST}"

    def name(self, i: int) -> str:
        """The DNS name of identifier i (cycled)."""
        return self.identifiers[i % len(self.identifiers)].removeprefix("cid:") + "."


def _source(zone: str, leaves: int, net: str) -> str:
    label = zone.split(".")[0]
    lines = [f"$ORIGIN {zone}", "$TTL 300",
             "@ IN SOA ns1 hostmaster 1 3600 600 86400 60", "@ IN NS ns1",
             f"ns1 IN A {net}.{HOSTS[zone]}"]
    for child, parent in PARENT.items():
        if parent == zone:
            sub = child.split(".")[0]
            lines += [f"{sub} IN NS ns1.{sub}", f"ns1.{sub} IN A {net}.{HOSTS[child]}"]
    if zone == LEAF:
        for i in range(leaves):
            lines += [f"pool-{i} IN SVCB 1 . alpn=h2 port=8443",
                      f"pool-{i} IN A 192.0.2.{i % 250 + 1}",
                      f"pool-{i} IN AAAA 2001:db8::{(i + 1) >> 16:x}:{(i + 1) & 0xffff:x}",
                      f"pool-{i} 3600 IN CAPS accel_kind=gpu accel_count=8 region={label}",
                      f"pool-{i} 15 IN LOAD accel_free={i % 8} util=0.5"]
    return "\n".join(lines) + "\n"


def build(directory: Path, leaves: int = 64, now: float | None = None, net: str = DEFAULT_NET) -> Hierarchy:
    """Write and sign the three zones (deepest first, so each parent carries its child's DS);
    ``net`` is the first three octets of the servers' loopback addresses."""
    now = time.time() if now is None else now
    directory.mkdir(parents=True, exist_ok=True)
    ds: dict[str, list] = {}
    files: dict[str, Path] = {}
    zones: dict[str, dns.zone.Zone] = {}
    for zone in (LEAF, "cmcc.cid.", APEX):
        text = _source(zone, leaves, net)
        for child, parent in PARENT.items():
            if parent == zone:
                sub = child.split(".")[0]
                text += "".join(f"{sub} IN DS {d.to_text()}\n" for d in ds[child])
        z = dns.zone.from_text(text, origin=zone, relativize=False)
        ksk = zkeys.generate_key(zone, flags=zkeys.KSK_FLAGS)
        zsk = zkeys.generate_key(zone, flags=zkeys.ZSK_FLAGS)
        signer.sign_zone(z, [ksk, zsk], now=now)
        ds[zone] = signer.ds_records(dns.name.from_text(zone), [ksk])
        files[zone] = directory / f"{zone}signed"
        zonefile.write_zone(z, files[zone], generic=True)
        zones[zone] = z
    anchor = directory / "trust-anchor.ds"
    anchor.write_text("".join(f"{APEX} 3600 IN DS {d.to_text()}\n" for d in ds[APEX]))
    identifiers = tuple(f"cid:pool-{i}.{LEAF.rstrip('.')}" for i in range(leaves))
    return Hierarchy(directory, files, zones, anchor, identifiers, net)


@contextlib.contextmanager
def nsd_serving(h: Hierarchy, port: int = 53) -> Iterator[dict[str, str]]:
    """One NSD per zone on its own address (one NSD serving all three would answer the leaf
    from the apex address and skip the delegation walk). Yields {"cid.": "127.0.53.1@53", ...}."""
    from bench_peers import nsd
    with contextlib.ExitStack() as stack:
        for zone, path in h.files.items():
            stack.enter_context(nsd(h.directory / f"nsd-{zone.rstrip('.') or 'root'}",
                                                 h.addresses[zone], port, {zone: path}))
        yield {zone: f"{h.addresses[zone]}@{port}" for zone in h.files}


def free_net(port: int = 53) -> str:
    """A random 127.0.N prefix whose NET.1-3 and NET.10 are free on ``port`` (UDP and TCP), so
    concurrent runs (or the test suite's port-53 servers) are unlikely to pick the same one."""
    import random
    import socket
    candidates = [f"127.0.{n}" for n in random.sample(range(100, 250), 30)]
    for net in candidates:
        try:
            for host in (*HOSTS.values(), UNBOUND_HOST):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    with socket.socket(socket.AF_INET, kind) as s:
                        if kind == socket.SOCK_STREAM:  # ignore TIME_WAIT leftovers only
                            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                        s.bind((f"{net}.{host}", port))
        except OSError:
            continue
        return net
    raise RuntimeError(f"no free 127.0.N.1-3 on port {port}")
