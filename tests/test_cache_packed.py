"""The cache's compact form and hot layer: RRsets, RRSIGs, proofs and negative answers come back
from the packed bytes exactly as stored (records, TTLs, owner spelling, why); names that only
look alike never share a key; and a repeated Resolver.lookup hit, served from the hot layer,
is the same answer the full cache path gives — replaced, flushed, expired or contradicted
entries are never served from it, and it stays inside max_bytes. No sockets: the Resolver's
cache is filled directly and every lookup here is a hit."""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

import resolver  # noqa: F401  (registers CAPS/LOAD)
from resolver import Resolver
from resolver.engine.cache import Cache
from resolver.engine.packed import pack, unpack
from resolver.engine.trace import CacheHit
from resolver.status import Status

N = dns.name.from_text
A, AAAA, SVCB, RRSIG, TXT = (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.SVCB, dns.rdatatype.RRSIG,
                             dns.rdatatype.TXT)
T0 = 1_767_225_600.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def rrsig(owner: str, covered: str, ttl: int = 300, signer: str = "bj.cmcc.cid.") -> dns.rrset.RRset:
    text = f"{covered} 15 4 {ttl} 20270101000000 20260101000000 12345 {signer} " + "A" * 86 + "=="
    return dns.rrset.from_text(owner, ttl, "IN", "RRSIG", text)


def svcb(owner: str = "pool-7.bj.cmcc.cid.") -> dns.rrset.RRset:
    return dns.rrset.from_text(owner, 300, "IN", "SVCB", "1 Backup.bj.cmcc.cid. alpn=h2,h3 port=8443",
                               "2 . ipv4hint=192.0.2.9")


def caps(owner: str = "pool-7.bj.cmcc.cid.") -> dns.rrset.RRset:
    return dns.rrset.from_text(owner, 3600, "IN", "CAPS", "accel_kind=gpu accel_count=8 region=bj")


def soa(zone: str = "bj.cmcc.cid.") -> dns.rrset.RRset:
    return dns.rrset.from_text(zone, 3600, "IN", "SOA", f"ns.{zone} hostmaster.{zone} 1 7200 900 1209600 300")


def nsec(owner: str, after: str, types: str = "A RRSIG NSEC") -> dns.rrset.RRset:
    return dns.rrset.from_text(owner, 300, "IN", "NSEC", f"{after} {types}")


# --- the packed form ---------------------------------------------------------------------------------

def test_pack_round_trip_keeps_records_ttls_types_and_none():
    sigs = rrsig("pool-7.bj.cmcc.cid.", "SVCB", ttl=120)
    empty = dns.rrset.RRset(N("x.cid."), dns.rdataclass.IN, RRSIG, A)
    empty.ttl = 77
    items = [svcb(), sigs, None, caps(), empty, soa()]
    back = unpack(pack(items))
    assert back == items  # RRset equality: owner, class, type, covers and every record
    assert [r.ttl if r is not None else None for r in back] == [300, 120, None, 3600, 77, 3600]
    assert back[1].covers == SVCB and back[4].covers == A and len(back[4]) == 0
    assert unpack(pack(items), limit=2) == items[:2]


def test_pack_keeps_owner_and_rdata_name_spelling():
    mixed = svcb("Pool-7.BJ.cmcc.cid.")
    owner = N("pool-7.bj.cmcc.cid.")
    rrset, sigs = unpack(pack((mixed, rrsig("POOL-7.bj.cmcc.cid.", "SVCB")), owner), owner)
    assert rrset.name is owner and sigs.name is owner  # the entry's one spelling (RFC 4034 §3)
    targets = sorted(rd.target.to_text() for rd in rrset)
    assert targets == [".", "Backup.bj.cmcc.cid."]  # names inside RDATA keep their case
    alone = unpack(pack((mixed,)))[0]
    assert alone.name.labels == mixed.name.labels  # no owner given: exactly as received


def test_rrset_entry_gives_back_what_was_stored():
    cache = Cache(Clock())
    rrset, sigs = svcb("Pool-7.bj.cmcc.cid."), rrsig("Pool-7.bj.cmcc.cid.", "SVCB")
    proof = (nsec("*.bj.cmcc.cid.", "zz.bj.cmcc.cid."), rrsig("*.bj.cmcc.cid.", "NSEC"))
    why = "Pool-7.bj.cmcc.cid. SVCB: signed by bj.cmcc.cid. key 12345 alg 15"
    cache.put_rrset(rrset, sigs, Status.SECURE, why, proof=proof)
    entry = cache.get_rrset(N("pool-7.BJ.cmcc.cid."), SVCB)
    assert entry.rrset == rrset and entry.rrsigs == sigs and entry.proof == proof
    assert entry.rrset.name.labels == rrset.name.labels  # first spelling kept
    assert entry.why == why and entry.status is Status.SECURE
    cache.put_rrset(dns.rrset.from_text("u.cid.", 60, "IN", "A", "192.0.2.1"), None, Status.INSECURE, "unsigned")
    plain = cache.get_rrset(N("u.cid."), A)
    assert plain.rrsigs is None and plain.proof == () and plain.why == "unsigned"


@pytest.mark.parametrize("why", [
    "x.cid. A: signed by x.cid. key 1 alg 15",  # the name twice
    "nothing about the name",
    "x.cid. \x00 odd",  # the placeholder itself in the text
    "",
])
def test_why_text_is_kept_exactly(why):
    cache = Cache(Clock())
    cache.put_rrset(dns.rrset.from_text("x.cid.", 60, "IN", "A", "192.0.2.1"), None, Status.SECURE, why)
    cache.put_negative(N("x.cid."), TXT, "NOERROR", (soa("cid."),), Status.SECURE, why, 60)
    assert cache.get_rrset(N("x.cid."), A).why == why
    assert cache.get_negative(N("x.cid."), TXT).why == why


def test_negative_entry_keeps_its_proof_records():
    cache = Cache(Clock())
    authority = (soa(), rrsig("bj.cmcc.cid.", "SOA"), nsec("gone.bj.cmcc.cid.", "h.bj.cmcc.cid."),
                 rrsig("gone.bj.cmcc.cid.", "NSEC"))
    cache.put_negative(N("Gone.bj.cmcc.cid."), AAAA, "NOERROR", authority, Status.SECURE, "nodata", 300)
    entry = cache.get_negative(N("gone.bj.cmcc.cid."), AAAA)
    assert entry.authority == authority and entry.name.to_text() == "gone.bj.cmcc.cid."
    assert entry.rcode == "NOERROR" and entry.rdtype == AAAA


def test_names_that_only_look_alike_keep_apart():
    """A label may hold a dot: ("a.b", "c") is not ("a", "b", "c"), though both print alike
    joined. Neither may answer for the other (cache poisoning by a crafted owner)."""
    cache = Cache(Clock())
    dotted = dns.name.Name([b"a.b", b"c", b""])
    cache.put_rrset(dns.rrset.from_text(dotted, 60, "IN", "A", "192.0.2.66"), None, Status.SECURE, "crafted")
    assert cache.get_rrset(N("a.b.c."), A) is None
    cache.put_rrset(dns.rrset.from_text("a.b.c.", 60, "IN", "A", "192.0.2.1"), None, Status.SECURE, "real")
    assert cache.get_rrset(N("a.b.c."), A).rrset[0].address == "192.0.2.1"
    assert cache.get_rrset(dotted, A).rrset[0].address == "192.0.2.66"
    assert cache.get_rrset(dns.name.Name([b"A.B", b"C", b""]), A).why == "crafted"
    assert {r.name for r in cache.dump()} == {"a\\.b.c.", "a.b.c."}


def test_flush_and_dump_see_packed_entries():
    cache = Cache(Clock())
    cache.put_rrset(svcb(), rrsig("pool-7.bj.cmcc.cid.", "SVCB"), Status.SECURE, "ok")
    cache.put_negative(N("gone.bj.cmcc.cid."), A, "NXDOMAIN", (soa(),), Status.SECURE, "nx", 300)
    cache.put_rrset(caps("other.cid."), None, Status.SECURE, "ok")
    assert [(r.kind, r.name, r.type) for r in cache.dump()] == [
        ("rrset", "pool-7.bj.cmcc.cid.", "SVCB"), ("negative", "gone.bj.cmcc.cid.", "ANY"),
        ("rrset", "other.cid.", "CAPS")]
    assert cache.flush(subtree="bj.cmcc.cid.") == 2 and len(cache) == 1


# --- the hot layer through Resolver.lookup -----------------------------------------------------------

def resolver_with(clock: Clock, **config) -> Resolver:
    return Resolver({"cid.": ["127.0.0.1"]}, clock=clock, cache_config=config or None)


def put_svcb(r: Resolver, ttl: int = 300, address: str = "192.0.2.9") -> None:
    rrset = dns.rrset.from_text("pool-7.bj.cmcc.cid.", ttl, "IN", "SVCB", f"1 . ipv4hint={address}")
    r.cache.put_rrset(rrset, rrsig("pool-7.bj.cmcc.cid.", "SVCB", ttl), Status.SECURE, "signed")


async def test_repeated_hit_is_the_full_paths_answer():
    clock = Clock()
    r = resolver_with(clock)
    put_svcb(r)
    first = await r.lookup("pool-7.bj.cmcc.cid.", "SVCB")
    again = await r.lookup("pool-7.bj.cmcc.cid.", "SVCB")
    assert again is first  # from the hot layer: nothing built
    full = r._cached(N("pool-7.bj.cmcc.cid."), SVCB)  # the same question without the hot layer
    assert again == full and again.trace == full.trace and again.rrsigs == full.rrsigs
    assert again.qname == N("pool-7.bj.cmcc.cid.") and again.ttl == 300 and again.status is Status.SECURE
    assert again.trace == (CacheHit("pool-7.bj.cmcc.cid.", "SVCB", Status.SECURE),)
    # A hot hit is a use of the entry: it becomes the most recently used (LRU order).
    r.cache.put_rrset(dns.rrset.from_text("later.cid.", 60, "IN", "A", "192.0.2.1"), None, Status.SECURE, "ok")
    assert await r.lookup("pool-7.bj.cmcc.cid.", "SVCB") is first
    assert [rec.name for rec in r.cache.dump()] == ["later.cid.", "pool-7.bj.cmcc.cid."]
    # Each spelling of the question is its own hot item with its own qname.
    upper = await r.lookup(N("POOL-7.bj.cmcc.cid."), SVCB)
    assert upper.qname.to_text() == "POOL-7.bj.cmcc.cid." and upper.rrset == first.rrset


async def test_hot_answer_counts_down_and_follows_replacement_flush_and_expiry():
    clock = Clock()
    r = resolver_with(clock, prefetch=False)
    put_svcb(r)
    await r.lookup("pool-7.bj.cmcc.cid.", "SVCB")
    clock.now += 100.5
    assert (await r.lookup("pool-7.bj.cmcc.cid.", "SVCB")).ttl == 199
    put_svcb(r, address="192.0.2.10")  # new data for the same key: the old answer is gone
    got = await r.lookup("pool-7.bj.cmcc.cid.", "SVCB")
    assert next(iter(got.rrset)).params[dns.rdtypes.svcbbase.ParamKey.IPV4HINT].addresses == ("192.0.2.10",)
    assert got.ttl == 300
    r.cache.flush("pool-7.bj.cmcc.cid.")
    assert r.cache.hot_get(("pool-7.bj.cmcc.cid.", "SVCB"), clock()) is None
    put_svcb(r, ttl=30)
    await r.lookup("pool-7.bj.cmcc.cid.", "SVCB")
    clock.now += 30
    assert r._hot_hit(("pool-7.bj.cmcc.cid.", "SVCB")) is None  # expired: never served from it


async def test_hot_answer_steps_aside_for_prefetch():
    clock = Clock()
    r = resolver_with(clock)
    put_svcb(r, ttl=100)
    await r.lookup("pool-7.bj.cmcc.cid.", "SVCB")
    clock.now += 91  # last 10 % of the TTL: the engine path must see it and refresh
    assert r._hot_hit(("pool-7.bj.cmcc.cid.", "SVCB")) is None
    assert r._cached(N("pool-7.bj.cmcc.cid."), SVCB) is None


async def test_hot_negative_answer_gives_way_to_new_data():
    clock = Clock()
    r = resolver_with(clock)
    r.cache.put_negative(N("pool-7.bj.cmcc.cid."), SVCB, "NOERROR", (soa(),), Status.SECURE, "nodata", 300)
    first = await r.lookup("pool-7.bj.cmcc.cid.", "SVCB")
    assert first.rcode == "NOERROR" and first.rrset is None and first.authority == (soa(),)
    assert await r.lookup("pool-7.bj.cmcc.cid.", "SVCB") is first
    put_svcb(r)
    got = await r.lookup("pool-7.bj.cmcc.cid.", "SVCB")
    assert got.rrset is not None and got.status is Status.SECURE
    # An NXDOMAIN stored later outranks a NODATA answer kept hot (RFC 2308 §5: every type).
    r.cache.put_negative(N("n.cid."), A, "NOERROR", (soa("cid."),), Status.SECURE, "nodata", 300)
    await r.lookup("n.cid.", "A")
    r.cache.put_negative(N("n.cid."), TXT, "NXDOMAIN", (soa("cid."),), Status.SECURE, "nx", 300)
    assert (await r.lookup("n.cid.", "A")).rcode == "NXDOMAIN"


async def test_hot_layer_stays_inside_max_bytes_and_hits_keep_entries_recent():
    clock = Clock()
    r = resolver_with(clock, max_bytes=64 * 1024)
    cache = r.cache
    put_svcb(r)
    for i in range(600):
        rrset = dns.rrset.from_text(f"n{i}.cid.", 300, "IN", "A", f"192.0.2.{i % 250 + 1}")
        cache.put_rrset(rrset, rrsig(f"n{i}.cid.", "A", signer="cid."), Status.SECURE, "signed")
        await r.lookup(f"n{i}.cid.", "A")
        await r.lookup("pool-7.bj.cmcc.cid.", "SVCB")  # served hot: must still count as use
        assert cache.bytes + cache.hot_bytes <= 64 * 1024
        assert cache.hot_bytes <= 64 * 1024 // 8
    assert cache.evictions > 100 and cache.stats()["hot"] > 0
    assert cache.get_rrset(N("pool-7.bj.cmcc.cid."), SVCB) is not None  # recently used: kept
    assert cache.bytes == sum(rec.size for rec in cache.dump())  # hot bytes counted apart, exactly


def test_flush_by_key_respects_label_boundaries_and_dotted_labels():
    cache = Cache(Clock())

    def put(name) -> None:
        cache.put_rrset(dns.rrset.from_text(name, 60, "IN", "A", "192.0.2.1"), None, Status.SECURE, "ok")
    for name in ("b.cid.", "x.b.cid.", "xb.cid.", "B.Cid.", dns.name.Name([b"y.b", b"cid", b""])):
        put(name)
    cache.put_resolution("cid:x.b.cid", N("x.b.cid."), object(), Status.SECURE, 60, 100)
    cache.put_negative(N("gone.x.b.cid."), A, "NXDOMAIN", (soa("b.cid."),), Status.SECURE, "nx", 60)
    # "y\.b.cid." is a child of cid., not of b.cid.; "xb.cid." is not below b.cid. either.
    assert cache.flush(subtree="b.cid.") == 4  # b.cid. (one entry for both spellings), x.b, memo, gone.x.b
    assert sorted(r.name for r in cache.dump()) == ["xb.cid.", "y\\.b.cid."]
    assert cache.flush(subtree=dns.name.Name([b"y.b", b"cid", b""])) == 1
    assert cache.flush(name="XB.cid.") == 1 and len(cache) == 0
    put("a.cid.")
    put("cid.")
    assert cache.flush(subtree=".") == 2


# --- the short form of RRSIGs (SIGS) ---------------------------------------------------------------

OLD_FORMAT = bytes.fromhex(  # pack((A, its RRSIG)) as written before the SIGS form (snapshots)
    "030001000100000000012c000106506f6f6c2d3702626a04636d636303636964000004c000020702002e000100010000012c"
    "0001005f00010f040000012c6b36ec806955b900303902626a04636d636303636964" + "00" * 65)


def test_bytes_packed_before_the_short_form_read_the_same():
    rrset, sigs = unpack(OLD_FORMAT)
    assert rrset == dns.rrset.from_text("Pool-7.bj.cmcc.cid.", 300, "IN", "A", "192.0.2.7")
    assert sigs == rrsig("Pool-7.bj.cmcc.cid.", "A", signer="bj.cmcc.cid.")
    assert unpack(pack((rrset, sigs))) == [rrset, sigs] and len(pack((rrset, sigs))) < len(OLD_FORMAT) - 20


def test_short_rrsig_form_round_trips_exactly_fuzzed():
    """Signers that are the owner's ancestors (any case, the root, the owner itself) or not, RRSIGs
    whose TTL, class or covered type differ from the RRset before them, several signatures,
    owners given or not: every record, name spelling and TTL comes back as packed."""
    import random
    rng = random.Random(4034)

    def spell(text: str) -> str:
        return "".join(c.upper() if rng.random() < 0.2 else c for c in text)
    for _ in range(400):
        owner_text = rng.choice(["pool-7.bj.cmcc.cid.", "a.b.c.d.e.f.", "x.", "*.bj.cmcc.cid.", "Pool-7.BJ.cmcc.cid."])
        owner_name = N(spell(owner_text))
        items: list = []
        for _ in range(rng.randint(1, 3)):
            rdtype = rng.choice(["A", "TXT", "SVCB"])
            data = {"A": "192.0.2.1", "TXT": '"x"', "SVCB": "1 . alpn=h2"}[rdtype]
            ttl = rng.choice([60, 300])
            items.append(dns.rrset.from_text(owner_name, ttl, "IN", rdtype, data))
            labels = owner_name.labels
            signers = [dns.name.Name(labels[rng.randint(0, len(labels) - 1):]).to_text(),
                       spell(dns.name.Name(labels[rng.randint(0, len(labels) - 1):]).to_text()),
                       "other.example.", "."]
            covered = rdtype if rng.random() < 0.9 else "MX"
            sig_ttl = ttl if rng.random() < 0.85 else ttl + 1
            sig_owner = owner_name if rng.random() < 0.9 else N("elsewhere.cid.")
            texts = [f"{covered} 15 {len(labels) - 1} {sig_ttl} 20270101000000 20260101000000 {rng.randint(0, 65535)} "
                     f"{rng.choice(signers)} " + "QUJD" * rng.randint(1, 30) for _ in range(rng.randint(1, 3))]
            items.append(dns.rrset.from_text(sig_owner, sig_ttl, "IN", "RRSIG", *texts))
            if rng.random() < 0.2:
                items.append(None)
        given = rng.choice([None, N(owner_text.lower()), owner_name])
        back = unpack(pack(items, given), given)
        assert back == items
        for got, want in zip(back, items):
            if want is None:
                continue
            assert got.ttl == want.ttl and got.covers == want.covers
            if given is None or want.name != given:
                assert got.name.labels == want.name.labels  # spelled exactly as packed
            if want.rdtype == RRSIG:
                assert sorted(rd.signer.labels for rd in got) == sorted(rd.signer.labels for rd in want)
