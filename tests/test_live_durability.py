"""Durability of acknowledged updates (issue 9): `cid serve auth --config` killed with SIGKILL
at random moments while four clients send signed updates; after each restart every update that
was acknowledged is served, with its RRSIG, and the exported zone verifies.
"""

from __future__ import annotations

import random
import threading
import time

import dns.exception
import dns.name
import dns.query
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import dns.update

import resolver  # noqa: F401
from support import live_primary as lp
from support.net import free_port

ADDRESS = "127.0.92.4"
ROUNDS = 3
CLIENTS = 4


def _sender(server: lp.Running, client: int, round_: int, acked: list[str], stop: threading.Event) -> None:
    name, secret = lp.PROV.split(":")
    ring = dns.tsigkeyring.from_text({name: ("hmac-sha256", secret)})
    for i in range(2000):  # bounded; the kill ends it sooner
        if stop.is_set():
            return
        owner = f"r{round_}c{client}n{i}.pool-1.{lp.ZONE}"
        message = dns.update.UpdateMessage(lp.ZONE, keyring=ring, keyname=dns.name.from_text(name),
                                           keyalgorithm=dns.tsig.HMAC_SHA256)
        message.add(owner, 60, "A", f"127.0.92.{i % 250 + 1}")
        try:
            response = dns.query.udp(message, server.address, port=server.port, timeout=1)
        except (dns.exception.DNSException, OSError):
            return  # the server is gone
        if response.rcode() == dns.rcode.NOERROR:
            acked.append(owner)


def test_kill_9_loses_no_acknowledged_update(tmp_path):
    site = lp.build(tmp_path / "site", ADDRESS, free_port(ADDRESS))
    rng = random.Random(92)
    acked: list[str] = []
    for round_ in range(ROUNDS):
        server = lp.start(site)
        stop = threading.Event()
        mine: list[str] = []
        threads = [threading.Thread(target=_sender, args=(server, c, round_, mine, stop)) for c in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.4, 1.5))
        server.kill9()
        stop.set()
        for t in threads:
            t.join(timeout=15)
        assert mine, "no update was acknowledged before the kill"
        acked += mine
        server = lp.start(site)
        try:
            for owner in rng.sample(acked, min(60, len(acked))):
                assert server.signed(owner, "A"), owner
        finally:
            lp.stop(server)
    exported = lp.export(site, tmp_path / "after.zone").read_text()
    missing = [o for o in acked if f"\n{o} 60 IN A " not in exported]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged updates lost: {missing[:5]}"
    lp.verify(tmp_path / "after.zone")
