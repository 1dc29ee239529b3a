"""NSD, Knot and BIND as secondaries of our primary (issue 9 replication tests): TSIG on the
transfers and on the NOTIFYs, loopback only. Each is a context manager yielding once it answers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from .peer_servers import knot_head, named_options, process, wait_until_answers
from .peers import require

XFR_KEY = "xfr."
XFR_SECRET = "eGZyLWtleS1zZWNyZXQtZm9yLXRyYW5zZmVycy0xMjM="


@contextlib.contextmanager
def nsd(workdir: Path, address: str, port: int, zone: str, primary: str, primary_port: int) -> Iterator[Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "nsd.conf"
    conf.write_text(f"""server:
  ip-address: {address}@{port}
  username: ""
  chroot: ""
  zonesdir: "{workdir}"
  pidfile: "{workdir}/nsd.pid"
  database: ""
  xfrdfile: "{workdir}/xfrd.state"
  zonelistfile: "{workdir}/zone.list"
  logfile: "{workdir}/nsd.log"
  server-count: 1
  verbosity: 2
  rrl-ratelimit: 0
remote-control:
  control-enable: no
key:
  name: "{XFR_KEY}"
  algorithm: hmac-sha256
  secret: "{XFR_SECRET}"
zone:
  name: "{zone}"
  zonefile: "{workdir}/{zone}zone"
  request-xfr: {primary}@{primary_port} {XFR_KEY}
  allow-notify: {primary} {XFR_KEY}
  provide-xfr: 127.0.0.0/8 {XFR_KEY}
""")
    log = workdir / "nsd.out"
    with process([require("nsd"), "-d", "-c", str(conf)], log) as proc:
        wait_until_answers(address, port, zone, proc, log, timeout=20)
        yield workdir / "nsd.log"


@contextlib.contextmanager
def knot(workdir: Path, address: str, port: int, zone: str, primary: str, primary_port: int) -> Iterator[Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "knot.conf"
    conf.write_text(knot_head(workdir, address, port) + f"""key:
  - id: {XFR_KEY}
    algorithm: hmac-sha256
    secret: {XFR_SECRET}
remote:
  - id: primary
    address: {primary}@{primary_port}
    key: {XFR_KEY}
acl:
  - id: notify_from_primary
    address: {primary}
    key: {XFR_KEY}
    action: notify
  - id: transfer_out
    address: 127.0.0.0/8
    key: {XFR_KEY}
    action: transfer
template:
  - id: default
    storage: "{workdir}"
    zonefile-sync: -1
    journal-content: changes
zone:
  - domain: {zone}
    master: primary
    acl: [notify_from_primary, transfer_out]
""")
    log = workdir / "knot.out"
    with process([require("knotd"), "-c", str(conf)], log) as proc:
        wait_until_answers(address, port, zone, proc, log, timeout=20)
        yield log


@contextlib.contextmanager
def bind(workdir: Path, address: str, port: int, zone: str, primary: str, primary_port: int) -> Iterator[Path]:
    """named listens only on configured addresses: the caller adds ``address`` to lo."""
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "named.conf"
    conf.write_text(f"""key "{XFR_KEY}" {{ algorithm hmac-sha256; secret "{XFR_SECRET}"; }};
""" + named_options(workdir, address, port, f"""  transfer-source {address};
  notify-source {address};
  allow-transfer {{ key "{XFR_KEY}"; }};
""") + f"""zone "{zone}" {{
  type secondary;
  file "{workdir}/{zone}db";
  primaries {{ {primary} port {primary_port} key "{XFR_KEY}"; }};
  allow-notify {{ {primary}; }};
}};
""")
    log = workdir / "named.out"
    with process([require("named"), "-g", "-c", str(conf)], log) as proc:
        wait_until_answers(address, port, zone, proc, log, timeout=20)
        yield log
