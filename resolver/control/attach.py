"""Wiring of the control channel and SIGHUP into ``cid serve resolver`` (kept here so the
serving module only hands over its objects)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .workers import Workers

# What a reload (SIGHUP, cid ctl reload) takes from the re-read settings; the cache is kept.
RELOADED = ("hints", "trust_anchor", "port", "timeout", "max_queries", "max_time", "max_resolve_queries",
            "engine_options", "validation", "require_secure")


def for_resolver(args, server, resolver, app, fresh: Callable[[], object],
                 started: Callable[[], None] | None, worker: tuple[Workers, int] | None = None):
    """(control factory for serve_until_stopped, the ``started`` hook with SIGHUP added).
    ``server``: what is served (a RecursiveServer, or DnsWithHttp around one); ``app``: the
    HTTP app whose /metrics counters ``stats`` reuses, or None; ``fresh``: builds a Resolver
    from the same options (the files re-read); ``worker``: (Workers, index) for one of
    ``--workers N``: its commands go on its private socket, its /metrics covers all workers."""
    from ..cli.main import CliError
    from ..cli.serve import _log, control_server
    from ..http.errors import METRICS_KEY
    from ..http.metrics import Metrics
    from .commands import resolver_commands
    dns_server = getattr(server, "dns", server)
    metrics = app[METRICS_KEY] if app is not None else Metrics(dns_server, resolver)

    async def reload(why: str = "cid ctl reload") -> list[str]:
        try:
            new = fresh()
        except CliError as exc:
            lines = [f"{why}: reload failed, keeping the previous settings: {exc}"]
        else:
            for name in RELOADED:
                setattr(resolver, name, getattr(new, name))
            # The cache is kept, and with it the settings it was made with: said, not ignored.
            unchanged = new.cache.config == resolver.cache.config
            await new.close()
            dns_server.udp_responses.clear()  # rendered under the old settings
            dns_server.tcp_responses.clear()
            lines = [f"{why}: reloaded {args.config or 'the trust anchor and hints'}"]
            if not unchanged:
                lines.append(f"{why}: [cache] settings changed: they take effect at the next start "
                             "(the cache is kept across a reload)")
            lines.append("reload done")
        for line in lines:
            _log(line)
        return lines

    commands = resolver_commands(dns_server, resolver, metrics, reload)
    if worker is not None:
        from .server import ControlServer
        workers, index = worker
        channel = ControlServer(commands, workers.path(index))  # the public one is the control process's
        metrics.workers, metrics.worker_index = workers, index
    else:
        channel = control_server(args, "resolver", commands)

    def on_start() -> None:
        if started is not None:
            started()
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGHUP, lambda: asyncio.ensure_future(reload("SIGHUP")))
    return (lambda: channel), on_start
