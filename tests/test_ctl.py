"""`cid ctl` against real `cid serve resolver` and `cid serve auth` processes (issue 11,
Control; issue 9, Operations): every command, flush making the next query go upstream (counted
at the authoritative through its own `cid ctl stats`), `reload` adding a zone on a live primary,
and hostile input on the control socket and TCP channel."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query

from support import live_primary as lp
from support.net import free_port
from support.peer_servers import wait_until_answers

AUTH = "127.0.154.1"
RESOLVER = "127.0.154.2"
KEY = base64.b64encode(b"k" * 32).decode()
ZONE = """$ORIGIN ctl.cid.
$TTL 300
@ SOA ns1 host 1 3600 600 86400 300
@ NS ns1
ns1 A 127.0.154.1
www A 127.0.154.80
"""


def cid(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "resolver", *args], capture_output=True, text=True, timeout=60)


@contextlib.contextmanager
def running(args: list[str], address: str, port: int, name: str, log: Path) -> Iterator[subprocess.Popen]:
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "resolver", "serve", *args], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until_answers(address, port, name, proc, log, timeout=30)
        lp.until(lambda: "control" in log.read_text(), "the control channel", timeout=10)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


def upstream_count(sock: Path) -> int:
    out = cid("ctl", "--socket", str(sock), "--json", "stats")
    assert out.returncode == 0, out.stderr
    return sum(v for k, v in json.loads(out.stdout).items() if k.startswith("queries."))


def test_resolver_and_auth_commands(tmp_path):
    zone = tmp_path / "ctl.zone"
    zone.write_text(ZONE)
    auth_port, res_port = free_port(AUTH), free_port(RESOLVER)
    auth_sock, res_sock = tmp_path / "auth.ctl", tmp_path / "res.ctl"
    with running(["auth", "--listen", f"{AUTH}:{auth_port}", "--zone", str(zone), "--control", str(auth_sock)],
                 AUTH, auth_port, "ctl.cid.", tmp_path / "auth.log"), \
         running(["resolver", "--listen", f"{RESOLVER}:{res_port}", "--hint", f"ctl.cid.={AUTH}:{auth_port}",
                  "--no-validate", "--control", str(res_sock), "--control-tcp", f"{RESOLVER}:0",
                  "--control-key", KEY], RESOLVER, res_port, "ctl.cid.", tmp_path / "res.log"):
        assert auth_sock.stat().st_mode & 0o777 == 0o600
        query = dns.message.make_query("www.ctl.cid.", "A")

        def ask() -> None:
            response = dns.query.udp(query, RESOLVER, port=res_port, timeout=5)
            assert response.answer and response.answer[0][0].address == "127.0.154.80"

        ask()
        before = upstream_count(auth_sock)
        ask()
        assert upstream_count(auth_sock) == before  # a cache hit asks nobody
        dump = cid("ctl", "--socket", str(res_sock), "dump-cache")
        assert dump.returncode == 0 and "www.ctl.cid." in dump.stdout and "127.0.154.80" in dump.stdout
        for command in (["flush", "www.ctl.cid."], ["flush-subtree", "ctl.cid."], ["flush-all"]):
            assert cid("ctl", "--socket", str(res_sock), *command).returncode == 0
            before = upstream_count(auth_sock)
            ask()
            assert upstream_count(auth_sock) > before, command  # the flushed name went upstream
        stats = cid("ctl", "--socket", str(res_sock), "--json", "stats")
        data = json.loads(stats.stdout)
        assert data["cid_dns_queries_total.udp.NOERROR"] >= 5 and "cid_cache_evictions_total" in data
        reload = cid("ctl", "--socket", str(res_sock), "reload")
        assert reload.returncode == 0 and "reload done" in reload.stdout
        ask()  # still answering, cache kept
        # TCP: keyed works; no key, wrong key refused.
        tcp = next(line for line in (tmp_path / "res.log").read_text().splitlines() if "(TCP, keyed)" in line)
        server = tcp.split("control on ")[1].split()[0]
        assert cid("ctl", "--server", server, "--key", KEY, "stats").returncode == 0
        wrong = cid("ctl", "--server", server, "--key", base64.b64encode(b"x" * 32).decode(), "flush-all")
        assert wrong.returncode == 1 and "bad MAC" in wrong.stderr
        host, port = server.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as raw:  # unauthenticated write
            body = json.dumps({"command": "flush-all", "args": []}).encode()
            raw.sendall(struct.pack("!I", len(body)) + body)
            reply = _reply(raw)
            assert reply["ok"] is False and "key" in reply["error"]
        # auth side: stats, an unsupported command (exit 2), zone-status needs live zones (exit 1).
        assert "queries.udp.NOERROR=" in cid("ctl", "--socket", str(auth_sock), "stats").stdout
        unsupported = cid("ctl", "--socket", str(auth_sock), "flush-all")
        assert unsupported.returncode == 2 and len(unsupported.stderr.splitlines()) == 1
        assert cid("ctl", "--socket", str(auth_sock), "zone-status").returncode == 1
        # hostile frames: oversized, garbage; the server keeps answering.
        for junk in (struct.pack("!I", 1 << 30), struct.pack("!I", 5) + b"\xff\xfe{{{", b"\x00"):
            with socket.socket(socket.AF_UNIX) as raw:
                raw.settimeout(15)
                raw.connect(str(res_sock))
                raw.sendall(junk)
                if len(junk) > 1:
                    assert _reply(raw)["ok"] is False
        ask()
        assert cid("ctl", "--socket", str(res_sock), "stats").returncode == 0
    gone = cid("ctl", "--socket", str(res_sock), "stats")
    assert gone.returncode == 1 and len(gone.stderr.splitlines()) == 1


def _reply(raw: socket.socket) -> dict:
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack("!I", data[:4])[0]:
        chunk = raw.recv(65536)
        assert chunk, "closed without a reply"
        data += chunk
    return json.loads(data[4:])


def test_control_tcp_off_loopback_refused(tmp_path):
    zone = tmp_path / "ctl.zone"
    zone.write_text(ZONE)
    out = cid("serve", "auth", "--listen", f"{AUTH}:0", "--zone", str(zone), "--control-tcp", "10.0.0.1:1",
              "--control-key", KEY)
    assert out.returncode == 2 and "loopback only" in out.stderr
    out = cid("serve", "auth", "--listen", f"{AUTH}:0", "--zone", str(zone), "--control-tcp", f"{AUTH}:0")
    assert out.returncode == 2 and "--control-key" in out.stderr


def test_auth_reload_and_zone_status(tmp_path):
    site = lp.build(tmp_path / "site", "127.0.154.5", free_port("127.0.154.5"))
    other = lp.build(tmp_path / "other", "127.0.154.5", site.port, zone="other.cid.")
    with lp.serve(site) as server:
        sock = Path(str(site.config) + ".ctl")
        status = cid("ctl", "--config", str(site.config), "--json", "zone-status", lp.ZONE)
        assert status.returncode == 0, status.stderr
        (info,) = json.loads(status.stdout)
        assert info["serial"] == server.serial() and info["names"] > 0 and info["journal_bytes"] > 0
        import shutil
        shutil.copy(other.zone_file, site.directory / other.zone_file.name)
        (site.directory / "keys2").mkdir()
        for key in (other.directory / "keys").iterdir():
            shutil.copy(key, site.directory / "keys2" / key.name)
        site.config.write_text(site.config.read_text() + f'\n[[zone]]\nfile = "{other.zone_file.name}"\nkeys = "keys2"\n')
        out = cid("ctl", "--socket", str(sock), "reload")
        assert out.returncode == 0 and "reload done" in out.stdout, out.stdout + out.stderr
        assert server.rrset("other.cid.", "SOA")
        assert "other.cid." in cid("ctl", "--socket", str(sock), "zone-status").stdout


def test_a_second_server_with_the_default_control_socket_still_starts(tmp_path):
    """The default control path (no --control) is one per machine and kind: a second server
    finding it held by a live server starts without a control socket and says so; naming that
    path with --control is an error (one line, exit 1)."""
    zone = tmp_path / "ctl.cid.zone"
    zone.write_text(ZONE)
    first_port, second_port = free_port(AUTH), free_port("127.0.154.3")
    with running(["auth", "--listen", f"{AUTH}:{first_port}", "--zone", str(zone)], AUTH, first_port,
                 "ctl.cid.", tmp_path / "first.log"):
        first = (tmp_path / "first.log").read_text()
        held = next(line.split("control socket ")[1].split()[0] for line in first.splitlines()
                    if "control socket " in line)
        with running(["auth", "--listen", f"127.0.154.3:{second_port}", "--zone", str(zone)], "127.0.154.3",
                     second_port, "ctl.cid.", tmp_path / "second.log"):
            assert "is another server's: no control socket for this one" in (tmp_path / "second.log").read_text()
        if "is another server's" not in first:  # the first one holds the default path
            named = subprocess.run([sys.executable, "-m", "resolver", "serve", "auth", "--listen",
                                    f"127.0.154.3:{second_port}", "--zone", str(zone), "--control", held],
                                   capture_output=True, text=True, timeout=30)
            assert named.returncode == 1 and "another server is listening there" in named.stderr
            assert cid("ctl", "--socket", held, "stats").returncode == 0  # still the first one's


def test_reload_says_when_cache_settings_wait_for_a_restart(tmp_path):
    """The cache (and the settings it was made with) survives a reload; a changed [cache] table
    is said in the reply and the log, not silently ignored."""
    zone = tmp_path / "ctl.zone"
    zone.write_text(ZONE)
    auth_port, res_port = free_port(AUTH), free_port(RESOLVER)
    config = tmp_path / "resolver.toml"

    def write(max_bytes: int) -> None:
        config.write_text(f'hints = {{ "ctl.cid." = ["{AUTH}:{auth_port}"] }}\nvalidation = "off"\n'
                          f"[cache]\nmax_bytes = {max_bytes}\n")
    write(8 << 20)
    sock = tmp_path / "res.ctl"
    with running(["auth", "--listen", f"{AUTH}:{auth_port}", "--zone", str(zone), "--control",
                  str(tmp_path / "auth.ctl")], AUTH, auth_port, "ctl.cid.", tmp_path / "auth.log"), \
         running(["resolver", "--listen", f"{RESOLVER}:{res_port}", "--config", str(config),
                  "--control", str(sock)], RESOLVER, res_port, "ctl.cid.", tmp_path / "res.log"):
        same = cid("ctl", "--socket", str(sock), "reload")
        assert same.returncode == 0 and "reload done" in same.stdout and "[cache]" not in same.stdout
        write(16 << 20)
        changed = cid("ctl", "--socket", str(sock), "reload")
        assert changed.returncode == 0 and "reload done" in changed.stdout, changed.stdout + changed.stderr
        assert "[cache] settings changed: they take effect at the next start" in changed.stdout
        assert "[cache] settings changed" in (tmp_path / "res.log").read_text()


def test_auth_flush_empties_the_cache_behind_its_http_api(tmp_path):
    """`cid serve auth --http`: flush, flush-subtree and flush-all act on the cache of the
    Resolver behind /v1/resolve; without --http the server keeps no cache and they are
    unsupported (exit 2)."""
    import re
    import urllib.error
    import urllib.request
    zone = tmp_path / "ctl.zone"
    zone.write_text(ZONE)
    port, sock, log = free_port(AUTH), tmp_path / "auth.ctl", tmp_path / "auth.log"
    with running(["auth", "--listen", f"{AUTH}:{port}", "--zone", str(zone), "--control", str(sock),
                  "--http", f"{AUTH}:0"], AUTH, port, "ctl.cid.", log):
        http = lp.until(lambda: re.search(r"HTTP on ([\d.]+:\d+)", log.read_text()), "the HTTP line", timeout=10)
        assert cid("ctl", "--socket", str(sock), "flush-all").stdout.strip() == "flushed 0 entries"

        def resolve() -> int:
            try:
                with urllib.request.urlopen(f"http://{http.group(1)}/v1/resolve/cid:www.ctl.cid", timeout=20) as r:
                    return r.status
            except urllib.error.HTTPError as exc:
                return exc.code
        assert resolve() == 403  # unsigned: indeterminate, refused — but looked up and cached
        out = cid("ctl", "--socket", str(sock), "--json", "flush-subtree", "ctl.cid.")
        assert out.returncode == 0 and json.loads(out.stdout)["flushed"] > 0, out.stdout + out.stderr
        assert json.loads(cid("ctl", "--socket", str(sock), "--json", "flush-all").stdout)["flushed"] == 0
        assert resolve() == 403
        assert json.loads(cid("ctl", "--socket", str(sock), "--json", "flush", "www.ctl.cid.").stdout)["flushed"] > 0
    port, sock = free_port(AUTH), tmp_path / "plain.ctl"
    with running(["auth", "--listen", f"{AUTH}:{port}", "--zone", str(zone), "--control", str(sock)],
                 AUTH, port, "ctl.cid.", tmp_path / "plain.log"):
        out = cid("ctl", "--socket", str(sock), "flush-all")
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stdout + out.stderr
