"""The cache on its own (no engine, no sockets): TTL caps, RFC 2308 negative entries, the
memory bound with LRU eviction, serve-stale bookkeeping, prefetch window, flush and dump,
and the configuration checks. Injectable clock throughout."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from resolver.engine.cache import Cache, CacheConfig, CacheConfigError
from resolver.status import Status

N = dns.name.from_text
A, AAAA, TXT, MX = dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.TXT, dns.rdatatype.MX
T0 = 1_767_225_600.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def a(name: str, ttl: int = 300, address: str = "192.0.2.1") -> dns.rrset.RRset:
    return dns.rrset.from_text(name, ttl, "IN", "A", address)


def soa(zone: str = "cid.") -> dns.rrset.RRset:
    return dns.rrset.from_text(zone, 3600, "IN", "SOA", f"ns.{zone} hostmaster.{zone} 1 7200 900 1209600 300")


def make(**config) -> tuple[Cache, Clock]:
    clock = Clock()
    return Cache(clock, CacheConfig(**config)), clock


# --- TTL caps --------------------------------------------------------------------------------

def test_ttl_caps_apply_per_kind():
    cache, clock = make(max_ttl=1000, min_ttl=20, max_negative_ttl=50, bogus_ttl=5)
    cache.put_rrset(a("long.cid.", 999_999), None, Status.SECURE, "ok")
    cache.put_rrset(a("short.cid.", 1), None, Status.SECURE, "ok")
    cache.put_rrset(a("bad.cid.", 300), None, Status.BOGUS, "forged")
    cache.put_negative(N("gone.cid."), A, "NXDOMAIN", (soa(),), Status.SECURE, "proof", 300)
    assert cache.remaining(cache.get_rrset(N("long.cid."), A)) == 1000
    assert cache.remaining(cache.get_rrset(N("short.cid."), A)) == 20  # min_ttl raises it
    assert cache.remaining(cache.get_rrset(N("bad.cid."), A)) == 5  # RFC 4035 §4.7: briefly
    assert cache.remaining(cache.get_negative(N("gone.cid."), A)) == 50
    clock.now += 6
    assert cache.get_rrset(N("bad.cid."), A) is None
    assert cache.get_rrset(N("short.cid."), A) is not None


def test_ttl_never_exceeds_the_ttl_given_by_validation():
    cache, _ = make()
    cache.put_rrset(a("x.cid.", 300), None, Status.SECURE, "ok", ttl=40)  # e.g. RRSIG expires in 40 s
    assert cache.remaining(cache.get_rrset(N("x.cid."), A)) == 40


# --- RFC 2308 negative entries --------------------------------------------------------------------

def test_nxdomain_is_per_name_nodata_per_name_and_type():
    cache, _ = make()
    cache.put_negative(N("gone.cid."), A, "NXDOMAIN", (soa(),), Status.SECURE, "nx", 300)
    cache.put_negative(N("here.cid."), TXT, "NOERROR", (soa(),), Status.SECURE, "nodata", 300)
    # The name does not exist: whatever type is asked (RFC 2308 §5).
    for rdtype in (A, AAAA, MX, dns.rdatatype.SVCB):
        assert cache.get_negative(N("GONE.cid."), rdtype).rcode == "NXDOMAIN"
    assert cache.get_negative(N("here.cid."), TXT).rcode == "NOERROR"
    assert cache.get_negative(N("here.cid."), MX) is None
    assert cache.get_negative(N("sub.gone.cid."), A) is None  # not claimed (RFC 8020 is not assumed)


def test_a_bogus_nxdomain_only_blocks_the_type_asked():
    cache, _ = make()
    cache.put_negative(N("victim.cid."), A, "NXDOMAIN", (soa(),), Status.BOGUS, "unproven", 300)
    assert cache.get_negative(N("victim.cid."), A).status is Status.BOGUS
    assert cache.get_negative(N("victim.cid."), AAAA) is None


def test_positive_data_replaces_a_negative_entry_for_the_name():
    cache, _ = make()
    cache.put_negative(N("late.cid."), A, "NXDOMAIN", (soa(),), Status.INSECURE, "nx", 300)
    cache.put_rrset(a("late.cid."), None, Status.INSECURE, "now exists")
    assert cache.get_negative(N("late.cid."), AAAA) is None
    assert cache.get_rrset(N("late.cid."), A) is not None


# --- memory bound -----------------------------------------------------------------------------------

def test_filling_past_max_bytes_evicts_least_recently_used():
    cache, _ = make(max_bytes=64 * 1024)
    cache.put_rrset(a("keep.cid."), None, Status.SECURE, "ok")
    for i in range(2000):
        cache.put_rrset(a(f"n{i}.cid.", address=f"192.0.2.{i % 250}"), None, Status.SECURE, "ok")
        if i % 10 == 0:
            assert cache.get_rrset(N("keep.cid."), A) is not None  # recently used: kept
        assert cache.bytes <= 64 * 1024
    assert cache.evictions > 1000
    stats = cache.stats()
    assert stats["kinds"]["rrset"] == stats["entries"] == len(cache) and stats["bytes"] == cache.bytes
    assert stats["max_bytes"] == 64 * 1024 and stats["evictions"] == cache.evictions
    assert cache.get_rrset(N("n0.cid."), A) is None  # least recently used: gone
    assert cache.get_rrset(N("n1999.cid."), A) is not None
    assert len(cache) < 2000
    assert cache.bytes == sum(r.size for r in cache.dump())  # the accounting is exact


def test_bound_covers_every_kind_and_oversized_entries_are_refused():
    cache, _ = make(max_bytes=8192)
    huge = dns.rrset.from_text("big.cid.", 300, "IN", "TXT", *[f'"{i:03d}{"x" * 200}"' for i in range(40)])
    cache.put_rrset(huge, None, Status.SECURE, "ok")
    assert cache.get_rrset(N("big.cid."), TXT) is None and cache.bytes == 0
    for i in range(200):
        cache.put_delegation(N(f"z{i}.cid."), (("127.0.0.2", 53),), (N(f"ns.z{i}.cid."),), 3600)
        cache.put_trust(N(f"z{i}.cid."), Status.INSECURE, "no DS", None, 3600)
        cache.put_negative(N(f"gone{i}.cid."), A, "NXDOMAIN", (soa(),), Status.INSECURE, "nx", 300)
    assert 0 < cache.bytes <= 8192 and cache.evictions > 0


def test_entry_size_grows_with_its_records():
    cache, _ = make()
    one = a("one.cid.")
    many = dns.rrset.from_text("many.cid.", 300, "IN", "A", *[f"192.0.2.{i}" for i in range(1, 40)])
    cache.put_rrset(one, None, Status.SECURE, "ok")
    cache.put_rrset(many, None, Status.SECURE, "ok")
    sizes = {r.name: r.size for r in cache.dump()}
    assert sizes["many.cid."] > sizes["one.cid."] + 39 * 14


# --- serve-stale bookkeeping (RFC 8767) ------------------------------------------------------------

def test_expired_entries_are_kept_for_stale_use_up_to_stale_max():
    cache, clock = make(stale_max=3600)
    cache.put_rrset(a("x.cid."), None, Status.SECURE, "ok")
    cache.put_negative(N("gone.cid."), A, "NXDOMAIN", (soa(),), Status.SECURE, "nx", 300)
    clock.now += 301
    assert cache.get_rrset(N("x.cid."), A) is None  # expired: never a normal hit
    assert cache.get_stale_rrset(N("x.cid."), A).rrset[0].address == "192.0.2.1"
    assert cache.get_stale_negative(N("gone.cid."), MX).rcode == "NXDOMAIN"
    assert [r.stale for r in cache.dump()] == [True, True]
    clock.now += 3600
    assert cache.get_stale_rrset(N("x.cid."), A) is None
    assert cache.get_stale_negative(N("gone.cid."), A) is None
    assert len(cache) == 0  # dropped once past stale_max


def test_bogus_data_is_never_kept_for_stale_use():
    cache, clock = make()
    cache.put_rrset(a("bad.cid."), None, Status.BOGUS, "forged")
    assert cache.get_stale_rrset(N("bad.cid."), A) is None  # not even while fresh
    clock.now += 61
    assert cache.get_stale_rrset(N("bad.cid."), A) is None and len(cache) == 0


def test_without_serve_stale_expired_entries_go():
    cache, clock = make(serve_stale=False)
    cache.put_rrset(a("x.cid."), None, Status.SECURE, "ok")
    clock.now += 301
    assert cache.get_stale_rrset(N("x.cid."), A) is None and len(cache) == 0


# --- prefetch window ---------------------------------------------------------------------------------

def test_near_expiry_is_the_last_tenth_of_ttls_of_ten_seconds_or_more():
    cache, clock = make()
    cache.put_rrset(a("x.cid.", 300), None, Status.SECURE, "ok")
    cache.put_rrset(a("fast.cid.", 9), None, Status.SECURE, "ok")
    entry, fast = cache.get_rrset(N("x.cid."), A), cache.get_rrset(N("fast.cid."), A)
    clock.now += 269
    assert not cache.near_expiry(entry)
    clock.now += 2  # 29 s left of 300
    assert cache.near_expiry(entry)
    clock.now = T0 + 8.5
    assert not cache.near_expiry(fast)  # too short-lived to be worth a refresh
    off, _ = make(prefetch=False)
    assert not off.near_expiry(entry)


# --- flush and dump -----------------------------------------------------------------------------------

def test_flush_by_name_subtree_and_all():
    cache, _ = make()
    for name in ("cid.", "a.cid.", "x.a.cid.", "b.cid."):
        cache.put_rrset(a(name), None, Status.SECURE, "ok")
    cache.put_rrset(dns.rrset.from_text("a.cid.", 300, "IN", "TXT", '"t"'), None, Status.SECURE, "ok")
    cache.put_negative(N("gone.a.cid."), A, "NXDOMAIN", (soa(),), Status.SECURE, "nx", 300)
    cache.put_delegation(N("a.cid."), (("127.0.0.3", 53),), (N("ns.a.cid."),), 3600)
    cache.put_trust(N("a.cid."), Status.INSECURE, "no DS", None, 3600)
    assert cache.flush(name="A.cid") == 4  # A, TXT, delegation, trust at a.cid.
    assert cache.get_rrset(N("x.a.cid."), A) is not None
    assert cache.flush(subtree=N("a.cid.")) == 2  # x.a.cid. A, gone.a.cid. NXDOMAIN
    assert sorted(r.name for r in cache.dump()) == ["b.cid.", "cid."]
    assert cache.flush() == 2 and len(cache) == 0 and cache.bytes == 0


def test_dump_lists_name_type_status_ttl_and_staleness():
    cache, clock = make()
    cache.put_rrset(a("x.cid.", 100), None, Status.SECURE, "ok")
    cache.put_negative(N("gone.cid."), A, "NXDOMAIN", (soa(),), Status.INSECURE, "nx", 300)
    cache.put_negative(N("x.cid."), TXT, "NOERROR", (soa(),), Status.SECURE, "nodata", 300)
    clock.now += 150
    records = {(r.kind, r.name, r.type): r for r in cache.dump()}
    stale = records[("rrset", "x.cid.", "A")]
    assert (stale.status, stale.ttl, stale.stale) == ("secure", 0, True)
    nx = records[("negative", "gone.cid.", "ANY")]
    assert (nx.rcode, nx.status, nx.ttl, nx.stale) == ("NXDOMAIN", "insecure", 150, False)
    assert records[("negative", "x.cid.", "TXT")].rcode == "NOERROR"
    assert set(nx.to_json()) == {"kind", "name", "type", "status", "ttl", "stale", "rcode", "size"}


# --- configuration --------------------------------------------------------------------------------------

@pytest.mark.parametrize("settings, message", [
    ({"max_bytes": 10}, "max_bytes"),
    ({"max_ttl": -1}, "max_ttl"),
    ({"min_ttl": "5"}, "min_ttl"),
    ({"serve_stale": 1}, "serve_stale"),
    ({"max_bytes": True}, "max_bytes"),
    ({"min_ttl": 100, "max_ttl": 50}, "min_ttl"),
    ({"max_bytez": 1}, "unknown cache setting(s) max_bytez"),
])
def test_bad_settings_are_refused_with_the_key_named(settings, message):
    with pytest.raises(CacheConfigError) as err:
        CacheConfig.from_mapping(settings)
    assert message in str(err.value)


def test_defaults():
    config = CacheConfig()
    assert (config.max_bytes, config.max_ttl, config.min_ttl, config.max_negative_ttl, config.bogus_ttl,
            config.serve_stale, config.stale_max, config.prefetch) == (
        64 * 1024 * 1024, 86400, 0, 3600, 60, True, 86400, True)


def test_answer_cached_agrees_with_the_getters():
    """Cache.answer_cached (no Name built) says what get_rrset/get_negative and a DNAME at an
    ancestor would say, for names in any case, dotted labels and the root."""
    import random

    import dns.rrset

    from resolver.status import Status
    c = Cache(lambda: 1000.0)
    c.put_rrset(dns.rrset.from_text("a.ex.cid.", 300, "IN", "A", "192.0.2.1"), None, Status.SECURE, "ok")
    c.put_rrset(dns.rrset.from_text("c.ex.cid.", 300, "IN", "CNAME", "a.ex.cid."), None, Status.SECURE, "ok")
    c.put_rrset(dns.rrset.from_text("d.ex.cid.", 300, "IN", "DNAME", "ex.cid."), None, Status.SECURE, "ok")
    c.put_negative(dns.name.from_text("n.ex.cid."), 1, "NXDOMAIN", (), Status.SECURE, "nx", 300)
    c.put_negative(dns.name.from_text("t.ex.cid."), 16, "NOERROR", (), Status.SECURE, "nodata", 300)
    dotted_rrset = dns.rrset.from_text("placeholder.", 300, "IN", "A", "192.0.2.9")
    dotted_rrset.name = dns.name.Name([b"x.y", b"ex", b"cid", b""])
    c.put_rrset(dotted_rrset, None, Status.SECURE, "ok")
    names = ["a.ex.cid.", "A.Ex.CID.", "c.ex.cid.", "q.d.ex.cid.", "r.q.D.ex.cid.", "d.ex.cid.", "n.ex.cid.",
             "t.ex.cid.", "zz.ex.cid.", "ex.cid.", "."]
    rng = random.Random(1)
    names += ["".join(rng.choice("abcdnqtx.") for _ in range(3)).strip(".") + ".ex.cid." for _ in range(50)]
    for text in names:
        if ".." in text:
            continue
        name = dns.name.from_text(text)
        for rdtype in (1, 16, 28, dns.rdatatype.DNAME, dns.rdatatype.CNAME):
            expected = (c.get_rrset(name, rdtype) is not None or c.get_rrset(name, dns.rdatatype.CNAME) is not None
                        or c.get_negative(name, rdtype) is not None)
            if rdtype != dns.rdatatype.DNAME:
                up = name
                while up != dns.name.root and not expected:
                    up = up.parent()
                    expected = c.get_rrset(up, dns.rdatatype.DNAME) is not None
            assert c.answer_cached(name.labels[:-1], rdtype) is expected, (text, rdtype)
    dotted = (b"x.y", b"ex", b"cid")
    assert c.answer_cached(dotted, 1) and not c.answer_cached((b"x", b"y", b"ex", b"cid"), 1)


def test_denial_version_moves_with_what_denials_rest_on():
    import dns.rrset

    from resolver.status import Status
    c = Cache(lambda: 1000.0)
    v = c.denial_version
    c.put_rrset(dns.rrset.from_text("a.ex.cid.", 300, "IN", "A", "192.0.2.1"), None, Status.SECURE, "ok")
    assert c.denial_version == v  # ordinary data: no change
    c.put_rrset(dns.rrset.from_text("ex.cid.", 300, "IN", "SOA", "ns h 1 2 3 4 300"), None, Status.SECURE, "ok")
    assert c.denial_version > v
    v = c.denial_version
    c.put_trust(dns.name.from_text("ex.cid."), Status.SECURE, "keys", None, 300)
    assert c.denial_version > v
    v = c.denial_version
    c.flush(name="ex.cid.")
    assert c.denial_version > v
    v = c.denial_version
    c.flush()
    assert c.denial_version > v
