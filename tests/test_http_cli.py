"""``cid serve resolver --http`` as a user runs it: the HTTP address logged, /v1/resolve and
/healthz answered over a real socket, a bad --http a one-line usage error."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request

from support import federation as F

CID = [sys.executable, "-m", "resolver"]


def test_bad_http_address_is_one_line_exit_2():
    proc = subprocess.run([*CID, "serve", "resolver", "--listen", "127.0.96.2:0", "--hint", "cid.=127.0.0.2",
                           "--http", "127.0.96.2:x"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "--http 127.0.96.2:x: port 'x' is not a number" in proc.stderr


def test_serves_http_beside_dns(tmp_path):
    fed = F.build(now=time.time())
    (tmp_path / "ta").write_text(fed.anchor_text)
    with F.serving_in_thread(fed) as port, open(tmp_path / "log", "w") as log:
        proc = subprocess.Popen([*CID, "serve", "resolver", "--listen", "127.0.96.2:0", "--http", "127.0.96.2:0",
                                 "--hint", f"cid.=127.0.0.2:{port}", "--port", str(port),
                                 "--trust-anchor", str(tmp_path / "ta")], stderr=log, stdout=subprocess.DEVNULL)
        try:
            found = None
            for _ in range(400):  # bounded: 20 s
                found = re.search(r"HTTP on 127\.0\.96\.2:(\d+)", (tmp_path / "log").read_text())
                if found or proc.poll() is not None:
                    break
                time.sleep(0.05)
            assert found, (tmp_path / "log").read_text()
            base = f"http://127.0.96.2:{found.group(1)}"
            with urllib.request.urlopen(base + "/v1/resolve/cid:pool-7.bj.cmcc.cid", timeout=10) as r:
                doc = json.loads(r.read())
            assert doc["status"] == "secure" and doc["endpoints"][0]["port"] == 8443
            with urllib.request.urlopen(base + "/healthz", timeout=10) as r:
                assert json.loads(r.read())["status"] == "ok"
        finally:
            proc.terminate()
            assert proc.wait(timeout=10) == 0
