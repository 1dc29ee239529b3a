"""The query language of find (spec/discovery.md §5): where-conditions, sort keys, units and
rates, without sockets."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from resolver import Condition, ConditionError, Resolution, Status
from resolver.discovery import Rates, RatesError, SortKey, parse_sort, parse_where
from resolver.discovery.conditions import browse_selector, sort_function
from resolver.discovery.units import UnitError, parse_quantity

GiB, TiB = 2**30, 2**40


def res(name: str, caps=None, load=None) -> Resolution:
    return Resolution(f"cid:{name}", f"{name}.", "NOERROR", Status.SECURE, "", 60, (), caps or {}, load)


@pytest.mark.parametrize("text, key, op, values", [
    ("accel_free>=2", "accel_free", ">=", (2,)),
    ("  region = bj ", "region", "=", ("bj",)),
    ("accel_vendor!=nvidia", "accel_vendor", "!=", ("nvidia",)),
    ("price_per_hour<1.5", "price_per_hour", "<", (1.5,)),
    ("accel_free==3", "accel_free", "=", (3,)),
    ("region in [bj,sh]", "region", "in", ("bj", "sh")),
    ("region in[ bj , sh ]", "region", "in", ("bj", "sh")),
    ("accel_vendor notin [amd]", "accel_vendor", "notin", ("amd",)),
    ("accel_vendor not in [amd, intel]", "accel_vendor", "notin", ("amd", "intel")),
    ("accel_kind=GPU", "accel_kind", "=", ("gpu",)),                     # registry values are lower case
    ("currency=usd", "currency", "=", ("USD",)),                         # except ISO 4217 codes
    ("accel_product=A100-SXM4-40GB", "accel_product", "=", ("A100-SXM4-40GB",)),  # verbatim
    ("accel_compute_capability>=8.6", "accel_compute_capability", ">=", ((8, 6),)),
    ("accel_memory_bytes>=80GiB", "accel_memory_bytes", ">=", (80 * GiB,)),
    ("accel_memory_bytes>=80 GB", "accel_memory_bytes", ">=", (80 * 10**9,)),
    ("memory_bytes>=512G", "memory_bytes", ">=", (512 * 10**9,)),
    ("memory_bytes>=0.5Ti", "memory_bytes", ">=", (TiB // 2,)),
    ("memory_bytes>=2tib", "memory_bytes", ">=", (2 * TiB,)),
    ("cpu_frequency_hz>=3.5GHz", "cpu_frequency_hz", ">=", (3_500_000_000,)),
    ("network_bps>=100Gbps", "network_bps", ">=", (100 * 10**9,)),
    ("accel_flops_fp16>=989TFLOPS", "accel_flops_fp16", ">=", (989 * 10**12,)),
    ("queue_wait_s<5min", "queue_wait_s", "<", (300,)),
    ("latency_s<=250ms", "latency_s", "<=", (0.25,)),
    ("accel_util_ratio<80%", "accel_util_ratio", "<", (0.8,)),
    ("price_per_hour<=2.5USD", "price_per_hour", "<=", (2.5,)),
    ("acme.tier=gold", "acme.tier", "=", ("gold",)),                     # extension keys: untyped
    ("acme.rank>=3", "acme.rank", ">=", (3,)),
    ("acme.vram_bytes>=1Ti", "acme.vram_bytes", ">=", (TiB,)),           # unit by the name's suffix
    ('acme.note="a, b"', "acme.note", "=", ("a, b",)),
    ('acme.id="8"', "acme.id", "=", ("8",)),                             # quotes make a string
    ("acme.gpu=true", "acme.gpu", "=", (True,)),
    ("acme.city=北京", "acme.city", "=", ("北京",)),
    ('acme.city in ["a,b", c]', "acme.city", "in", ("a,b", "c")),
    ("cost<=40", "cost", "<=", (40,)),
])
def test_parse(text, key, op, values):
    c = Condition.parse(text)
    assert (c.key, c.op, c.values) == (key, op, values)


def test_price_condition_carries_its_currency():
    assert Condition.parse("price_per_hour<=2.5USD").currency == "USD"
    assert Condition.parse("price_per_hour <= 2.5 cny").currency == "CNY"
    assert Condition.parse("price_per_hour<=2.5").currency is None
    assert str(Condition.parse("price_per_hour<=2.5USD")) == "price_per_hour<=2.5 USD"


@pytest.mark.parametrize("text, words", [
    ("", "expected KEY OP VALUE"),
    ("accel_free", "expected KEY OP VALUE"),
    (">=2", "expected KEY OP VALUE"),
    ("a b=1", "expected KEY OP VALUE"),
    ("accel_free>>1", "starts with '>'"),
    ("accel_free=<1", "starts with '<'"),
    ("accel_free=", "empty value"),
    ("accel_free= ", "empty value"),
    # unknown keys name the nearest registry keys; extension keys need a '.'
    ("accel_fre>=2", "nearest registry keys: accel_free"),
    ("modl=llama", "nearest registry keys: model"),
    ("util>0.5", "accel_util_ratio"),
    ("no_such_key!=1", "unknown key 'no_such_key'"),
    ("Accel_Free>=1", "keys are lower case, did you mean accel_free?"),
    ("x-k8s=1", "import leftover"),
    ("ké=1", "not a key"),
    ("k" * 64 + ".x=1", "not a key"),
    ("-k=1", "not a key"),
    # values of the wrong type, out of range, not in the choices
    ("accel_free>=abc", "accel_free is a whole number (a count), got abc"),
    ("accel_free>=1.5", "whole number"),
    ("accel_free>=2GiB", "takes no unit"),
    ("accel_free>=-1", "out of range 0.."),
    ("accel_util_ratio<=80", "out of range 0..1 (a ratio: 0.8, or 80%)"),
    ("compute_norm>=11", "out of range 0..10"),
    ("accel_memory_bytes>=80XB", "unknown unit 'XB'"),
    ("queue_wait_s<5m", "unknown unit 'm'"),                     # minutes or milliseconds?
    ("ts>=1h", "takes no unit"),                                 # a point in time, not a duration
    ("accel_kind=quantum", "accel_kind is one of gpu, npu, tpu, fpga, asic"),
    ("region=cn bj", "one DNS label"),
    ("region<bj", "compare it with = != in notin"),
    ("accel_compute_capability>=nine", "version MAJOR.MINOR"),
    ("currency=dollars", "ISO 4217"),
    ("price_per_hour<=2.5USD,3", "price_per_hour is a number"),
    # hostile: huge numbers, NaN/inf, unicode, injection-ish text, brackets
    ("accel_free>=1e400", "out of range"),
    ("accel_free>=" + "9" * 200, "out of range"),
    ("memory_bytes>=1e999999", "not a number"),
    ("accel_free>=nan", "not a number"),
    ("price_per_hour<inf", "not a number"),
    ("price_per_hour<-inf", "not a number"),
    ("region=北京", "one DNS label"),
    ("region=bj;rm -rf /", "one DNS label"),
    ("region='; DROP TABLE offers; --", "one DNS label"),
    ("region=$(reboot)", "one DNS label"),
    ("k\x00=1", "control characters"),
    ("region=bj\n", "control characters"),
    ("region in [bj,sh", "unbalanced brackets"),
    ("region in bj,sh]", "unbalanced brackets"),
    ("region in [[bj]]", "nested brackets"),
    ("region in []", "the list is empty"),
    ("region in [ ]", "the list is empty"),
    ("region in [bj,,sh]", "an empty item"),
    ('region in ["bj]', "unbalanced quotes"),
    ("region=[bj,sh]", "goes with in or notin"),
    ("region in bj", "take a list in brackets"),
    ('acme.note="a', "unbalanced quotes"),
    ('acme.note=a"b', "a quote inside"),
    ("acme.x=" + "v" * 257, "longer than 256"),
    ("region in [" + ",".join(["bj"] * 65) + "]", "more than 64 values"),
    ("x" * 3000, "longer than 2048"),
])
def test_parse_rejects_in_one_line(text, words):
    with pytest.raises(ConditionError) as err:
        Condition.parse(text)
    message = str(err.value)
    assert words in message, message
    assert "\n" not in message and len(message) < 400


def test_holds_on_validated_data_load_first_then_caps():
    r = res("a.example", caps={"accel_free": 1, "accel_count": 8, "accel_compute_capability": "9.0",
                               "region": "bj", "accel_vendor": "nvidia", "accel_kind": "GPU",
                               "acme.flag": True, "acme.tier": "gold", "acme.rank": 3, "currency": "usd"},
            load={"accel_free": 5, "price_per_hour": 2.5})
    holds = lambda text: Condition.parse(text).holds(r)  # noqa: E731
    assert holds("accel_free=5") and not holds("accel_free=1")      # LOAD wins over CAPS
    assert holds("accel_count>7") and not holds("accel_count>8")
    assert holds("price_per_hour<=2.5")
    assert holds("accel_compute_capability>=8.6") and holds("accel_compute_capability=9.0")
    assert not holds("accel_compute_capability>9.0") and holds("accel_compute_capability<10.0")
    assert holds("region in [sh,bj]") and not holds("region notin [bj]")
    assert holds("accel_vendor notin [amd,intel]") and not holds("accel_vendor in [amd]")
    assert holds("accel_kind=gpu")                                     # lower-case keys compare case-blind
    assert holds("currency=USD")
    assert holds("acme.flag=true") and not holds("acme.flag=1")        # a bool is not the number 1
    assert holds("acme.tier in [gold,silver]") and not holds("acme.tier notin [gold]")
    assert holds("acme.rank>=3") and not holds("acme.rank>3") and not holds("acme.tier>1")
    assert holds("acme.tier!=3")                                       # another kind is not equal
    assert not holds("acme.missing!=x") and not holds("acme.missing notin [x]")  # missing key: fails
    assert not holds("queue_depth<1")                                  # ... whatever the operator
    assert Condition.make("accel_free", ">", 4).holds(r) and not Condition.make("accel_free", ">", 5).holds(r)
    assert Condition.make("accel_free", "in", [4, 5]).holds(r)
    assert Condition.make("price_per_hour", "<", 2.6).holds(r)


def test_data_of_the_wrong_type_never_matches():
    r = res("a.example", caps={"accel_count": "8", "region": 5, "acme.x": [1, 2], "accel_compute_capability": "ninety"},
            load={"accel_free": True})
    for text in ("accel_count=8", "accel_count>=1", "region=5", "accel_free>=1", "accel_free=1",
                 "acme.x=1", "acme.x notin [1]", "accel_compute_capability>=1.0"):
        assert not Condition.parse(text).holds(r), text


def test_where_forms():
    one = Condition.parse("accel_free=1")
    assert parse_where(None) == ()
    assert parse_where("accel_free=1") == (one,)
    assert parse_where(("accel_free", "=", 1)) == (one,)
    assert parse_where(("accel_free", "==", "1")) == (one,)
    assert parse_where(("accel_free", "=", 1.0)) == (one,)
    assert parse_where({"accel_free": 1}) == (one,)
    region = Condition.parse("region in [bj,sh]")
    assert parse_where({"region": ["bj", "sh"]}) == (region,)
    assert parse_where(("region", "in", ("bj", "sh"))) == (region,)
    assert parse_where(("region", "not in", ["bj"])) == (Condition.parse("region notin [bj]"),)
    assert parse_where(("accel_memory_bytes", ">=", "80GiB")) == (Condition.parse("accel_memory_bytes>=80GiB"),)
    both = parse_where(["accel_free=1", ("accel_count", ">", 2), one])
    assert both == (one, Condition.parse("accel_count>2"), one)
    assert parse_where([Condition("accel_free", "=", "1")]) == (one,)  # built by hand: checked too
    assert parse_where(Condition("region", "in", "[bj,sh]")) == (region,)
    with pytest.raises(ConditionError, match="unknown key"):
        parse_where([Condition("bogus", "=", "1")])
    assert parse_where(("accel_free=1", "accel_count>2", "cpu_free<3")) == tuple(
        map(Condition.parse, ("accel_free=1", "accel_count>2", "cpu_free<3")))


@pytest.mark.parametrize("bad, words", [
    ([1], "a condition is"),
    ([("accel_free", "=")], "a condition is"),
    (("accel_free", "=", None), "whole number"),
    (("accel_free", ">=", 2.5), "whole number"),
    (("accel_free", ">=", True), "whole number"),
    (("accel_free", ">=", math.nan), "whole number"),
    (("accel_free", ">=", math.inf), "whole number"),
    (("accel_free", ">=", 10**30), "out of range"),
    (("accel_free", "~", 1), "operator ~ must be one of"),
    (("region", "in", "bj"), "takes a list"),
    (("region", "in", []), "the list is empty"),
    (("region", "=", ["bj"]), "goes with in or notin"),
    (("no_such", "=", 1), "unknown key"),
    ([(42, "=", 1)], "a key is a string"),
    ({"accel_free": math.nan}, "whole number"),
    ({"accel_free": {"a": 1}}, "goes with in or notin"),
    (42, "conditions are strings"),
])
def test_where_forms_reject(bad, words):
    with pytest.raises(ConditionError) as err:
        parse_where(bad)
    assert words in str(err.value), str(err.value)


def test_browse_selector_picks_the_most_specific_equality():
    cs = parse_where(["region=bj", "accel_slug=nvidia-h100-sxm5-80gb", "accel_kind=gpu"])
    assert browse_selector(cs) == ("accel", "nvidia-h100-sxm5-80gb")
    assert browse_selector(parse_where(["region=bj", "accel_kind=GPU"])) == ("kind", "gpu")
    assert browse_selector(parse_where(["region!=bj", "accel_free>1"])) is None
    assert browse_selector(parse_where(["region in [bj]"])) is None  # one browse name per equality


def test_sort_keys_direction_lists_and_errors():
    assert SortKey.parse("accel_free").descending and SortKey.parse("memory_bytes").descending
    assert SortKey.parse("compute_norm").descending and SortKey.parse("norm_fi").descending
    assert SortKey.parse("network_bps").descending and SortKey.parse("cpu_frequency_hz").descending
    assert not SortKey.parse("price_per_hour").descending and not SortKey.parse("latency_s").descending
    assert not SortKey.parse("-accel_free").descending and SortKey.parse("-price_per_hour").descending
    assert SortKey.parse("price_per_hour-").descending and not SortKey.parse("accel_free+").descending
    keys = parse_sort("price_per_hour+,accel_free-")
    assert [(k.key, k.descending) for k in keys] == [("price_per_hour", False), ("accel_free", True)]
    assert parse_sort([("price_per_hour", "asc"), "accel_free-"]) == keys
    assert parse_sort(("cost", "desc")) == (SortKey.parse("cost-"),)
    assert parse_sort(None) == ()
    for bad, words in [("bogus_key", "unknown key 'bogus_key'"), ("accel_fre", "accel_free"),
                       ("a b", "not a sort key"), ("--x", "not a sort key"), ("-x-", "not both"),
                       ("price_per_hour+,", "an empty key"), ("", "empty sort key"),
                       ("accel_free+,accel_free-", "given twice"), ([("accel_free", "up")], "asc"),
                       (",".join(["accel_free", "cpu_free", "memory_bytes", "ts", "cost", "region", "zone",
                                  "kind", "operator"]), "more than 8"), (42, "'key+,key-'")]:
        with pytest.raises(ConditionError) as err:
            parse_sort(bad)
        assert words in str(err.value), (bad, str(err.value))


def test_sort_by_several_keys_missing_last_in_both_directions():
    rs = [res("a.x", caps={"region": "bj"}, load={"accel_free": 3}), res("b.x"),
          res("c.x", caps={"region": "sh"}, load={"accel_free": 1}),
          res("d.x", caps={"region": "bj"}, load={"accel_free": 1}),
          res("e.x", caps={"region": "bj"}, load={"accel_free": 3})]

    def order(spec):
        return [r.name for r in sorted(rs, key=sort_function(parse_sort(spec), lambda r: r.name))]

    assert order("accel_free") == ["a.x.", "e.x.", "c.x.", "d.x.", "b.x."]
    assert order("-accel_free") == ["c.x.", "d.x.", "a.x.", "e.x.", "b.x."]
    assert order("region+,accel_free+") == ["d.x.", "a.x.", "e.x.", "c.x.", "b.x."]
    assert order("region-,accel_free-") == ["c.x.", "a.x.", "e.x.", "d.x.", "b.x."]
    versions = [res("p.x", caps={"accel_compute_capability": "10.0"}),
                res("q.x", caps={"accel_compute_capability": "9.0"}), res("r.x", caps={"accel_compute_capability": "8.6"})]
    ordered = sorted(versions, key=sort_function(parse_sort("accel_compute_capability-"), lambda r: r.name))
    assert [r.name for r in ordered] == ["p.x.", "q.x.", "r.x."]  # as versions, not as text


@pytest.mark.parametrize("text, unit, value", [
    ("80GiB", "bytes", 80 * GiB), ("80Gi", "bytes", 80 * GiB), ("80gb", "bytes", 80 * 10**9),
    ("512G", "bytes", 512 * 10**9), ("1.5K", "bytes", 1500), ("0.5Ki", "bytes", 512), ("7", "bytes", 7),
    ("3GHz", "Hz", 3 * 10**9), ("2400MHz", "Hz", 2_400_000_000), ("10Gbps", "bit/s", 10**10),
    ("90s", "s", 90), ("1h", "s", 3600), ("1.5d", "s", 129600), ("5min", "s", 300), ("75%", "ratio", 0.75),
    ("18446744073709551616", "bytes", 2**64),
])
def test_units(text, unit, value):
    assert parse_quantity(text, unit) == value


@pytest.mark.parametrize("text, unit", [
    ("18446744073709551617", "bytes"), ("1e20", "bytes"), ("1e9999", "s"), ("5m", "s"), ("1Gs", "s"),
    ("NaN", "bytes"), ("Infinity", "bytes"), ("1 2", "bytes"), ("0x10", "bytes"), ("", "bytes"), ("1%", "bytes"),
])
def test_units_reject(text, unit):
    with pytest.raises(UnitError):
        parse_quantity(text, unit)


TODAY = dt.date(2026, 12, 2)


def test_rates_from_a_mapping_and_a_file(tmp_path):
    rates = Rates.from_mapping({"rates": {"base": "USD", "date": TODAY, "CNY": 0.14, "EUR": 1.08}}, today=TODAY)
    assert rates.base == "USD" and rates.rates == {"USD": 1.0, "CNY": 0.14, "EUR": 1.08}
    assert rates.factor("CNY", "USD") == pytest.approx(0.14)
    assert rates.factor("CNY", "EUR") == pytest.approx(0.14 / 1.08)
    assert rates.factor("JPY", "USD") is None
    path = tmp_path / "rates.toml"
    path.write_text('# daily\n[rates]\nbase = "USD"\ndate = 2026-12-01\nCNY = 0.14\nEUR = 1.08\n')
    assert Rates.load(path, today=TODAY).rates == rates.rates
    assert Rates.from_mapping({"base": "usd", "date": "2026-11-30T12:00:00+08:00", "CNY": 1}, today=TODAY).base == "USD"


@pytest.mark.parametrize("text, words", [
    ('[rates]\nbase = "USD"\ndate = 2026-11-01\nCNY = 0.14\n', "stale: the rates are of 2026-11-01, 31 days old"),
    ('[rates]\nbase = "USD"\ndate = 2027-01-01\nCNY = 0.14\n', "in the future"),
    ('[rates]\nbase = "USD"\nCNY = 0.14\n', "no date"),
    ('[rates]\ndate = 2026-12-01\nCNY = 0.14\n', "no base"),
    ('base = "USD"\n', "no date"),
    ('CNY = 0.14\n', "no [rates] table"),
    ('[rates]\nbase = "dollar"\ndate = 2026-12-01\nCNY = 0.14\n', "not an ISO 4217"),
    ('[rates]\nbase = "USD"\ndate = 2026-12-01\ncny = 0.14\n', "'cny' is not a currency code"),
    ('[rates]\nbase = "USD"\ndate = 2026-12-01\nCNY = -1\n', "a rate is a positive number"),
    ('[rates]\nbase = "USD"\ndate = 2026-12-01\nCNY = true\n', "a rate is a positive number"),
    ('[rates]\nbase = "USD"\ndate = 2026-12-01\nCNY = nan\n', "a rate is a positive number"),
    ('[rates]\nbase = "USD"\ndate = 2026-12-01\nCNY = "0.14"\n', "a rate is a positive number"),
    ('[rates]\nbase = "USD"\ndate = 2026-12-01\nUSD = 2\nCNY = 0.14\n', "its rate must be 1"),
    ('[rates]\nbase = "USD"\ndate = 2026-12-01\n', "no rates besides"),
    ('[rates]\nbase = "USD"\ndate = "yesterday"\nCNY = 0.14\n', "not a date"),
    ('[rates]\nbase = "USD"\ndate = 2026-12-01\nCNY = 0.14\n[extra]\n', "unknown top-level key 'extra'"),
    ('[rates\nbase = "USD"\n', "not TOML"),
    ('\xff\xfe', "not TOML"),
])
def test_rates_files_refused_in_one_line(tmp_path, text, words):
    path = tmp_path / "rates.toml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    with pytest.raises(RatesError) as err:
        Rates.load(path, today=TODAY)
    message = str(err.value)
    assert words in message and str(path) in message and "\n" not in message, message


def test_rates_file_that_cannot_be_read(tmp_path):
    with pytest.raises(RatesError, match="cannot read"):
        Rates.load(tmp_path / "missing.toml")
    big = tmp_path / "big.toml"
    big.write_text("#" * (2 << 20))
    with pytest.raises(RatesError, match="larger than"):
        Rates.load(big)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(RatesError, match="not UTF-8"):
        Rates.load(binary)


def test_hostile_input_is_a_one_line_condition_error_never_a_crash():
    import random
    rng = random.Random(10)
    atoms = ["accel_free", "region", "price_per_hour", "accel_memory_bytes", "acme.x", "cost", " in ", " notin ",
             "=", "!=", "<", "<=", ">", ">=", "==", "[", "]", ",", '"', " ", "1", "-1", "1e999", "nan", "inf",
             "80GiB", "USD", "%", "北京", "\u202e", "\x00", "\\", "'", ";", "$(", "0x1F", ".", "-", "_", "9" * 30]
    for _ in range(3000):
        text = "".join(rng.choice(atoms) for _ in range(rng.randint(1, 8)))
        for parse in (Condition.parse, SortKey.parse, parse_sort):
            try:
                parse(text)
            except ConditionError as exc:
                assert "\n" not in str(exc) and len(str(exc)) < 600, (text, str(exc))


def test_the_unit_examples_of_the_registry_document_parse_as_written():
    import re
    from pathlib import Path
    doc = (Path(__file__).resolve().parent.parent / "spec" / "capabilities.md").read_text()
    table = doc.split("### 7.1 Units")[1].split("###")[0]
    examples = re.findall(r"`([a-z_.]+(?:>=|<=|<|>|=)[^`]+)`(?: \(([0-9.]+)\))?", table)
    assert len(examples) >= 9
    for text, value in examples:
        c = Condition.parse(text)
        if value:
            assert c.values[0] == (float(value) if "." in value else int(value)), text
