"""Zones signed with NSEC3 by BIND (``dnssec-keygen``, ``dnssec-signzone -3``), with every shape
the NSEC3 proofs of RFC 5155 §7.2 distinguish, and a checker of those proofs built on dnspython's
``dns.dnssec.nsec3_hash`` (an implementation independent of ``resolver.auth.nsec3``).

    @            SOA, NS, DNSKEY, NSEC3PARAM
    pool-7       A, AAAA, SVCB, CAPS (written TYPE65380 \\# ... for BIND)
    alias        CNAME pool-7
    a.b.c        TXT (so b.c and c are empty non-terminals)
    *.w, *.wc    wildcard TXT, wildcard CNAME (w and wc are empty non-terminals)
    sec          signed delegation: NS + DS, glue
    unsigned     unsigned delegation (NS, glue)
    x.ent        unsigned delegation below an empty non-terminal (with opt-out, ``ent`` exists
                 only because of it, so it has no NSEC3: RFC 5155 §7.1)
    far          unsigned delegation to an out-of-zone server
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import dns.dnssec
import dns.message
import dns.name
import dns.rdata
import dns.rdatatype
import dns.rrset

import resolver  # noqa: F401  (registers CAPS/LOAD)

from .peers import run

N = dns.name.from_text
# canonical msgpack {"accel_count": 8, "accel_kind": "gpu"}
CAPS_HEX = "82ab616363656c5f636f756e7408aa616363656c5f6b696e64a3677075"

ZONE_TEMPLATE = """$ORIGIN {origin}
$TTL 3600
@        SOA  ns1 hostmaster 2026112501 7200 900 1209600 300
@        NS   ns1
ns1      A    127.0.60.1
pool-7   300 A    192.0.2.7
pool-7   AAAA 2001:db8::7
pool-7   SVCB 1 . alpn=h2 port=8443
pool-7   TYPE65380 \\# 29 {caps}
alias    CNAME pool-7
a.b.c    TXT  "deep"
*.w      TXT  "wild"
*.wc     CNAME pool-7
sec      NS   ns.sec
sec      DS   12345 15 2 0102030405060708091011121314151617181920212223242526272829303132
ns.sec   A    127.0.60.2
unsigned NS   ns.unsigned
ns.unsigned A 127.0.60.3
x.ent    NS   ns.x.ent
ns.x.ent A    127.0.60.4
far      NS   ns.elsewhere.example.
"""


@dataclass
class SignedZone:
    origin: dns.name.Name
    path: Path  # signed master file, as dnssec-signzone wrote it
    unsigned: Path
    keydir: Path
    dnskey: dns.rrset.RRset
    anchors: Path  # BIND trust-anchors clause for delv -a
    opt_out: bool


def zone_text(origin: str) -> str:
    return ZONE_TEMPLATE.format(origin=origin, caps=CAPS_HEX)


def bind_sign(directory: Path, origin: str, *, opt_out: bool = False, salt: str = "-",
              iterations: int = 0, text: str | None = None) -> SignedZone:
    """Sign ``text`` (default: the zone above) for ``origin`` with a fresh Ed25519 CSK made by
    dnssec-keygen, NSEC3 with the given salt and iterations, opt-out (``-A``) if asked."""
    directory.mkdir(parents=True, exist_ok=True)
    keydir = directory / f"keys-{origin.rstrip('.')}"
    keydir.mkdir(exist_ok=True)
    if not any(keydir.glob("*.key")):
        run(["dnssec-keygen", "-q", "-K", str(keydir), "-a", "ED25519", "-f", "KSK", origin])
    unsigned = directory / f"{origin}zone"
    unsigned.write_text(text if text is not None else zone_text(origin))
    signed = directory / f"{origin}{'optout.' if opt_out else ''}signed"
    run(["dnssec-signzone", "-S", "-K", str(keydir), "-z", "-3", salt, "-H", str(iterations),
         *(["-A"] if opt_out else []), "-o", origin, "-f", str(signed), str(unsigned)])
    keyfile = next(keydir.glob("*.key"))
    key_line = next(line for line in keyfile.read_text().splitlines()
                    if line and not line.startswith(";"))
    dnskey = dns.rrset.from_text(N(origin), 3600, "IN", "DNSKEY", key_line.split("DNSKEY", 1)[1])
    rd = dnskey[0]
    anchors = directory / f"{origin}anchors"
    anchors.write_text("trust-anchors {\n"
                       f'  "{origin}" static-key {rd.flags} {rd.protocol} {rd.algorithm} '
                       f'"{dns.rdata._base64ify(rd.key, 0)}";\n'
                       "};\n")
    return SignedZone(N(origin), signed, unsigned, keydir, dnskey, anchors, opt_out)


# --- an independent checker of NSEC3 proofs (RFC 5155 §8), for tests -------------------------

def nsec3s(section: list[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
    return [r for r in section if r.rdtype == dns.rdatatype.NSEC3]


def oracle_hash(name: dns.name.Name | str, rd) -> str:
    return dns.dnssec.nsec3_hash(name, rd.salt, rd.iterations, rd.algorithm).lower()


def matches(rrset: dns.rrset.RRset, name: dns.name.Name | str) -> bool:
    return rrset.name.labels[0].decode().lower() == oracle_hash(name, rrset[0])


def covers(rrset: dns.rrset.RRset, name: dns.name.Name | str) -> bool:
    """Owner hash < hash(name) < next hash, the last NSEC3 wrapping around (RFC 5155 §8.3)."""
    rd = rrset[0]
    owner = rrset.name.labels[0].decode().lower()
    following = base64.b32hexencode(rd.next).decode().rstrip("=").lower()
    value = oracle_hash(name, rd)
    if owner < following:
        return owner < value < following
    return value > owner or value < following  # the last record of the chain


def matching(response: dns.message.Message, name: str) -> dns.rrset.RRset | None:
    return next((r for r in nsec3s(response.authority) if matches(r, name)), None)


def covering(response: dns.message.Message, name: str) -> dns.rrset.RRset | None:
    return next((r for r in nsec3s(response.authority) if covers(r, name)), None)
