"""scrub's folded-label comparisons agree with dnspython's Name comparisons (RFC 4343: ASCII
case-insensitive only) on random names: mixed case, escaped and non-ASCII bytes, \\000 bytes,
63-octet labels, the root, relative and empty names."""

from __future__ import annotations

import random

import dns.name

from resolver.engine.scrub import folded, within

# Bytes that case-fold (ASCII letters), look like letters but must not fold (0xC0-0xDF,
# Latin-1 capitals), and the awkward ones: NUL, dot, backslash, quotes, space.
_ALPHABET = b"aAbBzZmM09-_" + bytes(range(0xC0, 0xC4)) + bytes(range(0xE0, 0xE4)) + b"\x00.\\\" *"


def _label(rng: random.Random) -> bytes:
    size = rng.choice((1, 1, 2, 3, 5, 63, rng.randint(1, 63)))
    return bytes(rng.choice(_ALPHABET) for _ in range(size))


def _name(rng: random.Random, pool: list[dns.name.Name]) -> dns.name.Name:
    roll = rng.random()
    if pool and roll < 0.3:  # a case-variant, a child or a parent of a name already made
        base = rng.choice(pool)
        labels = [bytes(c ^ 0x20 if chr(c).isalpha() and c < 128 and rng.random() < 0.5 else c for c in lab)
                  for lab in base.labels]
        if labels and rng.random() < 0.3:
            labels = labels[1:] if rng.random() < 0.5 and len(labels) > 1 else [_label(rng)] + labels
    else:
        labels = [_label(rng) for _ in range(rng.randint(0, 4))]
        if rng.random() < 0.85:
            labels.append(b"")  # absolute
    try:
        return dns.name.Name(labels)
    except dns.name.NameTooLong:
        return dns.name.root


def test_folded_and_within_agree_with_dnspython() -> None:
    rng = random.Random(4343)
    pool = [dns.name.root, dns.name.empty, dns.name.from_text("Example.COM."), dns.name.from_text("example.com"),
            dns.name.from_text(r"a\000b.Example.com."), dns.name.from_text(r"\065.example.com.")]
    for _ in range(600):
        pool.append(_name(rng, pool))
    keys = [folded(n) for n in pool]
    pairs = 0
    for _ in range(40000):
        i, j = rng.randrange(len(pool)), rng.randrange(len(pool))
        a, b = pool[i], pool[j]
        assert (keys[i] == keys[j]) == (a == b), (a, b)
        assert within(keys[i], keys[j]) == a.is_subdomain(b), (a, b)
        pairs += a.is_subdomain(b) and a != b
    assert pairs > 100  # the pool really holds names under one another, not only equal ones
    for i, a in enumerate(pool):
        assert within(keys[i], keys[i]) == a.is_subdomain(a)
        for z in (dns.name.root, dns.name.empty):
            assert within(keys[i], folded(z)) == a.is_subdomain(z), (a, z)
            assert within(folded(z), keys[i]) == z.is_subdomain(a), (z, a)


def test_folding_is_ascii_only() -> None:
    upper, lower = dns.name.Name([b"\xc9T\xc9", b""]), dns.name.Name([b"\xe9t\xe9", b""])
    assert upper != lower and folded(upper) != folded(lower)
    assert folded(dns.name.from_text("WwW.Example.")) == folded(dns.name.from_text("www.example."))
