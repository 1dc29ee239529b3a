"""``cid register``, ``cid unregister``, ``cid load``: signed DNS UPDATE to a zone's primary.

Plain RFC 2136 + TSIG (RFC 8945) + UPDATE-LEASE (RFC 9664), so the same commands work against
``cid serve auth`` and against BIND and Knot primaries (which ignore the lease). Each prints the
server's answer in one line; exit 0 when it said NOERROR, 1 when it refused or could not be
reached, 2 for a usage error (found before anything is sent). See spec/registration.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import subprocess
import sys
import threading

from .main import CliError

LOAD_FROM_TIMEOUT = 10.0


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("server and key")
    g.add_argument("--server", required=True, metavar="ADDR[:PORT]",
                   help="the zone's primary (an address; port 53 by default)")
    keys = g.add_mutually_exclusive_group()
    keys.add_argument("--key", metavar="[ALG:]NAME:SECRET",
                      help="TSIG key as nsupdate -y takes it (algorithm hmac-sha256 by default)")
    keys.add_argument("--key-file", metavar="FILE",
                      help="TSIG key file: BIND's key clause (tsig-keygen), Knot's key section (keymgr -t) "
                           "or one NAME:SECRET line")
    g.add_argument("--key-name", metavar="NAME", help="the key to use when --key-file holds several")
    g.add_argument("--zone", metavar="ZONE",
                   help="the zone to update (default: found with a SOA query to --server, as nsupdate does)")
    g.add_argument("--timeout", type=float, default=3.0, metavar="S",
                   help="seconds to wait for each answer (UDP, 3 tries; default 3)")
    g.add_argument("--tcp", action="store_true", help="send over TCP (default: UDP, TCP when truncated)")


def register(sub) -> None:
    p = sub.add_parser("register", help="register an identifier by signed DNS UPDATE (with a lease)",
                       description="Publish an identifier's SVCB, A/AAAA, CAPS (and LOAD) and its browse "
                                   "PTRs in one signed UPDATE that replaces what it had.",
                       epilog="Endpoints: ALPN[,ALPN]://HOST[:PORT] (h2://127.0.0.5:8443, "
                              "h2,h3://[2001:db8::5]:443, h2://gw.bj.cmcc.cid:443) or SVCB data "
                              "(\"1 . alpn=h2 port=8443\"). An address as HOST is published as A/AAAA at the "
                              "identifier (TargetName .) and as ipv4hint/ipv6hint. Values take units: "
                              "accel_memory_bytes=80GiB, cpu_frequency_hz=3.5GHz, accel_util_ratio=80%%.")
    p.add_argument("identifier", metavar="ID", help="cid:pool-7.bj.cmcc.cid or pool-7.bj.cmcc.cid.")
    _common(p)
    g = p.add_argument_group("what to publish")
    g.add_argument("--endpoint", action="append", default=[], required=True, metavar="SPEC",
                   help="an endpoint (repeatable; priorities 1, 2, ... in order)")
    g.add_argument("--address", action="append", default=[], metavar="ADDR",
                   help="another address of the identifier itself (A/AAAA; repeatable)")
    g.add_argument("--caps", nargs="+", action="extend", default=[], required=True, metavar="KEY=VALUE",
                   help="capabilities (registry keys of spec/capabilities.md, or extension keys with a '.')")
    g.add_argument("--load", nargs="+", action="extend", default=None, metavar="KEY=VALUE",
                   help="live state for LOAD (ts is added; source defaults to measured)")
    g.add_argument("--ttl", type=int, default=300, metavar="S", help="TTL of SVCB and A/AAAA (default 300)")
    g.add_argument("--caps-ttl", type=int, default=3600, metavar="S",
                   help="TTL of CAPS and the browse PTRs (default 3600)")
    g.add_argument("--load-ttl", type=int, default=15, metavar="S", help="TTL of LOAD (default 15, at most 300)")
    g.add_argument("--no-browse", action="store_true",
                   help="leave the browse PTRs (spec/discovery.md §2) out of the update")
    g = p.add_argument_group("lease and keepalive")
    g.add_argument("--lease", type=int, metavar="S",
                   help="ask for a lease (RFC 9664): the server removes the registration unless it is "
                        "renewed within S seconds")
    g.add_argument("--keepalive", action="store_true",
                   help="stay running: renew at 3/4 of the lease and refresh LOAD until SIGINT/SIGTERM")
    g.add_argument("--load-from", metavar="CMD",
                   help="with --keepalive: a shell command printing the LOAD as KEY=VALUE words "
                        "(or a JSON object), run before each refresh")
    g.add_argument("--load-interval", type=float, metavar="S",
                   help="with --keepalive: seconds between LOAD refreshes (default: the LOAD TTL)")
    g.add_argument("--unregister-on-exit", action="store_true",
                   help="with --keepalive: unregister when stopped")
    g.add_argument("--print", dest="print_only", action="store_true",
                   help="print the UPDATE message instead of sending it (the zone must be given)")
    p.set_defaults(func=run_register)


def register_unregister(sub) -> None:
    p = sub.add_parser("unregister", help="remove an identifier's records by signed DNS UPDATE",
                       description="Delete every RRset at the identifier and its browse PTRs in one signed UPDATE.")
    p.add_argument("identifier", metavar="ID")
    _common(p)
    p.add_argument("--no-browse", action="store_true", help="leave the browse PTRs alone")
    p.set_defaults(func=run_unregister)


def register_load(sub) -> None:
    p = sub.add_parser("load", help="replace an identifier's LOAD (live state) by signed DNS UPDATE",
                       description="Replace LOAD only; refused (NXDOMAIN) when the identifier is not registered.")
    p.add_argument("identifier", metavar="ID")
    p.add_argument("items", nargs="+", metavar="KEY=VALUE", help="live values (ts is added, source defaults to measured)")
    _common(p)
    p.add_argument("--ttl", type=int, default=15, metavar="S", help="TTL of LOAD (default 15, at most 300)")
    p.add_argument("--lease", type=int, metavar="S", help="send an UPDATE-LEASE option too (renews where honoured)")
    p.set_defaults(func=run_load)


# --- shared ----------------------------------------------------------------------------------

def _key(args):
    from ..registration import tsigkeys
    try:
        if args.key:
            return tsigkeys.parse_key(args.key)
        if args.key_file:
            return tsigkeys.read_key_file(args.key_file, args.key_name)
    except tsigkeys.TsigKeyError as exc:
        raise CliError(str(exc)) from None
    raise CliError("give the TSIG key: --key NAME:SECRET or --key-file FILE")


def _options(args):
    from ..registration import Options
    if not 0 < args.timeout <= 300:
        raise CliError(f"--timeout {args.timeout:g}: must be more than 0 and at most 300 seconds")
    return Options(timeout=args.timeout, tcp=args.tcp)


def _report(item) -> None:
    if isinstance(item, str):
        print(f"cid: {item}", file=sys.stderr, flush=True)
    else:
        print(item.line(), flush=True)


def _call(fn, *a, **kw):
    from ..registration import RegistrationError, TransportError
    try:
        return fn(*a, **kw)
    except RegistrationError as exc:
        raise CliError(str(exc)) from None
    except TransportError as exc:
        raise CliError(str(exc), 1) from None


def _warn(command: str, warnings) -> None:
    for warning in warnings:
        print(f"cid {command}: warning: {warning}", file=sys.stderr)


# --- cid register ----------------------------------------------------------------------------

def _publication(args):
    from ..registration import RegistrationError, prepare
    try:
        return prepare(args.identifier, endpoints=args.endpoint, caps=args.caps, load=args.load,
                       addresses=args.address, ttl=args.ttl, caps_ttl=args.caps_ttl, load_ttl=args.load_ttl,
                       browse=not args.no_browse)
    except RegistrationError as exc:
        raise CliError(str(exc)) from None


def _check_keepalive_flags(args) -> None:
    if args.keepalive:
        if args.lease is None:
            raise CliError("--keepalive renews a lease: give --lease S")
        if args.load_interval is not None and not 1 <= args.load_interval <= 86400:
            raise CliError("--load-interval must be 1..86400 seconds")
    else:
        for flag, given in (("--load-from", args.load_from), ("--load-interval", args.load_interval),
                            ("--unregister-on-exit", args.unregister_on_exit)):
            if given:
                raise CliError(f"{flag} goes with --keepalive")
    if args.lease is not None and not 1 <= args.lease <= 2**32 - 1:
        raise CliError(f"--lease {args.lease}: must be 1..4294967295 seconds")


def load_from_command(command: str):
    """A LoadSource running ``command`` (through the shell): its output, KEY=VALUE words or one
    JSON object, is the new LOAD; a failure is reported and the last LOAD kept."""
    def source():
        try:
            proc = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=LOAD_FROM_TIMEOUT)
        except subprocess.TimeoutExpired:
            _report(f"--load-from: {command!r} did not finish within {LOAD_FROM_TIMEOUT:g} s; LOAD kept")
            return None
        if proc.returncode != 0:
            _report(f"--load-from: {command!r} exited {proc.returncode}; LOAD kept"
                    + (f" ({proc.stderr.strip().splitlines()[-1]})" if proc.stderr.strip() else ""))
            return None
        text = proc.stdout.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                _report(f"--load-from: not a JSON object ({exc.msg}); LOAD kept")
                return None
            return value if isinstance(value, dict) else None
        try:
            return shlex.split(text)
        except ValueError as exc:
            _report(f"--load-from: cannot split the output ({exc}); LOAD kept")
            return None
    return source


def _checked_source(source):
    """Wrap a LoadSource so that a bad value is reported (and the last LOAD kept), not fatal."""
    from ..registration import RegistrationError
    from ..registration.client import load_map

    def checked():
        given = source()
        if given is None:
            return None
        try:
            load_map(given)
        except RegistrationError as exc:
            _report(f"--load-from: {exc}; LOAD kept")
            return None
        return given
    return checked


def run_register(args: argparse.Namespace) -> int:
    from ..registration import client
    _check_keepalive_flags(args)
    pub = _publication(args)
    key = _key(args)
    server = _call(client.as_server, args.server)
    options = _options(args)
    _warn("register", pub.warnings)
    zone = _call(client._zone, args.zone)
    if args.print_only:
        return _print_update(pub, key, zone, args)
    if not args.keepalive:
        result = _call(client.register, server, key, pub, lease=args.lease, zone=zone, options=options)
        _report(result)
        return 0 if result.ok else 1
    source = _checked_source(load_from_command(args.load_from)) if args.load_from else None
    if source is not None and pub.load is None:
        first = source()
        if first is not None:
            pub.load, _ = client.load_map(first)
    interval = args.load_interval or (pub.load_ttl if (pub.load is not None or source) else None)
    keeper = client.Keepalive(server, key.key, pub, args.lease, load_source=source, load_interval=interval,
                              zone=zone, options=options, report=_report,
                              unregister_on_exit=args.unregister_on_exit)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        keeper.run(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if keeper.failed is not None:
        return 1
    return 0


def _print_update(pub, key, zone, args) -> int:
    from ..registration import messages
    if zone is None:
        raise CliError("--print needs --zone (the zone is otherwise asked of the server)")
    if not pub.identifier.is_subdomain(zone):
        raise CliError(f"{pub.identifier} is not in zone {zone}")
    update = messages.register_message(pub.registration(zone), None, lease=args.lease)
    print(update.to_text())
    print(f"; signed with TSIG key {key.name} ({key.algorithm}) when sent")
    return 0


# --- cid unregister, cid load ----------------------------------------------------------------

def run_unregister(args: argparse.Namespace) -> int:
    from ..registration import client
    key = _key(args)
    result = _call(client.unregister, args.server, key, args.identifier, zone=args.zone,
                   browse=not args.no_browse, options=_options(args))
    _report(result)
    return 0 if result.ok else 1


def run_load(args: argparse.Namespace) -> int:
    from ..registration import client
    if args.lease is not None and not 1 <= args.lease <= 2**32 - 1:
        raise CliError(f"--lease {args.lease}: must be 1..4294967295 seconds")
    key = _key(args)
    _, warnings = _call(client.load_map, args.items)
    _warn("load", warnings)
    result = _call(client.update_load, args.server, key, args.identifier, args.items, ttl=args.ttl,
                   lease=args.lease, zone=args.zone, options=_options(args))
    _report(result)
    return 0 if result.ok else 1

