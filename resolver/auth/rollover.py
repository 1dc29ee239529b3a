"""Key rollover on a live primary: ZSK by pre-publication, KSK by double-DS (spec/dnssec.md §6).

Key state lives in a small SQLite file beside the zone's journal (``<zone>.keys.sqlite``):
one row per key (published in DNSKEY, active = signing, in the wanted DS set) and one row per
roll in progress (role, old and new key, step, when the step is due). ``cid zone rollover``
writes the new key's row (and then its key files) and the roll; the running server advances
the roll on its timer, each wait taken from the zone's TTLs when the step is done:

ZSK (RFC 6781 §4.1.1.1): publish the new DNSKEY → wait DNSKEY TTL + propagation delay →
sign with the new key (every RRset signed by the old one re-signed, in batches) → wait the
largest TTL in the zone + propagation delay → remove the old DNSKEY.

KSK (RFC 6781 §4.1.2): CDS/CDNSKEY (RFC 7344, RFC 8078) name old and new key and, when the
parent zone is served here, its DS set is changed to match → wait the parent's DS TTL +
propagation → DNSKEY swap (the new KSK signs it) → wait DNSKEY TTL + propagation → CDS/CDNSKEY
and the parent's DS name the new key only.

Key files without a row (a zone's keys before its first roll) are taken as published, active
and, for KSKs, in the DS set. A retired key's files move to ``retired/`` in the key directory.
"""

from __future__ import annotations

import sqlite3
import struct
import time
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from . import wirename
from .journal import file_name
from .keys import KSK_FLAGS, ZSK_FLAGS, KeyFileError, ZoneKey, generate_key, load_zone_keys, write_key_files
from .live import LiveZone, Request
from .onlinesign import RRsetSigner, canonical_rdata
from .signer import ds_records
from .zonedb import DS, RRSIG, decode_sets

DNSKEY, CDS, CDNSKEY = 48, 59, 60
ZSK_STEPS = ("publish", "activate", "resign", "remove")
KSK_STEPS = ("ds-add", "swap", "ds-remove")


class RolloverError(Exception):
    """A roll cannot be started; str() is one line for the user."""


class KeyState:
    """The key and roll rows of one zone (module text)."""

    def __init__(self, directory: Path, origin: dns.name.Name):
        self.path = Path(directory) / f"{file_name(origin)}.keys.sqlite"
        self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30, check_same_thread=False)
        self.db.execute("pragma journal_mode=wal")
        self.db.executescript(
            "create table if not exists key (algorithm integer, tag integer, ksk integer, published integer,"
            " active integer, ds integer, retired integer default 0, changed real,"
            " primary key (algorithm, tag));"
            "create table if not exists roll (role text primary key, algorithm integer, old integer,"
            " new integer, step text, due real, started real);")

    def keys(self) -> dict[tuple[int, int], dict]:
        rows = self.db.execute("select algorithm, tag, ksk, published, active, ds, retired from key")
        return {(a, t): {"ksk": k, "published": p, "active": ac, "ds": d, "retired": r}
                for a, t, k, p, ac, d, r in rows}

    def put(self, key: ZoneKey, now: float, **fields: int) -> None:
        row = {"published": 0, "active": 0, "ds": 0, "retired": 0, **fields}
        self.db.execute("insert or replace into key values (?, ?, ?, ?, ?, ?, ?, ?)",
                        (key.algorithm, key.key_tag, int(key.is_ksk), row["published"], row["active"],
                         row["ds"], row["retired"], now))

    def set(self, algorithm: int, tag: int, now: float, **fields: int) -> None:
        for name, value in fields.items():
            assert name in ("published", "active", "ds", "retired")
            self.db.execute(f"update key set {name} = ?, changed = ? where algorithm = ? and tag = ?",
                            (value, now, algorithm, tag))

    def rolls(self) -> list[dict]:
        rows = self.db.execute("select role, algorithm, old, new, step, due, started from roll")
        return [dict(zip(("role", "algorithm", "old", "new", "step", "due", "started"), r)) for r in rows]

    def advance(self, role: str, step: str | None, due: float = 0.0) -> None:
        if step is None:
            self.db.execute("delete from roll where role = ?", (role,))
        else:
            self.db.execute("update roll set step = ?, due = ? where role = ?", (step, due, role))

    def close(self) -> None:
        self.db.close()


def _split(keys: list[ZoneKey], state: KeyState | None, now: float) -> tuple[list[ZoneKey], list[ZoneKey]]:
    """(active, published) keys; unknown key files adopted as both (module text)."""
    if state is None:
        return keys, keys
    rows = state.keys()
    active, published = [], []
    for key in keys:
        row = rows.get((key.algorithm, key.key_tag))
        if row is None:
            state.put(key, now, published=1, active=1, ds=int(key.is_ksk))
            row = {"published": 1, "active": 1, "retired": 0}
        if row["retired"]:
            continue
        if row["active"]:
            active.append(key)
        if row["published"]:
            published.append(key)
    return active, published


def _ttl(live: LiveZone, key: bytes, rdtype: int, default: int) -> int:
    blob = dict.get(live.data.blobs, key)
    entry = decode_sets(blob).get((rdtype, 0)) if blob else None
    return entry[0] if entry else default


def _ds_wire(origin: dns.name.Name, keys: list[ZoneKey], rdtype: int = DS) -> list[bytes]:
    return [dns.rdata.from_text(dns.rdataclass.IN, rdtype, ds.to_text()).to_wire()
            for ds in ds_records(origin, [k.dnskey for k in keys], "SHA256")]


class Roller:
    """Advances the rolls of one live zone; one of its Upkeep's steps (module text)."""

    def __init__(self, live: LiveZone, zone, state: KeyState, primary=None, tsig=None):
        self.live, self.zone, self.state, self.primary = live, zone, state, primary
        self.tsig = tsig  # policy.TsigKey for UPDATEs to a parent served elsewhere
        self.files: list[ZoneKey] = []
        self.log: list[str] = []  # steps done (status, tests)

    def load(self, check: bool = True) -> None:
        """Re-read the key directory and state; the zone's signer follows the active keys."""
        live = self.live
        try:
            self.files = load_zone_keys(self.zone.key_directory, live.origin) if self.zone.key_directory.is_dir() else []
        except KeyFileError as exc:
            live.problem = str(exc)
            return
        active, published = _split(self.files, self.state, live.clock())
        if [k.key_tag for k in active] != [k.key_tag for k in live.keys] or live.signer is None:
            live.keys = active
            signer = RRsetSigner(active, clock=live.clock, validity=self.zone.signature_validity) if active else None
            live.maintenance.set_signer(signer)
        live.our_dnskeys = {canonical_rdata(DNSKEY, k.dnskey.to_wire()) for k in published}
        if live.journal is not None and not live.failed:
            # Mid-step (the signer changed, the DNSKEY RRset not yet): checked once it is.
            live.problem = live._check_keys() if check else None

    def key(self, algorithm: int, tag: int) -> ZoneKey | None:
        return next((k for k in self.files if k.algorithm == algorithm and k.key_tag == tag), None)

    def next_due(self) -> float | None:
        dues = [r["due"] for r in self.state.rolls()]
        return min(dues) if dues else None

    async def step(self) -> None:
        # A step cut short (kill -9 between the key state and the zone change) is done again
        # from its start: every step is idempotent, and the key check waits until it is done.
        self.load(check=not self.state.rolls())
        try:
            for _ in range(20):  # bounded: steps due at once run one after another
                now = self.live.clock()
                due = [r for r in self.state.rolls() if r["due"] <= now]
                if not due:
                    return
                for roll in due:
                    await self._step(roll, now)
        finally:
            self.load()

    async def _step(self, roll: dict, now: float) -> None:
        live, zone, state = self.live, self.zone, self.state
        alg, role, step = roll["algorithm"], roll["role"], roll["step"]
        old, new = self.key(alg, roll["old"]), self.key(alg, roll["new"])
        if new is None or old is None:
            return  # key files not (yet) there: the command writes them after the row
        apex = live.data.apex
        dnskey_ttl = _ttl(live, apex, DNSKEY, 3600)
        wait = zone.propagation_delay
        if step == "publish":
            state.set(alg, new.key_tag, now, published=1)
            await self._dnskeys()
            state.advance(role, "activate", now + dnskey_ttl + wait)
        elif step == "activate":
            state.set(alg, new.key_tag, now, active=1)
            state.set(alg, old.key_tag, now, active=0)
            self.load()
            state.advance(role, "resign", now)
        elif step == "resign":
            left, max_ttl = self._signed_by(old)
            for start in range(0, len(left), zone.resign_batch):  # bounded batches, one change each
                request = await live.run(Request(resign=left[start:start + zone.resign_batch]))
                if request.outcome.rcode:
                    return
            state.advance(role, "remove", now + max_ttl + wait)
        elif step == "remove":
            left, _ = self._signed_by(old)
            if left:  # never take away a key that still signs something
                state.advance(role, "resign", now)
                return
            state.set(alg, old.key_tag, now, published=0, retired=1)
            self.load(check=False)
            await self._dnskeys()
            self.load()
            self._retire(old)
            state.advance(role, None)
        elif step == "ds-add":
            state.set(alg, new.key_tag, now, ds=1)
            await self._cds()
            ds_ttl = await self._parent_ds()
            state.advance(role, "swap", now + ds_ttl + wait)
        elif step == "swap":
            state.set(alg, new.key_tag, now, published=1, active=1)
            state.set(alg, old.key_tag, now, published=0, active=0)
            self.load(check=False)
            await self._dnskeys(resign=[(apex, CDS), (apex, CDNSKEY)])
            self.load()
            state.advance(role, "ds-remove", now + dnskey_ttl + wait)
        elif step == "ds-remove":
            state.set(alg, old.key_tag, now, ds=0, retired=1)
            self.load()
            await self._cds()
            await self._parent_ds()
            self._retire(old)
            state.advance(role, None)
        self.log.append(f"{role} {step} {old.key_tag}->{new.key_tag} at {now:.0f}")

    # --- the records a step changes ------------------------------------------------------------

    def _published(self) -> list[ZoneKey]:
        rows = self.state.keys()
        return [k for k in self.files if rows.get((k.algorithm, k.key_tag), {}).get("published")
                and not rows[(k.algorithm, k.key_tag)]["retired"]]

    def _in_ds(self) -> list[ZoneKey]:
        rows = self.state.keys()
        return [k for k in self.files if rows.get((k.algorithm, k.key_tag), {}).get("ds")]

    async def _run(self, rrsets, resign=None) -> None:
        request = await self.live.run(Request(rrsets=rrsets, resign=resign))
        if request.outcome.rcode:
            raise RuntimeError(f"zone {self.live.origin}: key change refused: {request.outcome.reason}")

    async def _dnskeys(self, resign=None) -> None:
        live = self.live
        ttl = _ttl(live, live.data.apex, DNSKEY, 3600)
        await self._run([(live.origin, DNSKEY, ttl, [k.dnskey.to_wire() for k in self._published()])], resign)

    async def _cds(self) -> None:
        live = self.live
        ttl = _ttl(live, live.data.apex, DNSKEY, 3600)
        wanted = self._in_ds()
        cdnskey = [dns.rdata.from_text(dns.rdataclass.IN, CDNSKEY, k.dnskey.to_text()).to_wire() for k in wanted]
        await self._run([(live.origin, CDS, ttl, _ds_wire(live.origin, wanted, CDS)),
                         (live.origin, CDNSKEY, ttl, cdnskey)])

    async def _parent_ds(self) -> int:
        """Put the wanted DS set into the parent when it is served here; the parent's DS TTL."""
        parent = self._parent()
        if parent is None and self.zone.parent is not None and self.tsig is not None:
            await self._send_ds()
            return self.zone.parent_ds_ttl
        if parent is None:
            return self.zone.parent_ds_ttl
        key = wirename.key_of(self.live.origin)
        ttl = _ttl(parent, key, DS, self.zone.parent_ds_ttl)
        request = await parent.run(Request(rrsets=[(self.live.origin, DS, ttl, _ds_wire(self.live.origin, self._in_ds()))]))
        if request.outcome.rcode:
            raise RuntimeError(f"parent {parent.origin}: DS change refused: {request.outcome.reason}")
        return ttl

    async def _send_ds(self) -> None:
        """The wanted DS set as a TSIG-signed UPDATE (RFC 2136) to the parent's primary."""
        import dns.asyncquery
        import dns.message
        import dns.rcode
        import dns.update

        host, _, port_text = self.zone.parent.rpartition(":")
        host, port = (host, int(port_text)) if host else (self.zone.parent, 53)
        origin = self.live.origin
        soa = dns.message.make_query(origin.parent(), "SOA")  # the parent's apex: the answer or the authority
        answer = await dns.asyncquery.tcp(soa, host, port=port, timeout=5)
        rrsets = [r for r in answer.answer + answer.authority if r.rdtype == dns.rdatatype.SOA]
        if not rrsets:
            raise RuntimeError(f"parent {self.zone.parent}: no SOA found for {origin}")
        parent_zone = rrsets[0].name
        update = dns.update.UpdateMessage(parent_zone, keyring={self.tsig.name: self.tsig.tsig},
                                          keyname=self.tsig.name, keyalgorithm=self.tsig.algorithm)
        update.replace(origin, self.zone.parent_ds_ttl,
                       *[ds for ds in ds_records(origin, [k.dnskey for k in self._in_ds()], "SHA256")])
        reply = await dns.asyncquery.tcp(update, host, port=port, timeout=10)
        if reply.rcode() != dns.rcode.NOERROR:
            raise RuntimeError(f"parent {self.zone.parent}: DS update refused: {dns.rcode.to_text(reply.rcode())}")

    def _parent(self) -> LiveZone | None:
        if self.primary is None:
            return None
        name = self.live.origin
        while name != dns.name.root:
            name = name.parent()
            found = self.primary.zone(name)
            if found is not None:
                return found
        return None

    def _signed_by(self, key: ZoneKey) -> tuple[list[tuple[bytes, int]], int]:
        """RRsets with a signature by ``key``, and the largest TTL in the zone (one pass)."""
        data = self.live.data
        left, max_ttl = [], 0
        for blobs in (data.blobs, data.hashed):
            for name_key, blob in dict.items(blobs):
                for (rdtype, covered), (ttl, rdatas) in decode_sets(blob).items():
                    max_ttl = max(max_ttl, ttl)
                    if rdtype == RRSIG and any(struct.unpack_from("!BxxxxxxxxxxxxxH", rd, 2) == (key.algorithm, key.key_tag)
                                               for rd in rdatas):
                        left.append((name_key, covered))
        return left, max_ttl

    def _retire(self, key: ZoneKey) -> None:
        directory = self.zone.key_directory
        (directory / "retired").mkdir(exist_ok=True)
        for suffix in (".key", ".private"):
            path = directory / (key.basename + suffix)
            if path.exists():
                path.rename(directory / "retired" / path.name)

    def status(self) -> dict:
        return {"keys": [{"tag": t, "algorithm": a, **row} for (a, t), row in self.state.keys().items()],
                "rolls": self.state.rolls()}


def manage(live: LiveZone, zone, journal_dir: Path | None, keyring=None) -> Roller | None:
    """Key state for ``live`` (a zone with a journal directory); its Roller, run by the upkeep."""
    if journal_dir is None or live.maintenance is None:
        return None
    tsig = keyring.get(zone.parent_key) if keyring is not None and zone.parent_key is not None else None
    roller = Roller(live, zone, KeyState(journal_dir, live.origin), tsig=tsig)
    roller.load()
    upkeep = live.maintenance
    upkeep.steps.append(roller.step)
    upkeep.roller = roller
    return roller


def attach(primary) -> None:
    """Let each zone's roller find its parent among the zones served here."""
    for live in primary.zones.values():
        roller = getattr(live.maintenance, "roller", None)
        if roller is not None:
            roller.primary = primary


def start_roll(config, origin: dns.name.Name, role: str, now: float | None = None) -> str:
    """``cid zone rollover``: a new key and its roll, for the server to carry out; one line."""
    now = time.time() if now is None else now
    zone = next((z for z in config.zones if z.name == origin), None)
    if zone is None:
        from .livesetup import zone_origin
        zone = next((z for z in config.zones if zone_origin(z) == origin), None)
    if zone is None:
        raise RolloverError(f"zone {origin} is not in {config.path}")
    if config.journal is None:
        raise RolloverError(f"{config.path}: rollover needs a journal directory (journal = ...)")
    directory = zone.key_directory
    try:
        files = load_zone_keys(directory, origin) if directory.is_dir() else []
    except KeyFileError as exc:
        raise RolloverError(str(exc)) from None
    if not files:
        raise RolloverError(f"no keys for {origin} in {directory}; make them with: cid zone keygen {origin}")
    state = KeyState(config.journal, origin)
    try:
        if any(r["role"] == role for r in state.rolls()):
            roll = next(r for r in state.rolls() if r["role"] == role)
            raise RolloverError(f"a {role.upper()} roll of {origin} is in progress (step {roll['step']})")
        active, _ = _split(files, state, now)
        ksk = role == "ksk"
        current = [k for k in active if k.is_ksk == ksk]
        others = [k for k in active if k.is_ksk != ksk]
        if not current or not others:
            raise RolloverError(f"zone {origin} has no separate {'KSK' if ksk else 'ZSK'} to roll "
                                f"(keys: {', '.join(f'{k.key_tag}' + (' KSK' if k.is_ksk else ' ZSK') for k in active)})")
        if len(current) > 1:
            raise RolloverError(f"zone {origin} has {len(current)} active {role.upper()}s; roll one at a time")
        old = current[0]
        new = generate_key(origin, old.algorithm, KSK_FLAGS if ksk else ZSK_FLAGS)
        state.put(new, now)  # the row first: a server never adopts the new files as current
        state.db.execute("insert into roll values (?, ?, ?, ?, ?, ?, ?)",
                         (role, old.algorithm, old.key_tag, new.key_tag, "ds-add" if ksk else "publish", now, now))
        write_key_files(new, directory)
    finally:
        state.close()
    return (f"{origin}: {role.upper()} roll started, {old.key_tag} -> {new.key_tag} ({new.basename}); "
            "the server carries it out")


__all__ = ["KeyState", "Roller", "RolloverError", "attach", "manage", "start_roll"]
