"""The journal of a live zone: every change as a diff, and the lease table (spec/registration.md §6).

One SQLite database per zone, ``<journal dir>/<zone>.db`` (the zone name without its final
dot, lower case; the root zone is ``root.db``), in WAL mode with ``synchronous=FULL``: a
commit returns only once the WAL is on disk (one fsync per transaction), so an update is
acknowledged only after it is durable, against a crash of the machine as well as of the
process. Concurrent updates share one transaction (group commit: one fsync, then all the
replies). ``synchronous=NORMAL`` would not fsync at commit in WAL mode and could lose the
last acknowledged updates on power loss, which the durability promise forbids.

Tables:

* ``diffs(seq, serial_from, serial_to, time, removed, added)``: one row per committed change
  of the zone, ``removed`` and ``added`` each a run of RRs in uncompressed wire form (owner,
  TYPE, CLASS, TTL, RDLENGTH, RDATA) — the old SOA first in ``removed``, the new SOA first in
  ``added``, exactly what an IXFR (RFC 1995 §4) sends for the step;
* ``leases(okey, owner, rdtype, rdata, expires, key)``: RRs that expire (RFC 9664), by
  canonical owner key, type and RDATA; ``expires`` is seconds since the epoch;
* ``meta(key, value)``: ``zone``, ``base_file`` (the master file the diffs after ``base_seq``
  apply to, kept in the journal directory), ``base_serial``, ``base_seq``, ``file_sha256``
  (the configured zone file as last merged) and ``file_copy``.

Readers (``changes_since``) use connections of their own: WAL lets them read the last
committed state while a commit is in progress.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from . import wirename

SOA = 6
_RR = struct.Struct("!HHIH")
SCHEMA = """
create table if not exists meta(key text primary key, value);
create table if not exists diffs(seq integer primary key autoincrement, serial_from integer not null,
    serial_to integer not null, time real not null, removed blob not null, added blob not null);
create index if not exists diffs_serial_from on diffs(serial_from);
create table if not exists leases(okey blob not null, owner blob not null, rdtype integer not null,
    rdata blob not null, expires real not null, key text, primary key(okey, rdtype, rdata));
create index if not exists leases_expires on leases(expires);
"""


def rr_wire(owner_wire: bytes, rdtype: int, ttl: int, rdata: bytes) -> bytes:
    """One RR in uncompressed wire form, class IN."""
    return owner_wire + _RR.pack(rdtype, 1, ttl, len(rdata)) + rdata


def split_rrs(blob: bytes) -> list[bytes]:
    """The RRs of a run made by ``rr_wire``."""
    out = []
    pos, end = 0, len(blob)
    while pos < end:
        start = pos
        while blob[pos]:
            pos += 1 + blob[pos]
        pos += 1
        rdlen = struct.unpack_from("!H", blob, pos + 8)[0]
        pos += 10 + rdlen
        out.append(blob[start:pos])
    return out


def parse_rr(rr: bytes) -> tuple[bytes, int, int, bytes]:
    """(owner wire, rdtype, ttl, rdata) of one RR made by ``rr_wire``."""
    pos = 0
    while rr[pos]:
        pos += 1 + rr[pos]
    pos += 1
    rdtype, _, ttl, rdlen = _RR.unpack_from(rr, pos)
    return rr[:pos], rdtype, ttl, rr[pos + 10:pos + 10 + rdlen]


@dataclass(frozen=True)
class Diff:
    """One committed change of a zone: serial ``serial_from`` → ``serial_to``.

    ``removed`` and ``added`` are RRs in uncompressed wire form (``parse_rr`` splits one);
    the old SOA is the first of ``removed``, the new SOA the first of ``added`` (RFC 1995 §4
    order). RRSIG, NSEC and NSEC3 changes are included: applying ``removed`` then ``added``
    to the zone at ``serial_from`` gives exactly the zone at ``serial_to``.
    """

    serial_from: int
    serial_to: int
    removed: tuple[bytes, ...]
    added: tuple[bytes, ...]
    time: float = 0.0
    seq: int = 0

    def records(self, which: str = "added") -> Iterator[tuple[dns.name.Name, int, int, bytes]]:
        """(owner, rdtype, ttl, rdata wire) of ``removed`` or ``added``."""
        for rr in getattr(self, which):
            owner, rdtype, ttl, rdata = parse_rr(rr)
            yield wirename.name_of_wire(owner), rdtype, ttl, rdata

    def rrsets(self, which: str = "added") -> list[dns.rrset.RRset]:
        """``removed`` or ``added`` as dnspython RRsets (in order, one per owner and type)."""
        out: dict[tuple, dns.rrset.RRset] = {}
        for owner, rdtype, ttl, rdata in self.records(which):
            rd = dns.rdata.from_wire(dns.rdataclass.IN, rdtype, rdata, 0, len(rdata))
            key = (owner, rdtype, rd.covers())
            rrset = out.get(key)
            if rrset is None:
                rrset = out[key] = dns.rrset.RRset(owner, dns.rdataclass.IN, rdtype, rd.covers())
            rrset.add(rd, ttl)
        return list(out.values())


@dataclass
class Lease:
    okey: bytes  # canonical key of the owner (wirename)
    owner: bytes  # owner wire form as spelled
    rdtype: int
    rdata: bytes
    expires: float
    key: str | None = None

    @property
    def ident(self) -> tuple[bytes, int, bytes]:
        return self.okey, self.rdtype, self.rdata


@dataclass
class Commit:
    """What one transaction writes."""

    diff: Diff | None = None
    leases: list[Lease] = field(default_factory=list)  # upserts
    lease_deletes: list[tuple[bytes, int, bytes]] = field(default_factory=list)
    meta: dict[str, object] = field(default_factory=dict)


def file_name(zone: dns.name.Name) -> str:
    text = zone.to_text(omit_final_dot=True).lower()
    return "root" if text in ("", ".") else text.replace("/", "_")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
    conn.execute("pragma journal_mode=wal")
    conn.execute("pragma synchronous=full")
    return conn


class Journal:
    """The journal database of one zone (module text)."""

    def __init__(self, directory: str | Path, zone: dns.name.Name):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.zone = zone
        self.path = self.directory / f"{file_name(zone)}.db"
        self._lock = threading.Lock()
        self.commits = 0
        self.conn = _connect(self.path)
        self.conn.executescript(SCHEMA)
        stored = self.get_meta("zone")
        if stored is None:
            self.set_meta({"zone": zone.to_text()})
        elif dns.name.from_text(str(stored)) != zone:
            raise ValueError(f"{self.path}: journal of zone {stored}, not {zone}")

    # --- meta -----------------------------------------------------------------------------

    def get_meta(self, key: str, default=None):
        with self._lock:
            row = self.conn.execute("select value from meta where key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def set_meta(self, values: dict[str, object]) -> None:
        self.commit(Commit(meta=values))

    # --- writing ----------------------------------------------------------------------------

    def commit(self, commit: Commit) -> int | None:
        """Write one transaction; returns the diff's seq. Durable when this returns."""
        with self._lock:
            conn = self.conn
            conn.execute("begin immediate")
            try:
                seq = None
                diff = commit.diff
                if diff is not None:
                    cur = conn.execute(
                        "insert into diffs(serial_from, serial_to, time, removed, added) values (?,?,?,?,?)",
                        (diff.serial_from, diff.serial_to, diff.time or time.time(),
                         b"".join(diff.removed), b"".join(diff.added)))
                    seq = cur.lastrowid
                if commit.lease_deletes:
                    conn.executemany("delete from leases where okey = ? and rdtype = ? and rdata = ?",
                                     commit.lease_deletes)
                if commit.leases:
                    conn.executemany(
                        "insert or replace into leases(okey, owner, rdtype, rdata, expires, key) "
                        "values (?,?,?,?,?,?)",
                        [(l.okey, l.owner, l.rdtype, l.rdata, l.expires, l.key) for l in commit.leases])
                if commit.meta:
                    conn.executemany("insert or replace into meta(key, value) values (?, ?)",
                                     list(commit.meta.items()))
                conn.execute("commit")
            except BaseException:
                conn.execute("rollback")
                raise
            self.commits += 1
            return seq

    # --- reading ----------------------------------------------------------------------------

    def diffs_after(self, seq: int) -> list[Diff]:
        with self._lock:
            rows = self.conn.execute(
                "select seq, serial_from, serial_to, time, removed, added from diffs where seq > ? "
                "order by seq", (seq,)).fetchall()
        return [_diff(row) for row in rows]

    def last_seq(self) -> int:
        with self._lock:
            row = self.conn.execute("select max(seq) from diffs").fetchone()
        return row[0] or 0

    def leases(self) -> list[Lease]:
        with self._lock:
            rows = self.conn.execute(
                "select okey, owner, rdtype, rdata, expires, key from leases order by expires").fetchall()
        return [Lease(*row) for row in rows]

    def changes_since(self, serial: int) -> list[Diff] | None:
        """The committed diffs that lead from ``serial`` to the newest committed serial, oldest
        first; ``[]`` when ``serial`` is the newest; None when the journal cannot say (the
        serial is not one it went through: send the whole zone, AXFR)."""
        conn = _connect(self.path)  # a reader of its own: never waits for the writer's commit
        try:
            last = conn.execute("select serial_to from diffs order by seq desc limit 1").fetchone()
            if last is None:
                base = conn.execute("select value from meta where key = 'base_serial'").fetchone()
                return [] if base is not None and int(base[0]) == serial else None
            if last[0] == serial:
                return []
            start = conn.execute("select max(seq) from diffs where serial_from = ?", (serial,)).fetchone()[0]
            if start is None:
                return None
            rows = conn.execute(
                "select seq, serial_from, serial_to, time, removed, added from diffs where seq >= ? "
                "order by seq", (start,)).fetchall()
        finally:
            conn.close()
        diffs = [_diff(row) for row in rows]
        expected = serial
        for diff in diffs:
            if diff.serial_from != expected:
                return None  # a gap (a reload outside the journal): the chain is broken
            expected = diff.serial_to
        return diffs

    def close(self) -> None:
        with self._lock:
            self.conn.close()


def _diff(row) -> Diff:
    seq, serial_from, serial_to, at, removed, added = row
    return Diff(serial_from, serial_to, tuple(split_rrs(removed)), tuple(split_rrs(added)), at, seq)


# Journals of the zones this process serves, by zone name: ``changes_since(zone, serial)``.
_OPEN: dict[dns.name.Name, Journal] = {}


def register(journal: Journal) -> None:
    _OPEN[journal.zone] = journal


def unregister(journal: Journal) -> None:
    if _OPEN.get(journal.zone) is journal:
        del _OPEN[journal.zone]


def changes_since(zone: dns.name.Name | str, serial: int) -> list[Diff] | None:
    """The diffs from ``serial`` to the zone's newest committed serial (see
    ``Journal.changes_since``); None when the zone has no journal here or it cannot say."""
    name = dns.name.from_text(zone) if isinstance(zone, str) else zone
    journal = _OPEN.get(name)
    return None if journal is None else journal.changes_since(serial)


def fsync_write(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write ``path`` atomically and durably (temporary file, fsync, rename, fsync the dir)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        if isinstance(data, bytes):
            out.write(data)
        else:
            for chunk in data:
                out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["Commit", "Diff", "Journal", "Lease", "changes_since", "file_name", "parse_rr",
           "rr_wire", "split_rrs"]
