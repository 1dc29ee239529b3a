"""``cid serve resolver`` as a user runs it: options, one-line usage errors, serving until
SIGTERM, queried with dig."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest

from support import federation as F
from support.peers import run as run_peer

CID = [sys.executable, "-m", "resolver"]


def cid(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([*CID, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args,message", [
    (["--listen", "127.0.0.1:0"], "no --hint given"),
    (["--listen", "127.0.0.1:x", "--hint", "cid.=127.0.0.2"], "--listen 127.0.0.1:x: port 'x' is not a number"),
    (["--listen", "127.0.0.1:0", "--hint", "cid.=not an address"], "--hint"),
    (["--listen", "127.0.0.1:0", "--hint", "cid.=127.0.0.2", "--trust-anchor", "/nonexistent/ta"],
     "/nonexistent/ta"),
    (["--listen", "127.0.0.1:0", "--hint", "cid.=127.0.0.2", "--port", "0"], "--port 0"),
    (["--listen", "127.0.0.1:0", "--config", "/nonexistent/r.toml"], "/nonexistent/r.toml: cannot read"),
    (["--listen", "127.0.0.1:0", "--config", "r.toml", "--hint", "cid.=127.0.0.2"], "not both"),
])
def test_usage_errors_are_one_line_exit_2(args, message):
    proc = cid("serve", "resolver", *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert message in proc.stderr


def test_address_in_use_is_one_line_exit_1(tmp_path):
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = cid("serve", "resolver", "--listen", f"127.0.0.1:{port}", "--hint", "cid.=127.0.0.2")
    assert proc.returncode == 1 and proc.stderr.startswith("cid serve: cannot listen")
    assert "Traceback" not in proc.stderr


def _serve(args: list[str], log) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([*CID, "serve", "resolver", *args], stdout=subprocess.DEVNULL,
                            stderr=log, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)", log.name and open(log.name).read())
        if found:
            return proc, int(found.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise AssertionError(f"cid serve resolver did not start:\n{open(log.name).read()}")


def test_serves_dig_from_a_config_file_until_sigterm(tmp_path):
    fed = F.build(now=time.time())
    anchor = tmp_path / "ta.dnskey"
    anchor.write_text(fed.anchor_text)
    with F.serving_in_thread(fed) as port:
        config = tmp_path / "resolver.toml"
        config.write_text(f'[resolver]\nhints = {{"cid." = ["127.0.0.2:{port}"], '
                          f'"far-ops.net." = ["127.0.0.7:{port}"]}}\ntrust_anchor = "ta.dnskey"\nport = {port}\n')
        with open(tmp_path / "serve.log", "w") as log:
            proc, listen_port = _serve(["--listen", "127.0.0.1:0", "--config", str(config), "--timeout", "1"], log)
            try:
                dig = run_peer(["dig", "@127.0.0.1", "-p", str(listen_port), "pool-7.bj.cmcc.cid", "TYPE65380",
                                "+dnssec", "+tries=1", "+time=5"])
                short = run_peer(["dig", "@127.0.0.1", "-p", str(listen_port), "c1.bj.cmcc.cid", "A",
                                  "+short", "+tcp", "+tries=1", "+time=5"])
            finally:
                proc.send_signal(signal.SIGTERM)
                code = proc.wait(timeout=10)
    assert "status: NOERROR" in dig.stdout and re.search(r"flags: qr rd ra ad;", dig.stdout), dig.stdout
    assert "RRSIG" in dig.stdout
    assert short.stdout.split() == ["c0.bj.cmcc.cid.", "pool-7.bj.cmcc.cid.", "192.0.2.7"]
    assert code == 0
    text = (tmp_path / "serve.log").read_text()
    assert "resolver for cid., far-ops.net. (validating)" in text and "stopping" in text
    assert "Traceback" not in text
