"""Reading a large master file in forked workers, one byte range each, into one zone.

A 100 000-name signed zone is some 900 000 lines; reading them is nearly all the time
``cid serve auth`` takes to start. ``read`` splits a large file (``PARALLEL_MIN_BYTES`` and up)
into ranges that start at an owner's first line (``split_points``: after the last line of the
owner before, so a name's records rarely straddle two ranges), and reads them at once:

1. this process reads the head of the file (up to ``HEAD_BYTES`` or so): ``$ORIGIN``, ``$TTL``,
   the SOA (whose MINIMUM may be the default TTL) are usually all there;
2. one forked worker per later range reads it with that state (origin and default TTL; the
   last owner and TTL unknown, ``masterfile.State.for_range``), checks its records
   (``zoneload.Part``) and sends back what it built — the wire blobs by name, the index kinds,
   the check results — as one pickle through a pipe;
3. meanwhile this process reads the first range, then takes each worker's part in file order
   (``ZoneBuilder.merge``: a name met in two ranges is merged as the reader merges it).

A worker's part is used only when reading the file straight through would have built the
same: the range before it ended where it began (no record open across the boundary, which
would have been read on: ``Source.overran``) and left the state it assumed (no ``$ORIGIN``,
``$TTL`` or defining SOA after the head), and the worker needed nothing from before its
range (``masterfile.NeedsContext``: a record without owner or TTL) and found no error. If
not — any error included, so that the one reported is the first in the file with its line —
this process reads that range and the rest of the file itself. So the zone, the warnings and
the errors are those of the one-process read (tests compare them); only the time differs.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable
from pathlib import Path

import dns.name

from . import masterfile

PARALLEL_MIN_BYTES = 2 << 20  # below this, forking costs more than it saves
HEAD_BYTES = 256 << 10
_WINDOW = 1 << 16
_OWNER_START = frozenset(b" \t\r\n;$()")


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def read(path: str, origin: dns.name.Name, new_part: Callable, *, jobs: int | None = None,
         progress: Callable[[int, int], None] | None = None,
         min_bytes: int | None = None, head_bytes: int | None = None):
    """The part (``zoneload.Part``) holding every record of ``path``, and the lines read.
    Raises what ``masterfile.Reader`` raises, for the first error in the file. ``min_bytes``
    and ``head_bytes`` default to the module's values as they are at the call."""
    min_bytes = PARALLEL_MIN_BYTES if min_bytes is None else min_bytes
    head_bytes = HEAD_BYTES if head_bytes is None else head_bytes
    part = new_part()
    report = None
    if progress is not None:
        def report(lines: int) -> None:
            progress(lines, len(part.builder.blobs))
    reader = masterfile.Reader(origin, part.sink, progress=report)
    jobs = default_jobs() if jobs is None else max(1, jobs)
    size = Path(path).stat().st_size
    if jobs < 2 or size < min_bytes or not hasattr(os, "fork"):
        reader.read(path)
        return part, reader.lines_read
    with open(path, "rb") as handle:
        cuts = split_points(handle, size, jobs, head_bytes)
        if len(cuts) < 2:
            reader.read(path)
            return part, reader.lines_read
        head, *starts = cuts
        state = masterfile.State(origin)
        source = masterfile.Source(handle, path, 0, head, 0)
        reader.read_source(source, state)
        if source.overran:
            return part, reader.lines_read  # a record open at the cut: read through to the end
        assumed = state.context()
        ends = [*starts[1:], None]
        workers = [_fork(path, origin, new_part, state, start, end) for start, end in zip(starts, ends)]
        try:
            source = masterfile.Source(handle, path, head, starts[0], source.number)
            reader.read_source(source, state)
            line = source.number
            whole = not source.overran and state.context() == assumed
            done = source.overran  # read through to the end of the file
            for start, worker in zip(starts, workers):
                if done:
                    _discard(worker)
                    continue
                result = _collect(worker)
                if whole and result is not None and part.can_absorb(result["part"]):
                    part.absorb(result["part"])
                    reader.lines_read += result["lines"]
                    line = result["number"]
                    origin_now, state.default_ttl, state.default_from_soa = result["context"]
                    if origin_now != state.origin:
                        state.set_origin(origin_now)
                    state.last_ttl, state.last_key, state.last_wire = result["last"]
                    whole = not result["overran"] and result["context"] == assumed
                    done = result["overran"]
                    if report is not None:
                        report(reader.lines_read)
                    continue
                # this range and all after it: read here, straight on
                source = masterfile.Source(handle, path, start, None, line)
                reader.read_source(source, state)
                done = True
        finally:
            for worker in workers:
                _discard(worker)
    return part, reader.lines_read


def split_points(handle, size: int, jobs: int, head_bytes: int | None = None) -> list[int]:
    """Offsets where the head ends and each later range starts (``jobs`` ranges of about equal
    size after the head), each the first line of an owner following another owner's lines."""
    out: list[int] = []
    head_bytes = HEAD_BYTES if head_bytes is None else head_bytes
    head = _boundary(handle, min(head_bytes, size // (4 * jobs)), size)
    if head is None:
        return []
    out.append(head)
    for i in range(1, jobs):
        at = _boundary(handle, max(head, size * i // jobs), size)
        if at is None:
            break
        if at > out[-1]:
            out.append(at)
    return out


def _boundary(handle, offset: int, size: int) -> int | None:
    """The first line at or after the line following ``offset`` that starts with an owner
    other than the owner of the line starting with an owner before it; None if there is none
    within a megabyte."""
    window = _WINDOW
    while window <= 16 * _WINDOW:
        handle.seek(offset)
        data = handle.read(window)
        if not data:
            return None
        pos = data.find(b"\n")
        owner = None
        while pos >= 0 and pos + 1 < len(data):
            start = pos + 1
            end = data.find(b"\n", start)
            if end < 0:
                break  # the line runs past the window
            if data[start] not in _OWNER_START:
                token = data[start:end].split(None, 1)[0]
                if owner is None:
                    owner = token
                elif token.lower() != owner.lower():
                    at = offset + start
                    return at if at < size else None
            pos = end
        if offset + len(data) >= size:
            return None
        window *= 4
    return None


# --- workers ---------------------------------------------------------------------------------


class _Worker:
    __slots__ = ("pid", "fd")

    def __init__(self, pid: int, fd: int):
        self.pid, self.fd = pid, fd


def _fork(path: str, origin: dns.name.Name, new_part: Callable, state: "masterfile.State",
          start: int, end: int | None) -> _Worker:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_fd)
        return _Worker(pid, read_fd)
    # the worker: read its range, send what it built, exit without running anything else
    code = 0
    try:
        os.close(read_fd)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            result = _read_range(path, origin, new_part, state, start, end)
        except BaseException:  # noqa: BLE001 - any failure: the parent reads the range itself
            result = None
        data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(write_fd, "wb") as out:
            out.write(data)
    except BaseException:  # noqa: BLE001
        code = 1
    finally:
        os._exit(code)


def _read_range(path: str, origin: dns.name.Name, new_part: Callable, state: "masterfile.State",
                start: int, end: int | None) -> dict:
    part = new_part()
    reader = masterfile.Reader(origin, part.sink)
    mine = state.for_range()
    with open(path, "rb") as handle:
        first_line = _lines_before(handle, start)
        source = masterfile.Source(handle, path, start, end, first_line)
        reader.read_source(source, mine)
    return {"part": part.export(), "lines": reader.lines_read, "number": source.number,
            "overran": source.overran, "context": mine.context(),
            "last": (mine.last_ttl, mine.last_key, mine.last_wire)}


def _lines_before(handle, offset: int) -> int:
    handle.seek(0)
    count = 0
    left = offset
    while left > 0:
        data = handle.read(min(left, 8 << 20))
        if not data:
            break
        count += data.count(b"\n")
        left -= len(data)
    return count


def _collect(worker: _Worker) -> dict | None:
    """The worker's result (None if it failed), once it has sent it and exited."""
    chunks = []
    with os.fdopen(worker.fd, "rb") as pipe:
        worker.fd = -1
        while True:
            chunk = pipe.read(8 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(worker.pid, 0)
    worker.pid = 0
    if status != 0 or not chunks:
        return None
    try:
        return pickle.loads(b"".join(chunks))
    except Exception:  # noqa: BLE001 - a truncated or garbled result: read the range here
        return None


def _discard(worker: _Worker) -> None:
    """Stop a worker whose result is not needed (or no longer: this process read its range)."""
    if worker.fd >= 0:
        os.close(worker.fd)
        worker.fd = -1
    if worker.pid:
        try:
            os.kill(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(worker.pid, 0)
        worker.pid = 0
