"""Serves a built federation on the live primary (one per zone, each from its own
``cid serve auth --config`` file), lets the providers register by signed UPDATE, resolves sample
identifiers, and shows a provider that stops heartbeating disappear when its lease runs out."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from ..auth import authconfig, export, livesetup
from ..auth.server import AuthServer
from ..client import Resolver
from ..resolution import Resolution
from .build import Federation
from .liveconfig import toml_string
from .providers import LOAD_INTERVAL, VANISHING, Providers

# (identifier, expected status, expected rcode): the demo checks itself end to end.
SAMPLES = (
    ("cid:pool-7.bj.cmcc.cid", "secure", "NOERROR"),        # three signed levels, two endpoints
    ("cid:mi-1.sh.cmcc.cid", "secure", "NOERROR"),          # AMD pool
    ("cid:mixtral.us-east.acme.cid", "secure", "NOERROR"),  # inference endpoint
    ("cid:l4-1.plain.cid", "insecure", "NOERROR"),          # plain.cid. is unsigned, proven by NSEC
    ("cid:nope.bj.cmcc.cid", "secure", "NXDOMAIN"),         # proven not to exist
)
GONE_WAIT = 15.0  # seconds past the lease to wait for the expiry before calling it a failure


@contextlib.asynccontextmanager
async def serving(fed: Federation, report: Callable[[str], None] = lambda line: None, *,
                  load_interval: float = LOAD_INTERVAL) -> AsyncIterator[Providers]:
    """Every zone served by the live primary (the classes ``cid serve auth --config`` uses, from
    the zone's own config file) on its own loopback address; every provider registered and
    heartbeating; each zone's ``file`` overwritten by an export of the live zone. Yields the
    providers; stops everything on exit."""
    servers: list[AuthServer] = []
    primaries = []
    providers: Providers | None = None
    try:
        for zone in fed.zones:
            primary = livesetup.open_primary(authconfig.load(zone.config))
            primaries.append(primary)
            server = AuthServer(primary.store, [(zone.address, zone.port)], primary=primary)
            await server.start()
            servers.append(server)
            for live in primary.zones.values():
                live.start()
        providers = Providers(fed, report=report, load_interval=load_interval)
        await providers.start()
        export_files(fed)
        yield providers
    finally:
        if providers is not None:
            await providers.close()
        for server in servers:
            await server.close()
        for primary in primaries:
            for live in primary.zones.values():
                live.close()


def export_files(fed: Federation) -> None:
    """Each zone's ``file`` becomes the zone as its journal says (``cid zone export``: what was
    acknowledged), so peers (BIND, NSD, Knot) and dnssec-verify read what the demo serves."""
    for zone in fed.zones:
        export.write(export.export_config(authconfig.load(zone.config), zone.name), zone.file)


async def disappearance(fed: Federation, providers: Providers, say: Callable[[str], None]) -> bool:
    """VANISHING stops heartbeating; wait (bounded) until its lease expires and it is gone from
    answers and from ``find``. True when it went as it should."""
    namespace = "cid:" + VANISHING.split(".", 1)[1]
    async with resolver_for(fed) as r:
        before = len(await r.find(namespace))
    lease = providers.lease(VANISHING)
    say(f"--- provider {VANISHING} stops heartbeating (lease {lease} s, no unregistration)")
    await providers.stop(VANISHING)
    stopped = time.monotonic()
    deadline = stopped + lease + GONE_WAIT
    while True:
        async with resolver_for(fed) as r:  # a fresh cache each time: what a newcomer would see
            result = await r.resolve(VANISHING)
            if result.rcode == "NXDOMAIN":
                after = await r.find(namespace)
                break
        if time.monotonic() > deadline:
            say(f"--- UNEXPECTED {VANISHING} still answers {lease + GONE_WAIT:.0f} s after its last renewal")
            return False
        await asyncio.sleep(0.25)
    gone = VANISHING not in {x.identifier for x in after}
    mark = "ok " if gone and result.status.value == "secure" else "UNEXPECTED"
    say(f"--- {mark} {VANISHING} gone {time.monotonic() - stopped:.1f} s after its heartbeat stopped:"
        f" lease expired, the primary removed its records and browse PTRs and re-signed the zone")
    say(f"    resolve: {result.rcode} ({result.status.value}); cid find {namespace}: "
        f"{len(after)} listed (was {before})")
    return mark == "ok "


CONFIG_NAME = "config.toml"


def config_text(fed: Federation) -> str:
    """The client configuration (spec/resolution.md §11) that resolves the federation with no
    flags: the apex's server as hint, its port, the trust anchor (relative to the file)."""
    apex = fed.apex_zone
    anchor = fed.trust_anchor
    try:
        anchor_text = str(anchor.relative_to(fed.directory))
    except ValueError:
        anchor_text = str(anchor)
    path = fed.directory / CONFIG_NAME
    return "\n".join([
        "# cid client configuration for the demo federation (written by cid demo).",
        f"#   export CID_CONFIG={_quote_sh(str(path))}",
        "# then: cid resolve cid:pool-7.bj.cmcc.cid; cid find cid. --where accel_vendor=nvidia",
        f"hints = {{ {toml_string(fed.apex)} = [{toml_string(apex.address)}] }}",
        f"port = {apex.port}",
        f"trust_anchor = {toml_string(anchor_text)}",
        'validation = "on"',
        "require_secure = false",
        "",
    ])


def write_config(fed: Federation) -> Path:
    """Write ``DIR/config.toml`` (config_text) and return its path."""
    path = fed.directory / CONFIG_NAME
    path.write_text(config_text(fed), encoding="utf-8")
    return path


def export_line(path: Path) -> str:
    """The one shell line that makes every cid command use ``path``."""
    return f"export CID_CONFIG={_quote_sh(str(path.resolve()))}"


def _quote_sh(text: str) -> str:
    import shlex
    return shlex.quote(text)


def resolver_for(fed: Federation, **options) -> Resolver:
    """A Resolver for the federation: from the configuration ``write_config`` wrote when it is
    there (so the demo itself checks that file), else from the federation directly."""
    path = fed.directory / CONFIG_NAME
    if path.is_file():
        return Resolver.from_config(path, **options)
    apex = fed.apex_zone
    return Resolver(hints={fed.apex: [apex.address]}, trust_anchor=fed.trust_anchor,
                    port=apex.port, **options)


def as_expected(result: Resolution, status: str, rcode: str) -> bool:
    return result.status.value == status and result.rcode == rcode


async def run(fed: Federation, *, serve: bool, show: Callable[[Resolution, bool], None],
              serving_banner: Callable[[], None] = lambda: None,
              say: Callable[[str], None] = print) -> int:
    """Serve, resolve the samples, show a provider disappear, then stop or keep serving (the
    other providers heartbeating) until SIGINT/SIGTERM.

    Exit status 1 when anything did not go as expected, so the demo doubles as a smoke test.
    """
    ok = True
    async with serving(fed, report=say) as providers:
        say(f"registered {len(providers.providers)} providers by signed UPDATE "
            f"(leases, LOAD heartbeat every {LOAD_INTERVAL:g} s)")
        async with resolver_for(fed) as resolver:
            for identifier, status, rcode in SAMPLES:
                result = await resolver.resolve(identifier)
                good = as_expected(result, status, rcode)
                ok = ok and good
                show(result, good)
        ok = await disappearance(fed, providers, say) and ok
        export_files(fed)
        if serve:
            serving_banner()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
    return 0 if ok else 1

