"""Scale-out on one machine: N worker processes, shared nothing, on the same addresses.

Each worker is a whole resolver (its own cache, engine and listeners) bound with SO_REUSEPORT,
so the kernel spreads clients over them by their address and port — as Unbound's threads or
Knot's UDP workers share a port. Shared nothing keeps the hot path free of locks; the cost is
one cache per worker (a question is cached where its client's packets land).

The supervisor (this process) forks the workers before any event loop exists, forwards SIGTERM,
SIGINT and SIGHUP to them, starts again a worker that dies while serving (a bounded number of
times: a worker that cannot start must not be forked in a tight loop), and exits when all have
exited: 0 if every worker stopped cleanly. With a control channel it also forks a control
process (resolver/control/workers.py) that serves the public control socket for all workers;
it is started again like a worker (within the same restart bound) and gets SIGTERM/SIGINT,
not SIGHUP (the workers reload; it has nothing to reload).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

MAX_WORKERS = 64
RESTARTS = 5  # unexpected worker exits tolerated per RESTART_WINDOW before giving up
RESTART_WINDOW = 60.0
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
CONTROL = -1  # the control process's index


def _name(index: int) -> str:
    return "the control process" if index == CONTROL else f"worker {index}"


def _log(line: str) -> None:
    print(f"cid serve: {line}", file=sys.stderr, flush=True)


def _die_with(supervisor: int) -> None:
    """Linux: SIGTERM when the supervisor dies, SIGKILL included (PR_SET_PDEATHSIG), so no
    unsupervised worker keeps the addresses, nor a control process the control socket."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # not Linux: as before, a worker outlives a supervisor killed with SIGKILL
    if os.getppid() != supervisor:  # it died before the prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


stop_requested = False  # in a worker: SIGTERM/SIGINT arrived before its event loop ran


def _remember_stop(_signum, _frame) -> None:
    global stop_requested
    stop_requested = True


def _fork(index: int, serve: Callable[[int], int]) -> int:
    supervisor = os.getpid()
    # Signals are blocked across the fork: one that reaches the new process before it has
    # replaced the supervisor's handlers would run the supervisor's forwarding in the worker and
    # be lost. Blocked, it waits (pending) for the worker's own handler below.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED)
    try:
        pid = os.fork()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        raise
    if pid:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        return pid
    # The worker: until its event loop installs its own handlers, a forwarded SIGTERM/SIGINT is
    # remembered (the loop stops at once: stop_requested) rather than killing a worker that has
    # not started, which the supervisor would count as a failure; a SIGHUP then is moot (the
    # configuration was read a moment ago).
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _remember_stop)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    _die_with(supervisor)
    code = 1
    try:
        code = serve(index)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 - reported, never a traceback through the supervisor
        _log(f"{_name(index)}: {type(exc).__name__}: {exc}")
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise AssertionError("unreachable")


def supervise(count: int, serve: Callable[[int], int], control: Callable[[], int] | None = None) -> int:
    """Run ``serve(i)`` in ``count`` forked workers until a signal stops them; the exit status.
    ``control``: run in one more forked process, the control channel of them all."""
    if not 1 <= count <= MAX_WORKERS:
        raise ValueError(f"workers must be 1..{MAX_WORKERS}")
    stopping = False
    pids: dict[int, int] = {}  # pid → worker index (CONTROL: the control process)

    def run(index: int) -> int:
        return serve(index) if index != CONTROL else control()

    def forward(signum, _frame) -> None:
        nonlocal stopping
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for pid, index in list(pids.items()):
            if signum == signal.SIGHUP and index == CONTROL:
                continue
            try:
                os.kill(pid, signal.SIGTERM if signum == signal.SIGINT else signum)
            except ProcessLookupError:
                pass

    previous = {signum: signal.signal(signum, forward) for signum in _FORWARDED}
    failures: list[float] = []
    status = 0
    try:
        for index in range(count):
            pids[_fork(index, run)] = index
        _log(f"{count} workers: {', '.join(str(p) for p in pids)}")
        if control is not None:
            pid = _fork(CONTROL, run)
            pids[pid] = CONTROL
            _log(f"control process: {pid}")
        while pids:
            try:
                pid, wait_status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            index = pids.pop(pid, None)
            if index is None:
                continue
            code = os.waitstatus_to_exitcode(wait_status)
            if stopping:
                status = status or (0 if code == 0 else 1)
                continue
            now = time.monotonic()
            failures = [t for t in failures if now - t < RESTART_WINDOW] + [now]
            if len(failures) > RESTARTS:
                _log(f"{_name(index)} exited ({code}); {RESTARTS} restarts within {RESTART_WINDOW:g} s, "
                     "stopping all workers")
                stopping, status = True, 1
                forward(signal.SIGTERM, None)
                continue
            _log(f"{_name(index)} (pid {pid}) exited ({code}); starting it again")
            pids[_fork(index, run)] = index
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status
