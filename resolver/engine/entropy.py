"""The resolver's default random source: the kernel's CSPRNG, read in batches.

Query IDs, 0x20 case and source ports are what a blind spoofer must guess (RFC 5452 §9.2), so
they come from ``os.urandom``, as ``random.SystemRandom`` draws them — but SystemRandom makes
one getrandom(2) call per draw, several per query (an ID, then a draw per label for 0x20
case). ``BatchedSystemRandom`` reads 4 KiB at a time and hands the bytes out in order, each
byte used once. The buffer is dropped in a forked child (``os.register_at_fork``): a parent
and its workers never hand out the same bytes.
"""

from __future__ import annotations

import os
import random
import weakref

_BATCH = 4096
_live: weakref.WeakSet[BatchedSystemRandom] = weakref.WeakSet()


class BatchedSystemRandom(random.SystemRandom):
    """``random.SystemRandom`` with its entropy read ``_BATCH`` bytes at a time. ``seed`` and
    state are refused as SystemRandom refuses them (there is no state to replay)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._at = 0
        super().__init__()
        _live.add(self)

    def _take(self, n: int) -> bytes:
        at = self._at
        if at + n > len(self._buffer):
            if n > _BATCH:
                return os.urandom(n)
            self._buffer, at = os.urandom(_BATCH), 0
        self._at = at + n
        return self._buffer[at:at + n]

    def _forget(self) -> None:
        self._buffer, self._at = b"", 0

    def getrandbits(self, k: int) -> int:
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        count = (k + 7) // 8
        return int.from_bytes(self._take(count), "big") >> (count * 8 - k)

    def random(self) -> float:
        # SystemRandom.random: 56 random bits, the top 53 kept (RECIP_BPF = 2 ** -53)
        return (int.from_bytes(self._take(7), "big") >> 3) * 2.0 ** -53

    def randbytes(self, n: int) -> bytes:
        return self._take(n)


def _after_fork_in_child() -> None:
    for source in list(_live):
        source._forget()


os.register_at_fork(after_in_child=_after_fork_in_child)


SHARED = BatchedSystemRandom()  # the default of every engine: one buffer per process
