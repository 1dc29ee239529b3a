"""Delegating a child namespace (spec/delegation.md §4): ``cid zone delegate`` / ``undelegate``.

A delegation is three things in the parent (RFC 1034 §4.2, RFC 4035 §2.4): NS at the child's
apex, glue (A/AAAA) for the name servers below the cut, DS of the child's KSK/CSK — plus the
``_children._compute.PARENT`` PTR that lets ``find`` descend into the child (spec/discovery.md
§2.2). ``create_child`` makes the child itself (keys, signed zone, DS file, a ``cid serve auth
--config`` file); the parent is changed either as a master file, re-signed with its own keys by
the code ``cid zone sign`` uses (``delegate_file``), or on a live primary by one TSIG-signed
UPDATE (``delegate_live``: ours, BIND, Knot) whose prerequisite "no NS at CHILD" (RFC 2136 §2.4.3)
makes a second delegation of the same child fail instead of overwriting the first.

Undelegation removes exactly those records from the parent and never touches the child's files.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.PTR
import dns.zone

from ..records import registry
from . import serial
from .keys import KSK_FLAGS, ZSK_FLAGS, KeyFileError, ZoneKey, generate_key, load_zone_keys, write_key_files
from .signer import ds_records
from .signwrite import signed_zone_text
from .zonefile import ZoneFileError, load_zone, write_text

TTL = 3600  # NS, DS and glue (spec/delegation.md §3: 3600 s in the reference federation)
SOA_TIMERS = "3600 600 1209600 300"  # refresh retry expire minimum (RFC 1912 §2.2 ranges)
NS, DS, A, AAAA, PTR = (dns.rdatatype.NS, dns.rdatatype.DS, dns.rdatatype.A, dns.rdatatype.AAAA,
                        dns.rdatatype.PTR)
QUERY_TIMEOUT = 3.0


class DelegationError(Exception):
    """One line for the user; ``code`` 2 for usage errors, 1 for failures."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class NameServer:
    name: dns.name.Name
    addresses: tuple[str, ...] = ()


def check_names(parent: dns.name.Name, child: dns.name.Name) -> None:
    if child == parent or not child.is_subdomain(parent):
        raise DelegationError(f"{child} is not below {parent}: a zone delegates only names under it", 2)
    if any(label.startswith(b"_") for label in child.relativize(parent).labels):
        raise DelegationError(f"{child}: labels starting with '_' are reserved for browse and service names", 2)


def parse_server(text: str, child: dns.name.Name) -> NameServer:
    """``NAME[=ADDR,...]``; a relative NAME is relative to the child (``ns1`` = ``ns1.CHILD``)."""
    import ipaddress
    name_text, _, addresses_text = text.partition("=")
    try:
        name = dns.name.from_text(name_text.strip(), origin=child)
    except dns.exception.DNSException as exc:
        raise DelegationError(f"--ns {text!r}: bad name: {exc}", 2) from None
    addresses = []
    for item in filter(None, (a.strip() for a in addresses_text.split(","))):
        try:
            addresses.append(str(ipaddress.ip_address(item)))
        except ValueError:
            raise DelegationError(f"--ns {text!r}: {item!r} is not an IP address", 2) from None
    server = NameServer(name, tuple(addresses))
    if name.is_subdomain(child) and not addresses:
        raise DelegationError(f"--ns {text!r}: {name} is inside {child}, so the parent needs its address "
                              f"as glue: --ns {name}=ADDR", 2)
    if addresses and not name.is_subdomain(child):
        raise DelegationError(f"--ns {text!r}: {name} is not inside {child}; its address is not glue "
                              "(publish it in its own zone) — give the name alone", 2)
    return server


# --- the child ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ParentLink:
    """A live parent the child's server sends its DS changes to (KSK rollover, spec/dnssec.md §6)."""

    server: str  # ADDR:PORT
    key: object  # registration.tsigkeys.TsigKey: name, algorithm, secret


@dataclass
class ChildZone:
    name: dns.name.Name
    servers: list[NameServer]
    directory: Path
    parent: ParentLink | None = None
    keys: list[ZoneKey] = field(default_factory=list)
    ds: list[dns.rdata.Rdata] = field(default_factory=list)
    made: list[Path] = field(default_factory=list)  # what create_child wrote (removed on failure)

    @property
    def stem(self) -> str:
        return self.name.to_text(omit_final_dot=True).lower()

    @property
    def zone_file(self) -> Path:
        return self.directory / f"{self.stem}.zone"

    @property
    def signed_file(self) -> Path:
        return self.directory / f"{self.stem}.zone.signed"

    @property
    def ds_file(self) -> Path:
        return self.directory / f"{self.stem}.ds"

    @property
    def config_file(self) -> Path:
        return self.directory / f"{self.stem}.toml"

    @property
    def key_directory(self) -> Path:
        return self.directory / "keys"

    @property
    def parent_secret_file(self) -> Path:
        return self.directory / "parent.tsig"

    def remove(self) -> None:
        """Undo ``create_child`` (only files it made: used when the parent refused the change)."""
        for path in reversed(self.made):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def child_zone_text(child: dns.name.Name, servers: list[NameServer], now: float) -> str:
    """SOA, NS and the in-zone servers' addresses: the smallest zone that answers for itself."""
    serial_value = serial.next_serial(0, now)
    lines = [f"$TTL {TTL}", f"{child} {TTL} IN SOA {servers[0].name} hostmaster.{child} {serial_value} {SOA_TIMERS}"]
    lines += [f"{child} {TTL} IN NS {s.name}" for s in servers]
    for s in servers:
        if s.name.is_subdomain(child):
            lines += [f"{s.name} {TTL} IN {'AAAA' if ':' in a else 'A'} {a}" for a in s.addresses]
    return "\n".join(lines) + "\n"


def config_text(child: ChildZone, listen: list[str]) -> str:
    listen = listen or [f"[{a}]:53" if ":" in a else f"{a}:53" for s in child.servers
                        if s.name.is_subdomain(child.name) for a in s.addresses]
    head = ("# `cid serve auth --config` file for {zone}, written by `cid zone delegate`.\n"
            "# To serve {zone} from a server you already run, copy its [[zone]] table into that\n"
            "# server's configuration (paths are relative to the configuration file).\n").format(zone=child.name)
    listen_line = ("listen = [" + ", ".join(f'"{x}"' for x in listen) + "]" if listen
                   else '# listen = ["ADDR:53"]   # where the name servers of this zone listen')
    text = (f"{head}{listen_line}\njournal = \"journal\"\n\n[[zone]]\nname = \"{child.name}\"\n"
            f"file = \"{child.signed_file.name}\"\nkeys = \"keys\"\n")
    if child.parent is not None:
        # A KSK roll replaces the DS at the parent by UPDATE with the key the delegation used.
        key = child.parent.key
        text += (f"parent = \"{child.parent.server}\"\nparent_key = \"{key.name}\"\nparent_ds_ttl = {TTL}\n\n"
                 f"[[key]]\nname = \"{key.name}\"\nalgorithm = \"{key.algorithm}\"\n"
                 f"secret_file = \"{child.parent_secret_file.name}\"\n")
    return text


def create_child(child: dns.name.Name, servers: list[NameServer], directory: Path, *, algorithm: int,
                 split: bool = False, listen: list[str] | None = None, parent: ParentLink | None = None,
                 now: float | None = None) -> ChildZone:
    """Keys (a CSK, or KSK + ZSK with ``split``), the zone, its signed form, DS and config in
    ``directory`` (with ``parent``: the parent's server and TSIG key, its secret in a 0600 file).
    Refuses a directory that already holds the child's zone or keys."""
    now = time.time() if now is None else now
    zone = ChildZone(child, servers, directory, parent)
    if not servers:
        raise DelegationError(f"give the name servers of {child}: --ns NAME[=ADDR,...] (at least one)", 2)
    existing = [p for p in (zone.zone_file, zone.signed_file, zone.config_file) if p.exists()]
    if zone.key_directory.is_dir() and any(zone.key_directory.glob(f"K{zone.stem}.+*")):
        existing.append(zone.key_directory)
    if existing:
        raise DelegationError(f"{child} exists already in {directory} ({existing[0].name}); "
                              "choose another --dir or remove it")
    try:
        for path in (directory, zone.key_directory):
            if not path.exists():
                path.mkdir(parents=True)
                zone.made.append(path)
        flags = [KSK_FLAGS, ZSK_FLAGS] if split else [KSK_FLAGS]
        for flag in flags:
            key = generate_key(child, algorithm, flag)
            zone.made += write_key_files(key, zone.key_directory)
            zone.keys.append(key)
        zone.made.append(zone.zone_file)
        write_text(zone.zone_file, child_zone_text(child, servers, now))
        parsed = load_zone(zone.zone_file, child)
        signed = signed_zone_text(parsed, zone.keys, now=now)
        zone.made.append(zone.signed_file)
        write_text(zone.signed_file, signed.text)
        zone.ds = ds_records(child, [k.dnskey for k in zone.keys if k.is_ksk])
        zone.made.append(zone.ds_file)
        write_text(zone.ds_file, "".join(f"{child} {TTL} IN DS {d.to_text()}\n" for d in zone.ds))
        if parent is not None:
            _write_secret(zone.parent_secret_file, parent.key.secret)
            zone.made.append(zone.parent_secret_file)
        zone.made.append(zone.config_file)
        write_text(zone.config_file, config_text(zone, listen or []))
    except OSError as exc:
        zone.remove()
        raise DelegationError(f"cannot write {exc.filename or directory}: {exc.strerror or exc}") from None
    except (ZoneFileError, ValueError) as exc:
        zone.remove()
        raise DelegationError(str(exc)) from None
    return zone


def _write_secret(path: Path, secret: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secret + "\n")


# --- a parent that is a master file ------------------------------------------------------------

@dataclass(frozen=True)
class FileChange:
    source: Path  # the file read (an unsigned source is rewritten with the change)
    signed: Path  # the signed output
    serial: int
    keys: list[ZoneKey]


def _parent_keys(parent: dns.name.Name, directories: list[Path]) -> list[ZoneKey]:
    keys: dict[tuple[int, bytes], ZoneKey] = {}
    try:
        for directory in directories:
            for key in load_zone_keys(directory, parent):
                keys.setdefault((key.algorithm, key.dnskey.key), key)
    except KeyFileError as exc:
        raise DelegationError(str(exc)) from None
    if not keys:
        where = ", ".join(str(d) for d in directories)
        raise DelegationError(f"no keys for {parent} in {where}: the parent must be re-signed with its own "
                              "keys (give --parent-keys DIR)")
    return list(keys.values())


def _is_signed(zone: dns.zone.Zone) -> bool:
    return zone.get_rdataset(zone.origin, dns.rdatatype.DNSKEY) is not None


def _below(zone: dns.zone.Zone, child: dns.name.Name) -> list[dns.name.Name]:
    return sorted(name for name in zone.nodes if name.is_subdomain(child))


def _bump_serial(zone: dns.zone.Zone, now: float) -> int:
    soa_set = zone.find_rdataset(zone.origin, dns.rdatatype.SOA)
    soa = soa_set[0]
    new = serial.next_serial(soa.serial, now)
    soa_set.clear()
    soa_set.add(soa.replace(serial=new))
    return new


def _set(zone: dns.zone.Zone, name: dns.name.Name, rdtype: int, rdatas: list[dns.rdata.Rdata], ttl: int) -> None:
    rds = zone.find_rdataset(name, rdtype, create=True)
    for rd in rdatas:
        rds.add(rd, ttl)


def _rdata(rdtype: int, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)


def _ptr(target: dns.name.Name) -> dns.rdata.Rdata:
    return dns.rdtypes.ANY.PTR.PTR(dns.rdataclass.IN, PTR, target)


def _load_parent(path: Path, parent: dns.name.Name) -> dns.zone.Zone:
    """The file's own zone (its $ORIGIN or SOA owner), so that another zone's file is named as
    such; a file that does not say its origin is read as PARENT."""
    try:
        return load_zone(path)
    except ZoneFileError:
        pass
    try:
        return load_zone(path, parent)
    except ZoneFileError as exc:
        raise DelegationError(str(exc)) from None


def _write_parent(zone: dns.zone.Zone, path: Path, output: Path | None, key_dirs: list[Path],
                  now: float) -> FileChange:
    """Bump the serial, then write: an unsigned source back to ``path`` and signed to ``output``
    (default ``path``.signed, as ``cid zone sign``); a signed file re-signed in place."""
    keys = _parent_keys(zone.origin, key_dirs)  # before anything is written
    was_signed = _is_signed(zone)
    new_serial = _bump_serial(zone, now)
    target = output or (path if was_signed else path.with_name(path.name + ".signed"))
    try:
        if not was_signed:
            from .zonefile import zone_to_text
            write_text(path, zone_to_text(zone, generic=True))
        signed = signed_zone_text(zone, keys, now=now)
        write_text(target, signed.text)
    except OSError as exc:
        raise DelegationError(f"cannot write {exc.filename or target}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise DelegationError(f"{path}: {exc}") from None
    return FileChange(path, target, new_serial, keys)


def delegate_file(parent: dns.name.Name, child: ChildZone, path: Path, *, key_dirs: list[Path],
                  output: Path | None = None, now: float | None = None) -> FileChange:
    """Add NS, glue, DS and the ``_children`` PTR for ``child`` to the parent's master file and
    re-sign it (``check_file_parent`` says the same refusals before the child is made)."""
    now = time.time() if now is None else now
    zone = _load_parent(path, parent)
    name = child.name
    _refusals(zone, path, parent, name)
    _set(zone, name, NS, [_rdata(NS, s.name.to_text()) for s in child.servers], TTL)
    for s in child.servers:
        if s.name.is_subdomain(name):
            for address in s.addresses:
                rdtype = AAAA if ":" in address else A
                _set(zone, s.name, rdtype, [_rdata(rdtype, address)], TTL)
    _set(zone, name, DS, child.ds, TTL)
    _set(zone, registry.children_name(parent), PTR, [_ptr(name)], TTL)
    return _write_parent(zone, path, output, key_dirs, now)


def _refusals(zone: dns.zone.Zone, path: Path, parent: dns.name.Name, child: dns.name.Name) -> None:
    if zone.origin != parent:
        raise DelegationError(f"{path} is the zone {zone.origin}, not {parent}", 2)
    if zone.get_rdataset(child, NS) is not None:
        raise DelegationError(f"{child} is already delegated in {path}; undelegate it first")
    inside = _below(zone, child)
    if inside:
        raise DelegationError(f"{path} holds {inside[0]} at or below {child}; a delegation would hide it: "
                              "move it into the child first")


def check_file_parent(parent: dns.name.Name, child: dns.name.Name, path: Path, key_dirs: list[Path]) -> None:
    """The refusals of ``delegate_file`` that do not need the child, so nothing is made in vain."""
    _refusals(_load_parent(path, parent), path, parent, child)
    _parent_keys(parent, key_dirs)


def undelegate_file(parent: dns.name.Name, child: dns.name.Name, path: Path, *, key_dirs: list[Path],
                    output: Path | None = None, now: float | None = None) -> FileChange:
    """Remove NS, DS, the glue below the cut and the ``_children`` PTR of ``child``."""
    now = time.time() if now is None else now
    zone = _load_parent(path, parent)
    if zone.origin != parent:
        raise DelegationError(f"{path} is the zone {zone.origin}, not {parent}", 2)
    if zone.get_rdataset(child, NS) is None:
        raise DelegationError(f"{child} is not delegated in {path} (no NS at {child})")
    for name in _below(zone, child):  # everything below a cut is glue or occluded (RFC 1034 §4.2.1)
        zone.delete_node(name)
    browse = registry.children_name(parent)
    pointers = zone.get_rdataset(browse, PTR)
    if pointers is not None:
        pointers.discard(_ptr(child))
        if not len(pointers):
            zone.delete_rdataset(browse, PTR)
    return _write_parent(zone, path, output, key_dirs, now)


# --- a live parent (signed UPDATE) -------------------------------------------------------------

def _ask(server: tuple[str, int], name: dns.name.Name, rdtype: int) -> dns.message.Message:
    import dns.query
    query = dns.message.make_query(name, rdtype)
    query.flags &= ~dns.flags.RD
    where = f"{server[0]}:{server[1]}"
    try:
        return dns.query.tcp(query, server[0], port=server[1], timeout=QUERY_TIMEOUT)
    except (OSError, dns.exception.DNSException) as exc:
        raise DelegationError(f"{where}: no answer to {name} {dns.rdatatype.to_text(rdtype)}: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None


def live_delegation(server: tuple[str, int], parent: dns.name.Name, child: dns.name.Name) -> list[dns.name.Name]:
    """The name servers ``server`` (a primary of ``parent``) delegates ``child`` to (empty: none)."""
    where = f"{server[0]}:{server[1]}"
    soa = _ask(server, parent, dns.rdatatype.SOA)
    if not soa.flags & dns.flags.AA or not any(r.name == parent and r.rdtype == dns.rdatatype.SOA for r in soa.answer):
        raise DelegationError(f"{where} is not authoritative for {parent} "
                              f"({dns.rcode.to_text(soa.rcode())}, no SOA with AA)")
    reply = _ask(server, child, NS)
    return sorted({rd.target for section in (reply.answer, reply.authority) for r in section
                   if r.name == child and r.rdtype == NS for rd in r})


def _send(server: tuple[str, int], update) -> None:
    from ..registration import messages, transport
    where = f"{server[0]}:{server[1]}"
    try:
        wire = transport.exchange(update, server, tcp=True)
        answer = messages.parse_answer(wire, update)
    except transport.TransportError as exc:
        raise DelegationError(str(exc)) from None
    except dns.exception.DNSException as exc:
        raise DelegationError(f"{where}: unreadable answer: {exc}") from None
    if not answer.ok:
        meaning = answer.meaning()
        if answer.rcode == dns.rcode.YXRRSET:
            meaning = "the child is already delegated (NS exists): undelegate it first"
        elif answer.rcode == dns.rcode.NXRRSET:
            meaning = "the child is not delegated (no NS)"
        raise DelegationError(f"{where} refused the update: {answer.rcode_text}: {meaning}")


def delegate_live(server: tuple[str, int], key, parent: dns.name.Name, child: ChildZone) -> None:
    """One UPDATE: NS + glue + DS + ``_children`` PTR, on condition that CHILD has no NS yet."""
    from ..registration import messages
    update = messages.delegation_message(parent, child.name, key.key,
                                         ns=[(s.name, s.addresses) for s in child.servers], ds=child.ds, ttl=TTL)
    update.absent(child.name, NS)  # RFC 2136 §2.4.3: a rerun is YXRRSET, not a silent overwrite
    _send(server, update)


def undelegate_live(server: tuple[str, int], key, parent: dns.name.Name, child: dns.name.Name) -> list[dns.name.Name]:
    """One UPDATE removing NS, DS, glue and the PTR, on condition that CHILD has NS."""
    from ..registration import messages
    servers = live_delegation(server, parent, child)
    if not servers:
        raise DelegationError(f"{child} is not delegated by {server[0]}:{server[1]} (no NS at {child})")
    update = messages.undelegation_message(parent, child, key.key, glue=servers)
    update.present(child, NS)  # RFC 2136 §2.4.1
    _send(server, update)
    return servers


__all__ = ["ChildZone", "DelegationError", "FileChange", "NameServer", "ParentLink", "check_file_parent", "check_names",
           "create_child", "delegate_file", "delegate_live", "live_delegation", "parse_server",
           "undelegate_file", "undelegate_live"]
