"""Browse names (spec/discovery.md) added to the tests/support/federation.py hierarchy, with the
mistakes and attacks a search must survive: pointers up, sideways and out of tree, stale
listings, a sub-type PTR whose CAPS do not match, another namespace's identifier — and a small
market of priced pools in several currencies with LOAD of different ages.

    cid.          lists children cmcc, open (+ itself and other.net.: both must be ignored)
    cmcc.cid.     lists child bj (+ a pointer back up to cid.)
                  lists the market (MARKET): h100-a (CNY, fresh LOAD), a100-b (USD, LOAD 1000 s
                  old), mi-c (CNY, LOAD older than 5 × its TTL: stale), npu-e (EUR, no LOAD)
    bj.cmcc.cid.  lists pool-7, hinted, cpu-box, ghost (does not exist), pool-1.open.cid. (not its own)
                  _kind-gpu sub-type: pool-7, hinted (no CAPS), cpu-box (CAPS say cpu)
    open.cid.     unsigned; lists pool-1
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from resolver.auth.answer import answer_query

from . import federation as F

GIB = 2**30

EXTRA = {
    "cid.": """
_children._compute 3600 PTR cmcc
_children._compute 3600 PTR open
_children._compute 3600 PTR cid.
_children._compute 3600 PTR other.net.
""",
    "cmcc.cid.": """
_children._compute 3600 PTR bj
_children._compute 3600 PTR cid.
_compute 3600 PTR h100-a
_compute 3600 PTR a100-b
_compute 3600 PTR mi-c
_compute 3600 PTR npu-e
_kind-gpu._sub._compute 3600 PTR h100-a
_kind-gpu._sub._compute 3600 PTR a100-b
_kind-gpu._sub._compute 3600 PTR mi-c
_kind-npu._sub._compute 3600 PTR npu-e
_vendor-nvidia._sub._compute 3600 PTR h100-a
_vendor-nvidia._sub._compute 3600 PTR a100-b
_vendor-amd._sub._compute 3600 PTR mi-c
_vendor-huawei._sub._compute 3600 PTR npu-e
_region-bj._sub._compute 3600 PTR h100-a
_region-sh._sub._compute 3600 PTR a100-b
_region-sh._sub._compute 3600 PTR mi-c
_region-gz._sub._compute 3600 PTR npu-e
_accel-nvidia-h100-sxm5-80gb._sub._compute 3600 PTR h100-a
_accel-nvidia-a100-sxm4-40gb._sub._compute 3600 PTR a100-b
_accel-amd-mi300x-oam-192gb._sub._compute 3600 PTR mi-c
h100-a 300 SVCB 1 . alpn=h2 port=8443
h100-a 300 A 192.0.2.101
h100-a 3600 CAPS accel_kind=gpu accel_vendor=nvidia accel_model=h100 accel_slug=nvidia-h100-sxm5-80gb accel_count=8 accel_memory_bytes=85899345920 accel_compute_capability="9.0" memory_bytes=2199023255552 region=bj currency=CNY price_per_hour=22.0
h100-a 300 LOAD accel_free=4 accel_util_ratio=0.5 price_per_hour=21.5 source=measured ts={fresh}
a100-b 300 SVCB 1 . alpn=h2 port=8443
a100-b 300 A 192.0.2.102
a100-b 3600 CAPS accel_kind=gpu accel_vendor=nvidia accel_model=a100 accel_slug=nvidia-a100-sxm4-40gb accel_count=8 accel_memory_bytes=42949672960 accel_compute_capability="8.0" memory_bytes=1099511627776 region=sh currency=USD acme.tier=gold
a100-b 600 LOAD accel_free=2 accel_util_ratio=0.75 price_per_hour=1.9 source=measured ts={old}
mi-c 300 SVCB 1 . alpn=h2 port=8443
mi-c 300 A 192.0.2.103
mi-c 3600 CAPS accel_kind=gpu accel_vendor=amd accel_model=mi300x accel_slug=amd-mi300x-oam-192gb accel_count=8 accel_memory_bytes=206158430208 memory_bytes=2199023255552 region=sh currency=CNY price_per_hour=15.0 acme.tier=silver
mi-c 30 LOAD accel_free=8 accel_util_ratio=0.0 price_per_hour=14.0 source=measured ts={stale}
npu-e 300 SVCB 1 . alpn=h2 port=8443
npu-e 300 A 192.0.2.104
npu-e 3600 CAPS accel_kind=npu accel_vendor=huawei accel_count=16 region=gz currency=EUR price_per_hour=1.2
""",
    "bj.cmcc.cid.": """
_compute 3600 PTR pool-7
_compute 3600 PTR hinted
_compute 3600 PTR cpu-box
_compute 3600 PTR ghost
_compute 3600 PTR pool-1.open.cid.
_kind-gpu._sub._compute 3600 PTR pool-7
_kind-gpu._sub._compute 3600 PTR hinted
_kind-gpu._sub._compute 3600 PTR cpu-box
cpu-box 300 SVCB 1 . alpn=h2 port=9000
cpu-box 300 A 192.0.2.90
cpu-box 3600 CAPS accel_kind=cpu cpu_count=64
cpu-box 30 LOAD cpu_free=40
""",
    "open.cid.": """
_compute 3600 PTR pool-1
""",
}

# Ages of the market's LOAD (seconds before the federation is built).
FRESH_AGE, OLD_AGE, STALE_AGE = 5, 1000, 3000

# What a search of cid. must return, and what it must skip (name -> words in the reason).
FOUND = {"cid:pool-7.bj.cmcc.cid", "cid:hinted.bj.cmcc.cid", "cid:cpu-box.bj.cmcc.cid", "cid:pool-1.open.cid"}
MARKET = {"cid:h100-a.cmcc.cid", "cid:a100-b.cmcc.cid", "cid:mi-c.cmcc.cid", "cid:npu-e.cmcc.cid"}
SKIPPED = {
    "ghost.bj.cmcc.cid.": "does not exist",
    "pool-1.open.cid.": "outside",
    "cid.": "not below",
    "other.net.": "not below",
}


def texts(extra: dict[str, str] | None = None, now: float | None = None) -> dict[str, str]:
    """Zone texts of the hierarchy with browse names (plus ``extra`` lines per zone)."""
    now = time.time() if now is None else now
    ages = {"fresh": int(now - FRESH_AGE), "old": int(now - OLD_AGE), "stale": int(now - STALE_AGE)}
    out = {}
    for zone, (_, text) in F.ZONES.items():
        out[zone] = text + EXTRA.get(zone, "").format(**ages) + (extra or {}).get(zone, "")
    return out


def build(extra: dict[str, str] | None = None) -> F.Federation:
    now = time.time()
    return F.build(now=now, overrides=texts(extra, now))


class _Switchable(asyncio.DatagramProtocol):
    def __init__(self, servers: Switchable, address: str):
        self.servers, self.address = servers, address

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if self.servers.refusing:
            import dns.message
            import dns.rcode
            response = dns.message.make_response(dns.message.from_wire(data))
            response.set_rcode(dns.rcode.REFUSED)
            self.transport.sendto(response.to_wire(), addr)
            return
        wire = answer_query(self.servers.stores[self.address], data, tcp=False)
        if wire is not None:
            self.transport.sendto(wire, addr)


class Switchable:
    """Every zone on its 127.0.0.x address over UDP, one port; ``refusing = True`` makes every
    server answer REFUSED (all authorities failing: what makes a resolver serve stale data)."""

    def __init__(self, fed: F.Federation):
        self.stores = fed.stores()
        self.refusing = False
        self.port = 0


@contextlib.asynccontextmanager
async def switchable(fed: F.Federation):
    servers = Switchable(fed)
    loop = asyncio.get_running_loop()
    for _ in range(5):
        port = F.free_port("127.0.0.2")
        transports = []
        try:
            for address in servers.stores:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda a=address: _Switchable(servers, a), local_addr=(address, port))
                transports.append(transport)
        except OSError:
            for t in transports:
                t.close()
            continue
        break
    else:
        raise RuntimeError("no common free port on 127.0.0.2-7")
    servers.port = port
    try:
        yield servers
    finally:
        for t in transports:
            t.close()
