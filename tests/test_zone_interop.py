"""Interop with BIND and ldns: our signed zones pass their verifiers, and keys move both ways.

Peers know nothing of CAPS/LOAD, so zones handed to them are written in RFC 3597 form.
"""

from __future__ import annotations

import dns.name
import dns.rdatatype
import pytest
from support.peers import run

import resolver  # noqa: F401
from resolver.auth.keys import generate_key, load_zone_keys, read_key_files, write_key_files
from resolver.auth.signer import ds_records, sign_zone, verify_zone
from resolver.auth.zonefile import load_zone, write_zone
from support.example_zone import ORIGIN, ZONE

ALGORITHMS = {15: "ED25519", 13: "ECDSAP256SHA256", 8: "RSASHA256"}


@pytest.fixture
def zone(tmp_path):
    path = tmp_path / "example.com.db"
    path.write_text(ZONE)
    return load_zone(path)


def peer_verify(path, csk_only: bool):
    # dnssec-verify wants a ZSK per algorithm unless told (-z) that KSK-flagged keys sign all.
    run(["dnssec-verify", *(["-z"] if csk_only else []), "-o", "example.com", str(path)])
    out = run(["ldns-verify-zone", str(path)])
    assert "Zone is verified and complete" in out.stdout


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_our_signed_zone_passes_bind_and_ldns(tmp_path, zone, algorithm):
    keys = [generate_key(ORIGIN, algorithm, 257), generate_key(ORIGIN, algorithm, 256)]
    sign_zone(zone, keys)
    path = tmp_path / "signed.db"
    write_zone(zone, path, generic=True)
    peer_verify(path, csk_only=False)


def test_csk_and_resigned_zone_pass_bind_and_ldns(tmp_path, zone):
    key = generate_key(ORIGIN)
    sign_zone(zone, [key])
    sign_zone(zone, [key])  # re-signing must not leave stale RRSIGs or NSECs for peers to trip on
    path = tmp_path / "signed.db"
    write_zone(zone, path, generic=True)
    peer_verify(path, csk_only=True)


def test_broken_zone_fails_peer_verifier_too(tmp_path, zone):
    # Guards the test above: the peer verifier does look at what we hand it.
    sign_zone(zone, [generate_key(ORIGIN)])
    zone.find_rdataset("www.example.com.", dns.rdatatype.A).add(
        dns.rdata.from_text("IN", "A", "192.0.2.11"))
    path = tmp_path / "broken.db"
    write_zone(zone, path, generic=True)
    assert run(["ldns-verify-zone", str(path)], check=False).returncode != 0
    assert verify_zone(load_zone(path)) != []


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_dnssec_signzone_uses_our_keys(tmp_path, zone, algorithm):
    keydir = tmp_path / "keys"
    keydir.mkdir()
    ksk, zsk = generate_key(ORIGIN, algorithm, 257), generate_key(ORIGIN, algorithm, 256)
    for key in (ksk, zsk):
        write_key_files(key, keydir)
    unsigned = tmp_path / "unsigned.db"
    write_zone(zone, unsigned, generic=True)
    signed = tmp_path / "bind.signed"
    run(["dnssec-signzone", "-S", "-K", str(keydir), "-d", str(tmp_path), "-o", "example.com",
         "-f", str(signed), str(unsigned)])
    result = load_zone(signed)
    assert set(result.get_rdataset(ORIGIN, dns.rdatatype.DNSKEY)) == {ksk.dnskey, zsk.dnskey}
    assert {s.key_tag for s in result.get_rdataset("www.example.com.", dns.rdatatype.RRSIG,
                                                   dns.rdatatype.A)} == {zsk.key_tag}
    assert verify_zone(result) == []  # and our verifier accepts BIND's signing of CAPS/LOAD
    # BIND computes the same DS from our key file
    ds = run(["dnssec-dsfromkey", "-2", str(keydir / f"{ksk.basename}.key")]).stdout.split()
    assert ds[-1].lower() == ds_records(ORIGIN, [ksk])[0].digest.hex()


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_we_sign_with_dnssec_keygen_keys(tmp_path, zone, algorithm):
    name = ALGORITHMS[algorithm]
    base = run(["dnssec-keygen", "-q", "-K", str(tmp_path), "-a", name, "-f", "KSK", "example.com"])
    run(["dnssec-keygen", "-q", "-K", str(tmp_path), "-a", name, "example.com"])
    key = read_key_files(tmp_path / f"{base.stdout.strip()}.private")
    assert key.algorithm == algorithm and key.is_ksk
    keys = load_zone_keys(tmp_path, ORIGIN)
    assert [k.flags for k in keys] == [257, 256]
    sign_zone(zone, keys)
    path = tmp_path / "signed.db"
    write_zone(zone, path, generic=True)
    peer_verify(path, csk_only=False)
    assert verify_zone(load_zone(path)) == []
