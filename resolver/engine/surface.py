"""The engine's sans-I/O surface: the only doors in and out of a resolution.

Two ways to drive an Engine, chosen by the first call (they do not mix):

* serial — ``next_action()`` returns one Send (or Done); the driver reports its outcome
  (``on_response``/``on_timeout``/``on_error``) before asking again. One query is in flight.
* concurrent — ``next_actions()`` returns every Send that should now be in flight (possibly
  none: keep waiting for the outstanding ones), or ``[Done]``. The driver performs them all,
  reports each outcome as it comes, in any order, and calls ``next_actions()`` again. The
  engine may then have a few queries in flight at once: besides the one the resolution is
  waiting on, a zone's DNSKEY RRset is asked for as soon as the zone is entered, while the
  next query into it is under way (upstream.py, ``_prefetch_keys``). Everything else —
  budget, matching, fallbacks, validation — is exactly as in serial mode.

Every response is matched to its query here (address, ID, QR, question with 0x20 case)
before the resolution sees it.
"""

from __future__ import annotations

from typing import Any

import dns.exception
import dns.flags
import dns.message

from . import case as case20
from .actions import Done, EngineStateError, Send

_QR = int(dns.flags.QR)  # header flag tests on ints: Flag's & is an enum call


class Wait:
    """Yielded by the resolution generator: resume me with the outcome of the Send with this
    token (already handed out, e.g. a DNSKEY prefetch). Never seen by drivers."""

    __slots__ = ("token",)

    def __init__(self, token: int):
        self.token = token


class Surface:
    """Needs ``_gen`` (the resolution generator) and the attributes set by ``_surface_init``."""

    def _surface_init(self) -> None:
        self._mode: str | None = None           # "serial" | "concurrent", fixed by the first call
        self._done: Done | None = None
        self._waiting: int | None = None        # token the generator waits on
        self._started = False
        self._inflight: dict[int, Send] = {}    # handed out, outcome not yet reported
        self._replies: dict[int, tuple] = {}    # reported, not yet consumed by the generator
        self._outbox: list[Send] = []           # issued by the generator, not yet handed out

    @property
    def concurrent(self) -> bool:
        return self._mode == "concurrent"

    def _set_mode(self, mode: str) -> None:
        if self._mode is None:
            self._mode = mode
        elif self._mode != mode:
            raise EngineStateError("next_action() and next_actions() cannot be mixed on one engine")

    def next_action(self) -> Send | Done:
        self._set_mode("serial")
        if self._done is not None:
            return self._done
        if self._waiting is not None and self._waiting not in self._replies:
            raise EngineStateError(f"query token {self._waiting} has no response or timeout yet")
        actions = self._advance()
        return actions[0]

    def next_actions(self) -> list[Send | Done]:
        self._set_mode("concurrent")
        if self._done is not None:
            return [self._done]
        return self._advance()

    def _advance(self) -> list[Send | Done]:
        """Run the generator until it waits on a query whose outcome is not known yet."""
        while not self._started or self._waiting in self._replies:
            value = self._replies.pop(self._waiting) if self._started else None
            self._started = True
            self._waiting = None
            try:
                item: Any = self._gen.send(value)
            except StopIteration as stop:
                self._done = Done(stop.value)
                self._outbox.clear()
                return [self._done]
            if isinstance(item, Wait):
                self._waiting = item.token
            else:
                self._issue(item, first=True)  # the query the resolution waits on leaves first
                self._waiting = item.token
        out, self._outbox = self._outbox, []
        return out

    def _issue(self, send: Send, first: bool = False) -> None:
        """Hand ``send`` to the driver with the next batch (the generator may or may not wait on it)."""
        if first:
            self._outbox.insert(0, send)
        else:
            self._outbox.append(send)
        self._inflight[send.token] = send

    def on_response(self, token: int, response: bytes | dns.message.Message, from_addr: tuple) -> None:
        send = self._expect(token)
        self._replies[token] = _judge(send, response, from_addr)

    def on_timeout(self, token: int) -> None:
        self._expect(token)
        self._replies[token] = ("timeout", None)

    def on_error(self, token: int, reason: str) -> None:
        """The exchange failed other than by timeout (refused, reset, unreachable)."""
        self._expect(token)
        self._replies[token] = ("error", reason)

    def _expect(self, token: int) -> Send:
        send = self._inflight.pop(token, None) if self._done is None else None
        if send is None:
            raise EngineStateError(f"no outstanding query with token {token}")
        return send


def _judge(send: Send, response: bytes | dns.message.Message, from_addr: tuple) -> tuple:
    """What the resolution gets for ``response``: ("response", message) only for the exact
    reply to ``send``; ("case", message) for a case-only mismatch (never used as data, see
    upstream._exchange); ("error", reason) otherwise."""
    if isinstance(response, (bytes, bytearray, memoryview)):
        try:
            response = case20.parse_reply(bytes(response), send.query, send.wire or send.query.to_wire())
        except (dns.exception.DNSException, ValueError) as exc:
            return ("error", f"malformed response: {exc}")
    host, port = from_addr[0], from_addr[1]
    matched = case20.match(send.query, response)
    if (host, port) != send.server:
        return ("error", f"response from unexpected address {host}:{port}")
    if response.id != send.query.id or not int(response.flags) & _QR:
        return ("error", "response ID does not match the query")
    if matched is case20.Match.MISMATCH:
        return ("error", "response question does not match the query")
    if matched is case20.Match.CASE:
        return ("case", response)
    return ("response", case20.canonicalise_owners(response))
