"""Warm restart (issue 11): the cache saved to a snapshot and loaded into a fresh Resolver answers
what the old one had cached without a query upstream, keeps every validation verdict and expiry,
and a snapshot that is damaged, forged-looking or expired gives a cold start, never a partial or
poisoned cache. Servers: the project's authoritative code on 127.0.0.2-7 counting queries
(test_cache_resolver's harness)."""

from __future__ import annotations

import os
import time

import msgpack
import pytest

from resolver import Status
from resolver.engine import snapshot
from resolver.engine.cache import Cache
from support import federation as F
from test_cache_resolver import Clock, counting, resolver

ID = "cid:pool-7.bj.cmcc.cid"


@pytest.fixture(scope="module")
def fed():
    return F.build(now=time.time())


async def _warm(fed, servers, path, clock=None):
    """Resolve ID and a name that does not exist with one Resolver; save its cache to ``path``."""
    async with resolver(fed, servers, clock) as r:
        first = await r.resolve(ID)
        missing = await r.lookup("nope-1.bj.cmcc.cid.", "A")
        saved = snapshot.save(r.cache, path)
    assert first.status is Status.SECURE and missing.rcode == "NXDOMAIN"
    return first, saved


async def test_a_restored_cache_answers_without_upstream_queries(fed, tmp_path):
    path = tmp_path / "cache.snap"
    async with counting(fed) as servers:
        first, saved = await _warm(fed, servers, path)
        assert saved > 10 and os.stat(path).st_mode & 0o777 == 0o600
        servers.queries.clear()
        async with resolver(fed, servers) as r:
            restored = snapshot.load(r.cache, path)
            again = await r.resolve(ID)
            assert servers.queries == []  # every RRset, delegation and key came from the snapshot
            assert again.endpoints == first.endpoints and again.capabilities == first.capabilities
            assert again.status is Status.SECURE and again.ttl <= first.ttl
            # A name never asked before: one question to the leaf zone's server, no DNSKEY/DS walk.
            other = await r.lookup("c1.bj.cmcc.cid.", "A")
            assert other.status is Status.SECURE
            assert {t for _, _, t in servers.queries} <= {"A"} and len(servers.queries) <= 1
            servers.queries.clear()
            # The NSEC proof of the restored NXDOMAIN denies another missing name (RFC 8198).
            denied = await r.lookup("nope-2.bj.cmcc.cid.", "A")
    assert restored.entries == saved and restored.expired == 0
    assert denied.rcode == "NXDOMAIN" and denied.status is Status.SECURE and servers.queries == []


async def test_entries_expired_by_load_time_are_not_restored(fed, tmp_path):
    path = tmp_path / "cache.snap"
    clock = Clock()
    async with counting(fed) as servers:
        await _warm(fed, servers, path, clock)
        later = Cache(lambda: clock.now + 8 * 86400)  # past every TTL of the federation
        restored = snapshot.load(later, path)
    assert restored.entries == 0 and restored.expired > 10 and len(later) == 0


def _snapshot_bytes(payload: bytes) -> bytes:
    import hashlib
    return snapshot.MAGIC + hashlib.sha256(payload).digest() + payload


@pytest.fixture
def good(fed, tmp_path):
    """A real snapshot file of a warmed cache."""
    import asyncio

    path = tmp_path / "cache.snap"

    async def make():
        async with counting(fed) as servers:
            await _warm(fed, servers, path)
    asyncio.run(make())
    return path


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[: len(b) // 2], "digest mismatch"),                       # torn write
    (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "digest mismatch"),            # one bit flipped
    (lambda b: b"cid-cache-snapshot\x00\x02" + b[len(snapshot.MAGIC):], "another version"),
    (lambda b: b"", "not a cid cache snapshot"),
    (lambda b: _snapshot_bytes(b"\xc1garbage"), "damaged"),                 # not msgpack
    (lambda b: _snapshot_bytes(msgpack.packb([1, 2])), "no entry list"),
    (lambda b: _snapshot_bytes(msgpack.packb({"entries": [["r", "secure"]]})), "damaged entry"),
    (lambda b: _snapshot_bytes(msgpack.packb({"entries": [["x", 1, 2]]})), "unknown entry kind"),
    (lambda b: _snapshot_bytes(msgpack.packb({"entries": [["r", "trusted", "why", 9e12, b"\x01"]]})),
     "damaged entry"),                                                       # a status that is not one
])
def test_a_damaged_snapshot_is_refused_and_leaves_the_cache_empty(good, damage, message):
    data = damage(good.read_bytes())
    # A damaged row after good ones: the good ones must not stay behind.
    if message in ("damaged entry", "unknown entry kind"):
        body = msgpack.unpackb(good.read_bytes()[len(snapshot.MAGIC) + 32:], raw=False)
        bad = msgpack.unpackb(data[len(snapshot.MAGIC) + 32:], raw=False)["entries"]
        data = _snapshot_bytes(msgpack.packb({"saved": 0, "entries": body["entries"] + bad}, use_bin_type=True))
    good.write_bytes(data)
    cache = Cache()
    with pytest.raises(snapshot.SnapshotError, match=message) as err:
        snapshot.load(cache, good)
    assert str(err.value).startswith(str(good)) and "\n" not in str(err.value)
    assert len(cache) == 0


def test_a_snapshot_others_could_have_written_is_refused(good, tmp_path):
    os.chmod(good, 0o620)
    with pytest.raises(snapshot.SnapshotError, match="writable by group or others"):
        snapshot.load(Cache(), good)
    os.chmod(good, 0o600)
    os.chown(good, 65534, 65534)  # nobody's file (the tests run as root)
    with pytest.raises(snapshot.SnapshotError, match="owned by uid 65534"):
        snapshot.load(Cache(), good)
    os.chown(good, os.geteuid(), os.getegid())
    link = tmp_path / "link.snap"
    link.symlink_to(good)
    with pytest.raises(snapshot.SnapshotError, match="cannot read"):
        snapshot.load(Cache(), link)  # a symlink planted where the snapshot goes is not followed
    with pytest.raises(FileNotFoundError):
        snapshot.load(Cache(), tmp_path / "none.snap")
    assert snapshot.load(Cache(), good).entries > 10  # the file itself is fine
