"""Master files (RFC 1035 §5) in and out, with errors a zone operator can act on.

Loading uses dnspython's zone-file reader with two changes of behaviour:

* data outside the zone is an error (dnspython silently drops it, so a record for ``other.org.``
  typed into ``example.com``'s file would vanish without a word);
* every error becomes one ``ZoneFileError`` whose text is ``<path>:<line>: <message>``.

Names are always absolute (``relativize=False``) so that no caller has to think about origins.
CAPS and LOAD load in either form (friendly ``CAPS gpu_count=8`` or RFC 3597 ``TYPE65380 \\# ...``)
because ``resolver.records`` registers them with dnspython.

Writing produces a complete, sorted master file. With ``generic=True`` our private types are
written in RFC 3597 form everywhere they appear (records, RRSIG type covered, NSEC bitmaps), so
BIND, NSD, Knot and ldns can read the file.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.tokenizer
import dns.zone
import dns.zonefile

from .. import records  # noqa: F401  (registers CAPS and LOAD with dnspython)
from . import fastload, render

PRIVATE_TYPES = render.PRIVATE_TYPES  # unknown to peer software
_CAUGHT = re.compile(r"caught exception <class '[\w.]+'>: ")
_LOCATION = re.compile(r"^.*?:\d+: ")
_UNKNOWN_TYPE = re.compile(r"unknown rdatatype '([^']*)'")


class ZoneFileError(Exception):
    """A master file could not be loaded; str() is ``<path>:<line>: <message>`` when the line is known."""


MAX_INCLUDE_DEPTH = 16  # a file that includes itself would otherwise recurse until file handles run out


class _IncludeStack(list):
    """The reader's stack of files being read: refuses to grow past MAX_INCLUDE_DEPTH."""

    def __init__(self, reader: "_StrictReader"):
        super().__init__()
        self.reader = reader

    def append(self, item) -> None:
        if len(self) >= MAX_INCLUDE_DEPTH:
            where, line = self.reader.tok.where()
            self.reader.error_at = (where, max(1, line - 1))  # the $INCLUDE line's EOL was read
            raise dns.exception.SyntaxError(f"$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep")
        super().append(item)


class _StrictReader(dns.zonefile.Reader):
    """dnspython's reader, but out-of-zone data and CNAME conflicts are line-numbered errors."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.saved_state = _IncludeStack(self)

    def _eat_line(self) -> None:
        # dnspython calls this only to skip a record whose owner is outside the zone.
        raise dns.exception.SyntaxError(f"{self.last_name} is outside the zone {self.zone_origin}")

    error_at: tuple[str, int] | None = None

    def _rr_line(self) -> None:
        # dnspython reports the line its tokenizer has reached, which is the next line once the
        # record's end of line was read; remember where the record started instead.
        start = self.tok.where()
        try:
            super()._rr_line()
        except dns.exception.SyntaxError:
            self.error_at = start
            raise
        except dns.zonefile.CNAMEAndOtherData as exc:
            self.error_at = start
            raise dns.exception.SyntaxError(f"{self.last_name}: {exc}") from None
        except KeyError as exc:  # the zone transaction rejected the owner name
            self.error_at = start
            raise dns.exception.SyntaxError(f"{self.last_name}: {exc.args[0] if exc.args else exc}") from None
        except ValueError as exc:  # the zone transaction rejected the record (e.g. an SOA below the apex)
            self.error_at = start
            raise dns.exception.SyntaxError(f"{self.last_name}: {exc}") from None


def _origin_from_text(text: str, filename: str) -> dns.name.Name | None:
    """The origin a file implies: its first ``$ORIGIN``, else the owner of its first SOA record."""
    tok = dns.tokenizer.Tokenizer(text, filename)
    origin: dns.name.Name | None = None
    last_owner: str | None = None
    try:
        while True:
            token = tok.get(want_leading=True)
            if token.is_eof():
                return None
            if token.is_eol():
                continue
            if token.is_identifier() and token.value.startswith("$"):
                if token.value.upper() == "$ORIGIN":
                    name = tok.get_name(origin)
                    return name if name.is_absolute() else None
                if token.value.upper() == "$INCLUDE":
                    return None  # the SOA may be in the included file; the caller must say
                _skip_line(tok)
                continue
            owner = last_owner if token.is_whitespace() else token.value
            last_owner = owner
            fields = []
            while len(fields) < 3:
                token = tok.get()
                if token.is_eol_or_eof():
                    break
                fields.append(token.value.upper())
            if "SOA" in fields:
                if owner is None or owner == "@" or not owner.endswith("."):
                    return None
                return dns.name.from_text(owner)
            if not token.is_eol_or_eof():
                _skip_line(tok)
    except dns.exception.DNSException:
        return None  # the real reader reports the syntax error with its line


def _skip_line(tok: dns.tokenizer.Tokenizer) -> None:
    while not tok.get().is_eol_or_eof():
        pass


def load_zone(path: str | Path, origin: str | dns.name.Name | None = None, *, fast: bool = True) -> dns.zone.Zone:
    """Load a master file into a zone with absolute names.

    ``origin`` defaults to the file's first ``$ORIGIN`` or the owner of its first SOA record.
    Plain one-record-per-line files are read by ``fastload`` (the same zone, faster); anything
    else, and every file when ``fast=False``, by dnspython's reader.
    Raises ZoneFileError (never anything else for bad input).
    """
    filename = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ZoneFileError(f"{filename}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ZoneFileError(f"{filename}: cannot read: {exc.strerror or exc}") from None
    if isinstance(origin, str):
        try:
            origin = dns.name.from_text(origin)
        except dns.exception.DNSException as exc:
            raise ZoneFileError(f"{filename}: bad origin {origin!r}: {exc}") from None
    if origin is None:
        origin = _origin_from_text(text, filename)
        if origin is None:
            raise ZoneFileError(
                f"{filename}: cannot tell the zone origin (no $ORIGIN and no absolute SOA owner); give it explicitly"
            )
    quick = fastload.load_text(text, origin) if fast else None
    if quick is not None:
        try:
            quick.check_origin()
            return quick
        except dns.zone.BadZone:
            pass  # dnspython's reader says what is missing, as for any other file
    zone = dns.zone.Zone(origin, dns.rdataclass.IN, relativize=False)
    reader: _StrictReader | None = None
    try:
        with zone.writer(True) as txn:
            tok = dns.tokenizer.Tokenizer(text, filename)
            reader = _StrictReader(tok, dns.rdataclass.IN, txn, allow_include=True)
            reader.read()
        zone.check_origin()
    except dns.exception.SyntaxError as exc:
        message = _UNKNOWN_TYPE.sub(r"unknown type \1", _CAUGHT.sub("", str(exc)))
        if reader is not None and reader.error_at is not None:
            where, line = reader.error_at
            message = f"{where}:{line}: " + _LOCATION.sub("", message, count=1)
        raise ZoneFileError(message) from None
    except dns.zone.NoSOA:
        raise ZoneFileError(f"{filename}: no SOA record at the zone origin {origin}") from None
    except dns.zone.NoNS:
        raise ZoneFileError(f"{filename}: no NS records at the zone origin {origin}") from None
    except dns.zonefile.UnknownOrigin:
        raise ZoneFileError(f"{filename}: a relative name appears before the origin is known") from None
    except OSError as exc:  # an unreadable $INCLUDE
        raise ZoneFileError(f"{filename}: $INCLUDE {exc.filename}: {exc.strerror or exc}") from None
    except (dns.exception.DNSException, ValueError, KeyError) as exc:
        raise ZoneFileError(f"{filename}: {exc}") from None
    return zone


def zone_to_text(zone: dns.zone.Zone, *, generic: bool = False) -> str:
    """The zone as a master file: absolute names, apex first, names in DNSSEC canonical order.

    ``generic=True`` writes CAPS/LOAD in RFC 3597 form so that peer software can read the file.
    """
    return render.zone_text(zone, generic=generic)


def write_zone(zone: dns.zone.Zone, path: str | Path, *, generic: bool = False) -> None:
    """Write the zone as a master file, atomically (a reader sees the old file or the new one)."""
    write_text(path, zone_to_text(zone, generic=generic))


def write_text(path: str | Path, text: str) -> None:
    """Write a master file's text atomically (a reader sees the old file or the new one)."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o644 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
