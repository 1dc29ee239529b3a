"""``cid demo``: build, sign and serve the embedded federation, then resolve samples end to end."""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

from . import loop
from .main import CliError

DEFAULT_PORT = 5300  # unprivileged; `--port 53` (as root) lets peer resolvers iterate it


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="build, sign and serve the demo federation on loopback",
                       description=__doc__)
    p.add_argument("--serve", action="store_true", help="keep serving after the samples resolve")
    p.add_argument("--dir", type=Path, default=Path("demo-out"),
                   help="where zones, keys, trust anchor and federation.json go (default: ./demo-out)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port of every zone server (default {DEFAULT_PORT})")
    p.set_defaults(func=run)


def _show(result, good: bool) -> None:
    from .resolve import format_resolution

    mark = "ok " if good else "UNEXPECTED"
    print(f"--- {mark} {result.identifier}")
    print(format_resolution(result))


def _register_hint(fed) -> str:
    """``cid register`` bringing back the provider the demo stopped, with its zone's key."""
    import shlex

    from ..demo.build import endpoint_address
    from ..demo.inventory import namespaces
    from ..demo.providers import VANISHING

    label, zone_name = VANISHING.removeprefix("cid:").split(".", 1)
    zone = next(z for z in fed.zones if z.name == zone_name + ".")
    ns = next(n for n in namespaces() if n.name == zone.name)
    index, res = next((i, r) for i, r in enumerate(ns.resources) if r.label == label)
    caps = " ".join(shlex.quote(f"{k}={v}") for k, v in res.caps.items())
    return (f"cid register {VANISHING} --server {zone.address}:{zone.port} --key {shlex.quote(zone.keys[0].spec)}"
            f" --endpoint h2://{endpoint_address(ns, index)}:{res.port} --caps {caps} --lease 60")


def try_commands(fed) -> list[str]:
    """The commands ``--serve`` suggests; each works after the export line (tests run them all)."""
    deep = next(z for z in fed.zones if z.name == "bj.cmcc.cid.")
    return [
        "cid resolve cid:pool-7.bj.cmcc.cid",
        "cid resolve cid:pool-7.bj.cmcc.cid --json",
        "cid dig pool-7.bj.cmcc.cid CAPS +trace",
        # prices in two currencies never rank together (spec/discovery.md §5): keep one
        "cid find cid. --where accel_vendor=nvidia --where 'accel_free>=2' --sort price_per_hour"
        " --currency CNY --limit 5",
        f"dig @{deep.address} -p {deep.port} pool-7.bj.cmcc.cid TYPE65380 +dnssec",
        _register_hint(fed),
        "cid find cid:bj.cmcc.cid",
    ]


def _serving_help(fed, config) -> str:
    from ..demo.run import export_line

    return "\n".join([
        f"serving {len(fed.zones)} zones on the live primary; federation: {fed.directory / 'federation.json'}",
        *(f"  {z.name:<20} {z.address}:{z.port}  {'signed' if z.signed else 'unsigned'}  config {z.config.name}"
          for z in fed.zones),
        f"client configuration: {config} (hints, port, trust anchor); to use it with no flags:",
        "",
        f"  {export_line(config)}",
        "",
        "then try (the last two bring back the provider that disappeared, with a 60 s lease):",
        *(f"  {command}" for command in try_commands(fed)),
        "Ctrl-C stops.",
    ])


def run(args: argparse.Namespace) -> int:
    from ..demo.build import build
    from ..demo.run import run as run_demo
    from ..demo.run import write_config

    if not 1 <= args.port <= 65535:
        raise CliError(f"--port {args.port}: not a port number")
    try:
        fed = build(args.dir, args.port, progress=lambda m: print(m, flush=True))
        config = write_config(fed)
    except OSError as exc:
        raise CliError(f"cannot write {args.dir}: {exc.strerror}") from None
    print(f"trust anchor: {fed.trust_anchor}", flush=True)
    print(f"client configuration: {config}", flush=True)

    def show(result, good: bool) -> None:
        _show(result, good)
        sys.stdout.flush()

    async def main() -> int:
        return await run_demo(fed, serve=args.serve, show=show, say=lambda line: print(line, flush=True),
                              serving_banner=lambda: print(_serving_help(fed, config), flush=True))

    try:
        return loop.run(main())
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise CliError(f"cannot listen on port {args.port}: {exc.strerror}"
                           " (another demo running? try --port)", 1) from None
        raise

