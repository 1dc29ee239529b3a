"""``Resolver.find`` (spec/discovery.md §3) against real servers on loopback: a hierarchy with
hostile and stale browse names (tests/support/discovery_zones.py), and the demo federation."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import socket

import time

import dns.rdata
import dns.name
import dns.rdatatype
import pytest

from resolver import ConditionError, FindResult, IdentifierError, Resolver, Status, ValidationRefused
from resolver.discovery import MixedCurrencies
from support import discovery_zones as D
from support import federation as F

N = dns.name.from_text


@pytest.fixture(scope="module")
def fed():
    return D.build()


def rates_mapping(date: dt.date | None = None, **codes) -> dict:
    return {"rates": {"base": "USD", "date": date or dt.date.today(), "CNY": 0.14, "EUR": 1.08, **codes}}


def make(fed, port, **kw) -> Resolver:
    return Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0, **kw)


def record_lookups(r: Resolver) -> list[str]:
    """Wrap r.lookup to note each name asked (the instance attribute shadows the method)."""
    asked: list[str] = []
    original = r.lookup

    async def lookup(name, rdtype, **kw):
        asked.append(str(name))
        return await original(name, rdtype, **kw)

    r.lookup = lookup
    return asked


async def test_descends_children_and_ignores_pointers_out_of_tree(fed):
    async with F.serving(fed) as port:
        async with make(fed, port) as r:
            found = await r.find("cid:cid")
    assert isinstance(found, FindResult) and found.complete
    assert {x.identifier for x in found} == D.FOUND | D.MARKET
    assert set(found.namespaces) == {"cid.", "cmcc.cid.", "bj.cmcc.cid.", "open.cid."}
    skipped = {}
    for s in found.skipped:
        skipped.setdefault(s.name, []).append(s.why)
    for name, words in D.SKIPPED.items():
        assert any(words in why for why in skipped[name]), (name, skipped.get(name))
    assert len(skipped["cid."]) == 2  # the self pointer in cid. and the upward one in cmcc.cid.
    # open.cid. is unsigned: pool-1.open.cid is shown and insecure, and so is its listing.
    assert found.status is Status.INSECURE and found.shown_status is Status.INSECURE
    assert found.listing_status is Status.INSECURE and "open.cid." in found.why
    assert found.skipped_status is Status.SECURE  # ghost's NXDOMAIN; pointers out of tree carry none
    assert found.listed == 9 and found.matched == 8 and found.rcode == "NOERROR"
    # Default order: live free capacity (cpu-box cpu_free 40, h100-a 4, pool-7 3, a100-b 2), then
    # no figure (mi-c's LOAD is stale, npu-e has none) in canonical order.
    assert [x.identifier for x in found] == [
        "cid:cpu-box.bj.cmcc.cid", "cid:h100-a.cmcc.cid", "cid:pool-7.bj.cmcc.cid", "cid:a100-b.cmcc.cid",
        "cid:hinted.bj.cmcc.cid", "cid:mi-c.cmcc.cid", "cid:npu-e.cmcc.cid", "cid:pool-1.open.cid"]
    assert all(x.found and x.status in (Status.SECURE, Status.INSECURE) for x in found)


async def test_subtype_is_only_a_hint_conditions_use_validated_caps(fed):
    async with F.serving(fed) as port:
        async with make(fed, port) as r:
            asked = record_lookups(r)
            found = await r.find("cid.", where=["accel_kind=gpu"])
    # The sub-type name was browsed instead of the full listing ...
    assert "_kind-gpu._sub._compute.bj.cmcc.cid." in asked and "_kind-gpu._sub._compute.cmcc.cid." in asked
    assert "_compute.bj.cmcc.cid." not in asked
    # ... but hinted (no CAPS) and cpu-box (CAPS accel_kind=cpu) listed under it do not match.
    assert [x.identifier for x in found] == ["cid:h100-a.cmcc.cid", "cid:pool-7.bj.cmcc.cid",
                                             "cid:a100-b.cmcc.cid", "cid:mi-c.cmcc.cid"]
    assert found.listed == 6 and found.matched == 4
    # Every result shown is secure: so is the search's status, though a listing read was not.
    assert found.status is Status.SECURE and found.shown_status is Status.SECURE
    assert found.listing_status is Status.INSECURE


async def test_where_forms_are_equivalent_and_anded(fed):
    async with F.serving(fed) as port:
        async with make(fed, port) as r:
            forms = [
                ["accel_count>=8", "accel_free > 2"],
                [("accel_count", ">=", 8), ("accel_free", ">", 2)],
                ("accel_count", ">=", "8"),
                {"accel_kind": "gpu"},
            ]
            results = [await r.find("cid", where=w) for w in forms]
            nothing = await r.find("cid", where=["accel_count>=8", "accel_free>4"])
            missing = await r.find("cid", where="acme.no_such_key!=1")
    assert [x.identifier for x in results[0]] == ["cid:h100-a.cmcc.cid", "cid:pool-7.bj.cmcc.cid"]
    assert results[1].results == results[0].results
    gpus = {"cid:h100-a.cmcc.cid", "cid:pool-7.bj.cmcc.cid", "cid:a100-b.cmcc.cid", "cid:mi-c.cmcc.cid"}
    assert {x.identifier for x in results[2]} == gpus | {"cid:npu-e.cmcc.cid"}  # 16 NPUs
    assert {x.identifier for x in results[3]} == gpus
    assert not nothing.found and len(nothing) == 0
    # mi-c has 8 free, but in a stale LOAD: not live capacity, so it is skipped and says why
    assert any(s.name == "mi-c.cmcc.cid." and "stale" in s.why for s in nothing.skipped)
    assert not missing.found  # a missing key fails the condition, even !=


async def test_bogus_listing_is_skipped_and_reported_the_rest_still_found():
    bad = D.build()
    zone = bad.zones["bj.cmcc.cid."]
    node = zone.find_node(N("_compute.bj.cmcc.cid."))
    ptrs = node.find_rdataset(1, dns.rdatatype.PTR)
    ptrs.add(dns.rdata.from_text("IN", "PTR", "evil.bj.cmcc.cid."), 3600)  # added after signing
    async with F.serving(bad) as port:
        async with make(bad, port) as r:
            found = await r.find("cid")
    assert {x.identifier for x in found} == D.MARKET | {"cid:pool-1.open.cid"}
    bogus = [s for s in found.skipped if s.name == "_compute.bj.cmcc.cid."]
    assert bogus and "bogus" in bogus[0].why and bogus[0].status is Status.BOGUS
    assert "evil" not in str(found.to_json())
    assert found.status is Status.INSECURE  # the bogus listing was not used, so it sets no status
    assert found.skipped_status is Status.BOGUS  # but what was skipped says it


async def test_bogus_identifier_is_skipped_not_matched():
    bad = D.build()
    node = bad.zones["bj.cmcc.cid."].find_node(N("pool-7.bj.cmcc.cid."))
    load = node.find_rdataset(1, 65381)
    load.clear()
    load.add(dns.rdata.from_text("IN", "LOAD", "accel_free=99"), 30)  # forged after signing
    async with F.serving(bad) as port:
        async with make(bad, port) as r:
            found = await r.find("cid", where="accel_free>=1")
    assert "cid:pool-7.bj.cmcc.cid" not in {x.identifier for x in found}
    reason = [s.why for s in found.skipped if s.name == "pool-7.bj.cmcc.cid."]
    assert reason and "bogus" in reason[0]


async def test_bounds_on_depth_and_namespaces_are_reported(fed):
    async with F.serving(fed) as port:
        async with make(fed, port) as r:
            shallow = await r.find("cid", max_depth=1)
            few = await r.find("cid", max_namespaces=2)
    assert set(shallow.namespaces) == {"cid.", "cmcc.cid.", "open.cid."}
    assert not shallow.complete and "depth limit 1" in shallow.why
    assert any(s.name == "bj.cmcc.cid." and "levels" in s.why for s in shallow.skipped)
    assert len(few.namespaces) == 2 and not few.complete and "namespace limit" in few.why


async def test_concurrency_is_bounded(fed):
    async with F.serving(fed) as port:
        async with make(fed, port) as r:
            inflight = peak = 0
            original = r.resolve

            async def resolve(identifier, **kw):
                nonlocal inflight, peak
                inflight += 1
                peak = max(peak, inflight)
                try:
                    await asyncio.sleep(0.01)  # hold the slot so overlap is visible
                    return await original(identifier, **kw)
                finally:
                    inflight -= 1

            r.resolve = resolve
            found = await r.find("cid", concurrency=2)
    assert len(found) == 8
    assert peak == 2  # five identifiers listed in one namespace, never more than 2 at once


async def test_deadline_cuts_the_search_short():
    # slow.cid. is delegated to a server that swallows every query.
    extra = {"cid.": "slow 3600 NS ns.slow\nns.slow 3600 A 127.0.0.9\n_children._compute 3600 PTR slow\n"}
    slow_fed = D.build(extra)
    async with F.serving(slow_fed) as port:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
            sink.bind(("127.0.0.9", port))
            async with make(slow_fed, port) as r:
                found = await r.find("cid", deadline=0.5)
    assert not found.complete and "deadline of 0.5 s" in found.why
    assert "slow.cid." in found.namespaces


async def test_usage_errors_raise_before_any_query(fed):
    r = make(fed, 9)  # nothing listens: any query would fail, not raise
    asked = record_lookups(r)
    with pytest.raises(IdentifierError):
        await r.find("cid:bad..name")
    for where in ("accel_free", ">=2", "a b=1", "accel_free>>1", "accel_free=", ("accel_free", "~", 1), [42],
                  ("accel_free", "=", [1]), "acme.k=" + "x" * 300, "k" * 65 + "=1", "unknown_key=1",
                  "accel_free>=abc", "accel_util_ratio<=80", "region in [bj", "region in []",
                  "accel_free>=1e999", "price_per_hour<nan", "region=北京", "region=a' OR '1'='1"):
        with pytest.raises(ConditionError):
            await r.find("cid", where=where)
    for kw in ({"limit": 0}, {"limit": -1}, {"limit": True}, {"deadline": 0}, {"sort": "a b"},
               {"sort": "--x"}, {"sort": "bogus_key"}, {"sort": "accel_free,bogus"}, {"concurrency": 0},
               {"currency": "dollars"}, {"currency": 1}, {"need": 0}, {"need": 2.5}, {"need": True},
               {"max_age": 0}, {"max_age": math.nan}, {"max_age": "1h"}, {"allow_stale": "yes"},
               {"rates": {"base": "USD"}}, {"rates": "/nonexistent/rates.toml"},
               {"rates": rates_mapping(date=dt.date.today() - dt.timedelta(days=30))},
               {"currency": "JPY", "rates": rates_mapping()},
               {"where": "price_per_hour<=2JPY", "rates": rates_mapping()},
               {"where": "price_per_hour<=2CNY", "currency": "USD"},
               {"where": ["price_per_hour<=2CNY", "price_per_hour>=1USD"]}):
        with pytest.raises(ConditionError):
            await r.find("cid", **kw)
    assert asked == []


# --- the demo federation --------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from resolver.demo.build import build
    from support.net import free_port
    return build(tmp_path_factory.mktemp("demo"), free_port("127.0.10.1"))


def _inventory():
    from resolver.demo.inventory import namespaces
    return {f"cid:{res.label}.{ns.name}".rstrip("."): (ns, res) for ns in namespaces() for res in ns.resources}


async def test_demo_find_every_identifier_ranked_by_free_capacity(demo):
    from resolver.demo.run import resolver_for, serving
    async with serving(demo):
        async with resolver_for(demo, timeout=1.0) as r:
            found = await r.find("cid")
    inventory = _inventory()
    assert {x.identifier for x in found} == set(inventory) == set(demo.identifiers)
    assert len(found.namespaces) == len(demo.zones) and found.complete and not found.skipped
    frees = [x.load["accel_free"] for x in found]
    assert frees == sorted(frees, reverse=True)
    for a, b in zip(found, found[1:]):  # ties: identifier in canonical order
        if a.load["accel_free"] == b.load["accel_free"]:
            assert N(a.name) < N(b.name)
    assert found.status is Status.INSECURE  # plain.cid. is unsigned
    assert {x.status for x in found if not x.identifier.endswith("plain.cid")} == {Status.SECURE}


async def test_demo_find_with_where_sort_and_limit(demo):
    from resolver.demo.run import resolver_for, serving
    inventory = _inventory()
    expected = sorted(
        (res.load["price_per_hour"], ident) for ident, (ns, res) in inventory.items()
        if res.caps.get("accel_vendor") == "nvidia" and res.load["accel_free"] >= 2
        and ident.endswith("cmcc.cid"))
    async with serving(demo):
        async with resolver_for(demo, timeout=1.0) as r:
            found = await r.find("cid:cmcc.cid", where=["accel_vendor=nvidia", "accel_free>=2"],
                                 sort="price_per_hour")
            top = await r.find("cid:cmcc.cid", where=["accel_vendor=nvidia", "accel_free>=2"],
                               sort="-price_per_hour", limit=2)
            sh = await r.find("cid:sh.cmcc.cid")
    assert [x.identifier for x in found] == [ident for _, ident in expected]
    assert found.status is Status.SECURE
    prices = [x.load["price_per_hour"] for x in top]
    assert len(top) == 2 and prices == sorted(prices, reverse=True)
    assert prices[0] == max(p for p, _ in expected)
    assert sh.namespaces == ("sh.cmcc.cid.",)
    assert {x.identifier for x in sh} == {i for i in inventory if i.endswith(".sh.cmcc.cid")}


async def test_find_result_is_immutable_and_json_is_a_list(fed):
    async with F.serving(fed) as port:
        async with make(fed, port) as r:
            found = await r.find("cid", limit=2)
    assert len(found) == 2 and found.matched == 8
    with pytest.raises(AttributeError):
        found.results = ()
    data = found.to_json()
    assert isinstance(data, list) and [d["identifier"] for d in data] == [x.identifier for x in found]
    summary = found.summary_json()
    assert summary["status"] == "secure" and summary["results"] == data  # cpu-box and h100-a
    assert summary["shown"] == {"count": 2, "status": "secure"} and summary["listing_status"] == "insecure"
    assert [m["identifier"] for m in summary["matches"]] == [d["identifier"] for d in data]


async def test_hostile_flood_of_bad_pointers_is_bounded_in_the_report():
    from resolver.discovery.search import MAX_SKIPPED
    flood = "".join(f"_children._compute 3600 PTR x{i}.other.net.\n" for i in range(MAX_SKIPPED + 40))
    big = D.build({"cid.": flood})
    async with F.serving(big) as port:
        async with make(big, port) as r:
            found = await r.find("cid")
    assert {x.identifier for x in found} == D.FOUND | D.MARKET  # the good part of the tree is still searched
    assert len(found.skipped) == MAX_SKIPPED and "more not listed" in found.why
    assert found.complete


# --- the query language, prices, freshness and honest output (spec/discovery.md §5) ----------------

def ids(found) -> list[str]:
    return [x.identifier for x in found]


def skipped_for(found, name: str) -> list[str]:
    return [s.why for s in found.skipped if s.name == name]


async def test_lists_units_versions_and_extension_keys(fed):
    async with F.serving(fed) as port:
        async with make(fed, port) as r:
            regions = await r.find("cid", where="region in [bj,sh]", sort="accel_free-")
            not_amd = await r.find("cid", where=[("accel_vendor", "notin", ["amd"]), "accel_kind=gpu"])
            big = await r.find("cid", where=["accel_memory_bytes>=80GiB", "memory_bytes>=2T"])
            fp = await r.find("cid", where="accel_compute_capability>=8.6")
            tier = await r.find("cid", where={"acme.tier": ["gold", "platinum"]})
            several = await r.find("cid", where="accel_kind=gpu",
                                   sort=[("accel_memory_bytes", "asc"), ("accel_free", "desc")])
    assert ids(regions) == ["cid:h100-a.cmcc.cid", "cid:a100-b.cmcc.cid", "cid:mi-c.cmcc.cid"]  # stale LOAD last
    assert set(ids(not_amd)) == {"cid:h100-a.cmcc.cid", "cid:a100-b.cmcc.cid"}  # pool-7 has no vendor: fails
    assert ids(big) == ["cid:h100-a.cmcc.cid", "cid:mi-c.cmcc.cid"]             # 80 GiB and 192 GiB, 2 TiB hosts
    assert ids(fp) == ["cid:h100-a.cmcc.cid"]                                   # 9.0 >= 8.6 > 8.0, as versions
    assert ids(tier) == ["cid:a100-b.cmcc.cid"]
    assert ids(several) == ["cid:a100-b.cmcc.cid", "cid:h100-a.cmcc.cid", "cid:mi-c.cmcc.cid",
                            "cid:pool-7.bj.cmcc.cid"]                           # pool-7 has no memory: last
    assert [str(k) for k in several.sort] == ["accel_memory_bytes+", "accel_free-"]


async def test_prices_in_several_currencies_are_never_ranked_together(fed):
    async with F.serving(fed) as port:
        async with make(fed, port) as r:
            with pytest.raises(MixedCurrencies) as mixed:
                await r.find("cid", sort="price_per_hour")
            with pytest.raises(MixedCurrencies) as filtered:
                await r.find("cid", where="price_per_hour<=20")
            one = await r.find("cid", where="accel_vendor=amd", sort="price_per_hour")  # all CNY: fine
            usd = await r.find("cid", sort="price_per_hour", currency="usd")
            cny = await r.find("cid", where="price_per_hour<=20CNY")  # a currency in the condition keeps it
    assert isinstance(mixed.value, ConditionError) and mixed.value.currencies == ("CNY", "EUR", "USD")
    assert "sorting by price_per_hour" in str(mixed.value) and "currency=" in str(mixed.value)
    assert "comparing price_per_hour<=20" in str(filtered.value)
    assert ids(one) == ["cid:mi-c.cmcc.cid"] and one.currency == "CNY"
    assert ids(usd) == ["cid:a100-b.cmcc.cid"] and usd.currency == "USD"
    assert "price in CNY, not USD (the currency kept)" in skipped_for(usd, "h100-a.cmcc.cid.")
    assert "price in EUR, not USD (the currency kept)" in skipped_for(usd, "npu-e.cmcc.cid.")
    assert "has no price (price_per_hour) in USD" in skipped_for(usd, "pool-7.bj.cmcc.cid.")
    assert ids(cny) == ["cid:mi-c.cmcc.cid"]  # 15.0 (its CAPS list price: LOAD is stale); h100-a is 21.5


async def test_rates_convert_prices_and_conditions(fed, tmp_path):
    path = tmp_path / "rates.toml"
    path.write_text(f'[rates]\nbase = "USD"\ndate = {dt.date.today().isoformat()}\nCNY = 0.14\nEUR = 1.08\n')
    async with F.serving(fed) as port:
        async with make(fed, port) as r:
            by_file = await r.find("cid", sort="price_per_hour+", rates=path)
            by_mapping = await r.find("cid", sort="price_per_hour+", rates=rates_mapping())
            in_eur = await r.find("cid", sort="price_per_hour+", rates=rates_mapping(), currency="EUR", limit=1)
            cheap = await r.find("cid", where="price_per_hour<=2USD", rates=rates_mapping())
            cheap_cny = await r.find("cid", where="price_per_hour<=14CNY", rates=rates_mapping())
            no_eur = await r.find("cid", sort="price_per_hour", rates={"rates": {"base": "USD",
                                  "date": dt.date.today(), "CNY": 0.14}})
    # npu-e 1.2 EUR = 1.296 USD, a100-b 1.9 USD, mi-c 15 CNY = 2.10 USD, h100-a 21.5 CNY = 3.01 USD;
    # identifiers without a price last
    priced = ["cid:npu-e.cmcc.cid", "cid:a100-b.cmcc.cid", "cid:mi-c.cmcc.cid", "cid:h100-a.cmcc.cid"]
    assert ids(by_file)[:4] == priced and ids(by_mapping) == ids(by_file)
    assert by_file.rates.source == str(path) and by_file.currency == "USD"
    m = by_file.matches[3]
    assert (m.price, m.currency, m.compare_currency) == (21.5, "CNY", "USD") and m.compared == pytest.approx(3.01)
    assert all(x.compared is None for x in by_file.matches[4:])
    assert ids(in_eur) == ["cid:npu-e.cmcc.cid"] and in_eur.matches[0].compared == pytest.approx(1.2)
    # 2 USD: npu-e (1.296) and a100-b (1.9), in the default order (live free capacity first)
    assert ids(cheap) == ["cid:a100-b.cmcc.cid", "cid:npu-e.cmcc.cid"]
    # 14 CNY is 1.96 USD: the same two; mi-c's 15 CNY is not
    assert ids(cheap_cny) == ["cid:a100-b.cmcc.cid", "cid:npu-e.cmcc.cid"]
    assert "no rate for EUR in rates (base USD)" in skipped_for(no_eur, "npu-e.cmcc.cid.")


async def test_need_keeps_live_free_devices_and_ranks_by_their_cost(fed):
    async with F.serving(fed) as port:
        async with make(fed, port) as r:
            two = await r.find("cid", need=2, rates=rates_mapping())
            three = await r.find("cid", need=3, currency="CNY")
            with pytest.raises(MixedCurrencies) as mixed:
                await r.find("cid", need=2)
            budget = await r.find("cid", need=2, rates=rates_mapping(), where="cost<=5USD")
            by_free = await r.find("cid", need=2, sort="accel_free")  # no price used: no currency needed
    # a100-b: 2 × 1.9 = 3.8 USD; h100-a: 2 × 21.5 CNY = 6.02 USD; pool-7 (3 free) has no price: last
    assert ids(two) == ["cid:a100-b.cmcc.cid", "cid:h100-a.cmcc.cid", "cid:pool-7.bj.cmcc.cid"]
    assert [m.cost for m in two.matches[:2]] == [pytest.approx(3.8), pytest.approx(6.02)]
    assert two.matches[2].cost is None and two.need == 2 and [str(k) for k in two.sort] == ["cost+"]
    # mi-c has 8 free in a LOAD older than 5 × its TTL: never live capacity
    assert any("stale" in why and "allowing stale" in why for why in skipped_for(two, "mi-c.cmcc.cid."))
    assert ids(three) == ["cid:h100-a.cmcc.cid"] and three.matches[0].cost == pytest.approx(64.5)
    assert mixed.value.currencies == ("CNY", "USD") and "cost of 2 device(s)" in str(mixed.value)
    assert ids(budget) == ["cid:a100-b.cmcc.cid"]
    assert ids(by_free) == ["cid:h100-a.cmcc.cid", "cid:pool-7.bj.cmcc.cid", "cid:a100-b.cmcc.cid"]


async def test_freshness_max_age_and_stale_load(fed):
    async with F.serving(fed) as port:
        async with make(fed, port) as r:
            fresh = await r.find("cid", max_age=600)
            gpus = await r.find("cid", where="accel_free>=8")
            allowed = await r.find("cid", where="accel_free>=8", allow_stale=True)
            everything = await r.find("cid", where="accel_kind=gpu")
    assert ids(fresh) == ["cid:h100-a.cmcc.cid"]
    assert 0 <= fresh.matches[0].load_age - D.FRESH_AGE < 120 and fresh.matches[0].load_live
    (old,) = skipped_for(fresh, "a100-b.cmcc.cid.")
    assert "s old, older than the maximum age of 600 s" in old
    assert skipped_for(fresh, "npu-e.cmcc.cid.") == ["no LOAD: its age is unknown (maximum age 600 s)"]
    assert skipped_for(fresh, "pool-7.bj.cmcc.cid.") == ["LOAD has no ts: its age is unknown (maximum age 600 s)"]
    assert not gpus.found and any("stale" in why for why in skipped_for(gpus, "mi-c.cmcc.cid."))
    assert ids(allowed) == ["cid:mi-c.cmcc.cid"] and allowed.matches[0].load_live
    ages = {m.identifier: m for m in everything.matches}
    assert not ages["cid:mi-c.cmcc.cid"].load_live and ages["cid:mi-c.cmcc.cid"].load_note.startswith("stale")
    assert ages["cid:mi-c.cmcc.cid"].load_age >= D.STALE_AGE and ages["cid:pool-7.bj.cmcc.cid"].load_age is None


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_load_served_stale_never_counts_as_live_capacity(fed):
    clock = Clock()
    async with D.switchable(fed) as servers:
        async with Resolver(fed.hints(), fed.anchor(), port=servers.port, timeout=0.5, clock=clock) as r:
            before = await r.find("cid:cmcc.cid", need=2, sort="accel_free")
            clock.now += 301   # h100-a's SVCB, A and LOAD (300 s) expired; a100-b's LOAD (600 s) not
            servers.refusing = True  # every authority fails: the resolver serves expired data (RFC 8767)
            during = await r.find("cid:cmcc.cid", need=2, sort="accel_free")
            allowed = await r.find("cid:cmcc.cid", need=2, sort="accel_free", allow_stale=True)
    assert ids(before) == ["cid:h100-a.cmcc.cid", "cid:pool-7.bj.cmcc.cid", "cid:a100-b.cmcc.cid"]
    h100 = next(x for x in allowed if x.identifier == "cid:h100-a.cmcc.cid")
    assert h100.stale and "LOAD" in h100.why
    # a100-b's SVCB was served stale too, but its LOAD came fresh from the cache: it still counts
    a100 = next(x for x in during if x.identifier == "cid:a100-b.cmcc.cid")
    assert a100.stale and "LOAD" not in a100.why.split("[stale: ")[1].split(" served")[0].split(", ")
    assert ids(during) == ["cid:a100-b.cmcc.cid"]
    for name in ("h100-a.cmcc.cid.", "pool-7.bj.cmcc.cid."):  # LOAD TTLs 300 and 30 s: served stale
        (why,) = skipped_for(during, name)
        assert "served from expired cache" in why, why
    assert ids(allowed) == ["cid:mi-c.cmcc.cid", *ids(before)]  # mi-c's old LOAD is let in too


async def test_a_namespace_that_does_not_exist_is_nxdomain(fed):
    async with F.serving(fed) as port:
        async with make(fed, port) as r:
            nope = await r.find("cid:nope.cid")
            unsigned = await r.find("cid:nope.open.cid")
            bare = await r.find("cid:far.cid")  # exists, publishes no browse names: "none here"
            leaf = await r.find("cid:nope.cid", where="accel_kind=gpu")  # through a sub-type name too
    assert nope.rcode == "NXDOMAIN" and nope.status is Status.SECURE and not nope.found
    assert nope.why == "cid:nope.cid: no such namespace (NXDOMAIN, secure)"
    assert unsigned.rcode == "NXDOMAIN" and unsigned.status is Status.INSECURE
    assert bare.rcode == "NOERROR" and not bare.found and bare.status is Status.SECURE
    assert leaf.rcode == "NXDOMAIN"
    assert nope.summary_json()["rcode"] == "NXDOMAIN"


async def test_require_secure_skips_what_is_insecure_below_and_refuses_an_insecure_namespace(fed):
    async with F.serving(fed) as port:
        async with make(fed, port, require_secure=True) as r:
            found = await r.find("cid")
            with pytest.raises(ValidationRefused) as refused:
                await r.find("cid:open.cid")
            with pytest.raises(ValidationRefused):
                await r.find("cid:nope.open.cid")  # an insecure NXDOMAIN is refused as well
    assert {x.identifier for x in found} == (D.FOUND | D.MARKET) - {"cid:pool-1.open.cid"}
    assert found.status is Status.SECURE and found.listing_status is Status.SECURE
    why = skipped_for(found, "_compute.open.cid.")
    assert why == ["listing insecure: refused by the require-secure policy"]
    assert skipped_for(found, "_children._compute.open.cid.") == [
        "child pointers insecure: refused by the require-secure policy"]
    assert found.skipped_status is Status.INSECURE
    assert refused.value.status is Status.INSECURE
