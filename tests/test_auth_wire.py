"""wire.CompressingWriter against dnspython: the same records read back, the same size as
dnspython's own compressing renderer, names inside RDATA compressed only for the RFC 1035 types
(RFC 3597 §4), owners spelled as the question where they point into it, else lower case."""

from __future__ import annotations

import random
import struct

import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from resolver.auth.wire import CompressingWriter
from resolver.auth.zonedb import IN, RR_HEAD, RRset

QNAME = "WwW.Example.COM."
LABELS = ["www", "ns1", "Mail", "a", "b-2", "_tcp", "_sip", "xn--bcher-kva", "Deep"]
SUFFIXES = ["Example.COM.", "example.com.", "sub.EXAMPLE.com.", "other.net.", "."]
UNCOMPRESSED = {"SRV", "DNAME", "SVCB", "RRSIG", "NSEC"}  # names inside never compressed


def _name(rng: random.Random) -> str:
    labels = rng.sample(LABELS, rng.randrange(0, 3))
    suffix = rng.choice(SUFFIXES)
    if not labels:
        return suffix
    return ".".join(labels) + "." + (suffix if suffix != "." else "")


def _rdata(rng: random.Random, rdtype: str) -> str:
    n = lambda: _name(rng)  # noqa: E731
    return {
        "A": lambda: f"192.0.2.{rng.randrange(256)}",
        "NS": n, "CNAME": n, "PTR": n, "DNAME": n,
        "MX": lambda: f"{rng.randrange(100)} {n()}",
        "SOA": lambda: f"{n()} {n()} {rng.randrange(1, 99)} 3600 600 86400 60",
        "SRV": lambda: f"0 5 {rng.randrange(1, 65535)} {n()}",
        "SVCB": lambda: f"1 {n()} alpn=h2",
        "TXT": lambda: f'"t{rng.randrange(10**6)}"',
        "NSEC": lambda: f"{n()} A RRSIG NSEC",
        "RRSIG": lambda: f"A 15 2 300 20270101000000 20261201000000 1234 {n()} AAAA",
    }[rdtype]()


def _sections(rng: random.Random) -> list[list[tuple[str, str, list[str]]]]:
    types = ["A", "NS", "CNAME", "PTR", "DNAME", "MX", "SOA", "SRV", "SVCB", "TXT",  # (no MINFO in dnspython)
             "NSEC", "RRSIG"]
    out = []
    for _ in range(3):
        section = []
        for _ in range(rng.randrange(0, 5)):
            rdtype = rng.choice(types)
            count = 1 if dns.rdatatype.is_singleton(dns.rdatatype.from_text(rdtype)) else rng.randrange(1, 4)
            owner = QNAME if rng.random() < 0.3 else _name(rng)
            if any(o.lower() == owner.lower() and t == rdtype for o, t, _ in section):
                continue  # one RRset per owner and type in a section
            texts: dict[str, str] = {}
            for _ in range(count):
                text = _rdata(rng, rdtype)
                texts.setdefault(text.lower(), text)  # no two equal records
            section.append((owner, rdtype, list(texts.values())))
        out.append(section)
    return out


def _stored(owner: str, rdtype: str, texts: list[str]) -> tuple[bytes, RRset]:
    t = dns.rdatatype.from_text(rdtype)
    rdatas = [dns.rdata.from_text(IN, t, text).to_wire() for text in texts]
    covers = dns.rdatatype.A if t == dns.rdatatype.RRSIG else 0
    chunks = [RR_HEAD.pack(t, IN, 300, len(rd)) + rd for rd in rdatas]
    return dns.name.from_text(owner).to_wire(), RRset(t, covers, 300, chunks)


def _ours(sections) -> bytes:
    writer = CompressingWriter(dns.name.from_text(QNAME).to_wire(), dns.rdatatype.A, IN, 65535, False)
    counts = [writer.records([_stored(*rr) for rr in section]) for section in sections]
    return struct.pack("!6H", 1, 0x8400, 1, *counts) + writer.question + writer.body()


def _dnspython(sections) -> dns.message.Message:
    m = dns.message.Message(id=1)
    m.flags = 0x8400
    m.question.append(dns.rrset.RRset(dns.name.from_text(QNAME), IN, dns.rdatatype.A))
    for section, texts in zip((m.answer, m.authority, m.additional), sections):
        for owner, rdtype, rdatas in texts:
            section.append(dns.rrset.from_text_list(owner, 300, "IN", rdtype, rdatas))
    return m


def _rdata_on_wire(wire: bytes) -> list[tuple[int, bytes]]:
    """(type, RDATA bytes as sent) of every RR after the question."""
    def skip_name(pos: int) -> int:
        while wire[pos]:
            if wire[pos] >= 0xC0:
                return pos + 2
            pos += 1 + wire[pos]
        return pos + 1
    pos = skip_name(12) + 4
    out = []
    while pos < len(wire):
        pos = skip_name(pos)
        rdtype, _, _, rdlen = struct.unpack_from("!HHIH", wire, pos)
        pos += 10
        out.append((rdtype, wire[pos:pos + rdlen]))
        pos += rdlen
    return out


@pytest.mark.parametrize("seed", range(300))
def test_same_records_and_size_as_dnspython(seed):
    rng = random.Random(seed)
    sections = _sections(rng)
    ours = _ours(sections)
    expected = _dnspython(sections)
    got = dns.message.from_wire(ours)
    for mine, theirs in zip((got.answer, got.authority, got.additional),
                            (expected.answer, expected.authority, expected.additional)):
        assert [(r.name, r.rdtype, sorted(r)) for r in mine] == \
               [(r.name, r.rdtype, sorted(r)) for r in theirs]
    # dnspython compresses RDATA names of the same types, against every earlier name.
    assert len(ours) == len(expected.to_wire())
    # Never a pointer inside the RDATA of later types: each is the stored bytes.
    stored = {rd.to_wire() for section in sections for _, rdtype, texts in section
              if rdtype in UNCOMPRESSED
              for rd in [dns.rdata.from_text(IN, dns.rdatatype.from_text(rdtype), t) for t in texts]}
    for rdtype, rdata in _rdata_on_wire(ours):
        if dns.rdatatype.to_text(rdtype) in UNCOMPRESSED:
            assert rdata in stored


def test_owner_spelling_follows_the_question_else_lower_case():
    ours = _ours([[("www.example.com.", "NS", ["NS1.Example.com."]),
                   ("Mail.OTHER.net.", "A", ["192.0.2.1"])], [], [("ns1.example.com.", "A", ["192.0.2.2"])]])
    got = dns.message.from_wire(ours)
    assert [r.name.to_text() for r in got.answer] == ["WwW.Example.COM.", "mail.other.net."]
    # The glue owner points at the NS target, written lower-cased before it with the question's suffix.
    assert got.additional[0].name.to_text() == "ns1.Example.COM."
    assert got.answer[0][0].target.to_text() == "ns1.Example.COM."


def test_rollback_forgets_the_names_it_taught():
    qwire = dns.name.from_text(QNAME).to_wire()
    first = [_stored("a.example.com.", "A", ["192.0.2.1"])]
    dropped = [_stored("x.sub.other.net.", "NS", ["ns.sub.other.net."])]
    last = [_stored("y.sub.other.net.", "CNAME", ["z.sub.other.net."])]
    direct = CompressingWriter(qwire, 1, IN, 65535, False)
    direct.records(first)
    direct.records(last)
    undone = CompressingWriter(qwire, 1, IN, 65535, False)
    undone.records(first)
    mark = undone.mark()
    undone.records(dropped)
    undone.rollback(mark)
    undone.records(last)
    assert undone.body() == direct.body() and undone.size == direct.size


@pytest.mark.parametrize("seed", range(50))
def test_parse_query_keeps_the_question_name_as_sent(seed):
    """``Query.qwire`` (what responses echo and compress against) is the name dnspython reads,
    in the case the client sent; a fuzzed byte either keeps the two in agreement or is refused."""
    from resolver.auth.wire import parse_query
    rng = random.Random(seed)
    text = (_name(rng).rstrip(".") + ".example.").lstrip(".")
    name = "".join(c.upper() if rng.random() < 0.5 else c for c in text)
    wire = bytearray(dns.message.make_query(name, "A", use_edns=rng.random() < 0.5).to_wire())
    if seed % 2:
        wire[rng.randrange(12, len(wire))] = rng.randrange(256)
    query = parse_query(bytes(wire))
    if query is None:
        return
    assert query.qwire == query.qname.to_wire()
    assert query.qname == dns.message.from_wire(bytes(wire)).question[0].name
