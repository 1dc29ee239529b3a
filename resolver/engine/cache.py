"""The resolver's cache: RRsets with their signatures and validation status, negative answers
(RFC 2308), validated NSEC records for aggressive negative answers (RFC 8198), delegations,
zone key trust and whole resolutions — each expiring by TTL on an injectable clock.

Kept apart by what it holds (as Unbound keeps rrset, message, infra and key caches), but all
kinds share one LRU list and one byte budget (``max_bytes``), so no kind of traffic — a flood
of random names, a zone with huge RRsets — can grow memory without bound: the least recently
used entry goes first. An entry's size is an estimate: its bytes plus a fixed overhead
(calibrated with tools/cache_memory.py).

RRsets, negative answers and NSECs are kept packed as DNS wire bytes (engine/packed.py), as
Unbound packs its rrsets: about a fifth of the memory of dnspython objects; whole resolutions
as msgpack bytes (resolution.pack). Objects are built from them on access; answers and
resolutions hit again and again are kept built in a small hot layer (``hot_get``/``put_hot``,
``get_resolution``) inside the same budget, so a hit stays a dict lookup.

Expired RRsets and negative answers are kept (until evicted or ``stale_max`` past expiry) so
that they can be served stale when every authority fails (RFC 8767); bogus data never is.

Settings are in cache_config.py; the entry types, their size estimates and name keys in
cache_entries.py (re-exported here).
"""

from __future__ import annotations

import bisect
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import dns.name
import dns.rdatatype
import dns.rrset

from ..nametext import lower_name, name_text, type_text
from ..resolution import Resolution
from ..resolution import pack as pack_resolution
from ..status import Status
from .cache_config import (BOGUS_TTL, MAX_NEGATIVE_TTL, MAX_TTL, PREFETCH_FRACTION, PREFETCH_MIN_TTL, STALE_TTL,
                           CacheConfig, CacheConfigError)
from .cache_entries import (BUILT_RESOLUTION_OVERHEAD, ENTRY_OVERHEAD, RESOLUTION_OVERHEAD, CacheRecord,
                            Delegation, Entry, NegativeEntry, NsecEntry, ResolutionEntry, RRsetEntry, Server,
                            ZoneTrust, _estimate, _key_name, _nkey, _spelled, materialised_size, wire_size)
from .packed import pack
from .selection import ServerSelection

__all__ = ["BOGUS_TTL", "MAX_NEGATIVE_TTL", "MAX_TTL", "STALE_TTL", "Cache", "CacheConfig", "CacheConfigError",
           "CacheRecord", "Delegation", "Entry", "NegativeEntry", "NsecEntry", "RRsetEntry", "ResolutionEntry",
           "ZoneTrust", "materialised_size", "wire_size"]

HOT_MAX = 4096  # answers kept built for hits (see Cache.hot_get), and as many resolutions
HOT_ITEM_OVERHEAD = 200  # a hot answer's own record, key (the question as asked) and dict slot

# Entry kinds: the first element of every cache key.
RRSET, NEGATIVE, NSEC, DELEGATION, TRUST, RESOLUTION, NSEC3 = range(7)
KIND_NAMES = ("rrset", "negative", "nsec", "delegation", "trust", "resolution", "nsec3")
NXDOMAIN_TYPE = 0  # negative key type for NXDOMAIN: RFC 2308 §5, it holds for every type
CNAME_TYPE, DNAME_TYPE = int(dns.rdatatype.CNAME), int(dns.rdatatype.DNAME)
_DENIAL_KINDS = frozenset({NSEC, NSEC3, TRUST})
_DENIAL_TYPES = frozenset({int(dns.rdatatype.SOA), DNAME_TYPE})


def _sig_lifetime(rrsigs: dns.rrset.RRset | None, now: float) -> float | None:
    if not rrsigs:
        return None
    return max(0.0, min(rd.expiration for rd in rrsigs) - now)


class Cache:
    def __init__(self, clock: Callable[[], float] = time.time, config: CacheConfig | None = None):
        self.clock = clock
        self.config = config if config is not None else CacheConfig()
        self._lru: OrderedDict[tuple, Entry] = OrderedDict()
        self._nsec_index: dict[dns.name.Name, list[dns.name.Name]] = {}  # zone → sorted owners
        # zone key (_nkey) → (NSEC3 parameters, sorted owner digests): one chain per zone, the
        # latest seen. Keyed by bytes, not Name: the flood fast path looks up three a query.
        self._nsec3_index: dict[bytes | tuple, tuple[tuple[int, int, bytes], list[bytes]]] = {}
        self.bytes = 0
        self.evictions = 0
        self.servers = ServerSelection(clock)  # per-server RTT and timeouts (not bounded here)
        self._names: dict[bytes | tuple, bytes | tuple] = {}  # see _key
        self._whys: dict[str | tuple[str], str | tuple[str]] = {}  # see _why
        self._ints: dict[int, int] = {}  # see _int
        self._zones: dict[dns.name.Name, dns.name.Name] = {}  # see _zone
        # The hot layer: a few recently hit answers kept built (see hot_get), within max_bytes.
        self._hot: dict[Any, tuple[tuple, Entry, Any, int, int | None]] = {}
        # Resolutions kept built (``value`` set) because they were hit, oldest first: see
        # get_resolution. Their built size is counted in hot_bytes too.
        self._hot_res: dict[tuple, ResolutionEntry] = {}
        self.hot_bytes = 0
        self._epoch = 0  # bumped by every RRset or negative store: see put_hot(negative=True)
        # Bumped whenever what a synthesised denial rests on may have changed: an NSEC/NSEC3
        # entry, a zone's trust, an SOA or a DNAME stored or dropped (evictions and flushes
        # included). Front ends that mirror denials (service/denial.py) compare it.
        self.denial_version = 0
        self._dnames = 0  # DNAME RRsets held: when none, no ancestor needs looking at
        self._types: set[int] = set()  # RR types ever stored as RRsets (rrsets_at looks these up)

    def _key(self, name: dns.name.Name) -> bytes | tuple:
        """The cache key of ``name``, one shared object per name (an identifier's A, SVCB and
        CAPS entries share it; no Name object is kept: the wire parser's are many and big).
        Bounded by the number of entries; clearing only loses sharing, never data."""
        return _shared(self._names, _nkey(name), 2 * len(self._lru) + 1024)

    def _zone(self, zone: dns.name.Name) -> dns.name.Name:
        """One shared Name per (canonical) zone: every NSEC entry and key of a zone holds it."""
        return _shared(self._zones, zone, 4096)

    def _int(self, value: int) -> int:
        """One shared int object per TTL, type and size value (CPython shares only -5..256;
        dnspython makes a new RdataType object for every record of an unregistered type)."""
        return _shared(self._ints, int(value), 4096)

    def _why(self, why: str, name: dns.name.Name) -> str | tuple[str]:
        """``why`` shared between entries: the owner's name (most reasons start with it, e.g.
        "x.cid. A: signed by cid. key 1234 alg 15") becomes a placeholder, so every record
        signed by one key shares one string. Exact: ``_expand`` gives ``why`` back."""
        text = name_text(name)
        stored: str | tuple[str] = why
        if text in why and "\x00" not in why:
            stored = (why.replace(text, "\x00"),)
        found = self._whys.get(stored)
        if found is None:
            if len(self._whys) > 2 * len(self._lru) + 1024:
                self._whys.clear()
            found = self._whys[stored] = stored
        return found

    # The store -------------------------------------------------------------------------------
    def _ttl(self, ttl: float, status: Status | None, cap: int, floor: int = 0) -> int:
        ttl = max(floor, min(int(ttl), cap))
        if status is Status.BOGUS:
            ttl = min(ttl, self.config.bogus_ttl)
        return max(0, ttl)

    def _store(self, key: tuple, entry: Entry) -> None:
        old = self._lru.pop(key, None)
        if old is not None:
            self._forget(key, old)
        if entry.size > self.config.max_bytes:
            return  # larger than the whole cache: not worth evicting everything for
        self._lru[key] = entry
        self.bytes += entry.size
        if key[0] <= NEGATIVE:
            self._epoch += 1
        if key[0] in _DENIAL_KINDS or (key[0] == RRSET and key[2] in _DENIAL_TYPES):
            self.denial_version += 1
            if key[0] == RRSET and key[2] == DNAME_TYPE:
                self._dnames += 1
        while self.bytes + self.hot_bytes > self.config.max_bytes:
            if not self._lru:
                self._shed_hot(lookups_first=True)
                continue
            victim, gone = self._lru.popitem(last=False)
            self._forget(victim, gone)
            self.evictions += 1

    def _forget(self, key: tuple, entry: Entry) -> None:
        self.bytes -= entry.size
        if key[0] == RESOLUTION:
            if self._hot_res.get(key) is entry:  # its built value goes with it (a caller may still hold it)
                del self._hot_res[key]
                self.hot_bytes -= entry._hot_size
            return
        if key[0] <= NEGATIVE:
            self._epoch += 1
        if key[0] in _DENIAL_KINDS or (key[0] == RRSET and key[2] in _DENIAL_TYPES):
            self.denial_version += 1
            if key[0] == RRSET and key[2] == DNAME_TYPE:
                self._dnames -= 1
        if key[0] == NSEC:
            owners = self._nsec_index.get(key[2])
            if owners is not None:
                i = bisect.bisect_left(owners, key[1])
                if i < len(owners) and owners[i] == key[1]:
                    del owners[i]
                if not owners:
                    del self._nsec_index[key[2]]
        elif key[0] == NSEC3:
            chain = self._nsec3_index.get(key[2])
            if chain is not None:
                digests = chain[1]
                i = bisect.bisect_left(digests, key[1])
                if i < len(digests) and digests[i] == key[1]:
                    del digests[i]
                if not digests:
                    del self._nsec3_index[key[2]]

    def _drop(self, key: tuple) -> None:
        entry = self._lru.pop(key, None)
        if entry is not None:
            self._forget(key, entry)

    def _servable_stale(self, key: tuple, entry: Entry, now: float) -> bool:
        """May this expired entry still be kept for serve-stale (RFC 8767)?"""
        return (self.config.serve_stale and key[0] in (RRSET, NEGATIVE)
                and entry.status is not Status.BOGUS and now < entry.expires + self.config.stale_max)

    def _get(self, key: tuple, *, stale: bool = False):
        entry = self._lru.get(key)
        if entry is None:
            return None
        if entry.expires <= self.clock():
            if not self._servable_stale(key, entry, self.clock()):
                self._drop(key)
                return None
            if not stale:
                return None
        self._lru.move_to_end(key)
        return entry

    def remaining(self, entry: Entry) -> int:
        """TTL left on an entry, for answers served from the cache."""
        return max(0, int(entry.expires - self.clock()))

    def near_expiry(self, entry: Entry, now: float | None = None) -> bool:
        """In its last 10 % of TTL (and worth refreshing): a hit should trigger a prefetch."""
        if not self.config.prefetch or entry.ttl < PREFETCH_MIN_TTL:
            return False
        left = entry.expires - (self.clock() if now is None else now)
        return 0 < left <= entry.ttl * PREFETCH_FRACTION

    # The hot layer ---------------------------------------------------------------------------
    # Entries are packed; building dnspython objects for every hit would make a hit cost more
    # than a dnspython cache hit. So the caller (Resolver.lookup) keeps what it built from a
    # fresh entry — an immutable answer — here, for at most HOT_MAX answers and an eighth of
    # max_bytes, counted in the same budget (bytes + hot_bytes <= max_bytes).
    def hot_get(self, k: Any, now: float) -> tuple[Entry, Any] | None:
        """(entry, value) stored with put_hot under ``k``, while ``entry`` is still the cached
        one for its key (not replaced, evicted, dropped or flushed), fresh at ``now``, and —
        for a negative answer — no RRset or negative answer was stored or dropped since (one
        could change which entry answers). Touches the entry in the LRU as a lookup does."""
        rec = self._hot.get(k)
        if rec is None:
            return None
        key, entry, value, size, epoch = rec
        if self._lru.get(key) is not entry or (epoch is not None and epoch != self._epoch):
            del self._hot[k]
            self.hot_bytes -= size
            return None
        if entry.expires <= now:
            return None
        self._lru.move_to_end(key)
        return entry, value

    def put_hot(self, k: Any, entry: RRsetEntry | NegativeEntry, value: Any, size: int, *,
                negative: bool = False) -> None:
        """Keep ``value``, built from the cached ``entry`` (``size``: what it holds), for hot_get."""
        old = self._hot.pop(k, None)
        if old is not None:
            self.hot_bytes -= old[3]
        size += HOT_ITEM_OVERHEAD
        budget = self.config.max_bytes // 8
        if size > budget or self._lru.get(entry.key) is not entry:
            return
        while self._hot and len(self._hot) >= HOT_MAX:
            self._shed_hot(lookups_first=True)
        while (self._hot or self._hot_res) and self.hot_bytes + size > budget:
            self._shed_hot(lookups_first=True)
        self._hot[k] = (entry.key, entry, value, size, self._epoch if negative else None)
        self.hot_bytes += size
        self._fit_hot()

    def _fit_hot(self) -> None:
        """Evict least recently used entries until the hot layer fits the budget too."""
        while self.bytes + self.hot_bytes > self.config.max_bytes and self._lru:
            victim, gone = self._lru.popitem(last=False)
            self._forget(victim, gone)
            self.evictions += 1

    def still_answers(self, entry: Entry) -> int | None:
        """For an RRset ``entry`` an answer was built from: its remaining TTL while it is still
        the cached one for its key, fresh and not due for prefetch — then a hit on its question
        is answered from it (hot layer or not: one key, one entry, immutable) — else None.
        Touches it in the LRU as a hit does. None for other kinds too: a negative answer can
        be overtaken by an RRset stored at the name, which only the lookup path sees."""
        if type(entry) is not RRsetEntry or self._lru.get(entry.key) is not entry:
            return None
        now = self.clock()
        if entry.expires <= now or self.near_expiry(entry, now):
            return None
        self._lru.move_to_end(entry.key)
        return int(entry.expires - now)

    def hot_entry(self, k: Any, value: Any) -> Entry | None:
        """The entry ``value`` was built from, while ``value`` is what the hot layer keeps
        under ``k`` (hot_get or put_hot just handed it out), else None."""
        rec = self._hot.get(k)
        return rec[1] if rec is not None and rec[2] is value else None

    def hot_replace(self, k: Any, value: Any) -> None:
        """Swap the value kept under ``k`` (e.g. its TTL counted down); same entry and size."""
        rec = self._hot.get(k)
        if rec is not None:
            self._hot[k] = (rec[0], rec[1], value, rec[3], rec[4])

    def _shed_hot(self, lookups_first: bool) -> None:
        """Drop the oldest built answer (or resolution: back to its packed form only)."""
        if self._hot and (lookups_first or not self._hot_res):
            k = next(iter(self._hot))
            self.hot_bytes -= self._hot.pop(k)[3]
            return
        k = next(iter(self._hot_res))
        entry = self._hot_res.pop(k)
        entry.value = None
        self.hot_bytes -= entry._hot_size

    def _clear_hot_lookups(self) -> None:
        self.hot_bytes -= sum(rec[3] for rec in self._hot.values())
        self._hot.clear()

    # RRsets ------------------------------------------------------------------------------------
    def put_rrset(self, rrset: dns.rrset.RRset, rrsigs: dns.rrset.RRset | None, status: Status,
                  why: str, ttl: int | None = None, proof: tuple[dns.rrset.RRset, ...] = ()) -> None:
        ttl = rrset.ttl if ttl is None else min(ttl, rrset.ttl)
        cfg = self.config
        ttl = self._ttl(ttl, status, cfg.max_ttl, cfg.min_ttl)
        # dnspython names hash and compare case-insensitively; the key is the lower-case form.
        name = rrset.name
        name_key = self._key(name)
        spelling = _spelled(name_key, name)
        # The RRSIGs' owner is the RRset's (RFC 4034 §3): stored once, the key's or spelling.
        wire = pack((rrset, rrsigs, *proof), name)
        key = (RRSET, name_key, self._int(rrset.rdtype))
        self._types.add(key[2])
        entry = RRsetEntry(key, spelling, status, self._why(why, name), self.clock() + ttl, self._int(ttl),
                           self._int(_estimate(wire, rrset, rrsigs, *proof)), wire)
        self._store(key, entry)
        self._drop((NEGATIVE, name_key, rrset.rdtype))
        self._drop((NEGATIVE, name_key, NXDOMAIN_TYPE))  # the name exists after all

    @property
    def holds_dnames(self) -> bool:
        """Whether any DNAME RRset is cached: when none, no ancestor of a name needs looking at."""
        return self._dnames > 0

    def get_rrset(self, name: dns.name.Name, rdtype: int) -> RRsetEntry | None:
        return self._get((RRSET, _nkey(name), rdtype))

    def answer_cached(self, labels: tuple[bytes, ...] | list[bytes], rdtype: int) -> bool:
        """Whether the engine would answer (labels, rdtype) from cached data before any NSEC
        proof: an RRset of the type, a CNAME, a negative answer, or a DNAME at a proper ancestor
        (for other types than DNAME). ``labels`` are wire labels in any case, without the root
        label; no Name is built (the denial fast path calls this for every uncached name)."""
        joined = b".".join(labels).lower()
        if joined.count(b".") != len(labels) - 1 and labels:
            return self._answer_cached_slow([label.lower() for label in labels], rdtype)
        return self.answer_cached_key(joined + b"." if labels else b"", rdtype)

    def answer_cached_key(self, key: bytes, rdtype: int) -> bool:
        """answer_cached for a name's cache key (lower-case labels joined by dots, ending in a
        dot; b"" for the root; no label holding a dot): the fast path's form."""
        lru = self._lru
        # Membership first (a miss is the common case); _get then applies expiry as the getters do.
        if ((RRSET, key, rdtype) in lru or (RRSET, key, CNAME_TYPE) in lru or (NEGATIVE, key, NXDOMAIN_TYPE) in lru
                or (NEGATIVE, key, rdtype) in lru):
            for k in ((RRSET, key, rdtype), (RRSET, key, CNAME_TYPE), (NEGATIVE, key, NXDOMAIN_TYPE),
                      (NEGATIVE, key, rdtype)):
                if k in lru and self._get(k) is not None:
                    return True
        if self._dnames and rdtype != DNAME_TYPE and key:
            start = key.find(b".") + 1
            while True:
                k = (RRSET, key[start:], DNAME_TYPE)  # each proper ancestor, the root (b"") last
                if k in lru and self._get(k) is not None:
                    return True
                if start >= len(key):
                    break
                start = key.find(b".", start) + 1
        return False

    def _answer_cached_slow(self, lowered: list[bytes], rdtype: int) -> bool:
        name = dns.name.Name((*lowered, b""))
        if (self.get_rrset(name, rdtype) is not None or self.get_rrset(name, CNAME_TYPE) is not None
                or self.get_negative(name, rdtype) is not None):
            return True
        if rdtype != DNAME_TYPE:
            while name != dns.name.root:
                name = name.parent()
                if self.get_rrset(name, DNAME_TYPE) is not None:
                    return True
        return False

    def rrsets_at(self, name: dns.name.Name) -> list[RRsetEntry]:
        """The fresh RRsets cached at ``name``, of every type (for RRSIG queries)."""
        key = _nkey(name)
        found = (self._get((RRSET, key, rdtype)) for rdtype in sorted(self._types))
        return [entry for entry in found if entry is not None]

    def get_stale_rrset(self, name: dns.name.Name, rdtype: int) -> RRsetEntry | None:
        """Fresh or expired-but-servable (never bogus) data, for serve-stale."""
        entry = self._get((RRSET, _nkey(name), rdtype), stale=True)
        return entry if entry is not None and entry.status is not Status.BOGUS else None

    # Negative answers ----------------------------------------------------------------------------
    def put_negative(self, name: dns.name.Name, rdtype: int, rcode: str,
                     authority: tuple[dns.rrset.RRset, ...], status: Status, why: str, ttl: int) -> None:
        """RFC 2308: NXDOMAIN is cached per name (it holds for every type), NODATA per name and
        type. A SECURE answer's NSEC records also go to the NSEC cache (RFC 8198)."""
        name = lower_name(name)  # negative entries keep the lower-case spelling (from the key)
        name_key = self._key(name)
        ttl = self._ttl(ttl, status, self.config.max_negative_ttl)
        # A bogus NXDOMAIN (e.g. forged) stays per name and type: it must not take down the
        # name's other types for bogus_ttl.
        nx = rcode == "NXDOMAIN" and status is not Status.BOGUS
        rdtype = self._int(rdtype)
        key = (NEGATIVE, name_key, NXDOMAIN_TYPE if nx else rdtype)
        wire = pack(authority)
        entry = NegativeEntry(key, rdtype, rcode, status, self._why(why, name), self.clock() + ttl, self._int(ttl),
                              self._int(_estimate(wire, *authority)), wire)
        self._store(key, entry)
        if status is Status.SECURE:
            self._put_nsecs(authority, ttl)

    def get_negative(self, name: dns.name.Name, rdtype: int) -> NegativeEntry | None:
        name_key = _nkey(name)
        return self._get((NEGATIVE, name_key, NXDOMAIN_TYPE)) or self._get((NEGATIVE, name_key, rdtype))

    def get_stale_negative(self, name: dns.name.Name, rdtype: int) -> NegativeEntry | None:
        name_key = _nkey(name)
        for key in ((NEGATIVE, name_key, NXDOMAIN_TYPE), (NEGATIVE, name_key, rdtype)):
            entry = self._get(key, stale=True)
            if entry is not None and entry.status is not Status.BOGUS:
                return entry
        return None

    # Validated NSEC (aggressive negative caching, RFC 8198) ------------------------------------
    def _put_nsecs(self, authority, ttl: int) -> None:
        """Index the NSECs and NSEC3s of a SECURE negative answer under the zone that signed
        them. The caller validated every such record of ``authority`` with that zone's keys
        (engine verified_nsecs); a signer that is not one single name is not trusted to say which."""
        sigs = {(r.name, r.covers): r for r in authority if r.rdtype == dns.rdatatype.RRSIG}
        now = self.clock()
        for rrset in authority:
            if rrset.rdtype not in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3):
                continue
            rrsigs = sigs.get((rrset.name, rrset.rdtype))
            signers = {lower_name(rd.signer) for rd in rrsigs} if rrsigs else set()
            if len(signers) != 1:
                continue
            zone = self._zone(signers.pop())
            owner = lower_name(rrset.name)
            if owner.labels == rrset.name.labels:
                owner = rrset.name  # one Name for the key and the entry (as received, lower case)
            if not owner.is_subdomain(zone):
                continue
            # RFC 8198 §5.4 / RFC 9077: no longer than the NSEC TTL, the negative TTL, the signatures.
            life = min(ttl, rrset.ttl, _sig_lifetime(rrsigs, now) or 0)
            if life <= 0:
                continue
            wire = pack((rrset, rrsigs), rrset.name)
            entry = NsecEntry(zone, rrset.name, now + life, int(life), _estimate(wire, rrset, rrsigs), wire)
            if rrset.rdtype == dns.rdatatype.NSEC3:
                self._put_nsec3(zone, owner, rrset, entry)
                continue
            key = (NSEC, owner, zone)
            # _store drops a previous entry under the same key and with it the owner's place in
            # the index (the apex NSEC comes with nearly every NXDOMAIN): index it again.
            self._store(key, entry)
            if key in self._lru:
                owners = self._nsec_index.setdefault(zone, [])
                i = bisect.bisect_left(owners, owner)
                if i == len(owners) or owners[i] != owner:
                    owners.insert(i, owner)

    def _put_nsec3(self, zone: dns.name.Name, owner: dns.name.Name, rrset: dns.rrset.RRset,
                   entry: NsecEntry) -> None:
        """One NSEC3 of ``zone``'s chain, keyed by the digest its owner label spells. Only
        records the proofs may use (one hashed label below the zone, a known algorithm, flags
        0 or 1, iterations within the limit) are kept; a record with other parameters than
        the zone's cached chain starts the chain anew (the zone changed its NSEC3PARAM)."""
        from ..dnssec.nsec3 import MAX_ITERATIONS, usable_nsec3s
        usable, _ = usable_nsec3s([rrset], zone)
        if len(usable) != 1 or usable[0].params[1] > MAX_ITERATIONS or owner.parent() != zone:
            return
        record = usable[0]
        zkey = _nkey(zone)
        chain = self._nsec3_index.get(zkey)
        if chain is not None and chain[0] != record.params:
            for digest in list(chain[1]):
                self._drop((NSEC3, digest, zkey))
            self._nsec3_index.pop(zkey, None)
        key = (NSEC3, record.owner, zkey)
        self._store(key, entry)
        if key not in self._lru:
            return
        chain = self._nsec3_index.get(zkey)
        if chain is None:
            chain = self._nsec3_index[zkey] = (record.params, [])
        digests = chain[1]
        i = bisect.bisect_left(digests, record.owner)
        if i == len(digests) or digests[i] != record.owner:
            digests.insert(i, record.owner)

    def nsec_zone(self, name: dns.name.Name) -> dns.name.Name | None:
        """The deepest zone at or above ``name`` with cached NSECs or NSEC3s."""
        if not self._nsec_index and not self._nsec3_index:
            return None
        probe = name
        while True:
            if probe in self._nsec_index or (self._nsec3_index and _nkey(probe) in self._nsec3_index):
                return probe
            if probe == dns.name.root:
                return None
            probe = probe.parent()

    def nsec_around(self, zone: dns.name.Name, name: dns.name.Name) -> NsecEntry | None:
        """The fresh NSEC of ``zone`` with the greatest owner <= ``name`` (canonical order): the
        only one that can match or cover it."""
        owners = self._nsec_index.get(zone)
        if not owners:
            return None
        i = bisect.bisect_right(owners, name) - 1
        if i < 0:
            i = len(owners) - 1  # before the apex cannot happen in-zone; the wrap NSEC is last
        return self._get((NSEC, owners[i], zone))

    def has_nsec(self, zone: dns.name.Name) -> bool:
        """Whether NSEC (not NSEC3) records of ``zone`` are cached."""
        return zone in self._nsec_index

    def nsec3_params(self, zone: dns.name.Name) -> tuple[int, int, bytes] | None:
        """(algorithm, iterations, salt) of ``zone``'s cached NSEC3 chain, if any."""
        chain = self._nsec3_index.get(_nkey(zone))
        return chain[0] if chain is not None else None

    def nsec3_around(self, zone: dns.name.Name, digest: bytes) -> NsecEntry | None:
        """The fresh NSEC3 of ``zone`` with the greatest owner digest <= ``digest``: the only
        one that can match or cover it (the chain's last record wraps round to the first)."""
        return self.nsec3_around_key(_nkey(zone), digest)

    def nsec3_around_key(self, zone_key: bytes | tuple, digest: bytes) -> NsecEntry | None:
        """nsec3_around for the zone's cache key (``cache_entries._nkey``)."""
        chain = self._nsec3_index.get(zone_key)
        if chain is None or not chain[1]:
            return None
        digests = chain[1]
        i = bisect.bisect_right(digests, digest) - 1
        return self._get((NSEC3, digests[i], zone_key))  # i == -1: the last one, which wraps

    # Delegations (the infrastructure cache) ----------------------------------------------------
    def put_delegation(self, zone: dns.name.Name, servers: tuple[Server, ...],
                       nameservers: tuple[dns.name.Name, ...], ttl: int) -> None:
        zone = lower_name(zone)
        ttl = self._ttl(ttl, None, self.config.max_ttl)
        size = ENTRY_OVERHEAD + 96 * len(servers) + 100 * len(nameservers)
        self._store((DELEGATION, _nkey(zone), dns.rdatatype.NS),
                    Delegation(zone, servers, nameservers, self.clock() + ttl, ttl, size))

    def get_delegation(self, zone: dns.name.Name) -> Delegation | None:
        return self._get((DELEGATION, _nkey(zone), dns.rdatatype.NS))

    def get_delegation_key(self, key: bytes | tuple[bytes, ...]) -> Delegation | None:
        """get_delegation by the zone's key (``cache_entries._nkey``), for walks up a name."""
        return self._get((DELEGATION, key, dns.rdatatype.NS))

    # Zone key trust (the key cache) ------------------------------------------------------------
    def put_trust(self, zone: dns.name.Name, status: Status, why: str,
                  dnskeys: dns.rrset.RRset | None, ttl: int) -> ZoneTrust:
        zone = lower_name(zone)
        ttl = self._ttl(ttl, status, self.config.max_ttl)
        keys = dnskeys if status is Status.SECURE else None
        entry = ZoneTrust(zone, status, why, keys, self.clock() + ttl, ttl, materialised_size(keys))
        self._store((TRUST, _nkey(zone), dns.rdatatype.DNSKEY), entry)
        return entry

    def get_trust(self, zone: dns.name.Name) -> ZoneTrust | None:
        return self._get((TRUST, _nkey(zone), dns.rdatatype.DNSKEY))

    # Whole resolutions (the message cache) -----------------------------------------------------
    def put_resolution(self, key: str, name: dns.name.Name, value: Any, status: Status, ttl: int,
                       size: int) -> None:
        """Memoise ``value`` (``size``: what its objects cost) under the text ``key``. A
        Resolution is kept packed, at a fifth of its built size (resolution.pack), and built
        again when hit (get_resolution; the hot layer then charges ``size`` and the objects
        rebuilt from the bytes, BUILT_RESOLUTION_OVERHEAD); other values, and Resolutions
        that cannot be packed exactly, are kept as given."""
        ttl = self._ttl(ttl, status, self.config.max_ttl)
        if ttl <= 0:
            return
        now = self.clock()
        name_key = self._key(name)
        packed = why = None
        if type(value) is Resolution:
            owner = _key_name(name_key)  # what ResolutionEntry.name gives back
            packed = pack_resolution(value, key, name_text(owner))
            why = self._why(value.why, owner) if packed is not None else None
        if packed is None:
            entry = ResolutionEntry(name_key, value, status, now + ttl, now, self._int(ttl), ENTRY_OVERHEAD + size)
        else:
            entry = ResolutionEntry(name_key, None, status, now + ttl, now, self._int(ttl),
                                    self._int(RESOLUTION_OVERHEAD + len(key) + len(packed)), packed, why,
                                    self._int(value.ttl), self._int(BUILT_RESOLUTION_OVERHEAD + size))
        self._store((RESOLUTION, key, 0), entry)

    def get_resolution(self, key: str) -> ResolutionEntry | None:
        """The memoised resolution while fresh (expired ones are dropped, never served stale:
        serve-stale works per RRset, where the failure is known), its ``value`` built. A
        packed one is built here and kept built in the hot layer (at most HOT_MAX, within
        max_bytes/8 with the hot answers; the oldest goes back to its packed form)."""
        k = (RESOLUTION, key, 0)
        entry = self._lru.get(k)
        if entry is None:
            return None
        if entry.expires <= self.clock():
            self._drop(k)
            return None
        self._lru.move_to_end(k)
        if entry.value is None:
            value = entry.built(key)
            if not self._admit_resolution(k, entry, value):
                return entry.copy(value)  # too big to keep built: this caller's copy only
        return entry

    def _admit_resolution(self, k: tuple, entry: ResolutionEntry, value: Any) -> bool:
        size = entry._hot_size
        budget = self.config.max_bytes // 8
        if size > budget:
            return False
        while self._hot_res and len(self._hot_res) >= HOT_MAX:
            self._shed_hot(lookups_first=False)
        while (self._hot or self._hot_res) and self.hot_bytes + size > budget:
            self._shed_hot(lookups_first=False)
        entry.value = value
        self._hot_res[k] = entry
        self.hot_bytes += size
        self._fit_hot()
        return True

    def refresh_resolution(self, key: str, entry: ResolutionEntry, value: Any) -> None:
        """Replace a memoised value in place (same expiry), e.g. with its TTL counted down."""
        k = (RESOLUTION, key, 0)
        if self._lru.get(k) is not entry:
            return
        now = self.clock()
        if entry._packed is None:
            self._lru[k] = ResolutionEntry(entry._name, value, entry.status, entry.expires, now, entry.ttl, entry.size)
            return
        owner = entry.name
        packed = pack_resolution(value, key, name_text(owner)) if type(value) is Resolution else None
        if packed is None:  # no longer packable: kept as given, at its built size
            self._store(k, ResolutionEntry(entry._name, value, entry.status, entry.expires, now, entry.ttl,
                                           ENTRY_OVERHEAD + entry._hot_size))
            return
        if packed != entry._packed:  # more than the TTL changed: the bytes follow
            self.bytes += len(packed) - len(entry._packed)
            entry.size = self._int(entry.size + len(packed) - len(entry._packed))
            entry._packed = packed
        entry._why = self._why(value.why, owner)
        entry.stored, entry._vttl = now, self._int(value.ttl)
        if self._hot_res.get(k) is entry:
            entry.value = value
        else:
            self._admit_resolution(k, entry, value)

    # Operations: flush and dump -------------------------------------------------------------------
    def flush(self, name: dns.name.Name | str | None = None, subtree: dns.name.Name | str | None = None) -> int:
        """Remove everything at ``name``, or at and below ``subtree``, or (neither given) all.
        Returns how many entries went. Server RTT history is kept (it is not DNS data)."""
        if name is None and subtree is None:
            count = len(self._lru)
            self.denial_version += 1
            self._dnames = 0
            self._lru.clear()
            self._nsec_index.clear()
            self._nsec3_index.clear()
            self._hot.clear()
            self._hot_res.clear()
            self.bytes = self.hot_bytes = 0
            return count
        exact = _nkey(_as_name(name)) if name is not None else None
        below = _as_name(subtree) if subtree is not None else None
        below_key = _nkey(below) if below is not None else None
        suffix = b"." + below_key if type(below_key) is bytes else None
        doomed = []
        for key, entry in self._lru.items():
            # Compare keys, not Names: packed entries keep no Name (building one per entry
            # would make flushing a large cache slow). Joined keys match by suffix at a label
            # boundary; names with a dot inside a label fall back to Name comparison.
            nk = key[1] if key[0] <= NEGATIVE else entry._name if key[0] == RESOLUTION else _nkey(entry.name)
            if exact is not None and nk == exact:
                doomed.append(key)
            elif below is not None:
                if nk == below_key or (suffix is not None and type(nk) is bytes and nk.endswith(suffix)):
                    doomed.append(key)
                elif (suffix is None or type(nk) is not bytes) and entry.name.is_subdomain(below):
                    doomed.append(key)
        for key in doomed:
            self._drop(key)
        if doomed:
            self._clear_hot_lookups()  # hot resolutions went with their entries (_forget)
        return len(doomed)

    def clear(self) -> None:
        self.flush()

    def entries(self) -> list[Entry]:
        """Every entry, least recently used first (reading does not reorder): for snapshots."""
        return list(self._lru.values())

    def dump(self) -> list[CacheRecord]:
        """Every entry, least recently used first (reading does not reorder)."""
        return list(self._records())

    def _records(self) -> Iterator[CacheRecord]:
        now = self.clock()
        for key, entry in self._lru.items():
            kind = key[0]
            if kind == NEGATIVE:
                rdtype = "ANY" if key[2] == NXDOMAIN_TYPE else type_text(key[2])
            elif kind == RESOLUTION:
                rdtype = "-"
            else:
                rdtype = type_text({NSEC: dns.rdatatype.NSEC, NSEC3: dns.rdatatype.NSEC3}.get(kind, key[2]))
            status = entry.status.value if entry.status is not None else None
            expired = entry.expires <= now
            yield CacheRecord(KIND_NAMES[kind], entry.name.to_text(), rdtype, status,
                              max(0, int(entry.expires - now)), expired and self._servable_stale(key, entry, now),
                              getattr(entry, "rcode", None), entry.size)

    def stats(self) -> dict[str, Any]:
        """Counters for operators (``cid ctl``, metrics): entries per kind, bytes, evictions."""
        kinds = dict.fromkeys(KIND_NAMES, 0)
        for key in self._lru:
            kinds[KIND_NAMES[key[0]]] += 1
        return {"entries": len(self._lru), "bytes": self.bytes, "max_bytes": self.config.max_bytes,
                "evictions": self.evictions, "kinds": kinds, "hot": len(self._hot),
                "hot_resolutions": len(self._hot_res), "hot_bytes": self.hot_bytes}

    def __len__(self) -> int:
        return len(self._lru)


def _shared(table: dict, value: Any, bound: int) -> Any:
    """The one object equal to ``value`` kept in ``table`` (``value`` itself the first time).
    Past ``bound`` objects the table starts again: that only loses sharing, never data."""
    found = table.get(value)
    if found is None:
        if len(table) > bound:
            table.clear()
        found = table[value] = value
    return found


def _as_name(name: dns.name.Name | str) -> dns.name.Name:
    if isinstance(name, str):
        name = dns.name.from_text(name)
    return name.canonicalize()
