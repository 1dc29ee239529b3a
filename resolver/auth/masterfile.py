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

The file is read in blocks of about a megabyte. A block without quotes, parentheses, escapes
other than ``\\#`` and comments after data (what signers write) takes a loop that skips the
per-line checks for those. Records go to a ``Sink`` one run of an owner's records at a time
(``zoneload`` checks them and adds them to a ``zonedb.ZoneBuilder``). A ``Source`` can be a
byte range of a file (``zoneload`` reads large files in forked workers, one range each; see
``parload``): a record still open at the range's end is read on past it and ``overran`` says so.
Errors raise ``MasterFileError`` with ``<path>:<line>: <message>``.
"""

from __future__ import annotations

import binascii
import re
import struct
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
BLOCK_BYTES = 1 << 20
_IN = int(dns.rdataclass.IN)
_SOA = int(dns.rdatatype.SOA)
_RRSIG = int(dns.rdatatype.RRSIG)
_PLAIN_NAME = re.compile(rb"(?:[A-Za-z0-9_*-]{1,63}\.)*[A-Za-z0-9_*-]{1,63}\.?|\.")
_CLASS_WORDS = frozenset({b"IN", b"CH", b"CHAOS", b"HS", b"HESIOD", b"NONE", b"ANY"})
_GENERIC = b"\\#"
# What a converter raising means: "not plainly valid", so dnspython decides.
_DECLINED = (ValueError, IndexError, KeyError, UnicodeDecodeError, binascii.Error,
             dns.exception.DNSException, struct.error)


class MasterFileError(Exception):
    """str() is ``<path>:<line>: <message>``."""


class NeedsDnspython(Exception):
    """The file uses something only dnspython's reader implements ($GENERATE)."""


class NeedsContext(Exception):
    """A range read without knowing what came before it needed that (a record without owner or
    TTL before the range gave one): the range must be read after the one before it."""


# One record: (type, covered type for RRSIG else 0, ttl, rdata wire, line)
Record = tuple[int, int, int, bytes, int]
# sink(key, owner wire, records of that owner in file order, path), once per run of an owner
Sink = Callable[[bytes, bytes, list, str], None]

UNKNOWN_TTL = -1  # the last TTL of a range read without what came before it


class State:
    """What a line's meaning depends on: $ORIGIN, $TTL, the last owner and TTL stated."""

    __slots__ = ("origin", "origin_wire", "origin_text", "last_key", "last_wire", "last_ttl",
                 "default_ttl", "default_from_soa")

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
        # "scale.cid." as spelled: owners ending ".scale.cid." take the origin's wire whole
        self.origin_text = b"".join(label + b"." for label in origin.labels if label)

    def context(self) -> tuple:
        """What a range read with ``for_range`` assumes (the last owner and TTL aside)."""
        return (self.origin, self.default_ttl, self.default_from_soa)

    def for_range(self) -> "State":
        """A copy for reading a later range: same origin and defaults, last owner and TTL unknown."""
        out = State.__new__(State)
        out.origin, out.origin_wire, out.origin_text = self.origin, self.origin_wire, self.origin_text
        out.last_key = out.last_wire = None
        out.last_ttl = UNKNOWN_TTL
        out.default_ttl, out.default_from_soa = self.default_ttl, self.default_from_soa
        return out

    def implicit_ttl(self) -> int | None:
        last = self.last_ttl
        if last is not None and (self.default_ttl is None or self.default_from_soa):
            if last == UNKNOWN_TTL:
                raise NeedsContext("a record without TTL takes the TTL of a record before the range")
            return last
        return self.default_ttl


class Source:
    """The lines of a file, or of the byte range ``[start, end)`` of it (``start`` a line start
    and ``end`` one too or the file's end), without their line ends, in blocks."""

    def __init__(self, handle, path: str, start: int = 0, end: int | None = None,
                 first_line: int = 0):
        self._handle = handle
        self.path = path
        if start or handle.tell():
            handle.seek(start)
        self._left = None if end is None else end - start
        self.number = first_line  # lines handed out so far, counted from the file's start
        self.overran = False
        self._tail = b""
        self._done = False
        self._pending: list[bytes] | None = None

    def _data(self) -> bytes | None:
        """The next whole lines (up to a newline), or None at the end of the range or file."""
        while True:
            if self._done:
                if self._tail:
                    data, self._tail = self._tail, b""
                    return data
                return None
            size = BLOCK_BYTES if self._left is None else min(BLOCK_BYTES, self._left)
            data = self._handle.read(size) if size > 0 else b""
            if self._left is not None:
                self._left -= len(data)
            if not data:
                self._done = True
                continue
            if self._tail:
                data = self._tail + data
            cut = data.rfind(b"\n")
            if cut < 0:
                self._tail = data
                continue
            self._tail = data[cut + 1:]
            return data[:cut]

    def blocks(self):
        """(lines, number of the line before the first, clean) for each block; ``clean``: no
        line needs the quote, escape, comment or parenthesis handling (module text)."""
        while True:
            lines = self._pending
            self._pending = None
            clean = False
            if lines is None:
                data = self._data()
                if data is None:
                    return
                clean = (b'"' not in data and b"(" not in data and b")" not in data
                         and b"\r" not in data
                         and data.count(b"\\") == data.count(_GENERIC)
                         and data.count(b";") == data.count(b"\n;") + (data[:1] == b";"))
                ascii_text = data.isascii()
                lines = data.split(b"\n")
                if b"\r" in data:
                    lines = [line.rstrip(b"\r") for line in lines]
                if not ascii_text:
                    self._check_utf8(lines)
            first = self.number
            self.number += len(lines)
            yield lines, first, clean

    def _check_utf8(self, lines: list[bytes]) -> None:
        for i, line in enumerate(lines):
            if not line.isascii():
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise MasterFileError(f"{self.path}:{self.number + i + 1}: not UTF-8 text "
                                          f"(byte {exc.start} of the line)") from None

    def take(self) -> bytes | None:
        """The line after the current block (a record continued across blocks), or None at the
        end of the file. Past the range's end the source reads on to the file's end."""
        if self._pending is None:
            data = self._data()
            if data is None:
                if self._left is None or self._handle is None:
                    return None
                # the range ends inside a record: read on, and say so
                self.overran = True
                self._left = None
                self._done = False
                data = self._data()
                if data is None:
                    return None
            lines = data.split(b"\n")
            if not data.isascii():
                self._check_utf8(lines)
            self._pending = [line.rstrip(b"\r") for line in lines]
        line = self._pending.pop(0)
        if not self._pending:
            self._pending = None
        self.number += 1
        return line

    def unbound(self) -> None:
        """Read on to the end of the file from here (the next range must be read here too)."""
        self._left = None
        self._done = False


class _Cursor:
    """Continuation lines for one record: the rest of the block, then the source."""

    __slots__ = ("it", "source", "used")

    def __init__(self, it, source: Source):
        self.it, self.source, self.used = it, source, 0

    def next(self) -> bytes | None:
        line = next(self.it, None)
        if line is None:
            return self.source.take()
        self.used += 1
        return line


class Reader:
    """Reads one master file (and what it includes) into ``sink``."""

    def __init__(self, origin: dns.name.Name, sink: Sink, *,
                 progress: Callable[[int], None] | None = None):
        self.zone_origin = origin
        self.sink = sink
        self.progress = progress
        self.lines_read = 0

    def read(self, path: str | Path) -> State:
        state = State(self.zone_origin)
        self._read_file(str(path), state, 0)
        return state

    def read_source(self, source: Source, state: State) -> None:
        """Read ``source`` (a file or a byte range of one) with ``state``, which it updates."""
        before = source.number
        self._read_lines(source, state, 0)
        self.lines_read += source.number - before

    # --- one file -------------------------------------------------------------------------------

    def _read_file(self, path: str, state: State, depth: int) -> None:
        try:
            handle = open(path, "rb")
        except OSError as exc:
            raise MasterFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
        with handle:
            source = Source(handle, path)
            self._read_lines(source, state, depth)
            self.lines_read += source.number

    def _read_lines(self, source: Source, state: State, depth: int) -> None:
        path = source.path
        sink = self.sink
        rdtype_of = rdatawire.rdtype_of
        converters = rdatawire.CONVERTERS
        generic = rdatawire.generic
        progress = self.progress
        ttls: dict[bytes, int] = {}
        types: dict[bytes, int] = {}
        last_token = None
        run: list = []
        run_key, run_wire = state.last_key, state.last_wire
        name_fn = self._name_fn(state)
        lineno = 0
        counted = source.number  # lines before this source's (counted in lines_read already)
        try:
            for lines, first_number, clean in source.blocks():
                if progress is not None:
                    progress(self.lines_read + first_number - counted)
                it = iter(lines)
                pos = first_number
                for line in it:
                    pos += 1
                    if not line:
                        continue
                    first = line[0]
                    if first == 59:  # ';'
                        continue
                    lineno = pos
                    if not clean:
                        if b'"' in line or (b"\\" in line and line.count(b"\\") != line.count(_GENERIC)):
                            cursor = _Cursor(it, source)
                            text = self._tricky_record(cursor, line, path, lineno)
                            pos += cursor.used
                            if text is not None:
                                if run:
                                    sink(run_key, run_wire, run, path)
                                    run = []
                                self._dnspython_record(text, state, path, lineno, depth)
                                run_key, run_wire = state.last_key, state.last_wire
                                last_token = None
                            continue
                        if b";" in line:
                            line = line[:line.index(b";")]
                        if b"(" in line or b")" in line:
                            cursor = _Cursor(it, source)
                            line = self._join_parens(cursor, line, path, lineno)
                            pos += cursor.used
                    fields = line.split()
                    if not fields:
                        continue
                    if first == 36:  # '$'
                        if run:
                            sink(run_key, run_wire, run, path)
                            run = []
                        self._directive(fields, state, path, lineno, depth)
                        name_fn = self._name_fn(state)
                        run_key, run_wire = state.last_key, state.last_wire
                        last_token = None
                        continue
                    # owner
                    if first != 32 and first != 9:
                        token = fields[0]
                        if token != last_token:
                            key, wire = self._owner(token, state, path, lineno)
                            last_token = token
                            if key != run_key:
                                if run:
                                    sink(run_key, run_wire, run, path)
                                    run = []
                                run_key, run_wire = key, wire
                                state.last_key, state.last_wire = key, wire
                        at = 1
                    else:
                        if run_key is None:
                            if state.last_ttl == UNKNOWN_TTL:
                                raise NeedsContext("a record without owner at the start of a range")
                            raise MasterFileError(f"{path}:{lineno}: the last used name is undefined")
                        at = 0
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
                    rdata = None
                    if rest and rest[0] == _GENERIC:
                        try:
                            rdata = generic(rest[1:])
                        except ValueError:
                            pass
                        if rdata is not None and not _generic_ok(rdtype, rdata):
                            rdata = None
                    else:
                        convert = converters.get(rdtype)
                        if convert is not None:
                            try:
                                rdata = convert(rest, name_fn)
                            except _DECLINED:
                                pass
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
                    run.append((rdtype, (rdata[0] << 8) | rdata[1] if rdtype == _RRSIG else 0, ttl,
                                rdata, lineno))
        except MasterFileError:
            # an earlier line's verdict (from the checks the sink makes) comes first
            if run:
                sink(run_key, run_wire, run, path)
            raise
        if run:
            sink(run_key, run_wire, run, path)

    def _name_fn(self, state: State) -> Callable[[bytes], bytes]:
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
    def _join_parens(lines: _Cursor, line: bytes, path: str, lineno: int) -> bytes:
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
    def _tricky_record(lines: _Cursor, line: bytes | None, path: str, start: int) -> bytes | None:
        """A record with quotes or escapes: its text (comments removed, parentheses kept for
        dnspython's tokenizer), reading further lines while parentheses are open."""
        out = bytearray()
        depth = 0
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

    def _owner(self, token: bytes, state: State, path: str, lineno: int) -> tuple[bytes, bytes]:
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

    def _rdata_name(self, token: bytes, state: State) -> bytes:
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

    def _dnspython_rdata(self, rdtype: int, text: bytes, state: State, path: str, lineno: int) -> bytes:
        try:
            rd = dns.rdata.from_text(_IN, rdtype, text.decode("utf-8"), state.origin, False)
            return rd.to_wire(origin=state.origin)
        except Exception as exc:  # noqa: BLE001 - dnspython's verdict on the record, whatever it raised
            message = str(exc) or type(exc).__name__
            raise MasterFileError(f"{path}:{lineno}: {message}") from None

    def _dnspython_record(self, text: bytes, state: State, path: str, lineno: int, depth: int) -> None:
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
        self.sink(state.last_key, state.last_wire, [(rdtype, covers, ttl, rdata, lineno)], path)

    def _directive(self, fields: list[bytes], state: State, path: str, lineno: int, depth: int) -> None:
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
            inner = State(state.origin)
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
