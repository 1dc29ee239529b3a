"""Writes the demo federation to disk: zone sources, keys, signed zones, trust anchor, federation.json.

Children are signed before parents, because a parent carries the DS of each signed child.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.rdataclass

from .. import records

from ..auth import keys as zkeys
from ..auth import signer, zonefile
from ..identifier import to_cid
from ..records import registry
from ..records.caps import CAPS as CapsRdata
from ..records.load import LOAD as LoadRdata
from .inventory import APEX, Namespace, Resource, namespaces

ADDRESS_PREFIX = "127.0.10."
ENDPOINT_PREFIX = "127.0.11."
CAPS_TTL = 3600
LOAD_TTL = 15
TTL = 300


@dataclass(frozen=True)
class BuiltZone:
    name: str
    file: Path
    address: str
    port: int
    signed: bool


@dataclass(frozen=True)
class Federation:
    directory: Path
    apex: str
    trust_anchor: Path
    zones: tuple[BuiltZone, ...]
    identifiers: tuple[str, ...]

    @property
    def apex_zone(self) -> BuiltZone:
        return next(z for z in self.zones if z.name == self.apex)

    def to_json(self) -> dict:
        return {
            "apex": self.apex,
            "trust_anchor": str(self.trust_anchor),
            "zones": [
                {"name": z.name, "file": str(z.file), "address": z.address, "port": z.port,
                 "signed": z.signed}
                for z in self.zones
            ],
            "identifiers": list(self.identifiers),
        }


def _label(child: str, parent: str) -> str:
    return dns.name.from_text(child).relativize(dns.name.from_text(parent)).to_text()


def _resource_lines(ns: Namespace, res: Resource, index: int) -> list[str]:
    caps = CapsRdata(dns.rdataclass.IN, records.CAPS, res.caps)
    load = LoadRdata(dns.rdataclass.IN, records.LOAD, {**res.load, "ts": int(time.time())})
    alpn = ",".join(res.alpn)
    endpoint = f"{ENDPOINT_PREFIX}{ns.host * 16 + index}"
    lines = [
        f"{res.label} {TTL} IN SVCB 1 . alpn={alpn} port={res.port} ipv4hint={endpoint}",
        f"{res.label} {TTL} IN A {endpoint}",
        f"{res.label} {CAPS_TTL} IN CAPS {caps.to_text()}",
        f"{res.label} {LOAD_TTL} IN LOAD {load.to_text()}",
    ]
    if res.gateway:
        lines.insert(1, f'{res.label} {TTL} IN SVCB 2 gw alpn=h2,h3 port=443')
    return lines


def zone_source(ns: Namespace, by_name: dict[str, Namespace], serial: int) -> str:
    """Master-file text of one namespace, without DNSSEC records other than child DS (added later)."""
    lines = [
        f"; demo namespace {ns.name} ({'signed' if ns.signed else 'unsigned'})",
        f"$ORIGIN {ns.name}",
        f"$TTL {TTL}",
        f"@ IN SOA ns1 hostmaster {serial} 3600 600 86400 60",
        "@ IN NS ns1",
        f"ns1 IN A {ADDRESS_PREFIX}{ns.host}",
    ]
    if any(r.gateway for r in ns.resources):
        lines.append(f"gw IN A {ENDPOINT_PREFIX}{ns.host * 16 + 15}")
    for child in ns.children:
        label = _label(child, ns.name)
        lines += [f"{label} IN NS ns1.{label}", f"ns1.{label} IN A {ADDRESS_PREFIX}{by_name[child].host}"]
    for i, res in enumerate(ns.resources):
        lines += _resource_lines(ns, res, i)
    lines += _browse_lines(ns)
    return "\n".join(lines) + "\n"


def _browse_lines(ns: Namespace) -> list[str]:
    """Discovery names of spec/discovery.md: browse and sub-type PTRs, child namespace pointers."""
    lines = [f"{registry.children_name(ns.name)} {CAPS_TTL} IN PTR {child}" for child in ns.children]
    for res in ns.resources:
        target = f"{res.label}.{ns.name}"
        lines += [f"{browse} {CAPS_TTL} IN PTR {target}"
                  for browse in registry.browse_names(ns.name, res.caps)]
    return lines


def _zone_keys(origin: dns.name.Name, key_dir: Path) -> tuple[zkeys.ZoneKey, zkeys.ZoneKey]:
    """The zone's KSK and ZSK: reused from an earlier run, so the trust anchor stays stable.

    A KSK/ZSK split, so the chain exercised is DS → KSK → DNSKEY RRset → ZSK → data.
    """
    existing = zkeys.load_zone_keys(key_dir, origin)
    ksks = [k for k in existing if k.flags == 257]
    zsks = [k for k in existing if k.flags == 256]
    if len(ksks) == 1 and len(zsks) == 1:
        return ksks[0], zsks[0]
    for stale in key_dir.glob(f"K{origin.to_text().lower()}+*"):
        stale.unlink()  # an incomplete or ambiguous set from an interrupted run
    ksk, zsk = zkeys.generate_key(origin, flags=257), zkeys.generate_key(origin, flags=256)
    for k in (ksk, zsk):
        zkeys.write_key_files(k, key_dir)
    return ksk, zsk


def build(directory: Path, port: int, *, now: float | None = None,
          progress=lambda msg: None) -> Federation:
    """Write every zone (signed where the plan says so) and return where everything is."""
    now = time.time() if now is None else now
    directory = directory.resolve()
    zone_dir, key_dir = directory / "zones", directory / "keys"
    zone_dir.mkdir(parents=True, exist_ok=True)
    key_dir.mkdir(parents=True, exist_ok=True)
    plan = namespaces()
    by_name = {ns.name: ns for ns in plan}
    serial = int(now)
    ds_of: dict[str, list] = {}
    built: dict[str, BuiltZone] = {}
    # Deepest first so each parent can include its children's DS.
    for ns in sorted(plan, key=lambda n: -len(dns.name.from_text(n.name))):
        text = zone_source(ns, by_name, serial)
        for child in ns.children:
            for ds in ds_of.get(child, []):
                text += f"{_label(child, ns.name)} IN DS {ds.to_text()}\n"
        source = zone_dir / f"{ns.name}zone"
        source.write_text(text)
        # The file each server loads is in RFC 3597 form for CAPS/LOAD, so BIND, NSD and Knot
        # can serve any zone of federation.json; the source stays in the friendly form.
        zone = zonefile.load_zone(source, ns.name)
        if ns.signed:
            key, zsk = _zone_keys(dns.name.from_text(ns.name), key_dir)
            signer.sign_zone(zone, [key, zsk], now=now)
            served = zone_dir / f"{ns.name}zone.signed"
            ds_of[ns.name] = signer.ds_records(dns.name.from_text(ns.name), [key])
            progress(f"signed {ns.name:<20} KSK {key.key_tag:>5}  ZSK {zsk.key_tag:>5}")
        else:
            served = zone_dir / f"{ns.name}zone.served"
            progress(f"wrote  {ns.name:<20} (unsigned)")
        zonefile.write_zone(zone, served, generic=True)
        built[ns.name] = BuiltZone(ns.name, served, f"{ADDRESS_PREFIX}{ns.host}", port, ns.signed)
    anchor = directory / "trust-anchor.ds"
    anchor.write_text("".join(f"{APEX} 3600 IN DS {ds.to_text()}\n" for ds in ds_of[APEX]))
    identifiers = tuple(
        to_cid(dns.name.from_text(f"{res.label}.{ns.name}")) for ns in plan for res in ns.resources
    )
    fed = Federation(directory, APEX, anchor, tuple(built[ns.name] for ns in plan), identifiers)
    (directory / "federation.json").write_text(json.dumps(fed.to_json(), indent=2) + "\n")
    return fed
