"""RDATA from presentation tokens straight to wire form, for the types large signed zones are made of.

``masterfile`` reads zones of hundreds of thousands of names; building a dnspython Rdata per
record and rendering it costs more than everything else together. The converters here produce
the bytes ``dns.rdata.from_text(...).to_wire()`` produces, for the shapes signers write:
A, AAAA (canonical text), NS/CNAME/DNAME/PTR, MX, SOA, RRSIG, NSEC, NSEC3, NSEC3PARAM, DNSKEY,
CDNSKEY, DS, CDS and RFC 3597 ``\\# len hex`` for any type. Anything else — and any token these
do not accept as plainly valid — returns None, and the caller asks dnspython, whose verdict and
error message then stand. ``tests/test_zoneload_rdata.py`` holds these to dnspython on real and
fuzzed input.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
import socket
import struct
from collections.abc import Callable

import dns.dnssec
import dns.rdatatype

from . import wirename

NameFn = Callable[[bytes], bytes]  # a name token → its wire form (relative names completed)

_PACK_H = struct.Struct("!H").pack
_SOA_TAIL = struct.Struct("!IIIII").pack
_RRSIG_HEAD = struct.Struct("!HBBIIIH").pack
_DNSKEY_HEAD = struct.Struct("!HBB").pack
_DS_HEAD = struct.Struct("!HBB").pack
_NSEC3_HEAD = struct.Struct("!BBHB").pack
_TTL_UNITS = re.compile(rb"(?:\d+[sSmMhHdDwW])+")
_HEX = re.compile(rb"[0-9A-Fa-f]*")
_B64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_B32HEX = re.compile(rb"[0-9A-Va-v]+")
MAX_TTL = 2**32 - 1


class _Caches:
    types: dict[bytes, int] = {}
    bitmaps: dict[tuple[bytes, ...], bytes] = {}
    times: dict[bytes, int] = {}
    algorithms: dict[bytes, int] = {}


def rdtype_of(token: bytes) -> int | None:
    """The type a token names (mnemonic or TYPEnnn, any case), None if it names none."""
    found = _Caches.types.get(token)
    if found is None:
        try:
            found = int(dns.rdatatype.from_text(token.decode("ascii")))
        except (dns.rdatatype.UnknownRdatatype, ValueError, UnicodeDecodeError):
            return None
        if len(_Caches.types) < 4096:
            _Caches.types[token] = found
    return found


def ttl_of(token: bytes) -> int:
    """A TTL as dns.ttl.from_text reads it (seconds, or units like 1h30m); ValueError if not."""
    if token.isdigit():
        value = int(token)
    elif _TTL_UNITS.fullmatch(token):
        value = 0
        for number, unit in re.findall(rb"(\d+)([sSmMhHdDwW])", token):
            value += int(number) * {b"s": 1, b"m": 60, b"h": 3600, b"d": 86400, b"w": 604800}[unit.lower()]
    else:
        raise ValueError(token)
    if value > MAX_TTL:
        raise ValueError(token)
    return value


def _uint(token: bytes, limit: int) -> int:
    if not token.isdigit():
        raise ValueError(token)
    value = int(token)
    if value >= limit:
        raise ValueError(token)
    return value


def _algorithm(token: bytes) -> int:
    found = _Caches.algorithms.get(token)
    if found is None:
        if token.isdigit():
            found = _uint(token, 256)
        else:
            found = int(dns.dnssec.Algorithm.from_text(token.decode("ascii")))
        _Caches.algorithms[token] = found
    return found


def _sigtime(token: bytes) -> int:
    found = _Caches.times.get(token)
    if found is not None:
        return found
    if not token.isdigit():
        raise ValueError(token)
    if len(token) <= 10:
        found = int(token)
    elif len(token) == 14:
        t = token
        # as dnspython's sigtime_to_posixtime: datetime refuses impossible dates
        found = int(datetime.datetime(int(t[0:4]), int(t[4:6]), int(t[6:8]), int(t[8:10]),
                                      int(t[10:12]), int(t[12:14]), tzinfo=datetime.UTC).timestamp())
    else:
        raise ValueError(token)
    if not 0 <= found < 2**32:
        raise ValueError(token)
    if len(_Caches.times) < 65536:
        _Caches.times[token] = found
    return found


def _b64(tokens: list[bytes]) -> bytes:
    # strict_mode refuses what base64.b64decode(validate=True), dnspython's call, refuses
    return binascii.a2b_base64(b"".join(tokens) if len(tokens) > 1 else tokens[0], strict_mode=True)


def bitmap(tokens: list[bytes]) -> bytes:
    """Type bitmap (RFC 4034 §4.1.2) of type mnemonics."""
    key = tuple(tokens)
    found = _Caches.bitmaps.get(key)
    if found is not None:
        return found
    types = set()
    for token in tokens:
        rdtype = rdtype_of(token)
        if rdtype is None or rdtype == 0:
            raise ValueError(token)
        types.add(rdtype)
    out = []
    window_of: dict[int, bytearray] = {}
    for rdtype in sorted(types):
        window, bit = divmod(rdtype, 256)
        octets = window_of.setdefault(window, bytearray(32))
        octets[bit // 8] |= 0x80 >> (bit % 8)
    for window in sorted(window_of):
        octets = bytes(window_of[window]).rstrip(b"\x00")
        out.append(bytes((window, len(octets))) + octets)
    found = b"".join(out)
    if len(_Caches.bitmaps) < 4096:
        _Caches.bitmaps[key] = found
    return found


def _address(family: int, token: bytes) -> bytes | None:
    text = token.decode("ascii")
    try:
        packed = socket.inet_pton(family, text)
    except OSError:
        return None
    return packed if socket.inet_ntop(family, packed) == text else None


def generic(tokens: list[bytes]) -> bytes:
    """RFC 3597 §5 ``\\# <length> <hex>...`` (the ``\\#`` already taken)."""
    if not tokens:
        raise ValueError("generic rdata without length")
    length = _uint(tokens[0], 65536)
    hexdigits = b"".join(tokens[1:])
    if not _HEX.fullmatch(hexdigits) or len(hexdigits) % 2:
        raise ValueError("generic rdata hex")
    data = bytes.fromhex(hexdigits.decode("ascii"))
    if len(data) != length:
        raise ValueError("generic rdata length")
    return data


def to_wire(rdtype: int, tokens: list[bytes], name: NameFn) -> bytes | None:
    """RDATA wire form of ``tokens``, or None to leave the record to dnspython.

    Raises nothing for input it declines: a malformed token makes it return None, so the
    record's error (if any) is dnspython's."""
    try:
        converter = _CONVERTERS.get(rdtype)
        return converter(tokens, name) if converter is not None else None
    except (ValueError, IndexError, KeyError, UnicodeDecodeError, binascii.Error,
            dns.exception.DNSException, struct.error):
        return None


def _a(tokens, name):
    return _address(socket.AF_INET, tokens[0]) if len(tokens) == 1 else None


def _aaaa(tokens, name):
    return _address(socket.AF_INET6, tokens[0]) if len(tokens) == 1 else None


def _one_name(tokens, name):
    return name(tokens[0]) if len(tokens) == 1 else None


def _mx(tokens, name):
    return _PACK_H(_uint(tokens[0], 65536)) + name(tokens[1]) if len(tokens) == 2 else None


def _soa(tokens, name):
    if len(tokens) != 7:
        return None
    return (name(tokens[0]) + name(tokens[1])
            + _SOA_TAIL(_uint(tokens[2], 2**32), *(ttl_of(t) for t in tokens[3:7])))


_RRSIG_HEADS: dict[tuple[bytes, ...], bytes] = {}


def _rrsig(tokens, name):
    # Every field but the signature repeats across a zone's RRSIGs of one type and depth.
    head_tokens = tuple(tokens[:8])
    head = _RRSIG_HEADS.get(head_tokens)
    if head is None:
        if len(tokens) < 9:
            return None
        covered = rdtype_of(tokens[0])
        if covered is None:
            return None
        head = (_RRSIG_HEAD(covered, _algorithm(tokens[1]), _uint(tokens[2], 256), ttl_of(tokens[3]),
                            _sigtime(tokens[4]), _sigtime(tokens[5]), _uint(tokens[6], 65536))
                + name(tokens[7]))
        if len(_RRSIG_HEADS) > 4096:
            _RRSIG_HEADS.clear()
        _RRSIG_HEADS[head_tokens] = head
    return head + _b64(tokens[8:])


def _nsec(tokens, name):
    return name(tokens[0]) + bitmap(tokens[1:]) if tokens else None


def _salt(token: bytes) -> bytes:
    if token == b"-":
        return b""
    if not _HEX.fullmatch(token) or len(token) % 2:
        raise ValueError("salt")
    salt = bytes.fromhex(token.decode("ascii"))
    if len(salt) > 255:
        raise ValueError("salt")
    return salt


def _nsec3(tokens, name):
    if len(tokens) < 5 or not _B32HEX.fullmatch(tokens[4]):
        return None
    salt = _salt(tokens[3])
    text = tokens[4].upper()
    following = base64.b32hexdecode(text + b"=" * (-len(text) % 8))
    if len(following) > 255:
        return None
    return (_NSEC3_HEAD(_uint(tokens[0], 256), _uint(tokens[1], 256), _uint(tokens[2], 65536), len(salt))
            + salt + bytes((len(following),)) + following + bitmap(tokens[5:]))


def _nsec3param(tokens, name):
    if len(tokens) != 4:
        return None
    salt = _salt(tokens[3])
    return _NSEC3_HEAD(_uint(tokens[0], 256), _uint(tokens[1], 256), _uint(tokens[2], 65536), len(salt)) + salt


def _dnskey(tokens, name):
    if len(tokens) < 4:
        return None
    return _DNSKEY_HEAD(_uint(tokens[0], 65536), _uint(tokens[1], 256), _algorithm(tokens[2])) + _b64(tokens[3:])


def _ds(tokens, name):
    if len(tokens) < 4:
        return None
    digest = b"".join(tokens[3:])
    if not _HEX.fullmatch(digest) or len(digest) % 2:
        return None
    return (_DS_HEAD(_uint(tokens[0], 65536), _algorithm(tokens[1]), _uint(tokens[2], 256))
            + bytes.fromhex(digest.decode("ascii")))


T = dns.rdatatype
_CONVERTERS = {
    int(T.A): _a, int(T.AAAA): _aaaa,
    int(T.NS): _one_name, int(T.CNAME): _one_name, int(T.DNAME): _one_name, int(T.PTR): _one_name,
    int(T.MX): _mx, int(T.SOA): _soa, int(T.RRSIG): _rrsig, int(T.NSEC): _nsec,
    int(T.NSEC3): _nsec3, int(T.NSEC3PARAM): _nsec3param,
    int(T.DNSKEY): _dnskey, int(T.CDNSKEY): _dnskey, int(T.DS): _ds, int(T.CDS): _ds,
}

CONVERTERS = _CONVERTERS  # type → converter(tokens, name_fn): the reader's inner loop calls them

__all__ = ["CONVERTERS", "bitmap", "generic", "rdtype_of", "to_wire", "ttl_of", "wirename"]
