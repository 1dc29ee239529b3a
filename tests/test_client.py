"""Resolver against real authoritative servers (resolver.auth.server) on 127.0.0.2-7."""

from __future__ import annotations

import asyncio
import time

import dns.name
import dns.rdata
import dns.rdatatype
import pytest

from resolver import IdentifierError, Resolver, Status
from resolver.engine import trace as ev
from resolver.engine.hints import HintError
from resolver.dnssec.anchors import TrustAnchorError
from support import federation as F


@pytest.fixture(scope="module")
def fed():
    return F.build(now=time.time())


def resolver(fed, port, **kw):
    return Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0, **kw)


async def test_secure_identifier_end_to_end(fed, tmp_path):
    anchor = tmp_path / "cid.anchor"
    anchor.write_text(fed.anchor_text)
    async with F.serving(fed) as port:
        async with Resolver(fed.hints(), str(anchor), port=port, timeout=1.0) as r:
            res = await r.resolve("cid:pool-7.bj.cmcc.cid")
    assert (res.identifier, res.name, res.rcode, res.status) == (
        "cid:pool-7.bj.cmcc.cid", "pool-7.bj.cmcc.cid.", "NOERROR", Status.SECURE)
    assert res.found and res.ttl == 30  # LOAD's TTL is the least
    assert [(e.target, e.priority, e.port, e.alpn, e.addresses) for e in res.endpoints] == [
        ("pool-7.bj.cmcc.cid.", 1, 8443, ("h2",), ("192.0.2.7", "2001:db8::7")),
        ("backup.bj.cmcc.cid.", 2, None, ("h3",), ("192.0.2.8",)),
    ]
    assert res.capabilities == {"accel_count": 8, "accel_kind": "gpu"}
    assert res.load == {"accel_free": 3, "util": 0.5}
    assert res.to_json()["status"] == "secure"


async def test_alias_insecure_nxdomain_and_hints(fed):
    async with F.serving(fed) as port:
        async with resolver(fed, port) as r:
            alias, insecure, missing, hinted = await asyncio.gather(
                r.resolve("alias.bj.cmcc.cid."), r.resolve("cid:pool-1.open.cid"),
                r.resolve("cid:nothing.bj.cmcc.cid"), r.resolve("cid:hinted.bj.cmcc.cid"))
    assert alias.status is Status.SECURE and [e.target for e in alias.endpoints] == [
        "pool-7.bj.cmcc.cid.", "backup.bj.cmcc.cid."]
    assert "alias" in alias.why
    assert insecure.status is Status.INSECURE and insecure.found and "open.cid." in insecure.why
    assert insecure.endpoints[0].addresses == ("192.0.2.21",)
    assert missing.rcode == "NXDOMAIN" and not missing.found and missing.status is Status.SECURE
    # nowhere.bj.cmcc.cid. has no addresses: the SVCB ipv4hint is used instead.
    assert hinted.endpoints[0].addresses == ("192.0.2.50",)


async def test_tampered_zone_is_bogus_and_gives_no_data(fed):
    bad = F.build(now=time.time())
    zone = bad.zones["bj.cmcc.cid."]
    node = zone.find_node(dns.name.from_text("pool-7.bj.cmcc.cid."))
    a = node.find_rdataset(1, dns.rdatatype.A)
    a.clear()
    a.add(dns.rdata.from_text("IN", "A", "203.0.113.66"), 300)  # changed after signing
    async with F.serving(bad) as port:
        async with Resolver(bad.hints(), bad.anchor(), port=port, timeout=1.0) as r:
            res = await r.resolve("cid:pool-7.bj.cmcc.cid")
            unchecked = await r.lookup("pool-7.bj.cmcc.cid.", "A", cd=True)
    assert unchecked.status is Status.BOGUS and unchecked.rrset[0].address == "203.0.113.66"
    assert res.status is Status.BOGUS and res.rcode == "SERVFAIL" and not res.found
    assert res.endpoints == () and res.capabilities == {} and res.load is None
    assert "pool-7.bj.cmcc.cid." in res.why


async def test_shared_cache_answers_the_second_resolution(fed):
    async with F.serving(fed) as port:
        async with resolver(fed, port) as r:
            first = await r.resolve("cid:pool-7.bj.cmcc.cid")
            second = await r.resolve("cid:pool-7.bj.cmcc.cid")
            caps = await r.lookup("pool-7.bj.cmcc.cid.", "CAPS")
    assert any(isinstance(e, ev.QuerySent) for e in first.trace)
    assert not any(isinstance(e, ev.QuerySent) for e in second.trace)
    assert second.endpoints == first.endpoints and second.status is Status.SECURE
    assert caps.status is Status.SECURE and caps.rrset[0].mapping["accel_kind"] == "gpu"


async def test_no_server_answering_gives_servfail_quickly(fed):
    port = F.free_port("127.0.0.2")
    async with Resolver(fed.hints(), fed.anchor(), port=port, timeout=0.2) as r:
        res = await r.resolve("cid:pool-7.bj.cmcc.cid")
    assert res.rcode == "SERVFAIL" and not res.found
    assert "cid." in res.why and "127.0.0.2" in res.why


async def test_bad_inputs_raise_precise_errors(fed):
    async with resolver(fed, 53) as r:
        with pytest.raises(IdentifierError):
            await r.resolve("cid:bad_label.cid")
    with pytest.raises(HintError):
        Resolver({"cid.": ["not-an-address"]})
    with pytest.raises(TrustAnchorError):
        Resolver(fed.hints(), "/nonexistent/anchor")


async def test_resolution_cache_counts_down_and_expires_with_the_least_ttl(fed):
    clock = [time.time()]
    async with F.serving(fed) as port:
        async with resolver(fed, port, clock=lambda: clock[0]) as r:
            first = await r.resolve("cid:pool-7.bj.cmcc.cid")
            clock[0] += 10
            later = await r.resolve("cid:pool-7.bj.cmcc.cid")
            clock[0] += 21  # LOAD (TTL 30) has expired; everything else is still cached
            expired = await r.resolve("cid:pool-7.bj.cmcc.cid")
    assert first.ttl == 30 and later.ttl == 20 and later.trace == ()
    sent = [(e.qname, e.qtype) for e in expired.trace if isinstance(e, ev.QuerySent)]
    assert sent == [("pool-7.bj.cmcc.cid.", "LOAD")]
    assert expired.ttl == 30 and expired.load == first.load


async def test_one_budget_bounds_all_lookups_of_a_resolution(fed):
    async with F.serving(fed) as port:
        async with resolver(fed, port, max_resolve_queries=7) as r:
            res = await r.resolve("cid:pool-7.bj.cmcc.cid")
    # Cold, SVCB alone takes 6 queries; CAPS, LOAD and the address lookups cannot all fit in 1.
    sent = [e for e in res.trace if isinstance(e, ev.QuerySent)]
    assert len(sent) == 7
    assert res.status is Status.INDETERMINATE and "budget of 7" in res.why


async def test_identical_concurrent_lookups_share_one_fetch(fed):
    async with F.serving(fed) as port:
        async with resolver(fed, port) as r:
            results = await asyncio.gather(*(r.lookup("pool-7.bj.cmcc.cid.", "A") for _ in range(20)))
            assert r._inflight == {}
    assert all(res is results[0] for res in results)
    assert results[0].status is Status.SECURE


async def test_from_config(fed, tmp_path):
    (tmp_path / "ta.ds").write_text(fed.anchor_text)
    config = tmp_path / "resolver.toml"
    async with F.serving(fed) as port:
        config.write_text(f'[resolver]\nport = {port}\ntimeout = 1.0\ntrust_anchor = "ta.ds"\n'
                          f'[resolver.hints]\n"cid." = ["127.0.0.2"]\n')
        async with Resolver.from_config(config) as r:
            res = await r.resolve("cid:pool-7.bj.cmcc.cid")
    assert res.status is Status.SECURE and res.found


@pytest.mark.parametrize("text, message", [
    ("port = 53\n", "hints"),
    ('hints = {"cid." = ["127.0.0.2"]}\ncolour = "blue"\n', "unknown setting"),
    ('hints = {"cid." = ["nowhere"]}\n', "not an IP address"),
    ('hints = {"cid." = ["127.0.0.2"]}\ntrust_anchor = "missing.ds"\n', "cannot read"),
    ("hints = [\n", "resolver.toml"),
])
def test_from_config_errors_name_the_file(tmp_path, text, message):
    from resolver.client import ResolverConfigError
    config = tmp_path / "resolver.toml"
    config.write_text(text)
    with pytest.raises(ResolverConfigError) as err:
        Resolver.from_config(config)
    assert message in str(err.value) and "resolver.toml" in str(err.value)


async def test_svcb_mandatory_and_alias_rules_of_rfc9460():
    """Records whose mandatory keys we do not implement are skipped (RFC 9460 §8); an RRset
    holding AliasMode "." has its ServiceMode records ignored (§2.4.1): no endpoints."""
    extra = """
strict 300 SVCB 1 . alpn=h2 mandatory=alpn,key65000 key65000=x port=1111
strict 300 SVCB 2 . alpn=h2 mandatory=alpn,port port=2222
strict 300 A 192.0.2.60
noservice 300 SVCB 0 .
noservice 300 SVCB 1 . alpn=h2 port=3333
noservice 300 A 192.0.2.61
"""
    fed = F.build(now=time.time(), overrides={"bj.cmcc.cid.": F.ZONES["bj.cmcc.cid."][1] + extra})
    async with F.serving(fed) as port:
        async with resolver(fed, port) as r:
            strict, noservice = await asyncio.gather(
                r.resolve("cid:strict.bj.cmcc.cid"), r.resolve("cid:noservice.bj.cmcc.cid"))
    assert strict.status is Status.SECURE
    assert [(e.priority, e.port) for e in strict.endpoints] == [(2, 2222)]
    assert noservice.status is Status.SECURE and noservice.endpoints == ()
