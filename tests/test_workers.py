"""`cid serve resolver --workers N` (issue 11): N processes on the same addresses by SO_REUSEPORT,
each a whole resolver; the supervisor restarts a worker killed with SIGKILL, forwards SIGTERM and
exits 0 once all stopped. Queried from many source ports (the kernel spreads them by 4-tuple)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode

from support import federation as F
from support.net import free_port
from test_service_cli import cid

ADDRESS = "127.0.0.1"


def _ask_many(port: int, count: int) -> list[dns.message.Message]:
    answers = []
    for i in range(count):  # a fresh socket each time: a new source port, so any worker may get it
        query = dns.message.make_query("pool-7.bj.cmcc.cid.", "SVCB", want_dnssec=True)
        answers.append(dns.query.udp(query, ADDRESS, port=port, timeout=8))
    return answers


def _workers(log_path, expected: int, timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text()
        found = re.search(r"(\d+) workers: ([\d, ]+)", text)
        if found and text.count("listening on") >= expected:
            return [int(p) for p in found.group(2).split(", ")]
        time.sleep(0.05)
    raise AssertionError(f"workers did not start:\n{log_path.read_text()}")


def test_two_workers_share_the_port_and_one_killed_is_started_again(tmp_path):
    fed = F.build(now=time.time())
    with F.serving_in_thread(fed) as auth_port:
        config = F.resolver_config(fed, tmp_path, auth_port, timeout=1)
        port = free_port(ADDRESS)
        log_path = tmp_path / "serve.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "resolver", "serve", "resolver", "--listen",
                                     f"{ADDRESS}:{port}", "--config", str(config), "--workers", "2"],
                                    stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)
        try:
            pids = _workers(log_path, 2)
            assert len(pids) == 2 and all(os.path.exists(f"/proc/{p}") for p in pids)
            # Both hold a socket bound to the one port (SO_REUSEPORT), so neither start failed.
            answers = _ask_many(port, 24)
            assert all(a.rcode() == dns.rcode.NOERROR and a.flags & dns.flags.AD for a in answers)
            os.kill(pids[0], signal.SIGKILL)
            deadline = time.monotonic() + 20
            while "starting it again" not in log_path.read_text() or log_path.read_text().count("listening on") < 3:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.05)
            answers = _ask_many(port, 24)
            assert all(a.rcode() == dns.rcode.NOERROR and a.flags & dns.flags.AD for a in answers)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=20)
    assert code == 0, log_path.read_text()
    assert not any(os.path.exists(f"/proc/{p}/status") and "zombie" not in open(f"/proc/{p}/status").read()
                   for p in pids[1:])
    assert "Traceback" not in log_path.read_text()


def test_workers_usage_errors_are_one_line():
    for args, message in ((["--listen", "127.0.0.1:0", "--workers", "2"], "give every --listen a port"),
                          (["--listen", "127.0.0.1:5399", "--workers", "0"], "--workers 0: must be"),
                          (["--listen", "127.0.0.1:5399", "--workers", "2", "--http", "127.0.0.1:0"],
                           "--workers: give --http a port")):
        proc = cid("serve", "resolver", *args, "--hint", "cid.=127.0.0.2")
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1


def test_a_worker_that_keeps_dying_stops_the_supervisor(tmp_path):
    """spec/service.md §1: at most 5 restarts a minute, then every worker is stopped, exit 1."""
    port = free_port(ADDRESS)
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "resolver", "serve", "resolver", "--listen",
                                 f"{ADDRESS}:{port}", "--hint", "cid.=127.0.0.2", "--workers", "2"],
                                stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)
    try:
        _workers(log_path, 2)
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            children = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
            for child in children[:1]:  # one worker at a time, as a crashing worker would
                try:
                    os.kill(int(child), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log_path.read_text()
    assert code == 1 and "5 restarts within 60 s, stopping all workers" in text, text
    assert text.count("starting it again") == 5


def test_sigterm_while_the_workers_are_still_starting_is_a_clean_stop(tmp_path):
    """SIGTERM as soon as the supervisor has forked (the workers are still importing and reading
    their configuration, no event loop yet): every worker stops without serving and the exit is
    0 — not a worker killed by the default disposition and a supervisor exiting 1."""
    fed = F.build(now=time.time())
    with F.serving_in_thread(fed) as auth_port:
        config = F.resolver_config(fed, tmp_path, auth_port, timeout=1)
        for attempt in range(3):
            port = free_port(ADDRESS)
            log_path = tmp_path / f"serve-{attempt}.log"
            with open(log_path, "w") as log:
                proc = subprocess.Popen([sys.executable, "-m", "resolver", "serve", "resolver", "--listen",
                                         f"{ADDRESS}:{port}", "--config", str(config), "--workers", "2",
                                         "--control", "none"],
                                        stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while "2 workers: " not in log_path.read_text():
                assert time.monotonic() < deadline and proc.poll() is None, log_path.read_text()
                time.sleep(0.002)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log_path.read_text()
            assert "Traceback" not in log_path.read_text()
