"""Signer and zone verifier: what is signed, NSEC chain and bitmaps, re-signing, tamper detection."""

from __future__ import annotations

import dns.dnssec
import dns.name
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest

import resolver  # noqa: F401
from resolver.auth.keys import generate_key
from resolver.auth.signer import INCEPTION_BACKDATE, VALIDITY, ds_records, sign_zone, verify_zone
from resolver.auth.zonefile import load_zone, zone_to_text
from support.example_zone import ORIGIN, ZONE

NOW = 1_800_000_000


def name(text):
    return dns.name.from_text(text, ORIGIN)


@pytest.fixture
def zone(tmp_path):
    path = tmp_path / "example.com.db"
    path.write_text(ZONE)
    return load_zone(path)


@pytest.fixture(scope="module")
def keys():
    return [generate_key(ORIGIN, 15, 257), generate_key(ORIGIN, 15, 256)]


def sigs(zone, owner, rdtype):
    rds = zone.get_rdataset(name(owner), dns.rdatatype.RRSIG, dns.rdatatype.from_text(rdtype))
    return list(rds) if rds is not None else []


def nsec(zone, owner):
    rds = zone.get_rdataset(name(owner), dns.rdatatype.NSEC)
    return rds[0] if rds is not None else None


def types(rd):
    return rd.to_text().split()[1:]


def test_signed_zone_verifies_and_signatures_check_with_dnspython(zone, keys):
    sign_zone(zone, keys, now=NOW)
    assert verify_zone(zone, now=NOW) == []
    dnskeys = zone.get_rrset(ORIGIN, dns.rdatatype.DNSKEY)
    for owner, rdtype in (("www", "A"), ("pool-7", "CAPS"), ("pool-8", "LOAD"), ("*.wild", "TXT"),
                          ("child", "DS"), ("@", "NSEC"), ("@", "DNSKEY"), ("alias", "DNAME")):
        rrset = zone.get_rrset(name(owner), dns.rdatatype.from_text(rdtype))
        rrsig = dns.rrset.from_rdata_list(name(owner), rrset.ttl, sigs(zone, owner, rdtype))
        dns.dnssec.validate(rrset, rrsig, {ORIGIN: dnskeys}, now=NOW)


def test_signatures_are_the_bytes_dnspython_makes(zone, keys):
    # Ed25519 is deterministic, so our RRSIG must equal dns.dnssec.sign's for the same input.
    sign_zone(zone, keys, inception=NOW - 10, expiration=NOW + 10)
    zsk = keys[1]
    for owner, rdtype in (("www", "AAAA"), ("*.wild", "TXT"), ("upper.case", "A"), ("pool-7", "CAPS")):
        rrset = zone.get_rrset(name(owner), dns.rdatatype.from_text(rdtype))
        expected = dns.dnssec.sign(rrset, zsk.private_key, ORIGIN, zsk.dnskey,
                                   inception=NOW - 10, expiration=NOW + 10)
        assert sigs(zone, owner, rdtype) == [expected]


def test_default_window_and_ttls(zone, keys):
    sign_zone(zone, keys, now=NOW)
    (sig,) = sigs(zone, "www", "A")
    assert (sig.inception, sig.expiration) == (NOW - INCEPTION_BACKDATE, NOW + VALIDITY)
    assert VALIDITY == 14 * 86400 and INCEPTION_BACKDATE == 3600
    assert zone.get_rdataset(name("pool-7"), dns.rdatatype.RRSIG, dns.rdatatype.from_text("LOAD")).ttl == 30
    assert zone.get_rdataset(name("www"), dns.rdatatype.NSEC).ttl == 300  # min(SOA TTL, MINIMUM)
    with pytest.raises(ValueError, match="after inception"):
        sign_zone(zone, keys, inception=NOW, expiration=NOW)


def test_key_roles_ksk_signs_dnskey_zsk_the_rest(zone, keys):
    ksk, zsk = keys
    sign_zone(zone, keys, now=NOW)
    assert [s.key_tag for s in sigs(zone, "@", "DNSKEY")] == [ksk.key_tag]
    assert [s.key_tag for s in sigs(zone, "@", "SOA")] == [zsk.key_tag]
    assert [s.key_tag for s in sigs(zone, "www", "NSEC")] == [zsk.key_tag]


def test_delegation_glue_and_occluded_data(zone, keys):
    sign_zone(zone, keys, now=NOW)
    assert sigs(zone, "child", "NS") == [] and sigs(zone, "insecure", "NS") == []
    assert len(sigs(zone, "child", "DS")) == 1
    assert sigs(zone, "child", "A") == []  # occluded by the cut
    for glue in ("ns.child", "deep.ns.child", "below.alias"):
        assert nsec(zone, glue) is None
        assert all(r.rdtype != dns.rdatatype.RRSIG for r in zone.find_node(name(glue)).rdatasets)
    # RFC 4035 §2.3: only NS, DS and DNSSEC types at a delegation; the A at the cut is not ours.
    assert types(nsec(zone, "child")) == ["NS", "DS", "RRSIG", "NSEC"]
    assert types(nsec(zone, "insecure")) == ["NS", "RRSIG", "NSEC"]
    assert types(nsec(zone, "alias")) == ["DNAME", "RRSIG", "NSEC"]
    assert types(nsec(zone, "pool-8")) == ["RRSIG", "NSEC", "CAPS", "LOAD"]
    assert types(nsec(zone, "@")) == ["NS", "SOA", "RRSIG", "NSEC", "DNSKEY"]


def test_nsec_chain_is_canonical_order_and_closes_at_apex(zone, keys):
    sign_zone(zone, keys, now=NOW)
    chain, owner = [], ORIGIN
    for _ in range(50):
        chain.append(owner.relativize(ORIGIN).to_text())
        owner = nsec(zone, owner.relativize(ORIGIN).to_text() if owner != ORIGIN else "@").next
        if owner == ORIGIN:
            break
    assert chain == ["@", "alias", "Upper.Case", "child", "insecure", "ns1", "pool-7", "pool-8",
                     "*.wild", "www"]


def test_resigning_is_idempotent_and_replaces_old_material(zone, keys, tmp_path):
    sign_zone(zone, keys, inception=NOW - 3600, expiration=NOW + 86400)
    first = zone_to_text(zone)
    sign_zone(zone, keys, inception=NOW - 3600, expiration=NOW + 86400)
    assert zone_to_text(zone) == first
    # re-signing the loaded text (as `cid zone sign` on a signed file does) also gives the same zone
    path = tmp_path / "signed.db"
    path.write_text(first)
    reloaded = load_zone(path)
    sign_zone(reloaded, keys, inception=NOW - 3600, expiration=NOW + 86400)
    assert zone_to_text(reloaded) == first
    # a later window replaces every signature rather than adding to them
    sign_zone(zone, keys, inception=NOW, expiration=NOW + 2 * 86400)
    assert [s.inception for s in sigs(zone, "www", "A")] == [NOW]
    assert len(zone.get_rdataset(ORIGIN, dns.rdatatype.DNSKEY)) == 2


def test_foreign_dnskeys_are_kept(zone, keys):
    prepublished = generate_key(ORIGIN, 15, 256)
    sign_zone(zone, [*keys, prepublished], now=NOW)
    sign_zone(zone, keys, now=NOW)  # the standby key is no longer used, but stays published
    dnskeys = zone.get_rdataset(ORIGIN, dns.rdatatype.DNSKEY)
    assert set(dnskeys) == {k.dnskey for k in (*keys, prepublished)}
    assert all(s.key_tag != prepublished.key_tag for s in sigs(zone, "www", "A"))
    assert verify_zone(zone, now=NOW) == []


def test_old_nsec3_material_is_removed(zone, keys):
    zone.find_rdataset(ORIGIN, dns.rdatatype.NSEC3PARAM, create=True).add(
        dns.rdata.from_text("IN", "NSEC3PARAM", "1 0 0 -"), 0)
    sign_zone(zone, keys, now=NOW)
    assert zone.get_rdataset(ORIGIN, dns.rdatatype.NSEC3PARAM) is None
    assert verify_zone(zone, now=NOW) == []


def test_every_algorithm_signs_everything(zone):
    mixed = [generate_key(ORIGIN, 15), generate_key(ORIGIN, 13)]
    sign_zone(zone, mixed, now=NOW)
    assert sorted(s.algorithm for s in sigs(zone, "www", "A")) == [13, 15]
    assert sorted(s.algorithm for s in sigs(zone, "@", "DNSKEY")) == [13, 15]
    assert verify_zone(zone, now=NOW) == []


def test_relativized_zone_signs_too(keys):
    zone = dns.zone.from_text(ZONE, relativize=True)
    assert zone.relativize
    sign_zone(zone, keys, now=NOW)
    assert verify_zone(zone, now=NOW) == []


def test_refuses_wrong_or_no_keys(zone, keys):
    with pytest.raises(ValueError, match="no keys"):
        sign_zone(zone, [], now=NOW)
    with pytest.raises(ValueError, match="not example.com."):
        sign_zone(zone, [generate_key("example.org")], now=NOW)


# --- verify_zone must catch each way a zone can be broken ---------------------------------------

@pytest.fixture
def signed(zone, keys):
    sign_zone(zone, keys, now=NOW)
    return zone


def replace(zone, owner, rdtype, *texts, covers=dns.rdatatype.NONE, ttl=None):
    old = zone.get_rdataset(name(owner), rdtype, covers)
    rds = dns.rdataset.Rdataset(dns.rdataclass.IN, rdtype, covers)
    for text in texts:
        rds.add(dns.rdata.from_text("IN", rdtype, text, origin=ORIGIN, relativize=False), ttl or old.ttl)
    zone.replace_rdataset(name(owner), rds)


def test_verify_detects_changed_data(signed):
    replace(signed, "www", dns.rdatatype.A, "192.0.2.11")
    assert verify_zone(signed, now=NOW) == ["www.example.com. A: algorithm 15: no RRSIGs validated"]


def test_verify_detects_missing_signature(signed):
    signed.delete_rdataset(name("pool-7"), dns.rdatatype.RRSIG, dns.rdatatype.from_text("CAPS"))
    assert verify_zone(signed, now=NOW) == ["pool-7.example.com. CAPS: no RRSIG"]


def test_verify_detects_expiry_and_future_signatures(signed):
    late = verify_zone(signed, now=NOW + VALIDITY + 1)
    assert late and "signature expired at" in late[0]
    early = verify_zone(signed, now=NOW - 2 * INCEPTION_BACKDATE)
    assert early and "not valid until" in early[0]


def test_verify_detects_broken_chain_and_bitmaps(signed):
    replace(signed, "www", dns.rdatatype.NSEC, "zzz.example.com. A AAAA RRSIG NSEC")
    replace(signed, "ns1", dns.rdatatype.NSEC, "pool-7.example.com. A MX RRSIG NSEC")
    problems = verify_zone(signed, now=NOW)
    assert "www.example.com. NSEC: next is zzz.example.com., expected example.com." in problems
    assert any(p.startswith("ns1.example.com. NSEC: bitmap [A MX RRSIG NSEC]") for p in problems)
    signed.delete_rdataset(name("pool-8"), dns.rdatatype.NSEC)
    assert "pool-8.example.com. NSEC: missing" in verify_zone(signed, now=NOW)


def test_verify_detects_nsec_at_glue_and_missing_dnskey(signed):
    signed.find_rdataset(name("ns.child"), dns.rdatatype.NSEC, create=True).add(
        dns.rdata.from_text("IN", "NSEC", "www.example.com. A RRSIG NSEC"), 300)
    assert verify_zone(signed, now=NOW)[-1] == (
        "ns.child.example.com. NSEC: at a name the zone is not authoritative for")
    signed.delete_rdataset(ORIGIN, dns.rdatatype.DNSKEY)
    assert verify_zone(signed, now=NOW) == ["example.com. DNSKEY: missing at the zone apex"]


def test_verify_rejects_dnskey_not_self_signed(signed, keys):
    signed.delete_rdataset(ORIGIN, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)
    assert verify_zone(signed, now=NOW) == [
        "example.com. DNSKEY: not signed by any of its own zone keys"]


def test_verify_requires_every_signing_algorithm(zone):
    ed, ec = generate_key(ORIGIN, 15), generate_key(ORIGIN, 13)
    sign_zone(zone, [ed, ec], now=NOW)
    rds = zone.get_rdataset(name("www"), dns.rdatatype.RRSIG, dns.rdatatype.A)
    zone.replace_rdataset(name("www"), dns.rdataset.from_rdata_list(
        rds.ttl, [s for s in rds if s.algorithm == 15]))
    assert verify_zone(zone, now=NOW) == ["www.example.com. A: algorithm 13: no signature"]


# --- DS records ---------------------------------------------------------------------------------

def test_ds_records_for_ksks(keys):
    ksk, zsk = keys
    assert ds_records(ORIGIN, keys) == [dns.dnssec.make_ds(ORIGIN, ksk.dnskey, "SHA256")]
    assert ds_records("example.com", [zsk.dnskey], "sha384") == [
        dns.dnssec.make_ds(ORIGIN, zsk.dnskey, "SHA384")]
    revoked = dns.rdata.from_text("IN", "DNSKEY", f"385 3 15 {ksk.dnskey.to_text().split()[3]}")
    assert ds_records(ORIGIN, [revoked]) == []
    with pytest.raises(ValueError, match="SHA256 or SHA384"):
        ds_records(ORIGIN, keys, "SHA1")


def test_relativized_zone_text_is_absolute(keys, tmp_path):
    zone = dns.zone.from_text(ZONE, relativize=True)
    sign_zone(zone, keys, now=NOW)
    path = tmp_path / "rel.db"
    path.write_text(zone_to_text(zone, generic=True))
    assert verify_zone(load_zone(path), now=NOW) == []


def test_verify_reports_signatures_over_absent_or_delegated_data(signed):
    signed.delete_rdataset(name("www"), dns.rdatatype.AAAA)
    ns_sig = sigs(signed, "www", "A")[0].replace(type_covered=dns.rdatatype.NS)
    signed.find_rdataset(name("child"), dns.rdatatype.RRSIG, dns.rdatatype.NS, create=True).add(ns_sig, 60)
    problems = verify_zone(signed, now=NOW)
    assert "www.example.com. RRSIG: covers AAAA, which is absent or not authoritative here" in problems
    assert "child.example.com. RRSIG: covers NS, which is absent or not authoritative here" in problems
