"""The engine over zones signed with NSEC3 (RFC 5155), answered by our authoritative code
without sockets: every denial shape validated, opt-out making children insecure (never
secure), the iteration limit, aggressive negative caching from cached NSEC3 (RFC 8198) with
upstream queries counted, and an on-path attacker rewriting NSEC3 proofs.

The test federation (support/federation.py) with cid., cmcc.cid. and bj.cmcc.cid. turned
into NSEC3 zones; cid. uses opt-out (so open.cid., its unsigned child, has no NSEC3).
"""

from __future__ import annotations

import random
import string

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from resolver.dnssec import nsec3 as n3
from resolver.engine import trace as ev
from resolver.engine.cache import Cache
from resolver.engine.engine import Engine
from resolver.status import Status
from support import federation as F
from support.nsec3_chain import nsec3_federation
from support.signing import flip_signature_byte

N = dns.name.from_text
NSEC3, RRSIG, DS = dns.rdatatype.NSEC3, dns.rdatatype.RRSIG, dns.rdatatype.DS
SECURE, INSECURE, BOGUS = Status.SECURE, Status.INSECURE, Status.BOGUS


def build(*, optout=("cid.",), iterations=0, salt=b""):
    return nsec3_federation(F.build(), opt_out=optout, salt=salt, iterations={"bj.cmcc.cid.": iterations})


@pytest.fixture(scope="module")
def fed():
    return build()


class World:
    def __init__(self, fed, tamper=None):
        self.fed = fed
        self.cache = Cache(lambda: fed.now)
        self.net = F.network(fed, tamper=tamper)

    def run(self, qname, qtype="A"):
        before = len(self.net.sent)
        e = Engine(qname, qtype, self.fed.hints(), self.fed.anchor(), self.cache, now=lambda: self.fed.now)
        result = self.net.run(e)
        return result, len(self.net.sent) - before


@pytest.mark.parametrize("qname,qtype,rcode,status,proof", [
    ("pool-7.bj.cmcc.cid.", "A", "NOERROR", SECURE, None),
    ("nope.bj.cmcc.cid.", "A", "NXDOMAIN", SECURE, "closest encloser bj.cmcc.cid."),
    ("a.b.nope.bj.cmcc.cid.", "SVCB", "NXDOMAIN", SECURE, "next closer nope.bj.cmcc.cid."),
    ("pool-7.bj.cmcc.cid.", "TXT", "NOERROR", SECURE, "matches pool-7.bj.cmcc.cid."),
    ("bj.cmcc.cid.", "TXT", "NOERROR", SECURE, "matches bj.cmcc.cid."),
    ("x.wild.bj.cmcc.cid.", "A", "NOERROR", SECURE, "expanded from *.wild"),
    ("x.wild.bj.cmcc.cid.", "TXT", "NOERROR", SECURE, "matches wildcard *.wild.bj.cmcc.cid."),
    ("wild.bj.cmcc.cid.", "A", "NOERROR", SECURE, "matches wild.bj.cmcc.cid."),  # empty non-terminal
    ("c3.bj.cmcc.cid.", "A", "NOERROR", SECURE, None),  # CNAME chain
    ("bj.cmcc.cid.", "DS", "NOERROR", SECURE, None),
    ("pool-1.open.cid.", "A", "NOERROR", INSECURE, "opt-out"),  # unsigned child in cid.'s opt-out span
    ("open.cid.", "DS", "NOERROR", INSECURE, "opt-out"),
    ("nx.cid.", "A", "NXDOMAIN", INSECURE, "opt-out"),  # RFC 5155 §9.2: cannot be proven there
    ("node.far.cid.", "A", "NOERROR", SECURE, None),
])
def test_every_denial_shape_validates(fed, qname, qtype, rcode, status, proof):
    result, _ = World(fed).run(qname, qtype)
    assert (result.rcode, result.status) == (rcode, status), result.why
    if proof:
        assert proof in result.why


def test_no_opt_out_unsigned_child_is_insecure_by_matching_nsec3():
    fed = build(optout=())
    result, _ = World(fed).run("pool-1.open.cid.")
    assert result.status is INSECURE and result.rrset is not None
    assert "NS, no DS, no SOA" in result.why or "no DS" in result.why
    nx, _ = World(fed).run("nx.cid.")
    assert (nx.rcode, nx.status) == ("NXDOMAIN", SECURE)


def test_random_names_are_denied_from_cached_nsec3_without_asking(fed):
    rng = random.Random(3)
    w = World(fed)
    w.run("pool-7.bj.cmcc.cid.")
    spans = sum(1 for node in fed.zones["bj.cmcc.cid."].nodes.values()
                if node.get_rdataset(1, NSEC3) is not None)
    total = 0
    for _ in range(200):
        label = "".join(rng.choice(string.ascii_lowercase) for _ in range(10))
        result, n = w.run(f"{label}.bj.cmcc.cid.", rng.choice(["A", "AAAA", "SVCB"]))
        assert (result.rcode, result.status) == ("NXDOMAIN", SECURE), result.why
        total += n
    assert total <= spans, total
    result, n = w.run("never-seen-before.bj.cmcc.cid.")
    assert n == 0 and "cached NSEC3" in result.why
    assert any(isinstance(e, ev.CacheDenial) for e in result.trace)
    assert any(r.rdtype == NSEC3 for r in result.authority)


def test_cached_nsec3_proves_nodata_for_other_types(fed):
    w = World(fed)
    w.run("pool-7.bj.cmcc.cid.", "TXT")
    result, n = w.run("pool-7.bj.cmcc.cid.", "MX")
    assert n == 0 and (result.rcode, result.status) == ("NOERROR", SECURE) and result.rrset is None
    present, n = w.run("pool-7.bj.cmcc.cid.", "AAAA")  # in the bitmap: must be asked
    assert n >= 1 and present.rrset is not None


def test_opt_out_spans_never_synthesise_denials(fed):
    w = World(fed)
    w.run("nx.cid.")
    result, n = w.run("nx2.cid.")
    assert n >= 1 and result.status is INSECURE  # asked again: an opt-out span proves nothing secure


def test_iterations_above_the_limit_make_denials_insecure():
    fed = build(iterations=n3.MAX_ITERATIONS + 1)
    w = World(fed)
    positive, _ = w.run("pool-7.bj.cmcc.cid.")
    assert positive.status is SECURE  # signatures still count
    nx, _ = w.run("nope.bj.cmcc.cid.")
    assert (nx.rcode, nx.status) == ("NXDOMAIN", INSECURE) and "RFC 9276" in nx.why
    again, n = w.run("nope2.bj.cmcc.cid.")
    assert n >= 1 and again.status is INSECURE  # such a chain is never cached for synthesis


def test_salted_chain_with_iterations_within_limit_is_secure():
    fed = build(iterations=10, salt=b"\xca\xfe")
    nx, _ = World(fed).run("nope.bj.cmcc.cid.")
    assert (nx.rcode, nx.status) == ("NXDOMAIN", SECURE), nx.why


# --- an on-path attacker ---------------------------------------------------------------------------

def from_bj(fn):
    def tamper(server, query, response, tcp):
        return fn(query, response) if server[0] == "127.0.0.4" else response
    return tamper


def test_forged_nsec3_signature_is_bogus(fed):
    @from_bj
    def corrupt(query, response):
        response.authority = [flip_signature_byte(r) if r.rdtype == RRSIG and r.covers == NSEC3 else r
                              for r in response.authority]
        return response
    w = World(fed, corrupt)
    result, _ = w.run("nope.bj.cmcc.cid.")
    assert result.status is BOGUS and result.rcode == "SERVFAIL"
    assert w.cache.nsec_zone(N("other.bj.cmcc.cid.")) is None  # nothing forged reached the NSEC3 cache


def test_stripped_nsec3_proof_is_bogus(fed):
    @from_bj
    def strip(query, response):
        response.authority = [r for r in response.authority if NSEC3 not in (r.rdtype, r.covers)]
        return response
    result, _ = World(fed, strip).run("nope.bj.cmcc.cid.")
    assert result.status is BOGUS and "NSEC3 proof" in result.why


def test_partial_nsec3_proof_is_bogus(fed):
    """Drop one NSEC3 (and its RRSIG) of the three of an NXDOMAIN proof."""
    @from_bj
    def drop_one(query, response):
        owners = [r.name for r in response.authority if r.rdtype == NSEC3]
        if len(owners) >= 2:
            victim = owners[-1]
            response.authority = [r for r in response.authority if r.name != victim]
        return response
    result, _ = World(fed, drop_one).run("nope.bj.cmcc.cid.")
    assert result.status is BOGUS


def test_nxdomain_for_an_existing_name_with_a_replayed_proof_is_bogus(fed):
    """Answer pool-7 A with the (genuine, signed) NXDOMAIN proof of another name."""
    replay = {}

    @from_bj
    def swap(query, response):
        qname = query.question[0].name
        if qname == N("nope.bj.cmcc.cid."):
            replay["authority"] = list(response.authority)
        elif qname == N("pool-7.bj.cmcc.cid.") and "authority" in replay:
            forged = dns.message.make_response(query)
            forged.flags |= dns.flags.AA
            forged.set_rcode(dns.rcode.NXDOMAIN)
            forged.authority = replay["authority"]
            return forged
        return response
    w = World(fed, swap)
    w.run("nope.bj.cmcc.cid.")
    w.cache.flush(name="pool-7.bj.cmcc.cid.")
    result, _ = w.run("pool-7.bj.cmcc.cid.", "SVCB")
    assert result.status is BOGUS and result.rrset is None, result.why


def test_opt_out_span_cannot_claim_a_signed_child_is_unsigned():
    """cmcc.cid. is a signed child of the opt-out zone cid.: strip its DS from the referral
    and answer its DS query with an opt-out span (replayed from cid.'s NXDOMAIN proof for
    another name). The span does not cover cmcc's hash (the chain has cmcc's own NSEC3), so
    cmcc stays secure or the answer is bogus — never insecure."""
    fed = build()
    replay = {}

    def tamper(server, query, response, tcp):
        if server[0] != "127.0.0.2":
            return response
        qname, qtype = query.question[0].name, query.question[0].rdtype
        if qname == N("zz-nothing.cid."):
            replay["authority"] = list(response.authority)
            return response
        for section in ("answer", "authority"):
            setattr(response, section, [r for r in getattr(response, section) if DS not in (r.rdtype, r.covers)])
        if qtype == DS and qname == N("cmcc.cid.") and replay:
            forged = dns.message.make_response(query)
            forged.flags |= dns.flags.AA
            forged.authority = replay["authority"]
            return forged
        return response
    w = World(fed, tamper)
    w.run("zz-nothing.cid.")
    result, _ = w.run("pool-7.bj.cmcc.cid.")
    assert result.status is not INSECURE and result.status is not SECURE, result.why


def test_nsec3_from_another_zone_does_not_prove_anything(fed):
    """bj's answer for a name carries cmcc.cid.'s NSEC3s (genuine, signed by cmcc): they are
    not bj's records, so they prove nothing about names in bj."""
    other = {}

    def tamper(server, query, response, tcp):
        qname = query.question[0].name
        if server[0] == "127.0.0.3" and response.rcode() == dns.rcode.NXDOMAIN:
            other["authority"] = [r for r in response.authority if NSEC3 in (r.rdtype, r.covers)]
        if server[0] == "127.0.0.4" and qname == N("nope.bj.cmcc.cid.") and other:
            response.authority = [r for r in response.authority if NSEC3 not in (r.rdtype, r.covers)]
            response.authority += other["authority"]
        return response
    w = World(fed, tamper)
    w.run("zz.cmcc.cid.")
    assert other
    result, _ = w.run("nope.bj.cmcc.cid.")
    assert result.status is BOGUS
