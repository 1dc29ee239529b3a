"""``str(name)`` without dnspython's per-character escaping, for names that need none.

The resolver turns names into text on every query and verdict (trace events, the reasons it
gives, cache reason sharing): ``Name.to_text`` escapes label by label, character by
character. A name whose labels hold only printable ASCII that master-file syntax does not
reserve (RFC 1035 §5.1: no '"', '(', ')', '.', ';', '\\', '@', '$', space or control
character) is its labels joined by dots; any other name goes to dnspython. tests/test_nametext
compares both on real and fuzzed names.
"""

from __future__ import annotations

import re

import dns.name
import dns.rdatatype

# Bytes Name.to_text writes escaped (dnspython's _escaped set, and anything outside 0x21-0x7E);
# '.' is allowed here only as the separator, which the count of dots checks.
_ESCAPED = re.compile(rb'[^\x21-\x7e]|["();\\@$]')


_TEXTS: dict[tuple[bytes, ...], str] = {}  # labels -> text, for the names a resolver repeats
_TEXTS_MAX = 128  # as the reader's Name table: the repeating names, not every leaf ever seen


def name_text(name: dns.name.Name) -> str:
    """``name.to_text()``: absolute names with their final dot, the root as "."."""
    labels = name.labels
    text = _TEXTS.get(labels)  # a tuple of bytes hashes from the labels' cached hashes
    if text is None:
        joined = b".".join(labels)
        if joined and joined.count(b".") == len(labels) - 1 and _ESCAPED.search(joined) is None:
            text = joined.decode("ascii")
        else:
            text = name.to_text()
        if len(_TEXTS) >= _TEXTS_MAX:
            _TEXTS.clear()
        _TEXTS[labels] = text
    return text


def lower_name(name: dns.name.Name) -> dns.name.Name:
    """``name.canonicalize()`` (ASCII letters lowercased), but ``name`` itself when it has no
    upper-case letter — the usual case — instead of a new Name each time."""
    joined = b"".join(name.labels)
    return name if joined == joined.lower() else name.canonicalize()  # bytes.lower: ASCII, as dnspython's


_TYPE_TEXT: dict[int, str] = {}


def type_text(rdtype: int) -> str:
    """``dns.rdatatype.to_text(rdtype)``, remembered per value (its enum lookup costs more than
    the rest of a trace event). Types are registered when their modules load, before any
    lookup asks, so a remembered text stays right; a bounded few values are kept."""
    text = _TYPE_TEXT.get(rdtype)
    if text is None:
        text = dns.rdatatype.to_text(rdtype)
        if len(_TYPE_TEXT) < 1024:
            _TYPE_TEXT[rdtype] = text
    return text


def same_name(a: dns.name.Name, b: dns.name.Name) -> bool:
    """``a == b`` (names compare ignoring ASCII case, RFC 4343), answered without dnspython's
    label-by-label comparison when both are spelled the same — the usual case: the reader
    hands out one Name object per spelling."""
    return a is b or a.labels == b.labels or a == b


def in_zone(name: dns.name.Name, zone: dns.name.Name) -> bool:
    """``name.is_subdomain(zone)`` (``name`` at or below ``zone``, ignoring case), answered from
    the labels when they end in the zone's spelled the same."""
    n = len(zone.labels)
    return (0 < n <= len(name.labels) and name.labels[len(name.labels) - n:] == zone.labels) or name.is_subdomain(zone)
