"""A lean reader and writer for the common shape of TSIG-signed UPDATE messages.

The profile of a stream of signed adds (tools/bench/update_rate.py) puts most of the time in
``dns.message.from_wire`` and ``Message.to_wire``: generic section handling, ``find_rrset``,
immutable-object churn. An UPDATE that takes the usual shape — one zone RR, RRs of class IN,
ANY or NONE, an optional OPT (version 0) and a TSIG as the last record — is read here with
dnspython's own pieces (``dns.name.from_wire``, ``dns.rdata.from_wire``, ``dns.tsig.validate``)
and its response written with ``dns.tsig.sign``. Anything else, and anything that fails a check
(a bad MAC, a time outside the fudge, an unknown key, bytes that do not parse), is left to the
full dnspython path (``read`` returns None), which gives the refusal its exact form.
tests/test_update_wire.py feeds both the same real and fuzzed messages: where this reader
accepts, dnspython accepts with the same content; the responses parse and verify alike.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field

import dns.edns
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tsig

_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_OPCODE_UPDATE = 5
IN, NONE, ANY = 1, 254, 255
SOA, OPT, TSIG = 6, 41, 250
_FIXED = {1: 4, 28: 16}  # A, AAAA: RDATA of this length is its own canonical form (RFC 1035, RFC 3596)


class _Rdata:
    """An RDATA as ``evaluate`` reads it: its uncompressed wire form."""

    __slots__ = ("wire",)

    def __init__(self, wire: bytes):
        self.wire = wire

    def to_wire(self) -> bytes:
        return self.wire


@dataclass(slots=True)
class WireRR:
    """One RR of the prerequisite or update section, as dnspython's one-RR RRsets say it:
    ``rdclass`` IN with ``deleting`` ANY or NONE for those classes (RFC 2136 §2.4, §2.5)."""

    name: dns.name.Name
    rdtype: int
    rdclass: int
    deleting: int | None
    ttl: int
    rdatas: tuple[_Rdata, ...] = ()

    def __iter__(self):
        return iter(self.rdatas)

    def __len__(self) -> int:
        return len(self.rdatas)


@dataclass(slots=True)
class LeanUpdate:
    """A verified UPDATE (what ``live``/``update`` read of a dnspython UpdateMessage)."""

    wire: bytes
    id: int
    flags: int
    zone: dns.name.Name
    zone_wire: bytes  # the zone section as sent (name, TYPE, CLASS)
    zone_class: int
    prerequisite: list[WireRR]
    update: list[WireRR]
    edns: int  # -1 without OPT, else 0
    payload: int
    options: list[tuple[int, bytes]]
    keyname: dns.name.Name
    key_wire: bytes  # the key name, uncompressed
    key: dns.tsig.Key
    tsig: object  # the request's TSIG rdata
    mac: bytes
    had_tsig: bool = field(default=True)


def read(wire: bytes, keyring: dict, now: float | None = None) -> LeanUpdate | None:
    """The UPDATE in ``wire``, its TSIG verified with ``keyring`` (name → dns.tsig.Key), or
    None: not the usual shape, or not acceptable — the caller reads it with dnspython then."""
    try:
        return _read(wire, keyring, now)
    except Exception:  # noqa: BLE001 - whatever the bytes are, dnspython decides
        return None


def _read(wire: bytes, keyring: dict, now: float | None) -> LeanUpdate | None:
    if len(wire) < 12:
        return None
    qid, flags, zocount, prcount, upcount, adcount = _HEADER.unpack_from(wire)
    if flags & 0x8000 or (flags >> 11) & 0xF != _OPCODE_UPDATE or zocount != 1 or adcount not in (1, 2):
        return None
    zone, pos = _name(wire, 12)
    if wire[12] & 0xC0 or pos + 4 > len(wire):
        return None  # a compressed zone name: leave it to dnspython
    rdtype, zone_class = struct.unpack_from("!HH", wire, pos)
    if rdtype != SOA or zone_class != IN:
        return None
    zone_wire = wire[12:pos + 4]
    pos += 4
    sections: list[list[WireRR]] = [[], []]
    for section, count in ((0, prcount), (1, upcount)):
        for _ in range(count):
            rr, pos = _rr(wire, pos, prereq=section == 0)
            sections[section].append(rr)
    edns, payload, options = -1, 0, []
    if adcount == 2:
        if wire[pos] != 0 or pos + 11 > len(wire):
            return None
        rdtype, payload, ttl, rdlen = _RR.unpack_from(wire, pos + 1)
        if rdtype != OPT or (ttl >> 16) & 0xFF != 0 or ttl >> 24 != 0:
            return None  # not an OPT, a version other than 0 or an extended RCODE
        edns = 0
        at, end = pos + 11, pos + 11 + rdlen
        if end > len(wire):
            return None
        while at < end:
            code, length = struct.unpack_from("!HH", wire, at)
            if at + 4 + length > end:
                return None
            # read as dnspython reads it: a malformed option it knows (ECS, EDE, ...) is FORMERR
            option = dns.edns.option_from_wire(code, wire, at + 4, length)
            options.append((code, option.to_wire()))
            at += 4 + length
        pos = end
    tsig_start = pos
    keyname, pos = _name(wire, pos)
    key_wire = wire[tsig_start:pos]
    if key_wire not in _NAMES:  # compressed: written out whole in the response
        key_wire = keyname.to_wire()
    if pos + 10 > len(wire):
        return None
    rdtype, rdclass, ttl, rdlen = _RR.unpack_from(wire, pos)
    pos += 10
    if rdtype != TSIG or rdclass != ANY or ttl != 0 or pos + rdlen != len(wire):
        return None  # RFC 8945 §4.2 (CLASS ANY, TTL 0), and nothing after it
    key = keyring.get(keyname)
    if key is None:
        return None
    tsig = dns.rdata.from_wire(ANY, TSIG, wire, pos, rdlen)
    if isinstance(key, bytes):  # a keyring of secrets, as dnspython takes it
        key = dns.tsig.Key(keyname, key, tsig.algorithm)
    dns.tsig.validate(wire, key, keyname, tsig, int(time.time() if now is None else now), b"", tsig_start)
    return LeanUpdate(wire, qid, flags, zone, zone_wire, zone_class, sections[0], sections[1], edns,
                      max(512, payload) if edns == 0 else 0, options, keyname,
                      key_wire, key, tsig, tsig.mac)


_NAMES: dict[bytes, dns.name.Name] = {}  # uncompressed wire → name: the zone and key names repeat


def _name(wire: bytes, pos: int) -> tuple[dns.name.Name, int]:
    end = wire.find(0, pos)
    if end >= 0:
        raw = wire[pos:end + 1]
        name = _NAMES.get(raw)
        if name is not None:
            return name, end + 1
    name, used = dns.name.from_wire(wire, pos)  # (name, bytes it took here)
    if end >= 0 and used == end + 1 - pos and len(_NAMES) < 4096:
        _NAMES[wire[pos:end + 1]] = name  # no pointer in it: the bytes alone say the name
    return name, pos + used


def _rr(wire: bytes, pos: int, *, prereq: bool) -> tuple[WireRR, int]:
    name, pos = _name(wire, pos)
    rdtype, rdclass, ttl, rdlen = _RR.unpack_from(wire, pos)
    pos += 10
    if rdtype in (OPT, TSIG) or pos + rdlen > len(wire):
        raise ValueError("OPT or TSIG outside the additional section, or RDATA past the end")
    deleting = None
    if rdclass in (ANY, NONE):
        deleting, rdclass = rdclass, IN
        empty = deleting == ANY or prereq
    elif rdclass != IN:
        raise ValueError("a class we leave to dnspython")
    else:
        empty = False
    if empty:
        if rdlen:
            raise ValueError("RDATA where RFC 2136 wants none")
        rdatas: tuple[_Rdata, ...] = ()
        ttl = 0  # dnspython's RRset of no RDATA keeps TTL 0 whatever the wire says
    elif _FIXED.get(rdtype) == rdlen:
        rdatas = (_Rdata(wire[pos:pos + rdlen]),)  # an address: any bytes of that length, as dnspython
    else:
        rd = dns.rdata.from_wire(rdclass, rdtype, wire, pos, rdlen)
        rdatas = (_Rdata(rd.to_wire()),)
    if ttl > 0x7FFFFFFF:
        ttl = 0  # as dnspython reads it (RFC 2181 §8)
    return WireRR(name, rdtype, rdclass, deleting, ttl, rdatas), pos + rdlen


def response(update: LeanUpdate, rcode: int, options: list[dns.edns.Option], payload: int,
             max_size: int, now: float | None = None) -> bytes | None:
    """The signed response to ``update`` as dnspython's ``make_response`` + ``use_edns`` would
    write it (RFC 2136 §3.8: the zone section copied, the others empty; RFC 8945 §5.3: a TSIG
    over the request MAC and the response, fudge 300), or None when it would not fit."""
    flags = 0x8000 | (update.flags & 0x7900) | (rcode & 0xF)  # QR, the opcode and RD copied
    out = bytearray(_HEADER.pack(update.id, flags, 1, 0, 0, 0 if update.edns < 0 else 1))
    out += update.zone_wire
    if update.edns >= 0:
        data = b"".join(struct.pack("!HH", o.otype, len(w)) + w for o in options for w in [o.to_wire()])
        out += b"\x00" + _RR.pack(OPT, payload, (rcode >> 4) << 24, len(data)) + data
    template = update.tsig
    if (template.error, template.other, template.original_id, template.fudge) != (0, b"", update.id, 300):
        template = template.replace(error=0, other=b"", original_id=update.id, fudge=300)
    signed, _ = dns.tsig.sign(bytes(out), update.key, template, int(time.time() if now is None else now),
                              update.mac)
    rdata = signed.to_wire()
    out += update.key_wire + _RR.pack(TSIG, ANY, 0, len(rdata)) + rdata
    struct.pack_into("!H", out, 10, 1 if update.edns < 0 else 2)
    return bytes(out) if len(out) <= max_size else None


__all__ = ["LeanUpdate", "WireRR", "read", "response"]
