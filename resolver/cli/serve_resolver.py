"""``cid serve resolver``: a validating recursive resolver for plain DNS clients (dig, stub
resolvers, Unbound as a forwarder), UDP and TCP, until SIGINT/SIGTERM.

    cid serve resolver --listen 127.0.0.1:5353 --hint cid.=127.0.10.1 --trust-anchor ta.ds
    cid serve resolver --listen 127.0.0.1:5353 --config resolver.toml

Behaviour on the wire: spec/service.md.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from ..client import Resolver, ResolverConfigError
from ..service import RecursiveServer
from .main import CliError
from .options import add_resolver_options, resolver_from_args
from .serve import parse_listen


def register(kinds) -> None:
    parser = kinds.add_parser(
        "resolver", help="recursive validating resolver over plain DNS (UDP, TCP)",
        description="Answer DNS queries like a validating recursive resolver, using the same "
                    "resolution engine as cid resolve.")
    parser.add_argument("--listen", action="append", required=True, metavar="ADDR:PORT",
                        help="address to serve on, UDP and TCP (repeatable; port 0 picks one)")
    parser.add_argument("--config", metavar="FILE",
                        help="resolver settings (TOML, as Resolver.from_config) instead of --hint/--trust-anchor")
    add_resolver_options(parser)
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
    listen = [parse_listen(text) for text in args.listen]
    resolver = resolver_from(args)
    try:
        import uvloop
    except ImportError:
        uvloop = None
    runner = uvloop.run if uvloop is not None else asyncio.run
    return runner(_serve(resolver, listen))


def _log(line: str) -> None:
    print(f"cid serve: {line}", file=sys.stderr, flush=True)


async def _serve(resolver: Resolver, listen: list[tuple[str, int]]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = RecursiveServer(resolver, listen)
    try:
        await server.start()
    except OSError as exc:
        raise CliError(f"cannot listen: {exc}", 1) from None
    try:
        anchored = "validating" if resolver.trust_anchor is not None else "no trust anchor: nothing validates"
        zones = ", ".join(str(zone) for zone in resolver.hints)
        _log(f"resolver for {zones} ({anchored})")
        for host, port in server.addresses:
            shown = f"[{host}]" if ":" in host else host
            _log(f"listening on {shown}:{port} (UDP, TCP)")
        await stop.wait()
        _log("stopping")
    finally:
        await server.close()
        await resolver.close()
    return 0
