"""Writes the demo federation to disk: zone sources, keys, signed zones, trust anchor, federation.json.

Children are signed before parents, because a parent carries the DS of each signed child.
"""

from __future__ import annotations

import json
import shutil
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
from .liveconfig import ProviderKey, config_text, provider_key

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
    config: Path  # what `cid serve auth --config` serves: base file, keys, journal, TSIG keys
    base: Path  # the file the live primary starts from (regional zones: no resources yet)
    keys: tuple[ProviderKey, ...] = ()  # TSIG keys allowed to register under the zone


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
                 "signed": z.signed, "config": str(z.config), "keys": [k.to_json() for k in z.keys]}
                for z in self.zones
            ],
            "identifiers": list(self.identifiers),
        }


def _label(child: str, parent: str) -> str:
    return dns.name.from_text(child).relativize(dns.name.from_text(parent)).to_text()


def endpoint_address(ns: Namespace, index: int) -> str:
    """The loopback address of the ``index``-th resource of ``ns``."""
    return f"{ENDPOINT_PREFIX}{ns.host * 16 + index}"


def svcb_texts(ns: Namespace, res: Resource, index: int) -> list[str]:
    """The resource's SVCB rdatas (presentation form, absolute targets): its own address first,
    the namespace's shared gateway second when it has one."""
    texts = [f"1 . alpn={','.join(res.alpn)} port={res.port} ipv4hint={endpoint_address(ns, index)}"]
    if res.gateway:
        texts.append(f"2 gw.{ns.name} alpn=h2,h3 port=443")
    return texts


def _resource_lines(ns: Namespace, res: Resource, index: int) -> list[str]:
    caps = CapsRdata(dns.rdataclass.IN, records.CAPS, res.caps)
    load = LoadRdata(dns.rdataclass.IN, records.LOAD, {**res.load, "ts": int(time.time())})
    return [
        *(f"{res.label} {TTL} IN SVCB {text}" for text in svcb_texts(ns, res, index)),
        f"{res.label} {TTL} IN A {endpoint_address(ns, index)}",
        f"{res.label} {CAPS_TTL} IN CAPS {caps.to_text()}",
        f"{res.label} {LOAD_TTL} IN LOAD {load.to_text()}",
    ]


def zone_source(ns: Namespace, by_name: dict[str, Namespace], serial: int, *, resources: bool = True) -> str:
    """Master-file text of one namespace, without DNSSEC records other than child DS (added later).

    ``resources=False``: the namespace before its providers register (the live primary's base)."""
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
    if resources:
        for i, res in enumerate(ns.resources):
            lines += _resource_lines(ns, res, i)
    lines += _browse_lines(ns, resources)
    return "\n".join(lines) + "\n"


def _browse_lines(ns: Namespace, resources: bool = True) -> list[str]:
    """Discovery names of spec/discovery.md: browse and sub-type PTRs, child namespace pointers."""
    lines = [f"{registry.children_name(ns.name)} {CAPS_TTL} IN PTR {child}" for child in ns.children]
    for res in ns.resources if resources else ():
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


def _write_served(ns: Namespace, source: Path, path: Path, keys: list[zkeys.ZoneKey], now: float) -> None:
    """The master file ``source`` signed with ``keys`` (none: unsigned) into ``path``, CAPS/LOAD
    in RFC 3597 form so BIND, NSD and Knot can serve any zone of federation.json."""
    zone = zonefile.load_zone(source, ns.name)
    if keys:
        signer.sign_zone(zone, keys, now=now)
    zonefile.write_zone(zone, path, generic=True)


def build(directory: Path, port: int, *, now: float | None = None,
          progress=lambda msg: None) -> Federation:
    """Write every zone (signed where the plan says so) and its live-primary configuration, and
    return where everything is.

    Per zone: the source (``zones/NAME.zone``, friendly CAPS/LOAD text), the served snapshot
    (``file``: offline-signed, every resource in it, so peers can serve the federation without
    the demo running; the demo overwrites it with an export of the live zone once providers have
    registered), the live primary's base (``base``: regional zones without their resources,
    which arrive by signed UPDATE) and the ``cid serve auth --config`` file (``config``). The
    journal directory is emptied: the bases are new, and providers register again.
    """
    now = time.time() if now is None else now
    directory = directory.resolve()
    zone_dir, key_dir, journal_dir = directory / "zones", directory / "keys", directory / "journal"
    zone_dir.mkdir(parents=True, exist_ok=True)
    key_dir.mkdir(parents=True, exist_ok=True)
    if journal_dir.exists():
        shutil.rmtree(journal_dir)
    plan = namespaces()
    by_name = {ns.name: ns for ns in plan}
    serial = int(now)
    ds_of: dict[str, list] = {}
    built: dict[str, BuiltZone] = {}
    # Deepest first so each parent can include its children's DS.
    for ns in sorted(plan, key=lambda n: -len(dns.name.from_text(n.name))):
        ds_text = "".join(f"{_label(child, ns.name)} IN DS {ds.to_text()}\n"
                          for child in ns.children for ds in ds_of.get(child, []))
        source = zone_dir / f"{ns.name}zone"
        source.write_text(zone_source(ns, by_name, serial) + ds_text)
        keys: list[zkeys.ZoneKey] = []
        if ns.signed:
            key, zsk = _zone_keys(dns.name.from_text(ns.name), key_dir)
            keys = [key, zsk]
            ds_of[ns.name] = signer.ds_records(dns.name.from_text(ns.name), [key])
            progress(f"signed {ns.name:<20} KSK {key.key_tag:>5}  ZSK {zsk.key_tag:>5}")
        else:
            progress(f"wrote  {ns.name:<20} (unsigned)")
        served = zone_dir / f"{ns.name}zone.{'signed' if ns.signed else 'served'}"
        _write_served(ns, source, served, keys, now)
        base = served
        if ns.resources:
            base_source = zone_dir / f"{ns.name}zone.base-source"
            base_source.write_text(zone_source(ns, by_name, serial, resources=False) + ds_text)
            base = zone_dir / f"{ns.name}zone.base"
            _write_served(ns, base_source, base, keys, now)
        address = f"{ADDRESS_PREFIX}{ns.host}"
        provider_keys = (provider_key(ns.name),) if ns.resources else ()
        config = zone_dir / f"{ns.name}auth.toml"
        config.write_text(config_text(ns.name, f"{address}:{port}", base, key_dir, journal_dir / ns.name.rstrip("."),
                                      config, provider_keys[0] if provider_keys else None,
                                      [res.label for res in ns.resources]))
        built[ns.name] = BuiltZone(ns.name, served, address, port, ns.signed, config, base, provider_keys)
    anchor = directory / "trust-anchor.ds"
    anchor.write_text("".join(f"{APEX} 3600 IN DS {ds.to_text()}\n" for ds in ds_of[APEX]))
    identifiers = tuple(
        to_cid(dns.name.from_text(f"{res.label}.{ns.name}")) for ns in plan for res in ns.resources
    )
    fed = Federation(directory, APEX, anchor, tuple(built[ns.name] for ns in plan), identifiers)
    (directory / "federation.json").write_text(json.dumps(fed.to_json(), indent=2) + "\n")
    return fed
