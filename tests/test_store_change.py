"""Incremental change of a served zone (resolver/auth/zonechange.py) against a full re-sign.

The oracle: apply the same change to the dnspython zone and sign it all again with
``signer.sign_zone`` and the same keys and signature window. Ed25519 signatures are
deterministic (RFC 8032), so the re-signed zone must hold exactly the records the incremental
change produced — NSEC chain, bitmaps and signatures included — and answer every question
with the same bytes. The response cache must keep only answers that are still right, and
keep the answers of names the change did not touch.
"""

from __future__ import annotations

import copy
import random

import dns.message
import dns.name
import dns.rdata
import dns.rdataset
import dns.rdatatype
import dns.zone
import pytest

import resolver  # noqa: F401  (registers CAPS/LOAD)
from resolver.auth import signer, zonechange, zonedb
from resolver.auth.answer import answer_query
from resolver.auth.keys import generate_key
from resolver.auth.store import ZoneStore, from_zone

ORIGIN = dns.name.from_text("bulk.cid.")
INCEPTION, EXPIRATION = 1_700_000_000, 2_000_000_000
T = dns.rdatatype


def make_zone(names: int, seed: int = 7) -> dns.zone.Zone:
    rng = random.Random(seed)
    lines = ["$ORIGIN bulk.cid.", "$TTL 300", "@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 300",
             "@ NS ns1", "ns1 A 192.0.2.1", "sub NS ns.sub", "ns.sub A 192.0.2.2",
             "*.wild TXT wildcard", "a.b.deep A 192.0.2.3"]
    for i in range(names):
        lines.append(f"pool-{i} A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
        if rng.random() < 0.3:
            lines.append(f"pool-{i} AAAA 2001:db8::{i:x}")
    return dns.zone.from_text("\n".join(lines) + "\n", origin=ORIGIN, relativize=False)


@pytest.fixture(scope="module")
def keys():
    return [generate_key(ORIGIN)]


def signed(zone: dns.zone.Zone, keys) -> dns.zone.Zone:
    return signer.sign_zone(zone, keys, inception=INCEPTION, expiration=EXPIRATION, workers=1)


def records(data: zonedb.ZoneData) -> dict:
    out = {}
    for key, blob in [*data.blobs.items(), *data.hashed.items()]:
        out[key] = {k: (v[0], sorted(v[1])) for k, v in zonedb.decode_sets(blob).items()}
    return out


def rrset(name: str, rdtype: str, ttl: int, *texts: str) -> dns.rdataset.Rdataset:
    return dns.rdataset.from_text("IN", rdtype, ttl, *texts)


def apply_both(store: ZoneStore, zone: dns.zone.Zone, keys, edits, *, in_place: bool = False):
    """Apply ``edits`` [(name, rdtype, rdataset or None)] incrementally (signing what changed with
    the zone key) and to a copy of the dnspython zone (or the zone itself), re-signed in full;
    return that zone and the change report."""
    sign = zonechange.rrset_signer(keys, INCEPTION, EXPIRATION)
    changes = []
    for name, rdtype, rds in edits:
        owner = dns.name.from_text(name, ORIGIN)
        if rds is None:
            changes.append(zonechange.delete(owner, rdtype))
        else:
            sigs = sign(owner, int(rds.rdtype), rds.ttl, [rd.to_wire() for rd in rds])
            changes.append(zonechange.put(owner, rds, sigs))
    report = store.update(ORIGIN, changes, sign=sign)
    oracle = zone if in_place else copy.deepcopy(zone)
    for name, rdtype, rds in edits:
        owner = dns.name.from_text(name, ORIGIN)
        if rds is None:
            oracle.delete_rdataset(owner, rdtype)
            node = oracle.get_node(owner)
            if node is not None and not [r for r in node.rdatasets if r.rdtype not in (T.NSEC, T.RRSIG)]:
                oracle.delete_node(owner)
        else:
            oracle.replace_rdataset(owner, rds)
    return signed(oracle, keys), report


def ask(store, name, rdtype="A", do=True):
    q = dns.message.make_query(name, rdtype, want_dnssec=do)
    q.id = 0
    return answer_query(store, q.to_wire(), tcp=False)


QUESTIONS = [("pool-5.bulk.cid.", "A"), ("pool-5.bulk.cid.", "MX"), ("nope.bulk.cid.", "A"),
             ("new-1.bulk.cid.", "A"), ("new-1.bulk.cid.", "TXT"), ("x.new-1.bulk.cid.", "A"),
             ("c.deep.bulk.cid.", "A"), ("b.deep.bulk.cid.", "A"), ("deep.bulk.cid.", "A"),
             ("x.wild.bulk.cid.", "TXT"), ("x.wild.bulk.cid.", "A"), ("node.sub.bulk.cid.", "A"),
             ("pool-7.bulk.cid.", "AAAA"), ("bulk.cid.", "SOA"), ("bulk.cid.", "NSEC"),
             ("ent.e.bulk.cid.", "A"), ("e.bulk.cid.", "A"), ("zz.e.bulk.cid.", "A")]

EDITS = [
    [("pool-5", "A", rrset("pool-5", "A", 300, "10.9.9.9"))],  # replace: no chain change
    [("new-1", "A", rrset("new-1", "A", 300, "10.1.1.1"))],  # new name in the middle of the chain
    [("pool-5", "MX", rrset("pool-5", "MX", 300, "10 mail.example."))],  # new type: bitmap
    [("pool-7", "AAAA", None), ("pool-7", "A", None)],  # delete a whole name
    [("ent.e", "A", rrset("ent.e", "A", 300, "10.2.2.2"))],  # creates the empty non-terminal e
    [("a.b.deep", "A", None)],  # removes a name and the ENTs b.deep and deep with it
    [("aaaa-first", "TXT", rrset("aaaa-first", "TXT", 60, "first")),
     ("zzzz-last", "TXT", rrset("zzzz-last", "TXT", 60, "last"))],  # chain ends, two at once
    [("pool-3", "A", None)],  # delete one of two RRsets: the AAAA may stay
]


@pytest.mark.parametrize("edits", EDITS, ids=range(len(EDITS)))
def test_change_equals_full_resign_and_answers_match(keys, edits):
    zone = signed(make_zone(300), keys)
    store = ZoneStore([zone])
    before = {q: ask(store, *q) for q in QUESTIONS}
    oracle_zone, report = apply_both(store, zone, keys, edits)
    fresh = ZoneStore([oracle_zone])
    assert records(store.find_index(ORIGIN)) == records(fresh.find_index(ORIGIN))
    # Every answer (from the cache where it survived) equals the fresh store's.
    for q in QUESTIONS:
        assert ask(store, *q) == ask(fresh, *q), q
    # Answers the change could not affect were kept.
    unchanged = [q for q in QUESTIONS if before[q] == ask(fresh, *q)]
    assert report.dropped <= len(QUESTIONS) - len(unchanged) + 4
    assert ask(store, "pool-200.bulk.cid.", "A") == ask(fresh, "pool-200.bulk.cid.", "A")


def test_cache_drops_exactly_the_answers_that_changed(keys):
    zone = signed(make_zone(500), keys)
    store = ZoneStore([zone])
    names = [f"pool-{i}.bulk.cid." for i in range(0, 500, 7)] + ["gap-1.bulk.cid.", "pool-250x.bulk.cid."]
    for name in names:
        for rdtype in ("A", "AAAA"):
            ask(store, name, rdtype)
    cached = len(store.cache)
    # A replaced A RRset at one name: only that name's answers depend on it.
    oracle, report = apply_both(store, zone, keys, [("pool-77", "A", rrset("pool-77", "A", 300, "10.7.7.7"))])
    assert report.dropped == 2 and len(store.cache) == cached - 2
    # A name inserted between pool-24 and pool-25 (canonical order): its predecessor's NSEC
    # changes, so answers carrying that NSEC go, and only those.
    fresh_before = ZoneStore([oracle])
    oracle2, report = apply_both(store, oracle, keys, [("pool-249z", "A", rrset("x", "A", 300, "10.0.0.1"))])
    fresh = ZoneStore([oracle2])
    for name in names:
        for rdtype in ("A", "AAAA"):
            assert ask(store, name, rdtype) == ask(fresh, name, rdtype), (name, rdtype)
    changed = sum(ask(fresh_before, n, t) != ask(fresh, n, t) for n in names for t in ("A", "AAAA"))
    assert changed <= report.dropped <= changed + 3


def test_signed_zone_refuses_chain_change_without_signer(keys):
    zone = signed(make_zone(20), keys)
    store = ZoneStore([zone])
    change = zonechange.put("brand-new.bulk.cid.", rrset("x", "A", 300, "10.0.0.9"))
    with pytest.raises(ValueError, match="pass sign="):
        store.update(ORIGIN, [change])
    assert ask(store, "brand-new.bulk.cid.") == ask(ZoneStore([zone]), "brand-new.bulk.cid.")


def test_unsigned_zone_changes_without_signer():
    zone = make_zone(50)
    store = ZoneStore([zone])
    assert dns.message.from_wire(ask(store, "fresh.bulk.cid.")).rcode() == dns.rcode.NXDOMAIN
    store.update(ORIGIN, [zonechange.put("fresh.bulk.cid.", rrset("x", "A", 300, "10.0.0.8"))])
    r = dns.message.from_wire(ask(store, "fresh.bulk.cid."))
    assert r.rcode() == dns.rcode.NOERROR and r.answer[0][0].address == "10.0.0.8"
    store.update(ORIGIN, [zonechange.delete("fresh.bulk.cid.", "A")])
    assert dns.message.from_wire(ask(store, "fresh.bulk.cid.")).rcode() == dns.rcode.NXDOMAIN


def test_changes_on_a_3k_name_zone_keep_answers_and_proofs_right(keys):
    """The bounded slice of tools/bench/store_change.py (1M names there, where the time per
    change is measured): a hundred changes, then proofs against a full re-sign."""
    zone = signed(make_zone(3_000), keys)  # the store copies it: the oracle edits this one
    store = ZoneStore([zone])
    sign = zonechange.rrset_signer(keys, INCEPTION, EXPIRATION)
    rng = random.Random(3)
    for i in range(100):
        owner = dns.name.from_text(f"pool-{rng.randrange(3_000)}", ORIGIN)
        rds = rrset("x", "A", 300, f"10.99.{i >> 8}.{i & 255}")
        sigs = sign(owner, 1, 300, [rd.to_wire() for rd in rds])
        store.update(ORIGIN, [zonechange.put(owner, rds, sigs)])
        zone.replace_rdataset(owner, rds)
    # A new name and a deletion, then NXDOMAIN/NODATA proofs around them against a full re-sign.
    oracle, _ = apply_both(store, zone, keys, [
        ("pool-1500a", "A", rrset("x", "A", 300, "10.0.0.1")), ("pool-1501", "A", None),
        ("pool-1501", "AAAA", None)], in_place=True)
    fresh = ZoneStore([oracle])
    for name, rdtype in [("pool-1500a", "A"), ("pool-1500a", "TXT"), ("pool-1500b", "A"),
                         ("pool-1501", "A"), ("pool-1500", "MX"), ("pool-1502", "A"),
                         ("pool-77", "A"), ("pool-77x", "A")]:
        assert ask(store, f"{name}.bulk.cid.", rdtype) == ask(fresh, f"{name}.bulk.cid.", rdtype)
    assert records(store.find_index(ORIGIN)) == records(fresh.find_index(ORIGIN))


def _zone_of(store: ZoneStore) -> dns.zone.Zone:
    """The store's zone as dnspython objects (for the oracle to edit)."""
    data = store.find_index(ORIGIN)
    zone = dns.zone.Zone(ORIGIN, relativize=False)
    for key, blob in data.blobs.items():
        name = dns.name.from_wire(data.owner_wire(key), 0)[0]
        node = zone.find_node(name, create=True)
        for rr in zonedb.iter_rrsets(blob):
            rds = dns.rdataset.Rdataset(dns.rdataclass.IN, rr.rdtype, rr.covers)
            for rd in rr.rdatas:
                rds.add(dns.rdata.from_wire(dns.rdataclass.IN, rr.rdtype, rd, 0, len(rd)), rr.ttl)
            node.rdatasets.append(rds)
    return zone


def test_from_zone_round_trip(keys):
    zone = signed(make_zone(100), keys)
    assert records(from_zone(zone)) == records(from_zone(_zone_of(ZoneStore([zone]))))
