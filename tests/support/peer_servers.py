"""Start peer DNS servers (NSD, Knot, Unbound) on loopback with configs in a temporary directory.

Each is a context manager yielding once the server answers; the process is killed on exit and
its log is attached to the failure when it does not come up.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import dns.message
import dns.query
import dns.rcode

from .peers import require


def wait_until_answers(address: str, port: int, name: str, proc: subprocess.Popen, log: Path,
                       timeout: float = 15.0) -> None:
    """Poll with a SOA query until the server responds with anything but a dropped packet."""
    deadline = time.monotonic() + timeout
    query = dns.message.make_query(name, "SOA")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited {proc.returncode}:\n{_tail(log)}")
        try:
            response = dns.query.udp(query, address, port=port, timeout=0.3)
            if response.rcode() != dns.rcode.REFUSED:
                return
        except (dns.exception.Timeout, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{proc.args[0]} not answering on {address}:{port}:\n{_tail(log)}")


def _tail(log: Path) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    except OSError:
        return "(no log)"


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
    """NSD serving the given zone files (already signed) on address:port."""
    workdir.mkdir(parents=True, exist_ok=True)
    zone_blocks = "".join(f"zone:\n  name: \"{name}\"\n  zonefile: \"{path}\"\n"
                          for name, path in zones.items())
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
remote-control:
  control-enable: no
{zone_blocks}""")
    log = workdir / "nsd.out"
    with _process([require("nsd"), "-d", "-c", str(conf)], log) as proc:
        wait_until_answers(address, port, next(iter(zones)), proc, log)
        yield


@contextlib.contextmanager
def knot(workdir: Path, address: str, port: int, zones: Mapping[str, Path]) -> Iterator[None]:
    """Knot DNS serving the given zone files (already signed, not re-signed by Knot)."""
    workdir.mkdir(parents=True, exist_ok=True)
    zone_list = "".join(f"  - domain: {name}\n    file: \"{path}\"\n" for name, path in zones.items())
    conf = workdir / "knot.conf"
    conf.write_text(f"""server:
  listen: {address}@{port}
  rundir: "{workdir}"
  user: root
log:
  - target: stderr
    any: info
database:
  storage: "{workdir}/db"
template:
  - id: default
    storage: "{workdir}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
{zone_list}""")
    log = workdir / "knot.out"
    with _process([require("knotd"), "-c", str(conf)], log) as proc:
        wait_until_answers(address, port, next(iter(zones)), proc, log)
        yield


@contextlib.contextmanager
def unbound(workdir: Path, address: str, port: int, *, trust_anchor: Path,
            stubs: Mapping[str, list[str]]) -> Iterator[None]:
    """Validating Unbound with stub zones (``{"cid.": ["127.0.10.1@53"]}``) and a trust anchor file."""
    workdir.mkdir(parents=True, exist_ok=True)
    stub_blocks = "".join(
        f"stub-zone:\n  name: \"{name}\"\n" + "".join(f"  stub-addr: {a}\n" for a in addrs)
        for name, addrs in stubs.items()
    )
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
  logfile: ""
  verbosity: 1
  num-threads: 1
  do-ip6: no
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  module-config: "validator iterator"
  trust-anchor-file: "{trust_anchor}"
  val-log-level: 2
  harden-dnssec-stripped: yes
  qname-minimisation: no
remote-control:
  control-enable: no
{stub_blocks}""")
    log = workdir / "unbound.out"
    require("unbound-checkconf")
    check = subprocess.run([require("unbound-checkconf"), str(conf)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"unbound-checkconf: {check.stdout}{check.stderr}")
    with _process([require("unbound"), "-d", "-c", str(conf)], log) as proc:
        wait_until_answers(address, port, next(iter(stubs)), proc, log)
        yield
