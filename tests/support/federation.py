"""A small signed hierarchy for resolver tests, served without sockets (FakeNetwork) or by real
AuthServers on loopback. Built with the project's own zone signer and answered by the
project's own authoritative answering code, so engine tests exercise real DNS responses.

    cid.                 signed, trust anchor           servers 127.0.0.2
    ├─ cmcc.cid.         signed (DS in cid.)             127.0.0.3
    │  └─ bj.cmcc.cid.   signed (DS in cmcc.cid.)         127.0.0.4
    ├─ open.cid.         unsigned (NSEC in cid. proves no DS)  127.0.0.5
    └─ far.cid.          signed, NS name out of zone (ns.far-ops.net.), 127.0.0.6
    far-ops.net.         unsigned, served by hint            127.0.0.7
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
import dns.zone

import resolver  # noqa: F401
from resolver.auth.answer import answer_query
from resolver.auth.keys import generate_key
from resolver.auth.signer import ds_records, sign_zone
from resolver.auth.store import ZoneStore
from resolver.engine.actions import Done
from resolver.engine.engine import Engine

from .net import free_port
from .signing import NOW

N = dns.name.from_text

ZONES = {
    "cid.": ("127.0.0.2", """
@ 3600 SOA ns hostmaster 1 7200 900 1209600 300
@ 3600 NS ns
ns 3600 A 127.0.0.2
cmcc 3600 NS ns.cmcc
ns.cmcc 3600 A 127.0.0.3
open 3600 NS ns.open
ns.open 3600 A 127.0.0.5
far 3600 NS ns.far-ops.net.
"""),
    "cmcc.cid.": ("127.0.0.3", """
@ 3600 SOA ns hostmaster 1 7200 900 1209600 300
@ 3600 NS ns
ns 3600 A 127.0.0.3
bj 3600 NS ns.bj
ns.bj 3600 A 127.0.0.4
"""),
    "bj.cmcc.cid.": ("127.0.0.4", """
@ 3600 SOA ns hostmaster 1 7200 900 1209600 300
@ 3600 NS ns
ns 3600 A 127.0.0.4
pool-7 300 SVCB 1 . alpn=h2 port=8443 ipv4hint=192.0.2.99
pool-7 300 SVCB 2 backup alpn=h3
pool-7 300 A 192.0.2.7
pool-7 300 AAAA 2001:db8::7
pool-7 3600 CAPS accel_kind=gpu accel_count=8
pool-7 30 LOAD accel_free=3 util=0.5
backup 300 A 192.0.2.8
alias 300 SVCB 0 pool-7
hinted 300 SVCB 1 nowhere ipv4hint=192.0.2.50
c0 300 CNAME pool-7
c1 300 CNAME c0
c2 300 CNAME c1
c3 300 CNAME c2
c4 300 CNAME c3
c5 300 CNAME c4
c6 300 CNAME c5
c7 300 CNAME c6
c8 300 CNAME c7
c9 300 CNAME c8
loop1 300 CNAME loop2
loop2 300 CNAME loop1
*.wild 300 A 192.0.2.77
"""),
    "open.cid.": ("127.0.0.5", """
@ 3600 SOA ns hostmaster 1 7200 900 1209600 300
@ 3600 NS ns
ns 3600 A 127.0.0.5
pool-1 300 SVCB 1 . alpn=h2
pool-1 300 A 192.0.2.21
pool-1 3600 CAPS accel_kind=cpu
"""),
    "far.cid.": ("127.0.0.6", """
@ 3600 SOA ns.far-ops.net. hostmaster 1 7200 900 1209600 300
@ 3600 NS ns.far-ops.net.
node 300 A 192.0.2.31
"""),
    "far-ops.net.": ("127.0.0.7", """
@ 3600 SOA ns hostmaster 1 7200 900 1209600 300
@ 3600 NS ns
ns 3600 A 127.0.0.6
"""),
}
SIGNED = ("cid.", "cmcc.cid.", "bj.cmcc.cid.", "far.cid.")


@dataclass
class Federation:
    zones: dict[str, dns.zone.Zone]
    addresses: dict[str, str]
    keys: dict[str, object]
    anchor_text: str
    now: float

    def hints(self, port: int | None = None) -> dict[str, list[str]]:
        suffix = f":{port}" if port else ""
        return {"cid.": [self.addresses["cid."] + suffix],
                "far-ops.net.": [self.addresses["far-ops.net."] + suffix]}

    def anchor(self):
        from resolver.dnssec.anchors import TrustAnchor
        return TrustAnchor.from_text(self.anchor_text)

    def stores(self) -> dict[str, ZoneStore]:
        """Address → store of the zones served there."""
        out: dict[str, ZoneStore] = {}
        for name, zone in self.zones.items():
            out.setdefault(self.addresses[name], ZoneStore()).add(zone)
        return out


def build(now: float = NOW, overrides: dict[str, str] | None = None,
          algorithms: dict[str, int] | None = None) -> Federation:
    """Sign bottom-up so each parent can carry its child's DS. ``overrides`` replaces zone
    texts; ``algorithms`` picks a zone's DNSSEC algorithm (default 15, Ed25519)."""
    texts = {k: v[1] for k, v in ZONES.items()}
    texts.update(overrides or {})
    zones: dict[str, dns.zone.Zone] = {}
    keys = {}
    for name in sorted(texts, key=lambda n: -len(N(n))):
        text = texts[name]
        for child in SIGNED:
            if N(child).parent() == N(name) and child in keys:
                ds = " ".join(ds_records(child, [keys[child]])[0].to_text().split())
                text += f"\n{N(child).relativize(N(name))} 3600 DS {ds}\n"
        zone = dns.zone.from_text(text, origin=N(name), relativize=False)
        if name in SIGNED:
            keys[name] = generate_key(name, (algorithms or {}).get(name, 15))
            sign_zone(zone, [keys[name]], now=now)
        zones[name] = zone
    anchor = f"cid. 3600 IN DNSKEY {keys['cid.'].dnskey.to_text()}\n"
    return Federation(zones, {k: v[0] for k, v in ZONES.items()}, keys, anchor, now)


Tamper = Callable[[tuple[str, int], dns.message.Message, dns.message.Message, bool], dns.message.Message | None]


@dataclass
class FakeNetwork:
    """Answers an Engine's Sends from zone stores; no sockets. ``down`` addresses time out;
    ``tamper(server, query, response, tcp)`` may rewrite a response (an on-path attacker)."""

    stores: dict[str, ZoneStore]
    down: set[str] = field(default_factory=set)
    tamper: Tamper | None = None
    sent: list[tuple[tuple[str, int], str, str, bool]] = field(default_factory=list)

    def run(self, engine: Engine, max_steps: int = 500):
        for _ in range(max_steps):
            action = engine.next_action()
            if isinstance(action, Done):
                return action.result
            q = action.query.question[0]
            # Names as asked, in canonical case (the engine's 0x20 case is random; see test_hardening).
            self.sent.append((action.server, str(q.name.canonicalize()), dns.rdatatype.to_text(q.rdtype), action.tcp))
            host = action.server[0]
            store = self.stores.get(host)
            if store is None or host in self.down:
                engine.on_timeout(action.token)
                continue
            wire = answer_query(store, action.query.to_wire(), tcp=action.tcp)
            if wire is None:
                engine.on_timeout(action.token)
                continue
            response = dns.message.from_wire(wire)
            if self.tamper is not None:
                response = self.tamper(action.server, action.query, response, action.tcp)
                if response is None:
                    engine.on_timeout(action.token)
                    continue
            engine.on_response(action.token, response, action.server)
        raise AssertionError("engine did not finish")


def network(fed: Federation, **kw) -> FakeNetwork:
    return FakeNetwork(fed.stores(), **kw)


def strip(response: dns.message.Message, section: str, rdtype: int, covers: int = 0) -> dns.message.Message:
    """Remove every RRset of a type (RRSIG: of a covered type) from a section."""
    kept = [r for r in getattr(response, section)
            if not (r.rdtype == rdtype and (covers == 0 or r.covers == covers))]
    setattr(response, section, kept)
    return response


@contextlib.asynccontextmanager
async def serving_stores(stores: Mapping[str, ZoneStore], port: int | None = None):
    """Serve each store with a real AuthServer on its address, all on one port (the resolver
    uses one port for all servers): ``port``, or one free on every address; yields the port."""
    from resolver.auth.server import AuthServer
    for _ in range(5 if port is None else 1):
        chosen = free_port(next(iter(stores))) if port is None else port
        servers = []
        try:
            for address, store in stores.items():
                server = AuthServer(store, [(address, chosen)])
                await server.start()
                servers.append(server)
        except OSError:
            for server in servers:
                await server.close()
            if port is not None:
                raise
            continue
        break
    else:
        raise RuntimeError(f"no common free port on {', '.join(stores)}")
    try:
        yield chosen
    finally:
        for server in servers:
            await server.close()


def serving(fed: Federation):
    """Every zone of ``fed`` on its 127.0.0.x address, one common free port; yields the port."""
    return serving_stores(fed.stores())


@contextlib.contextmanager
def serving_in_thread(fed: Federation):
    """``serving`` on an event loop in a background thread, for tests that run subprocesses."""
    with stores_serving_in_thread(fed.stores()) as port:
        yield port


@contextlib.contextmanager
def stores_serving_in_thread(stores: Mapping[str, ZoneStore], port: int | None = None):
    """``serving_stores`` on an event loop in a background thread; yields the port."""
    loop = asyncio.new_event_loop()
    ready: concurrent.futures.Future = concurrent.futures.Future()
    stop = asyncio.Event()

    async def main():
        try:
            async with serving_stores(stores, port) as chosen:
                ready.set_result(chosen)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    try:
        yield ready.result(timeout=10)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()


def resolver_config(fed: Federation, directory: Path, port: int, *, apex: str | None = None, **settings) -> Path:
    """A `cid serve resolver --config` file in ``directory`` for the federation served on
    ``port`` (``serving_in_thread``): its trust anchor beside it, ``cid.`` at ``apex`` (default
    127.0.0.2:port), and extra ``[resolver]`` settings (``timeout=0.5``, ...)."""
    (directory / "ta.dnskey").write_text(fed.anchor_text)
    extra = "".join(f"{key} = {value}\n" for key, value in settings.items())
    config = directory / "resolver.toml"
    config.write_text(f'[resolver]\nhints = {{"cid." = ["{apex or f"127.0.0.2:{port}"}"]}}\n'
                      f'trust_anchor = "ta.dnskey"\nport = {port}\n{extra}')
    return config
