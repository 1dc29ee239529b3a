"""Key rollover survives kill -9 at any moment (issue 9: durability, keys and signatures).

`cid serve auth --config` runs as a real process in real time on a parent p95.cid. and its child
c.p95.cid. whose TTLs are one second and whose propagation delay is zero, so a whole ZSK roll and
KSK roll (with the parent's DS changed on the same server) take seconds. While they run, the
server is killed with SIGKILL at random moments and started again on the same journal and key
state. After every kill the child as the journal holds it (`cid zone export`) must pass
`cid zone verify`, and after every restart our resolver must validate it from the parent's DS.
The roll must still finish: new keys in, old keys out.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import dns.name
import dns.rdatatype
import pytest

from resolver.auth import rollover
from resolver.cli.main import main as cid
from support.live_primary import cid as cid_process
from support.net import free_port
from support.peer_servers import wait_until_answers
from test_rollover import sign

ADDRESS = "127.0.95.2"
PARENT, CHILD = "p95.cid.", "c.p95.cid."
TTL = 1
ROUNDS = 12  # kills at most (bounded); the roll usually ends sooner
DEADLINE = 60.0  # seconds for the whole roll under kills


def build(tmp: Path, port: int) -> Path:
    now = int(time.time())
    child, child_keys = sign(tmp, CHILD, f"$ORIGIN {CHILD}\n$TTL {TTL}\n@ SOA ns1.{PARENT} h 1 3600 600 86400 {TTL}\n"
                             f"@ NS ns1.{PARENT}\nwww A 192.0.2.1\nwww TXT \"child\"\n", now)
    ds = (tmp / f"{CHILD}ds").read_text()
    parent, parent_keys = sign(tmp, PARENT, f"$ORIGIN {PARENT}\n$TTL {TTL}\n@ SOA ns1 h 1 3600 600 86400 {TTL}\n"
                               f"@ NS ns1\nns1 A {ADDRESS}\nc NS ns1\n{ds}", now)
    config = tmp / "auth.toml"
    config.write_text(f'listen = ["{ADDRESS}:{port}"]\njournal = "journal"\n'
                      f'[[zone]]\nfile = "{parent}"\nkeys = "{parent_keys}"\npropagation_delay = 0\n'
                      f'[[zone]]\nfile = "{child}"\nkeys = "{child_keys}"\npropagation_delay = 0\n'
                      f'parent_ds_ttl = {TTL}\n')
    (tmp / "journal").mkdir()
    return config


def start(config: Path, port: int, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "resolver", "serve", "auth", "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until_answers(ADDRESS, port, CHILD, proc, log, timeout=30)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def rolls(journal: Path) -> list[dict]:
    state = rollover.KeyState(journal, dns.name.from_text(CHILD))
    try:
        return state.rolls()
    finally:
        state.close()


def exported_child_verifies(config: Path, out: Path) -> None:
    done = cid_process("zone", "export", CHILD, "--config", str(config), "-o", str(out))
    assert done.returncode == 0, done.stderr
    verified = cid_process("zone", "verify", str(out))
    assert verified.returncode == 0 and verified.stdout.strip() == "ok", verified.stdout + verified.stderr


def validates(port: int, anchor: Path) -> None:
    import asyncio

    from resolver import Resolver, Status

    async def ask():
        async with Resolver({PARENT: [f"{ADDRESS}:{port}"]}, trust_anchor=anchor, timeout=1.0) as r:
            return await r.lookup(f"www.{CHILD}", "TXT", policy=False)
    result = asyncio.run(ask())
    assert result.status is Status.SECURE, (result.status, result.why)


def dnskey_tags(port: int) -> set[int]:
    import dns.dnssec
    import dns.message
    import dns.query

    answer = dns.query.tcp(dns.message.make_query(CHILD, "DNSKEY"), ADDRESS, port=port, timeout=5)
    return {dns.dnssec.key_id(rd) for rrset in answer.answer if rrset.rdtype == dns.rdatatype.DNSKEY for rd in rrset}


def test_zsk_and_ksk_rolls_survive_kill9_at_random_moments(tmp_path: Path) -> None:
    port = free_port(ADDRESS)
    config = build(tmp_path, port)
    anchor = tmp_path / f"{PARENT}ds"
    log = tmp_path / "serve.log"
    rng = random.Random(95)
    proc = start(config, port, log)
    try:
        before = dnskey_tags(port)
        assert cid(["zone", "rollover", CHILD, "--zsk", "--config", str(config)]) == 0
        assert cid(["zone", "rollover", CHILD, "--ksk", "--config", str(config)]) == 0
        deadline = time.monotonic() + DEADLINE
        kills = 0
        while rolls(tmp_path / "journal") and time.monotonic() < deadline and kills < ROUNDS:
            time.sleep(rng.uniform(0.05, 1.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            kills += 1
            exported_child_verifies(config, tmp_path / f"export-{kills}.zone")
            proc = start(config, port, log)
            validates(port, anchor)
        # Let the roll end without kills (bounded), then check where it ended.
        while rolls(tmp_path / "journal") and time.monotonic() < deadline + 30:
            time.sleep(0.5)
        assert not rolls(tmp_path / "journal"), f"roll did not finish after {kills} kills: {rolls(tmp_path / 'journal')}"
        after = dnskey_tags(port)
        validates(port, anchor)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
    assert kills >= 2, "the roll ended before it could be interrupted twice"
    assert len(after) == 2 and not (after & before), (before, after)  # both keys replaced
    exported_child_verifies(config, tmp_path / "final.zone")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
