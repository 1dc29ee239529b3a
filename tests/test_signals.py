"""Signals on real `cid serve` processes (issue 11, Control): SIGUSR1/SIGUSR2 do not kill,
SIGHUP reloads the resolver (cache kept), SIGTERM/SIGINT stop with exit 0 and the primary's
journal holds every acknowledged update across the restart."""

from __future__ import annotations

import signal
import subprocess
import sys

import dns.message
import dns.query

from support import live_primary as lp
from support.net import free_port
from support.peer_servers import wait_until_answers
from test_ctl import AUTH, ZONE

RESOLVER = "127.0.154.3"


def test_resolver_signals(tmp_path):
    zone = tmp_path / "ctl.zone"
    zone.write_text(ZONE)
    auth_port, port = free_port(AUTH), free_port(RESOLVER)
    logs = tmp_path / "auth.log", tmp_path / "res.log"
    procs = []
    for args, (address, p), log in (
            (["auth", "--listen", f"{AUTH}:{auth_port}", "--zone", str(zone), "--control", "none"],
             (AUTH, auth_port), logs[0]),
            (["resolver", "--listen", f"{RESOLVER}:{port}", "--hint", f"ctl.cid.={AUTH}:{auth_port}",
              "--no-validate", "--control", str(tmp_path / "r.ctl")], (RESOLVER, port), logs[1])):
        with open(log, "wb") as out:
            procs.append(subprocess.Popen([sys.executable, "-m", "resolver", "serve", *args], stdout=out,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        wait_until_answers(address, p, "ctl.cid.", procs[-1], log, timeout=30)
    auth, res = procs
    try:
        query = dns.message.make_query("www.ctl.cid.", "A")
        for proc in (res, auth):
            for signum in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGPIPE):
                proc.send_signal(signum)
        assert dns.query.udp(query, RESOLVER, port=port, timeout=5).answer
        assert res.poll() is None and auth.poll() is None
        res.send_signal(signal.SIGHUP)
        lp.until(lambda: "SIGHUP: reloaded" in logs[1].read_text(), "the resolver's reload")
        assert dns.query.udp(query, RESOLVER, port=port, timeout=5).answer
        res.send_signal(signal.SIGTERM)
        auth.send_signal(signal.SIGINT)
        assert res.wait(timeout=15) == 0 and auth.wait(timeout=15) == 0
        assert not (tmp_path / "r.ctl").exists()  # the socket is removed on the way out
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_auth_sigterm_keeps_acknowledged_updates(tmp_path):
    site = lp.build(tmp_path / "site", "127.0.154.6", free_port("127.0.154.6"))
    with lp.serve(site) as server:
        server.proc.send_signal(signal.SIGUSR1)
        assert server.nsupdate("update add pool-1.ex.cid. 60 A 127.0.154.70").returncode == 0
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=15) == 0
    with lp.serve(site) as server:
        assert [rd.address for rd in server.signed("pool-1.ex.cid.", "A")] == ["127.0.154.70"]
