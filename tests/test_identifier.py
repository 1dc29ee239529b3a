"""Compute identifiers: both written forms, limits, and hostile text (spec/identifiers.md)."""

from __future__ import annotations

import random
import string

import dns.name
import pytest

from resolver import identifier
from resolver.identifier import IdentifierError, parse, to_cid, to_dns


def test_both_forms_are_one_name():
    a = parse("cid:pool-7.bj.cmcc.cid")
    b = parse("pool-7.bj.cmcc.cid.")
    assert a == b == dns.name.from_text("pool-7.bj.cmcc.cid.")
    assert a.is_absolute()
    assert to_cid(a) == "cid:pool-7.bj.cmcc.cid"
    assert to_dns(a) == "pool-7.bj.cmcc.cid."


def test_output_is_lower_case_and_labels_are_bytes():
    name = parse("CID:Pool-7.BJ.CMCC.Cid")
    assert name.labels == (b"pool-7", b"bj", b"cmcc", b"cid", b"")
    assert to_cid(name) == "cid:pool-7.bj.cmcc.cid"


def test_to_cid_rejects_root_and_relative_names():
    with pytest.raises(IdentifierError):
        to_cid(dns.name.root)
    with pytest.raises(IdentifierError):
        to_cid(dns.name.from_text("a.b", origin=None))


def test_underscore_labels_only_when_allowed():
    text = "_cid._sub.nvidia-h100-sxm5-80gb._compute.cmcc.cid."
    with pytest.raises(IdentifierError, match="reserved"):
        parse(text)
    assert parse(text, allow_underscore=True) == dns.name.from_text(text)
    with pytest.raises(IdentifierError):
        parse("_-a.cid.", allow_underscore=True)  # '_' then a hyphen is not a service label


def test_non_string_input():
    for bad in (None, b"cid:a.b", 7, ["a"]):
        with pytest.raises(IdentifierError):
            parse(bad)  # type: ignore[arg-type]


def test_limits_exactly():
    assert parse("cid:" + "a" * 63 + ".b")
    with pytest.raises(IdentifierError, match="63"):
        parse("cid:" + "a" * 64 + ".b")
    labels = ["a" * 63, "b" * 63, "c" * 63, "d" * 61]  # 4*64 - 2 + 1 = 255 octets in wire form
    name = parse("cid:" + ".".join(labels))
    assert len(name.to_wire()) == 255
    with pytest.raises(IdentifierError, match="256 octets"):
        parse("cid:" + ".".join(labels[:3] + ["d" * 62]))


def _random_identifier(rng: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits
    labels = []
    for _ in range(rng.randint(1, 5)):
        n = rng.randint(1, 20)
        inner = "".join(rng.choice(alphabet + "-") for _ in range(max(0, n - 2)))
        label = rng.choice(alphabet) + inner + (rng.choice(alphabet) if n > 1 else "")
        labels.append(label)
    return ".".join(labels)


def test_random_valid_round_trip():
    rng = random.Random(4035)
    for _ in range(2000):
        body = _random_identifier(rng)
        name = parse("cid:" + body)
        assert parse(body + ".") == name
        assert parse(to_cid(name)) == name
        assert parse(to_dns(name)) == name
        assert to_dns(name) == body.lower() + "."


def test_hostile_text_only_raises_identifier_error():
    rng = random.Random(1035)
    pieces = ["cid:", ".", "..", "-", "_", " ", "\n", "\t", "\x00", "\\", "\\.", "é", "ｐ", "\ud800",
              "a", "Z", "9", "*", "@", "a" * 64, "\u200b", "CID:", "xn--", "::", "/"]
    accepted = 0
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        try:
            name = parse(text, allow_underscore=rng.random() < 0.5)
        except IdentifierError:
            continue
        accepted += 1
        # anything accepted is a valid absolute DNS name whose labels are LDH or '_' labels
        assert name.is_absolute() and len(name.to_wire()) <= 255
        for label in name.labels[:-1]:
            assert label.decode("ascii").replace("-", "").replace("_", "").isalnum()
    assert accepted > 0


def test_is_identifier_text():
    assert identifier.is_identifier_text("cid:a.b")
    assert not identifier.is_identifier_text("cid:a.b.")
    assert not identifier.is_identifier_text("a\n.b")
