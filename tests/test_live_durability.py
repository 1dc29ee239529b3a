"""Durability of acknowledged updates (issue 9): `cid serve auth --config` killed with SIGKILL
at random moments while four clients send signed updates, and once in the middle of a dnsperf -u
load (group commits in flight); after each restart every update that was acknowledged is served,
with its RRSIG, and the exported zone verifies.
"""

from __future__ import annotations

import random
import selectors
import socket
import subprocess
import threading
import time

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import dns.update

import resolver  # noqa: F401
from support import live_primary as lp
from support.net import free_port
from support.peers import require

ADDRESS = "127.0.92.4"
PERF_ADDRESS = "127.0.156.40"
RELAY_ADDRESS = "127.0.156.41"
ROUNDS = 2
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


class AckRecorder:
    """A UDP relay between dnsperf and the server that notes which updates were answered
    NOERROR: dnsperf counts acknowledgements but does not say which, and the test must know."""

    def __init__(self, address: str, upstream: tuple[str, int]):
        self.upstream = upstream
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, free_port(address)))
        self.port = self.sock.getsockname()[1]
        self.acked: list[str] = []
        self._out: dict[tuple, socket.socket] = {}  # a socket upstream per dnsperf socket
        self._back: dict[socket.socket, tuple] = {}
        self._pending: dict[tuple[socket.socket, int], str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "AckRecorder":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for sock in [self.sock, *self._out.values()]:
            sock.close()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        while not self._stop.is_set():
            for key, _ in selector.select(timeout=0.2):
                sock = key.fileobj
                try:
                    wire, peer = sock.recvfrom(65535)
                except OSError:
                    continue
                if sock is self.sock:
                    out = self._out.get(peer)
                    if out is None:
                        out = self._out[peer] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        self._back[out] = peer
                        selector.register(out, selectors.EVENT_READ)
                    owner = dns.message.from_wire(wire, keyring=False).update[0].name.to_text()
                    self._pending[(out, int.from_bytes(wire[:2], "big"))] = owner
                    out.sendto(wire, self.upstream)
                else:
                    owner = self._pending.pop((sock, int.from_bytes(wire[:2], "big")), None)
                    if owner is not None and wire[3] & 0xF == dns.rcode.NOERROR:
                        self.acked.append(owner)
                    self.sock.sendto(wire, self._back[sock])
        selector.close()


def test_kill_9_in_the_middle_of_a_dnsperf_batch(tmp_path):
    """dnsperf -u -c 4 -q 50 (TSIG) through a relay that records each NOERROR; kill -9 while
    batches are in flight; after the restart every acknowledged name is there, signed, and
    `cid zone verify` passes on `cid zone export`."""
    site = lp.build(tmp_path / "site", PERF_ADDRESS, free_port(PERF_ADDRESS))
    data = tmp_path / "updates.txt"
    with open(data, "w") as out:
        for i in range(20000):
            out.write(f"{lp.ZONE}\nadd p{i}.pool-1.{lp.ZONE} 30 A 127.0.{(i >> 8) & 255}.{i & 255}\nsend\n")
    server = lp.start(site)
    with AckRecorder(RELAY_ADDRESS, (server.address, server.port)) as relay:
        perf = subprocess.Popen([require("dnsperf"), "-u", "-s", RELAY_ADDRESS, "-p", str(relay.port), "-d", str(data),
                                 "-c", "4", "-q", "50", "-l", "5", "-t", "1", "-y", f"hmac-sha256:{lp.PROV}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            lp.until(lambda: len(relay.acked) >= 300, "300 acknowledged updates", timeout=20, interval=0.02)
            time.sleep(random.Random(156).uniform(0.1, 0.5))
            server.kill9()
        finally:
            perf.wait(timeout=30)
    acked = set(relay.acked)
    assert len(acked) >= 300
    server = lp.start(site)
    try:
        for owner in random.Random(9).sample(sorted(acked), 40):
            assert server.signed(owner, "A"), owner
    finally:
        lp.stop(server)
    exported = lp.export(site, tmp_path / "after.zone").read_text()
    present = {line.split()[0] for line in exported.splitlines() if " IN A " in line}
    missing = acked - present
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged updates lost: {sorted(missing)[:5]}"
    lp.verify(tmp_path / "after.zone")
