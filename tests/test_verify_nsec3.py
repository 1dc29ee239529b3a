"""``cid zone verify`` on BIND-signed NSEC3 zones, good and deliberately broken, beside BIND's
``dnssec-verify -z``.

Each break changes one thing and re-signs what it changed with the zone's key, so it is the
break and not a stale signature that must be found. Where dnssec-verify accepts a zone that
RFC 5155 §7.1 forbids (an unsigned delegation without NSEC3 and without an opt-out NSEC3 covering
it, which no validator can prove insecure), the case says so and we are the stricter.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable

import dns.name
import dns.rdata
import dns.rdatatype
import dns.rdtypes.util
import pytest

from resolver.auth.signer import verify_zone
from resolver.auth.zonefile import load_zone, write_zone
from support import nsec3_zones as z
from support.peers import run

T = dns.rdatatype
N = dns.name.from_text


@pytest.fixture(scope="module")
def zones(tmp_path_factory) -> dict[str, z.SignedZone]:
    directory = tmp_path_factory.mktemp("verify-nsec3")
    return {
        "plain": z.bind_sign(directory, "n3.cid."),
        "optout": z.bind_sign(directory, "oo.cid.", opt_out=True),
        "salted": z.bind_sign(directory, "s3.cid.", salt="AABBCCDD", iterations=5),
    }


def dnssec_verify(path, origin: dns.name.Name) -> tuple[bool, str]:
    proc = run(["dnssec-verify", "-z", "-o", str(origin), str(path)], check=False)
    return proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("kind", ["plain", "optout", "salted"])
def test_bind_signed_zones_verify(zones, kind, tmp_path):
    signed = zones[kind]
    assert verify_zone(load_zone(signed.path)) == []
    # Written back by us (CAPS as TYPE65380 in NSEC3 bitmaps too), it still loads and verifies.
    path = tmp_path / "again.db"
    write_zone(load_zone(signed.path), path, generic=True)
    assert dnssec_verify(path, signed.origin)[0]
    assert verify_zone(load_zone(path)) == []


def _bitmap_without_svcb(zone, key):
    owner = z.hashed_owner(zone, f"pool-7.{zone.origin}")
    windows = dns.rdtypes.util.Bitmap.from_rdtypes([T.A, T.AAAA, T.RRSIG, 65380]).windows
    z.put_nsec3(zone, owner, z.nsec3_at(zone, owner).replace(windows=windows), key)


def _other_salt(zone, key):
    owner = z.hashed_owner(zone, f"pool-7.{zone.origin}")
    z.put_nsec3(zone, owner, z.nsec3_at(zone, owner).replace(salt=b"\xab"), key)


def _bad_signature(zone, key):
    owner = z.hashed_owner(zone, f"pool-7.{zone.origin}")
    sigs = zone.get_rdataset(owner, T.RRSIG, T.NSEC3)
    rd = sigs[0]
    signature = bytearray(rd.signature)
    signature[5] ^= 1
    sigs.clear()
    sigs.add(rd.replace(signature=bytes(signature)), 300)


def _new_name_without_nsec3(zone, key):
    name = N(f"new.{zone.origin}")
    zone.find_rdataset(name, T.A, create=True).add(dns.rdata.from_text("IN", "A", "192.0.2.1"), 300)
    z.resign(zone, name, T.A, key)


def _clear_opt_out(zone, key, name: str):
    owner = z.covering_owner(zone, f"{name}.{zone.origin}")
    z.put_nsec3(zone, owner, z.nsec3_at(zone, owner).replace(flags=0), key)


Break = Callable[[object, object], None]
# (zone, break, our problems (regular expressions, all must appear, nothing else), dnssec-verify ok?)
CASES: dict[str, tuple[str, Break, list[str], bool]] = {
    "nsec3 removed, chain left open": (
        "plain", lambda zone, key: zone.delete_node(z.hashed_owner(zone, f"pool-7.{zone.origin}")),
        [r"^\S+ NSEC3: next hashed owner is (\w+), expected \w+$",
         r"^pool-7\.n3\.cid\. NSEC3: missing \(no NSEC3 at \w+\)$"], False),
    "empty non-terminal without nsec3": (
        "plain", lambda zone, key: z.unlink(zone, z.hashed_owner(zone, f"b.c.{zone.origin}"), key),
        [r"^b\.c\.n3\.cid\. NSEC3: missing \(no NSEC3 at \w+\)$"], False),
    "name added without nsec3": (
        "plain", _new_name_without_nsec3, [r"^new\.n3\.cid\. NSEC3: missing \(no NSEC3 at \w+\)$"], False),
    "bitmap lacks a type": (
        "plain", _bitmap_without_svcb,
        [r"^pool-7\.n3\.cid\. NSEC3 \S+: bitmap \[A AAAA RRSIG CAPS\] does not match types present "
         r"\[A AAAA RRSIG SVCB CAPS\]$"], False),
    "nsec3 with another salt": (
        "plain", _other_salt,
        [r"^\S+ NSEC3: parameters 1 0 AB are not the NSEC3PARAM's \(1 0 -\)$",
         r"^\S+ NSEC3: next hashed owner is \w+, expected \w+$",
         r"^pool-7\.n3\.cid\. NSEC3: missing"], False),
    "nsec3 signature broken": (
        "plain", _bad_signature, [r"^\S+ NSEC3: algorithm 15: "], False),
    "nsec3 for glue": (
        "plain", lambda zone, key: z.splice(zone, z.hashed_owner(zone, f"ns.unsigned.{zone.origin}"),
                                            [T.A, T.RRSIG], key),
        [r"^\S+ NSEC3: matches ns\.unsigned\.n3\.cid\., which the zone is not authoritative for$"], False),
    "nsec3 for no name": (
        "plain", lambda zone, key: z.splice(zone, z.hashed_owner(zone, f"nowhere.{zone.origin}"),
                                            [T.A, T.RRSIG], key),
        [r"^\S+ NSEC3: matches no name of the zone$"], False),
    # RFC 5155 §7.1: without opt-out, an unsigned delegation needs its NSEC3 too; dnssec-verify
    # 9.18 lets it pass, but validators then see a delegation whose name is proven absent.
    "unsigned delegation without nsec3, no opt-out": (
        "plain", lambda zone, key: z.unlink(zone, z.hashed_owner(zone, f"unsigned.{zone.origin}"), key),
        [r"^unsigned\.n3\.cid\. NSEC3: missing, and \S+ covering unsigned\.n3\.cid\. has no opt-out flag$"],
        True),
    # The opt-out span over an unsigned delegation lost its flag: dnssec-verify only looks at
    # the flag of the apex's NSEC3.
    "opt-out flag cleared over an unsigned delegation": (
        "optout", lambda zone, key: _clear_opt_out(zone, key, "unsigned"),
        [r"^unsigned\.oo\.cid\. NSEC3: missing, and \S+ covering unsigned\.oo\.cid\. has no opt-out flag$"],
        True),
    "opt-out flag cleared everywhere": (
        "optout", lambda zone, key: [
            z.put_nsec3(zone, owner, z.nsec3_at(zone, owner).replace(flags=0), key)
            for owner, node in list(zone.nodes.items()) if node.get_rdataset(zone.rdclass, T.NSEC3)],
        [r"^ent\.oo\.cid\. NSEC3: missing, and \S+ covering ent\.oo\.cid\. has no opt-out flag$",
         r"^x\.ent\.oo\.cid\. NSEC3: missing, and \S+ covering ent\.oo\.cid\. has no opt-out flag$",
         r"^unsigned\.oo\.cid\. NSEC3: missing, and ",
         r"^far\.oo\.cid\. NSEC3: missing, and "], False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_broken_zone(zones, case, tmp_path):
    kind, brk, expected, bind_accepts = CASES[case]
    signed = zones[kind]
    zone = load_zone(signed.path)
    brk(zone, z.zone_key(signed))
    path = tmp_path / "broken.db"
    write_zone(zone, path, generic=True)
    problems = verify_zone(load_zone(path))
    for pattern in expected:
        assert any(re.search(pattern, p) for p in problems), (pattern, problems)
    assert all(any(re.search(pattern, p) for pattern in expected) for p in problems), problems
    accepted, output = dnssec_verify(path, signed.origin)
    assert accepted == bind_accepts, output


def test_cli_verify_reports_nsec3_problems(zones, tmp_path):
    signed = zones["optout"]
    ok = subprocess.run([sys.executable, "-m", "resolver", "zone", "verify", str(signed.path)],
                        capture_output=True, text=True, timeout=60)
    assert (ok.returncode, ok.stdout) == (0, "ok\n"), ok.stderr
    zone = load_zone(signed.path)
    _clear_opt_out(zone, z.zone_key(signed), "unsigned")
    path = tmp_path / "broken.db"
    write_zone(zone, path, generic=True)
    bad = subprocess.run([sys.executable, "-m", "resolver", "zone", "verify", str(path)],
                         capture_output=True, text=True, timeout=60)
    lines = bad.stdout.splitlines()
    assert bad.returncode == 1 and lines[-1] == "1 problem in oo.cid.", bad.stdout
    assert lines[0].startswith("unsigned.oo.cid. NSEC3: missing, and ")


def test_nsec3param_problems(zones):
    zone = load_zone(zones["plain"].path)
    rds = zone.get_rdataset(zone.origin, T.NSEC3PARAM)
    rds.clear()
    rds.add(dns.rdata.from_text("IN", "NSEC3PARAM", "2 0 0 -"), 0)
    rds.add(dns.rdata.from_text("IN", "NSEC3PARAM", "1 1 0 -"), 0)
    problems = verify_zone(zone)
    assert "n3.cid. NSEC3PARAM: hash algorithm 2 is unknown (only 1, SHA-1)" in problems
    assert "n3.cid. NSEC3PARAM: flags 1, must be 0 (RFC 5155 §4.1.2)" in problems
    assert "n3.cid. NSEC3PARAM: none usable, so no NSEC3 chain is in use" in problems
