"""Entry point of ``cid``: builds the argument parser from one module per subcommand.

Each module ``resolver.cli.<name>`` defines ``register(subparsers)``, which adds its parser and
sets ``func`` (a callable taking the parsed args and returning an exit code). Errors the user
can fix are raised as CliError and printed as one line; exit status 2 means a usage error.

Start-up cost matters (``cid --help`` and ``cid --version`` print in well under 0.15 s): only
the module of the subcommand named on the command line is imported; the others appear in the
top-level help through ``SUBCOMMANDS``, the one-line help each module registers (a test keeps
the two the same). Nothing here imports dnspython or asyncio.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> the help line its module registers (tests/test_startup.py checks they agree).
SUBCOMMANDS = {
    "demo": "build, sign and serve the demo federation on loopback",
    "resolve": "resolve a compute identifier to endpoints, capabilities and load",
    "find": "find identifiers in a namespace by capabilities and load",
    "dig": "query a DNS server like dig, or resolve with the built-in resolver",
    "zone": "make keys, sign and verify zones",
    "serve": "run a server (auth, ...)",
    "register": "register an identifier by signed DNS UPDATE (with a lease)",
    "unregister": "remove an identifier's records by signed DNS UPDATE",
    "load": "replace an identifier's LOAD (live state) by signed DNS UPDATE",
    "ctl": "control a running server (stats, flush, reload, zone-status ...)",
}


class CliError(Exception):
    """A user-facing failure: printed as ``cid: <message>``, exit with ``code``."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line, exit 2, like argparse but shorter
        self.exit(2, f"{self.prog}: error: {message}\n")


def version() -> str:
    from .. import __version__
    return __version__


def build_parser(only: str | None | object = ...) -> argparse.ArgumentParser:
    """The ``cid`` parser. ``only``: the one subcommand whose module is imported and registered
    (the others are listed by name and help only); ``None``: none of them; by default all."""
    parser = _Parser(prog="cid", description="Resolve, find and serve compute identifiers.")
    parser.add_argument("--version", action="version", version=f"cid {version()}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, help_text in SUBCOMMANDS.items():
        if only is ... or only == name:
            try:
                module = importlib.import_module(f"resolver.cli.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"resolver.cli.{name}":
                    raise
                continue  # subcommand not built yet
            module.register(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (top-level options take no values)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in SUBCOMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    args.argv = argv  # as typed, for commands that echo it (cid dig's header)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"cid {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
