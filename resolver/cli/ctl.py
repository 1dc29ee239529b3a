"""``cid ctl``: drive a running ``cid serve auth`` / ``cid serve resolver`` over its control
channel, as unbound-control and knotc do (spec/service.md, Control).

    cid ctl --socket /run/cid/resolver.ctl stats
    cid ctl --server 127.0.0.1:8953 --key BASE64 flush example.cid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from .main import CliError

COMMANDS = ("stats", "flush", "flush-subtree", "flush-all", "dump-cache", "reload", "zone-status")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ctl", help="control a running server (stats, flush, reload, zone-status ...)",
        description="Send one command to a running cid server's control channel. "
                    f"Commands: {', '.join(COMMANDS)}. Exit 1: no server there or the command "
                    "failed; 2: usage error or a command that server does not support.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--socket", metavar="PATH",
                       help="the server's Unix control socket (default: FILE.ctl beside --config FILE, "
                            "else the runtime directory's resolver.ctl or auth.ctl, whichever exists)")
    where.add_argument("--config", metavar="FILE", help="the configuration file the server was started with")
    where.add_argument("--server", metavar="127.0.0.1:PORT", help="the server's loopback TCP control address")
    parser.add_argument("--key", metavar="BASE64", help="the shared key of --server (as --control-key)")
    parser.add_argument("--json", action="store_true", help="print the reply's data as JSON")
    parser.add_argument("ctl_command", metavar="COMMAND")
    parser.add_argument("args", nargs="*", metavar="ARG")
    parser.set_defaults(func=run)


def _socket(args: argparse.Namespace) -> Path:
    from ..control.server import default_socket
    if args.socket:
        return Path(args.socket)
    if args.config:
        return default_socket("", args.config)
    found = [p for p in (default_socket(k, None) for k in ("resolver", "auth")) if p.exists()]
    if len(found) > 1:
        raise CliError(f"both {found[0]} and {found[1]} exist: say which with --socket")
    return found[0] if found else default_socket("resolver", None)


def run(args: argparse.Namespace) -> int:
    from ..control import client, protocol
    from ..control.server import loopback_address
    key = tcp = None
    if args.server:
        if not args.key:
            raise CliError("--server needs --key: TCP control requests are authenticated")
        try:
            tcp = loopback_address(args.server.replace("--control-tcp", ""))
            key = protocol.parse_key(args.key)
        except ValueError as exc:
            raise CliError(str(exc).replace("--control-tcp", "--server")) from None
    elif args.key:
        raise CliError("--key goes with --server (the Unix socket is guarded by its file mode)")
    try:
        reply = asyncio.run(client.call(args.ctl_command, args.args, socket_path=None if tcp else _socket(args),
                                        tcp=tcp, key=key))
    except (client.NotRunning, protocol.ProtocolError) as exc:
        raise CliError(str(exc), 1) from None
    if not reply.get("ok"):
        raise CliError(str(reply.get("error", "failed")), 2 if reply.get("unsupported") else 1)
    if args.json:
        print(json.dumps(reply.get("data"), indent=2, default=str))
    elif reply.get("text"):
        sys.stdout.write(reply["text"].rstrip("\n") + "\n")
    return 0
