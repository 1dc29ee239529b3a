"""Signing across CPU cores: forked workers, each given a range of the work, results in order.

Signing a zone is one private-key operation per RRSIG, and writing it is independent per name;
parallel processes speed both up (Python threads would not: the GIL is held between calls).
Workers are forked, so they inherit what the parent computed (the zone, the messages, the keys)
and nothing is pickled on the way in; each returns the result for its range of indexes, and the
results are joined in range order, so the output is in the same order as a single-process run.
Ed25519 (RFC 8032) and RSA PKCS#1 v1.5 signatures are deterministic, so the output is then
byte-identical to signing in one process; ECDSA signatures are randomized either way.

Where fork is unavailable (not POSIX) everything runs in the calling process.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

PARALLEL_THRESHOLD = 5000  # messages; below this, starting processes costs more than it saves
CHUNKS_PER_WORKER = 4  # ranges per worker, so a worker slowed by other load does not hold up the rest

# Set in the parent just before forking; read by the workers (copy-on-write, never pickled).
_TASK: Callable[[int, int], Any] | None = None


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic garbage collector paused: a large zone is millions of small acyclic objects, and
    each collection walks all of them (a third of the time of reading and laying out a zone)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def map_ranges(task: Callable[[int, int], T], count: int, workers: int, *,
               progress: Callable[[int], Any] | None = None, pieces: int | None = None) -> list[T]:
    """``[task(lo, hi) for each range]`` over 0..count split into ranges, run by ``workers``
    forked processes (in this process when workers is 1 or fork is unavailable), in order.

    ``task`` runs in a child that inherited the parent's memory, so it may use any object the
    parent holds (a zone, keys); only its result is pickled back. ``progress(hi - lo)`` is called
    in this process as each range is done (in one process too, where the work is then cut into
    the same ranges). ``pieces``: how many ranges (default CHUNKS_PER_WORKER per worker).
    """
    if count == 0:
        return []
    forking = workers > 1 and "fork" in multiprocessing.get_all_start_methods()
    if not forking and progress is None:
        return [task(0, count)]
    pieces = min(count, pieces or max(workers, 1) * CHUNKS_PER_WORKER)
    step = -(-count // pieces)
    ranges = [(lo, min(lo + step, count)) for lo in range(0, count, step)]
    if not forking:
        results = []
        for lo, hi in ranges:
            results.append(task(lo, hi))
            if progress is not None:
                progress(hi - lo)
        return results
    global _TASK
    _TASK = task
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            if progress is None:
                return pool.map(_run, ranges, chunksize=1)
            results = []
            for (lo, hi), result in zip(ranges, pool.imap(_run, ranges, chunksize=1)):
                results.append(result)
                progress(hi - lo)
            return results
    finally:
        _TASK = None


def _run(bounds: tuple[int, int]) -> Any:
    assert _TASK is not None
    return _TASK(*bounds)


def sign_all(signers: list[Any], messages: list[tuple[int, bytes]], workers: int | None = None) -> list[bytes]:
    """``signers[i].sign(data)`` for each ``(i, data)`` in ``messages``, in order.

    ``signers`` are dnspython private-key objects (``dns.dnssecalgs``); ``workers`` defaults to one
    per available CPU when there are at least PARALLEL_THRESHOLD messages, else 1.
    """
    workers = choose_workers(workers, len(messages))

    def task(lo: int, hi: int) -> list[bytes]:
        return [signers[i].sign(data) for i, data in messages[lo:hi]]

    return [signature for part in map_ranges(task, len(messages), workers) for signature in part]


def choose_workers(workers: int | None, signatures: int) -> int:
    """The worker count to use: as asked (at least 64 signatures each), else one per CPU for
    PARALLEL_THRESHOLD signatures or more."""
    if workers is None:
        workers = default_workers() if signatures >= PARALLEL_THRESHOLD else 1
    return max(1, min(workers, signatures // 64 or 1))
