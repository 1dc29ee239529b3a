"""Resolver options shared by ``cid resolve``, ``cid find``, ``cid dig`` (no @SERVER) and
``cid serve resolver``: where the namespaces' servers are, what to trust, port, timeout."""

from __future__ import annotations

import argparse

from ..client import Resolver
from ..dnssec.anchors import TrustAnchorError
from ..engine.hints import HintError, parse_hint_option
from .main import CliError

DEFAULT_TIMEOUT = 2.0


def add_resolver_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("resolver options")
    group.add_argument("--hint", action="append", default=[], metavar="ZONE=ADDR[:PORT]",
                       help="a server of ZONE (repeat for more servers or zones), like a stub zone")
    group.add_argument("--trust-anchor", metavar="FILE",
                       help="DS/DNSKEY records to validate from (Unbound trust-anchor-file format)")
    group.add_argument("--port", type=int, default=None, metavar="N",
                       help="port of every upstream server without its own (default 53)")
    group.add_argument("--timeout", type=float, default=None, metavar="S",
                       help=f"seconds to wait for each upstream response (default {DEFAULT_TIMEOUT:g})")
    policy = group.add_mutually_exclusive_group()
    policy.add_argument("--no-validate", action="store_true",
                        help="accept answers no trust anchor covers (unvalidated); nothing is validated")
    policy.add_argument("--require-secure", action="store_true",
                        help="refuse answers from unsigned (insecure) zones too")


def refusal_text(exc) -> str:
    """One line for a ValidationRefused, in the CLI's words (flags, not keyword arguments)."""
    from ..status import Status
    if exc.status is Status.INDETERMINATE:
        advice = "pass --trust-anchor FILE (DS/DNSKEY records of its namespace), or --no-validate to accept it"
    else:
        advice = "leave out --require-secure to accept answers from unsigned zones (marked insecure)"
    return f"{exc.name}: refused, the answer is {exc.status.value} ({exc.why}); {advice}"


def resolver_from_args(args: argparse.Namespace) -> Resolver:
    """A Resolver from the parsed options; every mistake is a one-line CliError (exit 2)."""
    port = getattr(args, "port", None)
    port = 53 if port is None else port
    if not 0 < port < 65536:
        raise CliError(f"--port {port}: must be 1-65535")
    timeout = getattr(args, "timeout", None)
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    if not 0 < timeout <= 60:
        raise CliError(f"--timeout {timeout:g}: must be more than 0 and at most 60 seconds")
    hints: dict[str, list[str]] = {}
    for text in getattr(args, "hint", None) or []:
        try:
            zone, address = parse_hint_option(text)
        except HintError as exc:
            raise CliError(f"--hint {exc}") from None
        hints.setdefault(zone, []).append(address)
    if not hints:
        raise CliError("no --hint given: say where a namespace's servers are, e.g. --hint cid.=127.0.0.2")
    try:
        return Resolver(hints, getattr(args, "trust_anchor", None), port=port, timeout=timeout,
                        validation="off" if getattr(args, "no_validate", False) else "on",
                        require_secure=bool(getattr(args, "require_secure", False)))
    except (HintError, TrustAnchorError) as exc:
        raise CliError(str(exc)) from None
