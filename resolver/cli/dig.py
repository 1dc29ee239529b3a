"""``cid dig``: one query to one server, printed like dig; without @SERVER, our own resolver.

Arguments are read the way dig reads them (``@server``, ``+option``/``+nooption`` anywhere on
the line), so they are collected as plain words and parsed here rather than by argparse.
Exit status follows dig: 0 whenever a response arrived, 9 when none did, 2 for usage errors.
A refused or unreachable server is said at once (``;; communications error to ADDR#PORT:
connection refused``), never waited on. dnspython is imported only when a query is made.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from .main import CliError

NO_REPLY = 9  # dig's status when no server answered
DEFAULT_TIMEOUT = 5.0
DEFAULT_TRIES = 3
BOOLEAN_OPTIONS = ("dnssec", "short", "json", "tcp", "cd", "rec", "trace")


def register(subparsers) -> None:
    from .options import add_resolver_options

    parser = subparsers.add_parser(
        "dig",
        help="query a DNS server like dig, or resolve with the built-in resolver",
        description="cid dig [@SERVER[:PORT]] NAME [TYPE] [+dnssec] [+short] [+json] [+tcp] "
        "[+cd] [+norec] [+trace] [+time=S] [+tries=N] [-p PORT]",
    )
    # Also accepted among the words (dig lets options appear anywhere); declared here so that
    # they show in --help and work before the first word. The resolver options are the
    # ones ``cid resolve`` takes, for the built-in resolver mode; --deadline and --timeout
    # also bound a query to @SERVER.
    add_resolver_options(parser)
    parser.add_argument("-p", dest="port", type=int, metavar="PORT", help="server port (as dig)")
    parser.add_argument("words", nargs=argparse.REMAINDER, metavar="...",
                        help="@SERVER, NAME, TYPE and +options in any order")
    parser.set_defaults(func=run, dig_parser=parser)


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
    tcp, cd, rec, trace, and every ``--option`` of the parser: hint, trust_anchor, timeout,
    deadline, no_validate, require_secure) and return them as Options as well."""
    opts = Options()
    flags = {"dnssec": False, "short": False, "json": False, "tcp": False, "cd": False,
             "rec": True, "trace": False}
    positional: list[str] = []
    later: list[str] = []  # --options among the words, parsed by the dig parser itself below
    parser = getattr(args, "dig_parser", None)
    known = parser._option_string_actions if parser is not None else {}
    words = list(args.words)
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word.startswith("@") and len(word) > 1:
            opts.server, port = _split_server(word[1:])
            if port is not None:
                args.port = port
        elif word.startswith("+") and len(word) > 1:
            _plus_option(word[1:], flags, opts)
        elif word in ("-t", "-q"):
            if i >= len(words):
                raise CliError(f"option {word} needs a value")
            if word == "-t":
                opts.rdtype = words[i]
            else:
                opts.name = words[i]
            i += 1
        elif word.split("=", 1)[0] in known and word not in ("-h", "--help"):
            action = known[word.split("=", 1)[0]]
            later.append(word)
            if action.nargs != 0 and "=" not in word:
                if i >= len(words):
                    raise CliError(f"option {word} needs a value")
                later.append(words[i])
                i += 1
        elif word.startswith("-") and word != "-":
            raise CliError(f"unknown option {word}")
        else:
            positional.append(word)
    if later:
        parser.parse_args(later, namespace=args)  # same types and errors as before the first word
    opts.port = args.port
    if opts.port is not None and not 0 < opts.port <= 65535:
        raise CliError(f"port {opts.port} is out of range (1-65535)")
    if getattr(args, "timeout", None):
        opts.timeout = args.timeout
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
    args.server, args.name, args.rdtype = opts.server, opts.name, opts.rdtype
    return opts


def header(args: argparse.Namespace) -> str:
    """dig's first line, echoing the command line as given (every option)."""
    argv = list(getattr(args, "argv", None) or [])
    if "dig" in argv:
        argv = argv[argv.index("dig") + 1:]
    else:
        argv = list(getattr(args, "words", ()))
    return "; <<>> cid dig <<>> " + " ".join(argv)


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
    import dns.rdatatype

    import resolver.records  # noqa: F401  (CAPS/LOAD are type names too)

    try:
        dns.rdatatype.from_text(word)
    except (dns.rdatatype.UnknownRdatatype, ValueError):
        return False
    return True


def run(args: argparse.Namespace) -> int:
    opts = parse_words(args)
    if opts.server is None:
        from .resolve_mode import dig_via_resolver
        return int(dig_via_resolver(args))
    if args.trace:
        raise CliError("+trace needs the built-in resolver: leave out @SERVER")
    return query_server(args, opts)


def query_server(args: argparse.Namespace, opts: Options) -> int:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.rdatatype

    from .output import render_message

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
    deadline = getattr(args, "deadline", None)

    started = time.monotonic()
    response, transport = _exchange(query, address, port, args.tcp, opts,
                                    None if deadline is None else started + deadline)
    elapsed_ms = int((time.monotonic() - started) * 1000)
    if response is None:
        if not (args.json or args.short):
            print(f"\n{header(args)}\n; (1 server found)")
        print(";; no servers could be reached", file=sys.stderr)
        return NO_REPLY
    if args.json:
        print(render_message(response, "json"))
    elif args.short:
        text = render_message(response, "short")
        if text:
            print(text)
    else:
        print(f"\n{header(args)}")
        print(";; Got answer:")
        print(render_message(response, "dig"))
        print(f";; Query time: {elapsed_ms} msec")
        print(f";; SERVER: {address}#{port}({opts.server}) ({transport})")
        print(f";; WHEN: {time.strftime('%a %b %d %H:%M:%S %Z %Y')}")
        print(f";; MSG SIZE  rcvd: {len(response.to_wire())}\n")
    return 0


def _address(server: str) -> str:
    import socket

    try:
        return socket.getaddrinfo(server, None, proto=socket.IPPROTO_UDP)[0][4][0]
    except (socket.gaierror, UnicodeError) as exc:
        raise CliError(f"cannot resolve server {server!r}: {exc}") from None


def _exchange(query, address: str, port: int, tcp: bool, opts: Options, deadline: float | None):
    """Send like dig: UDP first, TCP when asked or when the UDP answer has TC; up to ``tries``
    tries, each waiting ``timeout`` (never past ``deadline``). A refused or unreachable server is
    reported at once (a connected UDP socket gets the ICMP error; TCP gets the RST), as dig does:
    ``;; communications error to ADDR#PORT: connection refused``. Returns (response or None,
    transport)."""
    import dns.exception
    import dns.flags
    import dns.query

    from ..drivers.transport import reason

    transport = "TCP" if tcp else "UDP"
    for _ in range(opts.tries):
        wait = opts.timeout
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
            if wait <= 0:
                _comm_error(address, port, "deadline reached (--deadline)")
                break
        try:
            if transport == "UDP":
                response = _udp(query, address, port, wait)
                if not response.flags & dns.flags.TC:
                    return response, "UDP"
                print(";; Truncated, retrying in TCP mode.", file=sys.stderr)
                transport = "TCP"
                if deadline is not None:
                    wait = max(0.001, min(wait, deadline - time.monotonic()))
            return dns.query.tcp(query, address, port=port, timeout=wait), "TCP"
        except (TimeoutError, dns.exception.Timeout):
            _comm_error(address, port, "timed out")
        except EOFError:
            _comm_error(address, port, "connection closed before a full response")
        except OSError as exc:  # refused, unreachable: known at once, no waiting
            _comm_error(address, port, reason(exc))
        except dns.exception.DNSException as exc:
            raise CliError(f"malformed reply from {address}#{port}: {exc}", NO_REPLY) from None
    return None, transport


def _comm_error(address: str, port: int, why: str) -> None:
    print(f";; communications error to {address}#{port}: {why}", file=sys.stderr, flush=True)


def _udp(query, address: str, port: int, timeout: float):
    """One UDP exchange on a connected socket (so ICMP port unreachable comes back as
    ECONNREFUSED instead of a silent wait); datagrams that are not the reply are ignored."""
    import select
    import socket

    import dns.message

    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    wire = query.to_wire()
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((address, port))
        sock.send(wire)
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                raise TimeoutError
            data = sock.recv(65535)
            response = dns.message.from_wire(data, ignore_trailing=True, raise_on_truncation=False)
            if query.is_response(response):
                return response
