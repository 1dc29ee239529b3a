"""Opening, recovering and reloading the live zones of a ``--config`` server.

Start-up of one zone with a journal directory (spec/registration.md §6):

1. first start: the configured zone file is copied into the journal directory as the
   **base** (``<zone>.<serial>.base``) and as the **file copy** (``<zone>.file``), both written
   atomically and fsynced; the journal's meta records them and the file's SHA-256;
2. every start: the base is loaded (never the configured file directly: an operator may edit
   that at any time) and the journal's diffs after ``base_seq`` are replayed in order, each
   checked to start at the serial the previous one ended at;
3. when the configured file differs from the file copy (its SHA-256), the operator edited it:
   the difference between the file copy and the new file (RRsets that changed, DNSSEC records
   and the SOA serial left out) is applied to the live zone as one signed change, journaled
   like any other, and the new file becomes the file copy. Dynamic registrations survive file
   edits, as with Knot's ``zonefile-load: difference-no-serial``.

``reload`` (SIGHUP) does the same for a running server: zones added to the configuration are
opened, zones removed are dropped, changed files are merged (step 3), keys and grants are
replaced, key directories re-read — while the listeners keep answering.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import dns.name

from . import resign, rollover, wirename, zoneload
from .authconfig import AuthConfig, ZoneConfig
from .journal import Journal, file_name, fsync_write
from .keys import KeyFileError, load_zone_keys
from .live import LiveZone, Request, apply_diff, soa_serial
from .onlinesign import RRsetSigner, canonical_rdata
from .primary import Primary
from .store import ZoneStore
from .zonedb import NSEC, NSEC3, NSEC3PARAM, RRSIG, SOA, ZoneData, decode_sets

log = logging.getLogger("cid.auth")

_SKIPPED = frozenset({RRSIG, NSEC, NSEC3, NSEC3PARAM})
DNSKEY = 48


class SetupError(Exception):
    """A zone cannot be opened; str() says which and why."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def zone_origin(zone: ZoneConfig) -> dns.name.Name:
    if zone.name is not None:
        return zone.name
    try:
        return zoneload._origin(str(zone.file), None)
    except zoneload.ZoneLoadError as exc:
        raise SetupError(str(exc)) from None


def _load(path: Path, origin: dns.name.Name, strict: bool) -> zoneload.Loaded:
    try:
        return zoneload.load(path, origin, strict=strict)
    except zoneload.ZoneLoadError as exc:
        raise SetupError(str(exc)) from None


def _keys(zone: ZoneConfig, origin: dns.name.Name):
    directory = zone.key_directory
    if not directory.is_dir():
        return []
    try:
        return load_zone_keys(directory, origin)
    except KeyFileError as exc:
        raise SetupError(str(exc)) from None


def open_zone(store: ZoneStore, zone: ZoneConfig, config: AuthConfig, *,
              clock: Callable[[], float] | None = None, merge: bool = True) -> LiveZone:
    """Load (and with a journal, recover) one zone, add it to ``store``; its LiveZone."""
    import time
    clock = clock or time.time
    origin = zone_origin(zone)
    if not zone.file.is_file():
        raise SetupError(f"{zone.file}: no such file")
    keys = _keys(zone, origin)
    journal = None
    if config.journal is None:
        loaded = _load(zone.file, origin, config.strict)
        data = loaded.zone
        _check_origin(zone, data)
        store.add(data)
        live = _live(store, data, keys, None, zone, config, clock)
        live.problem = live.problem or "no journal directory configured: updates are refused"
        live._file_stamp = sha256_of(zone.file)
        return live
    journal = Journal(config.journal, origin)
    try:
        base_name = journal.get_meta("base_file")
        directory = config.journal
        if base_name is None or not (directory / base_name).is_file():
            if base_name is not None:
                raise SetupError(f"{journal.path}: its base file {base_name} is missing; move the "
                                 "journal away to start afresh from the zone file")
            raw = zone.file.read_bytes()
            loaded = _load(zone.file, origin, config.strict)
            data = loaded.zone
            _check_origin(zone, data)
            serial = soa_serial(data)
            stem = file_name(origin)
            base = directory / f"{stem}.{serial}.base"
            copy = directory / f"{stem}.file"
            fsync_write(base, raw)
            fsync_write(copy, raw)
            journal.set_meta({"base_file": base.name, "base_serial": serial, "base_seq": journal.last_seq(),
                              "file_copy": copy.name, "file_sha256": hashlib.sha256(raw).hexdigest()})
        else:
            data = _load(directory / base_name, origin, False).zone
        store.add(data)
        live = _live(store, data, keys, journal, zone, config, clock)
        replayed = replay(store, live, journal)
        if replayed:
            log.info("zone %s: %d journal change(s) replayed, serial %d", origin, replayed, soa_serial(data))
        live.committed_serial = soa_serial(data)
        live.problem = live._check_keys()
        if merge and sha256_of(zone.file) != journal.get_meta("file_sha256"):
            merge_file_sync(live, zone, config)
        return live
    except BaseException:
        journal.close()
        raise


def _check_origin(zone: ZoneConfig, data: ZoneData) -> None:
    if zone.name is not None and data.origin != zone.name:
        raise SetupError(f"{zone.file}: zone {data.origin}, not {zone.name} as configured")


def _live(store, data, keys, journal, zone: ZoneConfig, config: AuthConfig, clock) -> LiveZone:
    live = LiveZone(store, data, keys=keys, journal=journal, browse_names=zone.browse,
                    caps_strict=zone.caps_strict, clock=clock, min_lease=config.min_lease,
                    max_lease=config.max_lease, config=zone)
    resign.manage(live, zone)  # re-signing before expiry (resign.py)
    rollover.manage(live, zone, config.journal, config.keyring())  # key state and rolls (rollover.py)
    return live


def replay(store: ZoneStore, live: LiveZone, journal: Journal) -> int:
    base_seq = int(journal.get_meta("base_seq", 0) or 0)
    count = 0
    for diff in journal.diffs_after(base_seq):
        serial = soa_serial(live.data)
        if diff.serial_from != serial:
            raise SetupError(f"{journal.path}: change #{diff.seq} starts at serial {diff.serial_from}, "
                             f"the zone is at {serial}")
        try:
            apply_diff(store, live.data, diff)
        except ValueError as exc:
            raise SetupError(f"{journal.path}: change #{diff.seq} cannot be replayed: {exc}") from None
        count += 1
    return count


def file_difference(old: ZoneData, new: ZoneData) -> list[tuple[dns.name.Name, int, int, list[bytes]]]:
    """RRsets that differ between two loads of a zone file (DNSSEC records and the SOA serial
    left out): (owner, type, ttl, rdatas of the new file, empty when it has none)."""
    out = []
    for key in sorted(set(old.blobs) | set(new.blobs)):
        o = _data_sets(dict.get(old.blobs, key))
        n = _data_sets(dict.get(new.blobs, key))
        if o == n:
            continue
        owner = wirename.name_of_wire(new.owner_wire(key) if key in new.blobs else old.owner_wire(key))
        for rdtype in sorted(set(o) | set(n)):
            a, b = o.get(rdtype), n.get(rdtype)
            if a == b:
                continue
            if rdtype == SOA and a is not None and b is not None and _soa_sans_serial(a) == _soa_sans_serial(b):
                continue
            out.append((owner, rdtype, b[0] if b else 0, list(b[1]) if b else []))
    return out


def _data_sets(blob: bytes | None) -> dict[int, list]:
    if not blob:
        return {}
    return {t: e for (t, c), e in decode_sets(blob).items() if c == 0 and t not in _SKIPPED}


def _soa_sans_serial(entry) -> tuple:
    rdata = next(iter(entry[1]))
    return entry[0], rdata[:-20] + rdata[-16:]


def merge_file_sync(live: LiveZone, zone: ZoneConfig, config: AuthConfig) -> int:
    """Step 3 of the module text, synchronously (start-up, before the sockets open)."""
    changes, raw = _file_changes(live, zone, config)
    if changes:
        commit = live.process([Request(rrsets=changes)])
        if commit is not None and live.journal is not None:
            live.journal.commit(commit)
            live.committed_serial = soa_serial(live.data)
    _file_merged(live, raw)
    return len(changes)


async def merge_file(live: LiveZone, zone: ZoneConfig, config: AuthConfig) -> int:
    """Step 3 on a running server: files read off the loop, the change through the batcher."""
    loop = asyncio.get_running_loop()
    changes, raw = await loop.run_in_executor(None, _file_changes, live, zone, config)
    if changes:
        request = await live.run(Request(rrsets=changes))
        if request.outcome.rcode:
            raise SetupError(f"{zone.file}: the edit cannot be applied: {request.outcome.reason}")
    await loop.run_in_executor(None, _file_merged, live, raw)
    return len(changes)


def _file_changes(live: LiveZone, zone: ZoneConfig, config: AuthConfig):
    raw = zone.file.read_bytes()
    new = _load(zone.file, live.origin, config.strict).zone
    old_copy = None
    if live.journal is not None:
        name = live.journal.get_meta("file_copy")
        if name is not None and (config.journal / name).is_file():
            old_copy = config.journal / name
    if old_copy is None:
        return [], raw
    old = _load(old_copy, live.origin, False).zone
    changes = file_difference(old, new)
    log.info("zone %s: %s changed: %d RRset(s) to merge", live.origin, zone.file, len(changes))
    return changes, raw


def _file_merged(live: LiveZone, raw: bytes) -> None:
    if live.journal is None:
        return
    copy = live.journal.directory / (live.journal.get_meta("file_copy") or f"{file_name(live.origin)}.file")
    fsync_write(copy, raw)
    live.journal.set_meta({"file_sha256": hashlib.sha256(raw).hexdigest(), "file_copy": copy.name})


def open_primary(config: AuthConfig, store: ZoneStore | None = None, *,
                 clock: Callable[[], float] | None = None) -> Primary:
    """Every zone of ``config`` opened (and recovered) into one Primary."""
    store = store if store is not None else ZoneStore()
    primary = Primary(store, config.keyring())
    try:
        for zone in config.zones:
            live = open_zone(store, zone, config, clock=clock)
            if primary.zone(live.origin) is not None:
                raise SetupError(f"{zone.file}: zone {live.origin} is configured twice")
            primary.add(live)
    except BaseException:
        for live in primary.zones.values():
            live.close()
        raise
    primary.config = config
    rollover.attach(primary)
    return primary


async def reload(primary: Primary, config: AuthConfig, *, clock: Callable[[], float] | None = None) -> list[str]:
    """SIGHUP (module text); the log lines of what changed."""
    import time
    clock = clock or time.time
    store = primary.store
    lines = []
    old_config: AuthConfig = getattr(primary, "config", config)
    primary.keyring = config.keyring()
    wanted = {}
    for zone in config.zones:
        wanted[wirename.key_of(zone_origin(zone))] = zone
    for key in list(primary.zones):
        if key not in wanted:
            live = primary.zones.pop(key)
            store.remove(live.origin)
            live.close()
            lines.append(f"zone {live.origin} removed")
    for key, zone in wanted.items():
        live = primary.zones.get(key)
        if live is None:
            loop = asyncio.get_running_loop()
            live = await loop.run_in_executor(None, _open_off_loop, zone, config, clock)
            live.store = store
            store.add(live.data)
            primary.add(live)
            live.start()
            lines.append(f"zone {live.origin} added ({len(live.data.blobs)} names)")
            continue
        live.config = zone
        live.browse = zone.browse
        live.caps_strict = zone.caps_strict
        live.min_lease, live.max_lease = config.min_lease, config.max_lease
        keys = _keys(zone, live.origin)
        roller = getattr(live.maintenance, "roller", None)
        if live.maintenance is not None:
            live.maintenance.resigner.refresh = zone.resign_refresh
            live.maintenance.resigner.batch = zone.resign_batch
        if roller is not None:  # keys follow the key state (rollover.py)
            roller.zone = zone
            roller.load()
            live.maintenance.poke()
        elif [k.key_tag for k in keys] != [k.key_tag for k in live.keys]:
            live.keys = keys
            signer = RRsetSigner(keys, clock=live.clock, validity=zone.signature_validity) if keys else None
            if live.maintenance is not None:
                live.maintenance.set_signer(signer)
            else:
                live.signer = signer
            live.our_dnskeys = {canonical_rdata(DNSKEY, k.dnskey.to_wire()) for k in keys}
            lines.append(f"zone {live.origin}: keys {', '.join(str(k.key_tag) for k in keys) or 'none'}")
        if live.journal is not None and sha256_of(zone.file) != live.journal.get_meta("file_sha256"):
            count = await merge_file(live, zone, config)
            lines.append(f"zone {live.origin}: {zone.file} merged ({count} RRset(s)), serial {soa_serial(live.data)}")
        elif live.journal is None and _changed_static(live, zone):
            loop = asyncio.get_running_loop()
            loaded = await loop.run_in_executor(None, _load, zone.file, live.origin, config.strict)
            store.add(loaded.zone)
            fresh = _live(store, loaded.zone, live.keys, None, zone, config, live.clock)
            fresh.problem = live.problem
            fresh._file_stamp = live._file_stamp
            live.close()
            primary.add(fresh)
            lines.append(f"zone {fresh.origin} reloaded from {zone.file}")
        live.problem = live.failed or live._check_keys() if live.journal is not None else live.problem
    rollover.attach(primary)
    if old_config.listen != config.listen:
        lines.append("listen addresses changed: restart the server to apply them")
    primary.config = config
    return lines


def _open_off_loop(zone: ZoneConfig, config: AuthConfig, clock) -> LiveZone:
    scratch = ZoneStore()  # loaded and recovered here, then added to the served store
    return open_zone(scratch, zone, config, clock=clock)


def _changed_static(live: LiveZone, zone: ZoneConfig) -> bool:
    stamp = getattr(live, "_file_stamp", None)
    current = sha256_of(zone.file)
    live._file_stamp = current
    return stamp is not None and stamp != current


__all__ = ["SetupError", "file_difference", "merge_file", "open_primary", "open_zone", "reload", "replay"]
