"""NSEC denial proofs (RFC 4035 §5.4, RFC 6840 §4.1/§4.4, RFC 7129): positive and hostile cases.

The zone ops.cid. used throughout (canonical order):
    ops.cid.          SOA NS DNSKEY
    a.ops.cid.        A
    c.b.ops.cid.      A            (b.ops.cid. is an empty non-terminal)
    d.ops.cid.        NS DS        (secure delegation)
    dn.ops.cid.       DNAME
    e.ops.cid.        NS           (insecure delegation)
    m.ops.cid.        CNAME
    *.w.ops.cid.      TXT          (wildcard)
"""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdatatype
import pytest

from resolver.dnssec.nsec import (
    nsec_types,
    prove_no_ds,
    prove_nodata,
    prove_nxdomain,
    prove_wildcard_expansion,
)
from resolver.dnssec.verify import verify_rrset
from resolver.status import Status
from support.signing import NOW, dnskey_rrset, make_key, name, nsec, nsec_chain, sign

ZONE = name("ops.cid.")
SECURE, BOGUS = Status.SECURE, Status.BOGUS
A, TXT, DS, NS, CNAME = (dns.rdatatype.A, dns.rdatatype.TXT, dns.rdatatype.DS, dns.rdatatype.NS, dns.rdatatype.CNAME)

CHAIN = nsec_chain(
    ZONE,
    {
        "@": ["SOA", "NS", "DNSKEY"],
        "a": ["A"],
        "c.b": ["A"],
        "d": ["NS", "DS"],
        "dn": ["DNAME"],
        "e": ["NS"],
        "m": ["CNAME"],
        "*.w": ["TXT"],
    },
)


def at(owner: str):
    return CHAIN[name(owner) if owner.endswith(".") else dns.name.from_text(owner, ZONE)]

ALL = list(CHAIN.values())


def q(text: str) -> dns.name.Name:
    return dns.name.from_text(text, ZONE)


def test_chain_shape():
    assert [str(n) for n in CHAIN] == [
        "ops.cid.", "a.ops.cid.", "c.b.ops.cid.", "d.ops.cid.", "dn.ops.cid.", "e.ops.cid.", "m.ops.cid.", "*.w.ops.cid.",
    ]
    assert at("*.w")[0].next == ZONE  # the last NSEC wraps to the apex
    assert nsec_types(at("d")[0]) == {NS, DS, dns.rdatatype.RRSIG, dns.rdatatype.NSEC}


# --- NXDOMAIN --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "qname,cover,wild_cover",
    [
        ("aa", "a", "@"),      # between a and c.b; wildcard *.ops.cid. covered by the apex NSEC
        ("x.a", "a", "a"),     # closest encloser a.ops.cid.; *.a covered by a's own NSEC
        ("0", "@", "@"),       # before the first name: the apex NSEC covers it
        ("zz", "*.w", "@"),    # after the last name: apex wrap-around (next == apex)
        ("f", "e", "@"),
    ],
)
def test_nxdomain_proven(qname, cover, wild_cover):
    v = prove_nxdomain(q(qname), [at(cover), at(wild_cover)], ZONE)
    assert v.status is SECURE, v.why
    assert v.proof == "nxdomain" and v.ttl == 3600


def test_nxdomain_with_full_chain_and_wildcard_closest_encloser():
    v = prove_nxdomain(q("x.y.a"), ALL, ZONE)
    assert v.status is SECURE and "closest encloser a.ops.cid." in v.why


def test_nxdomain_missing_wildcard_proof():
    v = prove_nxdomain(q("aa"), [at("a")], ZONE)
    assert v.status is BOGUS and "wildcard *.ops.cid." in v.why


def test_nxdomain_replayed_nsec_covering_wrong_range():
    v = prove_nxdomain(q("zz"), [at("a"), at("@")], ZONE)
    assert v.status is BOGUS and "no NSEC covers zz.ops.cid." in v.why


def test_nxdomain_refused_for_existing_name():
    assert prove_nxdomain(q("a"), ALL, ZONE).status is BOGUS


def test_nxdomain_refused_for_empty_non_terminal():
    v = prove_nxdomain(q("b"), ALL, ZONE)
    assert v.status is BOGUS and "empty non-terminal" in v.why


def test_nxdomain_contradicted_by_existing_wildcard():
    v = prove_nxdomain(q("x.w"), ALL, ZONE)
    assert v.status is BOGUS and "wildcard *.w.ops.cid. exists" in v.why


@pytest.mark.parametrize("below", ["x.d", "x.e", "deep.x.e"])
def test_nsec_at_delegation_cannot_deny_child_names(below):
    v = prove_nxdomain(q(below), ALL, ZONE)
    assert v.status is BOGUS and "delegation" in v.why


def test_nsec_at_dname_cannot_deny_names_below():
    v = prove_nxdomain(q("x.dn"), ALL, ZONE)
    assert v.status is BOGUS and "DNAME" in v.why


def test_nsec_from_a_different_zone_is_ignored():
    # a genuine chain of another zone, whose range would "cover" our name if it were accepted
    foreign = [nsec("other.cid.", "zzz.other.cid.", "SOA", "NS"), nsec("a.cid.", "z.cid.", "A")]
    v = prove_nxdomain(q("aa"), foreign, ZONE)
    assert v.status is BOGUS and "outside zone" in v.why


def test_nsec_with_next_name_outside_zone_is_ignored():
    bad_next = nsec("a.ops.cid.", "zzz.cid.", "A")
    v = prove_nxdomain(q("aa"), [bad_next, at("@")], ZONE)
    assert v.status is BOGUS and "next name" in v.why
    # dnspython treats NSEC as a singleton type: a second record replaces the first, so an RRset
    # never carries two ranges (and the RRSIG verified by the caller covers the one that is left)
    double = nsec("a.ops.cid.", "c.b.ops.cid.", "A")
    double.add(dns.rdata.from_text("IN", "NSEC", "zz.ops.cid. A"))
    assert len(double) == 1


def test_backwards_nsec_not_wrapping_to_apex_is_ignored():
    # a forged-looking "last" NSEC that wraps to some name other than the apex
    backwards = nsec("m.ops.cid.", "a.ops.cid.", "CNAME")
    v = prove_nxdomain(q("zz"), [backwards, at("@")], ZONE)
    assert v.status is BOGUS and "not to the apex" in v.why


def test_qname_outside_zone_is_bogus():
    assert prove_nxdomain(name("x.other.cid."), ALL, ZONE).status is BOGUS
    assert prove_nodata(name("x.other.cid."), A, ALL, ZONE).status is BOGUS


def test_zone_with_only_an_apex_wraps_to_itself():
    solo = nsec("solo.cid.", "solo.cid.", "SOA", "NS", "RRSIG", "NSEC", "DNSKEY")
    v = prove_nxdomain(name("anything.solo.cid."), [solo], name("solo.cid."))
    assert v.status is SECURE, v.why


# --- NODATA ----------------------------------------------------------------------------------------


def test_nodata_proven():
    v = prove_nodata(q("a"), TXT, [at("a")], ZONE)
    assert v.status is SECURE and v.proof == "nodata"
    assert prove_nodata(ZONE, A, [at("@")], ZONE).status is SECURE


def test_nodata_refused_when_bitmap_has_the_type():
    v = prove_nodata(q("a"), A, [at("a")], ZONE)
    assert v.status is BOGUS and "lists A" in v.why


def test_nodata_refused_when_cname_present():
    v = prove_nodata(q("m"), A, [at("m")], ZONE)
    assert v.status is BOGUS and "CNAME" in v.why


def test_nodata_empty_non_terminal():
    v = prove_nodata(q("b"), A, [at("a")], ZONE)
    assert v.status is SECURE and v.proof == "nodata-ent"


def test_nodata_without_any_matching_or_covering_nsec():
    assert prove_nodata(q("a"), TXT, [at("d")], ZONE).status is BOGUS


def test_wildcard_nodata():
    v = prove_nodata(q("x.w"), A, [at("*.w")], ZONE)
    assert v.status is SECURE and v.proof == "nodata-wildcard"
    assert prove_nodata(q("x.w"), TXT, [at("*.w")], ZONE).status is BOGUS  # the wildcard has TXT
    # a nonexistent name with no wildcard NSEC at its closest encloser: not NODATA
    v = prove_nodata(q("zz"), A, [at("*.w")], ZONE)
    assert v.status is BOGUS and "no NSEC at *.ops.cid." in v.why


def test_parent_side_nsec_cannot_prove_nodata_for_child_data():
    v = prove_nodata(q("e"), A, [at("e")], ZONE)
    assert v.status is BOGUS and "parent-side" in v.why


def test_ds_nodata_uses_parent_side_nsec():
    assert prove_nodata(q("e"), DS, [at("e")], ZONE).status is SECURE
    assert prove_nodata(q("d"), DS, [at("d")], ZONE).status is BOGUS  # DS is there
    child_apex = nsec("e.ops.cid.", "a.e.ops.cid.", "SOA", "NS", "DNSKEY", "RRSIG", "NSEC")
    v = prove_nodata(q("e"), DS, [child_apex], ZONE)
    assert v.status is BOGUS and "child apex" in v.why
    assert prove_nodata(ZONE, DS, [at("@")], ZONE).status is BOGUS  # a zone cannot deny its own DS


# --- no DS at a delegation --------------------------------------------------------------------------


def test_no_ds_proven_for_insecure_delegation():
    v = prove_no_ds(q("e"), ALL, ZONE)
    assert v.status is SECURE and v.proof == "no-ds"


def test_no_ds_refused_when_ds_present_or_not_a_delegation():
    assert "lists DS" in prove_no_ds(q("d"), ALL, ZONE).why
    assert "not a delegation" in prove_no_ds(q("a"), ALL, ZONE).why


def test_no_ds_refused_with_child_apex_nsec():
    child_apex = nsec("e.ops.cid.", "a.e.ops.cid.", "SOA", "NS", "DNSKEY", "RRSIG", "NSEC")
    v = prove_no_ds(q("e"), [child_apex], ZONE)
    assert v.status is BOGUS and "SOA" in v.why


def test_no_ds_for_nonexistent_child_is_a_forged_referral():
    """NSEC has no opt-out: a chain proving the child absent refutes the delegation (a
    referral to it would otherwise make any nonexistent name 'provably unsigned')."""
    v = prove_no_ds(q("f"), ALL, ZONE)
    assert v.status is BOGUS and "does not exist" in v.why


def test_no_ds_refused_for_names_below_other_delegation_and_for_ent():
    assert prove_no_ds(q("x.e"), ALL, ZONE).status is BOGUS
    assert prove_no_ds(q("b"), ALL, ZONE).status is BOGUS
    assert prove_no_ds(ZONE, ALL, ZONE).status is BOGUS
    assert prove_no_ds(name("other.cid."), ALL, ZONE).status is BOGUS


# --- wildcard expansion ------------------------------------------------------------------------------


@pytest.mark.parametrize("qname", ["x.w", "y.x.w"])
def test_wildcard_expansion_proven(qname):
    v = prove_wildcard_expansion(q(qname), q("*.w"), [at("*.w")], ZONE)
    assert v.status is SECURE and v.proof == "wildcard", v.why


def test_wildcard_expansion_without_proof_is_bogus():
    assert prove_wildcard_expansion(q("x.w"), q("*.w"), [], ZONE).status is BOGUS
    assert prove_wildcard_expansion(q("x.w"), q("*.w"), [at("a")], ZONE).status is BOGUS


def test_wildcard_expansion_refused_when_qname_exists():
    v = prove_wildcard_expansion(q("a"), name("*.ops.cid."), ALL, ZONE)
    assert v.status is BOGUS and "exists" in v.why


def test_wildcard_expansion_refused_when_a_closer_encloser_exists():
    # x.a.ops.cid. does not exist, but a.ops.cid. does: *.ops.cid. cannot be the source
    v = prove_wildcard_expansion(q("x.a"), name("*.ops.cid."), ALL, ZONE)
    assert v.status is BOGUS and "closest encloser is a.ops.cid." in v.why


def test_wildcard_expansion_refused_for_unrelated_names():
    assert prove_wildcard_expansion(q("x.a"), q("*.w"), ALL, ZONE).status is BOGUS
    assert prove_wildcard_expansion(q("*.w"), q("*.w"), ALL, ZONE).status is BOGUS
    assert prove_wildcard_expansion(q("x.w"), q("w"), ALL, ZONE).status is BOGUS


def test_wildcard_expansion_below_delegation_is_bogus():
    assert prove_wildcard_expansion(q("x.e"), name("*.ops.cid."), ALL, ZONE).status is BOGUS


# --- end to end: NSECs verified first, then used ------------------------------------------------------


@pytest.mark.parametrize("alg", [15, 13, 8])
def test_signed_nsecs_verified_then_proving(alg):
    zsk = make_key(ZONE, alg, 256, seed=3)
    keys = dnskey_rrset(zsk)
    proofs = [at("e"), at("@")]
    for rs in proofs:
        assert verify_rrset(rs, sign(rs, zsk), keys, zone=ZONE, now=NOW).status is SECURE
    assert prove_nxdomain(q("f"), proofs, ZONE).status is SECURE
    # the same NSEC signed by another zone's key does not verify as ops.cid. data
    other = make_key("cid.", alg, 256, seed=3)
    v = verify_rrset(at("e"), sign(at("e"), other), dnskey_rrset(other), zone=ZONE, now=NOW)
    assert v.status is BOGUS


# --- interop: the NSEC chain BIND's dnssec-signzone builds -------------------------------------------


def test_proofs_over_bind_signed_chain(tmp_path):
    import subprocess

    import dns.zone

    from support.peers import require

    keygen, signzone = require("dnssec-keygen"), require("dnssec-signzone")
    origin = "peer.cid."
    (tmp_path / "db").write_text(
        f"$ORIGIN {origin}\n$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 300\n@ NS ns\nns A 192.0.2.53\n"
        "a TXT \"a\"\nc.b TXT \"deep\"\nsecure NS ns.secure\nsecure DS 12345 15 2 "
        + "ab" * 32 + "\nns.secure A 192.0.2.54\ninsecure NS ns.elsewhere.example.\n*.w TXT \"wild\"\n"
        "Upper TXT \"case\"\n"
    )

    def run(*args):
        return subprocess.run(args, cwd=tmp_path, check=True, capture_output=True, text=True, timeout=60).stdout

    run(keygen, "-q", "-K", str(tmp_path), "-a", "ED25519", "-f", "KSK", origin)
    run(keygen, "-q", "-K", str(tmp_path), "-a", "ED25519", origin)
    run(signzone, "-P", "-q", "-K", str(tmp_path), "-S", "-s", str(NOW - 3600), "-e", str(NOW + 86400),
        "-o", origin, "-f", "signed", "db")
    zone = dns.zone.from_file(str(tmp_path / "signed"), origin=origin, relativize=False)
    apex = name(origin)
    keys = zone.find_rrset(apex, "DNSKEY")
    nsecs = []
    for owner, node in zone.nodes.items():
        rds = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NSEC)
        if rds is None:
            continue
        rs = zone.find_rrset(owner, "NSEC")
        assert verify_rrset(rs, zone.find_rrset(owner, "RRSIG", "NSEC"), keys, zone=apex, now=NOW).status is SECURE
        nsecs.append(rs)
    assert len(nsecs) >= 8  # ns.secure (glue) has none: glue is not in the chain

    def n(text):
        return dns.name.from_text(text, apex)

    assert prove_nxdomain(n("nothere"), nsecs, apex).status is SECURE
    assert prove_nxdomain(n("zzz"), nsecs, apex).status is SECURE  # wraps to the apex
    assert prove_nxdomain(n("x.a"), nsecs, apex).status is SECURE
    assert prove_nxdomain(n("upper"), nsecs, apex).status is BOGUS  # exists (case-insensitive)
    assert prove_nxdomain(n("b"), nsecs, apex).status is BOGUS  # empty non-terminal
    assert prove_nxdomain(n("x.insecure"), nsecs, apex).status is BOGUS  # below a delegation
    assert prove_nxdomain(n("ns.secure"), nsecs, apex).status is BOGUS  # glue, below a delegation
    assert prove_nodata(n("a"), A, nsecs, apex).status is SECURE
    assert prove_nodata(n("b"), A, nsecs, apex).proof == "nodata-ent"
    assert prove_nodata(n("q.w"), A, nsecs, apex).proof == "nodata-wildcard"
    assert prove_nodata(n("insecure"), A, nsecs, apex).status is BOGUS
    assert prove_no_ds(n("insecure"), nsecs, apex).proof == "no-ds"
    assert prove_no_ds(n("secure"), nsecs, apex).status is BOGUS
    assert prove_wildcard_expansion(n("q.w"), n("*.w"), nsecs, apex).status is SECURE
