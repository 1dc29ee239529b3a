"""The registration operations: register, unregister, update LOAD, keep a registration alive.

Each operation is a generator of steps (sans-I/O: it yields a message to send and receives the
answer's wire form), run by a blocking driver (``register``, ...) or an asyncio one
(``register_async``, ...), so the CLI and a provider inside an event loop (the demo) share
every DNS decision. Steps: find the zone (a SOA query to the server, as nsupdate does, unless
``zone=`` is given), read the identifier's current CAPS (to drop the browse PTRs it no longer
matches), send the UPDATE, read the answer.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.tsig

from .. import identifier as ident
from .. import records
from . import messages, transport, tsigkeys, values
from .endpoints import Endpoints, parse_endpoints
from .messages import Answer

# A step: (message to send, whether it is the UPDATE) -> the answer's wire form.
Steps = Generator[tuple[dns.message.Message, bool], bytes, "Result"]
KeyLike = tsigkeys.TsigKey | dns.tsig.Key | str | None
ServerLike = str | tuple[str, int]
RENEW_FRACTION = 0.75  # renew a lease when this much of it has passed (RFC 9664 §4.2 leaves it to the client)


class RegistrationError(ValueError):
    """Something the caller can fix before anything is sent (bad key, value, endpoint, zone)."""


@dataclass(frozen=True)
class Result:
    """One operation's outcome: what was asked of which server and what the server answered."""

    action: str  # "register" | "unregister" | "load" | "delegate" | "undelegate"
    name: dns.name.Name
    zone: dns.name.Name
    server: tuple[str, int]
    answer: Answer
    lease_asked: int | None = None
    sent: str = ""  # what the update carried, for the report line

    @property
    def ok(self) -> bool:
        return self.answer.ok

    @property
    def lease(self) -> int | None:
        """The lease to plan renewals on: the server's, else the one asked for."""
        if self.answer.lease is not None:
            return self.answer.lease[0]
        return self.lease_asked

    def line(self) -> str:
        who = ident.to_cid(self.name) if self.action in ("register", "unregister", "load") else self.name.to_text()
        where = transport._where(self.server)
        done = {"register": "registered", "unregister": "unregistered", "load": "LOAD updated",
                "delegate": "delegated", "undelegate": "undelegated"}[self.action]
        if self.ok:
            parts = [f"{who} {done} in {self.zone} at {where}: NOERROR"]
            if self.sent:
                parts[0] += f" ({self.sent})"
            lease = self.answer.lease_text(self.lease_asked)
            if lease:
                parts.append(lease)
            return "; ".join(parts)
        return f"{who} not {done.split()[0] if self.action != 'load' else 'updated'}: " \
               f"{self.answer.rcode_text} from {where} for zone {self.zone}: {self.answer.meaning()}"


def as_key(key: KeyLike) -> dns.tsig.Key | None:
    if key is None or isinstance(key, dns.tsig.Key):
        return key
    if isinstance(key, tsigkeys.TsigKey):
        return key.key
    if isinstance(key, str):
        try:
            return tsigkeys.parse_key(key, where="key").key
        except tsigkeys.TsigKeyError as exc:
            raise RegistrationError(str(exc)) from None
    raise TypeError(f"key: a TsigKey, dns.tsig.Key or 'NAME:SECRET', not {type(key).__name__}")


def as_server(server: ServerLike) -> tuple[str, int]:
    if isinstance(server, tuple):
        return server
    try:
        return transport.parse_server(server)
    except ValueError as exc:
        raise RegistrationError(f"server {exc}") from None


def as_name(name: str | dns.name.Name) -> dns.name.Name:
    if isinstance(name, dns.name.Name):
        return name
    try:
        return ident.parse(name)
    except ident.IdentifierError as exc:
        raise RegistrationError(str(exc)) from None


def _query(name: dns.name.Name, rdtype: int) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, use_edns=0, payload=messages.EDNS_PAYLOAD)
    query.flags &= ~dns.flags.RD
    return query


def _zone_step(name: dns.name.Name, zone: dns.name.Name | None, where: str) -> Generator[Any, bytes, dns.name.Name]:
    """The zone ``name`` is in, as the server sees it: the owner of the SOA in its answer."""
    if zone is not None:
        if not name.is_subdomain(zone):
            raise RegistrationError(f"{name} is not in zone {zone}")
        return zone
    query = _query(name, dns.rdatatype.SOA)
    wire = yield query, False
    try:
        response = dns.message.from_wire(wire)
    except dns.exception.DNSException as exc:
        raise RegistrationError(f"{where}: unreadable answer to a SOA query for {name} ({exc}); give the zone") from None
    if response.rcode() == dns.rcode.REFUSED:
        raise RegistrationError(f"{where} refused a SOA query for {name}: it does not serve that zone "
                                "(or hides it); give the zone with --zone")
    for section in (response.answer, response.authority):
        for rrset in section:
            if rrset.rdtype == dns.rdatatype.SOA and name.is_subdomain(rrset.name):
                return rrset.name
    cuts = [rrset.name for rrset in response.authority if rrset.rdtype == dns.rdatatype.NS]
    if cuts:
        raise RegistrationError(f"{name} is in {cuts[0]}, delegated from {where} to other servers: send the "
                                "update to that zone's primary")
    raise RegistrationError(f"{where} gave no SOA for {name} ({dns.rcode.to_text(response.rcode())}); "
                            "give the zone with --zone")


def _caps_step(name: dns.name.Name) -> Generator[Any, bytes, dict | None]:
    """The identifier's CAPS as the primary has it now (None when it has none or unreadable ones)."""
    wire = yield _query(name, records.CAPS), False
    try:
        response = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        return None  # malformed CAPS: only the _compute PTR can be found again
    for rrset in response.answer:
        if rrset.rdtype == records.CAPS and rrset.name == name:
            merged: dict = {}
            for rd in sorted(rrset, key=lambda r: r.to_digestable()):
                merged.update(rd.data.value)
            return merged
    return None


def _describe(reg: messages.Registration) -> str:
    svcb = len(reg.endpoints.svcb)
    parts = [f"{svcb} SVCB"]
    if reg.endpoints.a:
        parts.append(f"{len(reg.endpoints.a)} A")
    if reg.endpoints.aaaa:
        parts.append(f"{len(reg.endpoints.aaaa)} AAAA")
    parts.append("CAPS")
    if reg.load is not None:
        parts.append("LOAD")
    if reg.browse:
        parts.append(f"{len(reg.browse_names())} browse PTR")
    return ", ".join(parts)


@dataclass
class Publication:
    """What to publish for an identifier, checked: build with ``prepare``."""

    identifier: dns.name.Name
    endpoints: Endpoints
    caps: dict
    load: dict | None = None
    ttl: int = messages.TTL
    caps_ttl: int = messages.CAPS_TTL
    load_ttl: int = messages.LOAD_TTL
    browse: bool = True
    warnings: list[str] = field(default_factory=list)

    def registration(self, zone: dns.name.Name) -> messages.Registration:
        return messages.Registration(self.identifier, zone, self.endpoints, self.caps, self.load, self.ttl,
                                     self.caps_ttl, self.load_ttl, self.browse)


def _ttl(value: int, what: str, maximum: int = 2**31 - 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise RegistrationError(f"{what} must be 0..{maximum} seconds, not {value!r}")
    return value


def check_lease(lease: int | None) -> int | None:
    if lease is None:
        return None
    if not isinstance(lease, int) or isinstance(lease, bool) or not 1 <= lease <= messages.MAX_LEASE:
        raise RegistrationError(f"lease must be 1..{messages.MAX_LEASE} seconds, not {lease!r}")
    return lease


def _map(given: Mapping[str, Any] | Sequence[str], record: str) -> tuple[dict, list[str]]:
    try:
        if isinstance(given, Mapping):
            return values.check_map(given, record)
        return values.check_map(values.parse_items(given, record), record)
    except values.CapsValueError as exc:
        raise RegistrationError(str(exc)) from None


def load_map(load: Mapping[str, Any] | Sequence[str], *, source: str | None = "measured") -> tuple[dict, list[str]]:
    """A LOAD map checked like the command line's; ``source`` is added when missing (``ts`` is
    added when the message is made)."""
    mapping, warnings = _map(load, "LOAD")
    if source is not None and "source" not in mapping:
        mapping["source"] = source
    return mapping, warnings


def prepare(identifier: str | dns.name.Name, *, endpoints: Sequence[str] | Endpoints,
            caps: Mapping[str, Any] | Sequence[str], load: Mapping[str, Any] | Sequence[str] | None = None,
            addresses: Sequence[str] = (), ttl: int = messages.TTL, caps_ttl: int = messages.CAPS_TTL,
            load_ttl: int = messages.LOAD_TTL, browse: bool = True) -> Publication:
    """Check everything before anything is sent: RegistrationError names the first problem."""
    name = as_name(identifier)
    if not isinstance(endpoints, Endpoints):
        from .endpoints import EndpointError
        try:
            endpoints = parse_endpoints(list(endpoints), addresses)
        except EndpointError as exc:
            raise RegistrationError(str(exc)) from None
    caps_map, warnings = _map(caps, "CAPS")
    load_values = None
    if load is not None:
        load_values, more = load_map(load)
        warnings += more
    return Publication(name, endpoints, caps_map, load_values, _ttl(ttl, "TTL"), _ttl(caps_ttl, "CAPS TTL"),
                       _ttl(load_ttl, "LOAD TTL", messages.MAX_LOAD_TTL), browse, warnings)


# --- the operations as steps -----------------------------------------------------------------

def register_steps(pub: Publication, key: dns.tsig.Key | None, server: tuple[str, int], *,
                   lease: int | None = None, key_lease: int | None = None,
                   zone: dns.name.Name | None = None, load: Mapping[str, Any] | None = None) -> Steps:
    where = transport._where(server)
    zone = yield from _zone_step(pub.identifier, zone, where)
    old_caps = (yield from _caps_step(pub.identifier)) if pub.browse else None
    reg = pub.registration(zone)
    if load is not None:
        reg = messages.Registration(reg.identifier, zone, reg.endpoints, reg.caps, load, reg.ttl, reg.caps_ttl,
                                    reg.load_ttl, reg.browse)
    update = messages.register_message(reg, key, lease=lease, key_lease=key_lease, old_caps=old_caps)
    wire = yield update, True
    return Result("register", pub.identifier, zone, server, messages.parse_answer(wire, update), lease,
                  _describe(reg))


def unregister_steps(name: dns.name.Name, key: dns.tsig.Key | None, server: tuple[str, int], *,
                     zone: dns.name.Name | None = None, browse: bool = True) -> Steps:
    where = transport._where(server)
    zone = yield from _zone_step(name, zone, where)
    old_caps = (yield from _caps_step(name)) if browse else None
    update = messages.unregister_message(name, zone, key, old_caps=old_caps, browse=browse)
    wire = yield update, True
    sent = "every RRset at the name" + (f", {len(messages.registry.browse_names(zone, old_caps or {}))} browse PTR"
                                        if browse else "")
    return Result("unregister", name, zone, server, messages.parse_answer(wire, update), None, sent)


def load_steps(name: dns.name.Name, key: dns.tsig.Key | None, server: tuple[str, int], load: Mapping[str, Any], *,
               ttl: int = messages.LOAD_TTL, lease: int | None = None, zone: dns.name.Name | None = None,
               now: float | None = None) -> Steps:
    where = transport._where(server)
    zone = yield from _zone_step(name, zone, where)
    update = messages.load_message(name, zone, key, load, ttl=ttl, lease=lease, now=now)
    wire = yield update, True
    return Result("load", name, zone, server, messages.parse_answer(wire, update), lease, f"LOAD TTL {ttl}")


# --- drivers ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Options:
    timeout: float = transport.TIMEOUT
    tcp: bool = False


def run_steps(steps: Steps, server: tuple[str, int], options: Options = Options()) -> Result:
    """Drive ``steps`` with blocking I/O."""
    try:
        message, _ = next(steps)
        while True:
            wire = transport.exchange(message, server, timeout=options.timeout, tcp=options.tcp)
            message, _ = steps.send(wire)
    except StopIteration as done:
        return done.value


async def run_steps_async(steps: Steps, server: tuple[str, int], options: Options = Options()) -> Result:
    """Drive ``steps`` on the running event loop."""
    try:
        message, _ = next(steps)
        while True:
            wire = await transport.exchange_async(message, server, timeout=options.timeout, tcp=options.tcp)
            message, _ = steps.send(wire)
    except StopIteration as done:
        return done.value


def _zone(zone: str | dns.name.Name | None) -> dns.name.Name | None:
    if zone is None or isinstance(zone, dns.name.Name):
        return zone
    try:
        return dns.name.from_text(zone)
    except dns.exception.DNSException as exc:
        raise RegistrationError(f"zone {zone!r}: {exc}") from None


def _register_steps(server, key, identifier, endpoints, caps, load, lease, zone, kw) -> tuple[Steps, tuple[str, int]]:
    srv = as_server(server)
    pub = identifier if isinstance(identifier, Publication) else prepare(
        identifier, endpoints=endpoints, caps=caps, load=load, **kw)
    return register_steps(pub, as_key(key), srv, lease=check_lease(lease), zone=_zone(zone)), srv


def register(server: ServerLike, key: KeyLike, identifier: str | dns.name.Name | Publication, *,
             endpoints: Sequence[str] | Endpoints = (), caps: Mapping[str, Any] | Sequence[str] = (),
             load: Mapping[str, Any] | Sequence[str] | None = None, lease: int | None = None,
             zone: str | dns.name.Name | None = None, options: Options = Options(), **kw) -> Result:
    """Register (or re-register) ``identifier`` at the primary ``server``: one signed UPDATE.

    ``register("127.0.75.1:53", "upd:c2VjcmV0...", "cid:pool-7.bj.cmcc.cid",
    endpoints=["h2://127.0.0.5:8443"], caps={"accel_count": 8, "accel_memory_bytes": "80GiB"},
    lease=300)``. Raises RegistrationError before sending when anything is malformed and
    transport.TransportError when the server cannot be reached; the server's verdict is the
    Result (``.ok``, ``.line()``, ``.lease``)."""
    steps, srv = _register_steps(server, key, identifier, endpoints, caps, load, lease, zone, kw)
    return run_steps(steps, srv, options)


async def register_async(server: ServerLike, key: KeyLike, identifier: str | dns.name.Name | Publication, *,
                         endpoints: Sequence[str] | Endpoints = (), caps: Mapping[str, Any] | Sequence[str] = (),
                         load: Mapping[str, Any] | Sequence[str] | None = None, lease: int | None = None,
                         zone: str | dns.name.Name | None = None, options: Options = Options(), **kw) -> Result:
    steps, srv = _register_steps(server, key, identifier, endpoints, caps, load, lease, zone, kw)
    return await run_steps_async(steps, srv, options)


def unregister(server: ServerLike, key: KeyLike, identifier: str | dns.name.Name, *,
               zone: str | dns.name.Name | None = None, browse: bool = True, options: Options = Options()) -> Result:
    srv = as_server(server)
    return run_steps(unregister_steps(as_name(identifier), as_key(key), srv, zone=_zone(zone), browse=browse),
                     srv, options)


async def unregister_async(server: ServerLike, key: KeyLike, identifier: str | dns.name.Name, *,
                           zone: str | dns.name.Name | None = None, browse: bool = True,
                           options: Options = Options()) -> Result:
    srv = as_server(server)
    return await run_steps_async(unregister_steps(as_name(identifier), as_key(key), srv, zone=_zone(zone),
                                                  browse=browse), srv, options)


def update_load(server: ServerLike, key: KeyLike, identifier: str | dns.name.Name,
                load: Mapping[str, Any] | Sequence[str], *, ttl: int = messages.LOAD_TTL, lease: int | None = None,
                zone: str | dns.name.Name | None = None, options: Options = Options()) -> Result:
    """Replace the identifier's LOAD only (``cid load``); NXDOMAIN when it is not registered."""
    srv = as_server(server)
    mapping, _ = load_map(load)
    return run_steps(load_steps(as_name(identifier), as_key(key), srv, mapping,
                                ttl=_ttl(ttl, "LOAD TTL", messages.MAX_LOAD_TTL), lease=check_lease(lease),
                                zone=_zone(zone)), srv, options)


async def update_load_async(server: ServerLike, key: KeyLike, identifier: str | dns.name.Name,
                            load: Mapping[str, Any] | Sequence[str], *, ttl: int = messages.LOAD_TTL,
                            lease: int | None = None, zone: str | dns.name.Name | None = None,
                            options: Options = Options()) -> Result:
    srv = as_server(server)
    mapping, _ = load_map(load)
    return await run_steps_async(load_steps(as_name(identifier), as_key(key), srv, mapping,
                                            ttl=_ttl(ttl, "LOAD TTL", messages.MAX_LOAD_TTL),
                                            lease=check_lease(lease), zone=_zone(zone)), srv, options)


# --- keepalive -------------------------------------------------------------------------------

class Schedule:
    """When a kept-alive registration renews its lease and refreshes its LOAD (sans-I/O).

    Renewal (a whole registration again) at RENEW_FRACTION of the lease in force; LOAD every
    ``load_interval`` seconds in between; after a failure, the same action again after
    ``retry`` seconds (at most), and a LOAD refused with NXDOMAIN (the name is gone: lease ran
    out, or removed by hand) is followed at once by a full registration."""

    def __init__(self, lease: int, load_interval: float | None, retry: float = 5.0):
        self.lease = lease
        self.load_interval = load_interval
        self.retry = retry
        self.renew_at = 0.0  # register first
        self.load_at = float("inf")

    def due(self, now: float) -> str | None:
        if now >= self.renew_at:
            return "register"
        if now >= self.load_at:
            return "load"
        return None

    def next_time(self) -> float:
        return min(self.renew_at, self.load_at)

    def registered(self, now: float, result: Result | None) -> None:
        if result is not None and result.ok:
            granted = result.lease or self.lease
            self.renew_at = now + max(1.0, granted * RENEW_FRACTION)
            self.load_at = now + self.load_interval if self.load_interval else float("inf")
        else:
            self.renew_at = now + min(self.retry, max(1.0, self.lease * 0.1))

    def loaded(self, now: float, result: Result | None) -> None:
        if result is not None and result.answer.rcode == dns.rcode.NXDOMAIN:
            self.renew_at = now
        elif result is not None and result.ok:
            self.load_at = now + (self.load_interval or float("inf"))
        else:
            self.load_at = now + min(self.retry, self.load_interval or self.retry)
        if self.load_at > self.renew_at:
            self.load_at = float("inf") if not self.load_interval else self.load_at


LoadSource = Callable[[], Mapping[str, Any] | Sequence[str] | None]


@dataclass
class Keepalive:
    """A registration kept alive until stopped: renewed before its lease runs out, LOAD refreshed
    from ``load_source`` (called before each refresh; None keeps the last LOAD) every
    ``load_interval`` seconds. ``report`` gets every Result and every error text."""

    server: tuple[str, int]
    key: dns.tsig.Key | None
    publication: Publication
    lease: int
    load_source: LoadSource | None = None
    load_interval: float | None = None
    zone: dns.name.Name | None = None
    options: Options = Options()
    report: Callable[[Result | str], None] = lambda item: None
    unregister_on_exit: bool = False
    clock: Callable[[], float] = time.time
    results: list[Result] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.failed: Result | None = None
        self.schedule = Schedule(self.lease, self.load_interval)
        self._load = self.publication.load

    def _fresh_load(self) -> dict | None:
        if self.load_source is None:
            return self._load
        given = self.load_source()
        if given is not None:
            self._load, _ = load_map(given)
        return self._load

    def _steps(self, action: str) -> Steps:
        if action == "register":
            return register_steps(self.publication, self.key, self.server, lease=self.lease, zone=self.zone,
                                  load=self._fresh_load())
        load = self._fresh_load()
        return load_steps(self.publication.identifier, self.key, self.server, load or {},
                          ttl=self.publication.load_ttl, lease=self.lease, zone=self.zone)

    def _done(self, action: str, result: Result | None, error: str | None) -> None:
        now = self.clock()
        if result is not None:
            self.zone = result.zone
            self.results.append(result)
            self.report(result)
        elif error is not None:
            self.report(error)
        if action == "register":
            self.schedule.registered(now, result)
        else:
            self.schedule.loaded(now, result)

    def _next(self) -> str | None:
        action = self.schedule.due(self.clock())
        if action == "load" and self._load is None and self.load_source is None:
            self.schedule.load_at = float("inf")
            return None
        return action

    def run(self, stop: threading.Event) -> Result | None:
        """Blocking: until ``stop`` is set. Returns the unregistration's result, if any."""
        while not stop.is_set():
            action = self._next()
            if action is None:
                stop.wait(max(0.0, self.schedule.next_time() - self.clock()))
                continue
            result, error = None, None
            try:
                result = run_steps(self._steps(action), self.server, self.options)
            except (transport.TransportError, RegistrationError) as exc:
                error = str(exc)
            self._done(action, result, error)
            if self._refused_at_once(result):
                break
        return self._exit()

    async def run_async(self, stop: asyncio.Event) -> Result | None:
        """On the running event loop: until ``stop`` is set."""
        while not stop.is_set():
            action = self._next()
            if action is None:
                try:
                    await asyncio.wait_for(stop.wait(), max(0.0, self.schedule.next_time() - self.clock()))
                except asyncio.TimeoutError:
                    pass
                continue
            result, error = None, None
            try:
                result = await run_steps_async(self._steps(action), self.server, self.options)
            except (transport.TransportError, RegistrationError) as exc:
                error = str(exc)
            self._done(action, result, error)
            if self._refused_at_once(result):
                break
        return await self._exit_async()

    def _refused_at_once(self, result: Result | None) -> bool:
        """The very first registration got a verdict other than NOERROR (a bad key, a policy that
        refuses it): trying again cannot help, so the keepalive ends (``failed`` says why).
        Later failures (and unreachable servers) are retried: the server may be restarting."""
        if result is None or result.ok or any(r.ok for r in self.results):
            return False
        self.failed = result
        return True

    def _exit(self) -> Result | None:
        if not self.unregister_on_exit or self.failed is not None:
            return None
        try:
            result = run_steps(unregister_steps(self.publication.identifier, self.key, self.server, zone=self.zone,
                                                browse=self.publication.browse), self.server, self.options)
        except (transport.TransportError, RegistrationError) as exc:
            self.report(str(exc))
            return None
        self.report(result)
        return result

    async def _exit_async(self) -> Result | None:
        if not self.unregister_on_exit or self.failed is not None:
            return None
        try:
            result = await run_steps_async(unregister_steps(self.publication.identifier, self.key, self.server,
                                                            zone=self.zone, browse=self.publication.browse),
                                           self.server, self.options)
        except (transport.TransportError, RegistrationError) as exc:
            self.report(str(exc))
            return None
        self.report(result)
        return result
