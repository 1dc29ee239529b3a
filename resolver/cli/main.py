"""Entry point of ``cid``: builds the argument parser from one module per subcommand.

Each module ``resolver.cli.<name>`` defines ``register(subparsers)``, which adds its parser and
sets ``func`` (a callable taking the parsed args and returning an exit code). Errors the user
can fix are raised as CliError and printed as one line; exit status 2 means a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

SUBCOMMANDS = ("demo", "resolve", "find", "dig", "zone", "serve")


class CliError(Exception):
    """A user-facing failure: printed as ``cid: <message>``, exit with ``code``."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line, exit 2, like argparse but shorter
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cid", description="Resolve, find and serve compute identifiers.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"resolver.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"resolver.cli.{name}":
                raise
            continue  # subcommand not built yet
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"cid {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
