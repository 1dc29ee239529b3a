"""Live zones: signed dynamic updates, leases and the journal on a served zone.

A ``LiveZone`` wraps one served ``ZoneData`` with its signing keys, its journal and its
leases. Work arrives as ``Request``s (an UPDATE from a client, a lease expiry, a file merge)
and is done in **batches**: every request queued when the loop gets round to it is evaluated
in order against one ``update.Overlay`` (each sees the ones before it), then

1. the browse PTRs of every identifier the batch touched are brought in line (``browse``);
2. the SOA serial moves on once (``serial.next_serial``) and every changed RRset is signed
   (``onlinesign.RRsetSigner``); the NSEC/NSEC3 chain is kept by ``zonechange`` through the
   same signer;
3. the changes are applied to the store (``ZoneStore.update``), the exact RR difference is
   taken (old and new blobs of every name the change touched) and written to the journal
   together with the lease changes, in one SQLite transaction (one fsync) on the zone's commit
   thread — group commit;
4. only when that transaction is durable are the batch's replies sent.

At most ``MAX_INFLIGHT`` batches are waiting for their commit; while they do, the loop keeps
answering queries and collecting the next batch. The in-memory zone runs ahead of the disk by
at most those batches, none of them acknowledged (``committed_serial`` is the durable one:
what IXFR and NOTIFY may announce).

Nothing here opens sockets: ``Primary`` (below) turns wire bytes into requests and replies.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tsig
import dns.update

from . import browse, journal as journal_mod, updatewire, wirename, zonechange
from .journal import Commit, Diff, Journal, Lease, rr_wire
from .onlinesign import RRsetSigner, canonical_rdata
from .policy import Keyring, TsigKey
from .serial import next_serial, serial_gt
from .store import ZoneStore
from .update import EDE_OTHER, Outcome, Overlay, evaluate
from .zonedb import DS, NS, NSEC3, RRSIG, SOA, ZoneData, decode_sets

log = logging.getLogger("cid.auth.update")

LEASE_OPTION = 2  # RFC 9664 UPDATE-LEASE
DNSKEY = 48
MAX_INFLIGHT = 2
DEFAULT_MIN_LEASE = 30
ADVERTISED_PAYLOAD = 1232


class _Recording(dict):
    """A zone's blob dict that remembers, while ``log`` is a dict, each changed key's old blob."""

    __slots__ = ("log",)

    def __init__(self, *args):
        super().__init__(*args)
        self.log = None

    def _note(self, key):
        log_ = self.log
        if log_ is not None and key not in log_:
            log_[key] = dict.get(self, key)

    def __setitem__(self, key, value):
        self._note(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key):
        self._note(key)
        dict.__delitem__(self, key)

    def pop(self, key, *default):
        self._note(key)
        return dict.pop(self, key, *default)

    def setdefault(self, key, default=None):
        self._note(key)
        return dict.setdefault(self, key, default)

    def update(self, *args, **kw):
        for key, value in dict(*args, **kw).items():
            self[key] = value

    def popitem(self):  # pragma: no cover - zonechange never does this
        raise TypeError("not supported on a live zone")

    def clear(self):  # pragma: no cover
        raise TypeError("not supported on a live zone")


def install_recorder(data: ZoneData) -> None:
    if not isinstance(data.blobs, _Recording):
        data.blobs = _Recording(data.blobs)
    if not isinstance(data.hashed, _Recording):
        data.hashed = _Recording(data.hashed)


@dataclass
class Request:
    """One unit of work for a batch."""

    message: dns.update.UpdateMessage | None = None
    key: TsigKey | None = None
    reply: Callable[[bytes], None] | None = None
    tcp: bool = False
    lease: int | None = None  # requested LEASE (RFC 9664), seconds
    key_lease: int | None = None
    expire: list[tuple[bytes, int, bytes]] | None = None  # lease idents due (internal)
    rrsets: list[tuple[dns.name.Name, int, int, list[bytes]]] | None = None  # set RRsets (internal)
    resign: list[tuple[bytes, int]] | None = None  # (key, type) RRsets to sign afresh (resign.py)
    done: asyncio.Future | None = None
    outcome: Outcome = field(default_factory=Outcome)
    granted: int | None = None
    granted_key: int | None = None


def soa_serial(data: ZoneData) -> int:
    node = data.node(data.apex)
    rdata = node.rrsets[SOA].rdatas[0]
    return int.from_bytes(rdata[-20:-16], "big")


def soa_record(data: ZoneData) -> tuple[int, dns.rdata.Rdata]:
    """The apex SOA as (TTL, rdata): what a NOTIFY carries as its hint (notify.py)."""
    rrset = data.node(data.apex).rrsets[SOA]
    wire = rrset.rdatas[0]
    return rrset.ttl, dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.SOA, wire, 0, len(wire))


class LiveZone:
    """One served zone that takes changes (module text)."""

    def __init__(self, store: ZoneStore, data: ZoneData, *, keys=(), journal: Journal | None = None,
                 browse_names: bool = True, caps_strict: bool = True,
                 clock: Callable[[], float] = time.time, min_lease: int = DEFAULT_MIN_LEASE,
                 max_lease: int | None = None, config: object | None = None):
        self.store = store
        self.data = data
        self.origin = data.origin
        self.keys = list(keys)
        self.signer = RRsetSigner(self.keys, clock=clock) if self.keys else None
        self.our_dnskeys = {canonical_rdata(DNSKEY, k.dnskey.to_wire()) for k in self.keys}
        self.journal = journal
        self.browse = browse_names
        self.caps_strict = caps_strict
        self.clock = clock
        self.min_lease = min_lease
        self.max_lease = max_lease
        self.config = config
        self.queue: list[Request] = []
        self.inflight = 0
        self._scheduled = False
        self.failed: str | None = None
        self.leases: dict[tuple[bytes, int, bytes], Lease] = {}
        self.expired = 0  # leased records removed at expiry since start (/metrics)
        self._heap: list[tuple[float, tuple[bytes, int, bytes]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="journal")
        self.committed_serial = soa_serial(data)
        # Called after every commit (and batch without one): NOTIFY (notify.py) watches this.
        self.on_commit: Callable[["LiveZone"], None] | None = None
        self.batches = 0
        self.updates = 0
        self.problem = self._check_keys()
        self.maintenance = None  # re-signing and key rollover (rollover.Maintenance), when managed
        install_recorder(data)
        if journal is not None:
            for lease in journal.leases():
                self._remember(lease)
            journal_mod.register(journal)

    def _check_keys(self) -> str | None:
        if not self.data.signed:
            return None
        if not self.keys:
            return f"zone {self.origin} is signed but no keys were found: updates are refused"
        apex = self.data.node(self.data.apex)
        published = apex.rrsets.get(DNSKEY)
        have = {canonical_rdata(DNSKEY, rd) for rd in (published.rdatas if published else [])}
        missing = [k.key_tag for k in self.keys if canonical_rdata(DNSKEY, k.dnskey.to_wire()) not in have]
        if missing:
            return (f"zone {self.origin}: the DNSKEY of key(s) {', '.join(map(str, missing))} is not "
                    "published at the apex: updates are refused")
        return None

    # --- submitting -----------------------------------------------------------------------

    def submit(self, request: Request) -> None:
        self.queue.append(request)
        if not self._scheduled and self.inflight < MAX_INFLIGHT:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    async def run(self, request: Request) -> Request:
        """Submit ``request`` and wait until it is committed (or refused)."""
        request.done = asyncio.get_running_loop().create_future()
        self.submit(request)
        await request.done
        return request

    def _drain(self) -> None:
        self._scheduled = False
        if not self.queue or self.inflight >= MAX_INFLIGHT:
            return
        batch, self.queue = self.queue, []
        try:
            commit = self.process(batch)
        except Exception as exc:  # noqa: BLE001 - a bug must cost a batch, not the server
            log.exception("zone %s: batch of %d failed", self.origin, len(batch))
            for request in batch:
                request.outcome = Outcome(dns.rcode.SERVFAIL, f"internal error: {exc}")
            self._finish(batch)
            return
        if self.journal is None or commit is None:
            self._finish(batch)
            self._after_commit()
            return
        self.inflight += 1
        future = asyncio.get_running_loop().run_in_executor(self._executor, self.journal.commit, commit)
        serial = soa_serial(self.data)
        future.add_done_callback(lambda f: self._committed(f, batch, serial, commit))

    def _committed(self, future, batch: list[Request], serial: int, commit: Commit) -> None:
        self.inflight -= 1
        exc = future.exception()
        if exc is not None:
            self.failed = f"journal commit failed: {exc}"
            log.error("zone %s: %s; updates are refused from now on", self.origin, self.failed)
            for request in batch:
                request.outcome = Outcome(dns.rcode.SERVFAIL, self.failed)
        elif commit.diff is not None:
            self.committed_serial = serial
        self._finish(batch)
        self._after_commit()

    def _after_commit(self) -> None:
        if self.on_commit is not None:
            try:
                self.on_commit(self)
            except Exception:  # noqa: BLE001 - a NOTIFY problem must not stop updates
                log.exception("zone %s: after-commit hook failed", self.origin)
        if self.queue and not self._scheduled and self.inflight < MAX_INFLIGHT:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)
        self._arm_timer()

    def _finish(self, batch: list[Request]) -> None:
        for request in batch:
            if request.reply is not None:
                try:
                    request.reply(render_response(request))
                except Exception:  # noqa: BLE001
                    log.exception("zone %s: cannot render an update response", self.origin)
            if request.done is not None and not request.done.done():
                request.done.set_result(request)

    # --- one batch --------------------------------------------------------------------------

    def process(self, batch: list[Request]) -> Commit | None:
        """Evaluate, sign and apply ``batch`` (synchronously); the Commit still to be written."""
        now = self.clock()
        overlay = Overlay(self.data)
        lease_ops: dict[tuple[bytes, int, bytes], Lease | None] = {}
        resign: list[tuple[bytes, int]] = []
        for request in batch:
            if self.failed or self.problem:
                request.outcome = Outcome(dns.rcode.SERVFAIL if self.failed else dns.rcode.REFUSED,
                                          self.failed or self.problem, None if self.failed else EDE_OTHER)
                continue
            if request.expire is not None:
                self._expire_into(overlay, request, lease_ops, now)
            elif request.rrsets is not None or request.resign is not None:
                if request.rrsets is not None:
                    self._set_into(overlay, request, lease_ops)
                resign += request.resign or ()
            else:
                self._update_into(overlay, request, lease_ops, now)
        touched = overlay.touched()
        if self.browse and touched:
            self._browse_into(overlay, touched)
            touched = overlay.touched()
        self.batches += 1
        diff = None
        if touched or (resign and self.signer is not None and self.data.signed):
            diff = self._apply(overlay, touched, now, resign)
            if diff is None:  # refused as a whole: each request alone
                return self._one_by_one(batch)
        upserts = [l for l in lease_ops.values() if l is not None]
        deletes = [ident for ident, l in lease_ops.items() if l is None and ident in self.leases]
        for ident, lease in lease_ops.items():
            if lease is None:
                self.leases.pop(ident, None)
            else:
                self._remember(lease)
        if diff is None and not upserts and not deletes:
            return None
        return Commit(diff, upserts, deletes)

    def _one_by_one(self, batch: list[Request]) -> Commit | None:
        if len(batch) == 1:
            request = batch[0]
            request.outcome = Outcome(dns.rcode.SERVFAIL, "the zone refused the change",)
            return None
        commits = [c for r in batch for c in [self.process([r])] if c is not None]
        if not commits:
            return None
        merged = Commit()
        diffs = [c.diff for c in commits if c.diff is not None]
        if diffs:
            merged.diff = Diff(diffs[0].serial_from, diffs[-1].serial_to,
                               tuple(rr for d in diffs for rr in d.removed),
                               tuple(rr for d in diffs for rr in d.added), diffs[-1].time)
            if len(diffs) > 1:
                merged.diff = _squash(diffs)
        for c in commits:
            merged.leases += c.leases
            merged.lease_deletes += c.lease_deletes
        return merged

    def _update_into(self, overlay: Overlay, request: Request, lease_ops, now: float) -> None:
        message = request.message
        outcome = evaluate(overlay, message, request.key, browse=self.browse,
                           caps_strict=self.caps_strict, our_dnskeys=self.our_dnskeys)
        request.outcome = outcome
        if outcome.rcode != dns.rcode.NOERROR:
            log.info("zone %s: update from key %s refused (%s): %s", self.origin,
                     request.key.name if request.key else "-", dns.rcode.to_text(outcome.rcode),
                     outcome.reason)
            return
        self.updates += 1
        lease = self._grant(request, outcome)
        for key, wire, rdtype, canon in outcome.added:
            ident = (key, rdtype, canon)
            if lease:
                lease_ops[ident] = Lease(key, wire, rdtype, canon, now + lease,
                                         request.key.name.to_text() if request.key else None)
            else:
                lease_ops[ident] = None  # permanent from now on
        for ident in outcome.deleted:
            lease_ops[ident] = None

    def _grant(self, request: Request, outcome: Outcome) -> int | None:
        cap = request.key.lease_cap(self.origin, outcome.names) if request.key else None
        caps = [c for c in (cap, self.max_lease) if c is not None]
        if request.lease is None:
            granted = min(caps) if cap is not None else None  # a capped key always gets a lease
        else:
            granted = max(request.lease, self.min_lease)
            if caps:
                granted = min(granted, *caps)
        request.granted = granted
        if request.key_lease is not None:
            request.granted_key = max(request.key_lease, granted or 0)
        return granted

    def _expire_into(self, overlay: Overlay, request: Request, lease_ops, now: float) -> None:
        removed = 0
        for ident in request.expire:
            current = lease_ops.get(ident, self.leases.get(ident))
            if current is None or current.expires > now:
                continue  # renewed (or already gone) meanwhile
            key, rdtype, canon = ident
            entry = overlay.peek(key).get(rdtype)
            if entry is not None:
                for rdata in list(entry[1]):
                    if canonical_rdata(rdtype, rdata) == canon:
                        overlay.delete_rr(key, rdtype, rdata)
                        removed += 1
            lease_ops[ident] = None
        if removed:
            self.expired += removed
            log.info("zone %s: %d leased record(s) expired", self.origin, removed)

    def _set_into(self, overlay: Overlay, request: Request, lease_ops) -> None:
        for name, rdtype, ttl, rdatas in request.rrsets:
            key = wirename.key_of(name)
            for rdata in overlay.peek(key).get(rdtype, [0, {}])[1]:
                lease_ops[(key, rdtype, canonical_rdata(rdtype, rdata))] = None
            overlay.set_rrset(key, name.to_wire(), rdtype, ttl, rdatas)

    def _browse_into(self, overlay: Overlay, touched: list[bytes]) -> None:
        apex = self.origin
        service_key = wirename.key_of(browse.service_apex(apex))
        for key in touched:
            if key.startswith(service_key):
                continue
            name = wirename.name_of_wire(overlay.wire(key))
            old_state = {t: (e[0], list(e[1])) for t, e in overlay.original.get(key, {}).items()}
            new_state = {t: (e[0], list(e[1])) for t, e in overlay.states[key].items()}
            old_cut = self.data.find_cut(key)
            old_below = old_cut is not None and old_cut != key
            new_below = overlay.cut_above(key) is not None
            old = {**browse.listing(apex, name, old_state, below_cut=old_below),
                   **browse.child_listing(apex, name, old_state, below_cut=old_below)}
            new = {**browse.listing(apex, name, new_state, below_cut=new_below),
                   **browse.child_listing(apex, name, new_state, below_cut=new_below)}
            if old == new and not _listing_changed(old_state, new_state):
                continue
            target = name.to_wire()
            for bname in old.keys() - new.keys():
                overlay.delete_rr(wirename.key_of(bname), 12, target)
            for bname, ttl in new.items():
                bkey = wirename.key_of(bname)
                entry = overlay.peek(bkey).get(12)
                overlay.add(bkey, bname.to_wire(), 12, entry[0] if entry else ttl, target)

    # --- applying ---------------------------------------------------------------------------

    def _apply(self, overlay: Overlay, touched: list[bytes], now: float,
               resign: list[tuple[bytes, int]] = ()) -> Diff | None:
        data = self.data
        apex = data.apex
        old_serial = soa_serial(data)
        soa_entry = overlay.state(apex)[SOA]
        soa_rdata = next(iter(soa_entry[1]))
        given = int.from_bytes(soa_rdata[-20:-16], "big")
        new_serial = given if serial_gt(given, old_serial) else next_serial(old_serial, now)
        soa_rdata = soa_rdata[:-20] + new_serial.to_bytes(4, "big") + soa_rdata[-16:]
        overlay.set_rrset(apex, data.apex_wire, SOA, soa_entry[0], [soa_rdata])
        touched = overlay.touched()
        phases: list[list[zonechange.Change]] = [[], [], []]
        changed: set[tuple[bytes, int]] = set()
        new_cuts = {k for k in touched if k != apex and NS in overlay.states[k]
                    and NS not in overlay.original.get(k, {})}
        gone_cuts = {k for k in touched if k != apex and NS in overlay.original.get(k, {})
                     and NS not in overlay.states[k]}
        for key in touched:
            old, new = overlay.original.get(key, {}), overlay.states[key]
            owner = wirename.name_of_wire(overlay.wire(key))
            cut = overlay.cut_above(key)
            at_cut = key != apex and NS in new
            phase = 1
            if any(key != c and key.startswith(c) for c in gone_cuts):
                phase = 0
            elif cut is not None and any(key != c and key.startswith(c) for c in new_cuts):
                phase = 2
            for rdtype in {*old, *new}:
                if old.get(rdtype) == new.get(rdtype):
                    continue
                entry = new.get(rdtype)
                changed.add((key, rdtype))
                if entry is None:
                    phases[phase].append(zonechange.Change(owner, rdtype))
                    continue
                ttl, rdatas = entry[0], tuple(entry[1])
                sigs: tuple[bytes, ...] = ()
                if self.signer is not None and data.signed and cut is None and (not at_cut or rdtype == DS):
                    sigs = tuple(self.signer.sign(owner, rdtype, ttl, list(rdatas)))
                phases[phase].append(zonechange.Change(owner, rdtype, ttl, rdatas, sigs))
        if resign and self.signer is not None:
            phases[1] += self._resigned(resign, changed)
        sign = self.signer.sign if self.signer is not None else None
        blobs, hashed = data.blobs, data.hashed
        blobs.log, hashed.log = {}, {}
        applied = 0
        try:
            for changes in phases:
                if not changes:
                    continue
                try:
                    self.store.update(self.origin, changes, sign=sign)
                except ValueError as exc:
                    if applied == 0:
                        log.warning("zone %s: change refused by the store: %s", self.origin, exc)
                        return None
                    log.error("zone %s: change half applied (%s); the journal keeps what was", self.origin, exc)
                    break
                applied += 1
            return self._diff(blobs.log, hashed.log, old_serial, soa_serial(data), now)
        finally:
            blobs.log, hashed.log = None, None

    def _resigned(self, resign: list[tuple[bytes, int]], changed: set) -> list[zonechange.Change]:
        """Unchanged RRsets signed afresh (expiring signatures, a retired key's signatures)."""
        data = self.data
        out = []
        for key, rdtype in dict.fromkeys(resign):
            if (key, rdtype) in changed:
                continue  # changed in this batch: signed already
            hashed = rdtype == NSEC3 and data.nsec3 is not None
            blob = dict.get(data.hashed if hashed else data.blobs, key)
            sets = decode_sets(blob) if blob else {}
            entry = sets.get((rdtype, 0))
            if entry is None or (RRSIG, rdtype) not in sets:
                continue  # gone meanwhile, or never signed (a cut's NS, glue)
            owner = wirename.name_of_wire(data.owner_wire(key))
            rdatas = tuple(entry[1])
            out.append(zonechange.Change(owner, rdtype, entry[0], rdatas,
                                         tuple(self.signer.sign(owner, rdtype, entry[0], list(rdatas)))))
        return out

    def _diff(self, plain: dict, hashed: dict, serial_from: int, serial_to: int, now: float) -> Diff:
        data = self.data
        removed: list[bytes] = []
        added: list[bytes] = []
        soa_old: list[bytes] = []
        soa_new: list[bytes] = []
        for log_, current in ((plain, data.blobs), (hashed, data.hashed)):
            for key, old_blob in log_.items():
                new_blob = dict.get(current, key)
                if old_blob == new_blob:
                    continue
                wire = data.owner_wire(key)
                old_sets = decode_sets(old_blob) if old_blob else {}
                new_sets = decode_sets(new_blob) if new_blob else {}
                for set_key in {*old_sets, *new_sets}:
                    o, n = old_sets.get(set_key), new_sets.get(set_key)
                    if o == n:
                        continue
                    rdtype = set_key[0]
                    same_ttl = o is not None and n is not None and o[0] == n[0]
                    o_rd = o[1] if o else {}
                    n_rd = n[1] if n else {}
                    out_rm = soa_old if rdtype == SOA and key == data.apex else removed
                    out_add = soa_new if rdtype == SOA and key == data.apex else added
                    for rd in o_rd:
                        if not (same_ttl and rd in n_rd):
                            out_rm.append(rr_wire(wire, rdtype, o[0], rd))
                    for rd in n_rd:
                        if not (same_ttl and rd in o_rd):
                            out_add.append(rr_wire(wire, rdtype, n[0], rd))
        return Diff(serial_from, serial_to, tuple(soa_old + removed), tuple(soa_new + added), now)

    # --- leases -----------------------------------------------------------------------------

    def _remember(self, lease: Lease) -> None:
        self.leases[lease.ident] = lease
        heapq.heappush(self._heap, (lease.expires, lease.ident))

    def next_expiry(self) -> float | None:
        heap = self._heap
        while heap:
            expires, ident = heap[0]
            lease = self.leases.get(ident)
            if lease is None or lease.expires != expires:
                heapq.heappop(heap)  # renewed or gone: a stale heap entry
                continue
            return expires
        return None

    def due(self, now: float | None = None) -> list[tuple[bytes, int, bytes]]:
        now = self.clock() if now is None else now
        return [ident for ident, lease in self.leases.items() if lease.expires <= now]

    def expire_due(self) -> Request | None:
        """Queue the removal of every lease due now; the request (None when nothing is due)."""
        due = self.due()
        if not due:
            return None
        request = Request(expire=due)
        self.submit(request)
        return request

    async def expire(self) -> int:
        """Remove every lease due now and wait for the commit; how many leases were due."""
        due = self.due()
        if due:
            await self.run(Request(expire=due))
        return len(due)

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.next_expiry()
        if when is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        delay = min(max(when - self.clock(), 0.0) + 0.01, 5.0)  # re-checked at least every 5 s
        self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.expire_due() is None:
            self._arm_timer()

    def start(self) -> None:
        """Start the lease timer (on the running loop); expired leases go at once. Re-signing
        and rollover (``maintenance``) start their own timer."""
        if self.expire_due() is None:
            self._arm_timer()
        if self.maintenance is not None:
            self.maintenance.start()

    def close(self) -> None:
        if self.maintenance is not None:
            self.maintenance.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._executor.shutdown(wait=True)
        if self.journal is not None:
            journal_mod.unregister(self.journal)
            self.journal.close()

    # --- status -----------------------------------------------------------------------------

    def status(self) -> dict:
        """Serial, names, next re-sign, leases (``cid ctl zone-status``, issue 11)."""
        data = self.data
        now = self.clock()
        leases = sorted(self.leases.values(), key=lambda l: l.expires)
        return {
            "zone": self.origin.to_text(),
            "serial": soa_serial(data),
            "committed_serial": self.committed_serial,
            "names": len(data.blobs),
            "signed": data.signed,
            "nsec3": data.nsec3 is not None,
            "keys": [k.key_tag for k in self.keys],
            "next_resign": (self.maintenance.next_due() if self.maintenance is not None
                            else next_resign(data)),
            "keys_state": self.maintenance.status() if self.maintenance is not None else None,
            "leases": len(leases),
            "next_expiry": leases[0].expires if leases else None,
            "active_leases": [
                {"name": wirename.name_of_wire(l.owner).to_text(), "type": dns.rdatatype.to_text(l.rdtype),
                 "expires": l.expires, "remaining": max(0.0, l.expires - now), "key": l.key}
                for l in leases[:1000]],
            "updates": self.updates,
            "batches": self.batches,
            "journal": str(self.journal.path) if self.journal else None,
            "problem": self.failed or self.problem,
        }


def _listing_changed(old: dict, new: dict) -> bool:
    return any(old.get(t) != new.get(t) for t in (browse.SVCB, browse.CAPS, NS))


def _squash(diffs: list[Diff]) -> Diff:
    """Several consecutive diffs as one (RRs added then removed cancel out)."""
    removed: dict[bytes, None] = {}
    added: dict[bytes, None] = {}
    for diff in diffs:
        for rr in diff.removed:
            if rr in added:
                del added[rr]
            else:
                removed[rr] = None
        for rr in diff.added:
            if rr in removed:
                del removed[rr]
            else:
                added[rr] = None
    first, last = diffs[0], diffs[-1]
    soa_old = first.removed[0]
    soa_new = last.added[0]
    rest_removed = [rr for rr in removed if rr != soa_old and _rrtype(rr) != SOA]
    rest_added = [rr for rr in added if rr != soa_new and _rrtype(rr) != SOA]
    return Diff(first.serial_from, last.serial_to, (soa_old, *rest_removed), (soa_new, *rest_added), last.time)


def _rrtype(rr: bytes) -> int:
    return journal_mod.parse_rr(rr)[1]


def next_resign(data: ZoneData) -> float | None:
    """When the earliest signature reaches half of its validity (spec/dnssec.md §1), from a
    scan of the zone's RRSIGs (seconds since the epoch; None for an unsigned zone)."""
    earliest = None
    half = None
    for blobs in (data.blobs, data.hashed):
        for blob in dict.values(blobs):
            for set_key, (ttl, rdatas) in decode_sets(blob).items():
                if set_key[0] != RRSIG:
                    continue
                for rd in rdatas:
                    expiration, inception = struct.unpack_from("!II", rd, 8)
                    if earliest is None or expiration < earliest:
                        earliest = expiration
                        half = inception + (expiration - inception) / 2
    return half


# --- replay --------------------------------------------------------------------------------

def apply_diff(store: ZoneStore, data: ZoneData, diff: Diff) -> None:
    """Apply a journal diff to the zone it was taken from (startup replay): the RRsets and
    signatures end exactly as the diff says; the chain records are given, never recomputed."""
    groups: dict[tuple[bytes, int], dict] = {}
    owners: dict[bytes, bytes] = {}
    for which in ("removed", "added"):
        for rr in getattr(diff, which):
            owner, rdtype, ttl, rdata = journal_mod.parse_rr(rr)
            key = wirename.key_of_wire(owner)
            owners.setdefault(key, owner)
            covered = struct.unpack_from("!H", rdata)[0] if rdtype == RRSIG else rdtype
            group = groups.setdefault((key, covered), {"removed": [], "added": [], "sig_removed": [],
                                                       "sig_added": [], "ttl": None})
            if rdtype == RRSIG:
                group["sig_" + which].append(rdata)
            else:
                group[which].append(rdata)
                if which == "added":
                    group["ttl"] = ttl
            if rdtype == RRSIG and which == "added" and group["ttl"] is None:
                group["sig_ttl"] = ttl
    changes = []
    given: dict[tuple[bytes, int], list[bytes]] = {}
    for (key, rdtype), group in groups.items():
        hashed = rdtype == NSEC3 and data.nsec3 is not None
        blob = (data.hashed if hashed else data.blobs).get(key)
        sets = decode_sets(blob) if blob else {}
        current = sets.get((rdtype, 0))
        rdatas = dict(current[1]) if current else {}
        for rd in group["removed"]:
            rdatas.pop(rd, None)
        for rd in group["added"]:
            rdatas[rd] = None
        sig_entry = sets.get((RRSIG, rdtype))
        sigs = dict(sig_entry[1]) if sig_entry else {}
        for rd in group["sig_removed"]:
            sigs.pop(rd, None)
        for rd in group["sig_added"]:
            sigs[rd] = None
        ttl = group["ttl"] if group["ttl"] is not None else (current[0] if current else group.get("sig_ttl", 0))
        owner = wirename.name_of_wire(owners[key])
        if rdatas:
            changes.append(zonechange.Change(owner, rdtype, ttl, tuple(rdatas), tuple(sigs)))
            given[(key, rdtype)] = list(sigs)
        else:
            changes.append(zonechange.Change(owner, rdtype))

    def sign(owner: dns.name.Name, rdtype: int, ttl: int, rdatas: list[bytes]) -> list[bytes]:
        found = given.get((wirename.key_of(owner), rdtype))
        if found is None:
            raise ValueError(f"journal replay: no signature for {owner} {dns.rdatatype.to_text(rdtype)}")
        return found

    store.update(data.origin, changes, sign=sign)


# --- responses -----------------------------------------------------------------------------

def render_response(request: Request) -> bytes:
    """The UPDATE response for ``request`` (TSIG-signed with the request's key when it was)."""
    message = request.message
    outcome = request.outcome
    options = []
    if message.edns >= 0:
        if request.lease is not None and outcome.rcode == dns.rcode.NOERROR and request.granted:
            data = struct.pack("!I", request.granted)
            if request.key_lease is not None:
                data += struct.pack("!I", request.granted_key or request.granted)
            options.append(dns.edns.GenericOption(LEASE_OPTION, data))
        if outcome.ede is not None and outcome.rcode != dns.rcode.NOERROR:
            options.append(dns.edns.EDEOption(outcome.ede, (outcome.reason or "")[:300]))
    max_size = 65535 if request.tcp else max(512, min(message.payload, 65535))
    if isinstance(message, updatewire.LeanUpdate):
        wire = updatewire.response(message, outcome.rcode, options, ADVERTISED_PAYLOAD, max_size)
        if wire is not None:
            return wire
        message = dns.message.from_wire(message.wire, keyring={message.keyname: message.key},
                                        one_rr_per_rrset=True)
    response = dns.message.make_response(message, our_payload=ADVERTISED_PAYLOAD)
    response.set_rcode(outcome.rcode)
    if message.edns >= 0:
        response.use_edns(0, 0, ADVERTISED_PAYLOAD, options=options)
    return response.to_wire(max_size=max_size)


__all__ = ["LiveZone", "Request", "apply_diff", "install_recorder", "next_resign",
           "render_response", "soa_serial"]
