"""The sans-I/O iterative resolver: from server hints down the delegations to an answer,
validating the chain of trust from the trust anchor on the way (RFC 1034 §5.3.3, RFC 4035 §5).

The resolution logic is written as one generator (``_run``) that yields Send actions and
receives what the driver reports back; ``next_action(s)``/``on_response``/``on_timeout`` are
the only doors in and out (the Knot Resolver / h11 pattern). Nothing here owns a socket, a
task or a real clock — nor a random source it was not given (``rng``: query IDs, 0x20 case,
exploration) — so every decision can be replayed from scripted packets.

Asking servers (query building, server choice, reply matching, EDNS/0x20 fallbacks) is the
``Upstream`` mixin (upstream.py); QNAME minimisation is qmin.py, driven from ``_lookup_one``.

The doors (serial ``next_action`` or concurrent ``next_actions``) are surface.py; in
concurrent mode a zone's DNSKEY query overlaps the next query into the zone, otherwise one
query is outstanding at a time. Every path is bounded: queries per resolution
(``max_queries``), elapsed time (``max_time``, on the injected clock; both may be a Budget
shared with other lookups), referrals per lookup (16), minimisation steps (10),
CNAME hops (8), sub-resolution depth (NS names outside their zone, DS, DNSKEY).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from ..nametext import name_text, type_text
from ..status import Status
from . import entropy
from . import trace as ev
from .actions import Send
from .aggressive import deny_from_cache
from .cache import STALE_TTL, Cache, ZoneTrust
from .cache_entries import _nkey
from .classify import Kind, dname_for, referral_ns
from .hints import Hints, Server, parse_hints
from .options import EDNS_PAYLOAD
from .qmin import MAX_MINIMISE_COUNT, Minimiser
from .qmin import QTYPE as QMIN_QTYPE
from .result import Lookup, weakest
from .scrub import Scrubbed
from .surface import Surface
from .upstream import BudgetExhausted as _Budget
from .upstream import ServFail as _ServFail
from .upstream import Upstream
from .validate import (DENIAL_TYPES, Check, check_dnskeys, check_rrset, nsec_shows_unsigned_cut, prove, signer_of,
                       verified_nsecs, wildcard_of)

MAX_CNAME = 8
MAX_REFERRALS = 16
MAX_NS_LOOKUPS = 3  # NS names resolved per referral without glue (bounds amplification)
MAX_BOGUS_RETRIES = 2  # other servers asked after answers that failed validation, per question

DS, DNSKEY, CNAME, DNAME = dns.rdatatype.DS, dns.rdatatype.DNSKEY, dns.rdatatype.CNAME, dns.rdatatype.DNAME
_Gen = Generator[Send, Any, Any]
_ALIASES = (Kind.CNAME, Kind.DNAME)


@dataclass(frozen=True)
class _Step:
    """One name's answer within a lookup (before CNAMEs are joined)."""

    kind: Kind
    status: Status
    why: str
    ttl: int
    rrset: dns.rrset.RRset | None = None
    rrsigs: dns.rrset.RRset | None = None
    authority: tuple[dns.rrset.RRset, ...] = ()
    synth: dns.rrset.RRset | None = None  # Kind.DNAME: the CNAME it implies for this name (unsigned)

    @property
    def target(self) -> dns.name.Name:
        """Where a CNAME or DNAME step leads."""
        return (self.synth if self.kind is Kind.DNAME else self.rrset)[0].target


@dataclass
class Budget:
    """Upstream queries and time left; one Budget may be shared by the lookups of one
    resolution so that together they stay bounded."""

    max_queries: int
    deadline: float  # on the engine's clock
    queries: int = 0

    @classmethod
    def start(cls, clock: Callable[[], float], max_queries: int, max_time: float) -> Budget:
        return cls(max_queries, clock() + max_time)


class Engine(Surface, Upstream):
    def __init__(
        self,
        qname: dns.name.Name | str,
        qtype: int | str,
        hints: Hints | Mapping[str, Sequence[str]],
        trust_anchor=None,
        cache: Cache | None = None,
        now: Callable[[], float] = time.time,
        *,
        port: int = 53,
        timeout: float = 2.0,
        max_queries: int = 40,
        max_time: float = 10.0,
        max_depth: int = 6,
        checking_disabled: bool = False,
        tcp: bool = False,
        budget: Budget | None = None,
        qname_minimisation: bool = True,
        case_randomisation: bool = True,
        edns_payload: int = EDNS_PAYLOAD,
        retries: int = 1,
        rng: random.Random | None = None,
        refresh: bool = False,
    ):
        self.qname = dns.name.from_text(qname) if isinstance(qname, str) else qname
        self.qtype = dns.rdatatype.from_text(qtype) if isinstance(qtype, str) else dns.rdatatype.RdataType.make(qtype)
        self.hints: Hints = _as_hints(hints, port)
        self._hint_keys: dict | None = None  # _nkey(zone) -> zone of self.hints, made on first use
        self.trust_anchor = trust_anchor
        self.cache = cache if cache is not None else Cache(now)
        self.clock = now
        self.port = port
        self.timeout = timeout
        self.max_queries = max_queries
        self.max_time = max_time
        self.max_depth = max_depth
        self.checking_disabled = checking_disabled  # like CD=1 from a stub: hand out bogus data too
        self.tcp = tcp  # every query over TCP (else UDP, TCP only after TC=1)
        self.qname_minimisation = qname_minimisation  # RFC 9156, relaxed (qmin.py)
        self.case_randomisation = case_randomisation  # 0x20 (case.py)
        self.edns_payload = edns_payload
        self.retries = retries  # extra rounds for servers that timed out, each with a doubled timeout
        # Query IDs and 0x20 patterns must be unpredictable (RFC 5452 §9.2): the OS's CSPRNG
        # by default; tests pass a seeded Random to replay a resolution exactly.
        self.rng = rng if rng is not None else entropy.SHARED
        self.queries = 0
        self.trace: list[ev.TraceEvent] = []
        self.budget = budget if budget is not None else Budget.start(now, max_queries, max_time)
        self._tokens = itertools.count(1)
        self._gen = self._run()
        self._surface_init()
        # Tables keyed by names use _nkey (bytes hash once; a Name hashes character by character).
        self._prefetched: dict[tuple, tuple[Send, float]] = {}  # (server, _nkey(qname), qtype) → DNSKEY prefetch
        self._keys_asked: set = set()  # _nkey of zones whose DNSKEY was prefetched
        self._referral_ds: dict = {}  # _nkey(child) → (parent, referral)
        self._glueless: dict[dns.name.Name, list[dns.name.Name]] = {}  # zone → NS names that came without glue
        self._fallback: dict[dns.name.Name, list[Server]] = {}  # zone → servers found by _more_servers
        self._answered_by: Server | None = None  # the server whose reply _ask returned last
        self._active: set[tuple] = set()  # (_nkey(qname), qtype)
        self._trust_active: set = set()  # _nkey(zone)
        # Prefetch: cache hits in their last 10 % of TTL are noted in ``prefetch`` for the
        # driver to refresh in the background; a refresh engine (``refresh``) treats exactly
        # those entries as misses, so it fetches them anew and serves the rest from cache.
        self.refresh = refresh
        self.prefetch: set[tuple[dns.name.Name, int]] = set()

    # Top level --------------------------------------------------------------------------------
    def _run(self) -> _Gen:
        try:
            lookup = yield from self._lookup(self.qname, self.qtype, 0)
        except _ServFail as exc:
            lookup = self._stale(str(exc)) or Lookup(self.qname, self.qtype, "SERVFAIL", Status.INDETERMINATE,
                                                     str(exc), 0)
        return lookup.replaced(trace=tuple(self.trace))

    def _lookup(self, qname: dns.name.Name, qtype: int, depth: int) -> _Gen:
        """Resolve (qname, qtype) following CNAMEs; returns a Lookup (bogus → SERVFAIL, no data)."""
        if depth > self.max_depth:
            raise _ServFail(f"sub-resolution deeper than {self.max_depth} levels at {qname}")
        key = (_nkey(qname), qtype)
        if key in self._active:
            raise _ServFail(f"dependency loop: {qname} {type_text(qtype)} is needed to resolve itself")
        self._active.add(key)
        try:
            chain: list[_Step] = []
            seen: set | None = None  # names of the CNAME chain, made when there is one
            name = qname
            for _ in range(MAX_CNAME + 1):
                step = yield from self._lookup_one(name, qtype, depth, validate=True)
                chain.append(step)
                if step.kind not in _ALIASES or step.status is Status.BOGUS:
                    return self._join(qname, qtype, chain)
                target = step.target
                self.trace.append(ev.CnameFollowed(str(name), str(target)))
                if seen is None:
                    seen = {qname}
                if target in seen:
                    raise _ServFail(f"CNAME loop at {target}")
                seen.add(target)
                name = target
            raise _ServFail(f"CNAME chain from {qname} longer than {MAX_CNAME}")
        finally:
            self._active.discard(key)

    def _join(self, qname: dns.name.Name, qtype: int, chain: list[_Step]) -> Lookup:
        if len(chain) == 1 and chain[0].kind not in _ALIASES:  # no CNAME/DNAME: nearly every lookup
            last = chain[0]
            if last.status is Status.BOGUS and not self.checking_disabled:
                return Lookup(qname, qtype, "SERVFAIL", last.status, last.why, last.ttl)
            answer = last.kind is Kind.ANSWER
            return Lookup(qname, qtype, "NXDOMAIN" if last.kind is Kind.NXDOMAIN else "NOERROR", last.status,
                          last.why, last.ttl, last.rrset if answer else None, last.rrsigs if answer else None,
                          (), last.authority, chain_rrsigs=())
        return self._join_chain(qname, qtype, chain)

    def _join_chain(self, qname: dns.name.Name, qtype: int, chain: list[_Step]) -> Lookup:
        """_join for any chain (tests/test_engine_join.py: the one-step shortcut agrees with it)."""
        status = weakest(*(s.status for s in chain))
        decider = next(s for s in reversed(chain) if s.status is status)
        ttl = min(s.ttl for s in chain)
        last = chain[-1]
        # The aliases on the way, in answer order: each CNAME, and each DNAME followed by the
        # CNAME it implies (unsigned; validators derive it, RFC 6672 §5.3.1).
        cnames: list = []
        cname_sigs: list = []
        for s in chain:
            if s.kind in _ALIASES:
                cnames.append(s.rrset)
                cname_sigs.append(s.rrsigs)
            if s.kind is Kind.DNAME:
                cnames.append(s.synth)
                cname_sigs.append(None)
        cnames, cname_sigs = tuple(cnames), tuple(cname_sigs)
        if status is Status.BOGUS and not self.checking_disabled:  # RFC 4035 §5.5: a validating resolver returns SERVFAIL
            return Lookup(qname, qtype, "SERVFAIL", status, decider.why, ttl)
        rcode = {Kind.NXDOMAIN: "NXDOMAIN"}.get(last.kind, "NOERROR")
        rrset = last.rrset if last.kind is Kind.ANSWER else None
        rrsigs = last.rrsigs if last.kind is Kind.ANSWER else None
        return Lookup(qname, qtype, rcode, status, decider.why, ttl, rrset, rrsigs, cnames, last.authority,
                      chain_rrsigs=cname_sigs)

    # One name, one type -------------------------------------------------------------------------
    def _lookup_one(self, name: dns.name.Name, qtype: int, depth: int, *, validate: bool) -> _Gen:
        if qtype == DS and self._referral_ds and _nkey(name) in self._referral_ds:
            parent, referral = self._referral_ds.pop(_nkey(name))
            learned = yield from self._learn_ds(parent, name, referral, depth)
            if learned is not None:  # validated just now: no need to read it back from the cache
                return learned
        if validate:
            cached = self._from_cache(name, qtype)
            if cached is not None:
                return cached
        zone, servers = self._closest_servers(name, qtype)
        qmin = Minimiser(name, qtype, self.qname_minimisation)
        referrals = 0
        bogus_from: set[Server] = set()  # servers whose answer to this question failed validation
        for _ in range(MAX_REFERRALS + MAX_MINIMISE_COUNT + 1):
            self._prefetch_keys(zone, servers)  # concurrent mode: its keys come with the next query
            ask_name, _type, minimised = qmin.next(zone)
            if minimised:
                found = yield from self._ask_minimised(qmin, zone, servers, ask_name, depth)
                if isinstance(found, tuple):  # a referral: go on below the new cut
                    zone, servers = found
                    referrals += 1
                elif found is not None:  # validated NXDOMAIN of an ancestor (RFC 8020)
                    self.cache.put_negative(name, qtype, "NXDOMAIN", found.authority, found.status, found.why,
                                            found.ttl)
                    self._verdict(name, qtype, "NXDOMAIN", Check(found.status, found.why))
                    return found
                if referrals > MAX_REFERRALS:
                    break
                continue
            msg, kind = yield from self._ask(zone, servers, name, qtype, depth)
            answered_by = self._answered_by  # (validation below may ask other servers)
            if kind is Kind.REFERRAL:
                zone, servers = yield from self._follow_referral(zone, msg, name, depth)
                referrals += 1
                if referrals > MAX_REFERRALS:
                    break
                continue
            if not validate:
                rrset = msg.find("answer", name, qtype)
                return _Step(kind, Status.INDETERMINATE, "not validated", 0, rrset,
                             msg.sigs("answer", rrset) if rrset is not None else None, msg.authority)
            if kind is Kind.DNAME:
                dname = dname_for(msg, name)
                rrsigs = msg.sigs("answer", dname)
                check = yield from self._validate_positive(zone, dname, rrsigs, msg, depth)
                retry = self._other_servers_after_bogus(zone, servers, check, bogus_from, answered_by)
                if retry is not None:
                    servers = retry
                    continue
                ttl = min(dname.ttl, check.ttl) if check.ttl is not None else dname.ttl
                self.cache.put_rrset(dname, rrsigs, check.status, check.why, ttl)
                self._verdict(dname.name, DNAME, "NOERROR", check)
                step = _dname_step(name, dname, rrsigs, check.status, check.why, ttl)
                if step.status is not Status.BOGUS:
                    yield from self._cache_chain_rest(zone, dname, msg, depth)
                return step
            if kind in (Kind.ANSWER, Kind.CNAME):
                rrset = msg.find("answer", name, qtype if kind is Kind.ANSWER else CNAME)
                rrsigs = msg.sigs("answer", rrset)
                check = yield from self._validate_positive(zone, rrset, rrsigs, msg, depth)
                retry = self._other_servers_after_bogus(zone, servers, check, bogus_from, answered_by)
                if retry is not None:
                    servers = retry
                    continue
                ttl = min(rrset.ttl, check.ttl) if check.ttl is not None else rrset.ttl
                proof = _wildcard_proof(rrset, rrsigs, msg)
                self.cache.put_rrset(rrset, rrsigs, check.status, check.why, ttl, proof=proof)
                self._verdict(name, rrset.rdtype, "NOERROR", check)
                if kind is Kind.CNAME:
                    yield from self._cache_chain_rest(zone, rrset, msg, depth)
                return _Step(kind, check.status, check.why, ttl, rrset, rrsigs, authority=proof)
            check = yield from self._validate_negative(zone, name, qtype, kind, msg, depth)
            retry = self._other_servers_after_bogus(zone, servers, check, bogus_from, answered_by)
            if retry is not None:
                servers = retry
                continue
            ttl = _negative_ttl(msg)
            rcode = "NXDOMAIN" if kind is Kind.NXDOMAIN else "NOERROR"
            self.cache.put_negative(name, qtype, rcode, msg.authority, check.status, check.why, ttl)
            self._verdict(name, qtype, "NXDOMAIN" if kind is Kind.NXDOMAIN else "NODATA", check)
            return _Step(kind, check.status, check.why, ttl, authority=msg.authority)
        raise _ServFail(f"more than {MAX_REFERRALS} referrals resolving {name}")

    def _ask_minimised(self, qmin: Minimiser, zone, servers, ask_name: dns.name.Name, depth: int) -> _Gen:
        """One minimised query (RFC 9156): a referral → (child, servers); a validated NXDOMAIN →
        the final _Step; anything else → None (go on with more labels, or, in relaxed mode
        after a failure or an unproven NXDOMAIN, with the full name)."""
        try:
            msg, kind = yield from self._ask(zone, servers, ask_name, QMIN_QTYPE, depth)
        except _Budget:
            raise
        except _ServFail as exc:
            self._qmin_off(qmin, f"minimised query {ask_name} failed ({exc})")
            return None
        if kind is Kind.REFERRAL:
            qmin.referred()
            return (yield from self._follow_referral(zone, msg, ask_name, depth))
        if kind is Kind.DNAME:
            self._qmin_off(qmin, f"a DNAME rewrites {ask_name}")
            return None
        if kind is Kind.NXDOMAIN:
            check = yield from self._validate_negative(zone, ask_name, QMIN_QTYPE, kind, msg, depth)
            if check.status is Status.SECURE:
                return _Step(Kind.NXDOMAIN, Status.SECURE,
                             f"{ask_name} does not exist, so neither does any name below it (RFC 8020): {check.why}",
                             _negative_ttl(msg), authority=msg.authority)
            self._qmin_off(qmin, f"NXDOMAIN for {ask_name} is {check.status.value}, not proven")
            return None
        qmin.asked(ask_name)  # it exists and is no cut: add the next label(s)
        return None

    def _qmin_off(self, qmin: Minimiser, reason: str) -> None:
        qmin.give_up(reason)
        self.trace.append(ev.Fallback("QNAME minimisation", f"{reason}: asking the full name {qmin.qname}"))

    def _cache_chain_rest(self, zone, first: dns.rrset.RRset, msg: Scrubbed, depth: int) -> _Gen:
        """Validate and cache the rest of a CNAME chain the server sent along (the scrubber kept
        only the chain, inside the bailiwick), so following it costs no further queries."""
        dnames = [r.name for r in msg.answer if r.rdtype == DNAME]
        for rrset in msg.answer:
            if rrset.rdtype == dns.rdatatype.RRSIG or rrset is first:
                continue
            if rrset.rdtype == CNAME and any(rrset.name != d and rrset.name.is_subdomain(d) for d in dnames):
                continue  # synthesised from a DNAME (unsigned): derived, never cached as data
            if self.cache.get_rrset(rrset.name, rrset.rdtype) is not None:
                continue
            rrsigs = msg.sigs("answer", rrset)
            check = yield from self._validate_positive(zone, rrset, rrsigs, msg, depth)
            ttl = min(rrset.ttl, check.ttl) if check.ttl is not None else rrset.ttl
            self.cache.put_rrset(rrset, rrsigs, check.status, check.why, ttl)

    def _from_cache(self, name: dns.name.Name, qtype: int) -> _Step | None:
        cache = self.cache
        for rdtype, kind in ((qtype, Kind.ANSWER), (CNAME, Kind.CNAME)):
            entry = cache.get_rrset(name, rdtype)
            if entry is not None and (rdtype == qtype or qtype != CNAME) and not self._refreshing(name, qtype, entry):
                self.trace.append(ev.CacheHit(name_text(name), type_text(rdtype), entry.status))
                return _Step(kind, entry.status, entry.why, cache.remaining(entry), entry.rrset, entry.rrsigs,
                             authority=entry.proof)
        neg = cache.get_negative(name, qtype)
        if neg is not None:
            if self._refreshing(name, qtype, neg):
                return None  # not from cached NSECs either: they came with this very answer
            self.trace.append(ev.CacheHit(name_text(name), type_text(qtype), neg.status))
            kind = Kind.NXDOMAIN if neg.rcode == "NXDOMAIN" else Kind.NODATA
            return _Step(kind, neg.status, neg.why, cache.remaining(neg), authority=neg.authority)
        if qtype != DNAME and cache.holds_dnames:
            # A cached DNAME at an ancestor rewrites the name without asking (RFC 6672 §3.2).
            owner = name
            for _ in range(len(name) - 1):
                owner = owner.parent()
                entry = cache.get_rrset(owner, DNAME)
                if entry is not None and len(entry.rrset) == 1 and not self._refreshing(name, qtype, entry):
                    self.trace.append(ev.CacheHit(str(owner), "DNAME", entry.status))
                    return _dname_step(name, entry.rrset, entry.rrsigs, entry.status, entry.why,
                                       cache.remaining(entry))
        denial = deny_from_cache(cache, name, qtype)  # RFC 8198
        if denial is not None:
            self.trace.append(ev.CacheDenial(str(name), type_text(qtype), denial.rcode, denial.why))
            if denial.steps:
                self.trace.append(ev.ProofSteps(str(name), type_text(qtype), Status.SECURE, denial.steps))
            kind = Kind.NXDOMAIN if denial.rcode == "NXDOMAIN" else Kind.NODATA
            return _Step(kind, Status.SECURE, denial.why, denial.ttl, authority=denial.authority)
        return None

    def _refreshing(self, name: dns.name.Name, qtype: int, entry) -> bool:
        """True when this hit must count as a miss: a refresh engine re-fetching what is near
        expiry. Otherwise a near-expiry hit is noted for a background prefetch."""
        if not self.cache.near_expiry(entry):
            return False
        if self.refresh:
            return True
        self.prefetch.add((name, qtype))
        return False

    def _stale(self, reason: str) -> Lookup | None:
        """Serve-stale (RFC 8767): every authority failed, so answer from expired cached data
        (within ``stale_max``, never bogus) with a TTL of 30 s, marked stale."""
        cache = self.cache
        if not cache.config.serve_stale:
            return None
        chain: list[_Step] = []
        name, seen = self.qname, {self.qname}
        for _ in range(MAX_CNAME + 1):
            entry = cache.get_stale_rrset(name, self.qtype)
            if entry is not None:
                chain.append(_Step(Kind.ANSWER, entry.status, entry.why, STALE_TTL, entry.rrset, entry.rrsigs))
                break
            cname = cache.get_stale_rrset(name, CNAME) if self.qtype != CNAME else None
            if cname is not None:
                chain.append(_Step(Kind.CNAME, cname.status, cname.why, STALE_TTL, cname.rrset, cname.rrsigs))
                name = cname.rrset[0].target
                if name in seen:
                    return None
                seen.add(name)
                continue
            neg = cache.get_stale_negative(name, self.qtype)
            if neg is None:
                return None
            kind = Kind.NXDOMAIN if neg.rcode == "NXDOMAIN" else Kind.NODATA
            chain.append(_Step(kind, neg.status, neg.why, STALE_TTL, authority=neg.authority))
            break
        else:
            return None
        lookup = self._join(self.qname, self.qtype, chain)
        self.trace.append(ev.StaleServed(str(self.qname), type_text(self.qtype), reason))
        return replace(lookup, stale=True,
                       why=f"stale answer (RFC 8767), every authority failed ({reason}); cached: {lookup.why}")

    def _verdict(self, name, rdtype, rcode: str, check: Check) -> None:
        tname = type_text(rdtype)
        self.trace.append(ev.AnswerVerdict(name_text(name), tname, rcode, check.status, check.why))
        if check.steps:
            self.trace.append(ev.ProofSteps(str(name), tname, check.status, check.steps))

    # Where to start, whom to ask ------------------------------------------------------------------
    def _closest_servers(self, name: dns.name.Name, qtype: int) -> tuple[dns.name.Name, tuple[Server, ...]]:
        """The deepest zone at or above ``name`` whose servers we know (hints, then referrals
        remembered in the cache). DS lives in the parent (RFC 4035 §3.1.4.1), so for DS the
        search starts one label up."""
        probe = name.parent() if qtype == DS and name != dns.name.root else name
        key = _nkey(probe)
        if type(key) is bytes:
            # The ancestors' keys are suffixes of the name's (lower-case labels joined by dots):
            # no Name built or hashed per level.
            hint_keys = self._hint_keys
            if hint_keys is None:
                hint_keys = self._hint_keys = {_nkey(zone): zone for zone in self.hints}
            cache = self.cache
            while True:
                zone = hint_keys.get(key)
                if zone is not None:
                    return zone, self.hints[zone]
                delegation = cache.get_delegation_key(key)
                if delegation is not None and delegation.servers:
                    return delegation.zone, delegation.servers
                if not key:
                    break
                key = key[key.index(b".") + 1:]
            raise _ServFail(f"no hint covers {name}: give a --hint for one of its zones")
        while True:  # a label holding a dot: Names, level by level
            if probe in self.hints:
                return probe, self.hints[probe]
            delegation = self.cache.get_delegation(probe)
            if delegation is not None and delegation.servers:
                return probe, delegation.servers
            if probe == dns.name.root:
                break
            probe = probe.parent()
        raise _ServFail(f"no hint covers {name}: give a --hint for one of its zones")

    def _follow_referral(self, zone: dns.name.Name, msg: Scrubbed, name, depth: int) -> _Gen:
        ns_rrset = referral_ns(msg, zone)
        child = ns_rrset.name
        # The DS (or its denial) in the referral is validated when the child's trust is first
        # needed (_lookup_one), not now: the next query into the child goes out first, so its
        # round trip overlaps the parent's key work. Nothing from the child is used unvalidated.
        self._referral_ds[_nkey(child)] = (zone, msg)
        servers: list[Server] = []
        glued = []
        targets = sorted(rd.target for rd in ns_rrset)
        unglued = []
        for target in targets:
            before = len(servers)
            for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                glue = msg.find("additional", target, rdtype)
                if glue is not None:
                    servers.extend((rd.address, self.port) for rd in glue)
                    glued.extend(f"{target}={rd.address}" for rd in glue)
            if len(servers) == before:
                unglued.append(target)
        self._glueless[child] = unglued
        if not servers:
            # No usable glue: resolve the NS names ourselves. Names inside the child would need
            # the child's own servers (glue was required, RFC 1034 §4.2.1), so skip them.
            looked_up = 0
            for target in targets:
                if target.is_subdomain(child) or looked_up >= MAX_NS_LOOKUPS:
                    continue
                looked_up += 1
                try:
                    found = yield from self._lookup(target, dns.rdatatype.A, depth + 1)
                except _Budget:
                    raise
                except _ServFail:
                    continue
                if found.rrset is not None:
                    servers.extend((rd.address, self.port) for rd in found.rrset)
        self.trace.append(ev.Referral(name_text(zone), name_text(child), tuple(name_text(t) for t in targets), tuple(glued),
                                      msg.find("authority", child, DS) is not None))
        if not servers:
            raise _ServFail(f"no address for any name server of {child} ({', '.join(map(str, targets))})")
        unique = tuple(dict.fromkeys(servers))
        self.cache.put_delegation(child, unique, tuple(targets), ns_rrset.ttl)
        return child, unique

    def _other_servers_after_bogus(self, zone: dns.name.Name, servers, check: Check, bogus_from: set[Server],
                                   answered_by: Server | None) -> tuple[Server, ...] | None:
        """After an answer that failed validation while the zone's keys are trusted, the zone's
        other servers (one of several may serve a broken or forged copy: Unbound's "blacklist
        and retry"), at most MAX_BOGUS_RETRIES times per question; None: keep the verdict."""
        if check.status is not Status.BOGUS or self.checking_disabled or answered_by is None:
            return None
        trust = self.cache.get_trust(zone)
        if trust is None or trust.status is not Status.SECURE or len(bogus_from) >= MAX_BOGUS_RETRIES:
            return None
        bogus_from.add(answered_by)
        others = tuple(s for s in servers if s not in bogus_from)
        if not others:
            return None
        self.trace.append(ev.ServerFailed(answered_by, f"answer failed validation ({check.why}): "
                                          "asking another server of the zone"))
        return others

    def _more_servers(self, zone: dns.name.Name, tried: set[Server], depth: int) -> _Gen:
        """Addresses of ``zone``'s name servers that came without glue, looked up now because
        every address known so far failed (at most MAX_NS_LOOKUPS names, once per zone per
        engine). Names inside the zone itself are skipped: only its failing servers know them."""
        if zone in self._fallback:  # looked up once per engine; later questions reuse them
            return [s for s in self._fallback[zone] if s not in tried]
        self._fallback[zone] = []
        delegation = self.cache.get_delegation(zone)
        names = self._glueless.get(zone) or (list(delegation.nameservers) if delegation is not None else [])
        found: list[Server] = []
        looked_up = 0
        for target in names:
            if target.is_subdomain(zone) or looked_up >= MAX_NS_LOOKUPS:
                continue
            looked_up += 1
            try:
                result = yield from self._lookup(target, dns.rdatatype.A, depth + 1)
            except _Budget:
                raise
            except _ServFail:
                continue
            if result.rrset is not None:
                found.extend(s for s in ((rd.address, self.port) for rd in result.rrset) if s not in tried)
        found = list(dict.fromkeys(found))
        self._fallback[zone] = found
        if found:
            self.trace.append(ev.Fallback("glue", f"every known server of {zone} failed: asking "
                                          + ", ".join(f"{h}:{p}" for h, p in found) + " (name servers without glue)"))
        return found

    # Chain of trust --------------------------------------------------------------------------------
    def _learn_ds(self, parent: dns.name.Name, child: dns.name.Name, msg: Scrubbed, depth: int) -> _Gen:
        """Take the DS (or the signed proof that there is none) from the referral, so the
        child's trust needs no separate DS query (RFC 4035 §3.1.4). Returns the secure _Step
        (cached too), or None: then the DS is looked up as any other RRset."""
        if self.cache.get_rrset(child, DS) or self.cache.get_negative(child, DS):
            return None
        ds = msg.find("authority", child, DS)
        if ds is not None:
            rrsigs = msg.sigs("authority", ds)
            check = yield from self._validate_positive(parent, ds, rrsigs, msg, depth)
            ttl = min(ds.ttl, check.ttl) if check.ttl is not None else ds.ttl
            self.cache.put_rrset(ds, rrsigs, check.status, check.why, ttl)
            if check.status is not Status.SECURE:
                return None  # as from the cache: not used; the parent is asked for DS itself
            self._verdict(child, DS, "NOERROR", check)
            return _Step(Kind.ANSWER, check.status, check.why, ttl, ds, rrsigs)
        if not any(r.rdtype in DENIAL_TYPES for r in msg.authority):
            return None  # nothing to learn here; _trust will ask the parent for DS
        trust = yield from self._trust(parent, depth)
        if trust.status is not Status.SECURE:
            return None
        nsecs, bad = verified_nsecs(msg, trust.dnskeys, parent, self.clock())
        if bad is None:
            # SECURE: the parent's record at the cut shows NS without DS. INSECURE: the cut
            # lies in an NSEC3 opt-out span (RFC 5155 §6) or the chain's iterations are over
            # the limit; either way the child is unsigned, never secure.
            check = prove("no_ds", child, nsecs, parent)
            if check.status in (Status.SECURE, Status.INSECURE):
                ttl = min(r.ttl for r in nsecs)
                if check.ttl is not None:
                    ttl = min(ttl, check.ttl)
                self.cache.put_negative(child, DS, "NOERROR", msg.authority, check.status, check.why, ttl)
                self._verdict(child, DS, "NODATA", check)
                return _Step(Kind.NODATA, check.status, check.why, ttl, authority=msg.authority)
        return None

    def _trust(self, zone: dns.name.Name, depth: int) -> _Gen:
        """How far the keys of ``zone`` are trusted: SECURE with its DNSKEY RRset, INSECURE
        (provably unsigned), BOGUS, or INDETERMINATE (no anchor above it)."""
        cached = self.cache.get_trust(zone)
        if cached is not None:
            return cached
        anchor = self.trust_anchor.closest(zone) if self.trust_anchor is not None else None
        if anchor is None:
            return self._put_trust(zone, Status.INDETERMINATE, "no trust anchor covers it", None, 3600)
        zone_key = _nkey(zone)
        if zone_key in self._trust_active:  # e.g. a zone whose DS is "signed" by itself
            return ZoneTrust(zone, Status.BOGUS, f"validation of {zone} depends on itself", None, 0)
        self._trust_active.add(zone_key)
        try:
            if zone == anchor:
                ds, keys = self.trust_anchor.ds(zone), self.trust_anchor.dnskey(zone)
                return (yield from self._check_keys(zone, depth, ds=ds, anchor_keys=keys,
                                                    source=f"trust anchor {zone}"))
            found = yield from self._lookup(zone, DS, depth)
            if found.status is Status.SECURE and found.rrset is not None:
                return (yield from self._check_keys(zone, depth, ds=found.rrset, source=f"DS in {zone.parent()}"))
            if found.status is Status.SECURE and found.rcode == "NOERROR":
                return self._put_trust(zone, Status.INSECURE, f"no DS for {zone}, proven by signed NSEC: {found.why}",
                                       None, found.ttl)
            if found.status is Status.SECURE:
                return self._put_trust(zone, Status.BOGUS, f"parent says {zone} does not exist", None, found.ttl)
            if found.status is Status.BOGUS:
                return self._put_trust(zone, Status.BOGUS, f"DS for {zone}: {found.why}", None, found.ttl)
            return self._put_trust(zone, found.status, found.why, None, found.ttl)
        finally:
            self._trust_active.discard(zone_key)

    def _check_keys(self, zone: dns.name.Name, depth: int, *, ds=None, anchor_keys=None, source: str) -> _Gen:
        step = yield from self._lookup_one(zone, DNSKEY, depth, validate=False)
        if step.kind is not Kind.ANSWER or step.rrset is None:
            return self._put_trust(zone, Status.BOGUS, f"{zone} has a {source} but no DNSKEY RRset", None, 60)
        check = check_dnskeys(step.rrset, step.rrsigs, zone, self.clock(), ds=ds, anchor_keys=anchor_keys)
        ttl = min(step.rrset.ttl, check.ttl) if check.ttl is not None else step.rrset.ttl
        if check.status is Status.SECURE:
            self.cache.put_rrset(step.rrset, step.rrsigs, check.status, check.why, ttl)
        return self._put_trust(zone, check.status, f"{check.why} (from {source})", step.rrset, ttl)

    def _put_trust(self, zone, status: Status, why: str, dnskeys, ttl: int) -> ZoneTrust:
        self.trace.append(ev.ZoneVerdict(name_text(zone), status, why))
        return self.cache.put_trust(zone, status, why, dnskeys, ttl)

    def _unsigned_cut_between(self, zone: dns.name.Name, owner: dns.name.Name, depth: int) -> _Gen:
        """An unsigned answer from a signed zone is genuine only if a provably unsigned
        delegation lies between (one server serving parent and child answers from the child,
        skipping the referral). Walk down label by label asking for DS, like a validator
        building the chain top-down (RFC 4035 §5.2); None means no such cut (so: BOGUS)."""
        for labels in range(len(zone) + 1, len(owner) + 1):
            name = owner.split(labels)[1]
            found = yield from self._lookup(name, DS, depth)
            if found.rrset is not None or found.rcode != "NOERROR":
                return None  # a signed cut (the answer should have been signed), or no proof
            if found.status is Status.INSECURE and any(r.rdtype == dns.rdatatype.NSEC3 for r in found.authority):
                # The parent's NSEC3 put the name in an opt-out span (or over the iteration
                # limit): there may be an unsigned delegation, and nothing below is signed.
                self._put_trust(name, Status.INSECURE, f"no DS for {name}: {found.why}", None, found.ttl)
                return name
            if found.status is not Status.SECURE:
                return None
            if nsec_shows_unsigned_cut(found.authority, name):
                self._put_trust(name, Status.INSECURE, f"no DS for {name}, proven by signed NSEC", None, found.ttl)
                return name
        return None

    def _validation_zone(self, server_zone: dns.name.Name, rrset, rrsigs) -> dns.name.Name:
        """The zone whose keys must have signed ``rrset``: the zone we asked, or a zone below
        it when one server serves both (the signer tells), but never the owner itself for DS,
        which only the parent may sign (RFC 4035 §5.2)."""
        signer = signer_of(rrsigs)
        if (signer is not None and signer != server_zone and signer.is_subdomain(server_zone)
                and rrset.name.is_subdomain(signer) and not (rrset.rdtype == DS and rrset.name == signer)):
            return signer
        return server_zone

    def _validate_positive(self, server_zone, rrset, rrsigs, msg: Scrubbed, depth: int) -> _Gen:
        zone = self._validation_zone(server_zone, rrset, rrsigs)
        trust = yield from self._trust(zone, depth)
        if trust.status is not Status.SECURE:
            return Check(trust.status, f"zone {zone} is {trust.status.value}: {trust.why}")
        if not rrsigs and rrset.rdtype != DS and rrset.name != zone:
            unsigned = yield from self._unsigned_cut_between(zone, rrset.name, depth)
            if unsigned is not None:
                return Check(Status.INSECURE, f"zone {unsigned} is insecure: no DS, proven by signed NSEC in its parent")
        now = self.clock()
        check = check_rrset(rrset, rrsigs, trust.dnskeys, zone, now)
        if check.status is not Status.SECURE:
            return check
        wildcard = wildcard_of(rrset, rrsigs)
        if wildcard is not None:
            # A wildcard expansion is only genuine if the name itself provably does not exist
            # (RFC 4035 §5.3.4); otherwise a signed *.zone could shadow real names.
            nsecs, bad = verified_nsecs(msg, trust.dnskeys, zone, now)
            if bad is not None:
                return bad
            proof = prove("wildcard", rrset.name, wildcard, nsecs, zone)
            if proof.status is not Status.SECURE:
                return proof
        return check

    def _validate_negative(self, server_zone, name, qtype, kind: Kind, msg: Scrubbed, depth: int) -> _Gen:
        zone = server_zone
        for rrset in msg.authority:
            if rrset.rdtype == dns.rdatatype.RRSIG and rrset.covers in (dns.rdatatype.SOA, *DENIAL_TYPES):
                zone = self._validation_zone(server_zone, msg.find("authority", rrset.name, rrset.covers) or rrset,
                                             rrset)
                break
        trust = yield from self._trust(zone, depth)
        if trust.status is not Status.SECURE:
            return Check(trust.status, f"zone {zone} is {trust.status.value}: {trust.why}")
        nsecs, bad = verified_nsecs(msg, trust.dnskeys, zone, self.clock())
        if bad is not None:
            return bad
        soa = msg.find("authority", zone, dns.rdatatype.SOA)
        if soa is not None:
            # Every RRset of a signed negative answer must validate, the SOA too: it is handed
            # to clients (with AD) and gives the negative TTL (RFC 4035 §5.3, §5.4).
            check = check_rrset(soa, msg.sigs("authority", soa), trust.dnskeys, zone, self.clock())
            if check.status is not Status.SECURE:
                return Check(Status.BOGUS, f"negative answer for {name}: SOA {check.why}")
        if not nsecs and name != zone and not (qtype == DS and name.parent() == zone):
            unsigned = yield from self._unsigned_cut_between(zone, name, depth)
            if unsigned is not None:
                return Check(Status.INSECURE, f"zone {unsigned} is insecure: no DS, proven by signed NSEC in its parent")
        if not nsecs:
            what = "NXDOMAIN" if kind is Kind.NXDOMAIN else "NODATA"
            return Check(Status.BOGUS, f"{what} for {name} from signed zone {zone} without NSEC or NSEC3 proof")
        if kind is Kind.NXDOMAIN:
            return prove("nxdomain", name, nsecs, zone)
        if qtype == DS:
            check = prove("no_ds", name, nsecs, zone)
            if check.status is Status.SECURE:
                return check
        return prove("nodata", name, qtype, nsecs, zone)


def _dname_step(name: dns.name.Name, dname: dns.rrset.RRset, rrsigs, status: Status, why: str, ttl: int) -> _Step:
    """The step for ``name`` below the DNAME ``dname``: the CNAME it implies, with the DNAME's
    TTL (RFC 6672 §3.4); a rewritten name too long for the DNS ends the lookup (YXDOMAIN)."""
    try:
        target = name.relativize(dname.name).concatenate(dname[0].target)
    except dns.name.NameTooLong:
        raise _ServFail(f"DNAME {dname.name} -> {dname[0].target} makes {name} longer than 255 octets "
                        "(YXDOMAIN, RFC 6672 §2.2)") from None
    synth = dns.rrset.from_text(name, ttl, dns.rdataclass.IN, CNAME, target.to_text())
    return _Step(Kind.DNAME, status, why, ttl, dname, rrsigs, synth=synth)


def _wildcard_proof(rrset, rrsigs, msg: Scrubbed) -> tuple[dns.rrset.RRset, ...]:
    """The NSECs (with RRSIGs) of a wildcard answer, kept so the answer can be passed on
    whole to clients that validate (RFC 4035 §3.1.3.3); empty for other answers."""
    if wildcard_of(rrset, rrsigs) is None:
        return ()
    return tuple(r for r in msg.authority if (r.covers if r.rdtype == dns.rdatatype.RRSIG else r.rdtype) in DENIAL_TYPES)


def _negative_ttl(msg: Scrubbed) -> int:
    """RFC 2308 §5: the lesser of the SOA's TTL and its MINIMUM field."""
    for rrset in msg.authority:
        if rrset.rdtype == dns.rdatatype.SOA:
            return min(rrset.ttl, rrset[0].minimum)
    ttls = [r.ttl for r in msg.authority if r.rdtype in DENIAL_TYPES]
    return min(ttls) if ttls else 60


def _as_hints(hints, port: int) -> Hints:
    if all(isinstance(k, dns.name.Name) and all(isinstance(s, tuple) for s in v) for k, v in hints.items()):
        return dict(hints)
    return parse_hints(hints, port)
