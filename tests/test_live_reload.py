"""SIGHUP reload of `cid serve auth --config` (issue 9): a zone added and one removed, a key
added and one's grant taken away, an edit of the zone file merged with the dynamic
registrations kept — while a query loop runs and every query of it is answered.
"""

from __future__ import annotations

import shutil
import signal
import threading

import dns.exception
import dns.message
import dns.query
import dns.rcode

import resolver  # noqa: F401
from support import live_primary as lp
from support.net import free_port

ADDRESS = "127.0.92.5"
NEW_SECRET = "bmV3LWtleS1hZGRlZC1vbi1yZWxvYWQtZm9yLXRlc3Q="


def _query_loop(server: lp.Running, stop: threading.Event, results: dict) -> None:
    query = dns.message.make_query(f"ns1.{lp.ZONE}", "A")
    for _ in range(20000):  # bounded
        if stop.is_set():
            return
        try:
            response = dns.query.udp(query, server.address, port=server.port, timeout=2)
            results["answered"] += response.rcode() == dns.rcode.NOERROR and bool(response.answer)
            results["other"] += not (response.rcode() == dns.rcode.NOERROR and response.answer)
        except (dns.exception.Timeout, OSError):
            results["lost"] += 1


def test_sighup_reload_without_dropping_queries(tmp_path):
    site = lp.build(tmp_path / "site", ADDRESS, free_port(ADDRESS))
    other = lp.build(tmp_path / "other", ADDRESS, site.port, zone="other.cid.")
    with lp.serve(site) as server:
        assert server.nsupdate("update add pool-1.ex.cid. 60 A 127.0.92.70").returncode == 0
        results = {"answered": 0, "other": 0, "lost": 0}
        stop = threading.Event()
        loop = threading.Thread(target=_query_loop, args=(server, stop, results))
        loop.start()
        try:
            # The edit: a static record added to the configured zone file (unsigned text is
            # merged as a change and signed by the server).
            plain = site.zone_file.read_text() + f"static.{lp.ZONE} 300 IN A 127.0.92.71\n"
            site.zone_file.write_text(plain)
            # A second zone (its files beside ours), a new key; prov. loses pool-2.
            shutil.copy(other.zone_file, site.directory / other.zone_file.name)
            for key in (other.directory / "keys").iterdir():
                (site.directory / "keys2").mkdir(exist_ok=True)
                shutil.copy(key, site.directory / "keys2" / key.name)
            text = site.config.read_text().replace('"pool-1", "pool-2",', '"pool-1",')
            text += f"""
[[zone]]
file = "{other.zone_file.name}"
keys = "keys2"

[[key]]
name = "new."
secret = "{NEW_SECRET}"
  [[key.grant]]
  zone = "other.cid."
"""
            site.config.write_text(text)
            server.proc.send_signal(signal.SIGHUP)
            lp.until(lambda: "reload done" in server.log_text(), "the reload", timeout=20)
            assert "reload failed" not in server.log_text(), server.log_text()
            assert [rd.address for rd in server.signed(f"static.{lp.ZONE}", "A")] == ["127.0.92.71"]
            assert [rd.address for rd in server.signed("pool-1.ex.cid.", "A")] == ["127.0.92.70"]
            assert server.rrset("other.cid.", "SOA")
            out = server.nsupdate("server {0} {1}\nzone other.cid.\nupdate add x.other.cid. 60 A 127.0.92.72"
                                  .format(server.address, server.port), key=f"new.:{NEW_SECRET}")
            assert out.returncode == 0, out.stdout + out.stderr
            assert server.signed("x.other.cid.", "A")
            out = server.nsupdate("update add pool-2.ex.cid. 60 A 127.0.92.73")
            assert out.returncode != 0 and "REFUSED" in out.stdout + out.stderr

            # Remove the second zone again.
            site.config.write_text(text.split("\n[[zone]]\nfile = \"other")[0] + "\n")
            server.proc.send_signal(signal.SIGHUP)
            lp.until(lambda: server.log_text().count("reload done") == 2, "the second reload", timeout=20)
            assert server.ask("other.cid.", "SOA").rcode() == dns.rcode.REFUSED
        finally:
            stop.set()
            loop.join(timeout=30)
        assert results["answered"] > 0 and results["lost"] == 0 and results["other"] == 0, results
    lp.verify(lp.export(site, tmp_path / "after.zone"))
