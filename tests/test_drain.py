"""SIGTERM drains `cid serve resolver` (issue 11): a resolution in progress when the signal comes
still gets its answer out, then the process exits 0. The authority is reached through a relay
that holds every query for a second, so the resolution is surely in progress at SIGTERM."""

from __future__ import annotations

import signal
import socket
import threading
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode

from support import federation as F
from support.net import free_port
from test_service_cli import _serve

RELAY = "127.0.161.1"
DELAY = 1.0


def _relay(port: int, upstream: tuple[str, int], stop: threading.Event) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((RELAY, port))
        sock.settimeout(0.1)
        for _ in range(10_000):  # bounded
            if stop.is_set():
                return
            try:
                data, peer = sock.recvfrom(65535)
            except TimeoutError:
                continue

            def answer(data=data, peer=peer) -> None:
                time.sleep(DELAY)
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
                    out.settimeout(3)
                    out.sendto(data, upstream)
                    try:
                        sock.sendto(out.recvfrom(65535)[0], peer)
                    except OSError:
                        pass
            threading.Thread(target=answer, daemon=True).start()


def test_sigterm_lets_a_resolution_in_progress_answer(tmp_path):
    fed = F.build(now=time.time())
    with F.serving_in_thread(fed) as auth_port:
        relay_port = free_port(RELAY)
        stop = threading.Event()
        threading.Thread(target=_relay, args=(relay_port, ("127.0.0.2", auth_port), stop), daemon=True).start()
        config = F.resolver_config(fed, tmp_path, auth_port, apex=f"{RELAY}:{relay_port}", timeout=3)
        try:
            with open(tmp_path / "serve.log", "w") as log:
                proc, port = _serve(["--listen", "127.0.0.1:0", "--config", str(config), "--control", "none"], log)
                result: dict = {}

                def ask() -> None:
                    query = dns.message.make_query("pool-7.bj.cmcc.cid.", "A", want_dnssec=True)
                    try:
                        result["answer"] = dns.query.udp(query, "127.0.0.1", port=port, timeout=15)
                    except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                        result["error"] = exc
                asker = threading.Thread(target=ask)
                asker.start()
                time.sleep(0.3)  # the query is at the relay now, held for a second
                proc.send_signal(signal.SIGTERM)
                asker.join(timeout=20)
                code = proc.wait(timeout=20)
        finally:
            stop.set()
    assert code == 0
    answer = result.get("answer")
    assert answer is not None, result.get("error")
    assert answer.rcode() == dns.rcode.NOERROR and answer.flags & dns.flags.AD and answer.answer
