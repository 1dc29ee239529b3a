"""A signed zone in the lean form ``cid zone verify`` checks: RRsets as canonical wire, no
dnspython object per record.

Checking a signed zone means rebuilding every RRset's canonical form (RFC 4034 §6) and every
RRSIG's signed data (§3.1.8.1). Done through dnspython objects, building those objects (about
three per record of a 100 000-name zone) and ``dns.dnssec.validate``'s generic canonicalisation
cost more than the signatures themselves. Here a zone is read into ``ZoneData``:

* ``nodes``: folded owner (``key_of_name``: presentation form, lower-cased) → ``Node``, in the order
  dnspython's zone keeps its nodes (first appearance);
* a ``Node`` holds the owner as first spelled (the text problems are reported with) and its
  RRsets keyed by (type, covered type), in dnspython's node order (an RRset moves last when a
  record is added to it, as dnspython's reader does);
* an ``RRset`` holds its TTL (the smallest of its records', as dnspython keeps it) and its
  records, canonical RDATA wire → payload: ``Sig`` for RRSIG, ``NsecData`` for NSEC, None for A
  and AAAA, and dnspython's rdata object for every other type (DNSKEY, NSEC3, DS, ...), which
  the checks read fields from.

Two ways in, giving the same ``ZoneData`` (the tests compare them on real and fuzzed files):

* ``from_zone``: any dnspython zone (what ``signer.verify_zone`` is given);
* ``read_text``: the master-file text itself, for plain one-record-per-line files such as
  ``dnssec-signzone -O full``, ``ldns-signzone``, Knot and ``cid zone sign`` write. A, AAAA,
  RRSIG and NSEC in their usual forms are parsed here; every other record, and any of those in
  an unusual form, by ``dns.rdata.from_text`` exactly as dnspython's reader calls it. On anything
  that reader might treat differently (parentheses, quotes, escapes other than RFC 3597's ``\\#``,
  ``$INCLUDE``/``$GENERATE``, a missing TTL without ``$TTL``, classes other than IN, names
  outside the zone, a CNAME beside other data, a second record of a singleton type, no SOA or
  NS at the apex, any rdata dnspython refuses) it returns None and the caller loads the file with
  ``zonefile.load_zone``, which decides what the file means and reports its errors.
"""

from __future__ import annotations

import binascii
import gc
import re
import socket
import struct
from collections.abc import Callable
from typing import Any

import dns.exception
import dns.name
import dns.node
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.util
import dns.ttl
import dns.zone
from dns.rdtypes.rrsigbase import sigtime_to_posixtime

from .. import records  # noqa: F401  (registers CAPS and LOAD with dnspython)

_IN = dns.rdataclass.IN
A, AAAA, NS, SOA, CNAME = (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.NS, dns.rdatatype.SOA,
                           dns.rdatatype.CNAME)
RRSIG, NSEC, DNSKEY = dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.DNSKEY
_NONE = dns.rdatatype.NONE
_TRICKY = re.compile(r'["()\\]|[^\t\x20-\x7e]')
# What a text free of _TRICKY characters is made of (backslashes are counted apart).
_PLAIN_BYTES = bytes(c for c in range(0x20, 0x7f) if chr(c) not in '"()') + b"\t\n"
_PLAIN_NAME = re.compile(r"(?:[A-Za-z0-9_*-]{1,63}\.)*[A-Za-z0-9_*-]{1,63}\.?")
_CLASS_WORDS = frozenset({"IN", "CH", "CHAOS", "HS", "HESIOD", "NONE", "ANY", "RESERVED0"})
_UINT32 = 0xFFFFFFFF
PROGRESS_LINES = 1 << 16


class SigHead:
    """The fields of an RRSIG before its signature (they repeat across a zone's RRSIGs, so the
    reader shares one per distinct text), with the signer's canonical wire and ``wire``: the
    RDATA up to the signature, as RFC 4034 §3.1.8.1 signs it (signer lower-cased)."""

    __slots__ = ("covered", "algorithm", "labels", "original_ttl", "expiration", "inception", "key_tag",
                 "signer", "signer_absolute", "wire")

    def __init__(self, covered: int, algorithm: int, labels: int, original_ttl: int, expiration: int,
                 inception: int, key_tag: int, signer: bytes, signer_absolute: bool):
        self.covered = covered
        self.algorithm = algorithm
        self.labels = labels
        self.original_ttl = original_ttl
        self.expiration = expiration
        self.inception = inception
        self.key_tag = key_tag
        self.signer = signer  # lower-cased wire (made absolute with the origin when it is relative)
        self.signer_absolute = signer_absolute
        self.wire = struct.pack("!HBBIIIH", covered, algorithm, labels, original_ttl, expiration, inception,
                                key_tag) + signer


Sig = tuple  # (SigHead, signature bytes): one RRSIG record


class NsecData:
    """One NSEC: the next name as dnspython prints it and folded for comparison, and its types."""

    __slots__ = ("next_text", "next_folded", "types")

    def __init__(self, next_text: str, next_folded: bytes, types: frozenset[int]):
        self.next_text = next_text
        self.next_folded = next_folded
        self.types = types


class RRset:
    __slots__ = ("ttl", "items")

    def __init__(self, ttl: int):
        self.ttl = ttl
        self.items: dict[bytes, Any] = {}  # canonical RDATA wire -> payload


class Node:
    __slots__ = ("text", "labels", "sets")

    def __init__(self, text: str, labels: tuple[bytes, ...]):
        self.text = text  # the owner as first spelled, absolute, as dnspython prints it
        self.labels = labels  # as spelled, root (b"") last
        self.sets: dict[tuple[int, int], RRset] = {}


class ZoneData:
    """A zone as ``verify_parallel`` checks it (module text)."""

    def __init__(self, origin: dns.name.Name, rdclass: int = _IN):
        self.origin = origin
        self.rdclass = rdclass
        self.nodes: dict[bytes, Node] = {}
        self.zone: dns.zone.Zone | None = None  # the dnspython zone, when made from one
        self.plain = False  # every owner a plain name (read_text): folded owners split into labels

        self.zone_keys: dict[bytes, dns.name.Name] = {}  # folded owner -> the zone's node key (from_zone)

    @property
    def origin_folded(self) -> bytes:
        return key_of_name(self.origin)

    def rrset(self, owner: bytes, rdtype: int, covers: int = _NONE) -> RRset | None:
        node = self.nodes.get(owner)
        return None if node is None else node.sets.get((rdtype, covers))

    def records(self) -> int:
        return sum(len(rs.items) for node in self.nodes.values() for rs in node.sets.values())


def folded(labels: tuple[bytes, ...]) -> bytes:
    """The folded form of a plain name (letters, digits, ``-``, ``_``, ``*`` labels), as
    ``key_of_name`` gives it for any name."""
    return b".".join(labels).lower() or b"."


def key_of_name(name: dns.name.Name) -> bytes:
    """Owner names as ``ZoneData.nodes`` keys them: the presentation form lower-cased (escapes keep
    it unambiguous; only ASCII letters fold, as DNS names compare)."""
    return name.to_text().lower().encode("ascii")


def name_wire(labels: tuple[bytes, ...] | list[bytes]) -> bytes:
    return b"".join([bytes((len(label),)) + label for label in labels])


_BITMAPS: dict[tuple[int, ...], bytes] = {}


def bitmap_wire(types: tuple[int, ...]) -> bytes:
    wire = _BITMAPS.get(types)
    if wire is None:
        windows = dns.rdtypes.util.Bitmap.from_rdtypes(list(types)).windows
        wire = b"".join(bytes((w, len(b))) + b for w, b in windows)
        if len(_BITMAPS) < 4096:
            _BITMAPS[types] = wire
    return wire


def bitmap_types(windows) -> frozenset[int]:
    return frozenset(window * 256 + i * 8 + bit for window, bits in windows
                     for i, byte in enumerate(bits) if byte for bit in range(8) if byte & (0x80 >> bit))


# --- dnspython rdata -> (canonical wire, payload) -------------------------------------------------


def convert(rd: dns.rdata.Rdata, origin: dns.name.Name | None) -> tuple[bytes, Any]:
    """The canonical wire of ``rd`` (``to_digestable(origin)``, as dns.dnssec signs it) and its
    payload (module text). ``origin`` makes relative names absolute (a relativized zone)."""
    rdtype = rd.rdtype
    if rdtype == A:
        return socket.inet_pton(socket.AF_INET, rd.address), None
    if rdtype == AAAA:
        return socket.inet_pton(socket.AF_INET6, rd.address), None
    wire = rd.to_digestable(origin)
    if rdtype == RRSIG:
        signer = rd.signer
        absolute = signer.is_absolute()
        # dns.dnssec signs the signer as to_digestable(signer made absolute): lower-cased.
        full = signer if absolute else signer.derelativize(origin) if origin is not None else signer
        signer_wire = full.to_digestable() if full.is_absolute() else b""
        head = SigHead(rd.type_covered, rd.algorithm, rd.labels, rd.original_ttl, rd.expiration, rd.inception,
                       rd.key_tag, signer_wire, absolute)
        return wire, (head, rd.signature)
    if rdtype == NSEC:
        following = rd.next.derelativize(origin) if origin is not None else rd.next
        return wire, NsecData(str(rd.next), key_of_name(following), bitmap_types(rd.windows))
    return wire, rd


def from_zone(zone: dns.zone.Zone) -> ZoneData:
    """The ``ZoneData`` of a dnspython zone (relativized or not)."""
    origin = zone.origin
    data = ZoneData(origin, zone.rdclass)
    data.zone = zone
    nodes = data.nodes
    for key, node in zone.nodes.items():
        name = key.derelativize(origin) if zone.relativize else key
        labels = name.labels
        text = name.to_text()
        entry = Node(text, labels)
        for rds in node.rdatasets:
            rs = RRset(rds.ttl)
            for rd in rds:
                wire, payload = convert(rd, origin)
                rs.items.setdefault(wire, payload)
            entry.sets[(rds.rdtype, rds.covers)] = rs
        owner = text.lower().encode("ascii")
        nodes[owner] = entry
        data.zone_keys[owner] = key
    return data


# --- master-file text -> ZoneData -------------------------------------------------------------------


class _GiveUp(Exception):
    """Not a file this reader handles: load it with zonefile.load_zone."""


def read_text(text: str, origin: dns.name.Name | None = None,
              progress: Callable[[int], Any] | None = None) -> ZoneData | None:
    """The ``ZoneData`` of a master file's text, or None: load it with ``zonefile.load_zone``
    (module text). ``origin`` defaults, as load_zone's does, to the file's first ``$ORIGIN`` or
    the owner of its first SOA record (here: only when that comes before any other record).
    ``progress(n)`` is called as each ``n`` more lines are read."""
    collecting = gc.isenabled()
    gc.disable()  # millions of small acyclic objects: collecting them repeatedly costs a third more
    try:
        return _TextReader(origin).read(text, progress)
    except (_GiveUp, dns.exception.DNSException, ValueError, KeyError, TypeError, IndexError,
            binascii.Error, OverflowError, UnicodeError):
        return None
    finally:
        if collecting:
            gc.enable()


class _TextReader:
    def __init__(self, origin: dns.name.Name | None):
        self.zone_origin = origin
        self.origin = origin  # $ORIGIN
        self.origin_folded = folded(origin.labels) if origin is not None else b"."
        self.default_ttl: int | None = None
        self.data: ZoneData | None = None
        self.owners: dict[str, tuple[bytes, Node]] = {}  # owner token -> (folded, node), per $ORIGIN
        self.types: dict[str, int] = {}
        self.times: dict[str, int] = {}
        self.parsed: dict[tuple[int, str], tuple[bytes, Any]] = {}  # other rdata, by type and text
        self.names: dict[str, tuple[tuple[bytes, ...], bytes]] = {}  # name token -> (labels, folded)
        self.heads: dict[tuple[str, ...], SigHead] = {}  # RRSIG fields before the signature, as text
        self.bitmaps: dict[str, tuple[bytes, frozenset[int]]] = {}  # NSEC type list text -> bitmap
        self.cnames: list[Node] = []
        self.last: tuple[bytes, Node] | None = None
        self.zone_folded = b""
        self.zone_suffix = b""
        if origin is not None:
            self._start(origin)

    # -- names and types

    def _labels(self, token: str) -> tuple[tuple[bytes, ...], bytes]:
        """(labels as spelled, folded) of a plain name token, absolute."""
        found = self.names.get(token)
        if found is not None:
            return found
        if token == "@":
            if self.origin is None:
                raise _GiveUp
            labels = self.origin.labels
        elif _PLAIN_NAME.fullmatch(token):
            raw = token.encode("ascii")
            if raw[-1:] != b".":
                if self.origin is None:
                    raise _GiveUp
                labels = tuple(raw.split(b".")) + self.origin.labels
                key = raw.lower() + b"." + self.origin_folded if self.origin_folded != b"." else raw.lower() + b"."
            else:
                labels = tuple(raw.split(b"."))
                key = raw.lower()
            # Wire length: the labels and a length octet each (the dotted text and one more).
            if len(key) + 1 > 255:
                raise _GiveUp  # dnspython: name too long
            found = (labels, key)
            self.names[token] = found
            return found
        else:
            raise _GiveUp
        found = (labels, folded(labels))
        self.names[token] = found
        return found

    def _type(self, token: str) -> int:
        rdtype = self.types.get(token)
        if rdtype is None:
            rdtype = self.types[token] = dns.rdatatype.from_text(token)
        return rdtype

    def _sigtime(self, token: str) -> int:
        value = self.times.get(token)
        if value is None:
            value = sigtime_to_posixtime(token)
            if not 0 <= value <= _UINT32:
                raise _GiveUp
            if len(self.times) < 4096:
                self.times[token] = value
        return value

    # -- the file

    def read(self, text: str, progress: Callable[[int], Any] | None = None) -> ZoneData:
        # One search over the whole text usually shows that no line needs the per-line check.
        try:
            check_lines = bool(text.encode("ascii").translate(None, _PLAIN_BYTES)) or text.count("\\") != (
                text.count(" \\# ") + text.count("\t\\# "))
        except UnicodeEncodeError:
            check_lines = True
        record = self._record
        lines = text.split("\n")
        step = PROGRESS_LINES if progress is not None else len(lines) + 1
        for number, line in enumerate(lines, 1):
            if not number % step:
                progress(step)  # type: ignore[misc]
            if not line or line[0] == ";":
                continue
            if check_lines and '"' in line:
                self._quoted(line)
                continue
            if ";" in line:
                line = line[:line.index(";")]
            if line.isspace() or not line:
                continue
            if check_lines and _TRICKY.search(line) and not self._generic_only(line):
                raise _GiveUp
            if line[0] == "$":
                self._directive(line.split())
            else:
                record(line)
        if progress is not None:
            progress(len(lines) % step)
        data = self.data
        if data is None:
            raise _GiveUp
        apex = data.nodes.get(self.zone_folded)
        if apex is None or (SOA, _NONE) not in apex.sets or (NS, _NONE) not in apex.sets:
            raise _GiveUp  # load_zone reports what is missing
        for node in self.cnames:
            kinds = {dns.node.NodeKind.classify(rdtype, covers) for rdtype, covers in node.sets}
            if dns.node.NodeKind.CNAME in kinds and dns.node.NodeKind.REGULAR in kinds:
                raise _GiveUp
        return data

    def _quoted(self, line: str) -> None:
        """A record with quoted strings (TXT, ...): the fields before the first quote are plain,
        and dnspython parses the rest of the line (quotes, and a comment after them)."""
        quote = line.index('"')
        head = line[:quote]
        if ";" in head or _TRICKY.search(line.replace('"', "")) or line[0] == "$":
            raise _GiveUp
        self._record(line, head)

    @staticmethod
    def _generic_only(line: str) -> bool:
        # RFC 3597's "\#" is the one backslash allowed: peers write CAPS/LOAD that way.
        rest = line.replace(" \\# ", " ").replace("\t\\# ", " ")
        return not _TRICKY.search(rest)

    def _directive(self, fields: list[str]) -> None:
        word = fields[0].upper()
        if word == "$TTL" and len(fields) == 2:
            self.default_ttl = dns.ttl.from_text(fields[1])
        elif word == "$ORIGIN" and len(fields) == 2:
            saved = self.origin
            self.origin = None
            self.names.clear()
            labels, _ = self._labels(fields[1])
            if not fields[1].endswith("."):
                self.origin = saved
                raise _GiveUp
            self.origin = dns.name.Name(labels)
            self.origin_folded = folded(labels)
            self.owners.clear()
            self.heads.clear()
            self.parsed.clear()  # relative names in rdata now mean something else
            if self.zone_origin is None:
                self._start(self.origin)
        else:
            raise _GiveUp

    def _start(self, origin: dns.name.Name) -> None:
        if not all(_PLAIN_NAME.fullmatch(label.decode("ascii", "replace")) for label in origin.labels[:-1]):
            raise _GiveUp
        self.zone_origin = origin
        self.data = ZoneData(origin)
        self.data.plain = True
        self.zone_folded = folded(origin.labels)
        self.zone_suffix = b"" if origin == dns.name.root else b"." + self.zone_folded

    def _owner(self, token: str) -> tuple[bytes, Node]:
        found = self.owners.get(token)
        if found is not None:
            return found
        labels, key = self._labels(token)
        if key != self.zone_folded and not key.endswith(self.zone_suffix):
            raise _GiveUp  # outside the zone
        assert self.data is not None
        node = self.data.nodes.get(key)
        if node is None:
            node = self.data.nodes[key] = Node(b".".join(labels).decode("ascii") or ".", labels)
        found = (key, node)
        self.owners[token] = found
        return found

    def _record(self, line: str, head: str | None = None) -> None:
        fields = line.split() if head is None else head.split()
        if self.data is None:
            # No $ORIGIN yet: the origin is the owner of the first record, which must be an SOA.
            if line[0].isspace() or len(fields) < 2 or not fields[0].endswith("."):
                raise _GiveUp
            if "SOA" not in [f.upper() for f in fields[1:4]]:
                raise _GiveUp
            self._start(dns.name.Name(self._labels(fields[0])[0]))
        if line[0] == " " or line[0] == "\t":
            if self.last is None:
                raise _GiveUp
            at = 0
        else:
            found = self.owners.get(fields[0])
            self.last = found if found is not None else self._owner(fields[0])
            at = 1
        key, node = self.last
        # The usual layout first: owner TTL IN TYPE.
        token = fields[at]
        if token.isdigit() and fields[at + 1] == "IN":
            ttl = int(token)
            if ttl > dns.ttl.MAX_TTL:
                raise _GiveUp
            at += 2
        elif token == "IN" and self.default_ttl is not None and not fields[at + 1][0].isdigit():
            ttl = self.default_ttl
            at += 1
        else:
            ttl, at = self._ttl_class(fields, at)
        rdtype = self.types.get(fields[at])
        if rdtype is None:
            rdtype = self._type(fields[at])
        rest = fields[at + 1:]
        if head is not None:
            # The rdata text: the line after the type, found token by token (only blanks between).
            position = 0
            for token in fields[:at + 1]:
                position = line.index(token, position) + len(token)
            wire, payload = self._dnspython(rdtype, line[position:])
            covers = payload[0].covered if rdtype == RRSIG else _NONE
            self._add(node, key, rdtype, covers, ttl, wire, payload)
            return
        if rdtype == RRSIG:
            found = self._rrsig(rest)
            if found is None:
                found = self._dnspython(rdtype, " ".join(rest))
            wire, payload = found
            covers = payload[0].covered
        else:
            wire, payload = self._rdata(rdtype, rest)
            covers = _NONE
        self._add(node, key, rdtype, covers, ttl, wire, payload)

    def _add(self, node: Node, key: bytes, rdtype: int, covers: int, ttl: int, wire: bytes, payload: Any) -> None:
        if rdtype == SOA and key != self.zone_folded:
            raise _GiveUp
        if rdtype == CNAME:
            self.cnames.append(node)
        sets = node.sets
        slot = (rdtype, covers)
        rs = sets.get(slot)
        if rs is None:
            rs = sets[slot] = RRset(ttl)
            rs.items[wire] = payload
            if rdtype != CNAME and (CNAME, _NONE) in sets:
                self.cnames.append(node)
            return
        items = rs.items
        if wire not in items:
            if dns.rdatatype.is_singleton(rdtype):
                raise _GiveUp
            items[wire] = payload
        if ttl < rs.ttl:
            rs.ttl = ttl
        if next(reversed(sets)) != slot:
            # dnspython's reader replaces the RRset it adds to, which moves it last in the node.
            del sets[slot]
            sets[slot] = rs

    def _ttl_class(self, fields: list[str], at: int) -> tuple[int, int]:
        """[ttl] [class] or [class] [ttl], as dnspython's reader accepts them: (TTL, index of the type)."""
        ttl: int | None = None
        seen_class = False
        for _ in range(2):
            token = fields[at]
            if token[0].isdigit():
                if ttl is not None:
                    raise _GiveUp
                ttl = int(token) if token.isdigit() else dns.ttl.from_text(token)
                if ttl > dns.ttl.MAX_TTL:
                    raise _GiveUp
            elif token.upper() in _CLASS_WORDS or token.upper().startswith("CLASS"):
                if token.upper() != "IN" or seen_class:
                    raise _GiveUp
                seen_class = True
            else:
                break
            at += 1
        if ttl is None:
            ttl = self.default_ttl
            if ttl is None:
                raise _GiveUp  # dnspython's last-TTL and SOA-minimum rules: leave them to it
        return ttl, at

    # -- rdata

    def _rdata(self, rdtype: int, rest: list[str]) -> tuple[bytes, Any]:
        if rdtype == A and len(rest) == 1:
            address = rest[0]
            try:
                wire = socket.inet_pton(socket.AF_INET, address)
            except OSError:
                wire = b""
            if wire and socket.inet_ntop(socket.AF_INET, wire) == address:
                return wire, None
        elif rdtype == AAAA and len(rest) == 1:
            try:
                wire = socket.inet_pton(socket.AF_INET6, rest[0])
            except OSError:
                wire = b""
            if wire and socket.inet_ntop(socket.AF_INET6, wire) == rest[0]:
                return wire, None
        elif rdtype == NSEC and rest:
            found = self._nsec(rest)
            if found is not None:
                return found
        return self._dnspython(rdtype, " ".join(rest))

    def _dnspython(self, rdtype: int, text: str) -> tuple[bytes, Any]:
        """As dnspython's reader parses it (zonefile.load_zone's fast reader calls the same)."""
        key = (rdtype, text)
        found = self.parsed.get(key)
        if found is None:
            rd = dns.rdata.from_text(_IN, rdtype, text, self.origin, False, self.zone_origin)
            found = convert(rd, self.zone_origin)
            if len(self.parsed) < 65536:
                self.parsed[key] = found
        return found

    def _rrsig(self, f: list[str]) -> tuple[bytes, Sig] | None:
        if len(f) < 9:
            return None
        key = (f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7])
        head = self.heads.get(key)
        if head is None:
            if not (f[1].isdigit() and f[2].isdigit() and f[3].isdigit() and f[6].isdigit()):
                return None
            algorithm, labels, original_ttl, key_tag = int(f[1]), int(f[2]), int(f[3]), int(f[6])
            if algorithm > 255 or labels > 255 or original_ttl > dns.ttl.MAX_TTL or key_tag > 65535:
                return None
            covered = self._type(f[0])
            expiration, inception = self._sigtime(f[4]), self._sigtime(f[5])
            signer_labels, _ = self._labels(f[7])
            # RRSIG's canonical form lower-cases the signer (RFC 4034 §6.2).
            head = SigHead(covered, algorithm, labels, original_ttl, expiration, inception, key_tag,
                           name_wire(signer_labels).lower(), True)
            if len(self.heads) < 65536:
                self.heads[key] = head
        b64 = "".join(f[8:]) if len(f) > 9 else f[8]
        try:
            signature = binascii.a2b_base64(b64, strict_mode=True)  # = base64.b64decode(validate=True)
        except binascii.Error:
            return None
        return head.wire + signature, (head, signature)

    def _nsec(self, f: list[str]) -> tuple[bytes, NsecData] | None:
        labels, key = self._labels(f[0])
        spec = " ".join(f[1:])
        found = self.bitmaps.get(spec)
        if found is None:
            types = []
            for token in f[1:]:
                rdtype = self._type(token)
                if rdtype == 0:
                    return None
                types.append(rdtype)
            unique = tuple(sorted(set(types)))
            found = (bitmap_wire(unique), frozenset(unique))
            if len(self.bitmaps) < 4096:
                self.bitmaps[spec] = found
        text = b".".join(labels).decode("ascii") or "."
        # RFC 6840 §5.1: the next name keeps its case in the canonical form.
        return name_wire(labels) + found[0], NsecData(text, key, found[1])
