"""``cid serve auth``: serve signed master files over UDP and TCP until SIGINT/SIGTERM.

Other servers plug in as ``resolver.cli.serve_<kind>`` modules with ``register(subparsers)``
(for example ``serve_resolver``), so this file need not change when they arrive; they share
``add_listen_option``/``listen_addresses`` (``--listen``) and ``serve_until_stopped`` (the loop,
signals and log lines) from here.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import dns.exception
import dns.zone

import resolver  # noqa: F401  (registers CAPS/LOAD for master files)
from resolver.auth.server import AuthServer
from resolver.auth.store import ZoneStore
from resolver.serving import DnsServer

from . import loop
from .main import CliError

PLUGGABLE_KINDS = ("resolver",)
DRAIN_SECONDS = 5.0  # SIGTERM: how long work in progress may take to answer


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="run a server (auth, ...)")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", parser_class=type(parser))
    kinds.required = True
    auth = kinds.add_parser("auth", help="authoritative server for signed zone files")
    auth.add_argument("--listen", action="append", metavar="ADDR:PORT",
                      help="address to serve on, UDP and TCP (repeatable; port 0 picks one); "
                           "with --config, replaces the file's listen addresses")
    auth.add_argument("--zone", action="append", metavar="FILE",
                      help="master file of a zone to serve (repeatable)")
    auth.add_argument("--config", metavar="FILE",
                      help="TOML configuration: zones, journal, TSIG keys and grants "
                           "(spec/registration.md); takes signed updates; SIGHUP reloads it")
    auth.add_argument("--strict", action="store_true",
                      help="CAPS/LOAD values that break the key registry are errors, not warnings")
    auth.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                      help="show zone loading progress (auto: when stderr is a terminal)")
    auth.add_argument("--http", metavar="ADDR:PORT",
                      help="also serve HTTP there: /v1/resolve and /v1/find for identifiers under the "
                           "served zones (and their delegations), DoH queries (/dns-query), /healthz, "
                           "/metrics (queries, updates, transfers, leases; spec/service.md); port 0 picks one")
    auth.add_argument("--trust-anchor", metavar="FILE",
                      help="with --http: DS/DNSKEY records /v1/resolve validates from (default: each "
                           "signed zone served here, anchored at its own DNSKEY RRset's SEP keys)")
    auth.add_argument("--resolve-port", type=int, metavar="N",
                      help="with --http: port of the servers /v1/resolve learns from delegations "
                           "(default: the port of the first listen address)")
    add_control_options(auth)
    auth.set_defaults(func=run_auth)
    for kind in PLUGGABLE_KINDS:
        try:
            module = importlib.import_module(f"resolver.cli.serve_{kind}")
        except ModuleNotFoundError as exc:
            if exc.name != f"resolver.cli.serve_{kind}":
                raise
            continue
        module.register(kinds)


def add_listen_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", action="append", required=True, metavar="ADDR:PORT",
                        help="address to serve on, UDP and TCP (repeatable; port 0 picks one)")


def add_control_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--control", metavar="PATH",
                        help="Unix control socket for cid ctl, mode 0600 (default: FILE.ctl beside "
                             "--config FILE, else $XDG_RUNTIME_DIR/cid/KIND.ctl, /run/cid/KIND.ctl as "
                             "root, /tmp/cid-UID/KIND.ctl); 'none' turns it off")
    parser.add_argument("--control-tcp", metavar="127.0.0.1:PORT",
                        help="also take control requests on loopback TCP (needs --control-key)")
    parser.add_argument("--control-key", metavar="BASE64",
                        help="shared secret every TCP control request is HMAC-signed with")


def control_server(args: argparse.Namespace, kind: str, commands):
    """The ControlServer the options ask for (None: turned off); usage mistakes are CliErrors."""
    from resolver.control import protocol
    from resolver.control.server import ControlServer, default_socket, loopback_address
    path = None if args.control == "none" else Path(args.control) if args.control else \
        default_socket(kind, getattr(args, "config", None))
    tcp = key = None
    try:
        if args.control_tcp:
            tcp = loopback_address(args.control_tcp)
            if not args.control_key:
                raise ValueError("--control-tcp needs --control-key: TCP control requests are authenticated")
        if args.control_key:
            key = protocol.parse_key(args.control_key)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if path is None and tcp is None:
        return None
    server = ControlServer(commands, path, tcp, key)
    server.optional = args.control is None  # the default path: passed over when taken
    return server


def listen_addresses(args: argparse.Namespace) -> list[tuple[str, int]]:
    return [parse_listen(text) for text in args.listen]


def parse_listen(text: str, default_port: int = 53) -> tuple[str, int]:
    """``ADDR:PORT``, ``[V6ADDR]:PORT``, ``ADDR`` or ``V6ADDR`` (port 53)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, None
    if not host:
        raise CliError(f"--listen {text}: no address")
    if port_text is None:
        return host, default_port
    try:
        port = int(port_text)
    except ValueError:
        raise CliError(f"--listen {text}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise CliError(f"--listen {text}: port {port} is out of range")
    return host, port


def load_zone_file(path: str) -> dns.zone.Zone:
    """Load a master file; errors become one CliError line naming the file and line."""
    if not Path(path).is_file():
        raise CliError(f"{path}: no such file")
    try:
        from resolver.auth.zonefile import ZoneFileError, load_zone
    except ImportError:  # the zone module is not there yet: plain dnspython
        try:
            return dns.zone.from_file(path, relativize=False)
        except dns.exception.DNSException as exc:
            text = str(exc)
            raise CliError(text if text.startswith(path) else f"{path}: {text}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"{path}: {exc}") from None
    try:
        return load_zone(path)
    except ZoneFileError as exc:
        raise CliError(str(exc)) from None
    except (OSError, UnicodeDecodeError, dns.exception.DNSException) as exc:
        raise CliError(f"{path}: {exc}") from None


def _log(line: str) -> None:
    print(f"cid serve: {line}", file=sys.stderr, flush=True)


def run_auth(args: argparse.Namespace) -> int:
    if args.config is not None:
        if args.zone:
            raise CliError("--zone and --config do not go together: list the zones in the config file")
        return run_live(args)
    if not args.zone or not args.listen:
        raise CliError("give --listen ADDR:PORT and --zone FILE, or --config FILE")
    listen = listen_addresses(args)
    store = ZoneStore()
    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    # Every zone is loaded completely before the first socket opens: no query ever sees a
    # partial zone, and a zone with an error stops the start (spec/authoritative.md §2).
    for path in args.zone:
        loaded = load_zone_data(path, strict=args.strict, show_progress=show)
        for warning in loaded.warnings:
            _log(f"warning: {warning}")
        store.add(loaded.zone)
        zone = loaded.zone
        signed = "NSEC3-signed" if zone.nsec3 is not None else "signed" if zone.signed else "unsigned"
        _log(f"zone {zone.origin} loaded from {path} ({len(zone.blobs)} names, {loaded.records} "
             f"records, {signed}, {loaded.seconds:.1f} s)")
    from resolver.control.commands import auth_commands
    server = AuthServer(store, listen)
    front, started = with_auth_http(server, args)
    channel = control_server(args, "auth", auth_commands(server, None, None, api_of(front)))
    return serve_until_stopped(front, control=lambda: channel, started=started)


def with_auth_http(server: AuthServer, args: argparse.Namespace, started: Callable[[], None] | None = None):
    """``server`` with its HTTP front end when ``--http`` asks for one (started and stopped with
    it), and the ``started`` hook that also logs where HTTP listens."""
    if getattr(args, "http", None) is None:
        if args.trust_anchor is not None or args.resolve_port is not None:
            raise CliError("--trust-anchor and --resolve-port are for /v1/resolve: give --http ADDR:PORT too")
        return server, started
    from resolver.http import DnsWithHttp, HttpFrontEnd, make_auth_app
    try:
        host, port = parse_listen(args.http, default_port=80)
    except CliError as exc:
        raise CliError(str(exc).replace("--listen", "--http", 1)) from None
    front = DnsWithHttp(server, HttpFrontEnd(make_auth_app(server, auth_resolver(server, args)), host, port))

    def both() -> None:
        if started is not None:
            started()
        h, p = front.http.address
        _log(f"HTTP on {f'[{h}]' if ':' in h else h}:{p} (/v1/resolve, /v1/find, DoH, /healthz, /metrics)")
    return front, both


def api_of(front):
    """The AuthResolver behind ``front``'s /v1 routes (with_auth_http), or None without --http."""
    http = getattr(front, "http", None)
    if http is None:
        return None
    from resolver.http.errors import RESOLVER_KEY
    return http.app[RESOLVER_KEY]


def auth_resolver(server: AuthServer, args: argparse.Namespace):
    """The resolver behind the auth server's /v1/resolve and /v1/find (resolver.http.auth_resolve)."""
    from resolver.dnssec.anchors import TrustAnchor, TrustAnchorError
    from resolver.http.auth_resolve import AuthResolver
    if args.resolve_port is not None and not 0 < args.resolve_port < 65536:
        raise CliError(f"--resolve-port {args.resolve_port}: must be 1-65535")
    anchor = None
    if args.trust_anchor is not None:
        try:
            anchor = TrustAnchor.load(args.trust_anchor)
        except TrustAnchorError as exc:
            raise CliError(str(exc)) from None
        # Resolutions start at the served zones and go down: an anchor above all of them could
        # never be reached (this server knows no servers of their parents), so it is a mistake.
        served = [zone.origin for zone in server.store.zones]
        for zone in anchor.zones:
            if not any(zone.is_subdomain(origin) for origin in served):
                raise CliError(f"--trust-anchor {args.trust_anchor}: {zone} is not at or below a zone served "
                               f"here ({', '.join(sorted(map(str, served)))}); the server resolves from its "
                               "own zones downward and cannot reach it")
    return AuthResolver(server.store, lambda: server.addresses, trust_anchor=anchor, port=args.resolve_port)


def run_live(args: argparse.Namespace) -> int:
    """``cid serve auth --config FILE``: live zones (signed updates, leases, journal), SIGHUP
    reloads the configuration and changed zone files (spec/registration.md)."""
    import logging

    from resolver.auth import authconfig, livesetup
    logging.basicConfig(level=logging.INFO, format="cid serve: %(message)s", stream=sys.stderr)
    path = Path(args.config)
    try:
        config = authconfig.load(path)
    except authconfig.ConfigError as exc:
        raise CliError(str(exc)) from None
    if args.listen:
        config.listen = list(args.listen)
    if not config.listen:
        raise CliError(f"{path}: no listen addresses (set listen = [...] or give --listen)")
    listen = [parse_listen(text) for text in config.listen]
    try:
        primary = livesetup.open_primary(config)
    except (livesetup.SetupError, OSError, ValueError) as exc:
        raise CliError(str(exc), 1) from None
    banner = []
    for live in primary.zones.values():
        data = live.data
        signed = "NSEC3-signed" if data.nsec3 is not None else "signed" if data.signed else "unsigned"
        banner.append(f"zone {live.origin} serial {live.committed_serial} ({len(data.blobs)} names, "
                      f"{signed}, {len(live.keys)} key(s), {len(live.leases)} lease(s), journal "
                      f"{live.journal.path if live.journal else 'none'})")
        if live.problem:
            banner.append(f"warning: {live.problem}")
    server = AuthServer(primary.store, listen, primary=primary)
    reloading = asyncio.Lock()

    async def do_reload(why: str = "SIGHUP") -> list[str]:
        """SIGHUP and ``cid ctl reload``: the log lines, also returned to cid ctl."""
        said: list[str] = []

        def say(line: str) -> None:
            said.append(line)
            _log(line)
        async with reloading:
            say(f"{why}: reloading {path}")
            try:
                fresh = authconfig.load(path)
                if args.listen:
                    fresh.listen = list(args.listen)
                for line in await livesetup.reload(primary, fresh):
                    say(line)
                for live in primary.zones.values():
                    if live.on_commit is None:  # zones added or reloaded: NOTIFY them too
                        live.on_commit = send_notify
                        send_notify(live)
                say("reload done")
            except Exception as exc:  # noqa: BLE001 - a bad edit must not stop the server
                say(f"reload failed, still serving the previous configuration: {exc}")
        return said

    from resolver.auth.live import soa_record
    from resolver.auth.notify import Notifier, parse_target
    notifier = Notifier(primary.keyring, listen[0][0] if listen else None)
    notified: dict[object, int] = {}

    def send_notify(live) -> None:
        # RFC 1996: tell the secondaries once per durable serial (at start, after commits).
        targets = [parse_target(t) for t in getattr(live.config, "notify", []) or []]
        if targets and notified.get(live.origin) != live.committed_serial:
            notified[live.origin] = live.committed_serial
            notifier.keyring = primary.keyring  # reloads replace the keyring
            notifier.notify(live.origin, live.committed_serial, targets, soa_record(live.data))

    def started() -> None:
        for live in primary.zones.values():
            live.on_commit = send_notify
            live.start()
            send_notify(live)
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGHUP, lambda: asyncio.ensure_future(do_reload()))

    async def cleanup() -> None:
        await notifier.close()
        for live in list(primary.zones.values()):
            live.close()

    from resolver.control.commands import auth_commands
    front, started = with_auth_http(server, args, started)
    channel = control_server(args, "auth", auth_commands(server, primary, lambda: do_reload("cid ctl reload"),
                                                         api_of(front)))
    return serve_until_stopped(front, banner=banner, cleanup=cleanup, started=started, control=lambda: channel)


def load_zone_data(path: str, *, strict: bool = False, show_progress: bool = False):
    """Load a master file for serving (resolver.auth.zoneload); errors become one CliError line
    naming the file and line. With ``show_progress``, a progress line on stderr (names, rate)."""
    from resolver.auth.zoneload import ZoneLoadError, load
    if not Path(path).is_file():
        raise CliError(f"{path}: no such file")
    bar = None
    progress = None
    if show_progress:
        from tqdm import tqdm
        bar = tqdm(desc=f"loading {Path(path).name}", unit=" names", unit_scale=True,
                   file=sys.stderr, leave=False, dynamic_ncols=True)

        def progress(lines: int, names: int) -> None:
            bar.update(names - bar.n)
    try:
        return load(path, strict=strict, progress=progress)
    except ZoneLoadError as exc:
        raise CliError(str(exc)) from None
    finally:
        if bar is not None:
            bar.close()


def serve_until_stopped(server: DnsServer, *, banner: Sequence[str] = (),
                        cleanup: Callable[[], Awaitable[None]] | None = None,
                        started: Callable[[], None] | None = None, control=None) -> int:
    """Run ``server`` on uvloop (asyncio if absent) until SIGINT/SIGTERM; ``banner`` lines are
    logged once it listens, ``started`` called then (on the loop), ``cleanup`` awaited after it
    closed. ``control``: a function of nothing giving the ControlServer (or None), called on the
    loop once the server listens."""
    return loop.run(_serve(server, banner, cleanup, started, control))


async def _serve(server: DnsServer, banner: Sequence[str],
                 cleanup: Callable[[], Awaitable[None]] | None,
                 started: Callable[[], None] | None = None, control=None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    from ..service import workers
    if workers.stop_requested:  # a worker told to stop while it was still starting
        stop.set()
    # Signals operators send by habit or by accident must not kill a server (unbound ignores
    # SIGUSR1/2 too); SIGPIPE: a client gone mid-write is an EPIPE error, not a death.
    for signum in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_IGN)
    channel = None
    try:
        try:
            await server.start()
        except OSError as exc:
            raise CliError(f"cannot listen: {exc}", 1) from None
        try:
            for line in banner:
                _log(line)
            for host, port in server.addresses:
                shown = f"[{host}]" if ":" in host else host
                _log(f"listening on {shown}:{port} (UDP, TCP)")
            if started is not None:
                started()
            if control is not None:
                channel = control()
            if channel is not None:
                try:
                    await channel.start()
                except OSError as exc:
                    raise CliError(f"control channel: {exc}", 1) from None
                if channel.skipped is not None:
                    _log(channel.skipped)
                if channel.path is not None:
                    _log(f"control socket {channel.path}")
                if channel.tcp_address is not None:
                    _log(f"control on {channel.tcp_address[0]}:{channel.tcp_address[1]} (TCP, keyed)")
            await stop.wait()
            _log("stopping")
            if channel is not None:
                await channel.close()
                channel = None
            await server.drain(DRAIN_SECONDS)  # answers in progress still go out (bounded)
        finally:
            if channel is not None:
                await channel.close()
            await server.close()
    finally:
        if cleanup is not None:
            await cleanup()
    return 0
