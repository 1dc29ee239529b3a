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
                       timeout: float = 15.0, rdtype: str = "SOA", rdclass: str = "IN") -> None:
    """Poll (SOA by default) until the server gives any answer but REFUSED."""
    deadline = time.monotonic() + timeout
    query = dns.message.make_query(name, rdtype, rdclass)
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
def process(args: list[str], log: Path, grace: float = 5.0) -> Iterator[subprocess.Popen]:
    """Run ``args`` with output appended to ``log``; on exit SIGTERM, and SIGKILL after ``grace``
    seconds."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def named_options(workdir: Path, address: str, port: int, extra: str = "") -> str:
    """named.conf's ``options`` (an authoritative-only named on ``address``, files in
    ``workdir``; ``extra`` lines added inside) and an empty ``controls``."""
    return f"""options {{
  directory "{workdir}";
  pid-file "{workdir}/named.pid";
  session-keyfile "{workdir}/session.key";
  managed-keys-directory "{workdir}";
  listen-on port {port} {{ {address}; }};
  listen-on-v6 {{ none; }};
  recursion no;
  dnssec-validation no;
  notify no;
{extra}}};
controls {{ }};
"""


def knot_head(workdir: Path, address: str, port: int) -> str:
    """knot.conf's ``server``, ``log`` (stderr) and ``database`` sections."""
    return f"""server:
  listen: {address}@{port}
  rundir: "{workdir}"
  user: root
log:
  - target: stderr
    any: info
database:
  storage: "{workdir}/db"
"""


@contextlib.contextmanager
def nsd(workdir: Path, address: str, port: int, zones: Mapping[str, Path], *,
        control: bool = False) -> Iterator[Path]:
    """NSD, one server process, serving signed zone files on address:port; yields its config
    file. With ``control``, remote control on a unix socket (``nsd-control -c CONF ...``).

    Response rate limiting is off: Debian's NSD drops answers past 200 qps from one source,
    right for the Internet, wrong for tests and load generators on one loopback address.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    zone_blocks = "".join(f"zone:\n  name: \"{name}\"\n  zonefile: \"{path}\"\n"
                          f"  rrl-whitelist: all\n" for name, path in zones.items())
    remote_control = (f"  control-enable: yes\n  control-interface: \"{workdir}/nsd.ctl\"\n" if control
                      else "  control-enable: no\n")
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
{remote_control}{zone_blocks}""")
    log = workdir / "nsd.out"
    with process([require("nsd"), "-d", "-c", str(conf)], log) as proc:
        wait_until_answers(address, port, next(iter(zones)), proc, log)
        yield conf


@contextlib.contextmanager
def named(workdir: Path, address: str, port: int, zones: Mapping[str, Path], *,
          check_zones: bool = True, ready: str | None = None) -> Iterator[None]:
    """BIND's named as a primary for the given (signed) zone files, recursion off.

    The config is checked with ``named-checkconf``, and with ``check_zones`` (the default) each
    zone file too (``-z``); without it zones may fail to load (named answers SERVFAIL for them).
    Ready once ``ready`` (by default the first zone) answers: name one that loads.

    named only listens on addresses configured on an interface: 127.0.0.1 always is; add others
    with ``ip addr add 127.0.x.y/32 dev lo`` first.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    zone_blocks = "".join(f'zone "{name}" {{ type primary; file "{path}"; }};\n'
                          for name, path in zones.items())
    conf = workdir / "named.conf"
    conf.write_text(named_options(workdir, address, port) + zone_blocks)
    check = subprocess.run([require("named-checkconf"), *(["-z"] if check_zones else []), str(conf)],
                           capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"named-checkconf: {check.stdout}{check.stderr}")
    log = workdir / "named.out"
    with process([require("named"), "-g", "-c", str(conf)], log) as proc:
        wait_until_answers(address, port, ready or next(iter(zones)), proc, log)
        yield


@contextlib.contextmanager
def knot(workdir: Path, address: str, port: int, zones: Mapping[str, Path]) -> Iterator[None]:
    """Knot DNS serving the given zone files (already signed, not re-signed by Knot)."""
    workdir.mkdir(parents=True, exist_ok=True)
    zone_list = "".join(f"  - domain: {name}\n    file: \"{path}\"\n" for name, path in zones.items())
    conf = workdir / "knot.conf"
    conf.write_text(knot_head(workdir, address, port) + f"""template:
  - id: default
    storage: "{workdir}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
{zone_list}""")
    log = workdir / "knot.out"
    with process([require("knotd"), "-c", str(conf)], log) as proc:
        wait_until_answers(address, port, next(iter(zones)), proc, log)
        yield


class Unbound:
    """A running Unbound with remote control on a unix socket (to flush caches between samples)."""

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
        (flush_zone), plus server RTTs (flush_infra), so the next lookup is fully cold."""
        self.control("flush_zone", zone)
        self.control("flush_infra", "all")


@contextlib.contextmanager
def unbound(workdir: Path, address: str, port: int, *, trust_anchor: Path,
            stubs: Mapping[str, str | list[str]] | None = None,
            forwards: Mapping[str, str | list[str]] | None = None,
            threads: int = 1, extended_statistics: bool = False) -> Iterator[Unbound]:
    """Validating Unbound with stub zones (``{"cid.": ["127.0.10.1@53"]}``), forward zones (same
    form: Unbound sends queries with RD to those servers and validates what they return) and a
    trust anchor file.

    Its defaults otherwise (QNAME minimisation, aggressive NSEC). ``extended_statistics`` adds
    mem.cache.* to ``unbound-control stats`` (off by default: it costs per query).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    zone_blocks = "".join(
        f"{kind}-zone:\n  name: \"{name}\"\n"
        + "".join(f"  {kind}-addr: {a}\n" for a in ([addrs] if isinstance(addrs, str) else addrs))
        for kind, zones in (("stub", stubs), ("forward", forwards)) for name, addrs in (zones or {}).items()
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
  logfile: "{workdir}/unbound.log"
  verbosity: 1
  num-threads: {threads}
  do-ip6: no
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  module-config: "validator iterator"
  trust-anchor-file: "{trust_anchor}"
  val-log-level: 2
  extended-statistics: {"yes" if extended_statistics else "no"}
remote-control:
  control-enable: yes
  control-interface: "{workdir}/unbound.ctl"
  control-use-cert: no
{zone_blocks}""")
    check = subprocess.run([require("unbound-checkconf"), str(conf)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"unbound-checkconf: {check.stdout}{check.stderr}")
    log = workdir / "unbound.out"
    with process([require("unbound"), "-d", "-c", str(conf)], log) as proc:
        # Ready when it answers id.server CH TXT: a probe that warms no cache of the zones under test.
        wait_until_answers(address, port, "id.server.", proc, workdir / "unbound.log",
                           rdtype="TXT", rdclass="CH")
        yield Unbound(conf, address, port)
