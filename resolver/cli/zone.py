"""``cid zone``: make keys, sign zones, print DS records, verify signed zones.

Key files are BIND's pair format, so ``dnssec-keygen``/``dnssec-signzone`` and these commands
can use each other's keys. Signed output writes CAPS/LOAD in RFC 3597 generic form by default
so that BIND, NSD, Knot and ldns can load it (``--friendly`` keeps the mnemonic form).
"""

from __future__ import annotations

import argparse
import calendar
import os
import re
import sys
import time
from pathlib import Path

import dns.exception
import dns.name
import dns.rdatatype

from ..auth.keys import (ECDSAP256SHA256, ED25519, KSK_FLAGS, RSASHA256, ZSK_FLAGS, KeyFileError,
                         ZoneKey, generate_key, load_zone_keys, read_key_files, write_key_files)
from ..auth.signer import ds_records, verify_zone
from ..auth.signwrite import signed_zone_text
from ..auth.zonefile import ZoneFileError, load_zone, write_text
from .main import CliError

ALGORITHMS = {"ed25519": ED25519, "ecdsap256sha256": ECDSAP256SHA256, "rsasha256": RSASHA256}
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_RELATIVE = re.compile(r"^(now)?([+-])(\d+)([smhdw]?)$", re.IGNORECASE)
MAX_PROBLEMS_SHOWN = 100


class Progress:
    """A progress bar on stderr (tqdm), one stage at a time: ``stage(name, unit)``, ``total(n)``,
    ``advance(k)``. ``mode`` auto shows it only when stderr is a terminal, so pipes, files and
    scripts get nothing; always/never force it. Also usable as ``progress(k)`` callback."""

    def __init__(self, mode: str = "auto"):
        self.enabled = mode == "always" or (mode == "auto" and sys.stderr.isatty())
        self._bar = None
        self._tqdm = None
        if self.enabled:
            try:
                import tqdm
            except ImportError:  # pragma: no cover - tqdm is a dependency
                self.enabled = False
            else:
                tqdm.tqdm.monitor_interval = 0  # no monitor thread: workers are forked
                self._tqdm = tqdm.tqdm

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def stage(self, name: str, unit: str | None, total: int | None = None) -> None:
        self.close()
        if self.enabled:
            assert self._tqdm is not None
            try:
                sized = os.get_terminal_size(sys.stderr.fileno()).columns > 0
            except (OSError, ValueError):
                sized = False
            # A terminal that reports no width (a bare pseudo-terminal) gets 80 columns.
            self._bar = self._tqdm(desc=name, unit=f" {unit}" if unit else "it", total=total, file=sys.stderr,
                                   leave=False, dynamic_ncols=sized, ncols=None if sized else 80,
                                   nrows=None if sized else 24,
                                   mininterval=0.2, smoothing=0.1,
                                   bar_format=None if unit else "{desc}: {elapsed}")

    def total(self, count: int) -> None:
        if self._bar is not None:
            self._bar.reset(total=count)

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    __call__ = advance

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def register(subparsers) -> None:
    parser = subparsers.add_parser("zone", help="make keys, sign and verify zones",
                                   description="Make DNSSEC keys, sign zones, print DS records, verify.")
    sub = parser.add_subparsers(dest="zone_command", metavar="ACTION", parser_class=type(parser))
    sub.required = True

    p = sub.add_parser("keygen", help="generate a key pair (BIND key-file format)")
    p.add_argument("zone", metavar="ZONE")
    p.add_argument("--algorithm", "-a", choices=sorted(ALGORITHMS), default="ed25519")
    p.add_argument("--zsk", action="store_true", help="make a zone-signing key (flags 256) instead of a KSK/CSK")
    p.add_argument("--dir", "-K", default=".", help="directory for the key files (default: .)")
    p.set_defaults(func=_keygen)

    p = sub.add_parser("sign", help="sign a zone file (NSEC)")
    p.add_argument("zonefile", metavar="ZONEFILE")
    p.add_argument("--key", "-k", action="append", default=[], metavar="KEYFILE",
                   help="a key file (either half of the pair); repeatable")
    p.add_argument("--keydir", "-K", metavar="DIR",
                   help="use every key for the zone in DIR (default, when no --key: the zone file's "
                        "directory and the current directory)")
    p.add_argument("-o", "--output", metavar="OUT", help="signed output file (default: ZONEFILE.signed)")
    p.add_argument("--origin", metavar="NAME", help="zone name (default: $ORIGIN or the SOA owner)")
    p.add_argument("--inception", metavar="T", help="YYYYMMDDHHMMSS, epoch seconds, or now±N[smhdw] "
                                                     "(default now-1h)")
    p.add_argument("--expiration", metavar="T", help="as --inception (default now+14d)")
    p.add_argument("--ds-out", metavar="FILE", help="also write the zone's DS records (SHA-256) to FILE")
    p.add_argument("--friendly", action="store_true", help="write CAPS/LOAD by name, not in RFC 3597 form")
    p.add_argument("--no-browse", action="store_true",
                   help="sign the records as they are: do not add the browse PTRs (_compute, sub-types, "
                        "_children) that spec/discovery.md §2 says the zone's identifiers and delegations need")
    p.add_argument("--jobs", "-j", type=int, metavar="N",
                   help="signing processes (default: one per CPU for large zones, else 1)")
    p.add_argument("--progress", choices=["auto", "always", "never"], default="auto",
                   help="progress bar on stderr (default auto: only when stderr is a terminal)")
    p.set_defaults(func=_sign)

    p = sub.add_parser("ds", help="print DS records for a key file or a signed zone",
                       description="DS records in master-file form: for a key file, that key; for a "
                                   "signed zone, its KSKs (SEP flag), or every zone key if none has it.")
    p.add_argument("sources", nargs="+", metavar="KEYFILE|SIGNEDZONE")
    p.add_argument("--digest", choices=["sha256", "sha384"], default="sha256")
    p.add_argument("--origin", metavar="NAME", help="zone name when reading a zone file")
    p.add_argument("--format", choices=["ds", "bind", "unbound"], default="ds",
                   help="ds (default): master-file DS records (our --trust-anchor, Unbound's "
                        "trust-anchor-file); bind: a trust-anchors { NAME static-ds ...; }; clause (delv -a FILE "
                        "+root=NAME, named.conf); unbound: the DS records headed by their unbound.conf "
                        "trust-anchor: lines as comments (trust-anchor-file, auto-trust-anchor-file). "
                        "--trust-anchor reads all three")
    p.set_defaults(func=_ds)

    _register_delegation(sub)

    p = sub.add_parser("rollover", help="roll a zone's ZSK (pre-publication) or KSK (double-DS) on a live server",
                       description="Make the new key and start the roll; the server of --config carries it "
                                   "out on its timer, each wait taken from the zone's TTLs (spec/dnssec.md §6).")
    p.add_argument("zone", metavar="ZONE")
    role = p.add_mutually_exclusive_group(required=True)
    role.add_argument("--zsk", action="store_const", const="zsk", dest="role")
    role.add_argument("--ksk", action="store_const", const="ksk", dest="role")
    p.add_argument("--config", required=True, metavar="FILE", help="the server's TOML configuration")
    p.set_defaults(func=_rollover)

    p = sub.add_parser("verify", help="check every signature and the NSEC chain of a signed zone")
    p.add_argument("zonefile", metavar="SIGNEDZONE")
    p.add_argument("--origin", metavar="NAME")
    p.add_argument("--now", metavar="T", help="validate as of this time (same forms as sign --inception)")
    p.add_argument("--jobs", "-j", type=int, metavar="N",
                   help="verifying processes (default: one per CPU; small zones use one)")
    p.add_argument("--progress", choices=["auto", "always", "never"], default="auto",
                   help="progress bar on stderr (default auto: only when stderr is a terminal)")
    p.set_defaults(func=_verify)

    p = sub.add_parser("export", help="write a live zone (as its journal says) as a master file",
                       description="The zone as acknowledged: base file plus journal replay, read "
                                   "from the journal directory of a `cid serve auth --config` file "
                                   "(also while that server runs).")
    p.add_argument("zone", metavar="ZONE")
    p.add_argument("--config", "-c", required=True, metavar="FILE", help="the server's TOML configuration")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: standard output)")
    p.set_defaults(func=_export)


def parse_time(text: str, now: float) -> int:
    """BIND-style times: YYYYMMDDHHMMSS, seconds since the epoch, or now±N with an optional unit."""
    text = text.strip()
    if match := _RELATIVE.match(text):
        sign = 1 if match.group(2) == "+" else -1
        return int(now) + sign * int(match.group(3)) * _UNITS[match.group(4).lower()]
    if text.lower() == "now":
        return int(now)
    if re.fullmatch(r"\d{14}", text):
        try:
            return calendar.timegm(time.strptime(text, "%Y%m%d%H%M%S"))
        except ValueError:
            raise CliError(f"bad time {text!r}: not a valid YYYYMMDDHHMMSS date") from None
    if re.fullmatch(r"\d{1,13}", text):
        return int(text)
    raise CliError(f"bad time {text!r}: use YYYYMMDDHHMMSS, epoch seconds or now+N[smhdw]")


def _name(text: str) -> dns.name.Name:
    try:
        return dns.name.from_text(text)
    except dns.exception.DNSException as exc:
        raise CliError(f"bad zone name {text!r}: {exc}") from None


def _load(path: str, origin: str | None):
    try:
        return load_zone(path, _name(origin) if origin else None)
    except ZoneFileError as exc:
        raise CliError(str(exc)) from None


def _keygen(args: argparse.Namespace) -> int:
    zone = _name(args.zone)
    key = generate_key(zone, ALGORITHMS[args.algorithm], ZSK_FLAGS if args.zsk else KSK_FLAGS)
    try:
        write_key_files(key, args.dir)
    except FileExistsError:  # a key tag collision with an existing key: make another
        key = generate_key(zone, key.algorithm, key.flags)
        try:
            write_key_files(key, args.dir)
        except OSError as exc:
            raise CliError(f"cannot write key files in {args.dir}: {exc.strerror or exc}") from None
    except OSError as exc:
        raise CliError(f"cannot write key files in {args.dir}: {exc.strerror or exc}") from None
    print(key.basename)
    return 0


def _collect_keys(args: argparse.Namespace, zone: dns.name.Name) -> list[ZoneKey]:
    keys: list[ZoneKey] = []
    try:
        for path in args.key:
            keys.append(read_key_files(path))
        if args.keydir:
            dirs = [Path(args.keydir)]
        elif args.key:
            dirs = []
        else:
            dirs = list(dict.fromkeys([Path(args.zonefile).resolve().parent, Path.cwd().resolve()]))
        for directory in dirs:
            keys += load_zone_keys(directory, zone)
    except KeyFileError as exc:
        raise CliError(str(exc)) from None
    unique: dict[tuple[int, bytes], ZoneKey] = {}
    for key in keys:
        if key.zone != zone:
            raise CliError(f"key {key.basename} is for {key.zone}, not {zone}")
        unique.setdefault((key.algorithm, key.dnskey.key), key)
    if not unique:
        where = ", ".join(str(d) for d in dirs) if not args.key else "the --key files"
        raise CliError(f"no keys for {zone} in {where}; make one with: cid zone keygen {zone}")
    return list(unique.values())


def _sign(args: argparse.Namespace) -> int:
    from ..auth import sign_text
    started = time.perf_counter()
    now = time.time()
    inception = parse_time(args.inception, now) if args.inception else None
    expiration = parse_time(args.expiration, now) if args.expiration else None
    jobs = _jobs(args)
    origin = _name(args.origin) if args.origin else None
    output = args.output or f"{args.zonefile}.signed"
    with Progress(args.progress) as bar:
        # A plain unsigned file is read, signed and written without dnspython objects per record
        # (sign_text); anything else (re-signing, unusual syntax) is loaded by dnspython.
        try:
            with open(args.zonefile, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError):
            text = None  # load_zone reports it
        data = None
        if text is not None:
            bar.stage("read", "lines", text.count("\n") + 1)
            data = sign_text.read(text, origin, bar.advance)
            del text
            if data is not None and not args.no_browse and _lists_anything(data):
                data = None  # browse PTRs are added to a dnspython zone (browse.add_browse_names)
        browse_added = 0
        if data is None:
            bar.stage("load", None)
            zone = _load(args.zonefile, args.origin)
            zone_origin = zone.origin
            if not args.no_browse:
                from ..auth.browse import add_browse_names
                browse_added = add_browse_names(zone)
        else:
            zone_origin = data.origin
        keys = _collect_keys(args, zone_origin)
        bar.stage("sign", "names")
        try:
            # Signed and rendered by range in parallel, straight to text: no NSEC/RRSIG objects are built.
            if data is not None:
                plan = sign_text.prepare(data, keys, inception=inception, expiration=expiration, now=now)
                signed = sign_text.signed_text(plan, generic=not args.friendly, workers=jobs, progress=bar.advance,
                                               total=bar.total)
                dnskey_ttl = data.nodes[data.origin_folded].sets[(dns.rdatatype.DNSKEY, 0)].ttl
            else:
                signed = signed_zone_text(zone, keys, inception=inception, expiration=expiration, now=now,
                                          generic=not args.friendly, workers=jobs, progress=bar.advance,
                                          total=bar.total)
                dnskey_ttl = _dnskey_ttl(zone)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        bar.stage("write", None)
        rrsets, rrsigs = signed.rrsets, signed.rrsigs
        try:
            write_text(output, signed.text)
            if args.ds_out:
                _write_ds(args.ds_out, zone_origin, [k.dnskey for k in keys], "SHA256", dnskey_ttl)
        except OSError as exc:
            raise CliError(f"cannot write {exc.filename or output}: {exc.strerror or exc}") from None
    elapsed = time.perf_counter() - started
    tags = " ".join(f"{k.algorithm}/{k.key_tag}{'(KSK)' if k.is_ksk else '(ZSK)'}" for k in keys)
    browse = f" ({browse_added} browse PTR{'s' if browse_added != 1 else ''} added)" if browse_added else ""
    print(f"{zone_origin}: signed {rrsets} RRsets with {rrsigs} RRSIGs using {tags} in {elapsed:.2f} s"
          f" -> {output}{browse}")
    return 0


def _lists_anything(data) -> bool:
    """Whether a zone read by sign_text has what browse names list (spec/discovery.md §2):
    an SVCB or CAPS RRset, or a delegation."""
    from ..auth.browse import CAPS, NS, SVCB
    for folded, node in data.nodes.items():
        for rdtype, _ in node.sets:
            if rdtype in (SVCB, CAPS) or (rdtype == NS and folded != data.origin_folded):
                return True
    return False


def _dnskey_ttl(zone) -> int:
    rds = zone.get_rdataset(zone.origin, dns.rdatatype.DNSKEY)
    return rds.ttl if rds is not None else 3600


def _ds_lines(zone: dns.name.Name, dnskeys, digest: str, ttl: int) -> list[str]:
    return [f"{zone} {ttl} IN DS {ds.to_text()}" for ds in ds_records(zone, dnskeys, digest)]


def _write_ds(path: str, zone: dns.name.Name, dnskeys, digest: str, ttl: int) -> None:
    Path(path).write_text("\n".join(_ds_lines(zone, dnskeys, digest, ttl)) + "\n", encoding="ascii")


def _looks_like_key_file(path: str) -> bool:
    return path.endswith((".key", ".private")) or Path(path + ".private").exists()


def _ds(args: argparse.Namespace) -> int:
    lines: list[str] = []
    for source in args.sources:
        if _looks_like_key_file(source):
            try:
                key = read_key_files(source)
            except KeyFileError as exc:
                raise CliError(str(exc)) from None
            # An explicitly named key gets its DS even when it is a ZSK.
            lines += [f"{key.zone} 3600 IN DS {ds.to_text()}"
                      for ds in ds_records(key.zone, [key.dnskey], args.digest)]
            continue
        zone = _load(source, args.origin)
        dnskeys = zone.get_rdataset(zone.origin, dns.rdatatype.DNSKEY)
        if dnskeys is None:
            raise CliError(f"{source}: no DNSKEY records at {zone.origin}; is the zone signed?")
        lines += _ds_lines(zone.origin, list(dnskeys), args.digest, dnskeys.ttl)
    print(_ds_in_format(lines, args.format), end="")
    return 0


def _ds_in_format(lines: list[str], form: str) -> str:
    """The DS records as a trust anchor file in ``form`` (spec/dnssec.md §3: we read all three)."""
    text = "\n".join(lines) + "\n"
    if form == "ds":
        return text
    from ..dnssec.anchors import TrustAnchor
    anchor = TrustAnchor.from_text(text, source="DS records")
    if form == "bind":
        return anchor.to_bind()
    # Unbound reads master-file DS lines from trust-anchor-file and auto-trust-anchor-file; the
    # comment shows the same anchor as an unbound.conf trust-anchor: line.
    comments = [f'; unbound.conf: trust-anchor: "{line}"' for line in anchor.to_text().splitlines()]
    return "\n".join(comments) + "\n" + anchor.to_text()


def _jobs(args: argparse.Namespace) -> int | None:
    if args.jobs is not None and not 1 <= args.jobs <= 256:
        raise CliError(f"--jobs must be 1..256, not {args.jobs}")
    return args.jobs


def _verify(args: argparse.Namespace) -> int:
    from ..auth import verify_parallel
    now = parse_time(args.now, time.time()) if args.now else None
    jobs = _jobs(args)
    origin = _name(args.origin) if args.origin else None
    with Progress(args.progress) as bar:
        try:
            data = verify_parallel.read_file(args.zonefile, origin, progress=bar)
        except ZoneFileError as exc:
            raise CliError(str(exc)) from None
        bar.stage("verify", "names")
        problems = verify_parallel.verify(data, now=now, workers=jobs, progress=bar.advance, total=bar.total)
    zone = data
    if not problems:
        print("ok")
        return 0
    for problem in problems[:MAX_PROBLEMS_SHOWN]:
        print(problem)
    if len(problems) > MAX_PROBLEMS_SHOWN:
        print(f"... and {len(problems) - MAX_PROBLEMS_SHOWN} more")
    print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {zone.origin}")
    return 1


def _export(args: argparse.Namespace) -> int:
    from ..auth import authconfig, export
    from ..auth.livesetup import SetupError
    try:
        config = authconfig.load(args.config)
        zone = export.export_config(config, _name(args.zone))
        if args.output:
            export.write(zone, args.output)
        else:
            sys.stdout.writelines(export.zone_lines(zone))
    except authconfig.ConfigError as exc:
        raise CliError(str(exc)) from None
    except SetupError as exc:
        raise CliError(str(exc), 1) from None
    except (OSError, ValueError) as exc:
        raise CliError(f"{args.config}: {exc}", 1) from None
    return 0


def _rollover(args: argparse.Namespace) -> int:
    from ..auth import authconfig, rollover
    try:
        config = authconfig.load(args.config)
        print(rollover.start_roll(config, _name(args.zone), args.role))
    except (authconfig.ConfigError, rollover.RolloverError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write the new key: {exc.strerror or exc}") from None
    return 0


# --- delegation ------------------------------------------------------------------------------

DELEGATE_HELP = """Create the child zone CHILD and delegate it from PARENT (spec/delegation.md §4).

In --dir (default ./CHILD) it writes: keys/ (a CSK, or KSK + ZSK with --zsk, BIND key files),
CHILD.zone (SOA, NS and the in-zone name servers' addresses), CHILD.zone.signed, CHILD.ds and
CHILD.toml (a `cid serve auth --config` file for the child; copy its [[zone]] table into an
existing server's configuration to serve it there; for a live parent it also names the parent
and its TSIG key, the secret in parent.tsig, mode 0600, so that `cid zone rollover --ksk`
replaces the DS there by UPDATE). Then it adds NS, glue (addresses of name
servers inside CHILD) and DS (from the child's KSK) to the parent, and the parent's
_children._compute PTR (spec/discovery.md §2.2), either to a master file (--parent-file,
re-signed with the parent's keys, serial bumped) or to a live primary by one TSIG-signed
UPDATE (--server, --key or --key-file; ours, BIND or Knot), on condition that CHILD has no NS
there yet. If the parent refuses, the child's new files are removed again."""

UNDELEGATE_HELP = """Remove the delegation of CHILD from PARENT: NS, DS, glue below the cut and the
_children._compute PTR, in a master file (re-signed, serial bumped) or by one signed UPDATE.
The child's own files (zone, keys, config) are left as they are."""


def _parent_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("parent", metavar="PARENT")
    p.add_argument("child", metavar="CHILD")
    where = p.add_argument_group("the parent (one of)")
    where.add_argument("--parent-file", metavar="FILE",
                       help="the parent's master file: if signed, re-signed in place; if unsigned, rewritten "
                            "with the change (comments are not kept) and signed to FILE.signed")
    where.add_argument("--parent-keys", metavar="DIR", action="append",
                       help="the parent's key directory (default: FILE's directory and the current one)")
    where.add_argument("-o", "--output", metavar="OUT", help="signed parent output (see --parent-file)")
    where.add_argument("--server", metavar="ADDR[:PORT]", help="the parent's primary (takes RFC 2136 UPDATE)")
    keys = where.add_mutually_exclusive_group()
    keys.add_argument("--key", metavar="[ALG:]NAME:SECRET", help="TSIG key as nsupdate -y takes it")
    keys.add_argument("--key-file", metavar="FILE", help="TSIG key file (tsig-keygen, keymgr -t, or NAME:SECRET)")
    where.add_argument("--key-name", metavar="NAME", help="the key to use when --key-file holds several")


def _register_delegation(sub) -> None:
    p = sub.add_parser("delegate", help="create a child zone and delegate it (NS, glue, DS, _children)",
                       description=DELEGATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _parent_options(p)
    p.add_argument("--ns", action="append", default=[], metavar="NAME[=ADDR,...]",
                   help="a name server of the child (relative names are under CHILD); names inside CHILD "
                        "need their addresses (glue); repeatable, at least one")
    p.add_argument("--algorithm", "-a", choices=sorted(ALGORITHMS), default="ed25519")
    p.add_argument("--zsk", action="store_true", help="a KSK and a ZSK instead of one CSK")
    p.add_argument("--dir", metavar="DIR", help="where the child's files go (default: ./CHILD)")
    p.add_argument("--listen", action="append", default=[], metavar="ADDR:PORT",
                   help="listen addresses in CHILD.toml (default: the glue addresses, port 53)")
    p.set_defaults(func=_delegate)

    p = sub.add_parser("undelegate", help="remove a child's delegation (NS, glue, DS, _children) from its parent",
                       description=UNDELEGATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _parent_options(p)
    p.set_defaults(func=_undelegate)


def _parent_target(args: argparse.Namespace):
    """("file", path, key dirs) or ("live", (host, port), TSIG key)."""
    if (args.parent_file is None) == (args.server is None):
        raise CliError("give the parent: --parent-file FILE or --server ADDR[:PORT] with --key/--key-file")
    if args.parent_file is not None:
        if args.key or args.key_file:
            raise CliError("--key/--key-file go with --server, not with --parent-file")
        path = Path(args.parent_file)
        dirs = [Path(d) for d in args.parent_keys] if args.parent_keys else \
            list(dict.fromkeys([path.resolve().parent, Path.cwd().resolve()]))
        return "file", path, dirs
    if args.parent_keys or args.output:
        raise CliError("--parent-keys/--output go with --parent-file, not with --server")
    from ..registration import transport, tsigkeys
    try:
        server = transport.parse_server(args.server)
    except ValueError as exc:
        raise CliError(f"--server {exc}") from None
    try:
        if args.key:
            key = tsigkeys.parse_key(args.key)
        elif args.key_file:
            key = tsigkeys.read_key_file(args.key_file, args.key_name)
        else:
            raise CliError("a live parent needs its TSIG key: --key NAME:SECRET or --key-file FILE")
    except tsigkeys.TsigKeyError as exc:
        raise CliError(str(exc)) from None
    return "live", server, key


def _change_parent(args: argparse.Namespace, kind: str, where, extra, on_file, on_live) -> str:
    """Change a file parent (``on_file(path, key_dirs=, output=)``) or a live one
    (``on_live(server, key)``); says where the change went."""
    if kind == "file":
        change = on_file(where, key_dirs=extra, output=Path(args.output) if args.output else None)
        return f"{change.signed} (serial {change.serial})"
    on_live(where, extra)
    return f"{args.server} by UPDATE (key {extra.name})"


def _delegate(args: argparse.Namespace) -> int:
    from ..auth import delegate as dg
    parent, child = _name(args.parent), _name(args.child)
    try:
        dg.check_names(parent, child)
        servers = [dg.parse_server(text, child) for text in args.ns]
        kind, where, extra = _parent_target(args)
        # The parent's refusals first, so that nothing is created for a delegation that cannot be made.
        if kind == "file":
            dg.check_file_parent(parent, child, where, extra)
        elif dg.live_delegation(where, parent, child):
            raise dg.DelegationError(f"{child} is already delegated by {args.server}; undelegate it first")
        directory = Path(args.dir) if args.dir else Path(child.to_text(omit_final_dot=True).lower())
        link = dg.ParentLink(f"{where[0]}:{where[1]}", extra) if kind == "live" else None
        made = dg.create_child(child, servers, directory, algorithm=ALGORITHMS[args.algorithm], split=args.zsk,
                               listen=args.listen, parent=link)
        try:
            done = _change_parent(args, kind, where, extra,
                                  lambda path, **kw: dg.delegate_file(parent, made, path, **kw),
                                  lambda server, key: dg.delegate_live(server, key, parent, made))
        except BaseException:
            made.remove()
            raise
    except dg.DelegationError as exc:
        raise CliError(str(exc), exc.code) from None
    tags = " ".join(f"{k.key_tag}({'KSK' if k.is_ksk else 'ZSK'})" for k in made.keys)
    print(f"{child}: zone {made.signed_file}, keys {tags} in {made.key_directory}, DS {made.ds_file}, "
          f"config {made.config_file}")
    print(f"{parent}: NS, glue, DS and _children PTR for {child} added -> {done}")
    return 0


def _undelegate(args: argparse.Namespace) -> int:
    from ..auth import delegate as dg
    parent, child = _name(args.parent), _name(args.child)
    try:
        dg.check_names(parent, child)
        kind, where, extra = _parent_target(args)
        done = _change_parent(args, kind, where, extra,
                              lambda path, **kw: dg.undelegate_file(parent, child, path, **kw),
                              lambda server, key: dg.undelegate_live(server, key, parent, child))
    except dg.DelegationError as exc:
        raise CliError(str(exc), exc.code) from None
    print(f"{parent}: NS, glue, DS and _children PTR of {child} removed -> {done}; the child's files are left alone")
    return 0
