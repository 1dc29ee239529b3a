"""``cid serve resolver``: a validating recursive resolver for plain DNS clients (dig, stub
resolvers, Unbound as a forwarder), UDP and TCP, until SIGINT/SIGTERM.

    cid serve resolver --listen 127.0.0.1:5353 --hint cid.=127.0.10.1 --trust-anchor ta.ds
    cid serve resolver --listen 127.0.0.1:5353 --config resolver.toml

Behaviour on the wire: spec/service.md.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..client import Resolver, ResolverConfigError
from ..service import RecursiveServer
from .main import CliError
from .options import add_resolver_options, resolver_from_args
from .serve import (_log, add_control_options, add_listen_option, control_server, listen_addresses, parse_listen,
                    serve_until_stopped)

if TYPE_CHECKING:
    from ..control.workers import Workers


def register(kinds) -> None:
    parser = kinds.add_parser(
        "resolver", help="recursive validating resolver over plain DNS (UDP, TCP)",
        description="Answer DNS queries like a validating recursive resolver, using the same "
                    "resolution engine as cid resolve.")
    add_listen_option(parser)
    parser.add_argument("--config", metavar="FILE",
                        help="resolver settings (TOML, as Resolver.from_config) instead of --hint/--trust-anchor")
    parser.add_argument("--http", metavar="ADDR:PORT",
                        help="also serve HTTP there: /v1/resolve, /v1/find, DoH (/dns-query), /healthz, "
                             "/metrics (spec/service.md, HTTP API); port 0 picks one")
    parser.add_argument("--cache-snapshot", metavar="FILE",
                        help="warm restart: fill the cache from FILE at start (when it exists) and write the "
                             "cache to it on SIGTERM/SIGINT (msgpack, mode 0600; a damaged or foreign file "
                             "means a cold start, said in one log line)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="N processes sharing the listen and --http addresses (SO_REUSEPORT), each with "
                             "its own cache; cid ctl on the usual control socket and /metrics on any worker "
                             "cover them all; needs explicit ports (default 1)")
    add_resolver_options(parser)
    add_control_options(parser)
    parser.set_defaults(func=run)


def resolver_from(args: argparse.Namespace) -> Resolver:
    """From --config (with --port/--timeout overriding it) or from the resolver options."""
    if args.config is None:
        return resolver_from_args(args)
    if args.hint or args.trust_anchor:
        raise CliError("--config already says where the namespaces are and what to trust: "
                       "give --hint/--trust-anchor or --config, not both")
    overrides: dict = {}
    if args.port is not None:
        if not 0 < args.port < 65536:
            raise CliError(f"--port {args.port}: must be 1-65535")
        overrides["port"] = args.port
    if args.timeout is not None:
        if not 0 < args.timeout <= 60:
            raise CliError(f"--timeout {args.timeout:g}: must be more than 0 and at most 60 seconds")
        overrides["timeout"] = args.timeout
    try:
        return Resolver.from_config(args.config, **overrides)
    except ResolverConfigError as exc:
        raise CliError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    listen = listen_addresses(args)
    resolver = resolver_from(args)
    if args.workers != 1:
        from ..service.workers import MAX_WORKERS, supervise
        if not 1 <= args.workers <= MAX_WORKERS:
            raise CliError(f"--workers {args.workers}: must be 1-{MAX_WORKERS}")
        if any(port == 0 for _, port in listen):
            raise CliError("--workers: give every --listen a port (with port 0 each worker would pick its own)")
        if args.http is not None and _http_address(args)[1] == 0:
            raise CliError("--workers: give --http a port (with port 0 each worker would pick its own)")
        return _run_workers(args, listen, resolver, supervise)
    return _serve(args, listen, resolver)


def _http_address(args: argparse.Namespace) -> tuple[str, int]:
    try:
        return parse_listen(args.http, default_port=80)
    except CliError as exc:
        raise CliError(str(exc).replace("--listen", "--http", 1)) from None


def _run_workers(args: argparse.Namespace, listen, resolver: Resolver, supervise) -> int:
    """The supervisor's part: bind the public control socket(s) (a taken path is an error now,
    before any worker starts), make the 0700 directory of the workers' private control sockets,
    fork the workers and the control process, and clean both up at the end."""
    import shutil
    import tempfile

    from ..control.server import runtime_directory
    from ..control.workers import Workers, serve_control
    public = control_server(args, "resolver", {})
    if public is not None:
        try:
            public.bind()
        except OSError as exc:
            raise CliError(f"control channel: {exc}", 1) from None
        if public.skipped is not None:
            _log(public.skipped)
            if public.tcp is None:
                public = None
    if public is not None:
        if public.path is not None:
            _log(f"control socket {public.path} (all {args.workers} workers)")
        if public.tcp_address is not None:
            _log(f"control on {public.tcp_address[0]}:{public.tcp_address[1]} (TCP, keyed; all {args.workers} workers)")
    base = runtime_directory()
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        stale = _remove_stale_worker_directories(base)
        # The supervisor's PID in the name: a directory left by a killed supervisor is known stale.
        workers = Workers(Path(tempfile.mkdtemp(prefix=f"workers-{os.getpid()}-", dir=base)), args.workers)  # 0700
    except OSError as exc:
        _unbind(public)
        raise CliError(f"worker control sockets: {base}: {exc.strerror or exc}", 1) from None
    if stale:
        _log(f"removed {stale} worker socket director{'y' if stale == 1 else 'ies'} left by supervisors no longer running")
    _log(f"worker control sockets in {workers.directory}")
    snapshot = args.cache_snapshot

    def one(index: int) -> int:
        if public is not None:
            public.release()  # the control process serves it; a worker only holds the fds
        if snapshot is not None:
            args.cache_snapshot = f"{snapshot}.{index}"  # one cache per worker, one file each
        return _serve(args, listen, resolver, reuse_port=True, worker=(workers, index))
    try:
        return supervise(args.workers, one, (lambda: serve_control(public, workers)) if public else None)
    finally:
        _unbind(public)
        shutil.rmtree(workers.directory, ignore_errors=True)


def _remove_stale_worker_directories(base: Path) -> int:
    """Remove ``workers-PID-*`` directories of ours whose supervisor PID no longer runs (a
    supervisor killed with SIGKILL cannot clean up); how many went."""
    removed = 0
    for entry in base.glob("workers-*-*"):
        pid = entry.name.split("-")[1]
        if not pid.isdigit() or not entry.is_dir() or entry.stat().st_uid != os.getuid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # alive (or reused by another process: left alone either way)
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        import shutil
        shutil.rmtree(entry, ignore_errors=True)
        removed += 1
    return removed


def _unbind(public) -> None:
    """The supervisor's end of the public control sockets: closed, the path removed."""
    if public is not None:
        public.release()
        if public.path is not None:
            public.path.unlink(missing_ok=True)


def _serve(args: argparse.Namespace, listen, resolver: Resolver, *, reuse_port: bool = False,
           worker: tuple[Workers, int] | None = None) -> int:
    """One resolver process; ``worker``: (Workers, index) when it is one of --workers N."""
    anchored = "validating" if resolver.trust_anchor is not None else "no trust anchor: nothing validates"
    zones = ", ".join(str(zone) for zone in resolver.hints)
    server = RecursiveServer(resolver, listen)
    server.reuse_port = reuse_port
    started = app = None
    if args.http is not None:
        from ..http import DnsWithHttp, HttpFrontEnd, make_app
        host, port = _http_address(args)
        app = make_app(server, resolver)
        front = HttpFrontEnd(app, host, port)
        front.reuse_port = reuse_port
        server = DnsWithHttp(server, front)

        def started() -> None:
            h, p = server.http.address
            _log(f"HTTP on {f'[{h}]' if ':' in h else h}:{p} (API, DoH, /healthz, /metrics)")
    banner = [f"resolver for {zones} ({anchored})"]
    cleanup = resolver.close
    if args.cache_snapshot is not None:
        banner.append(_restore(resolver, args.cache_snapshot))

        async def cleanup() -> None:
            await resolver.close()
            _save(resolver, args.cache_snapshot)
    from ..control.attach import for_resolver
    control, started = for_resolver(args, server, resolver, app, lambda: resolver_from(args), started, worker)
    return serve_until_stopped(server, banner=banner, cleanup=cleanup, started=started, control=control)


def _restore(resolver: Resolver, path: str) -> str:
    """Fill the cache from the snapshot; the banner line that says what happened."""
    from ..engine import snapshot
    try:
        restored = snapshot.load(resolver.cache, path)
    except FileNotFoundError:
        return f"cache snapshot {path}: none yet, starting cold"
    except snapshot.SnapshotError as exc:
        return f"cache snapshot not used, starting cold: {exc}"
    return (f"cache snapshot {path}: {restored.entries} entries restored"
            f" ({restored.expired} expired since it was written)")


def _save(resolver: Resolver, path: str) -> None:
    from ..engine import snapshot
    try:
        count = snapshot.save(resolver.cache, path)
    except OSError as exc:
        _log(f"cache snapshot {path}: not written: {exc.strerror or exc}")
        return
    _log(f"cache snapshot {path}: {count} entries written")
