"""Peer primaries that take signed updates and sign online: BIND (update-policy, dnssec-policy)
and Knot (update ACL, dnssec-signing), for the registration client's interop tests."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

from .peer_servers import knot_head, named_options, process, wait_until_answers
from .peers import require

SECRET = "ZOExvQuEZSD+4qOkL8jLEtwnVEVdyVlaivW3KaEIkIE="
NARROW_SECRET = "bmFycm93LWtleS1zZWNyZXQtZm9yLXRlc3RzLW9ubHk="


@dataclass(frozen=True)
class Primary:
    kind: str  # "bind" | "knot"
    zone: str
    address: str
    port: int
    key: str  # NAME:SECRET, may update anything in the zone
    narrow_key: str  # NAME:SECRET, may update only only.<zone>
    workdir: Path

    @property
    def server(self) -> str:
        return f"{self.address}:{self.port}"

    def trust_anchor(self) -> Path:
        """DS of the zone's KSK/CSK as the primary serves it now (the test trusts what it set up)."""
        import dns.dnssec
        response = dns.query.tcp(dns.message.make_query(self.zone, "DNSKEY"), self.address, port=self.port, timeout=3)
        keys = [rd for rrset in response.answer if rrset.rdtype == dns.rdatatype.DNSKEY for rd in rrset
                if rd.flags & 1]
        path = self.workdir / "anchor.ds"
        path.write_text("".join(f"{self.zone} 3600 IN DS {dns.dnssec.make_ds(self.zone, k, 'SHA256')}\n"
                                for k in keys))
        return path


def _zone_text(zone: str, address: str) -> str:
    return (f"$TTL 300\n{zone} IN SOA ns1.{zone} hostmaster.{zone} 1 3600 600 86400 60\n"
            f"{zone} IN NS ns1.{zone}\nns1.{zone} IN A {address}\n")


def _wait_signed(address: str, port: int, zone: str, proc: subprocess.Popen, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    query = dns.message.make_query(zone, "SOA", want_dnssec=True)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited {proc.returncode}")
        try:
            response = dns.query.udp(query, address, port=port, timeout=0.5)
            if any(r.rdtype == dns.rdatatype.RRSIG for r in response.answer):
                return
        except (dns.exception.Timeout, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{zone} not signed on {address}:{port}")


@contextlib.contextmanager
def bind(workdir: Path, address: str, port: int, zone: str = "ex.cid.") -> Iterator[Primary]:
    """named: a dynamic zone signed by ``dnssec-policy`` (Ed25519 CSK, NSEC), updates by key
    (``update-policy``: ``upd`` anywhere in the zone, ``narrow`` only at ``only.<zone>``).
    named listens only on configured addresses: the caller adds ``address`` to lo."""
    workdir.mkdir(parents=True, exist_ok=True)
    bare = zone.rstrip(".")
    (workdir / "zone.db").write_text(_zone_text(zone, address))
    conf = workdir / "named.conf"
    conf.write_text(f"""key "upd" {{ algorithm hmac-sha256; secret "{SECRET}"; }};
key "narrow" {{ algorithm hmac-sha256; secret "{NARROW_SECRET}"; }};
""" + named_options(workdir, address, port) + f"""dnssec-policy "ed" {{ keys {{ csk lifetime unlimited algorithm ed25519; }}; }};
zone "{bare}" {{
  type primary; file "{workdir}/zone.db"; key-directory "{workdir}";
  dnssec-policy "ed"; inline-signing no;
  update-policy {{ grant upd zonesub ANY; grant narrow name only.{zone} ANY; }};
}};
""")
    check = subprocess.run([require("named-checkconf"), str(conf)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"named-checkconf: {check.stdout}{check.stderr}")
    log = workdir / "named.out"
    with process([require("named"), "-g", "-c", str(conf)], log) as proc:
        wait_until_answers(address, port, zone, proc, log)
        _wait_signed(address, port, zone, proc)
        yield Primary("bind", zone, address, port, f"upd:{SECRET}", f"narrow:{NARROW_SECRET}", workdir)


@contextlib.contextmanager
def knot(workdir: Path, address: str, port: int, zone: str = "ex.cid.") -> Iterator[Primary]:
    """knotd: ``dnssec-signing: on`` (Ed25519, NSEC), an ACL ``action: update`` per key (``narrow``
    only for ``only.<zone>`` by ``update-owner``), journal on."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "db").mkdir(exist_ok=True)
    (workdir / "zone.db").write_text(_zone_text(zone, address))
    conf = workdir / "knot.conf"
    conf.write_text(knot_head(workdir, address, port) + f"""key:
  - id: upd
    algorithm: hmac-sha256
    secret: {SECRET}
  - id: narrow
    algorithm: hmac-sha256
    secret: {NARROW_SECRET}
acl:
  - id: update
    key: upd
    action: update
  - id: narrow
    key: narrow
    action: update
    update-owner: name
    update-owner-match: equal
    update-owner-name: [ only.{zone} ]
policy:
  - id: ed
    algorithm: ed25519
    nsec3: off
template:
  - id: default
    storage: "{workdir}"
    zonefile-sync: -1
    zonefile-load: difference-no-serial
    journal-content: all
zone:
  - domain: {zone}
    file: "{workdir}/zone.db"
    dnssec-signing: on
    dnssec-policy: ed
    acl: [ update, narrow ]
""")
    log = workdir / "knot.out"
    with process([require("knotd"), "-c", str(conf)], log) as proc:
        wait_until_answers(address, port, zone, proc, log)
        _wait_signed(address, port, zone, proc)
        yield Primary("knot", zone, address, port, f"upd:{SECRET}", f"narrow:{NARROW_SECRET}", workdir)
