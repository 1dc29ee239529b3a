"""Warm restart: the cache written to a file at shutdown and read back at start (msgpack).

A resolver that restarts cold sends every client's first question upstream again and re-fetches
and re-validates every zone's keys; Unbound offers ``dump_cache``/``load_cache`` for the same
reason. What is saved: RRsets with their RRSIGs and validation status, negative answers (their
NSEC/NSEC3 proofs re-enter the aggressive-negative index, RFC 8198), delegations and zone trust
— each with its absolute expiry, so a restored entry lives no longer than it would have.
Whole resolutions are not saved: they are rebuilt from the restored RRsets on first use.

The file holds validation verdicts, so it is trusted like the process itself: it is written
atomically with mode 0600, and ``load`` refuses a file that another user owns or that group or
others may write (a forged snapshot would be cache poisoning without a packet sent). A digest
over the payload catches a torn or truncated file; any fault means a cold start and one line
saying why, never a partly restored cache.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.name
import msgpack

from ..status import Status
from .cache import Cache
from .cache_entries import Delegation, NegativeEntry, RRsetEntry, ZoneTrust
from .packed import pack, unpack

MAGIC = b"cid-cache-snapshot\x00\x01"  # format name and version 1
_DIGEST = 32  # SHA-256 of the payload, right after MAGIC
MAX_BYTES = 1 << 30  # a snapshot larger than this is not ours (max_bytes caps the cache far below)
_STATUS = {s.value: s for s in Status}
RRSET, NEGATIVE, DELEGATION, TRUST = "r", "n", "d", "t"


class SnapshotError(ValueError):
    """A snapshot that cannot be used; str says which file and why (one line)."""


@dataclass(frozen=True)
class Restored:
    entries: int  # entries put back in the cache
    expired: int  # entries in the file that had expired by now (dropped)
    saved_at: float  # when the snapshot was written (the cache's clock)


def _entry(entry: Any) -> list | None:
    """One cache entry as a msgpack-able list, or None for kinds not saved."""
    if isinstance(entry, RRsetEntry):
        rrset, rrsigs = entry.records()
        return [RRSET, entry.status.value, entry.why, entry.expires, pack((rrset, rrsigs, *entry.proof))]
    if isinstance(entry, NegativeEntry):
        return [NEGATIVE, entry.status.value, entry.why, entry.expires, entry.name.to_wire(), entry.rdtype,
                entry.rcode, pack(entry.authority)]
    if isinstance(entry, Delegation):
        return [DELEGATION, entry.expires, entry.zone.to_wire(), [list(s) for s in entry.servers],
                [n.to_wire() for n in entry.nameservers]]
    if isinstance(entry, ZoneTrust):
        return [TRUST, entry.status.value, entry.why, entry.expires, entry.zone.to_wire(),
                pack((entry.dnskeys,))]
    return None  # NSEC/NSEC3 (re-derived from negative answers), resolutions (rebuilt)


def save(cache: Cache, path: str | Path) -> int:
    """Write every live entry of ``cache`` to ``path`` (atomically, mode 0600); returns how many."""
    path = Path(path)
    now = cache.clock()
    rows = [row for entry in cache.entries() if entry.expires > now and (row := _entry(entry)) is not None]
    payload = msgpack.packb({"saved": now, "entries": rows}, use_bin_type=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(MAGIC + hashlib.sha256(payload).digest() + payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)  # readers see the old file or the whole new one
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return len(rows)


def _read(path: Path) -> dict:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise  # no snapshot yet: the caller's cold start, not a damaged file
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SnapshotError(f"{path}: not a regular file")
        if info.st_uid != os.geteuid():
            raise SnapshotError(f"{path}: owned by uid {info.st_uid}, not by this process (uid {os.geteuid()})")
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise SnapshotError(f"{path}: writable by group or others (mode {stat.S_IMODE(info.st_mode):o});"
                                " a snapshot holds validation verdicts")
        if info.st_size > MAX_BYTES:
            raise SnapshotError(f"{path}: {info.st_size} bytes, more than a snapshot can be")
        data = f.read()
    if not data.startswith(MAGIC):
        raise SnapshotError(f"{path}: not a cid cache snapshot (or another version)")
    digest, payload = data[len(MAGIC):len(MAGIC) + _DIGEST], data[len(MAGIC) + _DIGEST:]
    if len(digest) != _DIGEST or hashlib.sha256(payload).digest() != digest:
        raise SnapshotError(f"{path}: damaged (digest mismatch: torn or truncated write)")
    try:
        body = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise SnapshotError(f"{path}: damaged ({exc})") from None
    if not isinstance(body, dict) or not isinstance(body.get("entries"), list):
        raise SnapshotError(f"{path}: damaged (no entry list)")
    return body


def _restore(cache: Cache, row: list, now: float) -> bool:
    """Put one row back; False when it has expired. Raises on a malformed row."""
    kind = row[0]
    if kind == RRSET:
        _, status, why, expires, wire = row
        if expires <= now:
            return False
        rrset, rrsigs, *proof = unpack(wire)
        cache.put_rrset(rrset, rrsigs, _STATUS[status], why, int(expires - now), tuple(proof))
    elif kind == NEGATIVE:
        _, status, why, expires, name, rdtype, rcode, wire = row
        if expires <= now:
            return False
        cache.put_negative(dns.name.from_wire(name, 0)[0], int(rdtype), str(rcode), tuple(unpack(wire)),
                           _STATUS[status], why, int(expires - now))
    elif kind == DELEGATION:
        _, expires, zone, servers, nameservers = row
        if expires <= now:
            return False
        cache.put_delegation(dns.name.from_wire(zone, 0)[0], tuple((str(a), int(p)) for a, p in servers),
                             tuple(dns.name.from_wire(n, 0)[0] for n in nameservers), int(expires - now))
    elif kind == TRUST:
        _, status, why, expires, zone, wire = row
        if expires <= now:
            return False
        (dnskeys,) = unpack(wire)
        cache.put_trust(dns.name.from_wire(zone, 0)[0], _STATUS[status], why, dnskeys, int(expires - now))
    else:
        raise ValueError(f"unknown entry kind {kind!r}")
    return True


def load(cache: Cache, path: str | Path) -> Restored:
    """Fill ``cache`` from the snapshot at ``path``; entries expired by now are skipped.

    Raises FileNotFoundError when there is none, SnapshotError when it cannot be used; in
    that case the cache is left empty (as it was), never partly restored."""
    path = Path(path)
    body = _read(path)
    now = cache.clock()
    restored = expired = 0
    try:
        for row in body["entries"]:
            if _restore(cache, row, now):
                restored += 1
            else:
                expired += 1
    except Exception as exc:  # any malformed row: a damaged file, whatever the field
        cache.flush()
        raise SnapshotError(f"{path}: damaged entry ({type(exc).__name__}: {exc})") from None
    saved = body.get("saved")
    return Restored(restored, expired, float(saved) if isinstance(saved, (int, float)) else 0.0)
