"""Resolver options shared by ``cid resolve``, ``cid find``, ``cid dig`` (no @SERVER) and
``cid serve resolver``: where the namespaces' servers are, what to trust, port, timeout.

Without ``--hint``, the client configuration file supplies them (spec/resolution.md §11:
``$CID_CONFIG``, then ``$XDG_CONFIG_HOME/cid/config.toml`` or ``~/.config/cid/config.toml``,
then ``/etc/cid/config.toml``); the other flags given override the file's values. Nothing
heavy is imported until a Resolver is made, so registering these options costs nothing.
"""

from __future__ import annotations

import argparse

from .main import CliError

DEFAULT_TIMEOUT = 2.0
DEFAULT_DEADLINE = 10.0  # Resolver(max_time=...) default: one resolution's whole time
MAX_DEADLINE = 3600.0


def add_resolver_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "resolver options",
        "Without --hint they come from the client configuration file ($CID_CONFIG, else "
        "~/.config/cid/config.toml, else /etc/cid/config.toml); flags given override it.")
    group.add_argument("--hint", action="append", default=[], metavar="ZONE=ADDR[:PORT]",
                       help="a server of ZONE (repeat for more servers or zones), like a stub zone")
    group.add_argument("--trust-anchor", metavar="FILE",
                       help="DS/DNSKEY records to validate from (master-file form, as Unbound's "
                            "trust-anchor-file, or BIND's trust-anchors clause, as delv -a)")
    group.add_argument("--port", type=int, default=None, metavar="N",
                       help="port of every upstream server without its own (default 53)")
    group.add_argument("--timeout", type=float, default=None, metavar="S",
                       help="seconds to wait for each upstream response, retries included (without "
                            f"--timeout: {DEFAULT_TIMEOUT:g}, doubled for each retry of a server that timed out)")
    try:
        group.add_argument("--deadline", type=float, default=None, metavar="S",
                           help=f"seconds a whole resolution may take, every query and retry included "
                                f"(default {DEFAULT_DEADLINE:g})")
    except argparse.ArgumentError:
        pass  # the command has its own --deadline (cid find: the whole search); it bounds resolutions too
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


def check_numbers(args: argparse.Namespace) -> None:
    """--port, --timeout, --deadline in range (usage errors, exit 2)."""
    port = getattr(args, "port", None)
    if port is not None and not 0 < port < 65536:
        raise CliError(f"--port {port}: must be 1-65535")
    timeout = getattr(args, "timeout", None)
    if timeout is not None and not 0 < timeout <= 60:
        raise CliError(f"--timeout {timeout:g}: must be more than 0 and at most 60 seconds")
    deadline = getattr(args, "deadline", None)
    if deadline is not None and not 0 < deadline <= MAX_DEADLINE:
        raise CliError(f"--deadline {deadline:g}: must be more than 0 and at most {MAX_DEADLINE:g} seconds")
    if getattr(args, "no_validate", False) and getattr(args, "require_secure", False):
        raise CliError("--no-validate and --require-secure exclude each other")


def resolver_from_args(args: argparse.Namespace):
    """A Resolver from the parsed options, or from the client configuration file when no
    --hint is given (flags override its values); every mistake is a one-line CliError (exit 2).
    ``args.config_file`` is set to the file used (None: flags only)."""
    from ..client import Resolver, ResolverConfigError, config_path
    from ..dnssec.anchors import TrustAnchor, TrustAnchorError
    from ..engine.hints import HintError, parse_hint_option

    check_numbers(args)
    port = getattr(args, "port", None)
    timeout = getattr(args, "timeout", None)
    deadline = getattr(args, "deadline", None)
    anchor = getattr(args, "trust_anchor", None)
    no_validate = bool(getattr(args, "no_validate", False))
    require_secure = bool(getattr(args, "require_secure", False))
    hints: dict[str, list[str]] = {}
    for text in getattr(args, "hint", None) or []:
        try:
            zone, address = parse_hint_option(text)
        except HintError as exc:
            raise CliError(f"--hint {exc}") from None
        hints.setdefault(zone, []).append(address)
    args.config_file = None
    if hints:
        try:
            resolver = Resolver(hints, anchor, port=53 if port is None else port,
                                timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
                                validation="off" if no_validate else "on", require_secure=require_secure,
                                **({} if deadline is None else {"max_time": deadline}))
        except (HintError, TrustAnchorError) as exc:
            raise CliError(str(exc)) from None
    else:
        try:
            path = config_path()
        except ResolverConfigError as exc:
            raise CliError(str(exc)) from None
        if path is None:
            raise CliError("no --hint given and no configuration file: say where a namespace's servers "
                           "are, e.g. --hint cid.=127.0.0.2, or set $CID_CONFIG (cid demo --serve writes one)")
        overrides: dict = {}
        if port is not None:
            overrides["port"] = port
        if timeout is not None:
            overrides["timeout"] = timeout
        if deadline is not None:
            overrides["max_time"] = deadline
        if anchor is not None:  # as typed: relative to the working directory, not to the file
            try:
                overrides["trust_anchor"] = TrustAnchor.load(anchor)
            except TrustAnchorError as exc:
                raise CliError(str(exc)) from None
        if no_validate:
            overrides.update(validation="off", require_secure=False)
        elif require_secure:
            overrides.update(validation="on", require_secure=True)
        try:
            resolver = Resolver.from_config(path, **overrides)
        except ResolverConfigError as exc:
            raise CliError(str(exc)) from None
        args.config_file = path
    if timeout is not None:
        # --timeout S: every try waits S, as its help says (the library doubles it per retry).
        resolver.cache.servers.max_timeout = timeout
    return resolver
