#!/usr/bin/env python3
"""Memory per cached identifier: A + SVCB + CAPS RRsets with their RRSIGs, as the resolver's
cache holds them after real answers (brief §5 target: ≤ 2.0 KiB, Unbound's figure).

A signed zone of N identifiers is answered by our authoritative code; every answer is parsed
from the wire and put in a Cache exactly as the engine does (RRset + RRSIG RRset, status,
why). tracemalloc measures what the cache holds once the messages are gone; the figure is
also compared with the cache's own size estimate (the ``max_bytes`` accounting). Optionally
(--resolutions) a whole-Resolution memo entry per identifier is added too.

With --unbound (root: NSD on port 53, as tools/bench/cold.py), both resolvers fill their caches
from the same signed three-level hierarchy served by NSD in the same run: Unbound's growth of
mem.cache.rrset + mem.cache.message (unbound-control stats) against the growth of our
Resolver (tracemalloc over its whole cache) after A, SVCB and CAPS lookups of N identifiers.

    python3 tools/cache_memory.py [-n 1000] [--resolutions]
    python3 tools/cache_memory.py --unbound [-n 1000]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.zone  # noqa: E402

import resolver  # noqa: E402,F401  (registers CAPS/LOAD)
from resolver.auth.answer import answer_query  # noqa: E402
from resolver.auth.keys import generate_key  # noqa: E402
from resolver.auth.signer import sign_zone  # noqa: E402
from resolver.auth.store import ZoneStore  # noqa: E402
from resolver.engine.cache import Cache  # noqa: E402
from resolver.engine.scrub import scrub  # noqa: E402
from resolver.resolution import Endpoint, Resolution  # noqa: E402
from resolver.status import Status  # noqa: E402

ZONE = "mem.cmcc.cid."
TYPES = ("A", "SVCB", "CAPS")


def build_zone(n: int) -> ZoneStore:
    lines = ["@ 3600 SOA ns hostmaster 1 7200 900 1209600 300", "@ 3600 NS ns", "ns 3600 A 192.0.2.1"]
    for i in range(n):
        lines += [f"pool-{i} 300 A 192.0.2.{i % 250 + 1}",
                  f"pool-{i} 300 SVCB 1 . alpn=h2 port=8443",
                  f"pool-{i} 3600 CAPS accel_kind=gpu accel_count=8 accel_vendor=nvidia "
                  f"accel_slug=nvidia-h100-sxm5-80gb region=bj"]
    zone = dns.zone.from_text("\n".join(lines) + "\n", origin=ZONE, relativize=False)
    sign_zone(zone, [generate_key(ZONE, 15)], now=time.time())
    store = ZoneStore()
    store.add(zone)
    return store


def responses(store: ZoneStore, n: int) -> list[tuple[str, str, bytes]]:
    """The wire answers, rendered before measuring (the server's own caches are not ours)."""
    out = []
    for i in range(n):
        name = f"pool-{i}.{ZONE}"
        for rdtype in TYPES:
            query = dns.message.make_query(name, rdtype, want_dnssec=True, payload=1232)
            out.append((name, rdtype, answer_query(store, query.to_wire(), tcp=False)))
    return out


def answers(wires: list[tuple[str, str, bytes]]):
    """(rrset, rrsigs) per identifier and type, parsed from wire like a resolver receives them."""
    zone = dns.name.from_text(ZONE)
    for text, rdtype, wire in wires:
        name = dns.name.from_text(text)
        msg = scrub(dns.message.from_wire(wire), zone, name)
        rrset = msg.find("answer", name, dns.rdatatype.from_text(rdtype))
        yield rrset, msg.sigs("answer", rrset)


def _unbound_memory(ub) -> int:
    stats = dict(line.split("=", 1) for line in ub.control("stats_noreset").split() if "=" in line)
    try:
        return int(stats["mem.cache.rrset"]) + int(stats["mem.cache.message"])
    except KeyError:
        raise RuntimeError("unbound-control stats has no mem.cache.*: " + " ".join(sorted(stats))[:400]) from None


def against_unbound(n: int) -> int:
    """Same run, same data: Unbound's cache growth vs ours, per identifier (A+SVCB+CAPS)."""
    import asyncio
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent / "bench"))
    import cold  # noqa: E402  (tools/bench: NSD-served hierarchy + flushable Unbound)
    import dns.asyncquery
    import dns.flags

    from resolver import Resolver
    from resolver.dnssec.anchors import TrustAnchor

    types = ("A", "SVCB", "TYPE65380")

    async def fill_unbound(ub, names):
        async def ask(name, rdtype):
            q = dns.message.make_query(name, rdtype, want_dnssec=True)
            r = await dns.asyncquery.udp(q, ub.address, port=ub.port, timeout=5)
            if not r.flags & dns.flags.AD:
                raise RuntimeError(f"Unbound did not validate {name} {rdtype}")
        for i in range(0, len(names), 50):
            await asyncio.gather(*(ask(name, t) for name in names[i:i + 50] for t in types))

    async def fill_ours(h, names) -> int:
        r = Resolver(hints={"cid.": [h.addresses["cid."]]}, trust_anchor=TrustAnchor.load(h.trust_anchor),
                     port=53, cache_config={"prefetch": False})
        await r.lookup(names[0], "SOA")  # delegations and keys first: not per-identifier memory
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(0, len(names), 50):
            lookups = await asyncio.gather(*(r.lookup(name, t) for name in names[i:i + 50]
                                             for t in ("A", "SVCB", "CAPS")))
            if any(lk.status is not Status.SECURE or lk.rrset is None for lk in lookups):
                raise RuntimeError("our lookups did not validate")
        del lookups  # only what the cache holds counts
        for _ in range(10):  # let finished tasks' done-callbacks run (they hold the last batch)
            await asyncio.sleep(0)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        await r.close()
        return used

    with tempfile.TemporaryDirectory(prefix="cid-cache-memory-") as tmp, \
            cold.environment(Path(tmp), n) as (h, ub):
        names = [h.name(i) for i in range(n)]
        ub.control("set_option", "extended-statistics:", "yes")  # mem.cache.* in stats
        asyncio.run(fill_unbound(ub, names[:1]))
        base = _unbound_memory(ub)
        asyncio.run(fill_unbound(ub, names[1:]))
        unbound_per = (_unbound_memory(ub) - base) / (n - 1)
        ours_per = asyncio.run(fill_ours(h, names[1:])) / (n - 1)
    print(f"identifiers cached:     {n - 1} (A+SVCB+CAPS with RRSIGs, same NSD-served zone)")
    print(f"Unbound (rrset+msg):    {unbound_per:8.0f} B per identifier")
    print(f"ours (tracemalloc):     {ours_per:8.0f} B per identifier")
    print(f"ratio ours/Unbound:     {ours_per / unbound_per:.2f}x (target <= 1.0)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="identifiers (default 1000)")
    parser.add_argument("--resolutions", action="store_true", help="also memoise a Resolution per identifier")
    parser.add_argument("--unbound", action="store_true", help="compare with Unbound in the same run (root)")
    args = parser.parse_args()
    n = args.n
    if args.unbound:
        return against_unbound(n)
    wires = responses(build_zone(n), n)
    gc.collect()
    tracemalloc.start()
    cache = Cache()
    before = tracemalloc.get_traced_memory()[0]
    for rrset, rrsigs in answers(wires):
        cache.put_rrset(rrset, rrsigs, Status.SECURE, "validated")
    if args.resolutions:
        for i in range(n):
            res = Resolution(f"cid:pool-{i}.{ZONE[:-1]}", f"pool-{i}.{ZONE}", "NOERROR", Status.SECURE,
                             "all 5 answers validated", 300,
                             (Endpoint(f"pool-{i}.{ZONE}", 1, 8443, ("h2",), (f"192.0.2.{i % 250 + 1}",)),),
                             {"accel_kind": "gpu", "accel_count": 8}, None)
            cache.put_resolution(res.identifier, dns.name.from_text(res.name), res, Status.SECURE, 300, 512)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    per = used / n
    estimate = cache.bytes / n
    what = "A+SVCB+CAPS with RRSIGs" + (" + Resolution memo" if args.resolutions else "")
    print(f"identifiers cached:         {n} ({len(cache)} entries; {what})")
    print(f"measured (tracemalloc):     {per:8.0f} B = {per / 1024:.2f} KiB per identifier")
    print(f"cache's own size estimate:  {estimate:8.0f} B ({estimate / per:.2f}x measured)")
    print(f"target (Unbound ~2.0 KiB):  ratio {per / 2048:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
