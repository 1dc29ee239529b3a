"""Domain names as the zone store keeps them: canonical sort keys and wire forms, no objects.

A name's **canonical key** is one ``bytes`` whose byte order is the DNSSEC canonical order of
names (RFC 4034 §6.1): labels from the root down, each lower-cased (ASCII only, §6.2) and ended by
one ``00``; inside a label ``00`` is written ``01 01`` and ``01`` as ``01 02``, which keeps the
order of octets and leaves ``00`` meaning only a label's end. The root's key is ``b""``. So an ancestor's key is a prefix
of its descendants' keys (ending at a label boundary), a zone's names are one contiguous run of
keys, and the NSEC predecessor of any name is one bisection away.

The **wire** form is the uncompressed RFC 1035 §3.1 form, as spelled in the zone (case kept).
"""

from __future__ import annotations

import re

import dns.name

END = b"\x00"  # ends every label of a canonical key; never inside one (escaped)
_LOW = re.compile(rb"[\x00\x01]")
_ESCAPE = {b"\x00": b"\x01\x01", b"\x01": b"\x01\x02"}
_UNESCAPE = re.compile(rb"\x01[\x01\x02]")


def _escape(label: bytes) -> bytes:
    return _LOW.sub(lambda m: _ESCAPE[m.group()], label)


def _unescape(label: bytes) -> bytes:
    return _UNESCAPE.sub(lambda m: b"\x00" if m.group() == b"\x01\x01" else b"\x01", label)


def key_of_labels(labels) -> bytes:
    """Canonical key of a name given as labels, root (``b""``) last or left out."""
    parts = []
    for label in reversed(labels):
        if label:
            label = label.lower()
            if b"\x00" in label or b"\x01" in label:
                label = _escape(label)
            parts.append(label)
    if not parts:
        return b""
    parts.append(b"")
    return END.join(parts)


def key_of(name: dns.name.Name) -> bytes:
    return key_of_labels(name.labels)


def labels_of_wire(wire: bytes, pos: int = 0) -> tuple[list[bytes], int]:
    """The labels (root left out) of the uncompressed name at ``wire[pos:]``, and where it ends.
    Raises ValueError on a pointer, a reserved label type or a truncated name."""
    labels = []
    end = len(wire)
    while True:
        if pos >= end:
            raise ValueError("name runs past the end of its data")
        length = wire[pos]
        if length == 0:
            return labels, pos + 1
        if length > 63:
            raise ValueError("compressed or reserved label type in a stored name")
        labels.append(wire[pos + 1:pos + 1 + length])
        pos += 1 + length


def key_of_wire(wire: bytes) -> bytes:
    return key_of_labels(labels_of_wire(wire)[0])


def wire_of_labels(labels) -> bytes:
    return b"".join([bytes((len(label),)) + label for label in labels if label]) + b"\x00"


def labels_of_key(key: bytes) -> list[bytes]:
    """The lower-cased labels of the name with canonical ``key``, leftmost first, root left out."""
    if not key:
        return []
    parts = key[:-1].split(END)
    parts.reverse()
    if b"\x01" in key:
        parts = [_unescape(p) for p in parts]
    return parts


def wire_of_key(key: bytes) -> bytes:
    """Lower-cased wire form (the canonical form of RFC 4034 §6.2) of the name with ``key``."""
    return wire_of_labels(labels_of_key(key))


def name_of_key(key: bytes) -> dns.name.Name:
    return dns.name.Name([*labels_of_key(key), b""])


def name_of_wire(wire: bytes) -> dns.name.Name:
    return dns.name.Name([*labels_of_wire(wire)[0], b""])


def parent_key(key: bytes) -> bytes:
    """Key of the parent name (``b""`` for a top-level name; the root has no parent)."""
    if not key:
        raise ValueError("the root has no parent")
    return key[:key.rfind(END, 0, len(key) - 1) + 1]


def ancestor_keys(key: bytes, stop: bytes = b"") -> list[bytes]:
    """``key`` and each ancestor's key down to and including ``stop`` (a prefix of ``key`` at
    a label boundary), longest first."""
    out = [key]
    floor = len(stop)
    end = len(key) - 1
    while end >= floor:
        end = key.rfind(END, 0, end)
        out.append(key[:end + 1])
        if end < 0:
            break
    return out


def label_count(key: bytes) -> int:
    """Labels of the name, root left out (the RRSIG Labels field counts this way, minus ``*``)."""
    return key.count(END)


def is_below(key: bytes, ancestor: bytes) -> bool:
    """Whether the name with ``key`` is ``ancestor`` or a descendant of it."""
    return key.startswith(ancestor)
