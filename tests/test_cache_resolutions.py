"""Memoised resolutions in their compact form: a Resolution put in the cache comes back from its
packed bytes equal in every field (also those left out of ==), whatever its shape; values that
cannot be packed exactly are kept as given; a hit builds the value and keeps it in the hot
layer, which stays within HOT_MAX and max_bytes/8 and hands shed entries back to their packed
form; refreshes (TTL counted down), replacement, eviction and flushes keep the byte accounting
exact. No sockets: the cache is filled directly (tests/test_cache_accounting.py resolves for real)."""

from __future__ import annotations

import enum
import random
from dataclasses import fields, replace

import dns.name
import pytest

from resolver.engine.cache import HOT_MAX, RESOLUTION, Cache, CacheConfig
from resolver.resolution import Endpoint, Resolution, pack, unpack
from resolver.status import Status

from test_cache import Clock  # noqa: E402  (the injectable clock of the cache tests)

N = dns.name.from_text


def resolution(i: int = 7, **changes) -> Resolution:
    name = f"pool-{i}.bj.cmcc.cid."
    base = Resolution(f"cid:pool-{i}.bj.cmcc.cid", name, "NOERROR", Status.SECURE,
                      f"all 5 answers validated: SVCB, A at {name}, AAAA at {name}, CAPS, LOAD", 15,
                      (Endpoint(name, 1, 8443, ("h2",), ("192.0.2.8", "2001:db8::8")),),
                      {"accel_count": 8, "accel_kind": "gpu", "region": "bj"}, {"accel_free": i % 8, "util": 0.5},
                      (), 15)
    return replace(base, **changes)


def every_field(res: Resolution) -> tuple:
    return tuple(getattr(res, f.name) for f in fields(res))


def put(cache: Cache, res: Resolution, key: str | None = None, ttl: int | None = None, size: int = 900) -> str:
    key = res.identifier if key is None else key
    cache.put_resolution(key, N(res.name), res, res.status, res.ttl if ttl is None else ttl, size)
    return key


SHAPES = [
    resolution(),
    resolution(load=None, load_ttl=None, capabilities={}),  # no LOAD, no CAPS
    resolution(rcode="NXDOMAIN", status=Status.INSECURE, why="SVCB: no such name (insecure)", endpoints=()),
    resolution(endpoints=(Endpoint("backup.bj.cmcc.cid.", 2, None, (), ()),
                          Endpoint("pool-7.bj.cmcc.cid.", 1, 443, ("h2", "h3"), ("192.0.2.9",))),
               stale=True, unvalidated=True, load_stale=True,
               why="all 5 answers validated [stale: LOAD served from expired cache, every authority failed]"),
    resolution(name="Pool-7.BJ.cmcc.cid."),  # a name spelled otherwise than its key
    resolution(identifier="cid:POOL-7.bj.cmcc.cid"),  # asked under another spelling (see put's key)
    resolution(capabilities={"nested": {"list": [1, -2, 3.25, True, None, "x"], "deep": {"a": {"b": []}}},
                             "big": 2 ** 63 - 1, "neg": -(2 ** 63), "unicode": "北京 ✓", "empty": ""}),
    resolution(why="no name in this reason at all", ttl=0),
]


@pytest.mark.parametrize("res", SHAPES, ids=range(len(SHAPES)))
def test_a_packed_resolution_comes_back_equal_in_every_field(res: Resolution):
    cache = Cache(Clock())
    key = put(cache, res, key="cid:pool-7.bj.cmcc.cid", ttl=60)
    (entry,) = cache.entries()
    assert entry.value is None and entry._packed is not None  # kept packed until hit
    assert entry.size < 900  # what it keeps, not what it costs built
    got = cache.get_resolution(key).value
    assert every_field(got) == every_field(res)
    assert type(got.endpoints) is tuple and all(type(e.alpn) is tuple and type(e.addresses) is tuple
                                                for e in got.endpoints)
    assert cache.get_resolution(key).value is got  # hot now: the same object


def test_random_maps_round_trip_exactly():
    rng = random.Random(11)

    def value(depth: int):
        kind = rng.randrange(8 if depth < 3 else 5)
        return [lambda: rng.randint(-2 ** 63, 2 ** 64 - 1), lambda: rng.random() * 10 ** rng.randint(-5, 5),
                lambda: rng.choice([True, False, None]),
                lambda: "".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(0, 12))),
                lambda: rng.randint(-5, 300),
                lambda: [value(depth + 1) for _ in range(rng.randint(0, 4))],
                lambda: {f"k{j}": value(depth + 1) for j in range(rng.randint(0, 4))},
                lambda: {}][kind]()
    for i in range(300):
        caps = {f"key_{j}": value(0) for j in range(rng.randint(0, 6))}
        load = {f"l{j}": value(1) for j in range(rng.randint(0, 3))} if i % 3 else None
        res = resolution(i, capabilities=caps, load=load, ttl=rng.randint(0, 86400))
        data = pack(res, res.identifier, res.name)
        assert data is not None
        back = unpack(data, res.identifier, res.name, res.why, res.ttl)
        assert every_field(back) == every_field(res)


class Kind(enum.IntEnum):
    GPU = 1


@pytest.mark.parametrize("res", [
    resolution(capabilities={"shape": (1, 2)}),  # a tuple would come back a list
    resolution(capabilities={"kind": Kind.GPU}),  # an IntEnum would come back an int
    resolution(capabilities={"bad": "\ud800"}),  # a lone surrogate has no UTF-8
    resolution(capabilities={"huge": 2 ** 64}),  # beyond msgpack's integers
    resolution(trace=("an event",)),  # the trace is only on the first answer
], ids=["tuple", "intenum", "surrogate", "bigint", "trace"])
def test_what_cannot_be_packed_exactly_is_kept_as_given(res: Resolution):
    cache = Cache(Clock())
    key = put(cache, res, size=500)
    (entry,) = cache.entries()
    assert entry.value is res and entry.size >= 500
    assert cache.get_resolution(key).value is res
    assert cache.stats()["hot_resolutions"] == 0 and cache.hot_bytes == 0
    other = object()  # any value at all (the cache does not care what it memoises)
    cache.put_resolution("k", N("x.cid."), other, Status.SECURE, 60, 10)
    assert cache.get_resolution("k").value is other


def hot_sizes(cache: Cache) -> int:
    return sum(e._hot_size for e in cache._hot_res.values()) + sum(rec[3] for rec in cache._hot.values())


def test_hot_resolutions_stay_within_their_bounds_and_go_back_to_packed():
    clock = Clock()
    cache = Cache(clock, CacheConfig(max_bytes=4 * 1024 * 1024))
    keys = [put(cache, resolution(i)) for i in range(HOT_MAX + 600)]
    for key in keys:
        assert cache.get_resolution(key).value.identifier == key
        assert len(cache._hot_res) <= HOT_MAX and cache.hot_bytes <= cache.config.max_bytes // 8
        assert cache.bytes + cache.hot_bytes <= cache.config.max_bytes
    assert cache.hot_bytes == hot_sizes(cache)
    kept = cache.entries()
    assert kept and all(e.value is None for e in kept if e not in cache._hot_res.values())  # shed: packed again
    assert cache.bytes == sum(rec.size for rec in cache.dump())
    shed = next(i for i, key in enumerate(keys) if cache._lru[(RESOLUTION, key, 0)].value is None)
    assert every_field(cache.get_resolution(keys[shed]).value) == every_field(resolution(shed))


def test_a_built_resolution_too_big_for_the_hot_budget_is_handed_out_unkept():
    cache = Cache(Clock(), CacheConfig(max_bytes=64 * 1024))
    key = put(cache, resolution(), size=9000)  # built cost > max_bytes/8
    got = cache.get_resolution(key)
    assert every_field(got.value) == every_field(resolution())
    assert cache.entries()[0].value is None and cache.hot_bytes == 0


def test_refreshed_ttl_survives_shedding_and_replacement_is_exact():
    clock = Clock()
    cache = Cache(clock, CacheConfig(max_bytes=1024 * 1024))
    key = put(cache, resolution(ttl=300), ttl=300)
    entry = cache.get_resolution(key)
    clock.now += 100.5
    counted = replace(entry.value, ttl=int(entry.expires - clock.now))
    cache.refresh_resolution(key, entry, counted)
    assert cache.get_resolution(key).value is counted and entry.stored == clock.now
    cache._shed_hot(lookups_first=False)  # back to its packed form
    assert entry.value is None and cache.hot_bytes == 0
    back = cache.get_resolution(key).value
    assert back.ttl == 199 and every_field(back) == every_field(counted)
    # A refresh that changes more than the TTL repacks (and the accounting follows).
    changed = replace(back, capabilities={"accel_kind": "tpu", "extra": "x" * 50}, why="another reason")
    cache.refresh_resolution(key, entry, changed)
    cache._shed_hot(lookups_first=False)
    assert every_field(cache.get_resolution(key).value) == every_field(changed)
    assert cache.bytes == sum(rec.size for rec in cache.dump())
    # No longer packable: kept as given.
    odd = replace(changed, capabilities={"t": (1,)})
    cache.refresh_resolution(key, cache.get_resolution(key), odd)
    assert cache.get_resolution(key).value is odd and cache.hot_bytes == hot_sizes(cache)
    assert cache.bytes == sum(rec.size for rec in cache.dump())


def test_eviction_replacement_and_flush_keep_hot_bytes_exact():
    clock = Clock()
    cache = Cache(clock, CacheConfig(max_bytes=256 * 1024))
    for i in range(2000):
        key = put(cache, resolution(i))
        cache.get_resolution(key)
        if i % 7 == 0:
            put(cache, resolution(i, ttl=30))  # replaced while hot
        assert cache.hot_bytes == hot_sizes(cache) and cache.bytes + cache.hot_bytes <= 256 * 1024
    assert cache.evictions > 0
    assert cache.bytes == sum(rec.size for rec in cache.dump())
    hot = len(cache._hot_res)
    assert hot > 0
    victim = next(iter(cache._hot_res.values()))
    assert cache.flush(name=victim.name) == 1
    assert len(cache._hot_res) == hot - 1 and cache.hot_bytes == hot_sizes(cache)
    assert cache.flush(subtree="cmcc.cid.") > 0 and cache.hot_bytes == 0 == len(cache._hot_res)
    key = put(cache, resolution(1))
    cache.get_resolution(key)
    clock.now += 16
    assert cache.get_resolution(key) is None and cache.hot_bytes == 0  # expired: dropped with its built value
    put(cache, resolution(2))
    cache.get_resolution("cid:pool-2.bj.cmcc.cid")
    cache.flush()
    assert cache.hot_bytes == 0 == len(cache._hot_res) == cache.bytes
