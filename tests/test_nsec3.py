"""NSEC3 denial proofs (RFC 5155 §8, RFC 9276 §3.2): every proof shape, and hostile ones.

Zone ops.cid. (hashed with dnspython's nsec3_hash, the oracle):
    ops.cid.          SOA NS DNSKEY NSEC3PARAM
    a.ops.cid.        A
    b.ops.cid.        (empty non-terminal)
    c.b.ops.cid.      A
    d.ops.cid.        NS DS        (secure delegation)
    dn.ops.cid.       DNAME
    e.ops.cid.        NS           (insecure delegation; left out of the opt-out chain)
    m.ops.cid.        CNAME
    w.ops.cid.        (empty non-terminal)
    *.w.ops.cid.      TXT          (wildcard)
"""

from __future__ import annotations

import base64
import random

import dns.dnssec
import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from resolver.dnssec import nsec3 as n3
from resolver.status import Status
from support.nsec3_chain import hashed, nsec3_chain, nsec3_rdata
from support.signing import name

ZONE = name("ops.cid.")
SECURE, BOGUS, INSECURE = Status.SECURE, Status.BOGUS, Status.INSECURE
A, TXT, DS, NS, CNAME, MX = (dns.rdatatype.A, dns.rdatatype.TXT, dns.rdatatype.DS, dns.rdatatype.NS,
                             dns.rdatatype.CNAME, dns.rdatatype.MX)

NAMES = {
    "@": ["SOA", "NS", "DNSKEY", "NSEC3PARAM"],
    "a": ["A"],
    "b": [],
    "c.b": ["A"],
    "d": ["NS", "DS"],
    "dn": ["DNAME"],
    "e": ["NS"],
    "m": ["CNAME"],
    "w": [],
    "*.w": ["TXT"],
}
CHAIN = nsec3_chain(ZONE, NAMES)
# Opt-out: the insecure delegation e has no NSEC3; every span carries the opt-out flag.
OPTOUT = nsec3_chain(ZONE, {k: v for k, v in NAMES.items() if k != "e"}, opt_out=True)


def q(text: str) -> dns.name.Name:
    return dns.name.from_text(text, ZONE)


def digest(n: dns.name.Name, salt: bytes = b"", iterations: int = 0) -> bytes:
    return base64.b32hexdecode(dns.dnssec.nsec3_hash(n, salt, iterations, 1))


def at(owner: str, chain=CHAIN) -> dns.rrset.RRset:
    return chain[q(owner) if owner != "@" else ZONE]


def covering(target: dns.name.Name, chain=CHAIN) -> dns.rrset.RRset:
    h = digest(target)
    for rrset in chain.values():
        owner = base64.b32hexdecode(rrset.name.labels[0].upper())
        nxt = rrset[0].next
        if (owner < h < nxt) if owner < nxt else (h > owner or h < nxt):
            return rrset
    raise AssertionError(f"nothing covers {target}")


def nxdomain_proof(qname: dns.name.Name, chain=CHAIN) -> list[dns.rrset.RRset]:
    """What a server sends (RFC 5155 §7.2.2): closest encloser, next closer, wildcard."""
    ce = qname.parent()
    while ce not in {(q(k) if k != "@" else ZONE) for k in NAMES} or ce == qname:
        ce = ce.parent()
    nc = qname.split(len(ce) + 1)[1]
    return _unique([chain[ce], covering(nc, chain), covering(dns.name.Name((b"*",) + ce.labels), chain)])


def _unique(rrsets):
    out = []
    for r in rrsets:
        if all(r is not o for o in out):
            out.append(r)
    return out


# --- hashing -------------------------------------------------------------------------------------

def test_lean_hash_agrees_with_dnspython_on_real_and_random_names():
    rng = random.Random(5155)
    names = [ZONE, q("a"), q("*.w"), dns.name.root, name("A.B.Ops.CID."), name("xn--bcher-kva.example.")]
    for _ in range(300):
        labels = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 20))) for _ in range(rng.randrange(1, 6))]
        names.append(dns.name.Name(labels + [b""]))
    for n in names:
        for salt, iterations in ((b"", 0), (b"\xab\xcd", 1), (bytes(range(16)), 10), (b"\x00", 150)):
            ours = n3.nsec3_digest(n, salt, iterations)
            assert n3.b32(ours) == dns.dnssec.nsec3_hash(n, salt, iterations, 1).lower(), (n, salt, iterations)


def test_hash_is_case_insensitive():
    assert n3.nsec3_digest(name("POOL-1.Bj.cid."), b"", 0) == n3.nsec3_digest(name("pool-1.bj.cid."), b"", 0)


# --- NXDOMAIN (§8.4) -----------------------------------------------------------------------------

@pytest.mark.parametrize("qname", ["nope", "x.y.a", "zz.c.b", "q.b"])
def test_nxdomain_by_closest_encloser_next_closer_and_wildcard(qname):
    v = n3.prove_nxdomain(q(qname), nxdomain_proof(q(qname)), ZONE)
    assert v.status is SECURE, v.why
    assert v.proof == "nxdomain"
    assert "closest encloser" in v.why and "next closer" in v.why and "wildcard" in v.why
    assert n3.b32(digest(q(qname).split(len(ZONE) + 1)[1])) in v.why or "hash" in v.why


def test_nxdomain_why_names_each_record_and_hash():
    qn = q("nope")
    v = n3.prove_nxdomain(qn, nxdomain_proof(qn), ZONE)
    assert at("@").name.labels[0].decode() in v.why  # the closest encloser's hashed owner
    assert n3.b32(digest(qn)) in v.why  # the hash of the next closer name


def test_nxdomain_without_next_closer_cover_is_bogus():
    qn = q("nope")
    proof = [at("@"), covering(name("*.ops.cid."))]
    assert all(covering(qn) is not r for r in proof)  # precondition of this zone's hashes
    v = n3.prove_nxdomain(qn, proof, ZONE)
    assert v.status is BOGUS and "next closer" in v.why


def test_nxdomain_without_wildcard_cover_is_bogus():
    qn = q("nope")
    full = nxdomain_proof(qn)
    wc = covering(name("*.ops.cid."))
    others = [r for r in full if r is not wc]
    assert covering(qn) is not wc  # precondition of this zone's hashes
    v = n3.prove_nxdomain(qn, others, ZONE)
    assert v.status is BOGUS and "wildcard" in v.why


def test_nxdomain_for_an_existing_name_is_contradicted():
    v = n3.prove_nxdomain(q("a"), [at("a"), at("@"), covering(name("*.ops.cid."))], ZONE)
    assert v.status is BOGUS and "exists" in v.why


def test_nxdomain_below_an_existing_wildcard_is_contradicted():
    qn = q("x.w")  # *.w.ops.cid. exists: x.w.ops.cid. would have been synthesised
    proof = [at("w"), covering(qn), at("*.w")]
    v = n3.prove_nxdomain(qn, proof, ZONE)
    assert v.status is BOGUS and "wildcard" in v.why


def test_closest_encloser_that_is_not_an_ancestor_proves_nothing():
    """A matching NSEC3 for a.ops.cid. says nothing about nope.c.b.ops.cid.: the closest
    encloser must be an ancestor of the query name."""
    qn = q("nope.c.b")
    proof = [at("a"), covering(q("nope.c.b")), covering(name("*.a.ops.cid."))]
    v = n3.prove_nxdomain(qn, proof, ZONE)
    assert v.status is BOGUS


def test_nsec3_covering_the_wrong_hash_is_bogus():
    qn = q("nope")
    wrong = next(r for r in CHAIN.values() if r is not covering(qn))
    proof = [at("@"), wrong, covering(name("*.ops.cid."))]
    assert all(covering(qn) is not r for r in proof)  # precondition of this zone's hashes
    v = n3.prove_nxdomain(qn, proof, ZONE)
    assert v.status is BOGUS


def test_delegation_nsec3_cannot_be_the_closest_encloser():
    """The parent-side NSEC3 at d.ops.cid. (NS DS, no SOA) must not deny names in the child
    zone d.ops.cid. (RFC 5155 §8.3)."""
    qn = q("x.d")
    proof = [at("d"), covering(qn), covering(name("*.d.ops.cid."))]
    v = n3.prove_nxdomain(qn, proof, ZONE)
    assert v.status is BOGUS and "delegation" in v.why


def test_dname_nsec3_cannot_be_the_closest_encloser():
    qn = q("x.dn")
    proof = [at("dn"), covering(qn), covering(name("*.dn.ops.cid."))]
    v = n3.prove_nxdomain(qn, proof, ZONE)
    assert v.status is BOGUS and "DNAME" in v.why


def test_proof_from_another_zone_is_ignored():
    other = nsec3_chain("evil.cid.", {"@": ["SOA", "NS"], "x": ["A"]})
    v = n3.prove_nxdomain(q("nope"), list(other.values()), ZONE)
    assert v.status is BOGUS and "not a hashed name of zone" in v.why
    # A child's NSEC3 (owner two labels below ops.cid.) is not ops.cid.'s either.
    child = nsec3_chain("d.ops.cid.", {"@": ["SOA", "NS"]})
    v = n3.prove_nxdomain(q("nope"), list(child.values()), ZONE)
    assert v.status is BOGUS


def test_nxdomain_in_an_opt_out_span_is_insecure_never_secure():
    qn = q("nope")
    v = n3.prove_nxdomain(qn, nxdomain_proof(qn, OPTOUT), ZONE)
    assert v.status is INSECURE and "opt-out" in v.why


# --- NODATA (§8.5-8.7) ----------------------------------------------------------------------------

def test_nodata_by_matching_nsec3():
    v = n3.prove_nodata(q("a"), TXT, [at("a")], ZONE)
    assert v.status is SECURE and v.proof == "nodata"
    assert n3.prove_nodata(q("a"), A, [at("a")], ZONE).status is BOGUS  # lists A
    assert n3.prove_nodata(q("m"), TXT, [at("m")], ZONE).status is BOGUS  # CNAME there


def test_nodata_at_empty_non_terminal():
    v = n3.prove_nodata(q("b"), A, [at("b")], ZONE)
    assert v.status is SECURE


def test_nodata_at_apex():
    v = n3.prove_nodata(ZONE, TXT, [at("@")], ZONE)
    assert v.status is SECURE


def test_parent_side_delegation_nsec3_cannot_deny_child_data():
    v = n3.prove_nodata(q("d"), A, [at("d")], ZONE)
    assert v.status is BOGUS and "delegation" in v.why


def test_ds_nodata_at_insecure_delegation():
    v = n3.prove_nodata(q("e"), DS, [at("e")], ZONE)
    assert v.status is SECURE
    assert n3.prove_nodata(q("d"), DS, [at("d")], ZONE).status is BOGUS  # lists DS


def test_ds_nodata_from_a_child_apex_record_is_refused():
    child_apex = nsec3_chain(ZONE, {"@": ["SOA", "NS", "DNSKEY"]})
    v = n3.prove_nodata(ZONE, DS, list(child_apex.values()), ZONE)
    assert v.status is BOGUS and "apex" in v.why


def test_ds_nodata_in_opt_out_span_is_insecure():
    qn = q("e")  # no NSEC3 of its own under opt-out
    proof = [at("@", OPTOUT), covering(qn, OPTOUT)]
    v = n3.prove_nodata(qn, DS, proof, ZONE)
    assert v.status is INSECURE and "opt-out" in v.why


def test_ds_nodata_without_opt_out_and_without_match_is_bogus():
    qn = q("zzz")
    v = n3.prove_nodata(qn, DS, [at("@"), covering(qn)], ZONE)
    assert v.status is BOGUS


def test_wildcard_nodata():
    qn = q("x.w")
    v = n3.prove_nodata(qn, MX, [at("w"), covering(qn), at("*.w")], ZONE)
    assert v.status is SECURE and v.proof == "nodata-wildcard", v.why
    bad = n3.prove_nodata(qn, TXT, [at("w"), covering(qn), at("*.w")], ZONE)
    assert bad.status is BOGUS  # the wildcard has TXT: the answer should have been data


def test_wildcard_nodata_in_an_opt_out_span_is_insecure():
    qn = q("x.w")
    v = n3.prove_nodata(qn, MX, [at("w", OPTOUT), covering(qn, OPTOUT), at("*.w", OPTOUT)], ZONE)
    assert v.status is INSECURE and "opt-out" in v.why, v.why


def test_nodata_without_any_match_is_bogus():
    qn = q("nope")
    v = n3.prove_nodata(qn, A, [at("@"), covering(qn)], ZONE)
    assert v.status is BOGUS


# --- referrals without DS (§8.9) ------------------------------------------------------------------

def test_no_ds_by_matching_nsec3_at_insecure_delegation():
    v = n3.prove_no_ds(q("e"), [at("e")], ZONE)
    assert v.status is SECURE and v.proof == "no-ds"


def test_no_ds_refused_for_signed_delegation_and_non_delegations():
    assert n3.prove_no_ds(q("d"), [at("d")], ZONE).status is BOGUS  # DS present
    assert n3.prove_no_ds(q("a"), [at("a")], ZONE).status is BOGUS  # not a delegation


def test_no_ds_by_opt_out_is_insecure():
    qn = q("e")
    v = n3.prove_no_ds(qn, [at("@", OPTOUT), covering(qn, OPTOUT)], ZONE)
    assert v.status is INSECURE and v.proof == "no-ds-optout"


def test_opt_out_span_cannot_claim_a_signed_child_is_absent():
    """d.ops.cid. has DS, so the opt-out chain has an NSEC3 for it: no span covers its hash,
    and a span 'covering' it from a stale or forged chain gives at most INSECURE."""
    qn = q("d")
    with pytest.raises(AssertionError):
        covering(qn, OPTOUT)
    v = n3.prove_no_ds(qn, [at("@", OPTOUT), at("d", OPTOUT)], ZONE)
    assert v.status is BOGUS  # its own NSEC3 lists DS
    # The chain without d's NSEC3 (a replay from before d was signed): never SECURE.
    stale = nsec3_chain(ZONE, {k: v for k, v in NAMES.items() if k not in ("d", "e")}, opt_out=True)
    v = n3.prove_no_ds(qn, [stale[ZONE], covering(qn, stale)], ZONE)
    assert v.status is INSECURE


def test_referral_to_a_name_proven_absent_is_bogus():
    """Without opt-out, a chain that proves the child does not exist makes the referral a forgery."""
    qn = q("forged")
    v = n3.prove_no_ds(qn, [at("@"), covering(qn)], ZONE)
    assert v.status is BOGUS and "does not exist" in v.why


# --- wildcard answers (§8.8) ----------------------------------------------------------------------

def test_wildcard_expansion_needs_next_closer_cover():
    qn = q("x.w")
    v = n3.prove_wildcard_expansion(qn, q("*.w"), [covering(qn)], ZONE)
    assert v.status is SECURE and v.proof == "wildcard"
    deep = q("y.x.w")
    v = n3.prove_wildcard_expansion(deep, q("*.w"), [covering(q("x.w"))], ZONE)
    assert v.status is SECURE  # the next closer of y.x.w under w is x.w
    missing = n3.prove_wildcard_expansion(qn, q("*.w"), [at("w")], ZONE)
    assert missing.status is BOGUS


def test_wildcard_expansion_cannot_shadow_an_existing_name():
    # c.b.ops.cid. exists; a forged *.b answer for it has no NSEC3 covering its hash.
    v = n3.prove_wildcard_expansion(q("c.b"), q("*.b"), list(CHAIN.values()), ZONE)
    assert v.status is BOGUS


# --- parameters, algorithms, iterations ------------------------------------------------------------

def _rrset_with(rd, owner: dns.name.Name) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(owner, 1, dns.rdatatype.NSEC3)
    rrset.add(rd, 300)
    return rrset


def test_mismatched_parameters_are_bogus():
    qn = q("nope")
    salted = nsec3_chain(ZONE, NAMES, salt=b"\xaa\xbb")
    proof = [at("@"), covering(qn)] + [r for r in salted.values()][:1]
    v = n3.prove_nxdomain(qn, proof, ZONE)
    assert v.status is BOGUS and "parameters disagree" in v.why


def test_salted_chain_with_iterations_proves():
    salt, it = b"\x01\x02\x03\x04", 5
    chain = nsec3_chain(ZONE, NAMES, salt=salt, iterations=it)
    qn = q("nope")
    h = digest(qn, salt, it)
    cover = next(r for r in chain.values()
                 if (lambda o, x: (o < h < x) if o < x else (h > o or h < x))(
                     base64.b32hexdecode(r.name.labels[0].upper()), r[0].next))
    w = digest(name("*.ops.cid."), salt, it)
    wcover = next(r for r in chain.values()
                  if (lambda o, x: (o < w < x) if o < x else (w > o or w < x))(
                      base64.b32hexdecode(r.name.labels[0].upper()), r[0].next))
    v = n3.prove_nxdomain(qn, _unique([chain[ZONE], cover, wcover]), ZONE)
    assert v.status is SECURE, v.why


@pytest.mark.parametrize("iterations,status", [(n3.MAX_ITERATIONS, SECURE), (n3.MAX_ITERATIONS + 1, INSECURE),
                                               (2500, INSECURE)])
def test_iterations_above_the_limit_are_insecure(iterations, status):
    chain = nsec3_chain(ZONE, NAMES, iterations=iterations)
    v = n3.prove_nodata(q("a"), TXT, [chain[q("a")]], ZONE)
    assert v.status is status, v.why
    if status is INSECURE:
        assert "RFC 9276" in v.why and str(n3.MAX_ITERATIONS) in v.why


def test_iteration_limit_is_checked_before_hashing(monkeypatch):
    chain = nsec3_chain(ZONE, NAMES, iterations=60000 % 65536)
    calls = []
    monkeypatch.setattr(n3, "nsec3_digest", lambda *a: calls.append(a) or b"\0" * 20)
    v = n3.prove_nxdomain(name(".".join(["x"] * 100) + ".ops.cid."), list(chain.values()), ZONE)
    assert v.status is INSECURE and calls == []


def test_unknown_hash_algorithm_is_ignored():
    qn = q("a")
    rd = at("a")[0]
    unknown = _rrset_with(rd.replace(algorithm=2), at("a").name)
    v = n3.prove_nodata(qn, TXT, [unknown], ZONE)
    assert v.status is BOGUS and "unknown hash algorithm" in v.why
    # Ignored beside a usable record: the usable one still proves.
    v = n3.prove_nodata(qn, TXT, [unknown, at("a")], ZONE)
    assert v.status is SECURE


def test_unknown_flags_are_ignored():
    rd = at("a")[0]
    odd = _rrset_with(rd.replace(flags=0x02), at("a").name)
    v = n3.prove_nodata(q("a"), TXT, [odd], ZONE)
    assert v.status is BOGUS and "flags" in v.why


def test_malformed_owner_and_lengths_are_ignored():
    rd = at("a")[0]
    bad_owner = _rrset_with(rd, dns.name.Name((b"not-base32hex!",) + ZONE.labels))
    short = _rrset_with(rd.replace(next=b"\x01" * 5), at("a").name)
    for rrset in (bad_owner, short):
        assert n3.prove_nodata(q("a"), TXT, [rrset], ZONE).status is BOGUS


def test_no_records_at_all_is_bogus():
    assert n3.prove_nxdomain(q("nope"), [], ZONE).status is BOGUS
    assert n3.prove_nodata(q("a"), TXT, [], ZONE).status is BOGUS


def test_qname_outside_zone_is_bogus():
    assert n3.prove_nxdomain(name("x.other."), list(CHAIN.values()), ZONE).status is BOGUS


def test_single_record_chain_covers_everything_but_itself():
    chain = nsec3_chain(ZONE, {"@": ["SOA", "NS"]})
    (only,) = chain.values()
    qn = q("anything")
    v = n3.prove_nxdomain(qn, [only], ZONE)
    assert v.status is SECURE, v.why


def test_ttl_is_the_least_of_the_records_used():
    qn = q("nope")
    proof = [r.copy() for r in nxdomain_proof(qn)]
    proof[0].ttl = 17
    assert n3.prove_nxdomain(qn, proof, ZONE).ttl == 17


def test_shows_unsigned_cut():
    assert n3.shows_unsigned_cut([at("e")], q("e"))
    assert not n3.shows_unsigned_cut([at("d")], q("d"))  # DS present
    assert not n3.shows_unsigned_cut([at("a")], q("e"))  # not its record
    assert hashed(q("e"), ZONE) == at("e").name


def test_random_hostile_proof_sets_never_prove_an_existing_name_absent():
    """Fuzz: any subset of the genuine chain, for names that exist, never yields a SECURE
    NXDOMAIN, and a SECURE NODATA only where the type is really absent."""
    rng = random.Random(8)
    records = list(CHAIN.values()) + list(OPTOUT.values())
    existing = [q(k) if k != "@" else ZONE for k in NAMES if k not in ("*.w",)]
    for _ in range(400):
        subset = rng.sample(records, rng.randrange(1, 6))
        target = rng.choice(existing)
        assert n3.prove_nxdomain(target, subset, ZONE).status is not SECURE
        qtype = rng.choice([A, TXT, NS, DS, MX])
        v = n3.prove_nodata(target, qtype, subset, ZONE)
        if v.status is SECURE:
            label = "@" if target == ZONE else target.relativize(ZONE).to_text()
            assert dns.rdatatype.to_text(qtype) not in NAMES[label], (target, qtype, v.why)


def test_nsec3_rdata_helper_matches_presentation():
    rd = nsec3_rdata(b"\x00" * 20, ["A"], salt=b"\xab", iterations=3, opt_out=True)
    assert rd.to_text().startswith("1 1 3 ab ")
