"""name_text (resolver/nametext.py) against dnspython's Name.to_text, the oracle, on real
names and fuzzed ones: every byte value, escapes, dots inside labels, 63-octet labels,
255-octet names, the root, relative and empty names."""

from __future__ import annotations

import random

import dns.name
import pytest

from resolver.nametext import in_zone, name_text, same_name

SPECIAL = b'"().;\\@$ \x00\x7f\xff.-_*'


def _label(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.4:
        return bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
                     for _ in range(rng.randint(1, 20)))
    if kind < 0.6:
        return bytes(rng.choice(SPECIAL + b"abc") for _ in range(rng.randint(1, 8)))
    if kind < 0.7:
        return b"x" * 63
    return bytes(rng.randrange(256) for _ in range(rng.randint(1, 12)))


def _names(count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        labels = [_label(rng) for _ in range(rng.randint(0, 6))]
        absolute = rng.random() < 0.8
        try:
            yield dns.name.Name(labels + [b""] if absolute else labels)
        except dns.name.NameTooLong:
            continue


REAL = ["cid.", "cmcc.cid.", "pool-7.bj.cmcc.cid.", "_gpu._tcp.pool-7.bj.cmcc.cid.", "*.bj.cmcc.cid.", ".",
        "xn--fiqs8s.cid.", "a\\.b.cid.", "a\\@b.cid.", "a\\032b.cid.", "relative", "Mixed.Case.CID."]


@pytest.mark.parametrize("text", REAL)
def test_real_names_agree(text):
    name = dns.name.from_text(text, origin=None) if not text.endswith(".") else dns.name.from_text(text)
    assert name_text(name) == name.to_text() == str(name)


def test_empty_relative_name_agrees():
    assert name_text(dns.name.empty) == dns.name.empty.to_text() == "@"


def test_fuzzed_names_agree():
    fast = total = 0
    for name in _names(20_000, 5):
        assert name_text(name) == name.to_text() == name_text(name), name.labels  # the second: remembered
        fast += name.to_text() == b".".join(name.labels).decode("latin-1")
        total += 1
    assert 2000 < fast < total - 2000  # both paths taken (the plain join and dnspython's escaping)


def test_longest_names_agree():
    name = dns.name.Name([b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 61, b""])
    assert len(name.to_wire()) == 255 and name_text(name) == name.to_text()


def test_lower_name_is_canonicalize():
    """lower_name equals canonicalize() label for label, and is the name itself when that
    has nothing to lower (no new object on the common path)."""
    from resolver.nametext import lower_name
    same = 0
    for name in _names(20_000, 8):
        lowered = lower_name(name)
        assert lowered.labels == name.canonicalize().labels
        same += lowered is name
    assert 1000 < same < 19_000


def test_type_text_is_dnspythons():
    import dns.rdatatype

    from resolver.nametext import type_text
    for rdtype in [*range(0, 300), 32768, 65279, 65380, 65381, 65535, *dns.rdatatype.RdataType]:
        assert type_text(rdtype) == dns.rdatatype.to_text(rdtype)
        assert type_text(int(rdtype)) == dns.rdatatype.to_text(rdtype)  # enum and int alike


def _pairs(seed: int):
    """Name pairs of every relation: equal, equal but for case, one inside the other (in either
    spelling), unrelated, absolute against relative, the root and the empty name."""
    rng = random.Random(seed)
    names = list(_names(400, seed)) + [dns.name.root, dns.name.empty]
    for name in names:
        flipped = dns.name.Name([bytes(c ^ 0x20 if 0x61 <= (c | 0x20) <= 0x7A and rng.random() < 0.5 else c
                                       for c in label) for label in name.labels])
        child = dns.name.Name([b"Www"]).concatenate(name) if sum(map(len, name.labels)) + len(name.labels) < 250 else name
        for other in (name, flipped, child, rng.choice(names), dns.name.root, dns.name.empty):
            yield name, other
            yield other, name


def test_same_name_and_in_zone_are_dnspythons():
    relations = set()
    for a, b in _pairs(5):
        assert same_name(a, b) == (a == b), (a, b)
        assert in_zone(a, b) == a.is_subdomain(b), (a, b)
        relations.add((a == b, a.is_subdomain(b), a.labels == b.labels))
    assert len(relations) == 4  # equal as spelled, equal but for case, strictly inside, unrelated
