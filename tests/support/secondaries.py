"""NSD, Knot and BIND as secondaries of our primary (issue 9 replication tests): TSIG on the
transfers and on the NOTIFYs, loopback only. Each is a context manager yielding once it answers,
and transfers from its own address (so the primary's log names who took what).

``primary_site`` is our primary set up for them (``allow_transfer`` the key, ``notify`` list);
``zone_records`` and ``file_records`` put a transferred zone and a master file in one comparable
form."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dns.query
import dns.tsigkeyring
import dns.xfr
import dns.zone

from . import live_primary as lp
from .peer_servers import knot_head, named_options, process, wait_until_answers
from .peers import require

XFR_KEY = "xfr."
XFR_SECRET = "eGZyLWtleS1zZWNyZXQtZm9yLXRyYW5zZmVycy0xMjM="
XFR_RING = dns.tsigkeyring.from_text({XFR_KEY: XFR_SECRET})
Record = tuple  # (relative owner, rdtype, covers, ttl, rdata text)


def primary_site(directory: Path, address: str, port: int, notify: tuple[str, ...] = (),
                 allow_transfer: tuple[str, ...] = (XFR_KEY,), notify_port: int | None = None,
                 static_names: int = 40) -> lp.Site:
    """``live_primary.build`` plus the transfer key, ``allow_transfer`` and NOTIFY (signed with
    the key) to ``notify`` addresses on ``notify_port`` (default: ``port``); ``static_names``
    A records besides."""
    # Enough static names that one registration's IXFR is smaller than the zone (else the whole
    # zone is the shorter answer, RFC 1995 §4, and IXFR would not be exercised).
    static = "".join(f"static-{i}.{lp.ZONE} 300 IN A 127.0.{151 + i // 250}.{i % 250}\n"
                     for i in range(static_names))
    site = lp.build(directory, address, port, min_lease=1, extra_records=static)
    targets = ", ".join(f'"{t}:{notify_port or port} key {XFR_KEY}"' for t in notify)
    acl = ", ".join(f'"{entry}"' for entry in allow_transfer)
    text = site.config.read_text().replace(
        'keys = "keys"\n', f'keys = "keys"\nallow_transfer = [{acl}]\nnotify = [{targets}]\n', 1)
    text += f'\n[[key]]\nname = "{XFR_KEY}"\nsecret = "{XFR_SECRET}"\n'
    site.config.write_text(text)
    return site


def _records(zone: dns.zone.Zone) -> set[Record]:
    return {(n, r.rdtype, r.covers, r.ttl, rd.to_text()) for n, node in zone.nodes.items()
            for r in node.rdatasets for rd in r}


def zone_records(address: str, port: int, keyring=XFR_RING, keyname: str | None = XFR_KEY,
                 zone: str = lp.ZONE, **query) -> set[Record]:
    """An AXFR (or with ``serial=N``, ``rdtype=IXFR``: an IXFR) of ``zone``, as records;
    raises what dnspython raises when the transfer fails."""
    target = dns.zone.Zone(zone)
    message, _ = dns.xfr.make_query(target, keyring=keyring, keyname=keyname if keyring else None, **query)
    dns.query.inbound_xfr(address, target, message, port=port, timeout=5)
    return _records(target)


def file_records(path: Path, zone: str = lp.ZONE) -> set[Record]:
    """A master file (``cid zone export``'s output) as records."""
    return _records(dns.zone.from_file(str(path), zone))


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
  outgoing-interface: {address}
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
    (workdir / "db").mkdir(parents=True, exist_ok=True)  # Knot's journal: IXFRs in are stored there
    conf = workdir / "knot.conf"
    conf.write_text(knot_head(workdir, address, port) + f"""key:
  - id: {XFR_KEY}
    algorithm: hmac-sha256
    secret: {XFR_SECRET}
remote:
  - id: primary
    address: {primary}@{primary_port}
    via: {address}
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


@contextlib.contextmanager
def knot_primary(workdir: Path, address: str, port: int, zone: str, file: Path) -> Iterator[Path]:
    """Knot as a primary of ``file`` for differential tests: transfers with the key, and a
    journal of the differences each reload of the file brings (so it answers IXFR); yields the
    config for ``knotc -c``."""
    (workdir / "db").mkdir(parents=True, exist_ok=True)
    conf = workdir / "knot.conf"
    conf.write_text(knot_head(workdir, address, port) + f"""key:
  - id: {XFR_KEY}
    algorithm: hmac-sha256
    secret: {XFR_SECRET}
acl:
  - id: transfer_out
    key: {XFR_KEY}
    action: transfer
template:
  - id: default
    storage: "{workdir}"
    zonefile-sync: -1
    zonefile-load: difference
    journal-content: changes
    semantic-checks: off
zone:
  - domain: {zone}
    file: "{file}"
    acl: [transfer_out]
""")
    log = workdir / "knot.out"
    with process([require("knotd"), "-c", str(conf)], log) as proc:
        wait_until_answers(address, port, zone, proc, log, timeout=20)
        yield conf
