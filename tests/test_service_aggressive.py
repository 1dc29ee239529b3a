"""Aggressive use of the validated NSEC chain (RFC 8198) by `cid serve resolver`.

Driven as a user drives it: the CLI in a subprocess, our authoritative servers (the signed test
federation) counting every query they receive, random names asked with dnspython. They must all
be answered NXDOMAIN with AD while the zone's server is asked at most once per NSEC span, and
not at all once the chain is cached.

And the fast path that answers those denials without a task (resolver/service/denial.py): its
proof against resolver.dnssec.nsec on real, fuzzed and hostile chains, and its responses byte for
byte against the slow path's (RecursiveServer.answer) for the same cache, as time passes and
entries expire or are flushed."""

from __future__ import annotations

import bisect
import collections
import contextlib
import itertools
import random
import string
import time

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from resolver import Resolver
from resolver.auth import server as auth_server
from resolver.dnssec import nsec as nsec_proofs
from resolver.service import RecursiveServer, denial
from resolver.service.answer import read_query
from resolver.status import Status
from support import federation as F
from support.demo_proc import serving_resolver
from support.net import free_port
from support.signing import NOW, nsec, nsec_chain

N = dns.name.from_text
ZONE = "bj.cmcc.cid."
ADDRESS = "127.0.61.21"  # the resolver under test

received: collections.Counter[str] = collections.Counter()  # queries per authoritative address


class CountingAuthServer(auth_server.AuthServer):
    """An AuthServer that counts each query it receives (repeats too: no UDP response cache,
    so every datagram reaches ``handle``)."""

    def udp_cache(self):
        return {}, None

    def handle(self, wire, tcp, later):
        for host, _ in self.listen:
            received[host] += 1
        return super().handle(wire, tcp, later)


class Service:
    def __init__(self, fed: F.Federation, address: str, port: int):
        self.fed, self.address, self.port = fed, address, port

    def ask(self, name: str, rdtype: str, *, do: bool) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=do)
        if not do:
            query.flags |= dns.flags.AD  # RFC 6840 §5.7: AD without DO asks for the AD bit only
        return dns.query.udp(query, self.address, port=self.port, timeout=5)

    def upstream(self) -> dict[str, int]:
        return dict(received)


@pytest.fixture(scope="module", params=["nsec", "nsec3"])
def service(request, tmp_path_factory):
    fed = F.build(now=time.time())  # a real process validates against the real clock
    if request.param == "nsec3":
        from support.nsec3_chain import nsec3_federation
        nsec3_federation(fed)
    work = tmp_path_factory.mktemp("aggressive")
    anchor = work / "anchor.key"
    anchor.write_text(fed.anchor_text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth_server, "AuthServer", CountingAuthServer)  # what serving_stores starts
        servers = F.stores_serving_in_thread(fed.stores())
        port = servers.__enter__()
    try:
        listen = free_port(ADDRESS)
        args = ["--hint", f"cid.={fed.addresses['cid.']}", "--port", str(port), "--trust-anchor", str(anchor)]
        with serving_resolver(args, ADDRESS, listen, work / "resolver.log"):
            yield Service(fed, ADDRESS, listen)
    finally:
        servers.__exit__(None, None, None)


def random_label(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(12))


def assert_secure_nxdomain(response: dns.message.Message, name: str, do: bool,
                           denial: int = dns.rdatatype.NSEC) -> None:
    assert response.rcode() == dns.rcode.NXDOMAIN, (name, response)
    assert response.flags & dns.flags.AD, (name, response)
    assert not response.answer
    kinds = {(r.rdtype, r.covers) for r in response.authority}
    assert (dns.rdatatype.SOA, 0) in kinds and response.authority[0].name == N(ZONE)
    if do:  # the proof, for a validator downstream (RFC 4035 §3.1.3.2)
        assert {(denial, 0), (dns.rdatatype.RRSIG, denial),
                (dns.rdatatype.RRSIG, dns.rdatatype.SOA)} <= kinds, response
    else:
        assert kinds == {(dns.rdatatype.SOA, 0)}, response


def test_random_names_cost_at_most_one_query_per_nsec_span_then_none(service):
    fed = service.fed
    bj = fed.addresses[ZONE]
    zone = fed.zones[ZONE]
    hashed = any(node.get_rdataset(1, dns.rdatatype.NSEC3) is not None for node in zone.nodes.values())
    denial = dns.rdatatype.NSEC3 if hashed else dns.rdatatype.NSEC
    owners = sorted(name for name, node in zone.nodes.items() if node.get_rdataset(1, denial) is not None)
    spans = len(owners)
    warm = service.ask(f"pool-7.{ZONE}", "A", do=True)  # delegations and keys in place
    assert warm.rcode() == dns.rcode.NOERROR and warm.flags & dns.flags.AD

    def check(name: str, rdtype: str, do: bool) -> None:
        assert_secure_nxdomain(service.ask(name, rdtype, do=do), name, do, denial)

    rng = random.Random(7)
    before = service.upstream()
    for i in range(200):
        check(f"{random_label(rng)}.{ZONE}", rng.choice(["A", "SVCB", "TXT"]), i % 2 == 0)
    first = service.upstream()
    assert first.get(bj, 0) - before.get(bj, 0) <= spans, (first, before, spans)

    # The whole chain cached: one name inside every span the single-label names fall in. NSEC:
    # the apex's, then each owner's first label followed by "0", just after it in canonical
    # order. NSEC3: a random label whose hash falls in each span of the hashed chain.
    apex = N(ZONE)
    if hashed:
        import base64
        starts = sorted(base64.b32hexdecode(o.labels[0].upper()) for o in owners)
        found: dict[int, str] = {}
        while len(found) < spans:
            label = random_label(rng)
            digest = base64.b32hexdecode(dns.dnssec.nsec3_hash(f"{label}.{ZONE}", b"", 0, 1))
            if any(digest == s_ for s_ in starts):
                continue
            found.setdefault(bisect.bisect_right(starts, digest) - 1, label)  # -1: the wrapping span
        labels = list(found.values())
    else:
        labels = ["0" if owner == apex else owner.relativize(apex).labels[-1].decode() + "0" for owner in owners]
    for label in labels:
        check(f"{label}.{ZONE}", "A", True)
    cached = service.upstream()
    assert cached.get(bj, 0) - before.get(bj, 0) <= spans, (cached, before, spans)

    for i in range(50):
        check(f"{random_label(rng)}.{ZONE}", rng.choice(["A", "AAAA", "SVCB", "TXT", "MX"]), i % 2 == 1)
    assert service.upstream() == cached  # no server was asked anything


# --- The fast path (resolver/service/denial.py) against the slow path and resolver.dnssec.nsec ---

OPS = N("ops.cid.")
# tests/test_nsec.py's zone: an empty non-terminal (b), secure and insecure delegations (d, e),
# a DNAME (dn), a CNAME (m), a wildcard (*.w)
OPS_CHAIN = nsec_chain(OPS, {"@": ["SOA", "NS", "DNSKEY"], "a": ["A"], "c.b": ["A"], "d": ["NS", "DS"],
                             "dn": ["DNAME"], "e": ["NS"], "m": ["CNAME"], "*.w": ["TXT"]})
HOSTILE = [
    nsec("a.ops.cid.", "zzz.cid.", "A"),  # next name outside the zone
    nsec("m.ops.cid.", "a.ops.cid.", "CNAME"),  # wraps, but not to the apex
    nsec("q.ops.cid.", "q.ops.cid.", "A"),  # a loop that is no apex
    nsec("other.cid.", "zzz.other.cid.", "SOA", "NS"), nsec("a.cid.", "z.cid.", "A"),  # another zone's
    nsec("ops.cid.", "a.ops.cid.", "NS"),  # an apex without SOA (parent side of the cut)
    nsec("ops.cid.", "a.ops.cid.", "SOA", "NS", "DNAME"),  # a DNAME at the apex
    nsec("a.ops.cid.", "zz.ops.cid.", "A", ttl=60),  # a span over the whole zone (a stale chain)
    nsec("A.OPS.cid.", "C.b.Ops.CID.", "A", ttl=120),  # case differences
    nsec("*.w.ops.cid.", "ops.cid.", "CNAME"),  # a wildcard CNAME
    nsec("x.d.ops.cid.", "y.d.ops.cid.", "A"),  # below a delegation (occluded)
    nsec("b.ops.cid.", "c.b.ops.cid.", "A", "TXT", "MX", "TYPE1234", "TYPE65380"),  # where the ENT is
    nsec("w.ops.cid.", "*.w.ops.cid.", ttl=30),  # an NSEC for the wildcard's parent
]
QTYPES = (dns.rdatatype.A, dns.rdatatype.TXT, dns.rdatatype.NS, dns.rdatatype.CNAME, dns.rdatatype.DS,
          dns.rdatatype.DNAME, dns.rdatatype.SOA, 1234)


def reference(qname, qtype, nsecs, zone):
    """engine.aggressive.deny_from_cache's decision over resolver.dnssec.nsec."""
    verdict = nsec_proofs.prove_nxdomain(qname, nsecs, zone)
    if verdict.status is Status.SECURE:
        return dns.rcode.NXDOMAIN, verdict.ttl
    verdict = nsec_proofs.prove_nodata(qname, qtype, nsecs, zone)
    return (dns.rcode.NOERROR, verdict.ttl) if verdict.status is Status.SECURE else None


def fast(qname, qtype, nsecs, zone):
    zkey = denial.key_of(zone)
    records = [f for f in (denial.facts(r, zkey) for r in nsecs) if f is not None]
    return denial.deny(denial.key_of(qname), qtype, records, zkey)


def probe_names(rng: random.Random, zone: dns.name.Name, owners) -> list[dns.name.Name]:
    """Every owner, names just around and below each, the owners' parents, wildcards, case
    variants, names outside the zone, and random names of 1-3 labels from a hostile alphabet."""
    out = {zone, N("cid."), N("x.other.cid."), N("zzz.cid.")}
    for owner in owners:
        first = owner.labels[0] if owner != zone else b""
        rest = owner.labels[1:] if owner != zone else owner.labels
        out |= {owner, owner.parent(), N("x", owner), N("*", owner), N("x.y", owner)}
        for tail in (b"-", b"\x00", b"0", b"zz", b"\xff"):
            if first and len(first) < 60:
                out.add(dns.name.Name((first + tail, *rest)))
        out.add(dns.name.Name(tuple(label.upper() for label in owner.labels)))
    alphabet = b"abcdwxyz09-*_\x00\xffAZ"
    for _ in range(60):
        labels = tuple(bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 4)))
                       for _ in range(rng.randint(1, 3)))
        out.add(dns.name.Name(labels + zone.labels))
    return sorted(out)


def test_fast_proof_agrees_with_the_nsec_module_on_real_fuzzed_and_hostile_chains():
    rng = random.Random(8198)
    full = list(OPS_CHAIN.values())
    names = probe_names(rng, OPS, list(OPS_CHAIN) + [r.name for r in HOSTILE])
    proven = 0
    for qname in names:  # the whole chain, in canonical order
        for qtype in QTYPES:
            want = reference(qname, qtype, full, OPS)
            assert fast(qname, qtype, full, OPS) == want, (qname, qtype)
            proven += want is not None
    assert proven > 50
    pool = full + HOSTILE
    for _ in range(120):  # random subsets, in random order (the first covering NSEC is the one used)
        nsecs = rng.sample(pool, rng.randint(1, len(pool)))
        for qname in rng.sample(names, 12):
            for qtype in rng.sample(QTYPES, 3):
                assert fast(qname, qtype, nsecs, OPS) == reference(qname, qtype, nsecs, OPS), \
                    (qname, dns.rdatatype.to_text(qtype), [r.to_text() for r in nsecs])


def test_fast_proof_agrees_on_the_federation_zone():
    fed = F.build()
    zone = fed.zones[ZONE]
    apex = N(ZONE)
    nsecs = []
    for owner, node in zone.nodes.items():
        rdataset = node.get_rdataset(1, dns.rdatatype.NSEC)
        if rdataset is not None:
            nsecs.append(dns.rrset.from_rdata_list(owner, rdataset.ttl, list(rdataset)))
    names = probe_names(random.Random(4035), apex, [r.name for r in nsecs])
    for qname in names:
        for qtype in QTYPES:
            assert fast(qname, qtype, nsecs, apex) == reference(qname, qtype, nsecs, apex), (qname, qtype)


class FastAndSlow:
    """A RecursiveServer (not listening) over the federation, on a frozen resolver clock and a
    stepped monotonic clock: each question answered by the fast path (Denials.answer) and by
    the slow path (RecursiveServer.answer, response caches emptied)."""

    def __init__(self, server: RecursiveServer, clock: list[float], mono: list[float]):
        self.server, self.clock, self.mono = server, clock, mono
        self.fast = self.total = 0
        self.ids = itertools.count(1)

    async def slow(self, wire: bytes, tcp: bool) -> bytes:
        request = read_query(wire, tcp=tcp)
        assert not isinstance(request, bytes) and request is not None
        self.server.udp_responses.clear()
        self.server.tcp_responses.clear()
        return await self.server.answer(request, wire[2:])

    async def ask(self, name: str, rdtype: str = "A", *, do: bool = False, ad: bool = False, edns: bool = True,
                  payload: int = 1232, tcp: bool = False) -> tuple[bytes | None, bytes]:
        query = dns.message.make_query(name, rdtype, use_edns=0 if edns else False, want_dnssec=do,
                                       payload=payload)
        query.id = next(self.ids) & 0xFFFF
        if ad:
            query.flags |= dns.flags.AD
        wire = query.to_wire()
        got = self.server.denials.answer(wire, tcp)
        want = await self.slow(wire, tcp)
        self.total += 1
        if got is not None:
            self.fast += 1
            assert got == want, (name, rdtype, dns.message.from_wire(got).to_text(), dns.message.from_wire(want).to_text())
        return got, want


@contextlib.asynccontextmanager
async def fast_and_slow_over(fed):
    """FastAndSlow over ``fed`` served by our authoritative servers on loopback."""
    clock, mono = [float(NOW)], [1000.0]
    async with F.serving(fed) as port:
        resolver = Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0, clock=lambda: clock[0])
        server = RecursiveServer(resolver, [("127.0.0.1", 0)], clock=lambda: mono[0])
        try:
            yield FastAndSlow(server, clock, mono)
        finally:
            await resolver.close()


@pytest.fixture
async def fast_and_slow():
    async with fast_and_slow_over(F.build(now=NOW)) as fs:
        yield fs


def variants(rng: random.Random, name: str):
    """The same question as stubs and validators ask it: plain, AD, DO, no EDNS, small
    payload, TCP, 0x20 case."""
    mixed = "".join(c.upper() if rng.random() < 0.5 else c for c in name)
    return [(name, {}), (name, {"ad": True}), (name, {"do": True}), (name, {"edns": False}),
            (mixed, {"do": True, "payload": 512}), (mixed, {"do": True, "tcp": True}), (mixed, {"ad": True})]


async def test_fast_path_answers_exactly_as_the_slow_path(fast_and_slow):
    fs = fast_and_slow
    rng = random.Random(6840)
    await fs.ask(f"pool-7.{ZONE}", "A", do=True)
    for _ in range(40):  # the chain of bj.cmcc.cid. learned the slow way
        await fs.ask(f"{random_label(rng)}.{ZONE}", "A")
    fs.fast = fs.total = 0
    for i in range(120):  # random names, each question in several shapes
        name = f"{random_label(rng)}.{ZONE}"
        for variant, options in variants(rng, name):
            await fs.ask(variant, rng.choice(["A", "AAAA", "SVCB", "TXT", "MX", "TYPE1234"]), **options)
    assert fs.fast >= 0.6 * fs.total, (fs.fast, fs.total)  # the common shapes go the fast way
    # Hostile and unusual questions: existing names (NODATA, or data), CNAMEs, the wildcard and
    # below it, the empty non-terminal, deeper names, other zones, an insecure delegation, DS.
    odd = ["pool-7", "c0", "c9", "loop1", "alias", "wild", "x.wild", "y.x.wild", "*.wild", "a.b.c", "x.pool-7",
           "backup", "ns", "x.ns", "*", "*.x", ""]
    for label in odd:
        name = f"{label}.{ZONE}" if label else ZONE
        for rdtype in ("A", "TXT", "MX", "SVCB", "CNAME", "DS", "NSEC", "TYPE65380", "SOA", "DNSKEY"):
            await fs.ask(name, rdtype, do=rng.random() < 0.5)
    for name in ("nope.cid.", "x.nope.cid.", "nope.cmcc.cid.", "x.open.cid.", "new.open.cid.", "x.far.cid.",
                 "deep.er.name.bj.cmcc.cid."):
        for rdtype in ("A", "TXT", "DS"):
            await fs.ask(name, rdtype, do=True)
            await fs.ask(name, rdtype, ad=True)


async def test_fast_path_counts_ttls_down_and_stops_at_expiry(fast_and_slow):
    fs = fast_and_slow
    rng = random.Random(2308)
    await fs.ask(f"pool-7.{ZONE}", "A")
    for _ in range(40):
        await fs.ask(f"{random_label(rng)}.{ZONE}", "A")
    for step in (0, 1, 120, 299):  # the NSECs (TTL 300) and SOA counting down, and one second left
        fs.clock[0] = NOW + step
        fs.mono[0] += 2  # past REFRESH: every span re-read
        least = []
        for i in range(20):
            got, _ = await fs.ask(f"{random_label(rng)}.{ZONE}", "A", do=i % 2 == 0)
            if got is not None:
                least.append(min(r.ttl for r in dns.message.from_wire(got).authority))
        assert least and min(least) <= 300 - step  # spans cached at NOW count down (and equal the slow path's)
    fs.clock[0] = NOW + 301  # the NSECs expired: the slow path asks again, the fast one must not answer
    got, want = await fs.ask(f"{random_label(rng)}.{ZONE}", "A", do=True)
    assert got is None and dns.message.from_wire(want).rcode() == dns.rcode.NXDOMAIN


async def test_fast_path_rereads_the_cache_within_refresh(fast_and_slow):
    """A flush (or an eviction, or a trust change) is seen by the fast path within REFRESH
    seconds of the monotonic clock — the same bound as the rendered-response cache."""
    fs = fast_and_slow
    rng = random.Random(9077)
    await fs.ask(f"pool-7.{ZONE}", "A")
    for _ in range(40):
        await fs.ask(f"{random_label(rng)}.{ZONE}", "A")
    got, _ = await fs.ask(f"{random_label(rng)}.{ZONE}", "A")
    assert got is not None
    cache = fs.server.resolver.cache
    cache.flush(subtree=ZONE)
    fs.mono[0] += denial.REFRESH
    wire = dns.message.make_query(f"{random_label(rng)}.{ZONE}", "A").to_wire()
    assert fs.server.denials.answer(wire, False) is None  # the trust and the NSECs are gone
    await fs.ask(f"{random_label(rng)}.{ZONE}", "A")  # learned again the slow way
    fs.mono[0] += denial.REFRESH
    fs.fast = 0
    for _ in range(30):
        await fs.ask(f"{random_label(rng)}.{ZONE}", "A")
    assert fs.fast > 0


async def test_cached_answers_for_the_name_come_before_the_nsecs(fast_and_slow):
    """What the cache holds for the question itself (an RRset, a CNAME, a negative answer) is
    what the slow path answers from, before any NSEC proof: the fast path leaves those alone."""
    fs = fast_and_slow
    rng = random.Random(2181)
    await fs.ask(f"pool-7.{ZONE}", "A")
    for _ in range(40):
        await fs.ask(f"{random_label(rng)}.{ZONE}", "A")
    cache = fs.server.resolver.cache
    data, alias, negative = (f"{random_label(rng)}.{ZONE}" for _ in range(3))
    for name in (data, alias, negative):
        got, _ = await fs.ask(name, "TXT")
        assert got is not None  # all three denied from the NSECs so far
    # e.g. learned from another answer after the zone changed, while the old NSECs still hold
    cache.put_rrset(dns.rrset.from_text(data, 300, "IN", "A", "192.0.2.1"), None, Status.INSECURE, "test")
    cache.put_rrset(dns.rrset.from_text(alias, 300, "IN", "CNAME", f"pool-7.{ZONE}"), None, Status.INSECURE, "test")
    cache.put_negative(N(negative), dns.rdatatype.A, "NXDOMAIN", (), Status.INSECURE, "test", 300)
    for name, rcode in ((data, dns.rcode.NOERROR), (alias, dns.rcode.NOERROR), (negative, dns.rcode.NXDOMAIN)):
        got, want = await fs.ask(name, "A", do=True)
        assert got is None
        answer = dns.message.from_wire(want)
        assert answer.rcode() == rcode and not answer.flags & dns.flags.AD  # not the NSECs' SECURE denial


async def test_nodata_from_the_only_cached_nsec(fast_and_slow):
    """Before any NXDOMAIN the apex NSEC is not cached: the engine's lookups below the first
    cached owner wrap to the last one (Cache.nsec_around), and so must the fast path's."""
    fs = fast_and_slow
    await fs.ask(f"pool-7.{ZONE}", "TXT")  # NODATA from upstream: the NSEC at pool-7 alone
    for rdtype in ("MX", "TYPE1234", "NAPTR", "HINFO", "TXT", "A", "CAA"):
        for options in ({}, {"do": True}, {"ad": True}):
            await fs.ask(f"pool-7.{ZONE}", rdtype, **options)
    assert fs.fast >= 12
    for name in (f"backup.{ZONE}", f"a.{ZONE}", f"zz.{ZONE}", ZONE):  # elsewhere: as the slow path says
        await fs.ask(name, "MX", do=True)


async def test_fast_path_follows_single_nsecs_leaving_the_cache(fast_and_slow):
    """One NSEC flushed (or evicted): once re-read, the names it covered go the slow way (which
    asks again) and the mirror forgets it; the others stay fast; answers stay the slow path's."""
    fs = fast_and_slow
    rng = random.Random(5155)
    await fs.ask(f"pool-7.{ZONE}", "A")
    names = [f"{random_label(rng)}.{ZONE}" for _ in range(200)]
    for name in names[:60]:
        await fs.ask(name, "A")
    cache = fs.server.resolver.cache
    for owner in ("pool-7", "ns", "c9"):
        cache.flush(name=f"{owner}.{ZONE}")
        fs.mono[0] += denial.REFRESH
        fs.fast = fs.total = 0
        for name in names[60:]:
            await fs.ask(name, "TXT", do=True)
        assert fs.fast > 0


async def test_fast_path_needs_the_zone_keys_trusted(fast_and_slow):
    """The engine uses cached NSECs only while the zone's keys are trusted (SECURE); so does the
    fast path, once it has re-read the trust (REFRESH, or the slow path answering)."""
    fs = fast_and_slow
    rng = random.Random(4033)
    await fs.ask(f"pool-7.{ZONE}", "A")
    for _ in range(40):
        await fs.ask(f"{random_label(rng)}.{ZONE}", "A")
    cache = fs.server.resolver.cache
    cache.put_trust(N(ZONE), Status.BOGUS, "test: keys no longer validate", None, 60)
    fs.mono[0] += denial.REFRESH
    wire = dns.message.make_query(f"{random_label(rng)}.{ZONE}", "A").to_wire()
    assert fs.server.denials.answer(wire, False) is None
    got, want = await fs.ask(f"{random_label(rng)}.{ZONE}", "A", do=True)
    assert got is None and dns.message.from_wire(want).rcode() == dns.rcode.SERVFAIL


async def test_fast_path_on_hostile_names(fast_and_slow):
    """Labels that sort before the wildcard's "*" or after everything, octets that are not
    letters, deep names below existing and missing names, names at the length limit: whatever
    the fast path answers is the slow path's answer."""
    fs = fast_and_slow
    rng = random.Random(1035)
    await fs.ask(f"pool-7.{ZONE}", "A")
    for _ in range(40):
        await fs.ask(f"{random_label(rng)}.{ZONE}", "A")
    apex = N(ZONE)
    alphabet = b"\x00\x01!#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~\x7f\x80\xff"
    existing = [b"pool-7", b"c0", b"wild", b"alias", b"ns"]
    names = []
    for _ in range(150):
        depth = rng.choice([1, 1, 1, 2, 3])
        labels = [bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(depth)]
        if depth > 1 and rng.random() < 0.5:
            labels[-1] = rng.choice(existing)  # below an existing name (or the empty non-terminal)
        names.append(dns.name.Name((*labels, *apex.labels)))
    names.append(dns.name.Name((b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 40, *apex.labels)))  # 255 octets
    for name in names:
        for options in ({}, {"do": True}):
            await fs.ask(name, rng.choice(["A", "TXT", "MX"]), **options)
    assert fs.fast > 100


async def test_a_cached_dname_above_the_name_comes_before_the_nsecs(fast_and_slow):
    """The engine applies a DNAME cached at an ancestor (RFC 6672 §3.2) before denying from NSECs:
    the fast path leaves names below one alone, at the apex or between the apex and the name."""
    fs = fast_and_slow
    rng = random.Random(6672)
    await fs.ask(f"pool-7.{ZONE}", "A")
    for _ in range(40):
        await fs.ask(f"{random_label(rng)}.{ZONE}", "A")
    cache = fs.server.resolver.cache
    deep = f"{random_label(rng)}.sub.{ZONE}"
    got, _ = await fs.ask(deep, "A")
    assert got is not None
    cache.put_rrset(dns.rrset.from_text(f"sub.{ZONE}", 300, "IN", "DNAME", f"pool-7.{ZONE}"), None,
                    Status.INSECURE, "test")
    got, _ = await fs.ask(f"{random_label(rng)}.sub.{ZONE}", "A")
    assert got is None
    got, _ = await fs.ask(f"{random_label(rng)}.{ZONE}", "A")
    assert got is not None  # beside it, the NSECs still answer
    cache.put_rrset(dns.rrset.from_text(ZONE, 300, "IN", "DNAME", "example."), None, Status.INSECURE, "test")
    fs.mono[0] += denial.REFRESH
    for _ in range(5):
        got, _ = await fs.ask(f"{random_label(rng)}.{ZONE}", "A")
        assert got is None
