"""Warm restart of `cid serve resolver --cache-snapshot FILE` (issue 11): SIGTERM writes the cache,
the next start reads it back, and what was cached is answered — validated, AD set — even when
every authoritative server is gone; without the snapshot the same question fails. A damaged
snapshot means a cold start said in one line, not a crash."""

from __future__ import annotations

import os
import signal
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode

from support import federation as F
from test_service_cli import _serve

QUESTION = ("pool-7.bj.cmcc.cid.", "SVCB")


def _ask(port: int) -> dns.message.Message:
    query = dns.message.make_query(*QUESTION, want_dnssec=True)
    return dns.query.udp(query, "127.0.0.1", port=port, timeout=8)


def _stop(proc) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=20)


def _answer_once(args: list[str], log_path) -> tuple[dns.message.Message, int]:
    """Start `cid serve resolver ARGS`, ask QUESTION once, SIGTERM it: (answer, exit status)."""
    with open(log_path, "w") as log:
        proc, port = _serve(args, log)
        try:
            answer = _ask(port)
        finally:
            code = _stop(proc)
    return answer, code


def test_a_restart_answers_from_the_snapshot_with_the_authorities_gone(tmp_path):
    fed = F.build(now=time.time())
    snap = tmp_path / "cache.snap"
    with F.serving_in_thread(fed) as auth_port:
        config = F.resolver_config(fed, tmp_path, auth_port, timeout=0.5, max_time=3)
        args = ["--listen", "127.0.0.1:0", "--config", str(config), "--cache-snapshot", str(snap)]
        warm, code = _answer_once(args, tmp_path / "first.log")
        assert code == 0
        assert warm.rcode() == dns.rcode.NOERROR and warm.flags & dns.flags.AD and warm.answer
    first_log = (tmp_path / "first.log").read_text()
    assert "none yet, starting cold" in first_log and "entries written" in first_log
    assert os.stat(snap).st_mode & 0o777 == 0o600
    # The authoritative servers are gone now: only the snapshot can answer.
    again, code = _answer_once(args, tmp_path / "second.log")
    assert code == 0
    assert "entries restored" in (tmp_path / "second.log").read_text()
    assert again.rcode() == dns.rcode.NOERROR and again.flags & dns.flags.AD
    assert {r.to_text() for r in again.answer} and again.answer[0] == warm.answer[0]
    # The same start without the snapshot: nothing cached, nobody to ask.
    cold_args = ["--listen", "127.0.0.1:0", "--config", str(config)]
    cold, _ = _answer_once(cold_args, tmp_path / "cold.log")
    assert cold.rcode() == dns.rcode.SERVFAIL


def test_a_damaged_snapshot_is_a_cold_start_in_one_line(tmp_path):
    fed = F.build(now=time.time())
    snap = tmp_path / "cache.snap"
    snap.write_bytes(b"cid-cache-snapshot\x00\x01" + b"\x00" * 40)
    os.chmod(snap, 0o600)
    with F.serving_in_thread(fed) as auth_port:
        config = F.resolver_config(fed, tmp_path, auth_port, timeout=0.5, max_time=3)
        answer, code = _answer_once(["--listen", "127.0.0.1:0", "--config", str(config), "--cache-snapshot",
                                     str(snap)], tmp_path / "serve.log")  # served cold, from the authorities
        assert code == 0
    text = (tmp_path / "serve.log").read_text()
    assert "cache snapshot not used, starting cold" in text and "damaged" in text and "Traceback" not in text
    assert answer.rcode() == dns.rcode.NOERROR and answer.flags & dns.flags.AD
