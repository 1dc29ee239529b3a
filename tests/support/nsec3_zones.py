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
import time
from dataclasses import dataclass
from pathlib import Path

import dns.dnssec
import dns.message
import dns.name
import dns.rdata
import dns.rdatatype
import dns.rdtypes.util
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
    # -d: the dsset- file goes to the directory, not the current one.
    run(["dnssec-signzone", "-S", "-K", str(keydir), "-d", str(directory), "-z", "-3", salt,
         "-H", str(iterations), *(["-A"] if opt_out else []), "-o", origin, "-f", str(signed),
         str(unsigned)])
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


# --- breaking a signed NSEC3 zone on purpose, re-signing what changed -----------------------------
# With the zone's own key, so that each break is exactly the one intended (a changed NSEC3 with a
# stale signature would also fail on the signature).

def zone_key(signed: SignedZone):
    from resolver.auth.keys import load_zone_keys
    (key,) = load_zone_keys(signed.keydir, signed.origin)
    return key


def hashed_owner(zone, name: str) -> dns.name.Name:
    param = zone.get_rdataset(zone.origin, dns.rdatatype.NSEC3PARAM)[0]
    label = dns.dnssec.nsec3_hash(name, param.salt, param.iterations, param.algorithm)
    return dns.name.Name((label.encode(), *zone.origin.labels))


def resign(zone, owner: dns.name.Name, rdtype: int, key) -> None:
    rds = zone.get_rdataset(owner, rdtype)
    now = int(time.time())
    sig = dns.dnssec.sign(dns.rrset.from_rdata_list(owner, rds.ttl, list(rds)), key.private_key,
                          zone.origin, key.dnskey, inception=now - 3600, expiration=now + 10 * 86400)
    zone.delete_rdataset(owner, dns.rdatatype.RRSIG, rdtype)
    zone.find_rdataset(owner, dns.rdatatype.RRSIG, rdtype, create=True).add(sig, rds.ttl)


def nsec3_at(zone, owner: dns.name.Name):
    return zone.get_rdataset(owner, dns.rdatatype.NSEC3)[0]


def put_nsec3(zone, owner: dns.name.Name, rd, key) -> None:
    rds = zone.find_rdataset(owner, dns.rdatatype.NSEC3, create=True)
    ttl = rds.ttl or 300
    rds.clear()
    rds.add(rd, ttl)
    resign(zone, owner, dns.rdatatype.NSEC3, key)


def _digests(zone) -> list[tuple[bytes, dns.name.Name]]:
    return sorted((base64.b32hexdecode(name.labels[0].upper()), name) for name, node in zone.nodes.items()
                  if node.get_rdataset(zone.rdclass, dns.rdatatype.NSEC3) is not None)


def unlink(zone, owner: dns.name.Name, key) -> None:
    """Remove the NSEC3 at ``owner`` and point its predecessor past it: the chain stays closed."""
    entries = _digests(zone)
    i = [name for _, name in entries].index(owner)
    before = entries[i - 1][1]
    put_nsec3(zone, before, nsec3_at(zone, before).replace(next=nsec3_at(zone, owner).next), key)
    zone.delete_node(owner)


def splice(zone, owner: dns.name.Name, types: list[int], key) -> None:
    """Insert an NSEC3 at ``owner`` (with ``types``) into the chain, in hash order."""
    value = base64.b32hexdecode(owner.labels[0].upper())
    entries = _digests(zone)
    before = max((e for e in entries if e[0] < value), default=entries[-1])[1]
    previous = nsec3_at(zone, before)
    windows = dns.rdtypes.util.Bitmap.from_rdtypes(types).windows
    put_nsec3(zone, owner, previous.replace(windows=windows), key)  # inherits previous.next
    put_nsec3(zone, before, previous.replace(next=value), key)


def covering_owner(zone, name: str) -> dns.name.Name:
    param = zone.get_rdataset(zone.origin, dns.rdatatype.NSEC3PARAM)[0]
    value = base64.b32hexdecode(dns.dnssec.nsec3_hash(name, param.salt, param.iterations, 1))
    entries = _digests(zone)
    return max((e for e in entries if e[0] < value), default=entries[-1])[1]
