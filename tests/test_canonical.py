"""resolver.dnssec.canonical against dnspython, the oracle: the signed data of an RRSIG
(``dns.dnssec._make_rrsig_signature_data``) and the DS digest (``dns.dnssec.make_ds``) must be the
same bytes, or both must fail, on real signed RRsets (our signer with Ed25519, ECDSA P-256 and
RSA/SHA-256 keys; a zone with upper-case names inside NS, MX, SOA, CNAME, SRV, PTR, DNAME and
NSEC RDATA and a wildcard) and on hostile copies: owners and signers in mixed case, labels
counts below, at and above the owner's, wildcard owners with the wrong count, relative names,
several records in any order, other TTLs and classes."""

from __future__ import annotations

import random

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest

import resolver  # noqa: F401  (registers CAPS/LOAD)
from resolver.auth.keys import generate_key
from resolver.auth.signer import sign_zone
from resolver.dnssec import canonical
from support.example_zone import ORIGIN, ZONE

EXTRA = """\
mx MX 10 Mail.Example.COM.
srv SRV 0 5 443 Host.EXAMPLE.com.
cn CNAME Target.Example.com.
ptr PTR Host.EXAMPLE.com.
ns2 NS NS.Other.EXAMPLE.
many TXT "a"
many TXT "b" "c"
many TXT "B"
*.star A 192.0.2.77
"""


@pytest.fixture(scope="module")
def signed_pairs() -> list[tuple[dns.rrset.RRset, object]]:
    zone = dns.zone.from_text(ZONE + EXTRA, ORIGIN, relativize=False)
    keys = [generate_key(ORIGIN, 15, 257), generate_key(ORIGIN, 15, 256), generate_key(ORIGIN, 13, 256),
            generate_key(ORIGIN, 8, 256)]
    sign_zone(zone, keys, inception=1_700_000_000, expiration=1_900_000_000, workers=1)
    pairs = []
    for name, node in zone.nodes.items():
        sigs = {rds.covers: rds for rds in node.rdatasets if rds.rdtype == dns.rdatatype.RRSIG}
        for rds in node.rdatasets:
            if rds.rdtype == dns.rdatatype.RRSIG or rds.rdtype not in sigs:
                continue
            rrset = dns.rrset.RRset(name, rds.rdclass, rds.rdtype)
            rrset.update(rds)
            rrset.ttl = rds.ttl
            for rrsig in sigs[rds.rdtype]:
                pairs.append((rrset, rrsig))
    return pairs


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # noqa: BLE001 - both must fail; the class may differ
        return ("fail", type(exc).__name__)


def _agree(rrset, rrsig) -> bool:
    ours = _outcome(canonical.signed_data, rrset, rrsig)
    oracle = _outcome(dns.dnssec._make_rrsig_signature_data, rrset, rrsig)  # noqa: SLF001
    assert (ours[0], ours[1] if ours[0] == "ok" else None) == (oracle[0], oracle[1] if oracle[0] == "ok" else None), \
        (rrset.to_text(), rrsig.to_text(), ours, oracle)
    return ours[0] == "ok"


def _mixed(name: dns.name.Name, rng: random.Random) -> dns.name.Name:
    return dns.name.Name([bytes(c ^ 0x20 if chr(c).isalpha() and rng.random() < 0.5 else c for c in label)
                          for label in name.labels])


def test_real_rrsets_give_dnspythons_signed_data(signed_pairs):
    types = {rrset.rdtype for rrset, _ in signed_pairs}
    assert {dns.rdatatype.MX, dns.rdatatype.NSEC, dns.rdatatype.SOA, dns.rdatatype.DNSKEY, dns.rdatatype.SRV,
            dns.rdatatype.CNAME, dns.rdatatype.DNAME, dns.rdatatype.TXT} <= types
    assert {rrsig.algorithm for _, rrsig in signed_pairs} == {15, 13, 8}
    assert all(_agree(rrset, rrsig) for rrset, rrsig in signed_pairs)


def _hostile(rrset: dns.rrset.RRset, rrsig, rng: random.Random):
    """One mutated (rrset, rrsig) pair."""
    name = rrset.name
    choice = rng.randrange(8)
    if choice == 0:  # owner in mixed case (servers echo 0x20 case into owners)
        name = _mixed(name, rng)
    elif choice == 1:  # a name synthesised from a wildcard: more labels than the RRSIG counts
        name = dns.name.Name((b"Xy", b"z")[:rng.randint(1, 2)] + name.labels)
    elif choice == 2:  # a wildcard owner, with whatever count the RRSIG has
        name = dns.name.Name((b"*",) + name.labels)
    elif choice == 3:  # relative owner
        name = dns.name.Name(name.labels[:-1])
    if rng.random() < 0.5:
        rrsig = rrsig.replace(labels=rng.randint(0, len(name.labels) + 1))
    if rng.random() < 0.3:
        rrsig = rrsig.replace(signer=_mixed(rrsig.signer, rng))
    if rng.random() < 0.1:
        rrsig = rrsig.replace(signer=dns.name.Name(rrsig.signer.labels[:-1]))  # relative signer
    if rng.random() < 0.3:
        rrsig = rrsig.replace(original_ttl=rng.choice((0, 1, 86400, 0x7FFFFFFF, 0xFFFFFFFF)),
                              expiration=rng.getrandbits(32), inception=rng.getrandbits(32),
                              key_tag=rng.getrandbits(16))
    out = dns.rrset.RRset(name, rrset.rdclass, rrset.rdtype)
    rdatas = list(rrset)
    rng.shuffle(rdatas)
    for rd in rdatas:
        out.add(rd, rrset.ttl)
    return out, rrsig


def test_hostile_copies_agree_or_both_fail(signed_pairs):
    rng = random.Random(3)
    accepted = refused = 0
    for _ in range(3000):
        rrset, rrsig = rng.choice(signed_pairs)
        ok = _agree(*_hostile(rrset, rrsig, rng))
        accepted += ok
        refused += not ok
    assert accepted > 1000 and refused > 200  # both outcomes exercised


def test_upper_case_names_inside_rdata_follow_rfc6840(signed_pairs):
    """Names inside RDATA are lowercased only for the RFC 4034 §6.2 types (RFC 6840 §5.1):
    the MX exchange is, the NSEC next name is not — both exactly as dnspython does it."""
    mx = next((r, s) for r, s in signed_pairs if r.rdtype == dns.rdatatype.MX)
    assert b"\x04mail\x07example\x03com\x00" in canonical.signed_data(*mx)
    nsec = next((r, s) for r, s in signed_pairs
                if r.rdtype == dns.rdatatype.NSEC and any(b"Upper" in rd.next.labels for rd in r))
    assert b"\x05Upper" in canonical.signed_data(*nsec)


def test_ds_digest_is_make_ds_digest(signed_pairs):
    rng = random.Random(4)
    keys = list(dict.fromkeys(rd for rrset, _ in signed_pairs if rrset.rdtype == dns.rdatatype.DNSKEY for rd in rrset))
    assert len(keys) == 4
    checked = 0
    for key in keys:
        for owner in (ORIGIN, _mixed(ORIGIN, rng), dns.name.from_text("Other.Example."), dns.name.root):
            for digest_type in range(7):
                try:
                    oracle = dns.dnssec.make_ds(owner, key, digest_type, policy=dns.dnssec.allow_all_policy).digest
                except dns.dnssec.UnsupportedAlgorithm:
                    oracle = None
                assert canonical.ds_digest(owner, key, digest_type) == oracle
                checked += oracle is not None
    assert checked == 4 * 4 * 3  # SHA-1, SHA-256, SHA-384


def test_canonical_name_is_dnspythons_canonical_wire():
    """canonical_name (remembered per spelling) against Name.canonicalize().to_wire() on
    fuzzed names: every byte value, mixed case, 63-octet labels, the root; asked twice."""
    import random as _random

    from resolver.dnssec.canonical import canonical_name
    rng = _random.Random(11)
    for _ in range(5000):
        labels = [bytes(rng.randrange(256) if rng.random() < 0.2 else rng.choice(b"aZ-9_.") for _ in
                        range(rng.choice((1, 3, 63)))) for _ in range(rng.randint(0, 3))]
        name = dns.name.Name(labels + [b""])
        expected = name.canonicalize().to_wire()
        assert canonical_name(name.labels) == expected == canonical_name(name.labels)
