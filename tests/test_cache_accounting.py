"""The cache's byte accounting (``Cache.bytes + Cache.hot_bytes``, what ``max_bytes`` bounds)
tracks the memory the process really keeps: a Resolver resolves signed identifiers through NSD
(the benchmark hierarchy, three signed levels on 127.0.113.1-3) and the growth of its
accounting is compared with the growth of the Python heap (tracemalloc, after gc) — for packed
RRsets and resolutions, for resolutions and answers kept built by hits, and for negative
answers with their NSEC proofs. A correctness check of the estimates with a loose bound (within
a factor of 1.6 either way), not a timing."""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "tools" / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import hierarchy  # noqa: E402  (tools/bench: the signed three-level hierarchy)

from resolver import Resolver, Status  # noqa: E402
from resolver.dnssec.anchors import TrustAnchor  # noqa: E402
from support.net import free_port_on  # noqa: E402

NET = "127.0.113"
IDENTIFIERS = 60
BOUND = 1.6


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    h = hierarchy.build(tmp_path_factory.mktemp("accounting"), IDENTIFIERS + 1, net=NET)
    port = free_port_on(list(h.addresses.values()))
    with hierarchy.nsd_serving(h, port):
        yield h, port


class Growth:
    """Heap growth and accounting growth over one phase."""

    def __init__(self, r: Resolver):
        self.r = r

    def __enter__(self) -> Growth:
        gc.collect()
        self.heap = tracemalloc.get_traced_memory()[0]
        self.counted = self.r.cache.bytes + self.r.cache.hot_bytes
        return self

    def __exit__(self, *exc) -> None:
        gc.collect()
        self.heap = tracemalloc.get_traced_memory()[0] - self.heap
        self.counted = self.r.cache.bytes + self.r.cache.hot_bytes - self.counted

    def check(self, what: str) -> None:
        ratio = self.counted / self.heap
        assert 1 / BOUND <= ratio <= BOUND, \
            f"{what}: accounted {self.counted} B, heap grew {self.heap} B ({ratio:.2f}x)"


def clear_name_tables() -> None:
    """Empty the process-wide tables kept per name spelling (the reader's shared Names, canonical
    forms, texts). They are bounded by their own limits, not the cache's; left as earlier tests
    filled them, one of them resizing mid-phase (a dict of ~2k entries doubles) would count as
    the cache's growth. Emptied, they grow with this test's names, as in a fresh process."""
    from resolver import nametext
    from resolver.dnssec import canonical
    from resolver.engine import wire_reader
    for table in (wire_reader._NAMES, canonical._CANONICAL, nametext._TEXTS):
        table.clear()


def fresh(text: str) -> str:
    return text.encode().decode()  # as a request brings it: the cache's key string counts


async def test_accounting_tracks_the_heap(served):
    h, port = served
    # LOAD's TTL is 15 s and tracemalloc slows resolving about sixfold: the cache's clock runs
    # ten times slower than time, so nothing expires between the phases however loaded the machine.
    start = time.time()
    r = Resolver(hints={hierarchy.APEX: [h.addresses[hierarchy.APEX]]},
                 trust_anchor=TrustAnchor.load(h.trust_anchor), port=port, cache_config={"prefetch": False},
                 clock=lambda: start + (time.time() - start) / 10)
    try:
        first = await r.resolve(h.identifiers[0])  # delegations and keys: not what is measured
        assert first.status is Status.SECURE
        ids = [fresh(i) for i in h.identifiers[1:]]
        clear_name_tables()
        tracemalloc.start()
        try:
            with Growth(r) as resolved:
                for identifier in ids:
                    assert (await r.resolve(identifier)).status is Status.SECURE
            resolved.check("packed RRsets and resolutions")
            assert all(e.value is None for e in r.cache.entries() if hasattr(e, "_packed") and e._packed)

            with Growth(r) as hit:
                for identifier in ids:
                    assert (await r.resolve(identifier)).status is Status.SECURE
            hit.check("resolutions kept built by a hit")
            assert r.cache.stats()["hot_resolutions"] == len(ids)

            with Growth(r) as looked_up:
                for identifier in ids:
                    for rdtype in ("SVCB", "A", "CAPS"):
                        name = identifier.removeprefix("cid:")
                        assert (await r.lookup(name, rdtype)).status is Status.SECURE
                        await r.lookup(name, rdtype)  # a hit: now built in the hot layer
            looked_up.check("answers kept built by hits")

            with Growth(r) as denied:
                for i in range(40):
                    lk = await r.lookup(f"nothing-{i:03d}.{hierarchy.LEAF}", "TXT", policy=False)
                    assert lk.rcode == "NXDOMAIN"
                for identifier in ids[:60]:
                    lk = await r.lookup(identifier.removeprefix("cid:"), "TXT", policy=False)
                    assert lk.rcode == "NOERROR" and lk.rrset is None
            denied.check("negative answers and NSEC proofs")
        finally:
            tracemalloc.stop()
    finally:
        await r.close()
    assert r.cache.bytes == sum(rec.size for rec in r.cache.dump())
