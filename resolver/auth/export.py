"""The live zone as a master file (``cid zone export``; the journal's snapshots).

One record per line, absolute names, names in DNSSEC canonical order, SOA first at the apex,
each RRset followed by its RRSIGs, CAPS/LOAD in RFC 3597 form (so ``dnssec-verify``, BIND,
NSD and Knot read it) — the layout ``cid zone sign`` writes (``render``). Hashed NSEC3
owners come in their canonical place among the other names.

``export_config(config, zone)`` rebuilds a zone from its journal directory without a running
server (base file + journal replay; SQLite's WAL lets it read while a server writes), so an
export always shows exactly what was acknowledged.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass

from .render import _Texts
from .zonedb import RRSIG, SOA, ZoneData, iter_rrsets
from . import wirename


def zone_lines(zone: ZoneData) -> Iterator[str]:
    texts = _Texts(True, None)
    keys = sorted({*dict.keys(zone.blobs), *dict.keys(zone.hashed)})
    for key in keys:
        blob = dict.get(zone.blobs, key)
        if blob is None:
            blob = dict.get(zone.hashed, key)
        owner = texts.name(wirename.name_of_wire(zone.owner_wire(key)))
        data, sigs = [], {}
        for rrset in iter_rrsets(blob):
            if rrset.rdtype == RRSIG:
                sigs[rrset.covers] = rrset
            else:
                data.append(rrset)
        data.sort(key=lambda r: (r.rdtype != SOA, r.rdtype))
        order = [(r, sigs.pop(r.rdtype, None)) for r in data]
        order += [(None, s) for _, s in sorted(sigs.items())]
        for rrset, sig in order:
            for part in (rrset, sig):
                if part is None:
                    continue
                type_text = texts.type(part.rdtype)
                for rdata in part.rdatas:
                    rd = dns.rdata.from_wire(dns.rdataclass.IN, part.rdtype, rdata, 0, len(rdata))
                    yield f"{owner} {part.ttl} IN {type_text} {texts.rdata(rd)}\n"


def zone_text(zone: ZoneData) -> str:
    return "".join(zone_lines(zone))


def write(zone: ZoneData, path: str | Path) -> None:
    """Write the zone atomically (temporary file, fsync, rename)."""
    from .journal import fsync_write
    fsync_write(Path(path), (line.encode() for line in zone_lines(zone)))


def export_config(config, zone_name: dns.name.Name | str) -> ZoneData:
    """The zone as its journal directory says it is now (see the module text). An edited zone
    file is the running server's business (it merges it): an export shows what is journaled."""
    from .livesetup import SetupError, open_zone, zone_origin
    from .store import ZoneStore
    name = dns.name.from_text(zone_name) if isinstance(zone_name, str) else zone_name
    for zone in config.zones:
        if zone_origin(zone) == name:
            live = open_zone(ZoneStore(), zone, config, merge=False)
            try:
                return live.data
            finally:
                live.close()
    raise SetupError(f"{config.path}: no zone {name}")


__all__ = ["export_config", "write", "zone_lines", "zone_text"]
