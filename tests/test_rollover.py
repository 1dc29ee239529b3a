"""Key rollover on a running live primary (resolver/auth/rollover.py, spec/dnssec.md §6).

A parent zone p94.test. and its child c.p94.test. are served by one live primary on
127.0.94.2 (injected clock). The trust anchor is the parent's DS; the child's DS is in the
parent. ``cid zone rollover`` (start_roll) begins a ZSK roll and a KSK roll of the child; the
clock is stepped to each due time, the server's upkeep advances the roll, and at every step:
the child's live zone verifies (every RRset signed by a published key, ``verify_zone``), our
resolver validates from the parent's DS — one resolver kept across the steps (its cache ages
with the clock, as a real cache between the steps would) and a fresh one.
Not done here: Unbound at every step (see the report in the commit message).
"""

from __future__ import annotations

from pathlib import Path

import dns.name
import dns.zone
import pytest

from resolver import Resolver
from resolver.auth import authconfig, export, livesetup, rollover
from resolver.auth.keys import KSK_FLAGS, ZSK_FLAGS, generate_key, write_key_files
from resolver.auth.server import AuthServer
from resolver.auth.signer import verify_zone
from resolver.cli.main import main as cid
from resolver.status import Status

ADDRESS = "127.0.94.2"
PARENT, CHILD = "p94.test.", "c.p94.test."
T0 = 1_900_000_000
TTL = 300


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def sign(tmp: Path, name: str, text: str) -> tuple[Path, Path]:
    keys = tmp / f"keys-{name}"
    keys.mkdir()
    for flags in (KSK_FLAGS, ZSK_FLAGS):
        write_key_files(generate_key(name, flags=flags), keys)
    plain = tmp / f"{name}zone"
    plain.write_text(text)
    signed = tmp / f"{name}zone.signed"
    assert cid(["zone", "sign", str(plain), "-K", str(keys), "-o", str(signed), "--inception", str(T0 - 3600),
                "--expiration", str(T0 + 14 * 86400), "--ds-out", str(tmp / f"{name}ds")]) == 0
    return signed, keys


def build(tmp: Path) -> Path:
    child, child_keys = sign(tmp, CHILD, f"$ORIGIN {CHILD}\n$TTL {TTL}\n@ SOA ns1.{PARENT} h 1 3600 600 86400 {TTL}\n"
                             f"@ NS ns1.{PARENT}\nwww A 192.0.2.1\nwww TXT \"child\"\n")
    ds = (tmp / f"{CHILD}ds").read_text()
    parent, parent_keys = sign(tmp, PARENT, f"$ORIGIN {PARENT}\n$TTL {TTL}\n@ SOA ns1 h 1 3600 600 86400 {TTL}\n"
                               f"@ NS ns1\nns1 A {ADDRESS}\nc NS ns1\n{ds}")
    config = tmp / "auth.toml"
    config.write_text(f'listen = ["{ADDRESS}:0"]\njournal = "journal"\n'
                      f'[[zone]]\nfile = "{parent}"\nkeys = "{parent_keys}"\n'
                      f'[[zone]]\nfile = "{child}"\nkeys = "{child_keys}"\npropagation_delay = 60\nparent_ds_ttl = {TTL}\n')
    (tmp / "journal").mkdir()
    return config


class Served:
    def __init__(self, config: Path, clock: Clock):
        self.config = authconfig.load(config)
        self.clock = clock

    async def __aenter__(self):
        self.primary = livesetup.open_primary(self.config, clock=self.clock)
        self.child = self.primary.zone(CHILD)
        self.server = AuthServer(self.primary.store, [(ADDRESS, 0)], primary=self.primary)
        await self.server.start()
        self.port = self.server.addresses[0][1]
        for live in self.primary.zones.values():
            live.start()
            await live.maintenance.poke()
        return self

    async def __aexit__(self, *exc):
        await self.server.close()
        for live in self.primary.zones.values():
            live.close()


async def check(s: Served, kept: Resolver, ta: Path, now: float) -> None:
    """The zone verifies and validates at ``now`` (module text)."""
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


async def roll(s: Served, ta: Path, clock: Clock, role: str) -> list[str]:
    roller = s.child.maintenance.roller
    async with Resolver({PARENT: [f"{ADDRESS}:{s.port}"]}, trust_anchor=ta, clock=clock) as kept:
        await check(s, kept, ta, clock.now)
        print(rollover.start_roll(s.config, dns.name.from_text(CHILD), role, now=clock.now))
        done = len(roller.log)
        for _ in range(10):  # bounded: a roll is 3-4 steps
            if not roller.state.rolls():
                break
            clock.now = max(clock.now, roller.next_due())
            await s.child.maintenance.poke()
            await check(s, kept, ta, clock.now)
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
    ("normal", "nowhere.test.", "is not in"),
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
