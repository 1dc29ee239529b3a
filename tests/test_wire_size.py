"""cache_entries.wire_size, added up per record, against dnspython's rendering (the oracle,
_rendered_size here): the same length for every mix of RRsets, owners,
types, record counts (empty RRsets too), root, relative owners and relative RDATA names."""

from __future__ import annotations

import io
import random

import dns.name
import dns.rdata
import dns.rrset

from resolver.engine import cache_entries
from resolver.engine.wire_reader import read

TEXTS = {
    "A": ["127.0.0.1", "10.1.2.3"], "AAAA": ["::1", "2001:db8::7"],
    "DS": ["4242 15 2 " + "ab" * 32], "DNSKEY": ["257 3 15 " + "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="],
    "RRSIG": ["A 15 3 300 20300101000000 20200101000000 4242 Cmcc.cid. " + "AAEC" * 22],
    "SVCB": ["1 gpu.Bj.cmcc.cid. alpn=h2 port=8443", "0 pool.cid."], "NS": ["ns1.cmcc.cid.", "ns2.other.", "rel"],
    "TXT": ['"x"'], "TYPE65380": ["\\# 1 80"],
}
def _rendered_size(rrsets) -> int:
    """The oracle: what RRset.to_wire writes without a compression table."""
    buf = io.BytesIO()
    for rrset in rrsets:
        if rrset is not None:
            rrset.to_wire(buf, origin=dns.name.root)
    return buf.tell()


OWNERS = ["pool-7.bj.cmcc.cid.", "POOL-7.bj.cmcc.cid.", ".", "cid.", "other.cid.", "relative", "two.rel"]


def _rrset(rng: random.Random, owner: str, rdtype: str) -> dns.rrset.RRset:
    texts = TEXTS[rdtype]
    name = dns.name.from_text(owner, origin=None if not owner.endswith(".") else dns.name.root)
    rrset = dns.rrset.RRset(name, 1, dns.rdatatype.from_text(rdtype),
                            dns.rdatatype.A if rdtype == "RRSIG" else 0)
    for text in rng.sample(texts, rng.randint(0, len(texts))):  # 0: an empty RRset
        rrset.add(dns.rdata.from_text(1, rrset.rdtype, text, origin=None), 300)
    return rrset


def test_added_up_size_is_the_rendered_size():
    rng = random.Random(2)
    for _ in range(3000):
        owner = rng.choice(OWNERS)
        rrsets = []
        for _ in range(rng.randint(1, 3)):
            pick = rng.random()
            if pick < 0.1:
                rrsets.append(None)
            else:
                rrsets.append(_rrset(rng, owner if pick < 0.85 else rng.choice(OWNERS), rng.choice(list(TEXTS))))
        assert cache_entries.wire_size(*rrsets) == _rendered_size(rrsets)


def test_records_the_reader_built_size_alike():
    """The lean reader's records hand out their held wire form: the same sizes."""
    message = dns.message.make_response(dns.message.make_query("pool-7.bj.cmcc.cid.", "A"))
    message.answer += [dns.rrset.from_text("pool-7.bj.cmcc.cid.", 300, "IN", "A", *TEXTS["A"]),
                       dns.rrset.from_text("pool-7.bj.cmcc.cid.", 300, "IN", "RRSIG", *TEXTS["RRSIG"])]
    message.authority.append(dns.rrset.from_text("bj.cmcc.cid.", 300, "IN", "NS", "ns1.bj.cmcc.cid."))
    parsed = read(message.to_wire())
    rrsets = parsed.answer + parsed.authority  # the NS target is compressed in the message, not here
    assert cache_entries.wire_size(*rrsets) == _rendered_size(rrsets)
