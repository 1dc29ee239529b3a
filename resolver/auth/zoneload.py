"""Loading a master file for serving: read (``masterfile``), check, build (``zonedb``).

``load`` returns a complete ``ZoneData`` or raises ``ZoneLoadError``: a zone with an error
loads nothing, so a server that is reloading keeps serving its old data. What is checked, and
how it is reported, follows ``named-checkzone`` (BIND 9.18) and ``kzonecheck`` (Knot 3.2) —
spec/authoritative.md §2 has the table:

* errors (``<path>:<line>: <message>``): syntax and RDATA errors; an SOA below the apex
  ("SOA record not at top of zone"); a second, different SOA, CNAME or DNAME at one name
  ("multiple RRs of singleton type"); a CNAME beside other data ("CNAME and other data",
  RRSIG and NSEC excepted, RFC 4035 §2.5); no SOA or no NS at the apex;
* warnings: data outside the zone is ignored ("ignoring out-of-zone data", as both peers do);
  signatures that have expired or are not yet valid (how many, which first and when: the zone
  is served as it is, as NSD would); CAPS/LOAD maps that break spec/capabilities.md (wrong type,
  out of range, unknown choice; ``validate_caps``), errors with ``strict``;
* silently, as both peers: data below a zone cut other than glue is occluded (loaded, never
  served: queries get the referral).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dns.name
import dns.rdatatype

from .. import records
from ..records import capsmap
from ..records.registry import validate_caps, validate_load
from . import masterfile, wirename
from .zonedb import ZoneBuilder, ZoneData

MAX_REPORTED = 20  # warnings of one kind shown before "... and N more"
_SOA, _CNAME, _DNAME, _NS = 6, 5, 39, 2
_RRSIG, _NSEC = 46, 47
_CAPS, _LOAD = int(records.CAPS), int(records.LOAD)
_SPECIAL = frozenset({_SOA, _CNAME, _DNAME, _RRSIG, _CAPS, _LOAD})
_SINGLETON_NAMES = {_SOA: "SOA", _CNAME: "CNAME", _DNAME: "DNAME"}
# May share a name with a CNAME (RFC 4035 §2.5, RFC 2181 §10.1: DNSSEC's own records).
_BESIDE_CNAME = frozenset({_CNAME, _RRSIG, _NSEC})


class ZoneLoadError(Exception):
    """The zone cannot be served; str() names the file and, when known, the line."""


@dataclass
class Loaded:
    zone: ZoneData
    warnings: list[str] = field(default_factory=list)
    records: int = 0
    lines: int = 0
    seconds: float = 0.0


Progress = Callable[[int, int], None]  # (lines read, names so far)


def load(path: str | Path, origin: str | dns.name.Name | None = None, *, strict: bool = False,
         progress: Progress | None = None, now: float | None = None) -> Loaded:
    """Read, check and build the zone in ``path`` (see the module text)."""
    started = time.monotonic()
    filename = str(path)
    if not Path(filename).is_file():
        raise ZoneLoadError(f"{filename}: no such file")
    origin = _origin(filename, origin)
    checks = _Checks(origin, strict, time.time() if now is None else now)
    builder = ZoneBuilder(origin)
    add = builder.add
    apex = builder.apex
    special = _SPECIAL
    outside = checks.outside
    check = checks.record

    def sink(key: bytes, wire: bytes, rdtype: int, covers: int, ttl: int, rdata: bytes,
             where: str, line: int) -> None:
        if not key.startswith(apex):
            outside(wire, where, line)
            return
        if rdtype in special and not check(key, wire, rdtype, covers, rdata, where, line):
            return
        add(key, wire, rdtype, covers, ttl, rdata)

    report = None
    if progress is not None:
        def report(lines: int) -> None:
            progress(lines, len(builder.blobs))
    reader = masterfile.Reader(origin, sink, progress=report)
    try:
        reader.read(filename)
    except masterfile.MasterFileError as exc:
        raise ZoneLoadError(str(exc)) from None
    except masterfile.NeedsDnspython:
        return _load_with_dnspython(filename, origin, started)
    checks.finish(builder, filename)
    try:
        zone = builder.finish()
    except ValueError as exc:
        raise ZoneLoadError(f"{filename}: {exc}") from None
    if progress is not None:
        progress(reader.lines_read, len(zone.blobs) + len(zone.hashed))
    return Loaded(zone, checks.warnings(), builder.records, reader.lines_read,
                  time.monotonic() - started)


def _origin(filename: str, origin: str | dns.name.Name | None) -> dns.name.Name:
    from .zonefile import _origin_from_text  # the same rule as ``cid zone`` commands use
    if isinstance(origin, str):
        try:
            return dns.name.from_text(origin)
        except dns.exception.DNSException as exc:
            raise ZoneLoadError(f"{filename}: bad origin {origin!r}: {exc}") from None
    if origin is not None:
        return origin
    with open(filename, encoding="utf-8", errors="replace") as f:
        head = f.read(1 << 16)
    found = _origin_from_text(head, filename)
    if found is None:
        raise ZoneLoadError(f"{filename}: cannot tell the zone origin (no $ORIGIN and no absolute "
                            "SOA owner); give it explicitly")
    return found


def _load_with_dnspython(filename: str, origin: dns.name.Name, started: float) -> Loaded:
    """$GENERATE and the like: dnspython's reader (its checks: out-of-zone data, CNAME and other
    data and syntax are errors there), then the compact form."""
    from .store import from_zone
    from .zonefile import ZoneFileError, load_zone
    try:
        zone = load_zone(filename, origin, fast=False)
        data = from_zone(zone)
    except (ZoneFileError, ValueError) as exc:
        raise ZoneLoadError(str(exc)) from None
    data.source = None
    records_count = sum(len(rds) for node in zone.nodes.values() for rds in node.rdatasets)
    return Loaded(data, [], records_count, 0, time.monotonic() - started)


class _Checks:
    """The per-record checks of the module text, and their report."""

    def __init__(self, origin: dns.name.Name, strict: bool, now: float):
        self.origin = origin
        self.apex = wirename.key_of(origin)
        self.strict = strict
        self.now = int(now)
        self.singletons: dict[tuple[bytes, int], bytes] = {}
        self.cnames: dict[bytes, tuple[str, int, bytes]] = {}
        self.out_of_zone: list[str] = []
        self.maps: list[str] = []
        self.map_verdicts: dict[tuple[int, bytes], list[str]] = {}
        self.expired = 0
        self.future = 0
        self.first_expired: tuple[int, str] | None = None
        self.first_future: tuple[int, str] | None = None

    def outside(self, wire: bytes, where: str, line: int) -> None:
        self.out_of_zone.append(f"{where}:{line}: ignoring out-of-zone data ({_text(wire)})")

    def record(self, key: bytes, wire: bytes, rdtype: int, covers: int, rdata: bytes,
               where: str, line: int) -> bool:
        """Checks of the special types; False means: do not add the record."""
        if rdtype == _RRSIG:
            expiration = int.from_bytes(rdata[8:12], "big")
            inception = int.from_bytes(rdata[12:16], "big")
            if expiration < self.now:
                self.expired += 1
                if self.first_expired is None or expiration < self.first_expired[0]:
                    self.first_expired = (expiration, f"{_text(wire)} {dns.rdatatype.to_text(covers)}")
            if inception > self.now:
                self.future += 1
                if self.first_future is None or inception > self.first_future[0]:
                    self.first_future = (inception, f"{_text(wire)} {dns.rdatatype.to_text(covers)}")
            return True
        if rdtype in _SINGLETON_NAMES:
            if rdtype == _SOA and key != self.apex:
                raise ZoneLoadError(f"{where}:{line}: SOA record not at top of zone ({_text(wire)})")
            seen = self.singletons.get((key, rdtype))
            if seen is not None and seen != rdata:
                raise ZoneLoadError(f"{where}:{line}: {_text(wire)}: multiple RRs of singleton type")
            self.singletons[(key, rdtype)] = rdata
            if rdtype == _CNAME:
                self.cnames.setdefault(key, (where, line, wire))
            return True
        # CAPS / LOAD: decoded (a map that does not decode never gets here: the reader refused
        # it) and held to the key registry, once per distinct map.
        verdict = self.map_verdicts.get((rdtype, rdata))
        if verdict is None:
            try:
                mapping = capsmap.decode(rdata)
            except ValueError as exc:
                raise ZoneLoadError(f"{where}:{line}: {exc}") from None
            verdict = validate_load(mapping) if rdtype == _LOAD else validate_caps(mapping)
            if len(self.map_verdicts) < 65536:
                self.map_verdicts[(rdtype, rdata)] = verdict
        if verdict:
            kind = "LOAD" if rdtype == _LOAD else "CAPS"
            message = f"{where}:{line}: {_text(wire)} {kind}: {'; '.join(verdict)}"
            if self.strict:
                raise ZoneLoadError(message + " (--strict)")
            self.maps.append(message)
        return True

    def finish(self, builder: ZoneBuilder, filename: str) -> None:
        for key, (where, line, wire) in self.cnames.items():
            others = {t for t, _ in builder.sets_of(key)} - _BESIDE_CNAME
            if others:
                raise ZoneLoadError(f"{where}:{line}: {_text(wire)}: CNAME and other data")
        apex = builder.sets_of(self.apex)
        if (_SOA, 0) not in apex:
            raise ZoneLoadError(f"{filename}: zone {self.origin} has no SOA record at its apex")
        if (_NS, 0) not in apex:
            raise ZoneLoadError(f"{filename}: zone {self.origin} has no NS records at its apex")

    def warnings(self) -> list[str]:
        out = _capped(self.out_of_zone) + _capped(self.maps)
        if self.expired:
            when, what = self.first_expired
            out.append(f"{self.origin}: {self.expired} signature(s) have expired, the first at "
                       f"{_when(when)} ({what}); validators will treat that data as bogus")
        if self.future:
            when, what = self.first_future
            out.append(f"{self.origin}: {self.future} signature(s) are not yet valid, the last "
                       f"until {_when(when)} ({what}); validators will treat that data as bogus")
        return out


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_REPORTED:
        return lines
    return lines[:MAX_REPORTED] + [f"... and {len(lines) - MAX_REPORTED} more like these"]


def _text(wire: bytes) -> str:
    return wirename.name_of_wire(wire).to_text()


def _when(posix: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(posix))
