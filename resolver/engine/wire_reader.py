"""A lean reader of DNS response wire format for the resolver's cold path (issue 11).

``dns.message.from_wire`` is the oracle: ``read`` returns a ``dns.message.Message`` equal to
what it builds (every section and field, each rdata's every attribute and its type;
tests/test_wire_reader.py compares them on real and fuzzed responses) or raises where it raises
(the exception class may differ). It is the same algorithm with the generic parts cut:

* owner names are walked by ``decode``, dnspython's decompression rules restated (pointers
  strictly backwards, a target never overlapping the segment that points to it, at most
  ``MAX_COMPRESSION_POINTER_CHAIN`` hops, labels below 64 octets, 255 octets in all), each
  offset walked once per message, and one ``Name`` per distinct spelling (a bounded table
  shared across messages);
* the rdatas of nearly every record a validating resolver reads — class IN RRSIG (fixed
  fields and an uncompressed signer, RFC 4034 §3.1.7), NS (its target through ``decode``, which
  must end exactly at the RDATA's end), A, AAAA, DS, DNSKEY, SVCB and HTTPS with the common
  parameters (an uncompressed target), and OPT without options — are
  built the way their ``__init__`` builds them, minus range checks that integers read from the
  wire cannot fail; any other shape (short or long RDATA, a pointer or a bad label in a signer,
  a reserved or mis-sized DS digest) goes to dnspython, which then accepts or raises as it must;
* RRsets are grouped in a dict keyed by the owner's case-folded labels instead of
  ``find_rrset``'s keyword and enum normalisation (and ``Name.__hash__``), and records join them
  with ``Rdataset.add``'s rules inlined (TTL minimisation, singleton types keeping the last
  record, one set insertion: an rdata's hash is its canonical wire form and ``Set.add``
  computes it twice); the question is built directly;
* the A, AAAA, DS, DNSKEY, RRSIG, NS, SVCB and HTTPS it builds keep the bytes they came from, their wire
  and canonical forms (resolver/engine/wired.py), so hashing, ``==`` and the signed data do
  not re-render them.

CAPS and LOAD whose map is flat (``_map``) are built directly too. Every other RDATA (SOA,
CNAME, NSEC, NSEC3, SVCB with other parameters, nested CAPS/LOAD maps, ...) is parsed by dnspython
(``dns.rdata.from_wire_parser``). Messages this reader does not handle itself (not a QUERY
opcode, TSIG) go to ``dns.message.from_wire``.
"""

from __future__ import annotations

import math
import struct

import dns.dnssectypes
import dns.exception
import dns.flags
import dns.immutable
import dns.message
import dns.name
import dns.opcode
import dns.rdata
import dns.rdataclass
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.wire
import dns.ipv6
import dns.rdtypes.dnskeybase
import dns.rdtypes.svcbbase as _svcbbase
from dns.rdtypes.ANY.OPT import OPT
import msgpack

from resolver.engine.wired import WiredA as A, WiredAAAA as AAAA, WiredDNSKEY as DNSKEY, WiredDS as DS
from resolver.engine.wired import WiredHTTPS as HTTPS, WiredNS as NS, WiredRRSIG as RRSIG, WiredSVCB as SVCB
from resolver.records import caps as _caps, capsmap as _capsmap, load as _load, mapdata as _mapdata

_OPT, _TSIG, _RRSIG, _NS = dns.rdatatype.OPT, dns.rdatatype.TSIG, dns.rdatatype.RRSIG, dns.rdatatype.NS
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_Q = struct.Struct("!HH")
_MAX_HOPS = dns.name.MAX_COMPRESSION_POINTER_CHAIN
_TYPES = {int(t): t for t in dns.rdatatype.RdataType}
_CLASSES = {int(c): c for c in dns.rdataclass.RdataClass}
_ALGORITHMS = {int(a): a for a in dns.dnssectypes.Algorithm}
_IN, _IN_CLASS = int(dns.rdataclass.IN), dns.rdataclass.IN
_RRSIG_TYPE, _NS_TYPE, _A_TYPE, _AAAA_TYPE = dns.rdatatype.RRSIG, dns.rdatatype.NS, dns.rdatatype.A, dns.rdatatype.AAAA
_DS_TYPE, _DNSKEY_TYPE, _OPT_TYPE = dns.rdatatype.DS, dns.rdatatype.DNSKEY, dns.rdatatype.OPT
_SIG_HEAD = struct.Struct("!HBBIIIH")
# Rdatas of the common types are built as their __init__ would build them, minus the checks
# that integers and octets read from the wire always pass: dnspython's immutable objects take
# their fields through object.__setattr__ there too.
_new, _set = object.__new__, object.__setattr__
_DS_HEAD = struct.Struct("!HBB")  # DS: key tag, algorithm, digest type; DNSKEY: flags, protocol, algorithm
_DS_LENGTHS = DS._digest_length_by_type  # noqa: SLF001 - the lengths DSBase.__init__ enforces
_DIGESTS = {int(d): d for d in dns.dnssectypes.DSDigest}
_KEY_FLAGS: dict[int, object] = {}  # DNSKEY flags value -> dnskeybase.Flag(value), made once
_FLAGS: dict[int, dns.flags.Flag] = {}  # header flags value -> dns.flags.Flag(value), made once


def _build(cls, rdclass, rdtype, fields: tuple) -> dns.rdata.Rdata:
    rd = _new(cls)
    _set(rd, "rdclass", rdclass)
    _set(rd, "rdtype", rdtype)
    _set(rd, "rdcomment", None)
    for slot, value in fields:
        _set(rd, slot, value)
    return rd


def _a(wire: bytes, start: int, end: int):
    if end - start != 4:
        return None  # dnspython: FormError
    data = wire[start:end]  # its wire form is its canonical form: no names (resolver/engine/wired.py)
    return _build(A, _IN_CLASS, _A_TYPE, (("address", f"{wire[start]}.{wire[start + 1]}.{wire[start + 2]}.{wire[start + 3]}"),
                                          ("_canonical", data), ("_plain", data)))


def _aaaa(wire: bytes, start: int, end: int):
    if end - start != 16:
        return None
    data = wire[start:end]
    return _build(AAAA, _IN_CLASS, _AAAA_TYPE, (("address", dns.ipv6.inet_ntoa(data)), ("_canonical", data),
                                                ("_plain", data)))


def _ds(wire: bytes, start: int, end: int):
    if end - start < 4:
        return None
    key_tag, algorithm, digest_type = _DS_HEAD.unpack_from(wire, start)
    expected = _DS_LENGTHS.get(digest_type)
    digest_kind = _DIGESTS.get(digest_type)
    if digest_kind is None or digest_type == 0 or (expected is not None and end - start - 4 != expected):
        return None  # reserved or unknown digest type, or a length dnspython refuses: its way
    data = wire[start:end]
    return _build(DS, _IN_CLASS, _DS_TYPE, (("key_tag", key_tag), ("algorithm", _algorithm(algorithm)),
                                            ("digest_type", digest_kind), ("digest", data[4:]),
                                            ("_canonical", data), ("_plain", data)))


def _dnskey(wire: bytes, start: int, end: int):
    if end - start < 4:
        return None
    flags, protocol, algorithm = _DS_HEAD.unpack_from(wire, start)
    flag = _KEY_FLAGS.get(flags)
    if flag is None:
        flag = _KEY_FLAGS[flags] = dns.rdtypes.dnskeybase.Flag(flags)
    data = wire[start:end]
    return _build(DNSKEY, _IN_CLASS, _DNSKEY_TYPE, (("flags", flag), ("protocol", protocol),
                                                    ("algorithm", _algorithm(algorithm)), ("key", data[4:]),
                                                    ("_canonical", data), ("_plain", data)))


# payload -> (the OPT rdata without options, {it: None}): rdatas are immutable, so one per
# payload size serves every message; the dict is copied, not rebuilt, because an rdata's hash
# renders it (OPT: a BytesIO per insertion). A bounded few payload sizes are kept.
_OPTS: dict[int, tuple[OPT, dict]] = {}


def _opt_entry(payload: int) -> tuple[OPT, dict]:
    entry = _OPTS.get(payload)
    if entry is None:
        rd = _build(OPT, _rdclass(payload), _OPT_TYPE, (("options", ()),))
        entry = (rd, {rd: None})
        if len(_OPTS) < 256:
            _OPTS[payload] = entry
    return entry


def _opt(payload: int):
    return _opt_entry(payload)[0]


def opt_rrset(payload: int, flags: int) -> dns.rrset.RRset:
    """The OPT RRset ``dns.renderer._make_opt(flags, payload)`` makes (no options), for
    querywire: an equal RRset of equal objects, built without the generic path."""
    rd, items = _opt_entry(payload)
    rrset = _rrset(dns.name.root, rd.rdclass, _OPT_TYPE, _NONE_TYPE, int(flags))
    rrset.items = items.copy()
    return rrset


# CAPS/LOAD (resolver/records): MapRdata.from_wire_parser decodes, then normalises the map four
# times and packs it twice (decode's canonical check, __init__, _FrozenMap), ~150 us for a
# ten-key map. For the shape publishers write — keys in canonical order, values scalars or lists
# of scalars — one unpack, one walk and one pack decide the same: with keys already sorted and
# valid, normalize(value) is value itself, so decode's test "encode(value) == RDATA" becomes
# packb(value) == RDATA. Any other shape (nested maps, unsorted or bad keys, bin/ext, NaN) is
# left to dnspython, which accepts or raises as it must.
_MAP_CLASSES = {_caps.TYPE: _caps.CAPS, _load.TYPE: _load.LOAD}
_MAP_TYPES = {value: dns.rdatatype.RdataType.make(value) for value in _MAP_CLASSES}
_SCALARS = (str, int, float, type(None))  # bool is an int; msgpack ints always fit 64 bits
_KEYS_SEEN: set[str] = set()  # keys KEY_RE accepted, a bounded few kept (registry keys repeat)
_unpack, _pack, _key_re, _isfinite = msgpack.unpackb, msgpack.packb, _capsmap.KEY_RE, math.isfinite


def _plain(value) -> bool:
    """A scalar _check accepts unchanged (finite floats: _check refuses NaN and infinities)."""
    return isinstance(value, _SCALARS) and (type(value) is not float or _isfinite(value))


def _map(rdtype: int, blob: bytes):
    try:
        value = _unpack(blob, raw=False, strict_map_key=True, use_list=True, max_bin_len=0, max_ext_len=0)
    except Exception:  # noqa: BLE001 - malformed: dnspython raises its FormError
        return None
    if type(value) is not dict:
        return None
    previous = ""
    for key, item in value.items():
        if type(key) is not str or key <= previous:  # keys are ASCII: str order is byte order
            return None
        if key not in _KEYS_SEEN:
            if not _key_re.fullmatch(key):
                return None
            if len(_KEYS_SEEN) < 4096:
                _KEYS_SEEN.add(key)
        previous = key
        if type(item) is list:
            if not all(_plain(x) for x in item):
                return None
        elif not _plain(item):
            return None
    packed = _pack(value, use_bin_type=True)
    if packed != blob:
        return None  # not canonical (shorter headers, float32, duplicates): dnspython refuses it
    frozen = _new(_mapdata._FrozenMap)  # noqa: SLF001 - what _FrozenMap(value) builds: value, encode(value)
    frozen.value = value
    frozen._key = packed  # noqa: SLF001
    return _build(_MAP_CLASSES[rdtype], _IN_CLASS, _MAP_TYPES[rdtype], (("data", frozen),))


# SVCB/HTTPS (RFC 9460 §2.2): SVCBBase.from_wire_parser builds a Param per key through its
# generic parser, then renders the whole record again for every hash and signature check. The
# parameters an endpoint record carries (mandatory, alpn, no-default-alpn, port, ipv4hint,
# ipv6hint, and keys dnspython keeps as GenericParam) are built here as their __init__ would;
# the target is read only when written out in full (RFC 9460 §2.2: not compressed). Any other
# shape — a pointer in the target, keys out of order, an empty or mis-sized value, ech, ohttp,
# docpath, a mandatory key missing, no-default-alpn without alpn — is dnspython's to judge.
# Its canonical form is its wire form: SVCB is not in RFC 4034 §6.2's list (no name lowered)
# and strictly increasing keys are the order it renders (tests/test_wire_reader.py checks).
_SVCB_CLASSES = {64: (SVCB, dns.rdatatype.SVCB), 65: (HTTPS, dns.rdatatype.HTTPS)}
_DNSPYTHON_PARAMS = frozenset(int(k) for k in _svcbbase._class_for_key)  # noqa: SLF001 - keys not generic
_PARAM_KEYS: dict[int, _svcbbase.ParamKey] = {}  # key value -> ParamKey.make(value), a bounded few kept
_ALPN_PARAM, _PORT_PARAM, _GENERIC_PARAM = _svcbbase.ALPNParam, _svcbbase.PortParam, _svcbbase.GenericParam
_V4_PARAM, _V6_PARAM, _MANDATORY_PARAM = _svcbbase.IPv4HintParam, _svcbbase.IPv6HintParam, _svcbbase.MandatoryParam
_PARAMS_DICT = dns.immutable.Dict


def _written_out(wire: bytes, pos: int, end: int) -> tuple[tuple[bytes, ...], int] | None:
    """The labels (root included) of a name written out in full at ``pos`` within an RDATA
    ending at ``end``, and the offset of its final zero octet; None for a pointer, a bad label
    type, a name running past ``end`` or one over 255 octets — shapes dnspython must judge.
    RRSIG signers (RFC 4034 §3.1.7) and SVCB targets (RFC 9460 §2.2) are never compressed."""
    first = pos
    labels = []
    while True:
        count = wire[pos] if pos < end else 64
        if count == 0:
            break
        if count >= 64 or pos + 1 + count > end:
            return None
        labels.append(wire[pos + 1:pos + 1 + count])
        pos += 1 + count
    if pos - first + 1 > 255:
        return None
    labels.append(b"")
    return tuple(labels), pos


def _params_dict(params: dict) -> dns.immutable.Dict:
    """``dns.immutable.Dict(params, no_copy=True)``: its two slots, without the immutable
    __init__ wrapper (a context variable set and reset per object)."""
    frozen = _new(_PARAMS_DICT)
    _set(frozen, "_odict", params)
    _set(frozen, "_hash", None)
    return frozen


def _param_key(value: int) -> _svcbbase.ParamKey:
    found = _PARAM_KEYS.get(value)
    if found is None:
        found = _svcbbase.ParamKey.make(value)  # unregistered keys: a new pseudo-member per call
        if len(_PARAM_KEYS) < 1024:
            _PARAM_KEYS[value] = found
    return found


def _param(cls, slot: str, value):
    param = _new(cls)
    _set(param, slot, value)
    return param


def _svcb(rdtype: int, wire: bytes, start: int, end: int):
    if end - start < 3:
        return None
    target = _written_out(wire, start + 2, end)
    if target is None:
        return None
    labels, pos = target
    pos += 1
    priority = wire[start] << 8 | wire[start + 1]
    if priority == 0 and pos != end:
        return None  # parameters in AliasMode
    params: dict = {}
    prior = -1
    mandatory: tuple = ()
    while pos < end:
        if pos + 4 > end:
            return None
        key, length = _Q.unpack_from(wire, pos)
        pos += 4
        stop = pos + length
        if key <= prior or stop > end:
            return None
        prior = key
        if key == 1:  # alpn: one or more non-empty length-prefixed ids filling the value
            ids = []
            at = pos
            while at < stop:
                n = wire[at]
                if n == 0 or at + 1 + n > stop:
                    return None
                ids.append(wire[at + 1:at + 1 + n])
                at += 1 + n
            if not ids:
                return None
            value = _param(_ALPN_PARAM, "ids", tuple(ids))
        elif key == 3:
            if length != 2:
                return None
            value = _param(_PORT_PARAM, "port", wire[pos] << 8 | wire[pos + 1])
        elif key == 4:
            if length == 0 or length & 3:
                return None
            value = _param(_V4_PARAM, "addresses", tuple(
                [f"{wire[at]}.{wire[at + 1]}.{wire[at + 2]}.{wire[at + 3]}" for at in range(pos, stop, 4)]))
        elif key == 6:
            if length == 0 or length & 15:
                return None
            value = _param(_V6_PARAM, "addresses", tuple(
                [dns.ipv6.inet_ntoa(wire[at:at + 16]) for at in range(pos, stop, 16)]))
        elif key == 2:  # no-default-alpn: always empty
            if length:
                return None
            value = None
        elif key == 0:  # mandatory: keys strictly increasing, never itself
            if length == 0 or length & 1:
                return None
            keys = struct.unpack_from(f"!{length // 2}H", wire, pos)
            if keys[0] == 0 or any(a >= b for a, b in zip(keys, keys[1:])):
                return None
            mandatory = keys
            value = _param(_MANDATORY_PARAM, "keys", tuple([_param_key(k) for k in keys]))
        elif key in _DNSPYTHON_PARAMS:
            return None  # ech, ohttp, docpath: their own checks, dnspython's
        else:
            value = _param(_GENERIC_PARAM, "value", wire[pos:stop]) if length else None
        params[_param_key(key)] = value
        pos = stop
    if any(k not in params for k in mandatory) or (2 in params and 1 not in params):
        return None  # a mandatory key missing, no-default-alpn without alpn: __init__ refuses
    cls, enum = _SVCB_CLASSES[rdtype]
    data = wire[start:end]
    return _build(cls, _IN_CLASS, enum, (("priority", priority), ("target", _name_of(labels)[0]),
                                         ("params", _params_dict(params)),
                                         ("_canonical", data), ("_plain", data)))


_FIXED_BUILDERS = {int(dns.rdatatype.A): _a, int(dns.rdatatype.AAAA): _aaaa, int(dns.rdatatype.DS): _ds,
                   int(dns.rdatatype.DNSKEY): _dnskey}
_SINGLETONS = frozenset(int(t) for t in dns.rdatatype._singletons)  # noqa: SLF001 - is_singleton's set


_ROOT_LABELS, _NONE_TYPE = dns.name.root.labels, dns.rdatatype.NONE
_RRSET = dns.rrset.RRset


def _rrset(name: dns.name.Name, rdclass, rdtype, covers, ttl: int) -> dns.rrset.RRset:
    """``RRset(name, rdclass, rdtype, covers)`` with ``ttl`` set: the slots its three nested
    __init__s (RRset, Rdataset, Set) fill, filled directly."""
    rrset = _new(_RRSET)
    rrset.items = {}
    rrset.rdclass = rdclass
    rrset.rdtype = rdtype
    rrset.covers = covers
    rrset.ttl = ttl
    rrset.name = name
    rrset.deleting = None
    return rrset


def _rdtype(value: int):
    found = _TYPES.get(value)  # not `or`: RdataType.NONE (0, every covers but RRSIG's) is falsy
    if found is None:
        # An unregistered type (CAPS, LOAD): make() builds a new pseudo-member every call.
        found = dns.rdatatype.RdataType.make(value)
        if len(_TYPES) < 1024:
            _TYPES[value] = found
    return found


_RCODES: dict[int, dns.rcode.Rcode] = {}


def rcode(message: dns.message.Message) -> dns.rcode.Rcode:
    """``message.rcode()``: the 12-bit value from the header and EDNS (RFC 6891 §6.1.3),
    its Rcode made once per value (dnspython makes one per call)."""
    value = (int(message.flags) & 0x000F) | ((int(message.ednsflags) >> 20) & 0xFF0)
    found = _RCODES.get(value)
    if found is None:
        found = _RCODES[value] = dns.rcode.Rcode.make(value)  # 4096 values at most
    return found


def _algorithm(value: int):
    found = _ALGORITHMS.get(value)
    return dns.dnssectypes.Algorithm.make(value) if found is None else found


def _rdclass(value: int):
    found = _CLASSES.get(value)
    if found is None:
        found = dns.rdataclass.RdataClass.make(value)
        if len(_CLASSES) < 1024:  # e.g. OPT payload sizes: made once, a bounded few kept
            _CLASSES[value] = found
    return found


# labels -> (Name, its labels lowercased: the RRset grouping key, cheaper than Name.__hash__),
# shared by every message: zone, server and signer names recur in nearly every response.
# Names are immutable, so one object per spelling is safe; the table is bounded (cleared when full).
_NAMES: dict[tuple[bytes, ...], tuple[dns.name.Name, tuple[bytes, ...]]] = {}
_NAMES_MAX = 128  # the names that repeat are few (zones, servers, signers, the leaf across its questions); leaf names
# kept longer would cost memory per identifier (tools/bench/memory.py) and save nothing


def _name_of(labels: tuple[bytes, ...]) -> tuple[dns.name.Name, tuple[bytes, ...]]:
    """The Name of labels ``decode`` or the signer walk produced: each below 64 octets, only
    the last empty; what is left of Name()'s checks is the 255-octet limit (NameTooLong, as
    dnspython's reader raises)."""
    hit = _NAMES.get(labels)
    if hit is None:
        if sum(map(len, labels)) + len(labels) > 255:
            raise dns.name.NameTooLong
        name = _new(dns.name.Name)
        _set(name, "labels", labels)
        hit = (name, tuple([label.lower() for label in labels]))
        if len(_NAMES) >= _NAMES_MAX:
            _NAMES.clear()
        _NAMES[labels] = hit
    return hit


def read(wire: bytes) -> dns.message.Message:
    """Parse a response as ``dns.message.from_wire(wire)`` would (same result or same failure)."""
    if len(wire) < 12:
        raise dns.message.ShortHeader
    qid, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    if dns.opcode.from_flags(flags) != dns.opcode.QUERY:
        return dns.message.from_wire(wire)
    message = dns.message.QueryMessage(id=qid)
    flag = _FLAGS.get(flags)
    if flag is None:
        flag = _FLAGS[flags] = dns.flags.Flag(flags)  # 65536 values at most, each made once
    message.flags = flag
    message.wire = wire
    size = len(wire)
    parser: dns.wire.Parser | None = None  # dnspython's, made for the first RDATA it must read
    # offset -> (labels, end of the first segment, pointer hops) of the name dnspython reads
    # when it starts at that offset on its own; and one Name object per distinct spelling.
    decoded: dict[int, tuple[tuple[bytes, ...], int, int]] = {}

    def decode(start: int, depth: int) -> tuple[tuple[bytes, ...], int, int]:
        """dns.name.from_wire_parser's walk: pointers strictly backwards (BadPointer), the
        target not overlapping the segment that points to it (restrict_end), at most
        MAX_COMPRESSION_POINTER_CHAIN hops; what a name read from an offset is never depends
        on who points there, so each offset is walked once."""
        hit = decoded.get(start)
        if hit is not None:
            return hit
        labels: list[bytes] = []
        pos = start
        while True:
            if pos >= size:
                raise dns.exception.FormError
            count = wire[pos]
            if count == 0:
                labels.append(b"")
                result = (tuple(labels), pos + 1, 0)
                break
            if count < 64:
                pos += 1 + count
                if pos > size:
                    raise dns.exception.FormError
                labels.append(wire[pos - count:pos])
            elif count >= 192:
                if pos + 1 >= size:
                    raise dns.exception.FormError
                target = (count & 0x3F) << 8 | wire[pos + 1]
                if target >= start:
                    raise dns.name.BadPointer
                if depth >= _MAX_HOPS:
                    raise dns.name.PointerChainTooLong
                tail, tail_end, hops = decode(target, depth + 1)
                if tail_end > start:
                    raise dns.exception.FormError  # the target runs into this segment
                if hops >= _MAX_HOPS:
                    raise dns.name.PointerChainTooLong
                result = (tuple(labels) + tail, pos + 2, hops + 1)
                break
            else:
                raise dns.name.BadLabelType
        decoded[start] = result
        return result

    name_of = _name_of

    def rrsig(start: int, end: int):
        """An RRSIG read from wire[start:end] without dnspython's generic path (the same
        object: every field comes from fixed-size integers, so its range checks cannot fail,
        and the signer may not be compressed, RFC 4034 §3.1.7); None when dnspython must
        judge it (short RDATA, a pointer or bad label in the signer, a name too long)."""
        if end - start < 19:
            return None
        signer_at = _written_out(wire, start + 18, end)
        if signer_at is None:
            return None
        key, pos = signer_at
        covered, algorithm, count, original_ttl, expiration, inception, key_tag = _SIG_HEAD.unpack_from(wire, start)
        plain = wire[start:end]
        # Canonical form: the signer lowercased (RFC 4034 §6.2). Its length octets are below
        # 64, which bytes.lower leaves alone, so the whole name lowers in one call.
        signer = plain[18:pos + 1 - start]
        folded = signer.lower()
        canonical = plain if folded == signer else plain[:18] + folded + plain[pos + 1 - start:]
        # _build's slots, set one by one: two or more RRSIGs in nearly every response.
        rd = _new(RRSIG)
        _set(rd, "rdclass", _IN_CLASS)
        _set(rd, "rdtype", _RRSIG_TYPE)
        _set(rd, "rdcomment", None)
        _set(rd, "type_covered", _rdtype(covered))
        _set(rd, "algorithm", _algorithm(algorithm))
        _set(rd, "labels", count)
        _set(rd, "original_ttl", original_ttl)
        _set(rd, "expiration", expiration)
        _set(rd, "inception", inception)
        _set(rd, "key_tag", key_tag)
        _set(rd, "signer", name_of(key)[0])
        _set(rd, "signature", plain[pos + 1 - start:])
        _set(rd, "_canonical", canonical)
        _set(rd, "_plain", plain)
        return rd

    def ns(start: int, end: int):
        """An NS whose target (compressible, RFC 1035 §3.3.11) ``decode`` reads exactly as
        dnspython would within the RDATA; None when it does not fill the RDATA exactly."""
        labels, target_end, hops = decode(start, 0)
        if target_end != end:
            return None
        # The target written out (no pointer: the RDATA itself), and lowercased for the
        # canonical form (length octets are below 64: bytes.lower leaves them alone).
        plain = wire[start:end] if hops == 0 else b"".join([bytes((len(label),)) + label for label in labels])
        return _build(NS, _IN_CLASS, _NS_TYPE, (("target", name_of(labels)[0]), ("_canonical", plain.lower()),
                                                ("_plain", plain)))

    def fast(rdtype: int, rdclass: int, start: int, end: int):
        if rdtype == _OPT:  # CLASS is the payload size (RFC 6891 §6.1.2); no options: nothing to parse
            return _opt(rdclass) if start == end else None
        if rdclass != _IN:
            return None
        if rdtype == _RRSIG:
            return rrsig(start, end)
        if rdtype == _NS:
            return ns(start, end)
        if rdtype in _MAP_CLASSES:
            return _map(rdtype, wire[start:end])
        if rdtype in _SVCB_CLASSES:
            return _svcb(rdtype, wire, start, end)
        builder = _FIXED_BUILDERS.get(rdtype)
        return None if builder is None else builder(wire, start, end)

    pos = 12
    for _ in range(qdcount):
        labels, pos, _ = decode(pos, 0)
        qname = name_of(labels)[0]
        if pos + 4 > size:
            raise dns.exception.FormError  # as Parser.get_struct on a short read
        rdtype, rdclass = _Q.unpack_from(wire, pos)
        pos += 4
        # force_unique: every question entry is its own RRset, as find_rrset(force_unique=True).
        message.question.append(_rrset(qname, _rdclass(rdclass), _rdtype(rdtype), _NONE_TYPE, 0))
    for number, count in ((1, ancount), (2, nscount), (3, arcount)):
        section = message.sections[number]
        index: dict[tuple, dns.rrset.RRset] = {}
        for i in range(count):
            labels, pos, _ = decode(pos, 0)
            name, folded = name_of(labels)
            if pos + 10 > size:
                raise dns.exception.FormError
            rdtype, rdclass, ttl, rdlen = _RR.unpack_from(wire, pos)
            pos += 10
            if rdtype == _TSIG:
                return dns.message.from_wire(wire)  # TSIG needs a keyring: dnspython's way
            if rdtype == _OPT and (number != 3 or message.opt or labels != _ROOT_LABELS):  # the root, any case
                raise dns.message.BadEDNS
            end = pos + rdlen
            rd = fast(rdtype, rdclass, pos, end) if end <= size else None
            if rd is not None:
                # Only (RR)SIG covers a type; every rdata the reader builds but RRSIG covers none.
                covers = rd.type_covered if rdtype == _RRSIG else 0
            else:
                if parser is None:
                    parser = dns.wire.Parser(wire)
                parser.seek(pos)
                with parser.restrict_to(rdlen):  # FormError past the end or when not filled
                    rd = dns.rdata.from_wire_parser(rdclass, rdtype, parser, None)
                covers = rd.covers()
            pos = end
            if rdtype == _OPT:
                # dns.rrset.from_rdata(name, ttl, rd): the TTL as read (it carries the extended
                # RCODE and flags, RFC 6891 §6.1.3), the one record added.
                message.opt = opt = _rrset(name, rd.rdclass, rd.rdtype, _NONE_TYPE, ttl)
                shared = _OPTS.get(rdclass)
                if shared is not None and shared[0] is rd:  # the reader's own: its dict, copied
                    opt.items = shared[1].copy()
                else:
                    opt.items[rd] = None
                continue
            key = (folded, rdclass, rdtype, covers)  # find_rrset's match: names equal ignoring case
            rrset = index.get(key)
            ttl = 0 if ttl > 0x7FFFFFFF else ttl
            # Rdataset.add's rules, inlined: class, type and covers already match by the key,
            # so what is left is TTL minimisation, singleton replacement and one set insertion
            # (Set.add hashes an rdata twice, and an rdata's hash is its canonical wire form).
            if rrset is None:
                rrset = index[key] = _rrset(name, rd.rdclass, rd.rdtype, _rdtype(covers), ttl)
                section.append(rrset)
            elif ttl < rrset.ttl:
                rrset.ttl = ttl
            items = rrset.items
            if items and rdtype in _SINGLETONS:
                items.clear()
            items.setdefault(rd, None)
    if pos != size:
        raise dns.message.TrailingJunk
    return message
