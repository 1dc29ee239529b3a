"""``cid dig``: one query to one server, printed like dig; without @SERVER, our own resolver.

Arguments are read the way dig reads them (``@server``, ``+option``/``+nooption`` anywhere on
the line), so they are collected as plain words and parsed here rather than by argparse.
Exit status follows dig: 0 whenever a response arrived, 9 when none did, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import importlib
import socket
import sys
import time
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdatatype

import resolver  # noqa: F401  (registers CAPS/LOAD so TYPE names resolve)

from .main import CliError
from .output import render_message

NO_REPLY = 9  # dig's status when no server answered
DEFAULT_TIMEOUT = 5.0
DEFAULT_TRIES = 3
BOOLEAN_OPTIONS = ("dnssec", "short", "json", "tcp", "cd", "rec", "trace")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "dig",
        help="query a DNS server like dig, or resolve with the built-in resolver",
        description="cid dig [@SERVER[:PORT]] NAME [TYPE] [+dnssec] [+short] [+json] [+tcp] "
        "[+cd] [+norec] [+trace] [+time=S] [+tries=N] [-p PORT]",
    )
    # Also accepted among the words (dig lets options appear anywhere); declared here so that
    # they show in --help and work before the first word. The resolver options are the
    # ones ``cid resolve`` takes, for the built-in resolver mode.
    try:
        from .options import add_resolver_options
    except ModuleNotFoundError as exc:
        if exc.name != "resolver.cli.options":
            raise
        parser.add_argument("--port", type=int, help="server port (default 53)")
        parser.add_argument("--hint", action="append", default=[], metavar="ZONE=ADDR[:PORT]")
        parser.add_argument("--trust-anchor", metavar="FILE")
        parser.add_argument("--timeout", type=float, metavar="S")
    else:
        add_resolver_options(parser)
    parser.add_argument("-p", dest="port", type=int, metavar="PORT", help="server port (as dig)")
    parser.add_argument("words", nargs=argparse.REMAINDER, metavar="...",
                        help="@SERVER, NAME, TYPE and +options in any order")
    parser.set_defaults(func=run)


@dataclass
class Options:
    server: str | None = None
    port: int | None = None
    name: str | None = None
    rdtype: str = "A"
    timeout: float = DEFAULT_TIMEOUT
    tries: int = DEFAULT_TRIES


def parse_words(args: argparse.Namespace) -> Options:
    """Read dig-style words into ``args`` (server, port, name, rdtype, dnssec, short, json,
    tcp, cd, rec, trace, hint, trust_anchor) and return them as Options as well."""
    opts = Options(port=args.port)
    if getattr(args, "timeout", None):
        opts.timeout = args.timeout
    flags = {"dnssec": False, "short": False, "json": False, "tcp": False, "cd": False,
             "rec": True, "trace": False}
    positional: list[str] = []
    words = list(args.words)
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word.startswith("@") and len(word) > 1:
            opts.server, port = _split_server(word[1:])
            opts.port = port if port is not None else opts.port
        elif word.startswith("+") and len(word) > 1:
            _plus_option(word[1:], flags, opts)
        elif word in ("-p", "--port", "-t", "-q", "--hint", "--trust-anchor", "--timeout"):
            if i >= len(words):
                raise CliError(f"option {word} needs a value")
            value = words[i]
            i += 1
            if word in ("-p", "--port"):
                opts.port = _int(value, word)
            elif word == "-t":
                opts.rdtype = value
            elif word == "-q":
                opts.name = value
            elif word == "--hint":
                args.hint.append(value)
            elif word == "--timeout":
                try:
                    args.timeout = opts.timeout = float(value)
                except ValueError:
                    raise CliError(f"--timeout: {value!r} is not a number") from None
            else:
                args.trust_anchor = value
        elif word.startswith("-") and word != "-":
            raise CliError(f"unknown option {word}")
        else:
            positional.append(word)
    type_given = False
    for word in positional:
        if opts.name is None:
            opts.name = word
        elif word.upper() == "IN":
            continue
        elif not type_given:
            if not _is_type(word):
                raise CliError(f"unknown record type {word!r}")
            opts.rdtype, type_given = word, True
        else:
            raise CliError(f"unexpected argument {word!r} (expected NAME [TYPE])")
    if opts.name is None:
        raise CliError("no NAME given")
    if not _is_type(opts.rdtype):
        raise CliError(f"unknown record type {opts.rdtype!r}")
    for key, value in flags.items():
        setattr(args, key, value)
    if not getattr(args, "timeout", None) and opts.timeout != DEFAULT_TIMEOUT:
        args.timeout = opts.timeout  # +time=S also bounds the built-in resolver
    args.server, args.port, args.name, args.rdtype = opts.server, opts.port, opts.name, opts.rdtype
    return opts


def _split_server(text: str) -> tuple[str, int | None]:
    if text.startswith("["):  # [v6addr]:port
        host, _, rest = text[1:].partition("]")
        return host, _int(rest[1:], "@SERVER port") if rest.startswith(":") else None
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, _int(port, "@SERVER port")
    return text, None


def _plus_option(text: str, flags: dict[str, bool], opts: Options) -> None:
    key, eq, value = text.partition("=")
    key = key.lower()
    if eq:
        if key == "time":
            opts.timeout = max(1.0, float(_int(value, "+time")))
        elif key == "tries":
            opts.tries = max(1, _int(value, "+tries"))
        else:
            raise CliError(f"unknown option +{text}")
        return
    negate = key.startswith("no") and key[2:] in flags
    name = key[2:] if negate else key
    if name == "recurse":
        name = "rec"
    if name not in flags:
        raise CliError(f"unknown option +{text}")
    flags[name] = not negate


def _int(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise CliError(f"{what}: {text!r} is not a number") from None
    if not 0 <= value <= 65535:
        raise CliError(f"{what}: {value} is out of range")
    return value


def _is_type(word: str) -> bool:
    try:
        dns.rdatatype.from_text(word)
    except (dns.rdatatype.UnknownRdatatype, ValueError):
        return False
    return True


def run(args: argparse.Namespace) -> int:
    opts = parse_words(args)
    if opts.server is None:
        try:
            module = importlib.import_module("resolver.cli.resolve_mode")
        except ModuleNotFoundError as exc:
            if exc.name != "resolver.cli.resolve_mode":
                raise
            print("cid dig: no @SERVER given and the built-in resolver is not available",
                  file=sys.stderr)
            return 2
        return int(module.dig_via_resolver(args))
    if args.trace:
        raise CliError("+trace needs the built-in resolver: leave out @SERVER")
    return query_server(args, opts)


def query_server(args: argparse.Namespace, opts: Options) -> int:
    try:
        qname = dns.name.from_text(opts.name)
    except dns.exception.DNSException as exc:
        raise CliError(f"bad name {opts.name!r}: {exc}") from None
    rdtype = dns.rdatatype.from_text(opts.rdtype)
    query = dns.message.make_query(qname, rdtype, want_dnssec=args.dnssec, use_edns=0,
                                   payload=1232)
    if not args.rec:
        query.flags &= ~dns.flags.RD
    if args.cd:
        query.flags |= dns.flags.CD
    address = _address(opts.server)
    port = opts.port if opts.port is not None else 53

    started = time.monotonic()
    response, transport = _exchange(query, address, port, args.tcp, opts)
    elapsed_ms = int((time.monotonic() - started) * 1000)
    if response is None:
        print(f";; communications error to {address}#{port}: no reply after {opts.tries} "
              f"tries ({transport})", file=sys.stderr)
        return NO_REPLY
    if args.json:
        print(render_message(response, "json"))
    elif args.short:
        text = render_message(response, "short")
        if text:
            print(text)
    else:
        print(f"\n; <<>> cid dig <<>> @{opts.server} {opts.name} {opts.rdtype}")
        print(";; Got answer:")
        print(render_message(response, "dig"))
        print(f";; Query time: {elapsed_ms} msec")
        print(f";; SERVER: {address}#{port}({opts.server}) ({transport})")
        print(f";; WHEN: {time.strftime('%a %b %d %H:%M:%S %Z %Y')}")
        print(f";; MSG SIZE  rcvd: {len(response.to_wire())}\n")
    return 0


def _address(server: str) -> str:
    try:
        return socket.getaddrinfo(server, None, proto=socket.IPPROTO_UDP)[0][4][0]
    except (socket.gaierror, UnicodeError) as exc:
        raise CliError(f"cannot resolve server {server!r}: {exc}") from None


def _exchange(
    query: dns.message.Message, address: str, port: int, tcp: bool, opts: Options
) -> tuple[dns.message.Message | None, str]:
    """Send like dig: UDP first (retried), TCP when asked or when the UDP answer has TC."""
    transport = "TCP" if tcp else "UDP"
    for _ in range(opts.tries):
        try:
            if not tcp:
                response = dns.query.udp(query, address, port=port, timeout=opts.timeout,
                                         ignore_unexpected=True)
                if not response.flags & dns.flags.TC:
                    return response, "UDP"
                print(";; Truncated, retrying in TCP mode.", file=sys.stderr)
                transport = "TCP"
            return dns.query.tcp(query, address, port=port, timeout=opts.timeout), "TCP"
        except dns.exception.Timeout:
            continue
        except (OSError, EOFError):
            if transport == "TCP":
                time.sleep(0.1)  # refused / reset: dig also retries before giving up
            continue
        except dns.exception.DNSException as exc:
            raise CliError(f"malformed reply from {address}#{port}: {exc}", NO_REPLY) from None
    return None, transport
