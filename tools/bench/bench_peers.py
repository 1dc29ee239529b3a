"""Peer servers configured for benchmarking (tests/support/peer_servers configures them for tests).

- ``unbound``: validating, with remote control on a unix socket so its caches can be flushed
  between cold samples (the test helper has control off, and its readiness probe queries the stub
  zone, which would warm the cache we want cold).
- ``nsd``: with response rate limiting off (Debian's NSD drops answers past 200 qps per source by
  default — right for the Internet, wrong for a load generator on one address).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import dns.exception
import dns.message
import dns.query

import hierarchy  # noqa: F401  (puts tests/ on sys.path)
from support.peer_servers import wait_until_answers
from support.peers import require


class Unbound:
    def __init__(self, conf: Path, address: str, port: int):
        self.conf, self.address, self.port = conf, address, port

    def control(self, *args: str) -> str:
        proc = subprocess.run([require("unbound-control"), "-c", str(self.conf), *args],
                              capture_output=True, text=True, timeout=10)
        if proc.returncode != 0:
            raise RuntimeError(f"unbound-control {' '.join(args)}: {proc.stdout}{proc.stderr}")
        return proc.stdout

    def flush(self, zone: str) -> None:
        """Forget everything at or below ``zone``: RRsets, messages and validated keys
        (flush_zone), plus server RTTs (flush_infra), so the next lookup is as cold as a
        freshly made Resolver of ours."""
        self.control("flush_zone", zone)
        self.control("flush_infra", "all")


@contextlib.contextmanager
def _process(args: list[str], log: Path) -> Iterator[subprocess.Popen]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextlib.contextmanager
def nsd(workdir: Path, address: str, port: int, zones: Mapping[str, Path]) -> Iterator[None]:
    """NSD, one server process, serving signed zone files on address:port, RRL off."""
    workdir.mkdir(parents=True, exist_ok=True)
    zone_blocks = "".join(f"zone:\n  name: \"{name}\"\n  zonefile: \"{path}\"\n"
                          f"  rrl-whitelist: all\n" for name, path in zones.items())
    conf = workdir / "nsd.conf"
    conf.write_text(f"""server:
  ip-address: {address}@{port}
  port: {port}
  username: ""
  chroot: ""
  zonesdir: "{workdir}"
  pidfile: "{workdir}/nsd.pid"
  database: ""
  xfrdfile: "{workdir}/xfrd.state"
  zonelistfile: "{workdir}/zone.list"
  logfile: "{workdir}/nsd.log"
  server-count: 1
  verbosity: 1
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
{zone_blocks}""")
    log = workdir / "nsd.out"
    with _process([require("nsd"), "-d", "-c", str(conf)], log) as proc:
        wait_until_answers(address, port, next(iter(zones)), proc, log)
        yield


@contextlib.contextmanager
def unbound(workdir: Path, address: str, port: int, *, trust_anchor: Path,
            stubs: Mapping[str, str], threads: int = 1, extended_statistics: bool = False) -> Iterator[Unbound]:
    """Unbound with its defaults (QNAME minimisation, aggressive NSEC) plus what loopback needs;
    ``extended_statistics`` adds mem.cache.* to ``unbound-control stats`` (off: it costs per query)."""
    workdir.mkdir(parents=True, exist_ok=True)
    stub_blocks = "".join(f"stub-zone:\n  name: \"{n}\"\n  stub-addr: {a}\n" for n, a in stubs.items())
    conf = workdir / "unbound.conf"
    conf.write_text(f"""server:
  interface: {address}@{port}
  port: {port}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{workdir}"
  pidfile: "{workdir}/unbound.pid"
  use-syslog: no
  logfile: "{workdir}/unbound.log"
  verbosity: 1
  num-threads: {threads}
  do-ip6: no
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  module-config: "validator iterator"
  trust-anchor-file: "{trust_anchor}"
  extended-statistics: {"yes" if extended_statistics else "no"}
remote-control:
  control-enable: yes
  control-interface: "{workdir}/unbound.ctl"
  control-use-cert: no
{stub_blocks}""")
    check = subprocess.run([require("unbound-checkconf"), str(conf)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"unbound-checkconf: {check.stdout}{check.stderr}")
    log = workdir / "unbound.out"
    with _process([require("unbound"), "-d", "-c", str(conf)], log) as proc:
        # Ready when it answers id.server CH TXT: a probe that touches no zone under test.
        probe = dns.message.make_query("id.server.", "TXT", "CH")
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"unbound exited {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
            try:
                dns.query.udp(probe, address, port=port, timeout=0.3)
                break
            except (dns.exception.Timeout, OSError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"unbound not answering on {address}@{port}") from None
                time.sleep(0.1)
        yield Unbound(conf, address, port)
