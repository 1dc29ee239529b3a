"""Our primary taking signed updates: a zone signed by `cid zone sign`, a `--config` file with
TSIG keys and grants, and `cid serve auth --config` as a real process (tests of issue 9).

``build`` writes the zone, its Ed25519 key and the configuration into a directory;
``serve`` runs the server on it (a context manager that yields a ``Running``: ask it, send it
nsupdate scripts, kill -9 it and start it again on the same journal).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from .peer_servers import wait_until_answers
from .peers import require

ZONE = "ex.cid."
SECRET = "ZOExvQuEZSD+4qOkL8jLEtwnVEVdyVlaivW3KaEIkIE="  # key prov.: pool-1 and pool-2 subtrees
OTHER_SECRET = "bmFycm93LWtleS1zZWNyZXQtZm9yLXRlc3RzLW9ubHk="  # key narrow.: only A at only.<zone>
PROV = f"prov.:{SECRET}"
NARROW = f"narrow.:{OTHER_SECRET}"


def cid(*args: str, timeout: float = 60, check: bool = False, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "resolver", *args], capture_output=True, text=True,
                          timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise RuntimeError(f"cid {' '.join(args)}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
    return proc


def zone_text(zone: str, address: str, extra: str = "") -> str:
    return (f"$TTL 300\n{zone} IN SOA ns1.{zone} hostmaster.{zone} 1 3600 600 86400 60\n"
            f"{zone} IN NS ns1.{zone}\nns1.{zone} IN A {address}\n"
            f"child.{zone} IN NS ns.child.{zone}\nns.child.{zone} IN A {address}\n{extra}")


@dataclass
class Site:
    """The files of one configured primary."""

    directory: Path
    address: str
    port: int
    zone: str = ZONE
    config: Path = field(init=False)
    zone_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.config = self.directory / "auth.toml"
        self.zone_file = self.directory / f"{self.zone.rstrip('.')}.zone.signed"

    @property
    def server(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def journal(self) -> Path:
        return self.directory / "journal"

    def trust_anchor(self) -> Path:
        return self.directory / "anchor.ds"

    def write_config(self, *, min_lease: int = 30, max_lease: int | None = None, prov_max_lease: int | None = None,
                     extra: str = "") -> None:
        cap = f"  max_lease = {prov_max_lease}\n" if prov_max_lease is not None else ""
        top = f"max_lease = {max_lease}\n" if max_lease is not None else ""
        self.config.write_text(f"""listen = ["{self.server}"]
journal = "journal"
min_lease = {min_lease}
{top}
[[zone]]
file = "{self.zone_file.name}"
keys = "keys"

[[key]]
name = "prov."
secret = "{SECRET}"
  [[key.grant]]
  zone = "{self.zone}"
  subtree = ["pool-1", "pool-2", "cname", "child"]
{cap}
[[key]]
name = "narrow."
secret = "{OTHER_SECRET}"
  [[key.grant]]
  zone = "{self.zone}"
  subtree = "only"
  types = ["A"]
{extra}""")


def build(directory: Path, address: str, port: int, *, zone: str = ZONE, extra_records: str = "",
          **config) -> Site:
    """A signed zone (Ed25519 KSK/CSK made by `cid zone keygen`), its DS as a trust anchor, and
    the configuration (``write_config`` keywords)."""
    directory.mkdir(parents=True, exist_ok=True)
    site = Site(directory, address, port, zone)
    (directory / "keys").mkdir(exist_ok=True)
    plain = directory / f"{zone.rstrip('.')}.zone"
    plain.write_text(zone_text(zone, address, extra_records))
    cid("zone", "keygen", zone, "--dir", str(directory / "keys"), check=True)
    cid("zone", "sign", str(plain), "-K", str(directory / "keys"), "-o", str(site.zone_file),
        "--ds-out", str(site.trust_anchor()), check=True)
    site.write_config(**config)
    return site


@dataclass
class Running:
    site: Site
    proc: subprocess.Popen
    log: Path

    @property
    def address(self) -> str:
        return self.site.address

    @property
    def port(self) -> int:
        return self.site.port

    @property
    def server(self) -> str:
        return self.site.server

    def ask(self, name: str, rdtype, *, tcp: bool = True) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype, want_dnssec=True)
        if tcp:
            return dns.query.tcp(query, self.address, port=self.port, timeout=5)
        return dns.query.udp(query, self.address, port=self.port, timeout=5)

    def rrset(self, name: str, rdtype) -> list:
        """The RRset's rdatas (empty when there is none)."""
        rdtype = dns.rdatatype.RdataType.make(rdtype)
        return [rd for r in self.ask(name, rdtype).answer if r.rdtype == rdtype for rd in r]

    def signed(self, name: str, rdtype) -> list:
        """The RRset, asserting it comes with an RRSIG."""
        rdtype = dns.rdatatype.RdataType.make(rdtype)
        response = self.ask(name, rdtype)
        data = [r for r in response.answer if r.rdtype == rdtype]
        sigs = [r for r in response.answer if r.rdtype == dns.rdatatype.RRSIG and r.covers == rdtype]
        assert data and sigs, f"{name} {rdtype.name}: {response}"
        return list(data[0])

    def serial(self) -> int:
        return self.rrset(self.site.zone, "SOA")[0].serial

    def nsupdate(self, body: str, key: str = PROV, *, timeout: float = 20) -> subprocess.CompletedProcess:
        """BIND's nsupdate with ``-y hmac-sha256:KEY``; ``body`` is the script after server/zone."""
        script = f"server {self.address} {self.port}\nzone {self.site.zone}\n{body.strip()}\nsend\n"
        args = [require("nsupdate")]
        if key:
            args += ["-y", f"hmac-sha256:{key}"]
        return subprocess.run(args, input=script, capture_output=True, text=True, timeout=timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


def start(site: Site, log: Path | None = None) -> Running:
    log = log or site.directory / "serve.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "resolver", "serve", "auth", "--config", str(site.config)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until_answers(site.address, site.port, site.zone, proc, log, timeout=30)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return Running(site, proc, log)


def stop(running: Running) -> None:
    if running.proc.poll() is None:
        running.proc.terminate()
        try:
            running.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            running.proc.kill()
            running.proc.wait(timeout=5)


@contextlib.contextmanager
def serve(site: Site) -> Iterator[Running]:
    running = start(site)
    try:
        yield running
    finally:
        stop(running)


def export(site: Site, out: Path) -> Path:
    """`cid zone export` of the site's zone into ``out``."""
    cid("zone", "export", site.zone, "--config", str(site.config), "-o", str(out), check=True)
    return out


def verify(path: Path) -> str:
    """`cid zone verify` of a file: its output (asserting "ok")."""
    proc = cid("zone", "verify", str(path))
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
    return proc.stdout


def until(check, what: str, timeout: float = 10.0, interval: float = 0.1):
    """Poll ``check`` (bounded) until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


__all__ = ["NARROW", "PROV", "Running", "Site", "ZONE", "build", "cid", "export", "serve", "start", "stop",
           "until", "verify"]


class InProcess:
    """Our primary in this process, its clock injected (``open_primary`` + ``AuthServer`` on
    ``address``, an ephemeral port): every zone of ``config`` started, and with ``poke`` its
    upkeep run once at start."""

    def __init__(self, config: Path, clock, address: str, *, poke: bool = False):
        from resolver.auth import authconfig
        self.config = authconfig.load(config)
        self.clock = clock
        self.address = address
        self.poke = poke

    async def __aenter__(self):
        from resolver.auth import livesetup
        from resolver.auth.server import AuthServer
        self.primary = livesetup.open_primary(self.config, clock=self.clock)
        self.server = AuthServer(self.primary.store, [(self.address, 0)], primary=self.primary)
        await self.server.start()
        self.port = self.server.addresses[0][1]
        for live in self.primary.zones.values():
            live.start()
            if self.poke:
                await live.maintenance.poke()
        return self

    async def __aexit__(self, *exc):
        await self.server.close()
        for live in self.primary.zones.values():
            live.close()
