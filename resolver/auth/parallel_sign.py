"""Signing many messages at once, across CPU cores for large zones.

Signing a zone is one private-key operation per RRSIG; that is the part of signing that parallel
processes speed up (Python threads would not: the GIL is held between calls). The messages are
computed once in the parent; forked workers inherit them (nothing is pickled on the way in) and
return signatures for a range of indexes, so the result is in the same order as a single-process
run. Ed25519 (RFC 8032) and RSA PKCS#1 v1.5 signatures are deterministic, so the output is
byte-identical to signing in one process; ECDSA signatures are randomized either way.

Workers are forked (POSIX); where fork is unavailable signing stays in one process.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

PARALLEL_THRESHOLD = 5000  # messages; below this, starting processes costs more than it saves
CHUNKS_PER_WORKER = 4  # ranges per worker, so a worker slowed by other load does not hold up the rest

# Set in the parent just before forking; read by the workers (copy-on-write, never pickled).
_SIGNERS: list[Any] = []
_MESSAGES: list[tuple[int, bytes]] = []


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def sign_all(signers: list[Any], messages: list[tuple[int, bytes]], workers: int | None = None) -> list[bytes]:
    """``signers[i].sign(data)`` for each ``(i, data)`` in ``messages``, in order.

    ``signers`` are dnspython private-key objects (``dns.dnssecalgs``); ``workers`` defaults to one
    per available CPU when there are at least PARALLEL_THRESHOLD messages, else 1.
    """
    if workers is None:
        workers = default_workers() if len(messages) >= PARALLEL_THRESHOLD else 1
    workers = max(1, min(workers, len(messages) // 64 or 1))
    if workers == 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [signers[i].sign(data) for i, data in messages]
    global _SIGNERS, _MESSAGES
    _SIGNERS, _MESSAGES = signers, messages
    try:
        pieces = workers * CHUNKS_PER_WORKER
        step = -(-len(messages) // pieces)
        ranges = [(lo, min(lo + step, len(messages))) for lo in range(0, len(messages), step)]
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_sign_range, ranges, chunksize=1)
    finally:
        _SIGNERS, _MESSAGES = [], []
    return [signature for part in parts for signature in part]


def _sign_range(bounds: tuple[int, int]) -> list[bytes]:
    signers, messages = _SIGNERS, _MESSAGES
    return [signers[i].sign(data) for i, data in messages[bounds[0]:bounds[1]]]
