"""Signed test zones for the authoritative server, built with dnspython directly.

``ex.cid.`` is a signed parent with every shape the answering code must handle (CNAME chains,
wildcards, empty non-terminals, a signed and an unsigned delegation, a large RRset);
``sub.ex.cid.`` is its signed child. Keys are fresh Ed25519 keys per call.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdatatype
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ed25519

import resolver  # noqa: F401  (registers CAPS/LOAD)

from .net import wait_for_tcp

PARENT = dns.name.from_text("ex.cid.")
CHILD = dns.name.from_text("sub.ex.cid.")

BIG_TXT = "\n".join(f'big TXT "record {i:03d} {"x" * 60}"' for i in range(40))

PARENT_TEXT = f"""
$ORIGIN ex.cid.
$TTL 3600
@        SOA  ns1 hostmaster 2026112501 7200 900 1209600 300
@        NS   ns1
@        NS   ns2.other.net.
ns1      A    127.0.0.1
ns1      AAAA ::1
pool-7   SVCB 1 . alpn=h2 port=8443
pool-7   A    192.0.2.7
pool-7   AAAA 2001:db8::7
pool-7   CAPS accel_kind=gpu accel_count=8 accel_model=nvidia-h100-sxm5-80gb
pool-7 30 LOAD accel_free=3 util=0.62
svc      SVCB 1 pool-7
alias    CNAME pool-7
chain    CNAME alias
outside  CNAME www.example.org.
deadend  CNAME nothere
loop1    CNAME loop2
loop2    CNAME loop1
*.w      TXT  "wild"
*.wc     CNAME pool-7
a.b.c    TXT  "deep"
sub      NS   ns.sub
ns.sub   A    127.0.0.2
unsigned NS   ns.unsigned
unsigned NS   ns.elsewhere.net.
ns.unsigned A 127.0.0.3
{BIG_TXT}
"""

CHILD_TEXT = """
$ORIGIN sub.ex.cid.
$TTL 3600
@        SOA  ns hostmaster 1 7200 900 1209600 600
@        NS   ns
ns       A    127.0.0.2
node-1   A    192.0.2.11
"""


@dataclass
class SignedZones:
    parent: dns.zone.Zone
    child: dns.zone.Zone
    parent_key: dns.dnssec.DNSKEY
    child_key: dns.dnssec.DNSKEY


def sign(zone: dns.zone.Zone) -> dns.rdtypes.ANY.DNSKEY.DNSKEY:
    """Sign ``zone`` in place with a fresh Ed25519 CSK valid from an hour ago for two days."""
    private = ed25519.Ed25519PrivateKey.generate()
    dnskey = dns.dnssec.make_dnskey(private.public_key(), dns.dnssec.Algorithm.ED25519, flags=257)
    now = int(time.time())
    dns.dnssec.sign_zone(
        zone, keys=[(private, dnskey)], inception=now - 3600, expiration=now + 2 * 86400,
    )
    return dnskey


def build() -> SignedZones:
    child = dns.zone.from_text(CHILD_TEXT, relativize=False)
    child_key = sign(child)
    parent = dns.zone.from_text(PARENT_TEXT, relativize=False)
    ds = dns.dnssec.make_ds(CHILD, child_key, "SHA256")
    with parent.writer() as txn:
        txn.add(CHILD, 3600, ds)
    parent_key = sign(parent)
    return SignedZones(parent, child, parent_key, child_key)


def unsigned_parent() -> dns.zone.Zone:
    return dns.zone.from_text(PARENT_TEXT, relativize=False)


def write_files(zones: SignedZones, directory: Path) -> dict[str, Path]:
    """Master files of both zones, plus trust anchors for the parent: master-file DS and
    DNSKEY, and a BIND ``trust-anchors`` clause for ``delv -a``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "parent": directory / "ex.cid.zone",
        "child": directory / "sub.ex.cid.zone",
        "ds": directory / "ex.cid.ds",
        "delv": directory / "ex.cid.anchors",
    }
    paths["parent"].write_text(zones.parent.to_text(relativize=False))
    paths["child"].write_text(zones.child.to_text(relativize=False))
    ds = dns.dnssec.make_ds(PARENT, zones.parent_key, "SHA256")
    paths["ds"].write_text(f"{PARENT} 3600 IN DS {ds}\n")
    key = zones.parent_key
    paths["delv"].write_text(
        "trust-anchors {\n"
        f'  "{PARENT}" static-key {key.flags} {key.protocol} {key.algorithm} '
        f'"{dns.rdata._base64ify(key.key, 0)}";\n'
        "};\n"
    )
    return paths


class ServedZones:
    """``cid serve auth`` as a subprocess on 127.0.0.1:port, serving the given files."""

    def __init__(self, files: list[Path], port: int, log: Path):
        self.files, self.port, self.log = files, port, log
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ServedZones:
        args = [sys.executable, "-m", "resolver", "serve", "auth",
                "--listen", f"127.0.0.1:{self.port}"]
        for path in self.files:
            args += ["--zone", str(path)]
        self._log_file = self.log.open("w")
        self.proc = subprocess.Popen(args, stdout=self._log_file, stderr=subprocess.STDOUT)
        try:
            wait_for_tcp("127.0.0.1", self.port, timeout=15)
        except TimeoutError:
            self.__exit__()
            raise AssertionError(f"cid serve auth did not start:\n{self.log.read_text()}")
        return self

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()
        return self.proc.returncode

    def __exit__(self, *exc_info) -> None:
        self.stop()
