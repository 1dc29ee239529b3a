"""wire_reader.read agrees with dns.message.from_wire (the oracle) on every section and field,
or both reject: real responses from NSD and Knot serving a signed three-level hierarchy
(Knot serves only the apex: referrals with glue, REFUSED; NSEC denials, DNSKEY/DS/RRSIG, SVCB/CAPS/LOAD, TC over a small EDNS
buffer — NSD and Knot fit these in 512 octets, so TC is only met in the fuzz slice), then a bounded fuzz slice of mutated, truncated and pointer-tricked copies."""

from __future__ import annotations

import random
import struct
import sys
from pathlib import Path

import dns.flags
import dns.immutable
import dns.message
import dns.name
import dns.rdata
import dns.query
import dns.rrset
import msgpack
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools" / "bench"))
import hierarchy  # noqa: E402

from resolver.engine import wire_reader, wired  # noqa: E402
from resolver.records import mapdata  # noqa: E402
from support import peer_servers  # noqa: E402
from support.net import free_port  # noqa: E402

NET = "127.0.158"
QTYPES = ("SOA", "NS", "DNSKEY", "DS", "A", "AAAA", "SVCB", "TYPE65380", "TYPE65381", "TXT", "NSEC", "ANY")


def _typed(value):
    """A value with the type of every part (1 == 1.0 == True in Python; the reader's maps must
    hold what dnspython's hold)."""
    if isinstance(value, dict):
        return dict, tuple((type(k), k, _typed(v)) for k, v in value.items())
    if isinstance(value, list):
        return list, tuple(_typed(v) for v in value)
    return type(value), repr(value)


def _slots(rd) -> tuple:
    """Every field of an rdata with its type (names by their exact labels): the reader builds
    some rdatas itself, and they must be dnspython's objects in every respect, not just equal."""
    def value(v):
        if isinstance(v, dns.name.Name):
            return type(v), v.labels
        if isinstance(v, mapdata._FrozenMap):  # CAPS/LOAD: the map with every value's type, and its bytes
            return type(v), _typed(v.value), type(v._key), v._key
        if isinstance(v, dns.immutable.Dict):  # SVCB parameters: no __eq__; every key and Param field
            return type(v), sorted(vars(v)), hash(v), tuple((type(k), int(k), repr(k), type(x), None if x is None else sorted(
                (f, type(y), y) for f, y in vars(x).items())) for k, x in v.items())
        return type(v), v
    _held_forms_agree(rd)
    return tuple((slot, value(getattr(rd, slot))) for slot in rd._get_all_slots() if slot not in wired.CACHE_SLOTS)


def _held_forms_agree(rd) -> None:
    """An rdata that keeps its wire forms (resolver/engine/wired.py) must hold exactly what
    dnspython renders from its fields: the canonical form (hash, ==, signatures) and the
    uncompressed wire form."""
    base = wired.dnspython_type(rd)
    if base is type(rd):
        return
    assert rd._canonical == dns.rdata.Rdata.to_wire(rd, canonicalize=True) == base.to_digestable(rd, dns.name.root)
    assert rd._plain == dns.rdata.Rdata.to_wire(rd) == base.to_wire(rd, origin=dns.name.root)
    assert hash(rd) == hash(dns.rdata.Rdata.to_wire(rd, canonicalize=True))


def _fields(m: dns.message.Message) -> tuple:
    def section(rrsets):
        return [(type(r), r.deleting, r.name.labels, type(r.rdclass), r.rdclass, type(r.rdtype), r.rdtype, type(r.covers), r.covers, r.ttl,
                 sorted((rd.to_wire(), _slots(rd)) for rd in r), [wired.dnspython_type(rd) for rd in r]) for r in rrsets]
    opt = None if m.opt is None else (type(m.opt), m.opt.name, m.opt.ttl, type(m.opt.rdclass), m.opt.rdclass,
                                      type(m.opt.rdtype), m.opt.rdtype, type(m.opt.covers), m.opt.covers,
                                      m.opt.deleting,
                                      [(rd.to_wire(), _slots(rd)) for rd in m.opt])
    return (type(m), m.id, m.flags, m.rcode(), m.opcode(), m.edns, m.ednsflags, m.payload,
            [o.to_wire() for o in m.options], opt, m.wire,
            section(m.question), section(m.answer), section(m.authority), section(m.additional))


def _outcome(parse, wire: bytes):
    try:
        return ("ok", _fields(parse(wire)))
    except Exception as exc:  # both must reject; the exception class may differ
        return ("reject", None)


def agree(wire: bytes) -> bool:
    ours, oracle = _outcome(wire_reader.read, wire), _outcome(dns.message.from_wire, wire)
    assert ours == oracle, wire.hex()
    return ours[0] == "ok"


@pytest.fixture(scope="module")
def captured(tmp_path_factory) -> list[bytes]:
    work = tmp_path_factory.mktemp("wire_reader")
    h = hierarchy.build(work / "zones", 4, net=NET)
    out: list[bytes] = []
    port = free_port(f"{NET}.1")
    with peer_servers.nsd(work / "nsd", f"{NET}.1", port, h.files), \
            peer_servers.knot(work / "knot", f"{NET}.2", port, {hierarchy.APEX: h.files[hierarchy.APEX]}):
        for server in (f"{NET}.1", f"{NET}.2"):
            for zone in h.files:
                for owner in (zone, f"pool-0.{zone}", f"nx.{zone}", f"cmcc.{zone}", f"ns1.cmcc.{zone}",
                              f"x.bj.cmcc.{zone}", f"pool-1.bj.cmcc.{zone}"):
                    for qtype in QTYPES:
                        q = dns.message.make_query(owner, qtype, want_dnssec=True, payload=1232)
                        out.append(dns.query.udp(q, server, port=port, timeout=3).to_wire())
                q = dns.message.make_query(zone, "ANY", want_dnssec=True, payload=512)
                out.append(dns.query.udp(q, server, port=port, timeout=3, raise_on_truncation=False).to_wire())
    return out



def test_real_responses_agree(captured):
    assert len(captured) > 300
    assert all(agree(w) for w in captured)
    parsed = [dns.message.from_wire(w) for w in captured]
    assert any(m.authority and not m.answer and not m.flags & dns.flags.AA for m in parsed)  # referral


def _mutations(wire: bytes, rng: random.Random):
    yield wire[:rng.randrange(len(wire))]                       # truncation
    b = bytearray(wire)
    for _ in range(rng.randint(1, 4)):
        b[rng.randrange(len(b))] = rng.randrange(256)           # byte flips
    yield bytes(b)
    if len(wire) > 14:
        b = bytearray(wire)
        at = rng.randrange(12, len(b) - 1)
        target = rng.choice((at, at + 1, rng.randrange(len(b)), rng.randrange(0x4000), 12))
        b[at:at + 2] = bytes((0xC0 | target >> 8 & 0x3F, target & 0xFF))  # pointer tricks
        yield bytes(b)
    yield wire + bytes(rng.randrange(1, 4))                     # trailing garbage
    b = bytearray(wire)
    b[rng.choice((4, 6, 8, 10)) + 1] += rng.randint(1, 3)        # counts larger than the message
    yield bytes(b)


def test_fuzzed_responses_agree_or_both_reject(captured):
    rng = random.Random(11)
    cases = accepted = 0
    while cases < 2500:
        for wire in _mutations(rng.choice(captured), rng):
            accepted += agree(wire)
            cases += 1
    assert 0 < accepted < cases  # both outcomes exercised


@pytest.mark.slow
def test_fuzzed_long(captured):
    rng = random.Random(1)
    for _ in range(40_000):
        for wire in _mutations(rng.choice(captured), rng):
            agree(wire)


def _split_rrsets_wire(records: list[tuple[str, int, str, str]]) -> bytes:
    """A response whose answer holds each (owner, ttl, type, rdata) as its own RR, in the given
    order, so one RRset arrives in pieces: the grouping rules (TTL minimisation, duplicates,
    singleton types keeping only the last record) are then the reader's own to get right."""
    m = dns.message.make_response(dns.message.make_query("a.example.", "A"))
    for owner, ttl, rdtype, text in records:
        m.answer.append(dns.rrset.from_text(owner, ttl, "IN", rdtype, text))
    return m.to_wire(max_size=65535)


def test_rrsets_in_pieces_agree():
    rng = random.Random(5)
    pool = [("a.example.", "A", "192.0.2.1"), ("a.example.", "A", "192.0.2.2"), ("A.EXAMPLE.", "A", "192.0.2.1"),
            ("a.example.", "CNAME", "b.example."), ("a.example.", "CNAME", "C.example."),
            ("a.example.", "NSEC", "b.example. A RRSIG NSEC"), ("a.example.", "NSEC", "c.example. A"),
            ("a.example.", "RRSIG", "A 15 2 300 20300101000000 20200101000000 1 example. AAAA"),
            ("a.example.", "RRSIG", "NSEC 15 2 300 20300101000000 20200101000000 1 example. AAAA"),
            ("a.example.", "RRSIG", "A 15 2 300 20300101000000 20200101000000 2 Example. AAAA"),
            ("a.example.", "TYPE65380", r"\# 2 8000"), ("a.example.", "TYPE65380", r"\# 2 8000")]
    for _ in range(400):
        records = [(owner, rng.choice((0, 1, 300, 60, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)), rdtype, text)
                   for owner, rdtype, text in rng.choices(pool, k=rng.randint(1, 6))]
        try:
            wire = _split_rrsets_wire(records)
        except Exception:
            continue  # dnspython will not render it (e.g. a TTL it refuses): nothing to compare
        assert agree(wire)


def _answer_wire(rdtype: int, rdata: bytes, rdclass: int = 1, ttl: int = 300) -> bytes:
    """A response whose one answer has these RDATA octets, owner compressed against the
    question (example., at offset 12)."""
    question = b"\x07example\x00" + struct.pack("!HH", rdtype, 1)
    return (struct.pack("!HHHHHH", 7, 0x8400, 1, 1, 0, 0) + question
            + b"\xc0\x0c" + struct.pack("!HHIH", rdtype, rdclass, ttl, len(rdata)) + rdata)


def _rrsig_wire(rdata: bytes, rdclass: int = 1) -> bytes:
    return _answer_wire(46, rdata, rdclass)


def test_fixed_rdata_shapes_agree():
    """The reader builds A, AAAA, DS, DNSKEY and NS itself: RDATA of every length, DS digest
    types with right and wrong digest lengths (0 is reserved), DNSKEY flags of any value, NS
    targets plain, compressed against the question, pointing forward or into themselves, not
    filling the RDATA or running past it — in classes IN, CH and ANY."""
    rng = random.Random(9)
    cases: list[tuple[int, bytes]] = []
    for n in range(0, 20):
        cases += [(1, bytes(range(n))), (28, bytes(range(n)))]
    for digest_type in range(7):
        for length in (0, 19, 20, 32, 48, 64):
            cases.append((43, struct.pack("!HBB", 4242, 15, digest_type) + bytes(length)))
    cases += [(43, b"\x00\x01\x0f"), (48, b"\x01\x01\x03")]
    for _ in range(60):
        cases.append((48, struct.pack("!HBB", rng.getrandbits(16), rng.choice((3, 0, 255)),
                                      rng.choice((8, 13, 15, 99))) + bytes(rng.randrange(70))))
    at_rdata = 12 + 13 + 12  # where the answer's RDATA starts in _answer_wire
    for target in (b"\x00", b"\x03ns1\x00", b"\x03NS1\xc0\x0c", b"\xc0\x0c", b"\x03ns1\xc0\x0c\x00",
                   b"\x03ns1", b"\xc0", bytes((0xC0, at_rdata)), bytes((0xC0, at_rdata + 4)), b"\x03ns1\xc0\x14",
                   b"\x05ns1\x00", b"\x41" + b"a" * 65 + b"\x00", b"\x80\x00"):
        cases.append((2, target))
    for _ in range(300):
        rdtype, rdata = rng.choice(cases)
        body = bytearray(rdata)
        if body:
            body[rng.randrange(len(body))] = rng.randrange(256)
        cases.append((rdtype, bytes(body)))
    accepted = 0
    for rdtype, rdata in cases:
        for rdclass in (1, 3, 255):
            accepted += agree(_answer_wire(rdtype, rdata, rdclass))
    assert 0 < accepted < 3 * len(cases)


def test_rrsig_rdata_shapes_agree():
    """The reader builds RRSIGs itself: every shape of RDATA dnspython accepts or refuses."""
    rng = random.Random(6)
    head = struct.pack("!HBBIIIH", 64, 15, 3, 300, 2_000_000_000, 1_900_000_000, 4242)
    signers = [b"\x02bj\x04CMcc\x03cid\x00", b"\x00", b"\xc0\x0c", b"\x02bj\xc0\x0c", b"\x40" + b"a" * 64 + b"\x00",
               b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63 + b"\x3f" + b"c" * 63 + b"\x3e" + b"d" * 62 + b"\x00",  # 255
               b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63 + b"\x3f" + b"c" * 63 + b"\x3f" + b"d" * 63 + b"\x00",  # 256
               b"\x02bj", b"\x05bj\x00", b"\x80ab\x00"]
    cases = []
    for signer in signers:
        for signature in (b"", b"\x01", bytes(64)):
            cases.append(head + signer + signature)
    for rdlen in range(0, 20):
        cases.append((head + signers[0] + bytes(64))[:rdlen])
    for _ in range(600):
        fields = struct.pack("!HBBIIIH", rng.choice((0, 1, 46, 64, 65380, rng.getrandbits(16))),
                             rng.choice((0, 8, 13, 15, 200, 255)), rng.choice((0, 1, 3, 255)), rng.getrandbits(32),
                             rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(16))
        body = bytearray(rng.choice((head, fields)) + rng.choice(signers) + bytes(rng.randrange(70)))
        for _ in range(rng.randint(0, 3)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        cases.append(bytes(body))
    accepted = 0
    for rdata in cases:
        for rdclass in (1, 3, 255):
            accepted += agree(_rrsig_wire(rdata, rdclass))
    assert 0 < accepted < 3 * len(cases)


def _svcb_param(key: int, value: bytes) -> bytes:
    return struct.pack("!HH", key, len(value)) + value


def _svcb_cases(rng: random.Random) -> list[bytes]:
    """SVCB RDATA of every shape the reader builds or hands on: AliasMode with and without
    parameters, targets plain, mixed-case, root, compressed or too long, each common key with
    right and wrong values, keys out of order or repeated, mandatory lists sorted, unsorted,
    listing itself or a missing key, no-default-alpn with and without alpn, ech/ohttp/docpath
    and generic keys (empty and not), then random byte flips of all of them."""
    # dnspython refuses a compressed target (RFC 9460 §2.2): DecompressionForbidden.
    targets = [b"\x00", b"\x06pool-0\x02bj\x04CMcc\x03cid\x00", b"\x03api\xc0\x0c", b"\xc0\x0c",
               b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63 + b"\x3f" + b"c" * 63 + b"\x3f" + b"d" * 63 + b"\x00",
               b"\x03api", b"\x05api\x00", b"\x80ab\x00"]
    values = {
        0: [struct.pack("!HH", 1, 3), struct.pack("!HH", 3, 1), struct.pack("!H", 0), b"", b"\x00",
            struct.pack("!HH", 3, 3), struct.pack("!H", 65001)],
        1: [b"\x02h2\x08http/1.1", b"\x02h3", b"", b"\x00", b"\x02h2\x05", b"\x03" + b"a,b"],
        2: [b"", b"\x00"],
        3: [struct.pack("!H", 443), struct.pack("!H", 0), b"\x01", b"\x01\x02\x03"],
        4: [bytes((127, 0, 0, 1)), bytes((10, 0, 0, 1, 192, 0, 2, 255)), b"", b"\x01\x02\x03"],
        5: [struct.pack("!H", 4) + b"abcd", b"", b"\x00\x09abc"],
        6: [bytes(15) + b"\x01", bytes.fromhex("20010db8000000000000000000000001") * 2,
            bytes.fromhex("00000000000000000000ffff7f000001"), bytes.fromhex("fe800000000000000000000000000000"), b"",
            bytes(17)],
        7: [b"/dns-query{?dns}", b""],
        8: [b"", b"\x01"],
        10: [b"\x03abc", b"", b"\x03abc\x00", b"\x02ab"],
        65001: [b"", b"gpu=h100", bytes(range(40))],
        65535: [b"x"],
    }
    cases = [struct.pack("!H", 0) + t for t in targets] + [struct.pack("!H", 0) + targets[0] + _svcb_param(3, b"\x01\xbb")]
    cases += [b"", b"\x00", b"\x00\x01"]
    keys = sorted(values)
    for key in keys:
        for value in values[key]:
            cases.append(struct.pack("!H", 1) + targets[1] + _svcb_param(key, value))
    for _ in range(400):
        chosen = sorted(rng.sample(keys, rng.randint(1, 5)))
        if rng.random() < 0.1:
            rng.shuffle(chosen)  # out of order
        if rng.random() < 0.05:
            chosen.append(chosen[-1])  # repeated
        if 2 in chosen and 1 not in chosen and rng.random() < 0.8:
            chosen = sorted(chosen + [1])  # no-default-alpn needs alpn
        if chosen[0] == 0 and len(set(chosen)) > 1 and rng.random() < 0.8:  # mandatory: keys present
            listed = sorted(rng.sample(sorted(set(chosen) - {0}), rng.randint(1, len(set(chosen)) - 1)))
            head, chosen = _svcb_param(0, struct.pack(f"!{len(listed)}H", *listed)), chosen[1:]
        else:
            head = b""
        # The first value of each key is a valid one: mostly valid records, some refused.
        body = head + b"".join(_svcb_param(k, values[k][0] if rng.random() < 0.93 else rng.choice(values[k]))
                               for k in chosen)
        cases.append(struct.pack("!H", rng.choice((1, 1, 1, 7, 0))) + rng.choice(targets[:2] * 4 + targets[2:3]) + body)
    for _ in range(300):
        body = bytearray(rng.choice(cases))
        for _ in range(rng.randint(1, 3)):
            if body:
                body[rng.randrange(len(body))] = rng.randrange(256)
        cases.append(bytes(body[:rng.randrange(len(body) + 1)] if rng.random() < 0.2 else body))
    return cases


def test_svcb_rdata_shapes_agree():
    """The reader builds SVCB and HTTPS itself: every parameter it builds equal to dnspython's
    (each field and its type), its held wire forms what dnspython renders, and the same shapes
    refused — in classes IN, CH and ANY."""
    cases = _svcb_cases(random.Random(64))
    accepted = built = 0
    for rdata in cases:
        for rdtype in (64, 65):
            for rdclass in (1, 3, 255):
                wire = _answer_wire(rdtype, rdata, rdclass)
                if agree(wire):
                    accepted += 1
                    rd = next(iter(wire_reader.read(wire).answer[0]))
                    built += type(rd) is not wired.dnspython_type(rd)
    assert 0 < built < accepted < 6 * len(cases)  # built here, handed to dnspython, and refused


def test_pointer_target_overlapping_the_name_is_refused():
    """restrict_end: a compression target whose first segment runs into the name pointing at
    it is malformed for dnspython (FormError), so for the reader too. The answer's second
    owner is "b" then a pointer to the octet before it, the last of the first record's RDATA
    (4): read from there, one 4-octet label swallows the owner itself."""
    question = b"\x07example\x00\x00\x01\x00\x01"
    first = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + b"\x7f\x00\x00\x04"
    start = 12 + len(question) + len(first)
    second = b"\x01b\xc0" + bytes([start - 1]) + struct.pack("!HHIH", 1, 1, 300, 4) + b"\x7f\x00\x00\x05"
    wire = struct.pack("!HHHHHH", 7, 0x8400, 1, 2, 0, 0) + question + first + second
    assert not agree(wire)
    fixed = wire[:start + 3] + b"\x0c" + wire[start + 4:]  # "b" + pointer to the question: fine
    assert agree(fixed)


def test_owners_differing_in_case_share_an_rrset():
    """Uncompressed owners that differ only in case are one RRset (find_rrset compares names
    ignoring case), with the first spelling; the reader's grouping key must fold case too."""
    question = b"\x07example\x00\x00\x01\x00\x01"
    records = b"".join(owner + struct.pack("!HHIH", 1, 1, ttl, 4) + address for owner, ttl, address in (
        (b"\x01a\x07example\x00", 300, b"\x7f\x00\x00\x01"), (b"\x01A\x07EXAMPLE\x00", 60, b"\x7f\x00\x00\x02"),
        (b"\x01a\x07ExAmPlE\x00", 90, b"\x7f\x00\x00\x01")))
    wire = struct.pack("!HHHHHH", 7, 0x8400, 1, 3, 0, 0) + question + records
    assert agree(wire)
    (rrset,) = wire_reader.read(wire).answer
    assert len(rrset) == 2 and rrset.ttl == 60 and rrset.name.labels[0] == b"a"


def test_opt_shapes_agree():
    """OPT is built by the reader when it has no options: payload sizes of any value, options
    present (dnspython's), OPT outside the additional section, twice, or with an owner."""
    question = b"\x07example\x00\x00\x01\x00\x01"
    def opt(payload: int, rdata: bytes = b"", owner: bytes = b"\x00", ttl: int = 0x8000) -> bytes:
        return owner + struct.pack("!HHIH", 41, payload, ttl, len(rdata)) + rdata
    cookie = struct.pack("!HH", 10, 8) + bytes(8)
    shapes = [(0, 0, 1, opt(p)) for p in (0, 1, 512, 1232, 4096, 65535)]
    shapes += [(0, 0, 1, opt(1232, cookie)), (0, 0, 1, opt(1232, cookie[:3])), (0, 0, 1, opt(1232, owner=b"\xc0\x0c")),
               (0, 0, 2, opt(1232) + opt(512)), (1, 0, 0, opt(1232)), (0, 1, 0, opt(1232)), (0, 0, 1, opt(1232, ttl=0x01008000))]
    for an, ns, ar, records in shapes:
        wire = struct.pack("!HHHHHH", 7, 0x8400, 1, an, ns, ar) + question + records
        agree(wire)
    assert agree(struct.pack("!HHHHHH", 7, 0x8400, 1, 0, 0, 1) + question + opt(1232))
    assert not agree(struct.pack("!HHHHHH", 7, 0x8400, 1, 0, 0, 2) + question + opt(1232) + opt(512))


def _map_cases(rng: random.Random) -> list[bytes]:
    """CAPS/LOAD RDATA: canonical maps of every value kind the reader builds itself, and each way
    a map can be malformed or non-canonical (which dnspython refuses, or which the reader leaves
    to it: nested maps), then random byte flips, truncations and extensions of all of them."""
    pack = lambda v: msgpack.packb(v, use_bin_type=True)  # noqa: E731
    good = [{}, {"accel_count": 8, "accel_kind": "gpu", "region": "bj"}, {"accel_free": 3, "util": 0.5},
            {"a": True, "b": False, "c": None, "d": -1, "e": 2**64 - 1, "f": -(2**63), "g": 1.0, "h": 0.0, "i": -0.0},
            {"l": [1, "x", 2.5, None, True], "m": []}, {"s": "é中" * 40, "t": "", "u": "x" * 300},
            {f"k{i:04d}": i for i in range(600)}, {"a-b.c_d": 1, "z" * 63: 2}, {"n": {"inner": 1}},
            {"n": [[1, 2], {"a": 1}]}, {"deep": [[[[[[[[1]]]]]]]]}]
    cases = [pack(m) for m in good]
    cases += [b"\x82\xa1b\x01\xa1a\x02",                     # keys out of order
              b"\x82\xa1a\x01\xa1a\x02",                     # duplicate key
              b"\x81\xa1A\x01", b"\x81\xa0\x01", b"\x81\xa2a \x01", b"\x81\xa2a\n\x01",  # bad keys
              b"\x81\x01\x01", b"\x81\xc3\x01",                 # non-string keys
              b"\x81\xa1a\xca\x3f\x00\x00\x00",               # float32
              b"\x81\xa1a\xcb" + struct.pack("!d", float("nan")), b"\x81\xa1a\xcb" + struct.pack("!d", float("inf")),
              b"\x81\xa1a\xcc\x01", b"\x81\xa1a\xd9\x01x", b"\xde\x00\x01\xa1a\x01",  # not the shortest header
              b"\x81\xa1a\xdc\x00\x01\x01",
              b"\x81\xa1a\xc4\x00", b"\x81\xa1a\xc4\x01x", b"\x81\xa1a\xc7\x00\x01", b"\x81\xa1a\xd4\x01\x00",  # bin, ext
              b"\x81\xa1a\xa3\xed\xa0\x80", b"\x81\xa1a\xa2\xff\xfe",  # a surrogate, not UTF-8
              b"\x91\x01", b"\xa1a", b"\x01", b"", b"\x81", b"\x81\xa1a", b"\x81\xa1a\x01\x00", b"\x80\x80",
              b"\x81\xa1a\xc1", b"\xdf\xff\xff\xff\xff"]
    for _ in range(400):
        body = bytearray(rng.choice(cases))
        roll = rng.random()
        if body and roll < 0.5:
            for _ in range(rng.randint(1, 3)):
                body[rng.randrange(len(body))] = rng.randrange(256)
        elif body and roll < 0.75:
            del body[rng.randrange(len(body)):]
        else:
            body += bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
        cases.append(bytes(body))
    return cases


def test_map_rdata_shapes_agree():
    """The reader builds CAPS and LOAD itself for flat canonical maps; what it builds must be
    dnspython's object in every respect (fields and their types, hash, ==, to_wire, to_text),
    and every other RDATA must fare as under from_wire — in classes IN, CH and ANY."""
    cases = _map_cases(random.Random(12))
    built = accepted = 0
    for rdata in cases:
        for rdtype in (65380, 65381):
            built += wire_reader._map(rdtype, rdata) is not None
            for rdclass in (1, 3, 255):
                wire = _answer_wire(rdtype, rdata, rdclass)
                if agree(wire):
                    accepted += 1
                    (ours,), (theirs,) = wire_reader.read(wire).answer[0], dns.message.from_wire(wire).answer[0]
                    assert type(ours) is type(theirs) and ours == theirs and hash(ours) == hash(theirs)
                    assert ours.to_text() == theirs.to_text() and ours.to_digestable() == theirs.to_digestable()
    assert 0 < built < 2 * len(cases) and built < accepted < 6 * len(cases)  # both paths and outcomes met


def test_held_wire_forms_are_dropped_when_dnspython_builds_the_record():
    """A record that keeps its wire forms answers from them only while they are its own:
    ``replace`` (new fields), pickling and copying give an object that renders, hashes and
    compares exactly as dnspython's does."""
    import copy
    import pickle

    wire = _rrsig_wire(struct.pack("!HBBIIIH", 1, 15, 3, 300, 2_000_000_000, 1_900_000_000, 4242)
                       + b"\x02bj\x04CMcc\x03cid\x00" + bytes(64))
    (rd,) = wire_reader.read(wire).answer[0]
    (oracle,) = dns.message.from_wire(wire).answer[0]
    assert wired.dnspython_type(rd) is type(oracle) and type(rd) is not type(oracle)
    assert rd._canonical != rd._plain and rd.to_digestable() == oracle.to_digestable()
    assert rd == oracle and hash(rd) == hash(oracle) and rd.to_wire() == oracle.to_wire()
    changed = rd.replace(key_tag=1, signer=dns.name.from_text("Other.cid."))
    assert changed._canonical is None and changed == oracle.replace(key_tag=1, signer=dns.name.from_text("other.cid."))
    assert changed.to_wire() == oracle.replace(key_tag=1, signer=dns.name.from_text("Other.cid.")).to_wire()
    for twin in (pickle.loads(pickle.dumps(rd)), copy.copy(rd), copy.deepcopy(rd)):
        assert twin == oracle and hash(twin) == hash(oracle) and twin.to_wire() == oracle.to_wire()
        assert twin.to_digestable() == oracle.to_digestable()
    rrset = dns.rrset.RRset(dns.name.from_text("bj.cmcc.cid."), 1, 46, 1)
    rrset.add(rd)
    rrset.add(oracle)  # the same record: the set keeps one
    assert len(rrset) == 1


def test_held_svcb_forms_survive_replace_pickle_and_copy():
    """The SVCB the reader builds: replace gives dnspython's object, pickles and copies keep
    rendering, hashing and comparing as dnspython's does, and the text form is the same."""
    import copy
    import pickle

    rdata = (struct.pack("!H", 1) + b"\x06pool-0\x02BJ\x03cid\x00" + _svcb_param(1, b"\x02h2")
             + _svcb_param(3, struct.pack("!H", 8443)) + _svcb_param(4, bytes((127, 0, 0, 9)))
             + _svcb_param(65001, b"gpu=h100"))
    wire = _answer_wire(64, rdata)
    (rd,) = wire_reader.read(wire).answer[0]
    (oracle,) = dns.message.from_wire(wire).answer[0]
    assert wired.dnspython_type(rd) is type(oracle) and type(rd) is not type(oracle)
    assert rd == oracle and hash(rd) == hash(oracle) and rd.to_text() == oracle.to_text()
    assert rd.to_digestable() == oracle.to_digestable() == rdata  # SVCB's target is not lowered
    changed = rd.replace(priority=2)
    assert changed._canonical is None and changed == oracle.replace(priority=2)
    for twin in (pickle.loads(pickle.dumps(rd)), copy.copy(rd), copy.deepcopy(rd)):
        assert twin == oracle and hash(twin) == hash(oracle) and twin.to_wire() == oracle.to_wire()


def test_rcode_is_dnspythons():
    """wire_reader.rcode: Message.rcode() for every 12-bit value, header and EDNS parts."""
    for value in range(4096):
        message = dns.message.Message()
        message.set_rcode(value)
        ours, theirs = wire_reader.rcode(message), message.rcode()
        assert ours == theirs and type(ours) is type(theirs) and ours.name == theirs.name
