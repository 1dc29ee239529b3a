"""Key rollover on a running live primary (resolver/auth/rollover.py, spec/dnssec.md §6).

A parent zone p94.cid. and its child c.p94.cid. are served by one live primary on
127.0.94.2 (injected clock). The trust anchor is the parent's DS; the child's DS is in the
parent. ``cid zone rollover`` (start_roll) begins a ZSK roll and a KSK roll of the child; the
clock is stepped to each due time, the server's upkeep advances the roll, and at every step:
the child's live zone verifies (every RRset signed by a published key, ``verify_zone``), our
resolver validates from the parent's DS — one resolver kept across the steps (its cache ages
with the clock, as a real cache between the steps would) and a fresh one.
Unbound validates at every step too: it runs in real time, so that test's injected timeline
starts ten days in the past (signatures made at any injected moment, valid for 14 days from
then, cover real now) and Unbound's cache is flushed before each question — the kept resolver
of ours is what checks that cached data stays valid across a step.
"""

from __future__ import annotations

from pathlib import Path

import asyncio
import time

import dns.asyncquery
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.zone
import pytest

from resolver import Resolver
from resolver.auth import authconfig, export, livesetup, rollover
from resolver.auth.keys import KSK_FLAGS, ZSK_FLAGS, generate_key, write_key_files
from resolver.auth.server import AuthServer
from resolver.auth.signer import verify_zone
from resolver.cli.main import main as cid
from tests.support.live_primary import InProcess
from resolver.status import Status
from tests.support.net import free_port
from tests.support.peer_servers import unbound

ADDRESS = "127.0.94.2"
PARENT, CHILD = "p94.cid.", "c.p94.cid."
T0 = 1_900_000_000
TTL = 300


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def sign(tmp: Path, name: str, text: str, t0: int) -> tuple[Path, Path]:
    keys = tmp / f"keys-{name}"
    keys.mkdir()
    for flags in (KSK_FLAGS, ZSK_FLAGS):
        write_key_files(generate_key(name, flags=flags), keys)
    plain = tmp / f"{name}zone"
    plain.write_text(text)
    signed = tmp / f"{name}zone.signed"
    assert cid(["zone", "sign", str(plain), "-K", str(keys), "-o", str(signed), "--inception", str(t0 - 3600),
                "--expiration", str(t0 + 14 * 86400), "--ds-out", str(tmp / f"{name}ds")]) == 0
    return signed, keys


def build(tmp: Path, t0: int = T0) -> Path:
    child, child_keys = sign(tmp, CHILD, f"$ORIGIN {CHILD}\n$TTL {TTL}\n@ SOA ns1.{PARENT} h 1 3600 600 86400 {TTL}\n"
                             f"@ NS ns1.{PARENT}\nwww A 192.0.2.1\nwww TXT \"child\"\n", t0)
    ds = (tmp / f"{CHILD}ds").read_text()
    parent, parent_keys = sign(tmp, PARENT, f"$ORIGIN {PARENT}\n$TTL {TTL}\n@ SOA ns1 h 1 3600 600 86400 {TTL}\n"
                               f"@ NS ns1\nns1 A {ADDRESS}\nc NS ns1\n{ds}", t0)
    config = tmp / "auth.toml"
    config.write_text(f'listen = ["{ADDRESS}:0"]\njournal = "journal"\n'
                      f'[[zone]]\nfile = "{parent}"\nkeys = "{parent_keys}"\n'
                      f'[[zone]]\nfile = "{child}"\nkeys = "{child_keys}"\npropagation_delay = 60\nparent_ds_ttl = {TTL}\n')
    (tmp / "journal").mkdir()
    return config


class Served(InProcess):
    def __init__(self, config: Path, clock: Clock):
        super().__init__(config, clock, ADDRESS, poke=True)

    async def __aenter__(self):
        await super().__aenter__()
        self.child = self.primary.zone(CHILD)
        return self


async def check(s: Served, kept: Resolver, ta: Path, now: float, unbound=None) -> None:
    """The zone verifies and validates at ``now`` (module text); with ``unbound``, Unbound
    (its cache flushed: it lives in real time) validates it too."""
    text = export.zone_text(s.child.data)
    problems = verify_zone(dns.zone.from_text(text, CHILD, relativize=False), now=now)
    assert problems == [], problems
    assert s.child.keys and s.child.problem is None
    for resolver in (kept, None):
        if resolver is None:
            async with Resolver({PARENT: [f"{ADDRESS}:{s.port}"]}, trust_anchor=ta, clock=lambda: now) as fresh:
                result = await fresh.lookup(f"www.{CHILD}", "TXT", policy=False)
        else:
            result = await resolver.lookup(f"www.{CHILD}", "TXT", policy=False)
        assert result.status is Status.SECURE, (result.status, result.why)
    # A name never asked before: its denial is fetched now and checked against the DNSKEY
    # RRset the kept resolver cached before the step (a too-early switch shows here).
    fresh_name = f"n{int(now)}.{CHILD}"
    denial = await kept.lookup(fresh_name, "A", policy=False)
    assert denial.status is Status.SECURE and denial.rcode == "NXDOMAIN", (denial.status, denial.why)
    if unbound is not None:
        await asyncio.get_running_loop().run_in_executor(None, unbound.flush, PARENT)
        query = dns.message.make_query(f"www.{CHILD}", "TXT", want_dnssec=True)
        answer = await dns.asyncquery.udp(query, unbound.address, port=unbound.port, timeout=10)
        assert answer.rcode() == dns.rcode.NOERROR and answer.flags & dns.flags.AD, answer


async def roll(s: Served, ta: Path, clock: Clock, role: str, unbound=None) -> list[str]:
    roller = s.child.maintenance.roller
    async with Resolver({PARENT: [f"{ADDRESS}:{s.port}"]}, trust_anchor=ta, clock=clock) as kept:
        await check(s, kept, ta, clock.now, unbound)
        if unbound is None:  # as a user starts it (the roll's first step is due at real now)
            assert cid(["zone", "rollover", CHILD, f"--{role}", "--config", str(s.config.path)]) == 0
        else:  # the past timeline of the Unbound test: started at its injected now
            print(rollover.start_roll(s.config, dns.name.from_text(CHILD), role, now=clock.now))
        done = len(roller.log)
        for _ in range(10):  # bounded: a roll is 3-4 steps
            if not roller.state.rolls():
                break
            clock.now = max(clock.now, roller.next_due())
            await s.child.maintenance.poke()
            await check(s, kept, ta, clock.now, unbound)
            clock.now += 1
            await check(s, kept, ta, clock.now)
        assert not roller.state.rolls()
        return roller.log[done:]


async def test_zsk_roll_by_pre_publication(tmp_path):
    config = build(tmp_path)
    clock = Clock(T0)
    async with Served(config, clock) as s:
        old = [k.key_tag for k in s.child.keys if not k.is_ksk]
        steps = await roll(s, tmp_path / f"{PARENT}ds", clock, "zsk")
        assert [line.split()[1] for line in steps] == ["publish", "activate", "resign", "remove"]
        at = [float(line.split()[-1]) for line in steps]
        # RFC 6781 §4.1.1.1 waits: DNSKEY TTL + propagation, then the largest TTL + propagation.
        assert at[1] - at[0] >= TTL + 60 and at[3] - at[2] >= TTL + 60, at
        new = [k.key_tag for k in s.child.keys if not k.is_ksk]
        assert new and new != old
        dnskeys = s.child.data.node(s.child.data.apex).rrsets[48].rdatas
        assert len(dnskeys) == 2  # the KSK and the new ZSK; the old ZSK is gone
        assert (tmp_path / f"keys-{CHILD}" / "retired").is_dir()


async def test_ksk_roll_by_double_ds_updates_the_parent(tmp_path):
    config = build(tmp_path)
    clock = Clock(T0)
    async with Served(config, clock) as s:
        old = [k.key_tag for k in s.child.keys if k.is_ksk]
        steps = await roll(s, tmp_path / f"{PARENT}ds", clock, "ksk")
        assert [line.split()[1] for line in steps] == ["ds-add", "swap", "ds-remove"]
        at = [float(line.split()[-1]) for line in steps]
        # RFC 6781 §4.1.2 waits: the parent's DS TTL + propagation, then DNSKEY TTL + propagation.
        assert at[1] - at[0] >= TTL + 60 and at[2] - at[1] >= TTL + 60, at
        new = [k.key_tag for k in s.child.keys if k.is_ksk]
        assert new and new != old
        apex = s.child.data.node(s.child.data.apex).rrsets
        assert 59 in apex and 60 in apex and len(apex[59].rdatas) == 1  # CDS/CDNSKEY: the new KSK
        parent = s.primary.zone(PARENT)
        from resolver.auth import wirename
        from resolver.auth.zonedb import decode_sets
        ds = decode_sets(dict.get(parent.data.blobs, wirename.key_of(dns.name.from_text(CHILD))))[(43, 0)]
        assert len(ds[1]) == 1  # the parent's DS names the new KSK only


@pytest.mark.parametrize("setup, zone, expected", [
    ("normal", "nowhere.cid.", "is not in"),
    ("nokeys", CHILD, "no keys for"),
])
def test_rollover_command_errors_are_one_line(tmp_path, capsys, setup, zone, expected):
    config = build(tmp_path)
    if setup == "nokeys":
        for path in (tmp_path / f"keys-{CHILD}").iterdir():
            path.unlink()
    assert cid(["zone", "rollover", zone, "--zsk", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err and "Traceback" not in err


async def test_both_rolls_validate_with_unbound_at_every_step(tmp_path):
    t0 = int(time.time()) - 10 * 86400
    config = build(tmp_path, t0)
    clock = Clock(t0)
    ta = tmp_path / f"{PARENT}ds"
    async with Served(config, clock) as s:
        where = f"{ADDRESS}@{s.port}"
        with unbound(tmp_path / "unbound", "127.0.94.3", free_port("127.0.94.3"), trust_anchor=ta,
                     stubs={PARENT: where, CHILD: where}) as peer:
            assert len(await roll(s, ta, clock, "zsk", peer)) == 4
            assert len(await roll(s, ta, clock, "ksk", peer)) == 3
        assert clock.now < time.time()


async def test_a_second_roll_and_a_combined_key_are_refused(tmp_path, capsys):
    config = build(tmp_path)
    assert cid(["zone", "rollover", CHILD, "--zsk", "--config", str(config)]) == 0
    assert cid(["zone", "rollover", CHILD, "--zsk", "--config", str(config)]) == 2
    assert "roll of c.p94.cid. is in progress" in capsys.readouterr().err
    solo = tmp_path / "solo"
    solo.mkdir()
    write_key_files(generate_key(PARENT, flags=KSK_FLAGS), solo)
    text = config.read_text().replace(f'keys = "{tmp_path / f"keys-{PARENT}"}"', f'keys = "{solo}"')
    config.write_text(text)
    assert cid(["zone", "rollover", PARENT, "--zsk", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no separate ZSK" in err and "\n" not in err


async def test_ksk_roll_with_the_parent_on_another_server_by_signed_update(tmp_path):
    """The parent is another primary: the child's server sends the DS set as a TSIG-signed UPDATE."""
    a, b = "127.0.94.4", "127.0.94.5"
    port = free_port(a)
    secret = "c2VjcmV0LWZvci1yb2xsb3Zlci10ZXN0cy0xMjM0NQ=="
    child, child_keys = sign(tmp_path, CHILD, f"$ORIGIN {CHILD}\n$TTL {TTL}\n@ SOA ns2.{PARENT} h 1 3600 600 86400 {TTL}\n"
                             f"@ NS ns2.{PARENT}\nwww A 192.0.2.1\nwww TXT \"child\"\n", T0)
    ds = (tmp_path / f"{CHILD}ds").read_text()
    parent, parent_keys = sign(tmp_path, PARENT, f"$ORIGIN {PARENT}\n$TTL {TTL}\n@ SOA ns1 h 1 3600 600 86400 {TTL}\n"
                               f"@ NS ns1\nns1 A {a}\nns2 A {b}\nc NS ns2\n{ds}", T0)
    key = (f'[[key]]\nname = "child-ds."\nsecret = "{secret}"\n[[key.grant]]\nzone = "{PARENT}"\n'
           f'subtree = "{CHILD}"\ntypes = ["DS"]\n')
    for name in ("pj", "cj"):
        (tmp_path / name).mkdir()
    pconf, cconf = tmp_path / "parent.toml", tmp_path / "child.toml"
    pconf.write_text(f'listen = ["{a}:{port}"]\njournal = "pj"\n[[zone]]\nfile = "{parent}"\nkeys = "{parent_keys}"\n{key}')
    cconf.write_text(f'listen = ["{b}:{port}"]\njournal = "cj"\n[[zone]]\nfile = "{child}"\nkeys = "{child_keys}"\n'
                     f'propagation_delay = 60\nparent_ds_ttl = {TTL}\nparent = "{a}:{port}"\nparent_key = "child-ds."\n{key}')
    clock = Clock(T0)
    servers = []
    try:
        for conf, address in ((pconf, a), (cconf, b)):
            primary = livesetup.open_primary(authconfig.load(conf), clock=clock)
            server = AuthServer(primary.store, [(address, port)], primary=primary)
            await server.start()
            servers.append((primary, server))
            for live in primary.zones.values():
                live.start()
                await live.maintenance.poke()
        parent_live, child_live = servers[0][0].zone(PARENT), servers[1][0].zone(CHILD)
        roller = child_live.maintenance.roller
        ta = tmp_path / f"{PARENT}ds"
        async with Resolver({PARENT: [f"{a}:{port}"]}, trust_anchor=ta, port=port, clock=clock) as kept:
            async def validates() -> None:
                result = await kept.lookup(f"www.{CHILD}", "TXT", policy=False)
                assert result.status is Status.SECURE, (result.status, result.why)
            await validates()
            assert cid(["zone", "rollover", CHILD, "--ksk", "--config", str(cconf)]) == 0
            for _ in range(10):
                if not roller.state.rolls():
                    break
                clock.now = max(clock.now, roller.next_due())
                await child_live.maintenance.poke()
                await validates()
            assert not roller.state.rolls()
        from resolver.auth import wirename
        from resolver.auth.zonedb import decode_sets
        parent_ds = decode_sets(dict.get(parent_live.data.blobs, wirename.key_of(dns.name.from_text(CHILD))))[(43, 0)]
        new_ksk = next(k for k in child_live.keys if k.is_ksk)
        from resolver.auth.signer import ds_records
        assert set(parent_ds[1]) == {d.to_wire() for d in ds_records(CHILD, [new_ksk.dnskey])}
        assert parent_live.journal.last_seq() >= 2  # two signed UPDATEs, journaled by the parent
    finally:
        for primary, server in servers:
            await server.close()
            for live in primary.zones.values():
                live.close()


async def test_a_swap_cut_short_is_done_again_after_a_restart(tmp_path):
    """The key state says "swapped" but the zone change never happened (what kill -9 between
    the two writes leaves): after a restart the step runs again and the zone validates."""
    config = build(tmp_path)
    clock = Clock(T0)
    ta = tmp_path / f"{PARENT}ds"
    async with Served(config, clock) as s:
        roller = s.child.maintenance.roller
        assert cid(["zone", "rollover", CHILD, "--ksk", "--config", str(config)]) == 0
        clock.now = max(clock.now, roller.next_due())
        await s.child.maintenance.poke()  # ds-add done
        roll = roller.state.rolls()[0]
        assert roll["step"] == "swap"
        roller.state.set(roll["algorithm"], roll["new"], clock.now, published=1, active=1)
        roller.state.set(roll["algorithm"], roll["old"], clock.now, published=0, active=0)
    clock.now = roll["due"]
    async with Served(config, clock) as s:
        roller = s.child.maintenance.roller
        assert roller.state.rolls()[0]["step"] == "ds-remove"  # the start's tick did the swap again
        async with Resolver({PARENT: [f"{ADDRESS}:{s.port}"]}, trust_anchor=ta, clock=clock) as kept:
            await check(s, kept, ta, clock.now)
