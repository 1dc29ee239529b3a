"""Automatic re-signing on a running live primary (resolver/auth/resign.py, spec/dnssec.md §6).

The zone is signed by ``cid zone sign`` at an injected moment T0, served by the live primary
(``open_primary`` + ``AuthServer`` on 127.0.94.x, the clock injected), and resolved over the
socket by our resolver, its clock injected too, from a trust anchor (the zone's DS).
Jumping the clock past the refresh point (half of the validity left) makes the server re-sign
in bounded batches, one journaled change each; the zone then validates at the new time and
still does when the original signatures would have expired (before the re-sign it does not).
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import dns.name
import pytest

from resolver import Resolver
from resolver.auth.keys import KSK_FLAGS, ZSK_FLAGS, generate_key, write_key_files
from resolver.auth.zonedb import RRSIG, decode_sets
from resolver.cli.main import main as cid
from tests.support.live_primary import InProcess
from resolver.status import Status

ADDRESS = "127.0.94.1"
ZONE = "rs94.test."
T0 = 1_900_000_000  # the injected "now" of the first signing
DAY = 86400


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def zone_text(names: int) -> str:
    lines = [f"$ORIGIN {ZONE}", "$TTL 300",
             "@ IN SOA ns1 hostmaster 1 3600 600 86400 300", "@ IN NS ns1", f"ns1 IN A {ADDRESS}"]
    lines += [f"h{i} IN A 192.0.2.{i + 1}" for i in range(names)]
    lines += ["www IN A 192.0.2.200", 'www IN TXT "hello"']
    return "\n".join(lines) + "\n"


def build(tmp: Path, *, batch: int, names: int = 8) -> Path:
    keys = tmp / "keys"
    keys.mkdir()
    for flags in (KSK_FLAGS, ZSK_FLAGS):
        write_key_files(generate_key(ZONE, flags=flags), keys)
    plain = tmp / "zone.db"
    plain.write_text(zone_text(names))
    signed = tmp / "zone.db.signed"
    assert cid(["zone", "sign", str(plain), "-K", str(keys), "-o", str(signed), "--inception", str(T0 - 3600),
                "--expiration", str(T0 + 14 * DAY), "--ds-out", str(tmp / "ta.ds")]) == 0
    config = tmp / "auth.toml"
    config.write_text(f'listen = ["{ADDRESS}:0"]\njournal = "journal"\n[[zone]]\nfile = "{signed}"\n'
                      f'keys = "keys"\nresign_batch = {batch}\n')
    (tmp / "journal").mkdir()
    return config


def signatures(live) -> list[tuple[int, int]]:
    """(inception, expiration) of every RRSIG in the live zone."""
    out = []
    for blobs in (live.data.blobs, live.data.hashed):
        for blob in dict.values(blobs):
            for (rdtype, _), (_, rdatas) in decode_sets(blob).items():
                if rdtype == RRSIG:
                    out += [struct.unpack_from("!II", rd, 8)[::-1] for rd in rdatas]
    return out


async def lookup_status(port: int, ta: Path, now: float, name: str = f"www.{ZONE}", rdtype: str = "TXT"):
    async with Resolver({ZONE: [f"{ADDRESS}:{port}"]}, trust_anchor=ta, clock=lambda: now, timeout=2) as r:
        result = await r.lookup(name, rdtype, policy=False)
        return result.status


class Served(InProcess):
    def __init__(self, config: Path, clock: Clock):
        super().__init__(config, clock, ADDRESS)

    async def __aenter__(self):
        await super().__aenter__()
        self.live = self.primary.zone(ZONE)
        return self


async def test_signatures_renewed_in_batches_past_the_refresh_point(tmp_path):
    config = build(tmp_path, batch=4)
    ta = tmp_path / "ta.ds"
    clock = Clock(T0)
    async with Served(config, clock) as s:
        live, upkeep = s.live, s.live.maintenance
        total = len(signatures(live))
        assert await lookup_status(s.port, ta, clock.now) is Status.SECURE
        # The refresh point: half of the validity left (inception T0-1h, expiration T0+14d).
        due = upkeep.next_due()
        assert due == pytest.approx(T0 - 3600 + (14 * DAY + 3600) / 2)
        serial = live.committed_serial
        clock.now = due - 60  # not yet: nothing is re-signed
        await upkeep.poke()
        assert live.committed_serial == serial
        clock.now = T0 + 8 * DAY
        # Not re-signed yet, the zone would be bogus once the first signatures expire.
        assert await lookup_status(s.port, ta, T0 + 15 * DAY) is Status.BOGUS
        await upkeep.poke()
        # Every RRset signed afresh; one journaled change per batch of at most 4 RRsets.
        sigs = signatures(live)
        assert sigs and all(inc == int(clock.now) - 3600 for inc, _ in sigs), sigs
        diffs = list(live.journal.diffs_after(0))
        assert -(-total // 4) - 1 <= len(diffs) <= -(-total // 4), (len(diffs), total)
        assert live.committed_serial != serial
        for diff in diffs:
            covered = {(o, t) for o, t in _covered(diff.added)}
            assert len(covered - {("soa", 6)}) <= 4 + 1  # the batch's RRsets and the new SOA
        assert await lookup_status(s.port, ta, clock.now) is Status.SECURE
        assert await lookup_status(s.port, ta, T0 + 15 * DAY) is Status.SECURE
        assert await lookup_status(s.port, ta, T0 + 15 * DAY, f"h3.{ZONE}", "A") is Status.SECURE
        renewed = live.committed_serial
        # The next refresh point is the new signatures' own: nothing more to do now.
        assert upkeep.next_due() > clock.now
        await upkeep.poke()
        assert live.committed_serial == renewed
    # A restart replays the journal: the renewed signatures are what is served.
    clock.now = T0 + 15 * DAY
    async with Served(config, clock) as s:
        assert s.live.committed_serial == renewed
        assert all(inc == T0 + 8 * DAY - 3600 for inc, _ in signatures(s.live))
        assert await lookup_status(s.port, ta, clock.now) is Status.SECURE


def _covered(rrs) -> list[tuple[bytes, int]]:
    from resolver.auth.journal import parse_rr
    out = []
    for rr in rrs:
        owner, rdtype, _, rdata = parse_rr(rr)
        covered = struct.unpack_from("!H", rdata)[0] if rdtype == RRSIG else rdtype
        out.append(("soa", 6) if covered == 6 else (owner.lower(), covered))
    return out


async def test_the_timer_fires_by_itself(tmp_path):
    """No poke: the server's own timer (re-checked every POLL seconds) finds the due RRsets."""
    config = build(tmp_path, batch=500, names=2)
    clock = Clock(T0)
    async with Served(config, clock) as s:
        await s.live.maintenance.poke()  # the start's own tick, done before the clock moves
        serial = s.live.committed_serial
        clock.now = T0 + 8 * DAY
        for _ in range(200):  # bounded: at most ~10 s
            if s.live.committed_serial != serial:
                break
            await asyncio.sleep(0.05)
        assert s.live.committed_serial != serial
        assert all(inc == int(clock.now) - 3600 for inc, _ in signatures(s.live))
