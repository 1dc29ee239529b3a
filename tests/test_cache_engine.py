"""The cache as the engine uses it, without sockets (FakeNetwork answers from the signed test
federation; an injectable clock): serve-stale (RFC 8767), prefetch, aggressive use of
validated NSEC (RFC 8198) with upstream queries counted, and the memory bound under load."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import pytest

from resolver.engine import trace as ev
from resolver.engine.cache import Cache, CacheConfig
from resolver.engine.engine import Engine
from resolver.status import Status
from support import federation as F
from support.signing import flip_signature_byte

N = dns.name.from_text
RRSIG = dns.rdatatype.RRSIG


@pytest.fixture(scope="module")
def fed():
    return F.build()


class World:
    """One cache, one clock and one fake network shared by successive lookups."""

    def __init__(self, fed, net=None, **config):
        self.fed = fed
        self.now = fed.now
        self.cache = Cache(lambda: self.now, CacheConfig(**config))
        self.net = net or F.network(fed)

    def engine(self, qname, qtype="A", **kw) -> Engine:
        return Engine(qname, qtype, self.fed.hints(), self.fed.anchor(), self.cache, now=lambda: self.now, **kw)

    def run(self, qname, qtype="A", **kw):
        """(Lookup, upstream queries it cost, the engine)."""
        before = len(self.net.sent)
        e = self.engine(qname, qtype, **kw)
        result = self.net.run(e)
        return result, len(self.net.sent) - before, e


# --- serve-stale (RFC 8767) -------------------------------------------------------------------------

def test_expired_answer_is_served_stale_when_every_authority_fails(fed):
    w = World(fed)
    fresh, _, _ = w.run("pool-7.bj.cmcc.cid.")
    assert fresh.status is Status.SECURE and not fresh.stale
    w.now += 301  # the A RRset (TTL 300) expired; keys and delegations (3600) did not
    w.net.down = {"127.0.0.4"}
    stale, n, _ = w.run("pool-7.bj.cmcc.cid.")
    assert n >= 1  # it did try upstream first
    assert stale.stale and stale.rcode == "NOERROR" and stale.status is Status.SECURE
    assert stale.ttl == 30 and [rd.address for rd in stale.rrset] == ["192.0.2.7"]
    assert "stale" in stale.why and "127.0.0.4" in stale.why
    assert any(isinstance(e, ev.StaleServed) for e in stale.trace)
    w.net.down = set()
    again, n, _ = w.run("pool-7.bj.cmcc.cid.")
    assert n == 1 and not again.stale and again.ttl == 300  # back to fresh data once it answers


def test_stale_negative_answers_and_cname_chains(fed):
    w = World(fed)
    w.run("gone.bj.cmcc.cid.")
    w.run("c1.bj.cmcc.cid.")  # c1 -> c0 -> pool-7
    w.now += 3601  # everything expired, delegations too
    w.net.down = {"127.0.0.2", "127.0.0.3", "127.0.0.4"}
    nx, _, _ = w.run("gone.bj.cmcc.cid.", "A")
    assert nx.stale and nx.rcode == "NXDOMAIN" and nx.status is Status.SECURE
    chained, _, _ = w.run("c1.bj.cmcc.cid.")
    assert chained.stale and len(chained.chain) == 2 and chained.rrset[0].address == "192.0.2.7"


def test_nothing_stale_past_stale_max_or_when_disabled(fed):
    for config, later in (({"stale_max": 600}, 301 + 600), ({"serve_stale": False}, 301)):
        w = World(fed, **config)
        w.run("pool-7.bj.cmcc.cid.")
        w.now += later
        w.net.down = {"127.0.0.4"}
        result, _, _ = w.run("pool-7.bj.cmcc.cid.")
        assert result.rcode == "SERVFAIL" and not result.stale, config


def test_bogus_data_is_never_served_stale(fed):
    def corrupt(server, query, response, tcp):
        if server[0] == "127.0.0.4" and query.question[0].rdtype == dns.rdatatype.A:
            response.answer = [flip_signature_byte(r) if r.rdtype == RRSIG else r for r in response.answer]
        return response
    w = World(fed, net=F.network(fed, tamper=corrupt))
    bad, _, _ = w.run("pool-7.bj.cmcc.cid.")
    assert bad.status is Status.BOGUS
    w.now += 61  # bogus_ttl
    w.net.down = {"127.0.0.4"}
    result, _, _ = w.run("pool-7.bj.cmcc.cid.")
    assert result.rcode == "SERVFAIL" and not result.stale and result.rrset is None


# --- prefetch ---------------------------------------------------------------------------------------------

def test_hit_in_the_last_tenth_of_ttl_asks_for_a_prefetch_and_refresh_refetches_only_that(fed):
    w = World(fed)
    w.run("pool-7.bj.cmcc.cid.")
    w.now += 200
    early, n, e = w.run("pool-7.bj.cmcc.cid.")
    assert n == 0 and e.prefetch == set()
    w.now += 75  # 25 s left of 300: within the last 10 %
    late, n, e = w.run("pool-7.bj.cmcc.cid.")
    assert n == 0 and late.ttl == 25  # still answered from cache at once
    assert e.prefetch == {(N("pool-7.bj.cmcc.cid."), dns.rdatatype.A)}
    refreshed, n, _ = w.run("pool-7.bj.cmcc.cid.", refresh=True)
    assert n == 1 and refreshed.ttl == 300  # one query: keys and delegations came from cache
    after, n, e = w.run("pool-7.bj.cmcc.cid.")
    assert n == 0 and after.ttl == 300 and e.prefetch == set()


def test_no_prefetch_for_short_ttls_or_when_disabled(fed):
    w = World(fed, prefetch=False)
    w.run("pool-7.bj.cmcc.cid.")
    w.now += 290
    _, _, e = w.run("pool-7.bj.cmcc.cid.")
    assert e.prefetch == set()
    w = World(fed)
    w.run("pool-7.bj.cmcc.cid.", "LOAD")  # TTL 30: worth it (>= 10 s)
    w.now += 28
    _, _, e = w.run("pool-7.bj.cmcc.cid.", "LOAD")
    assert e.prefetch == {(N("pool-7.bj.cmcc.cid."), dns.rdatatype.from_text("LOAD"))}


# --- aggressive use of validated NSEC (RFC 8198) ------------------------------------------------------

def test_cached_nsec_proves_nxdomain_for_other_names_without_asking(fed):
    w = World(fed)
    first, n, _ = w.run("d.bj.cmcc.cid.")  # NSEC c9 -> hinted covers d, e, gone, ...
    assert first.rcode == "NXDOMAIN" and n >= 1
    for name in ("e.bj.cmcc.cid.", "gone.bj.cmcc.cid.", "f.g.bj.cmcc.cid."):
        result, n, _ = w.run(name, "SVCB")
        assert n == 0, name  # no upstream query at all
        assert result.rcode == "NXDOMAIN" and result.status is Status.SECURE, name
        assert "cached NSEC" in result.why
        assert any(isinstance(e, ev.CacheDenial) for e in result.trace)
        assert any(r.rdtype == dns.rdatatype.NSEC for r in result.authority)
    outside, n, _ = w.run("zz.bj.cmcc.cid.")  # after wild: not covered by what is cached
    assert n >= 1 and outside.rcode == "NXDOMAIN"


def test_random_names_cost_at_most_one_query_per_nsec_span(fed):
    """A random-subdomain flood: once the chain around the names is cached, nothing goes
    upstream. The apex NSEC (it covers *.bj.cmcc.cid.) arrives with every NXDOMAIN; storing
    it again must not lose it from the index (the regression: 200 names, 200 queries)."""
    import random
    import string
    rng = random.Random(7)
    w = World(fed)
    w.run("pool-7.bj.cmcc.cid.")  # delegations and keys in place
    spans = sum(1 for node in fed.zones["bj.cmcc.cid."].nodes.values()
                if node.get_rdataset(1, dns.rdatatype.NSEC) is not None)
    total = 0
    for _ in range(200):
        label = "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(12))
        result, n, _ = w.run(f"{label}.bj.cmcc.cid.", rng.choice(["A", "SVCB", "TXT"]))
        assert result.rcode == "NXDOMAIN" and result.status is Status.SECURE
        total += n
    assert total <= spans, total  # at most one query per NSEC span of the zone
    result, n, _ = w.run("zzzz-never-asked.bj.cmcc.cid.")
    assert n == 0 and "cached NSEC" in result.why


def test_cached_nsec_proves_nodata_for_other_types(fed):
    w = World(fed)
    w.run("pool-7.bj.cmcc.cid.", "TXT")  # NSEC at pool-7 lists its types
    result, n, _ = w.run("pool-7.bj.cmcc.cid.", "MX")
    assert n == 0 and result.rcode == "NOERROR" and result.rrset is None and result.status is Status.SECURE
    present, n, _ = w.run("pool-7.bj.cmcc.cid.", "AAAA")  # listed in the bitmap: must be asked
    assert n == 1 and present.rrset is not None


def test_nsec_from_an_unsigned_zone_is_never_used(fed):
    w = World(fed)
    first, _, _ = w.run("a.open.cid.")
    assert first.rcode == "NXDOMAIN" and first.status is Status.INSECURE
    second, n, _ = w.run("b.open.cid.")
    assert n == 1 and second.status is Status.INSECURE


def test_parent_nsec_at_a_delegation_says_nothing_below_it(fed):
    """cid.'s NSEC at open.cid. (NS, no DS) is cached from the referral; it spans the names
    below open.cid. in canonical order, but they belong to the child (RFC 6840 §4.1)."""
    w = World(fed)
    w.run("pool-1.open.cid.")
    assert w.cache.nsec_zone(N("new.open.cid.")) == N("cid.")
    result, n, _ = w.run("new.open.cid.")
    assert n >= 1 and result.status is Status.INSECURE


def test_forged_nsec_never_reaches_the_nsec_cache(fed):
    def corrupt(server, query, response, tcp):
        if server[0] == "127.0.0.4" and query.question[0].name == N("d.bj.cmcc.cid."):
            response.authority = [flip_signature_byte(r) if r.rdtype == RRSIG and r.covers == dns.rdatatype.NSEC
                                  else r for r in response.authority]
        return response
    w = World(fed, net=F.network(fed, tamper=corrupt))
    bad, _, _ = w.run("d.bj.cmcc.cid.")
    assert bad.status is Status.BOGUS
    assert w.cache.nsec_zone(N("e.bj.cmcc.cid.")) is None
    result, n, _ = w.run("e.bj.cmcc.cid.")
    assert n >= 1 and result.status is Status.SECURE


def test_cached_nsec_expires_with_its_ttl(fed):
    w = World(fed)
    w.run("d.bj.cmcc.cid.")
    w.now += 301  # negative TTL: min(SOA TTL, MINIMUM 300)
    result, n, _ = w.run("e.bj.cmcc.cid.")
    assert n >= 1 and result.rcode == "NXDOMAIN"


# --- memory bound under real traffic ------------------------------------------------------------------

def test_a_flood_of_names_stays_within_max_bytes(fed):
    w = World(fed, max_bytes=32 * 1024)
    for i in range(120):
        w.run(f"n{i}.open.cid.")  # insecure NXDOMAINs: no aggressive shortcut
        assert w.cache.bytes <= 32 * 1024
    assert w.cache.evictions > 0
    result, _, _ = w.run("pool-7.bj.cmcc.cid.")  # still resolves (re-fetching what was evicted)
    assert result.status is Status.SECURE
