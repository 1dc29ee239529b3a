"""Asking a zone's servers (the engine's upstream side): building each query, choosing the
server, matching the reply, and the per-server fallbacks.

A mixin of ``Engine`` (its generator methods yield Send actions like the rest of the engine):
``_ask`` walks the servers in ServerSelection order with retries and backoff (selection.py);
``_exchange`` runs one server's protocol dance — UDP, TCP after TC=1, without EDNS after
FORMERR/NOTIMP without OPT (RFC 6891 §7), lower case after two 0x20 case mismatches (case.py);
``_send`` builds one query (random ID, 0x20, DO, CD, RD=0) within the resolution's budget.
Scrubbing (scrub.py) and classification (classify.py) happen here, before anything else sees
a reply.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from ..nametext import lower_name, name_text, type_text
from ..status import Status
from . import case as case20
from . import trace as ev
from .actions import Send
from .cache_entries import _nkey
from .classify import Kind, classify
from .querywire import build_query
from .scrub import scrub
from .selection import UNREACHABLE
from .surface import Wait
from .wire_reader import rcode as rcode_of

_TC = int(dns.flags.TC)  # header flag tests on ints: Flag's & is an enum call

Server = tuple[str, int]
MAX_SENDS_PER_SERVER = 5  # one server, one question: TC→TCP, EDNS and 0x20 fallbacks together
_Gen = Generator[Send, Any, Any]
DS, DNSKEY = dns.rdatatype.DS, dns.rdatatype.DNSKEY


class ServFail(Exception):
    """This lookup cannot be completed (servers failed, no path); callers may try another way."""


class BudgetExhausted(ServFail):
    """A resolution-wide limit was hit: always ends the whole resolution."""


class Upstream:
    """Needs from the engine: budget, queries, clock, cache (with ``servers``), trace, rng,
    timeout, retries, tcp, case_randomisation, edns_payload and a token counter ``_tokens``."""

    def _send(self, zone, server: Server, qname, qtype, *, tcp: bool, edns: bool, case: bool,
              attempt: int) -> _Gen:
        early = self._prefetched.pop((server, _nkey(qname), qtype), None) if self._prefetched else None
        if early is not None and attempt == 0 and (early[0].tcp, _has_edns(early[0].query)) == (tcp, edns):
            # This very question already went to this server (a DNSKEY prefetch): wait for
            # that reply instead of asking again. It was built, counted and traced by _query.
            send, sent_at = early
            reply = yield Wait(send.token)
            self._account(server, reply, sent_at)
            return reply
        send, sent_at = self._query(zone, server, qname, qtype, tcp=tcp, edns=edns, case=case, attempt=attempt)
        reply = yield send
        self._account(server, reply, sent_at)
        return reply

    def _account(self, server: Server, reply: tuple, sent_at: float) -> None:
        if reply[0] == "response":
            self.cache.servers.answered(server, self.clock() - sent_at)
        elif reply[0] == "timeout":
            self.cache.servers.timed_out(server)
        elif reply[0] == "error" and reply[1] in UNREACHABLE:
            # Refused / no route: known at once, so no wait was spent; the server is held down
            # like one that timed out, and _ask does not retry it (only timeouts are retried).
            self.cache.servers.unreachable(server)

    def _query(self, zone, server: Server, qname, qtype, *, tcp: bool, edns: bool, case: bool,
               attempt: int) -> tuple[Send, float]:
        """Build, count and trace one query; the caller yields it (or issues it without waiting)."""
        budget = self.budget
        if budget.queries >= budget.max_queries:
            raise BudgetExhausted(f"query budget of {budget.max_queries} exhausted at {qname} (zone {zone})")
        left = budget.deadline - self.clock()
        if left <= 0:
            raise BudgetExhausted(f"time budget exhausted at {qname} (zone {zone})")
        budget.queries += 1
        self.queries += 1
        # Iterative (RD=0); CD=1 because we validate ourselves (RFC 4035 §3.2.2). A fresh
        # random ID per query (RFC 5452 §9.2; the driver adds a fresh random source port) and
        # 0x20 case in the name are what a blind spoofer has to guess.
        wire_name = case20.randomise(qname, self.rng) if case else lower_name(qname)
        query, wire = build_query(wire_name, qtype, self.rng.getrandbits(16), edns, self.edns_payload)
        self.trace.append(ev.QuerySent(name_text(zone), server, name_text(qname), type_text(qtype), tcp))
        timeout = min(self.cache.servers.timeout(self.timeout, attempt), left)
        return Send(query, server, tcp, timeout, next(self._tokens), wire), self.clock()

    def _signed_cut(self, zone: dns.name.Name) -> bool:
        """A validated DS for ``zone`` is cached, or the referral into it (not validated yet)
        carried one: only then are its keys worth fetching ahead. A hint, never trust."""
        ds = self.cache.get_rrset(zone, DS)
        if ds is not None:
            return ds.status is Status.SECURE
        pending = self._referral_ds.get(_nkey(zone))
        return pending is not None and pending[1].find("authority", zone, DS) is not None

    def _prefetch_keys(self, zone: dns.name.Name, servers: Sequence[Server]) -> None:
        """Concurrent mode only: ask ``zone``'s first server for its DNSKEY RRset now, without
        waiting, when validating anything from the zone will need it — the zone is a trust
        anchor or has a validated DS, and its keys are not known yet. The reply waits until
        ``_send`` asks the same question of the same server, so the keys come in while the
        next query into the zone is under way instead of one round trip after it. Nothing is
        trusted earlier or otherwise than in serial mode: the reply takes the same path."""
        if (not self.concurrent or _nkey(zone) in self._keys_asked or self.trust_anchor is None
                or self.checking_disabled or not servers):
            return
        cache = self.cache
        if cache.get_trust(zone) is not None or cache.get_rrset(zone, DNSKEY) is not None:
            return
        if not self._signed_cut(zone) and self.trust_anchor.closest(zone) != zone:
            return
        budget = self.budget
        if budget.queries + 1 >= budget.max_queries or budget.deadline - self.clock() <= 0:
            return  # never let a prefetch use up what the resolution itself needs
        server = cache.servers.order(servers, self.rng)[0]
        send, sent_at = self._query(zone, server, zone, DNSKEY, tcp=self.tcp, edns=cache.servers.uses_edns(server),
                                    case=self.case_randomisation and cache.servers.uses_case(server), attempt=0)
        self._issue(send)
        self._prefetched[(server, _nkey(zone), DNSKEY)] = (send, sent_at)
        self._keys_asked.add(_nkey(zone))  # once per engine: a lost prefetch is retried by _ask, not here

    def _exchange(self, zone, server: Server, qname, qtype, attempt: int) -> _Gen:
        """One server, one question: UDP, then TCP after TC=1; without EDNS once the server
        answered FORMERR/NOTIMP without OPT to an EDNS query (RFC 6891 §7); in lower case once
        it twice failed to echo the 0x20 case. Returns the final (kind, payload) of the driver."""
        servers = self.cache.servers
        tcp = self.tcp
        no_edns_here = False
        for _ in range(MAX_SENDS_PER_SERVER):
            edns = servers.uses_edns(server) and not no_edns_here
            case = self.case_randomisation and servers.uses_case(server)
            kind_in, payload = yield from self._send(zone, server, qname, qtype, tcp=tcp, edns=edns, case=case,
                                                     attempt=attempt)
            if kind_in == "case":
                # Right ID and port, wrong case: a spoofer who guessed both, or a server that
                # does not echo case. The packet is never used; ask again with a fresh ID,
                # port and pattern (a spoofer would have to win twice to turn 0x20 off).
                lower = servers.case_mismatch(server)
                self.trace.append(ev.ServerFailed(server, "question case differs (0x20): ignored as a possible spoof"
                                                  + ("; asking in lower case from now on" if lower else "")))
                continue
            if kind_in != "response":
                return kind_in, payload
            if case:
                servers.case_echoed(server)
            if int(payload.flags) & _TC and not tcp:
                tcp = True
                continue
            if edns and rcode_of(payload) in (dns.rcode.FORMERR, dns.rcode.NOTIMP) and payload.edns < 0:
                # An EDNS-unaware server. Remembered only when the reply repeats the question
                # (0x20 included), so a blind spoofer cannot cheaply switch EDNS off for later
                # queries; a bare error only drops EDNS for this question. Either way signed
                # answers without DO fail validation (bogus, never insecure).
                no_edns_here = True
                if payload.question:
                    servers.edns_failed(server)
                self.trace.append(ev.ServerFailed(server, f"{dns.rcode.to_text(payload.rcode())} to an EDNS query: "
                                                  "asking without EDNS"))
                continue
            return kind_in, payload
        return "error", f"no usable exchange in {MAX_SENDS_PER_SERVER} tries"

    def _ask(self, zone: dns.name.Name, servers: Sequence[Server], qname, qtype, depth: int = 0) -> _Gen:
        """Ask the servers of ``zone`` in the order ServerSelection gives until one gives a
        usable, scrubbed response. A server that timed out is asked again after the others,
        up to ``retries`` more times, each time with twice the timeout (a lost datagram is not
        a dead server, a slow one needs longer), within the resolution's budget. When every
        known address has failed, the zone's name servers that came without glue are looked
        up (``_more_servers``) and asked too: one broken server must never make a name
        unresolvable (RFC 1034 §5.3.3)."""
        failures = []
        queue = self.cache.servers.order(servers, self.rng)
        for server in servers:  # a prefetched question is asked of the server that already has it
            if (server, _nkey(qname), qtype) in self._prefetched and server in queue:
                queue.remove(server)
                queue.insert(0, server)
                break
        attempts: dict[Server, int] = {}
        index = 0
        more_asked = False
        while True:
            if index >= len(queue):  # at most len(servers) * (1 + retries) entries, then once more
                if more_asked:
                    break
                more_asked = True
                extra = yield from self._more_servers(zone, set(queue), depth)
                if not extra:
                    break
                queue.extend(extra)
            server = queue[index]
            index += 1
            attempt = attempts.get(server, 0)
            attempts[server] = attempt + 1
            kind_in, payload = yield from self._exchange(zone, server, qname, qtype, attempt)
            if kind_in == "timeout":
                reason = "timeout again" if attempt else "timeout"
                if attempt < self.retries:
                    queue.append(server)
            elif kind_in == "error":
                reason = payload
            elif int(payload.flags) & _TC:
                reason = "truncated over TCP"
            elif rcode_of(payload) not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                reason = dns.rcode.to_text(payload.rcode())
            elif not payload.question:
                # Only bare errors may come without a question (case.match): data in a reply
                # that does not repeat the question (and its 0x20 case) is never used.
                reason = "reply without a question section"
            else:
                msg = scrub(payload, zone, qname)
                kind = classify(msg, zone, qname, qtype)
                if kind is not Kind.LAME:
                    self._answered_by = server
                    return msg, kind
                reason = "lame (no answer, referral or proof for the question)"
            failures.append(f"{_addr(server)} {reason}")
            self.trace.append(ev.ServerFailed(server, reason))
        raise ServFail(f"no usable response from the servers of {zone} for {qname} "
                        f"{type_text(qtype)}: {'; '.join(failures) or 'no servers'}")


def _has_edns(query: dns.message.Message) -> bool:
    return query.edns >= 0


def _addr(server: Server) -> str:
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
