"""The Resolver behind ``/v1/resolve`` and ``/v1/find`` on ``cid serve auth --http``
(spec/service.md §5): the one resolution path (resolver/client/), started at this server's own
zones.

The authoritative server does not recurse: its embedded Resolver's hints are the zones it
serves, each pointing at this server's own DNS listeners, so a resolution reads this server's
data over its own sockets (as any resolver would) and follows delegations downward to child
zones served elsewhere. An identifier under no served zone is refused before any query.

Trust: a ``--trust-anchor`` file when the operator gives one; otherwise each signed zone served
here is anchored at its own DNSKEY RRset's SEP keys — the server holds that RRset, nobody can
lie to it about it — so answers from unsigned served zones are ``indeterminate`` and the
Resolver's policy refuses them (403), exactly as the resolver's API does.

Zone changes (UPDATE, lease expiry, re-signing, reload): the store's ``generation`` moves; on
the next request the zones whose apex changed (every change moves the SOA serial) are flushed
from the embedded cache, the hints follow the set of zones and the self-made anchors follow
the DNSKEY RRsets, so a registration acknowledged by the server is visible at once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from .. import identifier as ident
from ..client import Resolver
from ..dnssec.anchors import TrustAnchor, TrustAnchorError
from ..engine.hints import parse_hints
from .errors import ApiError

DNSKEY = dns.rdatatype.DNSKEY
_SEP, _ZONE, _REVOKE = 0x0001, 0x0100, 0x0080
MAX_ZONES_NAMED = 8  # zones listed in a not_served message


def loopback_for(host: str) -> str:
    """Where to reach a listener bound to ``host``: the wildcard addresses through loopback."""
    address = ipaddress.ip_address(host)
    if address.is_unspecified:
        return "::1" if address.version == 6 else "127.0.0.1"
    return str(address)


def own_anchor(zones) -> TrustAnchor | None:
    """Each signed zone anchored at its own apex DNSKEY RRset: its SEP keys (KSK/CSK), or every
    zone key when none has the SEP flag (a zone signed by one 256 key). None: nothing signed."""
    rrsets = []
    for data in zones:
        apex = data.node(data.apex)
        published = apex.rrsets.get(DNSKEY) if apex is not None else None
        if published is None:
            continue
        keys = [dns.rdata.from_wire(dns.rdataclass.IN, DNSKEY, wire, 0, len(wire)) for wire in published.rdatas]
        keys = [k for k in keys if k.flags & _ZONE and not k.flags & _REVOKE and k.protocol == 3]
        chosen = [k for k in keys if k.flags & _SEP] or keys
        if chosen:
            rrsets.append(dns.rrset.from_rdata_list(data.origin, published.ttl, chosen))
    if not rrsets:
        return None
    try:
        return TrustAnchor.from_rrsets(rrsets, source="the served zones' DNSKEY RRsets")
    except TrustAnchorError:  # pragma: no cover - the keys were filtered as from_rrsets checks
        return None


class AuthResolver:
    """What the API handlers (api.py) call on the authoritative server: ``resolve`` and
    ``find`` of one embedded Resolver, after the served-zone check and the change check."""

    def __init__(self, store, addresses: Callable[[], list[tuple[str, int]]], *,
                 trust_anchor: TrustAnchor | None = None, port: int | None = None, **options):
        """``store``: the ZoneStore served; ``addresses``: the DNS listeners (read once they are
        bound); ``trust_anchor``: the operator's, else the zones' own keys; ``port``: the port
        of servers learned from delegations (default: the first listener's); ``options``:
        more Resolver keyword arguments."""
        self.store = store
        self._addresses = addresses
        self._given_anchor = trust_anchor
        self._port = port
        self._options = options
        self.resolver: Resolver | None = None
        self._generation: int | None = None
        self._seen: dict[dns.name.Name, tuple[int, bytes]] = {}  # zone -> (id of its data, apex blob)

    # --- the served-zone check ----------------------------------------------------------------

    def _served(self, text: str) -> None:
        name = ident.parse(text)  # the handlers checked it already: this cannot fail
        if self.store.find(name) is None:
            zones = sorted(str(z.origin) for z in self.store.zones)
            shown = ", ".join(zones[:MAX_ZONES_NAMED]) + (", ..." if len(zones) > MAX_ZONES_NAMED else "")
            raise ApiError(404, "not_served",
                           f"{ident.to_dns(name)}: this server is authoritative for {shown or 'no zone'}; "
                           "it does not recurse", identifier=ident.to_cid(name), zones=zones)

    # --- following the zones ------------------------------------------------------------------

    def _sync(self) -> Resolver:
        """The embedded Resolver, made on first use (the listeners are bound by then) and brought
        up to date with the zones when the store changed since the last request."""
        if self.resolver is None:
            listeners = self._addresses()
            if not listeners:
                raise ApiError(503, "not_serving", "the DNS listeners are not bound")
            port = self._port or listeners[0][1]
            self.resolver = Resolver({}, self._given_anchor, port=port, **self._options)
        generation = self.store.generation
        if generation == self._generation:
            return self.resolver
        self._generation = generation
        zones = self.store.zones
        now = {data.origin: (id(data), data.blobs.get(data.apex, b"")) for data in zones}
        cache = self.resolver.cache
        for origin in set(self._seen) | set(now):
            if self._seen.get(origin) != now.get(origin):
                cache.flush(subtree=origin)  # its data, denials, keys and whole resolutions
        if set(now) != set(self._seen):
            servers = [f"[{loopback_for(h)}]:{p}" if ":" in loopback_for(h) else f"{loopback_for(h)}:{p}"
                       for h, p in self._addresses()]
            self.resolver.hints = parse_hints({origin: servers for origin in now}, self.resolver.port)
        if self._given_anchor is None and now != self._seen:
            self.resolver.trust_anchor = own_anchor(zones)
        self._seen = now
        return self.resolver

    # --- what the handlers call ---------------------------------------------------------------

    async def resolve(self, identifier: str, **kw):
        self._served(identifier)
        try:
            return await self._sync().resolve(identifier, **kw)
        finally:
            self._sync()  # a change during the resolution: what it cached is flushed now

    async def find(self, namespace: str, *args, **kw):
        self._served(namespace)
        try:
            return await self._sync().find(namespace, *args, **kw)
        finally:
            self._sync()

    async def close(self) -> None:
        if self.resolver is not None:
            await self.resolver.close()
