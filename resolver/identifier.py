"""Compute identifiers: the two written forms and their mapping to DNS names (spec/identifiers.md).

An identifier is an absolute DNS name. It may be written ``cid:pool-7.bj.cmcc.cid`` or
``pool-7.bj.cmcc.cid.``; both denote the same name. Labels are LDH (RFC 952/1123 host
syntax); labels beginning with ``_`` are reserved for service and browse names and are
accepted only where the caller asks for them.
"""

from __future__ import annotations

import re

import dns.name

from resolver.nametext import name_text

SCHEME = "cid:"
MAX_NAME_OCTETS = 255  # RFC 1035 §2.3.4, wire form including the root label
MAX_LABEL_OCTETS = 63

_LDH = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_UNDERSCORE = re.compile(r"^_[A-Za-z0-9](?:[A-Za-z0-9-]{0,60}[A-Za-z0-9])?$")


class IdentifierError(ValueError):
    """The text is not a valid compute identifier; the message says why."""


def parse(text: str, *, allow_underscore: bool = False) -> dns.name.Name:
    """Parse either written form into an absolute, lower-cased dns.name.Name.

    ``cid:a.b`` and ``a.b.`` are absolute; a bare ``a.b`` (no scheme, no trailing dot) is
    also taken as absolute, as users type host names, but ``cid:a.b.`` is rejected as a
    mixed form so that each identifier has exactly two spellings.
    """
    if not isinstance(text, str):
        raise IdentifierError("identifier must be a string")
    raw = text.strip()
    if raw != text or not raw:
        raise IdentifierError("identifier is empty or has surrounding whitespace")
    if raw.lower().startswith(SCHEME):
        body = raw[len(SCHEME):]
        if body.endswith("."):
            raise IdentifierError(f"{text!r}: the cid: form is written without a trailing dot")
    else:
        body = raw[:-1] if raw.endswith(".") else raw
    if not body:
        raise IdentifierError(f"{text!r}: the root is not an identifier")
    labels = body.split(".")
    for label in labels:
        if not label:
            raise IdentifierError(f"{text!r}: empty label")
        if len(label) > MAX_LABEL_OCTETS:
            raise IdentifierError(f"{text!r}: label {label[:20]!r}... is longer than 63 octets")
        if _LDH.fullmatch(label):  # fullmatch: "$" would accept a trailing newline
            continue
        if label.startswith("_") and _UNDERSCORE.fullmatch(label):
            if allow_underscore:
                continue
            raise IdentifierError(f"{text!r}: label {label!r}: '_' labels are reserved for service names")
        raise IdentifierError(f"{text!r}: label {label!r} is not letters, digits and inner hyphens")
    wire_len = sum(len(label) + 1 for label in labels) + 1
    if wire_len > MAX_NAME_OCTETS:
        raise IdentifierError(f"{text!r}: name is {wire_len} octets, more than 255")
    return dns.name.Name([label.lower().encode("ascii") for label in labels] + [b""])


def to_cid(name: dns.name.Name) -> str:
    """The ``cid:`` spelling of a name (lower case, no trailing dot)."""
    if not name.is_absolute() or name == dns.name.root:
        raise IdentifierError(f"{name}: not an absolute, non-root name")
    return SCHEME + name_text(name)[:-1].lower()  # absolute: the final dot is its last character


def to_dns(name: dns.name.Name) -> str:
    """The DNS spelling of a name (lower case, trailing dot)."""
    return name_text(name).lower()


def is_identifier_text(text: str) -> bool:
    try:
        parse(text)
    except IdentifierError:
        return False
    return True
