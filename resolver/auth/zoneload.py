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

import gc
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
         progress: Progress | None = None, now: float | None = None,
         jobs: int | None = None) -> Loaded:
    """Read, check and build the zone in ``path`` (see the module text). A large file is read
    by ``jobs`` processes (default: the cores this process may use), one byte range each
    (``parload``); the zone is the same whatever ``jobs`` is."""
    from . import parload
    started = time.monotonic()
    filename = str(path)
    if not Path(filename).is_file():
        raise ZoneLoadError(f"{filename}: no such file")
    origin = _origin(filename, origin)
    when = time.time() if now is None else now

    def new_part() -> Part:
        return Part(origin, strict, when)

    enabled = gc.isenabled()
    gc.disable()  # millions of short-lived containers, none in a cycle
    try:
        try:
            part, lines = parload.read(filename, origin, new_part, jobs=jobs, progress=progress)
        except masterfile.MasterFileError as exc:
            raise ZoneLoadError(str(exc)) from None
        except masterfile.NeedsDnspython:
            return _load_with_dnspython(filename, origin, started)
        builder = part.builder
        part.checks.finish(builder, filename)
        records = builder.records
        try:
            zone = builder.finish()
        except ValueError as exc:
            raise ZoneLoadError(f"{filename}: {exc}") from None
    finally:
        if enabled:
            gc.enable()
    if progress is not None:
        progress(lines, len(zone.blobs) + len(zone.hashed))
    return Loaded(zone, part.checks.warnings(), records, lines, time.monotonic() - started)


class Part:
    """The builder and the checks of the records read from a file, or from one byte range of
    it; ``export`` and ``absorb`` carry a range's part from a worker to the reader of the
    range before it."""

    def __init__(self, origin: dns.name.Name, strict: bool, now: float):
        self.builder = builder = ZoneBuilder(origin)
        self.checks = checks = _Checks(origin, strict, now)
        add_run = builder.add_run
        apex = builder.apex
        special = _SPECIAL
        outside = checks.outside
        check = checks.record
        good_times = checks.good_times

        def sink(key: bytes, wire: bytes, records: list, where: str) -> None:
            if not key.startswith(apex):
                for record in records:
                    outside(wire, where, record[4])
                return
            for record in records:
                rdtype = record[0]
                if rdtype in special:
                    if rdtype == _RRSIG and record[3][8:16] in good_times:
                        continue
                    check(key, wire, rdtype, record[1], record[3], where, record[4])
            add_run(key, wire, records)
        self.sink = sink

    def export(self) -> tuple:
        b = self.builder
        b.sets_of(b.apex)  # flushes
        return ((b.blobs, b.kinds, b.spelled, b.order_sorted, b.first_key, b._last_key, b.records),
                self.checks.export())

    def can_absorb(self, exported: tuple) -> bool:
        """Whether a later range's part fits this one without a check needing the lines again
        (a singleton RRset given differently on both sides: the error names the second line)."""
        return self.checks.agrees(exported[1])

    def absorb(self, exported: tuple) -> None:
        self.builder.merge(*exported[0])
        self.checks.absorb(exported[1])


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
        # RRSIG expiration + inception fields (8 bytes) known to be valid now: most of a zone's
        # signatures share a few windows, so the check is one lookup for them
        self.good_times: set[bytes] = set()

    def outside(self, wire: bytes, where: str, line: int) -> None:
        self.out_of_zone.append(f"{where}:{line}: ignoring out-of-zone data ({_text(wire)})")

    def record(self, key: bytes, wire: bytes, rdtype: int, covers: int, rdata: bytes,
               where: str, line: int) -> bool:
        """Checks of the special types; False means: do not add the record."""
        if rdtype == _RRSIG:
            expiration = int.from_bytes(rdata[8:12], "big")
            inception = int.from_bytes(rdata[12:16], "big")
            if inception <= self.now <= expiration:
                if len(self.good_times) < 4096:
                    self.good_times.add(rdata[8:16])
                return True
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

    # --- a range read by a worker (Part.export / absorb) -----------------------------------------

    def export(self) -> tuple:
        return (self.singletons, self.cnames, self.out_of_zone, self.maps, self.expired,
                self.future, self.first_expired, self.first_future)

    def agrees(self, exported: tuple) -> bool:
        mine = self.singletons
        return all(mine.get(k, v) == v for k, v in exported[0].items())

    def absorb(self, exported: tuple) -> None:
        singletons, cnames, out_of_zone, maps, expired, future, first_expired, first_future = exported
        self.singletons.update(singletons)
        for key, where in cnames.items():
            self.cnames.setdefault(key, where)
        self.out_of_zone += out_of_zone
        self.maps += maps
        self.expired += expired
        self.future += future
        if first_expired is not None and (self.first_expired is None or first_expired[0] < self.first_expired[0]):
            self.first_expired = first_expired
        if first_future is not None and (self.first_future is None or first_future[0] > self.first_future[0]):
            self.first_future = first_future

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
