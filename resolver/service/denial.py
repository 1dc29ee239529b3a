"""Denials answered without a task: the RFC 8198 fast path of the recursive front end.

A random-subdomain flood asks names nobody asked before, so neither the rendered-response cache
nor the engine's caches hold them, and each one used to cost a task, an Engine, dnspython objects
built from the packed NSECs, the proof over them, an SOA lookup and a render (≈ 0.7 ms). Yet the
answer is fixed by a few cached NSECs. This module answers such queries synchronously, inside
``RecursiveServer.handle``, from a per-zone mirror of what the engine would use:

* each NSEC the engine's ``deny_from_cache`` would gather for a name (at the name, at each of its
  ancestors in the zone and at the wildcard below each) is found the way it finds it — the
  cached NSEC with the greatest owner at or below the target, in canonical order
  (``Cache.nsec_around``) — but over canonical keys (reversed lower-case labels, whose tuple
  order *is* the canonical order, RFC 4034 §6.1), and with its facts (range, types, TTL) and
  its records' wire bytes prepared once per cache entry;
* the proof (``deny``) is resolver.dnssec.nsec's NXDOMAIN-then-NODATA logic on those keys, rule
  for rule (tests/test_service_aggressive.py checks them against each other on real, fuzzed
  and hostile chains, and the responses against the slow path's, byte for byte);
* the response is what ``answer.respond`` renders for the engine's Lookup and the zone's cached
  SOA: same flags, AD rule, TTLs (the least time left on the NSECs used, capped by their TTL;
  the SOA's by its TTL and MINIMUM), authority section and owner-name compression.

What the mirror knows is always read from the cache through its public methods, never guessed:
a span (one cached NSEC) answers for a target only when ``Cache.nsec_around`` returned that very
entry for a target at or above it (up to the highest such target, so no owner cached in between
is skipped), and only for ``REFRESH`` seconds after that, on the monotonic clock; the zone's key
trust (``get_trust``: SECURE) and its SOA entry (``get_rrset``, fresh, not bogus, not due for
prefetch) are re-read as often, and so is the absence of a DNAME at or above the apex. Cached
answers that would take precedence for the question (an RRset, a CNAME, a negative answer, a
DNAME between the apex and the name) are looked up on every query. So an answer given here is the
slow path's answer for the cache as it was at most ``REFRESH`` seconds ago, never past any TTL
— the same bound as the rendered-response cache (spec/service.md §4). Anything else — CD=1, DS,
CNAME, EDNS options, a TC-sized answer, a span not (or no longer) confirmed, a proof that fails —
goes the slow way, which remains the reference.
"""

from __future__ import annotations

import bisect
import struct
import time
from collections.abc import Callable

import dns.name
import dns.rdatatype
import dns.rrset

from ..client import Resolver
from ..dnssec.nsec import nsec_types
from ..status import Status
from . import answer as _answer
from .denial_nsec3 import Nsec3Chain, nsec3_facts, prove_apex_child_nxdomain
from .answer import ADVERTISED_PAYLOAD, MIN_PAYLOAD, TCP_MAX

REFRESH = 1.0  # seconds a span, the trust or the SOA read from the cache may answer before re-reading
MAX_SPANS = 8192  # spans mirrored across all zones (≈ 2 KiB each with their records' bytes)
MAX_ZONES = 1024

_NS, _SOA, _DS, _CNAME, _DNAME = (dns.rdatatype.NS, dns.rdatatype.SOA, dns.rdatatype.DS, dns.rdatatype.CNAME,
                                  dns.rdatatype.DNAME)
_NSEC, _NSEC3, _RRSIG, _OPT = dns.rdatatype.NSEC, dns.rdatatype.NSEC3, dns.rdatatype.RRSIG, dns.rdatatype.OPT
# Question types the slow path treats specially: FORMERR/REFUSED/NOTIMP (answer.read_query), DS
# (denied from the parent's chain), CNAME (its own precedence rules), RRSIG (from the cache only).
_SLOW_QTYPES = (_answer._FORMERR_QTYPES | _answer._REFUSED_QTYPES | _answer._NOTIMP_QTYPES) | {_DS, _CNAME, _RRSIG}
_QR, _RD, _RA, _AD, _CD = 0x8000, 0x0100, 0x0080, 0x0020, 0x0010
_OPCODE_BITS = 0x7800
_NXDOMAIN = 3
_FLAGS_COUNTS = struct.Struct("!5H")  # the header after the ID
_TYPE_CLASS = struct.Struct("!HH")
_TTL = struct.Struct("!I")
_RR_FIXED = struct.Struct("!HHIH")
_POINTER = struct.Struct("!H")
_NEVER = float("-inf")
_bisect = bisect.bisect_right

Key = tuple[bytes, ...]  # a name's labels, root first, lower case: canonical order is tuple order


def key_of(name: dns.name.Name) -> Key:
    labels = name.labels
    if labels and labels[-1] == b"":
        labels = labels[:-1]
    return tuple(label.lower() for label in reversed(labels))



# The proof --------------------------------------------------------------------------------------
class Facts:
    """What resolver.dnssec.nsec's _Nsec holds of one usable NSEC, on keys, with the flags its
    checks read precomputed."""

    __slots__ = ("key", "next", "types", "ttl", "wraps", "delegation", "refuses")

    def __init__(self, key: Key, following: Key, types: frozenset[int], ttl: int):
        self.key, self.next, self.types, self.ttl = key, following, types, ttl
        self.wraps = following <= key  # the last NSEC of the chain: it covers every name after its owner
        self.delegation = _NS in types and _SOA not in types  # parent side of a zone cut
        self.refuses = self.delegation or _DNAME in types  # _Nsec.denies_below: nothing below it

    def covers(self, name: Key) -> bool:
        return name > self.key and (self.wraps or name < self.next)

    def __repr__(self) -> str:
        return f"Facts({self.key!r} -> {self.next!r}, ttl {self.ttl})"


def facts(rrset: dns.rrset.RRset, zone: Key) -> Facts | None:
    """The NSEC as nsec._collect accepts it for ``zone``, or None where _collect ignores it."""
    if rrset.rdtype != _NSEC or len(rrset) != 1:
        return None
    owner = key_of(rrset.name)
    rdata = rrset[0]
    following = key_of(rdata.next)
    if owner[:len(zone)] != zone or following[:len(zone)] != zone:
        return None
    if following <= owner and following != zone:
        return None  # only the last NSEC wraps, and to the apex (RFC 4034 §4.1.1)
    return Facts(owner, following, nsec_types(rdata), rrset.ttl)


def _common(a: Key, b: Key, start: int = 0) -> int:
    """How many labels (from the root) a and b share; the first ``start`` are known to match."""
    n = start
    end = min(len(a), len(b))
    while n < end and a[n] == b[n]:
        n += 1
    return n


def _nodata_refused(n: Facts, qtype: int, zone: Key) -> bool:
    """nsec._nodata_refusal is not None."""
    types = n.types
    if qtype in types or _CNAME in types:
        return True
    if qtype == _DS:
        if _SOA in types:
            return True
    elif n.delegation:
        return True
    return qtype != _DS and n.key == zone and _SOA not in types


def _find(records: list[Facts], name: Key) -> tuple[Facts | None, Facts | None]:
    """(the record owned by ``name``, the first record that covers it and may deny it, as
    nsec._covering) — the cover only when no record owns the name."""
    cover = None
    for r in records:
        key = r.key
        if key == name:
            return r, None
        if cover is None and name > key and (r.wraps or name < r.next) \
                and not (r.refuses and name[:len(key)] == key):  # not below a cut or DNAME (RFC 6840 §4.1)
            cover = r
    return None, cover


def _wildcard(qname: Key, cover: Facts, zone: Key) -> Key:
    """The wildcard at the closest encloser (nsec.closest_encloser): the longer of qname's
    common ancestors with the covering NSEC's owner and next name (all three are in the zone)."""
    z = len(zone)
    a, b = _common(qname, cover.key, z), _common(qname, cover.next, z)
    return qname[:a if a >= b else b] + (b"*",)


def prove_nxdomain(qname: Key, records: list[Facts], zone: Key) -> int | None:
    """nsec.prove_nxdomain: the TTL of a SECURE proof, or None."""
    if qname[:len(zone)] != zone:
        return None
    match, cover = _find(records, qname)
    if cover is None:
        return None  # it exists, or nothing covers it
    following = cover.next
    if following != qname and following[:len(qname)] == qname:
        return None  # an empty non-terminal
    match, wcover = _find(records, _wildcard(qname, cover, zone))
    if wcover is None:
        return None  # the wildcard exists, or nothing covers it
    return cover.ttl if cover.ttl < wcover.ttl else wcover.ttl


def prove_nodata(qname: Key, qtype: int, records: list[Facts], zone: Key) -> int | None:
    """nsec.prove_nodata: the TTL of a SECURE proof, or None."""
    if qname[:len(zone)] != zone:
        return None
    match, cover = _find(records, qname)
    if match is not None:
        return None if _nodata_refused(match, qtype, zone) else match.ttl
    if cover is None:
        return None
    following = cover.next
    if following != qname and following[:len(qname)] == qname:
        return cover.ttl  # empty non-terminal (RFC 7129 §3.2)
    wild = _wildcard(qname, cover, zone)
    for r in records:
        if r.key == wild:
            if _nodata_refused(r, qtype, zone):
                return None
            return cover.ttl if cover.ttl < r.ttl else r.ttl
    return None


def deny(qname: Key, qtype: int, records: list[Facts], zone: Key) -> tuple[int, int] | None:
    """engine.aggressive.deny_from_cache's decision: (rcode, proof TTL) — NXDOMAIN if proven, else
    NODATA (NOERROR) if proven — or None."""
    ttl = prove_nxdomain(qname, records, zone)
    if ttl is not None:
        return _NXDOMAIN, ttl
    ttl = prove_nodata(qname, qtype, records, zone)
    return None if ttl is None else (0, ttl)


# The mirror -------------------------------------------------------------------------------------
MEMO = 4  # TTLs whose rendered records a span or SOA keeps (one a second is in use)
MEMO_SETS = 256  # proofs and authority sections kept per zone


class _RRsetWire:
    """One RRset's records after the owner name, with the TTL left to fill in."""

    __slots__ = ("ttl", "head", "tails")

    def __init__(self, rrset: dns.rrset.RRset):
        self.ttl = rrset.ttl
        self.head = _TYPE_CLASS.pack(rrset.rdtype, rrset.rdclass)
        self.tails = []
        for rdata in rrset:
            data = rdata.to_wire()
            self.tails.append(_POINTER.pack(len(data)) + data)

    def chunks(self, ttl: int) -> list[bytes]:
        """Each record after its owner name, handed out with at most ``ttl``."""
        head = self.head + _TTL.pack(min(self.ttl, ttl))
        return [head + tail for tail in self.tails]


class _Owner:
    """An owner name written as ResponseWriter.owner writes it: compressed against the longest
    suffix it shares with the question, else in full."""

    __slots__ = ("key", "wire", "prefixes", "suffixes")

    def __init__(self, name: dns.name.Name):
        labels = name.labels[:-1]
        self.key = key_of(name)
        self.wire = name.to_wire()
        n = len(labels)
        # with the last c labels shared: prefixes[c] is written, then a pointer to where the
        # question's last c labels start (the question's end minus suffixes[c] octets)
        self.prefixes = [b"".join(bytes((len(label),)) + label for label in labels[:n - c]) for c in range(n + 1)]
        self.suffixes = [1 + sum(len(label) + 1 for label in labels[n - c:]) for c in range(n + 1)]

    def render(self, shared: int, question_end: int) -> bytes:
        if shared == 0:
            return self.wire
        return self.prefixes[shared] + _POINTER.pack(0xC000 | (question_end - self.suffixes[shared]))


class _Records:
    """An owner with its RRset and RRSIGs: each record's bytes after the owner name, per TTL
    handed out (a few kept: the TTL changes once a second), then the owner compressed against
    the question in front of each."""

    __slots__ = ("owner", "rrset", "sigs", "count", "memo")

    def __init__(self, rrset: dns.rrset.RRset, sigs: dns.rrset.RRset | None):
        self.owner = _Owner(rrset.name)
        self.rrset = _RRsetWire(rrset)
        self.sigs = _RRsetWire(sigs) if sigs is not None else None
        self.count = len(self.rrset.tails) + (len(self.sigs.tails) if sigs is not None else 0)
        self.memo: dict[tuple[int, bool], list[bytes]] = {}

    def render(self, ttl: int, shared: int, question_end: int, sigs: bool) -> bytes:
        chunks = self.memo.get((ttl, sigs))
        if chunks is None:
            if len(self.memo) >= MEMO:
                self.memo.clear()
            chunks = self.rrset.chunks(ttl) + (self.sigs.chunks(ttl) if sigs else [])
            self.memo[ttl, sigs] = chunks
        owner = self.owner.render(shared, question_end)
        return owner + owner.join(chunks)


class Span:
    """One cached NSEC entry of a zone, as the fast path uses it."""

    __slots__ = ("entry", "key", "facts", "expires", "records", "checked", "high")

    def __init__(self, entry, zone: Key):
        nsec, sigs = entry.records()
        self.entry = entry
        self.key = key_of(entry.name)
        self.facts = facts(nsec, zone)  # None: gathered (authority, TTL) but no use to the proof
        self.expires = entry.expires
        self.records = _Records(nsec, sigs) if sigs is not None else None
        self.checked = _NEVER  # monotonic time nsec_around last returned this entry
        self.high = self.key  # the highest target it was returned for since then


class _Soa:
    __slots__ = ("entry", "records", "ttl", "minimum", "checked")

    def __init__(self, entry, checked: float):
        soa, sigs = entry.records()
        self.entry = entry
        self.records = _Records(soa, sigs)
        self.ttl = soa.ttl
        self.minimum = soa[0].minimum
        self.checked = checked


class Chain:
    """The spans of one zone the fast path has confirmed, by owner key."""

    __slots__ = ("zone", "key", "wildcard", "keys", "spans", "wrap", "wrap_checked", "wrap_high", "trust_checked",
                 "trust_expires", "soa", "verdicts", "templates", "hashed", "nsec3", "nsec3_spans")

    def __init__(self, zone: dns.name.Name, hashed: bool = False):
        self.hashed = hashed  # learned from an NSEC3 denial: answered by _answer_nsec3
        self.nsec3: Nsec3Chain | None = None  # its cached parameters (re-read with the trust)
        self.nsec3_spans: dict = {}  # cache entry -> Span (records' bytes), bounded
        self.zone = zone.canonicalize()
        self.key = key_of(zone)
        self.wildcard = self.key + (b"*",)
        self.keys: list[Key] = []
        self.spans: list[Span] = []
        # Targets below every cached owner (the apex NSEC not cached): nsec_around gives the last
        # owner's entry; ``wrap`` is that span, confirmed for targets up to ``wrap_high``.
        self.wrap: Span | None = None
        self.wrap_checked = _NEVER
        self.wrap_high: Key = ()
        self.trust_checked = _NEVER
        self.trust_expires = _NEVER
        self.soa: _Soa | None = None
        # For names just below the apex: the NXDOMAIN proof's TTL (or None) per set of spans
        # gathered; for every answer, its authority section (see Denials.answer).
        self.verdicts: dict[tuple, int | None] = {}
        self.templates: dict[tuple, tuple[int, bytes] | None] = {}

    def forget_checks(self) -> None:
        for span in self.spans:
            span.checked = _NEVER
        self.wrap = None


class Denials:
    """The fast path of one RecursiveServer: ``answer(wire, tcp)`` gives the response bytes the
    slow path would give for a denial provable from the cached NSECs, or None."""

    def __init__(self, resolver: Resolver, clock: Callable[[], float] = time.monotonic):
        self.resolver = resolver
        self.cache = resolver.cache
        self.clock = clock  # re-reading schedule; TTLs and expiry are on the cache's clock
        self.chains: dict[Key, Chain] = {}
        self.depths: list[int] = []  # label counts of the zones in ``chains``, deepest first
        self.spans = 0
        self.stale_before = _NEVER  # what was read from the cache before this is read again
        self.answered = 0  # queries answered here (for tests and operators)

    def slow_answered(self, lookup) -> None:
        """The slow path answered (and may have changed the cache): everything is read again.
        Zones are learned here: a SECURE denial names the zone that signed its NSECs."""
        self.stale_before = self.clock()
        if lookup.rrset is not None or lookup.status is not Status.SECURE:
            return
        for rrset in lookup.authority:
            if rrset.rdtype == _RRSIG and rrset.covers in (_NSEC, _NSEC3) and len(rrset):
                zone = rrset[0].signer
                key = key_of(zone)
                hashed = rrset.covers == _NSEC3
                chain = self.chains.get(key)
                if chain is None or chain.hashed != hashed:
                    if len(self.chains) >= MAX_ZONES:
                        self.clear()
                    self.chains[key] = Chain(zone, hashed)
                    self.depths = sorted({len(k) for k in self.chains}, reverse=True)
                return

    def clear(self) -> None:
        self.chains.clear()
        self.depths = []
        self.spans = 0

    # Reading the cache ------------------------------------------------------------------------
    def _span(self, chain: Chain, target: Key, first: bool, mono: float, floor: float,
              now: float) -> Span | None:
        """The span the engine's nsec_around(zone, target) gives now, or None (fall back)."""
        i = _bisect(chain.keys, target) - 1
        span = chain.spans[i] if i >= 0 else chain.wrap
        if span is not None:
            if span.expires <= now:
                if i < 0:
                    i = chain.spans.index(span)
                self._drop(chain, i)  # what nsec_around gives around it changes
                chain.forget_checks()
            elif i >= 0:
                if span.checked > floor and target <= span.high:
                    return span
            elif chain.wrap_checked > floor and target <= chain.wrap_high:
                return span  # below every cached owner: nsec_around wraps to the last one
        return self._probe(chain, target, first, mono, floor)

    def _probe(self, chain: Chain, target: Key, first: bool, mono: float,
               floor: float) -> Span | None:
        """``first``: ``target`` is the question's name, whose zone the engine picks anew."""
        name = dns.name.Name((*reversed(target), b""))
        if first and self.cache.nsec_zone(name) != chain.zone:
            return None  # the engine would pick another zone's chain for this name
        entry = self.cache.nsec_around(chain.zone, name)
        if entry is None:
            return None
        key = key_of(entry.name)
        keys = chain.keys
        # Owners mirrored between the one given and the target are cached no more: forget them.
        lo = 0 if key > target else _bisect(keys, key)
        hi = _bisect(keys, target)
        if hi > lo:
            if chain.wrap in chain.spans[lo:hi]:
                chain.wrap = None
            del keys[lo:hi]
            del chain.spans[lo:hi]
            self.spans -= hi - lo
        i = bisect.bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            span = chain.spans[i]
            if span.entry is not entry:
                span = chain.spans[i] = Span(entry, chain.key)
                chain.wrap = None
        else:
            if self.spans >= MAX_SPANS:  # bounded: start this zone's mirror again (or all, if it is small)
                self.spans -= len(chain.spans)
                chain.keys.clear()
                chain.spans.clear()
                chain.wrap = None
                if self.spans >= MAX_SPANS // 2:
                    self.clear()
                return None
            span = Span(entry, chain.key)
            keys.insert(i, key)
            chain.spans.insert(i, span)
            self.spans += 1
            chain.wrap = None  # a new first or last owner changes what targets below the first get
            if i > 0:
                chain.spans[i - 1].checked = _NEVER  # it may have answered for targets past this owner
        if key > target:
            # No cached owner at or below the target: nsec_around gave the last one (the wrap).
            if chain.wrap is span and chain.wrap_checked > floor:
                chain.wrap_high = max(chain.wrap_high, target)
            else:
                chain.wrap, chain.wrap_checked, chain.wrap_high = span, mono, target
            target = key  # and at its own owner it gives itself
        if span.checked > floor:
            if target > span.high:
                span.high = target
        else:
            span.checked, span.high = mono, target
        return span

    def _drop(self, chain: Chain, i: int) -> None:
        if chain.spans[i] is chain.wrap:
            chain.wrap = None
        del chain.keys[i]
        del chain.spans[i]
        self.spans -= 1

    def _trusted(self, chain: Chain, mono: float, floor: float, now: float) -> bool:
        """The zone's keys are trusted (SECURE), its chain is NSEC, and no DNAME is cached at or
        above its apex: what deny_from_cache and the engine's DNAME rule need (re-read as spans)."""
        if chain.trust_checked > floor and chain.trust_expires > now:
            return True
        trust = self.cache.get_trust(chain.zone)
        if trust is None or trust.status is not Status.SECURE:
            return False
        if self.cache.nsec3_params(chain.zone) is not None:
            return False  # NSEC3 records of the zone would join the proof (deny_from_cache): not here
        if self._dname_at_or_above(chain.zone):  # it rewrites every name below (RFC 6672 §3.2)
            return False
        chain.trust_checked, chain.trust_expires = mono, trust.expires
        return True

    def _dname_at_or_above(self, zone: dns.name.Name) -> bool:
        while True:
            if self.cache.get_rrset(zone, _DNAME) is not None:
                return True
            if zone == dns.name.root:
                return False
            zone = zone.parent()

    def _trusted_nsec3(self, chain: Chain, mono: float, now: float) -> bool:
        """As _trusted, for a zone whose cached chain is NSEC3 only: its keys SECURE, its NSEC3
        parameters (a change starts the cache's chain anew), no DNAME at or above the apex."""
        trust = self.cache.get_trust(chain.zone)
        if trust is None or trust.status is not Status.SECURE or self.cache.has_nsec(chain.zone):
            return False
        params = self.cache.nsec3_params(chain.zone)
        if params is None:
            return False
        if chain.nsec3 is None or chain.nsec3.params != params:
            chain.nsec3 = Nsec3Chain(chain.zone, params)
            chain.nsec3_spans.clear()
            chain.templates.clear()
        if self._dname_at_or_above(chain.zone):  # it rewrites every name below (RFC 6672 §3.2)
            return False
        chain.trust_checked, chain.trust_expires = mono, trust.expires
        return True

    def _nsec3_span(self, chain: Chain, entry) -> Span | None:
        """The span of a cached NSEC3 entry: its records' bytes, and as ``facts`` what the
        proof reads of it (None: not usable). Kept per entry object (a new entry, a new span)."""
        span = chain.nsec3_spans.get(entry)
        if span is None:
            if len(chain.nsec3_spans) >= MAX_SPANS:
                chain.nsec3_spans.clear()
            span = Span(entry, chain.key)
            span.facts = nsec3_facts(entry, chain.zone)
            chain.nsec3_spans[entry] = span
        return span if span.facts is not None else None

    def _answer_nsec3(self, chain: Chain, name_wire: bytes, qkey: Key, mono: float, floor: float,
                      now: float) -> tuple[list[Span], int] | None:
        """The spans (in deny_from_cache's order: the name's, the apex's, the wildcard's, each
        once) and the proof TTL of an NXDOMAIN for a name one label below the apex, read from
        the cache for this very query; or None (the slow way)."""
        if len(qkey) != len(chain.key) + 1:
            return None
        if (chain.trust_checked <= floor or chain.trust_expires <= now or chain.nsec3 is None) \
                and not self._trusted_nsec3(chain, mono, now):
            return None
        hashed = chain.nsec3
        around = self.cache.nsec3_around_key
        digest = hashed.digest(name_wire)
        found = []
        for target in (digest, hashed.apex, hashed.wildcard):
            entry = around(hashed.zone_key, target)
            span = self._nsec3_span(chain, entry) if entry is not None else None
            if span is None:
                return None
            found.append(span)
        ttl = prove_apex_child_nxdomain(hashed, digest, *(span.facts for span in found))
        if ttl is None:
            return None
        spans = []
        for span in found:
            if span not in spans:
                spans.append(span)
        return spans, ttl

    def _soa(self, chain: Chain, mono: float, floor: float, now: float) -> _Soa | None:
        """The zone's SOA as the slow path's SOA lookup finds it without the engine: cached,
        fresh, not bogus, not due for prefetch (a lookup that must refresh goes the slow way)."""
        soa = chain.soa
        if soa is None or soa.checked <= floor:
            entry = self.cache.get_rrset(chain.zone, _SOA)
            if entry is None or entry.status is Status.BOGUS:
                return None
            if soa is None or soa.entry is not entry:
                soa = chain.soa = _Soa(entry, mono)
            soa.checked = mono
        entry = soa.entry
        if entry.expires <= now or self.cache.near_expiry(entry, now):
            return None
        return soa

    # Answering --------------------------------------------------------------------------------
    def answer(self, wire: bytes, tcp: bool) -> bytes | None:
        """A plain recursive query — QUERY, RD=1, CD=0, one uncompressed IN question, no OPT or
        an empty EDNS(0) one — for a name in a zone with cached NSECs; else None at once (the
        slow path decides, as answer.read_query and the engine do)."""
        chains = self.chains
        end = len(wire)
        if not chains or end < 17 or wire[4:10] != b"\x00\x01\x00\x00\x00\x00" or wire[10]:
            return None
        flags = (wire[2] << 8) | wire[3]
        arcount = wire[11]
        if flags & (_QR | _OPCODE_BITS | _CD) or not flags & _RD or arcount > 1:
            return None
        low = wire[12:].lower()  # length octets (at most 63) are not letters: unchanged
        labels = []
        pos = 0
        try:
            while length := low[pos]:
                if length > 63:
                    return None  # a compression pointer or an extended label type
                following = pos + 1 + length
                labels.append(low[pos + 1:following])
                pos = following
                if pos > 254:
                    return None  # RFC 1035 §2.3.4
        except IndexError:
            return None  # the name runs past the end
        question_end = 12 + pos + 1
        if question_end + 4 > end:
            return None
        qtype, qclass = _TYPE_CLASS.unpack_from(wire, question_end)
        if qclass != 1 or qtype in _SLOW_QTYPES:
            return None
        edns = do = False
        payload = 0
        if arcount:
            at = question_end + 4
            if at + 11 != end or wire[at] != 0:
                return None
            rtype, payload, ttl, rdlen = _RR_FIXED.unpack_from(wire, at + 1)
            if rtype != _OPT or rdlen or (ttl >> 16) & 0xFF:
                return None  # options, or an EDNS version to refuse: the slow path
            edns, do = True, bool(ttl & 0x8000)
        elif question_end + 4 != end:
            return None
        qkey = tuple(labels[::-1])
        depth = len(qkey)
        for n in self.depths:  # the deepest zone at or above the name (as Cache.nsec_zone)
            if n <= depth:
                chain = chains.get(qkey[:n])
                if chain is not None:
                    break
        else:
            return None
        cache = self.cache
        # What the slow path would answer from before any NSEC: the data, a CNAME, a negative
        # answer, a DNAME at an ancestor (the engine's _from_cache order) — looked up by key.
        joined = b".".join(labels)
        if joined.count(b".") != depth - 1:
            return None  # a label holding a dot: the slow path
        if cache.answer_cached_key(joined + b".", qtype):
            return None
        mono, now = self.clock(), cache.clock()
        # What was read from the cache before this holds: REFRESH seconds, and nothing since the
        # slow path last answered (it may have changed the cache).
        floor = mono - REFRESH
        if self.stale_before > floor:
            floor = self.stale_before
        zone = chain.key
        if chain.hashed:
            found = self._answer_nsec3(chain, low[:question_end - 12], qkey, mono, floor, now)
            if found is None:
                return None
            spans, ttl = found
            rcode, plain = _NXDOMAIN, False
            soonest = min(span.expires for span in spans)
        else:
            proven = self._answer_nsec(chain, qkey, qtype, depth, mono, floor, now)
            if proven is None:
                return None
            spans, ttl, rcode, plain, soonest = proven
        soa = chain.soa
        if soa is None or soa.checked <= floor or soa.entry.expires <= now \
                or cache.near_expiry(soa.entry, now):
            soa = self._soa(chain, mono, floor, now)
            if soa is None:
                return None
        left = int(soonest - now)  # cache.remaining of the soonest to expire
        cap = left if left < ttl else ttl
        if cap < 0:
            cap = 0
        # The authority section is a function of the SOA, the TTL, where the question's name ends
        # (compression pointers) and, with DO, of the spans and the labels each owner shares with
        # the name (all of them just the apex's, for the plain case): rendered once per those.
        if not do:
            template_key = (soa, cap, question_end)
        else:
            shared = None if plain else tuple(_common(span.key, qkey, len(zone)) for span in spans)
            template_key = (tuple(spans), soa, cap, question_end, shared)
        rendered = chain.templates.get(template_key, _UNKNOWN)
        if rendered is _UNKNOWN:
            if len(chain.templates) >= MEMO_SETS:
                chain.templates.clear()
            rendered = chain.templates[template_key] = self._authority(soa, spans, cap, qkey, zone,
                                                                       question_end, do)
        if rendered is None:
            return None
        count, body = rendered
        if tcp:
            size = TCP_MAX
        elif edns:
            size = MIN_PAYLOAD if payload < MIN_PAYLOAD else (payload if payload < ADVERTISED_PAYLOAD
                                                              else ADVERTISED_PAYLOAD)
        else:
            size = MIN_PAYLOAD
        if len(body) > size - question_end - 4 - (11 if edns else 0):
            return None  # TC=1: the slow path writes that
        response_flags = _QR | _RA | _RD | rcode
        if do or flags & _AD:
            response_flags |= _AD  # SECURE, and the client understands AD (RFC 6840 §5.7)
        self.answered += 1
        return b"".join((wire[:2], _FLAGS_COUNTS.pack(response_flags, 1, 0, count, 1 if edns else 0),
                         wire[12:question_end + 4], body, _OPT_DO if do else _OPT_PLAIN if edns else b""))


    def _answer_nsec(self, chain: Chain, qkey: Key, qtype: int, depth: int, mono: float, floor: float,
                     now: float) -> tuple[list[Span], int, int, bool, float] | None:
        """deny_from_cache over the mirrored NSEC spans: (spans, proof TTL, rcode, whether the
        plain name-below-the-apex shape applies, soonest expiry), or None (the slow way)."""
        if (chain.trust_checked <= floor or chain.trust_expires <= now) \
                and not self._trusted(chain, mono, floor, now):
            return None
        zone = chain.key
        # deny_from_cache's targets: the name, then each ancestor in the zone (a closest encloser
        # candidate) and the wildcard below it
        keys = chain.keys
        i = _bisect(keys, qkey) - 1
        first = chain.spans[i] if i >= 0 else None
        if first is None or first.checked <= floor or qkey > first.high or first.expires <= now:
            first = self._span(chain, qkey, True, mono, floor, now)
            if first is None:
                return None
        spans = [first]
        if depth == len(zone) + 1:  # a name just below the apex: the apex and *.apex
            for target in (zone, chain.wildcard):
                i = _bisect(keys, target) - 1
                span = chain.spans[i] if i >= 0 else None
                if span is None or span.checked <= floor or target > span.high or span.expires <= now:
                    span = self._span(chain, target, False, mono, floor, now)  # (as _span's first test)
                    if span is None:
                        return None
                if span not in spans:
                    spans.append(span)
        else:
            for n in range(depth - 1, len(zone) - 1, -1):
                for target in (qkey[:n], qkey[:n] + (b"*",)):
                    span = self._span(chain, target, False, mono, floor, now)
                    if span is None:
                        return None
                    if span not in spans:
                        spans.append(span)
        ttl = None
        covering = first.facts
        soonest = first.expires
        plain = (depth == len(zone) + 1 and covering is not None and covering.key != qkey
                 and (covering.wraps or qkey < covering.next)
                 and not (covering.refuses and qkey[:len(covering.key)] == covering.key)
                 and not (covering.next != qkey and covering.next[:depth] == qkey))
        for span in spans:
            if span.expires < soonest:
                soonest = span.expires
            if span.key >= qkey:
                plain = False
        if plain:
            # A name just below the apex, covered by the first span, and after every span's owner:
            # prove_nxdomain finds that cover, the closest encloser is the apex, the wildcard
            # *.apex, and the rest of the proof (and the owners' compression) depends on the spans
            # alone — worked out once per set of spans.
            spans_key = tuple(spans)
            ttl = chain.verdicts.get(spans_key, _UNKNOWN)
            if ttl is _UNKNOWN:
                if len(chain.verdicts) >= MEMO_SETS:
                    chain.verdicts.clear()
                ttl = chain.verdicts[spans_key] = prove_nxdomain(
                    qkey, [s.facts for s in spans if s.facts is not None], zone)
        if ttl is not None:
            rcode = _NXDOMAIN
        else:
            plain = False
            records = [s.facts for s in spans if s.facts is not None]
            ttl = prove_nxdomain(qkey, records, zone)
            if ttl is not None:
                rcode = _NXDOMAIN
            else:
                ttl = prove_nodata(qkey, qtype, records, zone)
                if ttl is None:
                    return None
                rcode = 0
        return spans, ttl, rcode, plain, soonest

    @staticmethod
    def _authority(soa: _Soa, spans: list[Span], cap: int, qkey: Key, zone: Key, question_end: int,
                   do: bool) -> tuple[int, bytes] | None:
        """answer.respond's authority section: the SOA (negative TTL, RFC 2308 §5), then with
        DO each NSEC and its RRSIGs; (records, bytes)."""
        negative = min(cap, soa.ttl, soa.minimum)
        soa_sigs = do and soa.records.sigs is not None
        parts = [soa.records.render(negative, len(zone), question_end, soa_sigs)]  # owner: the zone
        count = soa.records.count if soa_sigs else len(soa.records.rrset.tails)
        if do:
            for span in spans:
                records_wire = span.records
                if records_wire is None:
                    return None
                parts.append(records_wire.render(cap, _common(span.key, qkey), question_end, True))
                count += records_wire.count
        return count, b"".join(parts)


_UNKNOWN = object()
_OPT_PLAIN = b"\x00" + _RR_FIXED.pack(_OPT, ADVERTISED_PAYLOAD, 0, 0)
_OPT_DO = b"\x00" + _RR_FIXED.pack(_OPT, ADVERTISED_PAYLOAD, 0x8000, 0)
