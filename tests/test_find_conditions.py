"""Where-conditions and sort keys (spec/discovery.md §3.6–3.7), without sockets."""

from __future__ import annotations

import math

import pytest

from resolver import Condition, ConditionError, Resolution, Status
from resolver.discovery import SortKey, parse_where
from resolver.discovery.conditions import browse_selector, sort_function


def res(name: str, caps=None, load=None) -> Resolution:
    return Resolution(f"cid:{name}", f"{name}.", "NOERROR", Status.SECURE, "", 60, (), caps or {}, load)


@pytest.mark.parametrize("text, key, op, value, number", [
    ("accel_free>=2", "accel_free", ">=", "2", 2),
    ("  region = cn-bj ", "region", "=", "cn-bj", None),
    ("accel_vendor!=nvidia", "accel_vendor", "!=", "nvidia", None),
    ("price_per_hour<1.5", "price_per_hour", "<", "1.5", 1.5),
    ("x==3", "x", "=", "3", 3),
    ("accel_compute_capability=9.0", "accel_compute_capability", "=", "9.0", 9.0),
    ("name=nan", "name", "=", "nan", None),        # NaN/inf are words here, not numbers
    ("name=inf", "name", "=", "inf", None),
    ("model=llama-3-70b-instruct", "model", "=", "llama-3-70b-instruct", None),
])
def test_parse(text, key, op, value, number):
    c = Condition.parse(text)
    assert (c.key, c.op, c.value, c.number) == (key, op, value, number)


@pytest.mark.parametrize("text", [
    "", "accel_free", ">=2", "=x", "a b=1", "accel_free>>1", "a=<1", "a=!b", "k=", "k= ",
    "k" * 65 + "=1", "k=" + "v" * 257, "ké=1", "k\x00=1", "-k=1",
])
def test_parse_rejects(text):
    with pytest.raises(ConditionError):
        Condition.parse(text)


def test_load_first_then_caps_numbers_and_strings():
    r = res("a.example", caps={"accel_free": 1, "accel_count": 8, "accel_compute_capability": "9.0",
                               "region": "cn-bj", "flag": True, "accel_vendor": "nvidia"},
            load={"accel_free": 5, "price_per_hour": 2.5})
    assert Condition.parse("accel_free=5").holds(r)            # LOAD wins over CAPS
    assert not Condition.parse("accel_free=1").holds(r)
    assert Condition.parse("accel_count>7").holds(r) and not Condition.parse("accel_count>8").holds(r)
    assert Condition.parse("price_per_hour<=2.5").holds(r)
    assert Condition.parse("accel_compute_capability=9.0").holds(r)    # string data: string compare
    assert not Condition.parse("accel_compute_capability=9.00").holds(r)
    assert Condition.parse("region>cn-a").holds(r)                      # strings compare as text
    assert Condition.parse("flag=true").holds(r)                        # booleans spelt as in JSON
    assert not Condition.parse("flag=1").holds(r)                       # a bool is not the number 1
    assert not Condition.parse("missing!=x").holds(r)                   # missing key: always fails
    assert Condition.parse("accel_vendor!=amd").holds(r)
    assert Condition.make("accel_free", ">", 4.5).holds(r)


def test_where_forms():
    one = Condition.parse("a=1")
    assert parse_where(None) == ()
    assert parse_where("a=1") == (one,)
    assert parse_where(("a", "=", 1)) == (one,)
    assert parse_where(("a", "==", "1")) == (one,)
    assert parse_where({"a": 1}) == (one,)
    assert parse_where(["a=1", ("b", ">", 2), one]) == (one, Condition.parse("b>2"), one)
    assert parse_where(("a=1", "b>2", "c<3")) == tuple(map(Condition.parse, ("a=1", "b>2", "c<3")))
    for bad in ([1], [("a", "=")], ("a", "=", None), {"a": [1]}, {"a": math.nan}):
        with pytest.raises(ConditionError):
            parse_where(bad)


def test_browse_selector_picks_the_most_specific_equality():
    cs = parse_where(["region=cn-bj", "accel_slug=nvidia-h100-sxm5-80gb", "accel_kind=gpu"])
    assert browse_selector(cs) == ("accel", "nvidia-h100-sxm5-80gb")
    assert browse_selector(parse_where(["region=cn-bj", "accel_kind=gpu"])) == ("kind", "gpu")
    assert browse_selector(parse_where(["region!=cn-bj", "accel_free>1"])) is None
    assert browse_selector(parse_where(["region=Not_A_Label"])) is None  # no such sub-type label


def test_sort_keys_direction_and_missing_last():
    assert SortKey.parse("accel_free").descending and SortKey.parse("memory_bytes").descending
    assert SortKey.parse("compute_norm").descending and SortKey.parse("norm_fi").descending
    assert not SortKey.parse("price_per_hour").descending
    assert not SortKey.parse("-accel_free").descending and SortKey.parse("-price_per_hour").descending
    rs = [res("a.x", load={"p": 3}), res("b.x"), res("c.x", load={"p": 1}), res("d.x", load={"p": "cheap"}),
          res("e.x", load={"p": 3})]

    def order(key):
        return [r.name for r in sorted(rs, key=sort_function(SortKey.parse(key), lambda r: r.name))]

    # numbers before strings, missing last, ties by the tie-break, in both directions
    assert order("p") == ["c.x.", "a.x.", "e.x.", "d.x.", "b.x."]
    assert order("-p") == ["a.x.", "e.x.", "c.x.", "d.x.", "b.x."]
