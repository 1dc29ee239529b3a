"""``AiohttpResolver``: aiohttp's name resolution through our validating Resolver ("use").

    async with Resolver(hints=..., trust_anchor=...) as r:
        connector = aiohttp.TCPConnector(resolver=AiohttpResolver(r))
        async with aiohttp.ClientSession(connector=connector) as http:
            await http.get("http://pool-7.bj.cmcc.cid/v1/models")

aiohttp calls ``resolve(host, port, family)`` with the URL's port, and with the scheme's
default (80, 443) when the URL has none — the two cannot be told apart. The rule
(spec/resolution.md §4.1): a port equal to the scheme default (or 0) is replaced by each
endpoint's SVCB ``port`` (RFC 9460 §7.2), an explicit other port is kept (RFC 9460 §2.3
would look that up at a port-prefixed name, which this scheme does not publish). Addresses
come in endpoint order (spec/resolution.md §4), so aiohttp's Happy Eyeballs tries the
preferred endpoint first and falls back down the list.

A name that does not resolve, resolves bogus, or is refused by the validation policy
(spec/resolution.md §5.1: unvalidated answers are refused unless the Resolver was made with
``validation="off"``) raises ``ResolutionError`` — a ``socket.gaierror``, which aiohttp turns
into ``ClientConnectorDNSError`` like any DNS failure. Messages speak Python (keyword
arguments, never ``cid`` command-line flags).

When the name resolves but no endpoint accepts the connection, aiohttp tries every address
handed to it and raises its own ``ClientConnectorError`` naming only the last one; the
resolver cannot change that error. ``AiohttpResolver.tried(host)`` lists what was handed over,
and ``Connector`` (a ``TCPConnector``) raises ``EndpointsUnreachable`` instead, a
``ClientConnectorError`` whose message and ``tried`` list every endpoint address:

    connector = Connector(AiohttpResolver(r))   # = aiohttp.TCPConnector(resolver=...) plus that
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

import aiohttp
import dns.name
from aiohttp.abc import AbstractResolver, ResolveResult

from . import identifier as ident
from .client import Resolver, ValidationRefused
from .resolution import Resolution
from .status import Status

DEFAULT_PORTS = (80, 443)  # http, https: what aiohttp passes when the URL names no port
MAX_MEMO = 1024            # hosts whose parsed name and last answer are remembered


class ResolutionError(socket.gaierror):
    """The identifier did not resolve to usable addresses. ``resolution`` is the result, if any.

    errno: EAI_NONAME (does not exist / no endpoints), EAI_AGAIN (lookup failed),
    EAI_FAIL (bogus, or not secure when security is required)."""

    def __init__(self, code: int, message: str, resolution: Resolution | None = None):
        super().__init__(code, _python_words(message))
        self.resolution = resolution


# Reasons written for the command line may reach a ResolutionError through ``why``; say them in
# the words of the Python API.
_CLI_TO_PYTHON = (
    ("give a --hint for one of its zones", "add one of its zones to Resolver(hints=...)"),
    ("--trust-anchor FILE", "trust_anchor=FILE"),
    ("--trust-anchor", "trust_anchor="),
    ("--no-validate", "validation='off'"),
    ("--require-secure", "require_secure=True"),
    ("--hint", "hints="),
    ("--timeout", "timeout="),
    ("--deadline", "max_time="),
    ("--port", "port="),
)


def _python_words(message: str) -> str:
    for cli, python in _CLI_TO_PYTHON:
        message = message.replace(cli, python)
    return message


class EndpointsUnreachable(aiohttp.ClientConnectorError):
    """No endpoint address of the identifier accepted a connection (raised by ``Connector``).
    ``tried``: the (address, port) pairs handed to aiohttp, in the order it tried them;
    ``resolution``: the Resolution they came from; ``os_error``: aiohttp's last error."""

    def __init__(self, error: aiohttp.ClientConnectorError, tried: list[tuple[str, int]],
                 resolution: Resolution | None):
        super().__init__(error._conn_key, error.os_error)
        self.tried, self.resolution = tried, resolution

    def __str__(self) -> str:
        listed = ", ".join(f"[{a}]:{p}" if ":" in a else f"{a}:{p}" for a, p in self.tried)
        return (f"Cannot connect to {self.host}: none of its {len(self.tried)} endpoint address(es) accepted "
                f"a connection ({listed}); last error: {self.strerror or self.os_error}")


class Connector(aiohttp.TCPConnector):
    """``aiohttp.TCPConnector(resolver=resolver, **kwargs)`` that, when every endpoint address
    of an identifier fails to connect, raises EndpointsUnreachable listing them all (aiohttp's
    own error names only the last)."""

    def __init__(self, resolver: AiohttpResolver, **kwargs):
        super().__init__(resolver=resolver, **kwargs)
        self.cid_resolver = resolver

    async def connect(self, req, traces, timeout):
        try:
            return await super().connect(req, traces, timeout)
        except aiohttp.ClientConnectorDNSError:
            raise
        except aiohttp.ClientConnectorError as exc:
            tried = self.cid_resolver.tried(req.url.raw_host or "")
            if not tried:
                raise
            raise EndpointsUnreachable(exc, tried, self.cid_resolver.resolution(req.url.raw_host or "")) from exc


class AiohttpResolver(AbstractResolver):
    """An ``aiohttp.abc.AbstractResolver`` over a ``Resolver``.

    ``fallback``: another AbstractResolver (e.g. ``aiohttp.ThreadedResolver()``) for host
    names outside every namespace the Resolver has hints for; without one they fail.
    ``require_secure``: refuse answers that are not DNSSEC-secure (insecure too) even when
    the Resolver's own policy accepts them; bogus answers are always refused, and so are
    unvalidated (indeterminate) ones unless the Resolver was made with ``validation="off"``. ``probe``: time a TCP connect to each endpoint address
    before answering, so the order also reflects reachability (spec/resolution.md §4 rule 3).
    ``default_ports``: the ports taken to mean "the URL said nothing".
    """

    def __init__(self, resolver: Resolver, *, fallback: AbstractResolver | None = None,
                 require_secure: bool = False, probe: bool = False,
                 default_ports: Iterable[int] = DEFAULT_PORTS):
        self.resolver = resolver
        self.fallback = fallback
        self.require_secure = require_secure
        self.probe = probe
        self.default_ports = frozenset(default_ports)
        # host -> DNS spelling (None: not ours); (host, port, family) -> (Resolution, answer).
        # The Resolver hands out the same Resolution object while its cache entry stands, so
        # an identical object means the answer built from it last time is still the answer.
        self._names: dict[str, str | None] = {}
        self._answers: dict[tuple[str, int, int], tuple[Resolution, list[ResolveResult]]] = {}
        self._last: dict[str, tuple[Resolution, list[ResolveResult]]] = {}  # host -> last answer

    def tried(self, host: str) -> list[tuple[str, int]]:
        """The (address, port) pairs last handed to aiohttp for ``host``, in order: what it tries
        before giving up (its own error then names only the last of them)."""
        last = self._last.get(host)
        return [(r["host"], r["port"]) for r in last[1]] if last else []

    def resolution(self, host: str) -> Resolution | None:
        """The Resolution behind the last answer for ``host``."""
        last = self._last.get(host)
        return last[0] if last else None

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        text = self._names[host] if host in self._names else self._name(host)
        if text is None:
            if self.fallback is not None:
                return await self.fallback.resolve(host, port, family)
            raise ResolutionError(socket.EAI_NONAME, f"{host}: not an identifier in a namespace this "
                                  f"Resolver has hints for ({', '.join(map(str, self.resolver.hints))}); add "
                                  "its namespace to Resolver(hints=...), or give AiohttpResolver a fallback= "
                                  "resolver for other host names") from None
        try:
            result = await (self.resolver.probe(text) if self.probe else self.resolver.resolve(text))
        except ValidationRefused as exc:  # the Resolver's policy: indeterminate (or insecure) refused
            raise ResolutionError(socket.EAI_FAIL, f"{host}: {exc}", exc.result) from None
        key = (host, port, family)
        memo = self._answers.get(key)
        if memo is not None and memo[0] is result:
            self._last[host] = memo
            return list(memo[1])
        _check(host, result, self.require_secure)
        out = self._answer(host, port, family, result)
        if len(self._answers) >= MAX_MEMO:
            self._answers.clear()
        if len(self._last) >= MAX_MEMO:
            self._last.clear()
        self._answers[key] = self._last[host] = (result, out)
        return list(out)

    def _name(self, host: str) -> str | None:
        """The identifier's DNS spelling, or None when the host is not ours to resolve."""
        try:
            name = ident.parse(host)
        except ident.IdentifierError:
            text = None
        else:
            # Outside every hinted namespace there is nothing to ask: said at once, not after
            # a failed resolution.
            text = ident.to_dns(name) if self._served(name) else None
        if len(self._names) >= MAX_MEMO:
            self._names.clear()
        self._names[host] = text
        return text

    def _answer(self, host: str, port: int, family: int, result: Resolution) -> list[ResolveResult]:
        out: list[ResolveResult] = []
        seen: set[tuple[str, int]] = set()
        for endpoint in result.endpoints:
            use_port = endpoint.port if port in self.default_ports or port == 0 else port
            use_port = port if use_port is None else use_port
            for address in endpoint.addresses:
                af = socket.AF_INET6 if ":" in address else socket.AF_INET
                if family not in (socket.AF_UNSPEC, af) or (address, use_port) in seen:
                    continue
                seen.add((address, use_port))
                out.append(ResolveResult(hostname=host, host=address, port=use_port, family=af,
                                         proto=0, flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV))
        if not out:
            family_text = "" if family == socket.AF_UNSPEC else f" of family {socket.AddressFamily(family).name}"
            listed = "; ".join(f"{e.target} priority {e.priority}: {' '.join(e.addresses) or 'no addresses'}"
                               for e in result.endpoints) or "no endpoints (no SVCB ServiceMode records)"
            raise ResolutionError(socket.EAI_NONAME, f"{host}: no endpoint addresses{family_text} "
                                  f"({result.status.value}; endpoints: {listed})", result)
        return out

    def _served(self, name: dns.name.Name) -> bool:
        return any(name.is_subdomain(zone) for zone in self.resolver.hints)

    async def close(self) -> None:
        """The Resolver belongs to the caller (it may serve other users); it is not closed."""
        if self.fallback is not None:
            await self.fallback.close()


def _check(host: str, result: Resolution, require_secure: bool) -> None:
    if result.status is Status.BOGUS:
        raise ResolutionError(socket.EAI_FAIL, f"{host}: DNSSEC bogus, refused: {result.why}", result)
    if result.rcode == "NXDOMAIN":
        raise ResolutionError(socket.EAI_NONAME, f"{host}: no such identifier ({result.status.value})", result)
    if result.rcode != "NOERROR":
        raise ResolutionError(socket.EAI_AGAIN, f"{host}: resolution failed: {result.why}", result)
    if require_secure and result.status is not Status.SECURE:
        raise ResolutionError(socket.EAI_FAIL, f"{host}: {result.status.value}, and security is required "
                              f"(AiohttpResolver(require_secure=True)): {result.why}", result)
