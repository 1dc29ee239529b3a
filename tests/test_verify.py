"""verify_rrset / verify_dnskeys: every policy rule, positive and hostile, for algorithms 15, 13, 8;
the spec vectors (our signed CAPS RRset, RFC 8080 §6); and a zone signed by BIND's dnssec-signzone."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import dns.dnssec
import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdataset
import dns.rrset
import dns.zone
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from resolver.dnssec.verify import _owner_labels, serial_diff, verify_dnskeys, verify_rrset, wildcard_source
from resolver.status import Status
from support.peers import require
from support.signing import (
    ALGORITHMS,
    EXPIRATION,
    INCEPTION,
    NOW,
    colliding_keys,
    dnskey_rrset,
    ds_rdataset,
    flip_signature_byte,
    key_with_flags,
    make_key,
    name,
    rrset,
    sign,
    tamper,
)

VECTORS = Path(__file__).resolve().parent.parent / "spec" / "vectors"
ZONE = name("ops.cid.")
SECURE, BOGUS, INSECURE = Status.SECURE, Status.BOGUS, Status.INSECURE


def _zone_keys(alg: int):
    ksk = make_key(ZONE, alg, 257, seed=1)
    zsk = make_key(ZONE, alg, 256, seed=2)
    return ksk, zsk, dnskey_rrset(ksk, zsk)


def _a(owner: str = "pool-7.ops.cid.", ttl: int = 3600) -> dns.rrset.RRset:
    return rrset(owner, "A", "192.0.2.7", ttl=ttl)


def check(rs, sigs, keys, zone=ZONE, now=NOW, **kw):
    return verify_rrset(rs, sigs, keys, zone=zone, now=now, **kw)


# --- signatures over ordinary RRsets --------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_valid_signature_each_algorithm(alg):
    _, zsk, keys = _zone_keys(alg)
    rs = _a()
    v = check(rs, sign(rs, zsk), keys)
    assert v.status is SECURE, v.why
    assert v.ttl == 3600 and v.wildcard is None


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_tampered_data_or_signature_is_bogus(alg):
    _, zsk, keys = _zone_keys(alg)
    rs = _a()
    sigs = sign(rs, zsk)
    assert check(rrset(rs.name, "A", "192.0.2.8"), sigs, keys).status is BOGUS
    assert check(rs, flip_signature_byte(sigs, 5), keys).status is BOGUS


def test_missing_or_mismatched_rrsigs_are_bogus():
    _, zsk, keys = _zone_keys(15)
    rs = _a()
    assert check(rs, None, keys).status is BOGUS
    other = rrset("pool-8.ops.cid.", "A", "192.0.2.7")
    assert "belong to" in check(rs, sign(other, zsk), keys).why
    txt = rrset(rs.name, "TXT", '"x"')
    v = check(rs, sign(txt, zsk), keys)  # a genuine RRSIG, but over the TXT RRset
    assert v.status is BOGUS and "covers TXT" in v.why


def test_ttl_capped_by_original_ttl_and_expiry():
    _, zsk, keys = _zone_keys(15)
    sigs = sign(_a(ttl=3600), zsk)
    assert check(_a(ttl=7200), sigs, keys).ttl == 3600  # RRSIG original TTL wins (RFC 4035 §5.3.3)
    assert check(_a(ttl=60), sigs, keys).ttl == 60
    assert check(_a(), sigs, keys, now=EXPIRATION - 100).ttl == 100
    inside_skew = check(_a(), sigs, keys, now=EXPIRATION + 100)
    assert inside_skew.status is SECURE and inside_skew.ttl == 0


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_expired_and_not_yet_valid_with_skew(alg):
    _, zsk, keys = _zone_keys(alg)
    rs = _a()
    sigs = sign(rs, zsk)
    assert "expired" in check(rs, sigs, keys, now=EXPIRATION + 301).why
    assert check(rs, sigs, keys, now=EXPIRATION + 299).status is SECURE
    assert "not yet valid" in check(rs, sigs, keys, now=INCEPTION - 301).why
    assert check(rs, sigs, keys, now=INCEPTION - 299).status is SECURE
    assert check(rs, sigs, keys, now=INCEPTION - 1, skew=0).status is BOGUS


def test_serial_number_arithmetic_across_2106_wrap():
    _, zsk, keys = _zone_keys(15)
    rs = _a()
    sigs = sign(rs, zsk, inception=2**32 - 1000, expiration=86400)  # window wraps the 32-bit field
    assert check(rs, sigs, keys, now=2**32 + 10).status is SECURE
    assert "not yet valid" in check(rs, sigs, keys, now=2**32 - 2000).why
    assert "expired" in check(rs, sigs, keys, now=2**32 + 90000).why
    assert serial_diff(5, 2**32 - 5) == 10 and serial_diff(2**32 - 5, 5) == -10


def test_signature_from_1970s_window_is_expired_now():
    _, zsk, keys = _zone_keys(15)
    rs = _a()
    assert "expired" in check(rs, sign(rs, zsk, inception=1000, expiration=2000), keys).why


def test_expiration_before_inception_is_bogus():
    _, zsk, keys = _zone_keys(15)
    rs = _a()
    sigs = tamper(sign(rs, zsk), inception=EXPIRATION, expiration=INCEPTION)
    assert "not after inception" in check(rs, sigs, keys).why


def test_one_good_signature_among_bad_ones_suffices():
    _, zsk, keys = _zone_keys(15)
    rs = _a()
    bad = sign(rs, zsk, inception=1000, expiration=2000)
    both = bad.union(sign(rs, zsk))
    assert check(rs, both, keys).status is SECURE


# --- signer and zone binding -----------------------------------------------------------------------


def test_signer_must_equal_zone():
    _, zsk, keys = _zone_keys(15)
    rs = _a()
    forged = sign(rs, zsk, signer="other.cid.")
    v = check(rs, forged, keys)
    assert v.status is BOGUS and "signer other.cid." in v.why


def test_parent_keys_cannot_sign_for_child_zone():
    parent = make_key("cid.", 15, 257)
    rs = _a()
    sigs = sign(rs, parent)  # signer cid., a real and valid signature by the parent zone's key
    assert check(rs, sigs, dnskey_rrset(parent), zone=name("cid.")).status is SECURE
    # ... but the data lives in ops.cid.: validating it as ops.cid. data must refuse cid.'s signature
    v = check(rs, sigs, dnskey_rrset(parent), zone=ZONE)
    assert v.status is BOGUS


def test_signer_must_be_ancestor_of_owner():
    _, zsk, keys = _zone_keys(15)
    rs = _a("pool.other.cid.")
    v = check(rs, sign(rs, zsk), keys)
    assert v.status is BOGUS and "not in zone" in v.why


def test_dnskey_rrset_must_belong_to_zone():
    other = make_key("other.cid.", 15)
    rs = _a()
    v = check(rs, sign(rs, other, signer=ZONE), dnskey_rrset(other))
    assert v.status is BOGUS and "DNSKEY RRset owner" in v.why


# --- labels and wildcards --------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_wildcard_expansion_is_reported(alg):
    _, zsk, keys = _zone_keys(alg)
    wild = rrset("*.w.ops.cid.", "TXT", '"hello"')
    sigs = sign(wild, zsk)
    expanded = rrset("x.y.w.ops.cid.", "TXT", '"hello"')
    exp_sigs = dns.rrset.RRset(expanded.name, 1, 46, 16)
    exp_sigs.update(sigs)
    v = check(expanded, exp_sigs, keys)
    assert v.status is SECURE and v.wildcard == name("*.w.ops.cid.")
    assert wildcard_source(expanded, exp_sigs) == name("*.w.ops.cid.")
    direct = check(wild, sigs, keys)  # the wildcard owner itself, queried literally
    assert direct.status is SECURE and direct.wildcard is None
    assert wildcard_source(wild, sigs) is None


def _wildcard_source_reference(rrset, rrsigs):
    """wildcard_source written with dnspython's Name calls (len, is_wild, split), as it was
    before the label arithmetic: the first RRSIG claiming fewer labels than the owner's."""
    owner = rrset.name
    have = len(owner) - 1 - (1 if owner.is_wild() else 0)
    for rrsig in rrsigs or ():
        if rrsig.labels < have and not owner.is_wild():
            return dns.name.Name((b"*",) + owner.split(rrsig.labels + 1)[1].labels)
    return None


@pytest.mark.parametrize("owner", ["x.y.w.ops.cid.", "*.w.ops.cid.", "cid.", ".", "a.*.b.", "x.y",
                                   "*", "*.", "a.b.c.d.e.f.g.h."])
def test_wildcard_source_shortcut_agrees(owner):
    """Every RRSIG labels value (0..255, several RRSIGs in either order) over absolute,
    relative, root and wild owners: the same wildcard, or None, as the Name-call reference;
    and the owner's label count as dnspython's len/is_wild give it."""
    _, zsk, _ = _zone_keys(15)
    rs = rrset("x.example.", "TXT", '"v"')
    base = sign(rs, zsk)[0]
    owned = dns.rrset.RRset(dns.name.from_text(owner, origin=None), 1, dns.rdatatype.TXT)
    for first in range(0, 256, 3):
        for second in (None, 0, 1, 2, 5, 255):
            sigs = dns.rrset.RRset(owned.name, 1, dns.rdatatype.RRSIG, dns.rdatatype.TXT)
            sigs.add(base.replace(labels=first))
            if second is not None:
                sigs.add(base.replace(labels=second, key_tag=(base.key_tag + 1) % 65536))
            assert wildcard_source(owned, sigs) == _wildcard_source_reference(owned, sigs), (owner, first, second)
    name = owned.name
    assert _owner_labels(name) == len(name) - 1 - (1 if name.is_wild() else 0)
    assert wildcard_source(owned, None) is None and wildcard_source(owned, dns.rrset.RRset(owned.name, 1, 46, 16)) is None


def test_labels_tampering_is_bogus():
    _, zsk, keys = _zone_keys(15)
    rs = _a()
    sigs = sign(rs, zsk)
    up = check(rs, tamper(sigs, labels=4), keys)
    assert up.status is BOGUS and "exceed" in up.why
    down = check(rs, tamper(sigs, labels=2), keys)  # claims a wildcard that never was signed
    assert down.status is BOGUS
    assert wildcard_source(rs, sigs) is None


# --- keys ------------------------------------------------------------------------------------------


def test_key_tag_collision_tries_every_candidate():
    wrong, right = colliding_keys(ZONE)
    assert wrong.tag == right.tag and wrong.dnskey != right.dnskey
    rs = _a()
    sigs = sign(rs, right)
    assert check(rs, sigs, dnskey_rrset(wrong, right)).status is SECURE
    assert check(rs, sigs, dnskey_rrset(wrong)).status is BOGUS


def test_revoked_key_never_validates():
    ksk = make_key(ZONE, 15, 257, seed=1)
    revoked = key_with_flags(ksk, 257 | 0x80)
    keys = dnskey_rrset(revoked)
    rs = _a()
    assert check(rs, sign(rs, revoked), keys).status is BOGUS
    # dnspython lets a revoked key sign its own DNSKEY RRset; we do not
    assert check(keys, sign(keys, revoked), keys).status is BOGUS


def test_key_without_zone_flag_or_wrong_protocol_is_refused():
    base = make_key(ZONE, 15, 257, seed=1)
    rs = _a()
    for k in (key_with_flags(base, 1), key_with_flags(base, 0)):
        assert check(rs, sign(rs, k), dnskey_rrset(k)).status is BOGUS
    proto = base.__class__(base.zone, 15, base.private, base.dnskey.replace(protocol=2))
    assert check(rs, sign(rs, proto), dnskey_rrset(proto)).status is BOGUS


@pytest.mark.parametrize(
    "alg,key",
    [(15, b"\x01" * 31), (15, b""), (13, b"\x02" * 10), (13, b"\x00" * 64), (8, b""), (8, b"\x00"), (8, b"\x03\x01\x00"), (8, b"\x00\x00\x00")],
)
def test_malformed_key_material_is_bogus_not_a_crash(alg, key):
    good = make_key(ZONE, alg, 256, seed=2)
    bad = good.__class__(good.zone, alg, good.private, good.dnskey.replace(key=key))
    rs = _a()
    sigs = tamper(sign(rs, good), key_tag=bad.tag)  # point the signature at the broken key
    assert check(rs, sigs, dnskey_rrset(bad)).status is BOGUS


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("length", [0, 1, 63, 65, 300])
def test_malformed_signature_length_is_bogus(alg, length):
    _, zsk, keys = _zone_keys(alg)
    rs = _a()
    sigs = tamper(sign(rs, zsk), signature=b"\x5a" * length)
    assert check(rs, sigs, keys).status is BOGUS


def test_unsupported_signature_algorithm_is_bogus_for_rrset():
    _, zsk, keys = _zone_keys(15)
    rs = _a()
    v = check(rs, tamper(sign(rs, zsk), algorithm=5), keys)
    assert v.status is BOGUS and "unsupported algorithm 5" in v.why


# --- DNSKEY RRset against DS and anchors -----------------------------------------------------------


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("digest", ["SHA256", "SHA384", "SHA1"])
def test_dnskeys_secure_from_ds(alg, digest):
    ksk, zsk, keys = _zone_keys(alg)
    v = verify_dnskeys(keys, sign(keys, ksk), zone=ZONE, now=NOW, ds=ds_rdataset(ksk.ds(digest)))
    assert v.status is SECURE, v.why
    rs = _a()
    assert check(rs, sign(rs, zsk), keys).status is SECURE


def test_ds_digest_mismatch_is_bogus():
    ksk, _, keys = _zone_keys(15)
    ds = ksk.ds()
    broken = ds.replace(digest=bytes(b ^ 0xFF for b in ds.digest))
    v = verify_dnskeys(keys, sign(keys, ksk), zone=ZONE, now=NOW, ds=ds_rdataset(broken))
    assert v.status is BOGUS and "no usable key matches" in v.why


def test_sha1_ds_ignored_when_stronger_digest_present():
    ksk, _, keys = _zone_keys(15)
    stranger = make_key(ZONE, 15, 257, seed=99)
    # SHA-1 matches our KSK, but the SHA-256 DS (for another key) must take precedence (RFC 4509 §3)
    ds = ds_rdataset(ksk.ds("SHA1"), stranger.ds("SHA256"))
    v = verify_dnskeys(keys, sign(keys, ksk), zone=ZONE, now=NOW, ds=ds)
    assert v.status is BOGUS
    only_sha1 = verify_dnskeys(keys, sign(keys, ksk), zone=ZONE, now=NOW, ds=ds_rdataset(ksk.ds("SHA1")))
    assert only_sha1.status is SECURE


@pytest.mark.parametrize("field,value", [("algorithm", 3), ("algorithm", 5), ("digest_type", 3), ("digest_type", 200)])
def test_ds_with_only_unsupported_algorithms_or_digests_is_insecure(field, value):
    ksk, _, keys = _zone_keys(15)
    ds = ksk.ds().replace(**{field: value})
    v = verify_dnskeys(keys, sign(keys, ksk), zone=ZONE, now=NOW, ds=ds_rdataset(ds))
    assert v.status is INSECURE, v.why


def test_unsupported_ds_beside_a_failing_supported_ds_stays_bogus():
    ksk, zsk, keys = _zone_keys(15)
    ds = ds_rdataset(ksk.ds().replace(algorithm=3), make_key(ZONE, 15, 257, seed=77).ds())
    assert verify_dnskeys(keys, sign(keys, ksk), zone=ZONE, now=NOW, ds=ds).status is BOGUS


def test_dnskeys_signed_only_by_unmatched_key_is_bogus():
    ksk, zsk, keys = _zone_keys(15)
    v = verify_dnskeys(keys, sign(keys, zsk), zone=ZONE, now=NOW, ds=ds_rdataset(ksk))
    assert v.status is BOGUS


def test_ds_key_tag_collision():
    wrong, right = colliding_keys(ZONE)
    keys = dnskey_rrset(wrong, right)
    ds = ds_rdataset(right)
    assert verify_dnskeys(keys, sign(keys, right), zone=ZONE, now=NOW, ds=ds).status is SECURE
    assert verify_dnskeys(keys, sign(keys, wrong), zone=ZONE, now=NOW, ds=ds).status is BOGUS


def test_revoked_ksk_matching_ds_is_bogus():
    ksk, zsk, _ = _zone_keys(15)
    revoked = key_with_flags(ksk, 257 | 0x80)
    keys = dnskey_rrset(revoked, zsk)
    ds = ds_rdataset(revoked.ds())
    assert verify_dnskeys(keys, sign(keys, revoked), zone=ZONE, now=NOW, ds=ds).status is BOGUS


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_dnskeys_secure_from_anchor_key(alg):
    ksk, zsk, keys = _zone_keys(alg)
    anchor = dns.rdataset.from_rdata_list(3600, [ksk.dnskey])
    assert verify_dnskeys(keys, sign(keys, ksk), zone=ZONE, now=NOW, anchor_keys=anchor).status is SECURE
    stranger = dns.rdataset.from_rdata_list(3600, [make_key(ZONE, alg, 257, seed=55).dnskey])
    assert verify_dnskeys(keys, sign(keys, ksk), zone=ZONE, now=NOW, anchor_keys=stranger).status is BOGUS


def test_anchor_with_unsupported_algorithm_only_is_insecure():
    ksk, _, keys = _zone_keys(15)
    anchor = dns.rdataset.from_rdata_list(3600, [ksk.dnskey.replace(algorithm=3)])
    assert verify_dnskeys(keys, sign(keys, ksk), zone=ZONE, now=NOW, anchor_keys=anchor).status is INSECURE


def test_dnskeys_need_ds_or_anchor_and_right_owner():
    ksk, _, keys = _zone_keys(15)
    assert verify_dnskeys(keys, sign(keys, ksk), zone=ZONE, now=NOW).status is BOGUS
    v = verify_dnskeys(keys, sign(keys, ksk), zone=name("cid."), now=NOW, ds=ds_rdataset(ksk))
    assert v.status is BOGUS


def test_empty_ds_set_is_bogus_not_insecure():
    ksk, _, keys = _zone_keys(15)
    empty = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.DS)
    v = verify_dnskeys(keys, sign(keys, ksk), zone=ZONE, now=NOW, ds=empty)
    assert v.status is BOGUS and "empty DS" in v.why


def test_wrong_record_types_in_key_or_signature_slots_are_bogus():
    ksk, zsk, keys = _zone_keys(15)
    rs = _a()
    ds_set = dns.rrset.from_rdata(ZONE, 3600, ksk.ds())
    assert check(rs, sign(rs, zsk), ds_set).status is BOGUS
    assert check(rs, rs, keys).status is BOGUS


def test_dnskeys_expired_signature_is_bogus():
    ksk, _, keys = _zone_keys(13)
    v = verify_dnskeys(keys, sign(keys, ksk), zone=ZONE, now=EXPIRATION + 1000, ds=ds_rdataset(ksk))
    assert v.status is BOGUS and "expired" in v.why


# --- spec vectors ----------------------------------------------------------------------------------


def _rrsets(text: str) -> list[dns.rrset.RRset]:
    import dns.zonefile

    return dns.zonefile.read_rrsets(text, rdclass=None, default_ttl=3600, origin=dns.name.root, relativize=False)


def test_signed_rrset_vector():
    v = json.loads((VECTORS / "signed_rrset.json").read_text())
    zone = name(v["zone"])
    (keys,) = _rrsets(v["dnskey"])
    for rr_text, sig_text in ((v["rrset"], v["rrsig"]), (v["rrset_generic"], v["rrsig_generic"])):
        (rs,) = _rrsets(rr_text)
        (sigs,) = _rrsets(sig_text)
        verdict = verify_rrset(rs, sigs, keys, zone=zone, now=v["now"])
        assert verdict.status.value == v["expected_status"], verdict.why
        assert verdict.ttl == v["expected_ttl"]
        hostile = verify_rrset(rs, flip_signature_byte(sigs, v["hostile"]["flip_signature_byte"]), keys, zone=zone, now=v["now"])
        assert hostile.status.value == v["hostile"]["expected_status"]
    # the vector is reproducible: the seed gives the DNSKEY, and Ed25519 re-signing the same RRSIG
    priv = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["ed25519_seed_hex"]))
    assert dns.dnssec.make_dnskey(priv.public_key(), 15, 257) == keys[0]
    assert dns.dnssec.key_id(keys[0]) == v["key_tag"]
    (rs,) = _rrsets(v["rrset"])
    (sigs,) = _rrsets(v["rrsig"])
    again = dns.dnssec.sign(rs, priv, zone, keys[0], inception=v["inception"], expiration=v["expiration"])
    assert again == sigs[0]
    (ds,) = _rrsets(v["ds"])
    assert verify_dnskeys(keys, sign_with(keys, priv, zone, v), zone=zone, now=v["now"], ds=ds).status is SECURE


def sign_with(keys, priv, zone, v):
    rd = dns.dnssec.sign(keys, priv, zone, keys[0], inception=v["inception"], expiration=v["expiration"])
    return dns.rrset.from_rdata(keys.name, keys.ttl, rd)


def test_rfc8080_vectors():
    v = json.loads((VECTORS / "rfc8080.json").read_text())
    zone = name(v["zone"])
    for ex in v["examples"]:
        b64 = ex["private_key"].split("PrivateKey:")[1].strip()
        priv = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(b64))
        (keys,) = _rrsets(ex["dnskey"])
        (ds,) = _rrsets(ex["ds"])
        (mx,) = _rrsets(ex["mx"])
        (sigs,) = _rrsets(ex["rrsig"])
        derived = dns.dnssec.make_dnskey(priv.public_key(), 15, 257)
        assert derived == keys[0]
        assert dns.dnssec.key_id(derived) == ex["key_tag"]
        assert dns.dnssec.make_ds(zone, derived, "SHA256") == ds[0]
        verdict = verify_rrset(mx, sigs, keys, zone=zone, now=v["now"])
        assert verdict.status.value == v["expected_status"], verdict.why
        # RFC 8032 determinism: our signer reproduces the erratum's signature exactly
        assert dns.dnssec.sign(mx, priv, zone, derived, inception=v["inception"], expiration=v["expiration"]) == sigs[0]
        # outside the 2015 window the same signature is expired
        assert verify_rrset(mx, sigs, keys, zone=zone, now=NOW).status is BOGUS
        # the records as printed (RFC and erratum) have unbalanced parentheses; the RFC's also lacks
        # the algorithm field: a strict master-file reader must refuse them, not guess
        for printed in (ex["rrsig_as_printed"], ex["rrsig_erratum_as_printed"]):
            with pytest.raises(dns.exception.SyntaxError):
                _rrsets(printed)


# --- interop: a zone signed by BIND ----------------------------------------------------------------


@pytest.mark.parametrize("alg,bind_alg", [(15, "ED25519"), (13, "ECDSAP256SHA256"), (8, "RSASHA256")])
def test_zone_signed_by_bind_validates(tmp_path, alg, bind_alg):
    keygen, signzone, dsfromkey = require("dnssec-keygen"), require("dnssec-signzone"), require("dnssec-dsfromkey")
    origin = "peer.cid."
    (tmp_path / "db").write_text(
        f"$ORIGIN {origin}\n$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 300\n@ NS ns\nns A 192.0.2.53\n"
        "pool-1 TXT \"hello\"\n*.w TXT \"wild\"\n"
    )

    def run(*args):
        return subprocess.run(args, cwd=tmp_path, check=True, capture_output=True, text=True, timeout=60).stdout.strip()

    extra = ["-b", "2048"] if alg == 8 else []
    ksk = run(keygen, "-q", "-K", str(tmp_path), "-a", bind_alg, *extra, "-f", "KSK", origin)
    run(keygen, "-q", "-K", str(tmp_path), "-a", bind_alg, *extra, origin)
    # -P: skip signzone's own check, which uses the real clock rather than our fixed NOW
    run(signzone, "-P", "-q", "-K", str(tmp_path), "-S", "-s", str(NOW - 3600), "-e", str(NOW + 86400),
        "-o", origin, "-f", "signed", "db")
    ds_text = run(dsfromkey, "-2", str(tmp_path / f"{ksk}.key"))
    (ds,) = _rrsets(ds_text)
    zone = dns.zone.from_file(str(tmp_path / "signed"), origin=origin, relativize=False)
    apex = name(origin)
    keys = zone.find_rrset(apex, "DNSKEY")
    assert verify_dnskeys(keys, zone.find_rrset(apex, "RRSIG", "DNSKEY"), zone=apex, now=NOW, ds=ds).status is SECURE
    checked = 0
    for owner, node in zone.nodes.items():
        for rds in node.rdatasets:
            if rds.rdtype in (dns.rdatatype.RRSIG,) or (owner == apex and rds.rdtype == dns.rdatatype.DNSKEY):
                continue
            rs = dns.rrset.RRset(owner, rds.rdclass, rds.rdtype)
            rs.update(rds)
            sigs = zone.find_rrset(owner, "RRSIG", rds.rdtype)
            verdict = verify_rrset(rs, sigs, keys, zone=apex, now=NOW)
            assert verdict.status is SECURE, verdict.why
            bad = verify_rrset(rs, flip_signature_byte(sigs, 3), keys, zone=apex, now=NOW)
            assert bad.status is BOGUS
            checked += 1
    assert checked >= 8  # SOA, NS, A, TXT, wildcard TXT and their NSECs
