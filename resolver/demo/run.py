"""Serves a built federation (one authoritative server per zone) and resolves sample identifiers."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable

from ..auth.keys import load_zone_keys
from ..auth.server import AuthServer
from ..auth.store import ZoneStore
from ..auth.zonefile import load_zone
from ..client import Resolver
from ..resolution import Resolution
from .build import Federation
from .live import REFRESH_SECONDS, LoadRefresher

# (identifier, expected status, expected rcode): the demo checks itself end to end.
SAMPLES = (
    ("cid:pool-7.bj.cmcc.cid", "secure", "NOERROR"),        # three signed levels, two endpoints
    ("cid:mi-1.sh.cmcc.cid", "secure", "NOERROR"),          # AMD pool
    ("cid:mixtral.us-east.acme.cid", "secure", "NOERROR"),  # inference endpoint
    ("cid:l4-1.plain.cid", "insecure", "NOERROR"),          # plain.cid. is unsigned, proven by NSEC
    ("cid:nope.bj.cmcc.cid", "secure", "NXDOMAIN"),         # proven not to exist
)


@contextlib.asynccontextmanager
async def serving(fed: Federation) -> AsyncIterator[LoadRefresher]:
    """Start one AuthServer per zone on its own loopback address; stop them all on exit.

    Yields the refresher that keeps their LOAD records live.
    """
    servers: list[AuthServer] = []
    served = []
    try:
        for zone in fed.zones:
            store = ZoneStore()
            loaded = load_zone(zone.file, zone.name)
            store.add(loaded)
            keys = load_zone_keys(fed.directory / "keys", zone.name) if zone.signed else []
            served.append((store, loaded, keys))
            server = AuthServer(store, [(zone.address, zone.port)])
            await server.start()
            servers.append(server)
        yield LoadRefresher(served)
    finally:
        for server in servers:
            await server.close()


async def keep_load_live(refresher: LoadRefresher, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), REFRESH_SECONDS)
        except asyncio.TimeoutError:
            refresher.tick()


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
        f"hints = {{ {_toml(fed.apex)} = [{_toml(apex.address)}] }}",
        f"port = {apex.port}",
        f"trust_anchor = {_toml(anchor_text)}",
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


def _toml(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
              serving_banner: Callable[[], None] = lambda: None) -> int:
    """Serve, resolve the samples, then stop or keep serving until SIGINT/SIGTERM.

    Exit status 1 when any sample did not resolve as expected, so the demo doubles as a smoke test.
    """
    ok = True
    async with serving(fed) as refresher:
        async with resolver_for(fed) as resolver:
            for identifier, status, rcode in SAMPLES:
                result = await resolver.resolve(identifier)
                good = as_expected(result, status, rcode)
                ok = ok and good
                show(result, good)
        if serve:
            serving_banner()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await keep_load_live(refresher, stop)
    return 0 if ok else 1
