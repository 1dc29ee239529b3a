"""A fast master-file (RFC 1035 §5) reader that feeds records straight into the compact store.

It reads what signers write — ``dnssec-signzone`` in its default multi-line layout (parentheses,
comments inside them, owners left out) and with ``-O full``, ``ldns-signzone``, Knot's zone
dumps (no class, signatures and the NSEC chain in sections of their own), ``cid zone sign`` —
and every other file dnspython's reader reads: ``$ORIGIN``, ``$TTL``, ``$INCLUDE``, TTL and
class in either order with units, quoted strings and escapes, RFC 3597 ``\\#`` data. The TTL
rules are dnspython's (RFC 1035 §5.1, RFC 2308 §4: a stated TTL carries over until ``$TTL``;
without ``$TTL`` the SOA MINIMUM is the default). RDATA of the common types is converted by
``rdatawire``; any other, and any the converters decline, by ``dns.rdata.from_text`` (whose
error text is then reported). ``$GENERATE`` is left to dnspython's reader (``NeedsDnspython``).

Records go to a ``Sink`` (``zoneload`` adds them to a ``zonedb.ZoneBuilder`` and checks them);
errors raise ``MasterFileError`` with ``<path>:<line>: <message>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tokenizer

from .. import records
from ..records import capsmap
from . import rdatawire, wirename

MAX_INCLUDE_DEPTH = 16
_IN = int(dns.rdataclass.IN)
_SOA = int(dns.rdatatype.SOA)
_RRSIG = int(dns.rdatatype.RRSIG)
_PLAIN_NAME = re.compile(rb"(?:[A-Za-z0-9_*-]{1,63}\.)*[A-Za-z0-9_*-]{1,63}\.?|\.")
_CLASS_WORDS = frozenset({b"IN", b"CH", b"CHAOS", b"HS", b"HESIOD", b"NONE", b"ANY"})
_GENERIC = b"\\#"


class MasterFileError(Exception):
    """str() is ``<path>:<line>: <message>``."""


class NeedsDnspython(Exception):
    """The file uses something only dnspython's reader implements ($GENERATE)."""


# (key, owner wire, type, covered type, ttl, rdata wire, path, line) for every record
Sink = Callable[[bytes, bytes, int, int, int, bytes, str, int], None]


class _State:
    __slots__ = ("origin", "origin_wire", "last_key", "last_wire", "last_ttl", "default_ttl",
                 "default_from_soa", "names")

    def __init__(self, origin: dns.name.Name):
        self.set_origin(origin)
        self.last_key: bytes | None = wirename.key_of(origin)
        self.last_wire: bytes | None = origin.to_wire()
        self.last_ttl: int | None = None
        self.default_ttl: int | None = None
        self.default_from_soa = False

    def set_origin(self, origin: dns.name.Name) -> None:
        self.origin = origin
        self.origin_wire = origin.to_wire()
        self.names: dict[bytes, tuple[bytes, bytes]] = {}

    def implicit_ttl(self) -> int | None:
        if self.last_ttl is not None and (self.default_ttl is None or self.default_from_soa):
            return self.last_ttl
        return self.default_ttl


class _Lines:
    """The lines of an open file without their line ends, blank ones skipped, numbered; checked
    to be UTF-8 (dnspython's reader requires it) only where they are not plain ASCII."""

    __slots__ = ("_handle", "_path", "number")

    def __init__(self, handle, path: str):
        self._handle = handle
        self._path = path
        self.number = 0

    def __iter__(self):
        path = self._path
        for line in self._handle:
            self.number += 1
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            if not line.isascii():
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise MasterFileError(f"{path}:{self.number}: not UTF-8 text (byte {exc.start} "
                                          "of the line)") from None
            yield line

    def next(self) -> bytes | None:
        """The next line (for records continued in parentheses), or None at the end."""
        line = self._handle.readline()
        if not line:
            return None
        self.number += 1
        return line.rstrip(b"\r\n")


class Reader:
    """Reads one master file (and what it includes) into ``sink``."""

    def __init__(self, origin: dns.name.Name, sink: Sink, *,
                 progress: Callable[[int], None] | None = None):
        self.zone_origin = origin
        self.sink = sink
        self.progress = progress
        self.lines_read = 0

    def read(self, path: str | Path) -> None:
        self._read_file(str(path), _State(self.zone_origin), 0)

    # --- one file -------------------------------------------------------------------------------

    def _read_file(self, path: str, state: _State, depth: int) -> None:
        try:
            handle = open(path, "rb")
        except OSError as exc:
            raise MasterFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
        with handle:
            self._read_lines(handle, path, state, depth)

    def _read_lines(self, handle, path: str, state: _State, depth: int) -> None:
        lines = _Lines(handle, path)
        sink = self.sink
        rdtype_of = rdatawire.rdtype_of
        to_wire = rdatawire.to_wire
        progress = self.progress
        ttls: dict[bytes, int] = {}
        types: dict[bytes, int] = {}
        last_token = None
        name_fn = self._name_fn(state)
        for line in lines:
            if line[0] == 59:  # ';'
                continue
            lineno = lines.number
            if progress is not None and not lineno & 0x3FFF:
                progress(self.lines_read + lineno)
            if b'"' in line or (b"\\" in line and line.count(b"\\") != line.count(_GENERIC)):
                text = self._tricky_record(lines, line, path)
                if text is not None:
                    self._dnspython_record(text, state, path, lineno, depth)
                    last_token = None
                continue
            if b";" in line:
                line = line[:line.index(b";")]
            if b"(" in line or b")" in line:
                line = self._join_parens(lines, line, path, lineno)
            fields = line.split()
            if not fields:
                continue
            first = line[0]
            if first == 36:  # '$'
                self._directive(fields, state, path, lineno, depth)
                name_fn = self._name_fn(state)
                last_token = None
                continue
            # owner
            if first != 32 and first != 9:
                token = fields[0]
                if token != last_token:
                    state.last_key, state.last_wire = self._owner(token, state, path, lineno)
                    last_token = token
                at = 1
            else:
                if state.last_key is None:
                    raise MasterFileError(f"{path}:{lineno}: the last used name is undefined")
                at = 0
            key, wire = state.last_key, state.last_wire
            # [ttl] [class] | [class] [ttl], then the type
            ttl = None
            n = len(fields)
            if at >= n:
                continue  # leading whitespace then nothing (dnspython treats it as blank)
            token = fields[at]
            if 48 <= token[0] <= 57:
                ttl = ttls.get(token)
                if ttl is None:
                    ttl = ttls[token] = self._ttl(token, path, lineno)
                state.last_ttl = ttl
                at += 1
                if at < n:
                    token = fields[at]
                    if token == b"IN":
                        at += 1
                    elif token.upper() in _CLASS_WORDS or token[:5].upper() == b"CLASS":
                        self._class(token, path, lineno)
                        at += 1
            elif token == b"IN" or token.upper() in _CLASS_WORDS or token[:5].upper() == b"CLASS":
                self._class(token, path, lineno)
                at += 1
                if at < n and 48 <= fields[at][0] <= 57:
                    ttl = self._ttl(fields[at], path, lineno)
                    state.last_ttl = ttl
                    at += 1
            if at >= n:
                raise MasterFileError(f"{path}:{lineno}: unexpected end of input")
            rdtype = types.get(fields[at])
            if rdtype is None:
                rdtype = rdtype_of(fields[at])
                if rdtype is None:
                    raise MasterFileError(f"{path}:{lineno}: unknown type {fields[at].decode(errors='replace')}")
                types[fields[at]] = rdtype
            rest = fields[at + 1:]
            if rest and rest[0] == _GENERIC:
                try:
                    rdata = rdatawire.generic(rest[1:])
                except ValueError:
                    rdata = None
                if rdata is not None and not _generic_ok(rdtype, rdata):
                    rdata = None
            else:
                rdata = to_wire(rdtype, rest, name_fn)
            if rdata is None:
                rdata = self._dnspython_rdata(rdtype, b" ".join(rest), state, path, lineno)
            if ttl is None:
                ttl = state.implicit_ttl()
                if rdtype == _SOA and state.default_ttl is None:
                    # dnspython's pre-RFC 2308 rule: no $TTL yet, so SOA MINIMUM is the default.
                    state.default_ttl = int.from_bytes(rdata[-4:], "big")
                    state.default_from_soa = True
                    ttl = state.implicit_ttl()
                if ttl is None:
                    raise MasterFileError(f"{path}:{lineno}: missing default TTL value")
            elif rdtype == _SOA and state.default_ttl is None:
                state.default_ttl = int.from_bytes(rdata[-4:], "big")
                state.default_from_soa = True
            sink(key, wire, rdtype, (rdata[0] << 8) | rdata[1] if rdtype == _RRSIG else 0, ttl, rdata,
                 path, lineno)
        self.lines_read += lines.number

    def _name_fn(self, state: _State) -> Callable[[bytes], bytes]:
        """Name tokens inside RDATA → wire form, remembered (signer names, NS targets repeat)."""
        cache: dict[bytes, bytes] = {}
        convert = self._rdata_name

        def name(token: bytes) -> bytes:
            found = cache.get(token)
            if found is None:
                found = convert(token, state)
                if len(cache) > 4096:
                    cache.clear()
                if token[-1] == 46 or len(token) < 16:  # signer names, NS targets: they repeat
                    cache[token] = found
            return found
        return name

    # --- pieces -----------------------------------------------------------------------------------

    @staticmethod
    def _join_parens(lines: "_Lines", line: bytes, path: str, lineno: int) -> bytes:
        depth = line.count(b"(") - line.count(b")")
        parts = [line.replace(b"(", b" ").replace(b")", b" ")]
        while depth > 0:
            more = lines.next()
            if more is None:
                raise MasterFileError(f"{path}:{lineno}: unbalanced parentheses")
            if b'"' in more or b"\\" in more.replace(_GENERIC, b""):
                raise NeedsDnspython  # quotes or escapes inside a multi-line record: rare
            if b";" in more:
                more = more[:more.index(b";")]
            depth += more.count(b"(") - more.count(b")")
            parts.append(more.replace(b"(", b" ").replace(b")", b" "))
        if depth < 0:
            raise MasterFileError(f"{path}:{lineno}: unbalanced parentheses")
        return b" ".join(parts)

    @staticmethod
    def _tricky_record(lines: "_Lines", line: bytes | None, path: str) -> bytes | None:
        """A record with quotes or escapes: its text (comments removed, parentheses kept for
        dnspython's tokenizer), reading further lines while parentheses are open."""
        out = bytearray()
        depth = 0
        start = lines.number
        while True:
            if line is None:
                if depth:
                    raise MasterFileError(f"{path}:{start}: unbalanced parentheses")
                break
            quoted = escaped = False
            for pos, c in enumerate(line):
                if escaped:
                    escaped = False
                elif c == 92:  # backslash
                    escaped = True
                elif c == 34:  # quote
                    quoted = not quoted
                elif not quoted:
                    if c == 59:  # ';' starts a comment
                        line = line[:pos]
                        break
                    if c == 40:
                        depth += 1
                    elif c == 41:
                        depth -= 1
            out += line + b" "
            if depth <= 0:
                break
            line = lines.next()
        text = bytes(out)
        return text if text.strip() else None

    def _owner(self, token: bytes, state: _State, path: str, lineno: int) -> tuple[bytes, bytes]:
        if token == b"@":
            return wirename.key_of(state.origin), state.origin_wire
        if _PLAIN_NAME.fullmatch(token):
            if token == b".":
                return b"", b"\x00"
            if token[-1] == 46:  # absolute
                labels = token[:-1].split(b".")
                wire = b"".join([bytes((len(label),)) + label for label in labels]) + b"\x00"
                key = wirename.key_of_labels(labels)
            else:
                labels = token.split(b".")
                wire = b"".join([bytes((len(label),)) + label for label in labels]) + state.origin_wire
                key = wirename.key_of_labels([*labels, *state.origin.labels])
            if len(wire) > 255:
                raise MasterFileError(f"{path}:{lineno}: the DNS name is too long")
            return key, wire
        try:
            name = dns.name.from_text(token.decode("utf-8"), state.origin)
        except (dns.exception.DNSException, UnicodeError) as exc:
            raise MasterFileError(f"{path}:{lineno}: {exc}") from None
        return wirename.key_of_labels(name.labels), name.to_wire()

    def _rdata_name(self, token: bytes, state: _State) -> bytes:
        if token == b"@":
            return state.origin_wire
        if not _PLAIN_NAME.fullmatch(token):
            raise ValueError(token)
        if token == b".":
            return b"\x00"
        if token[-1] == 46:  # absolute
            wire = b"".join([bytes((len(label),)) + label for label in token[:-1].split(b".")]) + b"\x00"
        else:
            wire = b"".join([bytes((len(label),)) + label for label in token.split(b".")]) + state.origin_wire
        if len(wire) > 255:
            raise ValueError(token)
        return wire

    @staticmethod
    def _ttl(token: bytes, path: str, lineno: int) -> int:
        try:
            return rdatawire.ttl_of(token)
        except ValueError:
            raise MasterFileError(f"{path}:{lineno}: bad TTL {token.decode(errors='replace')}") from None

    @staticmethod
    def _class(token: bytes, path: str, lineno: int) -> None:
        try:
            rdclass = dns.rdataclass.from_text(token.decode("ascii"))
        except (dns.exception.DNSException, UnicodeDecodeError, ValueError):
            raise MasterFileError(f"{path}:{lineno}: unknown class {token.decode(errors='replace')}") from None
        if rdclass != _IN:
            raise MasterFileError(f"{path}:{lineno}: RR class is not zone's class")

    def _dnspython_rdata(self, rdtype: int, text: bytes, state: _State, path: str, lineno: int) -> bytes:
        try:
            rd = dns.rdata.from_text(_IN, rdtype, text.decode("utf-8"), state.origin, False)
            return rd.to_wire(origin=state.origin)
        except Exception as exc:  # noqa: BLE001 - dnspython's verdict on the record, whatever it raised
            message = str(exc) or type(exc).__name__
            raise MasterFileError(f"{path}:{lineno}: {message}") from None

    def _dnspython_record(self, text: bytes, state: _State, path: str, lineno: int, depth: int) -> None:
        """A whole record (owner, TTL, class, type, rdata) with quotes or escapes."""
        tok = dns.tokenizer.Tokenizer(text.decode("utf-8"), path)
        try:
            token = tok.get(want_leading=True)
            if token.is_identifier() and token.value.startswith("$"):
                fields = text.split()
                self._directive(fields, state, path, lineno, depth)
                return
            if not token.is_whitespace():
                name = tok.as_name(token, state.origin)
                state.last_key, state.last_wire = wirename.key_of_labels(name.labels), name.to_wire()
            elif state.last_key is None:
                raise MasterFileError(f"{path}:{lineno}: the last used name is undefined")
            token = tok.get()
            ttl = None
            rdclass_seen = False
            for _ in range(2):
                if token.is_identifier() and token.value[:1].isdigit() and ttl is None:
                    ttl = self._ttl(token.value.encode(), path, lineno)
                    state.last_ttl = ttl
                    token = tok.get()
                elif token.is_identifier() and not rdclass_seen and (
                        token.value.upper().encode() in _CLASS_WORDS or token.value[:5].upper() == "CLASS"):
                    self._class(token.value.encode(), path, lineno)
                    rdclass_seen = True
                    token = tok.get()
            rdtype = rdatawire.rdtype_of(token.value.encode())
            if rdtype is None:
                raise MasterFileError(f"{path}:{lineno}: unknown type {token.value}")
            rd = dns.rdata.from_text(_IN, rdtype, tok, state.origin, False)
            rdata = rd.to_wire(origin=state.origin)
        except MasterFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - dnspython's verdict on the record
            raise MasterFileError(f"{path}:{lineno}: {exc or type(exc).__name__}") from None
        if ttl is None:
            ttl = state.implicit_ttl()
        if rdtype == _SOA and state.default_ttl is None:
            state.default_ttl = int.from_bytes(rdata[-4:], "big")
            state.default_from_soa = True
            if ttl is None:
                ttl = state.implicit_ttl()
        if ttl is None:
            raise MasterFileError(f"{path}:{lineno}: missing default TTL value")
        covers = int.from_bytes(rdata[:2], "big") if rdtype == _RRSIG else 0
        self.sink(state.last_key, state.last_wire, rdtype, covers, ttl, rdata, path, lineno)

    def _directive(self, fields: list[bytes], state: _State, path: str, lineno: int, depth: int) -> None:
        word = fields[0].upper()
        if word == b"$TTL" and len(fields) == 2:
            state.default_ttl = self._ttl(fields[1], path, lineno)
            state.default_from_soa = False
        elif word == b"$ORIGIN" and len(fields) == 2:
            try:
                origin = dns.name.from_text(fields[1].decode("utf-8"), state.origin)
            except (dns.exception.DNSException, UnicodeError) as exc:
                raise MasterFileError(f"{path}:{lineno}: {exc}") from None
            state.set_origin(origin)
        elif word == b"$INCLUDE" and len(fields) in (2, 3):
            if depth + 1 >= MAX_INCLUDE_DEPTH:
                raise MasterFileError(f"{path}:{lineno}: $INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep")
            inner = _State(state.origin)
            if len(fields) == 3:
                try:
                    inner.set_origin(dns.name.from_text(fields[2].decode("utf-8"), state.origin))
                except (dns.exception.DNSException, UnicodeError) as exc:
                    raise MasterFileError(f"{path}:{lineno}: {exc}") from None
            inner.last_key, inner.last_wire = state.last_key, state.last_wire
            inner.last_ttl, inner.default_ttl = state.last_ttl, state.default_ttl
            inner.default_from_soa = state.default_from_soa
            included = fields[1].decode("utf-8")
            if not Path(included).exists():
                raise MasterFileError(f"{path}:{lineno}: $INCLUDE {included}: No such file or directory")
            self._read_file(included, inner, depth + 1)
        elif word == b"$GENERATE":
            raise NeedsDnspython
        else:
            raise MasterFileError(f"{path}:{lineno}: bad or unknown directive {fields[0].decode(errors='replace')}")


_GENERIC_TYPES: dict[int, bool] = {}
_GOOD_MAPS: set[bytes] = set()
_MAP_TYPES = frozenset({int(records.CAPS), int(records.LOAD)})


def _generic_ok(rdtype: int, rdata: bytes) -> bool:
    """Whether RFC 3597 data can be kept as given: dnspython parses ``\\#`` data of a type it
    knows as that type, so only types it does not know, and CAPS/LOAD maps that decode (checked
    here, remembered by their bytes), skip its reader; the rest go to it for its verdict."""
    unknown = _GENERIC_TYPES.get(rdtype)
    if unknown is None:
        unknown = _GENERIC_TYPES[rdtype] = (
            dns.rdata.get_rdata_class(dns.rdataclass.IN, rdtype) is dns.rdata.GenericRdata)
    if unknown:
        return True
    if rdtype in _MAP_TYPES:
        if rdata in _GOOD_MAPS:
            return True
        try:
            capsmap.decode(rdata)
        except ValueError:
            return False
        if len(_GOOD_MAPS) < 65536:
            _GOOD_MAPS.add(rdata)
        return True
    return False
