"""The default random source (resolver/engine/entropy.py): os.urandom read in batches. It
must hand out every value SystemRandom would (range, distribution), never the same bytes
twice — across a batch boundary or in a forked child."""

from __future__ import annotations

import os
import random

import pytest

from resolver.engine.entropy import _BATCH, SHARED, BatchedSystemRandom


def test_is_a_system_random_with_no_state():
    rng = BatchedSystemRandom()
    assert isinstance(rng, random.SystemRandom)
    with pytest.raises(NotImplementedError):
        rng.getstate()
    assert rng.getrandbits(0) == 0
    with pytest.raises(ValueError):
        rng.getrandbits(-1)


def test_values_in_range_and_spread():
    rng = BatchedSystemRandom()
    ids = [rng.getrandbits(16) for _ in range(20_000)]  # spans several 4 KiB batches
    assert all(0 <= i < 65536 for i in ids) and len(set(ids)) > 14_000
    bits = [rng.getrandbits(13) for _ in range(5000)]
    assert max(bits) < 8192 and max(bits) > 8000 and min(bits) < 100
    floats = [rng.random() for _ in range(5000)]
    assert all(0.0 <= f < 1.0 for f in floats) and 0.45 < sum(floats) / len(floats) < 0.55
    ones = sum(bin(rng.getrandbits(64)).count("1") for _ in range(2000))
    assert 0.48 < ones / (64 * 2000) < 0.52
    assert len(rng.randbytes(_BATCH * 2 + 3)) == _BATCH * 2 + 3  # more than a batch: read directly
    assert rng.randrange(10) in range(10) and rng.choice("abc") in "abc"


def test_bytes_are_never_handed_out_twice():
    rng = BatchedSystemRandom()
    chunks = [rng.randbytes(5) for _ in range(3 * _BATCH // 5)]
    assert len(set(chunks)) == len(chunks)


def test_forked_child_does_not_repeat_the_parent():
    SHARED.getrandbits(8)  # a batch in hand before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: what it draws next
        os.close(read)
        os.write(write, SHARED.randbytes(32))
        os._exit(0)
    os.close(write)
    child = os.read(read, 64)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 32 and child != SHARED.randbytes(32)
