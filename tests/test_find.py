"""``Resolver.find`` (spec/discovery.md §3) against real servers on loopback: a hierarchy with
hostile and stale browse names (tests/support/discovery_zones.py), and the demo federation."""

from __future__ import annotations

import asyncio
import socket

import dns.rdata
import dns.name
import dns.rdatatype
import pytest

from resolver import ConditionError, FindResult, IdentifierError, Resolver, Status
from support import discovery_zones as D
from support import federation as F

N = dns.name.from_text


@pytest.fixture(scope="module")
def fed():
    return D.build()


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
    assert {x.identifier for x in found} == D.FOUND
    assert set(found.namespaces) == {"cid.", "cmcc.cid.", "bj.cmcc.cid.", "open.cid."}
    skipped = {}
    for s in found.skipped:
        skipped.setdefault(s.name, []).append(s.why)
    for name, words in D.SKIPPED.items():
        assert any(words in why for why in skipped[name]), (name, skipped.get(name))
    assert len(skipped["cid."]) == 2  # the self pointer in cid. and the upward one in cmcc.cid.
    # open.cid. is unsigned: its listing is insecure, so the whole search is at most insecure.
    assert found.status is Status.INSECURE and "open.cid." in found.why
    assert found.listed == 5 and found.matched == 4
    # Default order: free capacity (cpu-box cpu_free 40, pool-7 accel_free 3), then identifier.
    assert [x.identifier for x in found] == ["cid:cpu-box.bj.cmcc.cid", "cid:pool-7.bj.cmcc.cid",
                                             "cid:hinted.bj.cmcc.cid", "cid:pool-1.open.cid"]
    assert all(x.found and x.status in (Status.SECURE, Status.INSECURE) for x in found)


async def test_subtype_is_only_a_hint_conditions_use_validated_caps(fed):
    async with F.serving(fed) as port:
        async with make(fed, port) as r:
            asked = record_lookups(r)
            found = await r.find("cid.", where=["accel_kind=gpu"])
    # The sub-type name was browsed instead of the full listing ...
    assert "_kind-gpu._sub._compute.bj.cmcc.cid." in asked
    assert "_compute.bj.cmcc.cid." not in asked
    # ... but hinted (no CAPS) and cpu-box (CAPS accel_kind=cpu) listed under it do not match.
    assert [x.identifier for x in found] == ["cid:pool-7.bj.cmcc.cid"]
    assert found.listed == 3 and found.matched == 1


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
            nothing = await r.find("cid", where=["accel_count>=8", "accel_free>3"])
            missing = await r.find("cid", where="no_such_key!=1")
    assert [x.identifier for x in results[0]] == ["cid:pool-7.bj.cmcc.cid"]
    assert results[1].results == results[0].results
    assert [x.identifier for x in results[2]] == ["cid:pool-7.bj.cmcc.cid"]
    assert [x.identifier for x in results[3]] == ["cid:pool-7.bj.cmcc.cid"]
    assert not nothing.found and len(nothing) == 0
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
    assert [x.identifier for x in found] == ["cid:pool-1.open.cid"]
    bogus = [s for s in found.skipped if s.name == "_compute.bj.cmcc.cid."]
    assert bogus and "bogus" in bogus[0].why
    assert "evil" not in str(found.to_json())
    assert found.status is Status.INSECURE  # the bogus listing was not used, so it sets no status


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
    assert len(found) == 4
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
    for where in ("accel_free", ">=2", "a b=1", "accel_free>>1", "k=", ("k", "~", 1), [42],
                  ("k", "=", [1]), "k=" + "x" * 300, "k" * 65 + "=1"):
        with pytest.raises(ConditionError):
            await r.find("cid", where=where)
    for kw in ({"limit": 0}, {"limit": -1}, {"limit": True}, {"deadline": 0}, {"sort": "a b"},
               {"sort": "--x"}, {"concurrency": 0}):
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
    assert len(found) == 2 and found.matched == 4
    with pytest.raises(AttributeError):
        found.results = ()
    data = found.to_json()
    assert isinstance(data, list) and [d["identifier"] for d in data] == [x.identifier for x in found]
    summary = found.summary_json()
    assert summary["status"] == "insecure" and summary["results"] == data


async def test_hostile_flood_of_bad_pointers_is_bounded_in_the_report():
    from resolver.discovery.search import MAX_SKIPPED
    flood = "".join(f"_children._compute 3600 PTR x{i}.other.net.\n" for i in range(MAX_SKIPPED + 40))
    big = D.build({"cid.": flood})
    async with F.serving(big) as port:
        async with make(big, port) as r:
            found = await r.find("cid")
    assert {x.identifier for x in found} == D.FOUND  # the good part of the tree is still searched
    assert len(found.skipped) == MAX_SKIPPED and "more not listed" in found.why
    assert found.complete
