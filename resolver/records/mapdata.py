"""Base rdata class for CAPS and LOAD: a canonical msgpack map (spec/records.md).

Presentation form is a list of ``key=value`` items, keys sorted:

* ``key=8``, ``key=-3``, ``key=0.75``, ``key=true``, ``key=false``, ``key=null`` — JSON scalars;
* ``key=word`` — a string, when the word is not itself a JSON scalar;
* ``key="any text"`` — always a string (quotes make ``"8"`` a string, not a number);
* ``key=[1,2]``, ``key={\\"a\\":1}`` — compact JSON arrays/maps, with ``"`` and whitespace
  backslash-escaped so that the item stays one master-file token.

The RFC 3597 generic form (``\\# len hex``) is accepted by dnspython before this class sees
it, and the wire bytes must still be canonical.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import dns.exception
import dns.immutable
import dns.rdata
import dns.tokenizer

from . import capsmap

_BARE = re.compile(r"^[A-Za-z0-9_.:/+@%-]+$")
_NUMBER = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$")


def _parse_value(token: dns.tokenizer.Token, raw: str) -> Any:
    if token.is_quoted_string():
        return raw
    if raw in ("true", "false", "null") or _NUMBER.match(raw):
        value = json.loads(raw)
        if isinstance(value, float) and "." not in raw and "e" not in raw.lower():
            return int(raw)
        return value
    if raw[:1] in "[{":
        try:
            return json.loads(raw, object_pairs_hook=_unique_pairs)
        except json.JSONDecodeError as exc:
            raise dns.exception.SyntaxError(f"bad JSON value {raw!r}: {exc.msg}") from None
    if not raw:
        raise dns.exception.SyntaxError("empty value; write key=\"\" for an empty string")
    return raw


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects inside a value: a repeated key is an error, as it is at the top level,
    instead of json's silent last-one-wins."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise dns.exception.SyntaxError(f"duplicate key {key!r} in a JSON value")
        out[key] = value
    return out


def _unescape(token: dns.tokenizer.Token) -> str:
    try:
        return token.unescape_to_bytes().value.decode("utf-8")
    except UnicodeDecodeError:
        raise dns.exception.SyntaxError("value is not valid UTF-8") from None


def _escape_token(text: str, quoted: bool = False) -> str:
    out = []
    for ch in text:
        if ch in '"\\' or (ch in ";()" and not quoted):
            out.append("\\" + ch)
        elif ch == " " and quoted:
            out.append(ch)
        elif ord(ch) <= 0x20 or ord(ch) >= 0x7F:
            out.extend(f"\\{b:03d}" for b in ch.encode("utf-8"))
        else:
            out.append(ch)
    return "".join(out)


def _format_value(value: Any) -> str:
    if isinstance(value, str):
        if _BARE.match(value) and value not in ("true", "false", "null") and not _NUMBER.match(value):
            return value
        return '"' + _escape_token(value, quoted=True) + '"'
    if isinstance(value, (list, dict)):
        return _escape_token(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value)


def _copy(value: Any) -> Any:
    """A deep copy of a map value, its keys and short strings interned: every cached
    Resolution carries its CAPS and LOAD maps, and thousands of them repeat the same registry
    keys and values ("accel_vendor": "nvidia"), which would otherwise each be a string object."""
    if isinstance(value, str):
        return sys.intern(value) if len(value) <= 64 else value
    if isinstance(value, dict):
        return {sys.intern(k): _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy(v) for v in value]
    return value


@dns.immutable.immutable
class MapRdata(dns.rdata.Rdata):
    """An rdata whose whole RDATA is one canonical msgpack map."""

    __slots__ = ["data"]

    def __init__(self, rdclass, rdtype, data):
        super().__init__(rdclass, rdtype)
        try:
            normalized = capsmap.normalize(dict(data))
        except capsmap.CapsError as exc:
            raise dns.exception.SyntaxError(str(exc)) from None
        self.data = _FrozenMap(normalized)

    @property
    def mapping(self) -> dict[str, Any]:
        """A fresh, mutable copy of the map (keys and short strings shared, see _copy)."""
        return _copy(self.data.value)

    def to_styled_text(self, style) -> str:
        return " ".join(f"{k}={_format_value(v)}" for k, v in self.data.value.items())

    @classmethod
    def from_text(cls, rdclass, rdtype, tok, origin=None, relativize=True, relativize_to=None):
        items: dict[str, Any] = {}
        while True:
            token = tok.get()
            if token.is_eol_or_eof():
                tok.unget(token)
                break
            if token.is_quoted_string():
                raise dns.exception.SyntaxError(f"expected key=value, got quoted {token.value!r}")
            text = _unescape(token)
            key, eq, raw = text.partition("=")
            if not eq or not key:
                raise dns.exception.SyntaxError(f"expected key=value, got {text!r}")
            if raw == "":
                value_tok = tok.get(want_leading=True)
                if not value_tok.is_quoted_string():
                    raise dns.exception.SyntaxError(f"{key}: whitespace after '='")
                value = _parse_value(value_tok, _unescape(value_tok))
            else:
                value = _parse_value(token, raw)
            if key in items:
                raise dns.exception.SyntaxError(f"duplicate key {key!r}")
            items[key] = value
        return cls(rdclass, rdtype, items)

    def _to_wire(self, file, compress=None, origin=None, canonicalize=False):
        # The canonical encoding made once at construction (the map is never changed after):
        # dnspython hashes and compares rdata by this form, so re-encoding it each time made every
        # RRset insertion of a CAPS/LOAD record pay a full msgpack encode.
        file.write(self.data._key)

    @classmethod
    def from_wire_parser(cls, rdclass, rdtype, parser, origin=None):
        blob = parser.get_remaining()
        try:
            mapping = capsmap.decode(blob)
        except capsmap.CapsError as exc:
            raise dns.exception.FormError(f"{dns.rdatatype.to_text(rdtype)}: {exc}") from None
        return cls(rdclass, rdtype, mapping)


class _FrozenMap:
    """Hashable, read-only holder so rdata stay immutable and comparable."""

    __slots__ = ("value", "_key")

    def __init__(self, value: dict[str, Any]):
        self.value = value
        self._key = capsmap.encode(value)

    def __eq__(self, other):
        return isinstance(other, _FrozenMap) and self._key == other._key

    def __hash__(self):
        return hash(self._key)

    def __repr__(self):
        return f"{self.value!r}"
