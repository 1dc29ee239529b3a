"""The fast zone verifier (verify_read + verify_parallel) against the dnspython one it replaces.

``signer.verify_zone_reference`` (dns.dnssec.validate per RRset over dnspython's zone) is the
oracle: on real zones (signed by us with several algorithms, by BIND with NSEC and NSEC3, in
each file form) and on many randomly broken copies of them, the fast verifier must give the
same problem lines in the same order, read from the file (``verify_parallel.read_file``) or
from a dnspython zone (``verify_zone``), in one process or two. The lean reader must build the
same zone dnspython's reader builds, or step aside. Ed25519 through libsodium must give
OpenSSL's verdict on every signature, hostile ones included.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import dns.name
import dns.rdatatype
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

import resolver  # noqa: F401
from resolver.auth import sign_crypto, verify_parallel, verify_read
from resolver.auth.keys import generate_key
from resolver.auth.signer import sign_zone, verify_zone, verify_zone_reference
from resolver.auth.zonefile import ZoneFileError, load_zone, zone_to_text
from support import nsec3_zones
from support.example_zone import ORIGIN, ZONE
from support.peers import run

NOW = int(time.time())  # peers (dnssec-signzone, dnssec-verify) check signatures against the clock
INCEPTION, EXPIRATION = NOW - 86400, NOW + 30 * 86400


# --- the zones ------------------------------------------------------------------------------------


def _ours(directory: Path, generic: bool, keys) -> Path:
    path = directory / f"ours-{'generic' if generic else 'friendly'}.db"
    path.write_text(ZONE)
    zone = load_zone(path)
    sign_zone(zone, keys, inception=INCEPTION, expiration=EXPIRATION, workers=1)
    path.write_text(zone_to_text(zone, generic=generic))
    return path


def _bind(directory: Path, origin: str, nsec3: list[str]) -> Path:
    """A zone signed by dnssec-signzone -O full (one record per line), NSEC or NSEC3."""
    work = directory / f"bind-{origin.rstrip('.')}"
    work.mkdir()
    run(["dnssec-keygen", "-q", "-K", str(work), "-a", "ED25519", "-f", "KSK", origin])
    unsigned = work / "zone"
    unsigned.write_text(nsec3_zones.zone_text(origin))
    signed = work / "signed"
    run(["dnssec-signzone", "-S", "-K", str(work), "-d", str(work), "-z", "-O", "full", *nsec3,
         "-s", str(INCEPTION), "-e", str(EXPIRATION), "-o", origin, "-f", str(signed), str(unsigned)])
    return signed


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("verify-fast")
    keys = [generate_key(ORIGIN, 15, 257), generate_key(ORIGIN, 15, 256), generate_key(ORIGIN, 13, 257),
            generate_key(ORIGIN, 8, 257)]
    return {
        "ours-generic": _ours(directory, True, keys),
        "ours-friendly": _ours(directory, False, keys[:2]),
        "bind-nsec": _bind(directory, "bn.cid.", []),
        "bind-nsec3": _bind(directory, "b3.cid.", ["-3", "AABB", "-H", "2"]),
        "bind-nsec3-optout": _bind(directory, "bo.cid.", ["-3", "-", "-A"]),
    }


# --- what the verifiers say -------------------------------------------------------------------------


def reference(path: Path, now: float = NOW):
    try:
        zone = load_zone(path, fast=False)
    except ZoneFileError as exc:
        return ("error", str(exc))
    return verify_zone_reference(zone, now=now)


def fast(path: Path, now: float = NOW, workers: int = 1):
    try:
        data = verify_parallel.read_file(str(path))
    except ZoneFileError as exc:
        return ("error", str(exc))
    return verify_parallel.verify(data, now=now, workers=workers)


def dump(data: verify_read.ZoneData) -> list:
    """Everything the checks read from a ZoneData, comparably."""
    out = []
    for key, node in data.nodes.items():
        sets = []
        for slot, rs in node.sets.items():
            items = []
            for wire, payload in rs.items.items():
                if isinstance(payload, tuple):
                    head, signature = payload
                    payload = ("sig", head.wire, head.signer_absolute, head.covered, head.algorithm, head.labels,
                               head.original_ttl, head.expiration, head.inception, head.key_tag, signature)
                elif isinstance(payload, verify_read.NsecData):
                    payload = ("nsec", payload.next_text, payload.next_folded, sorted(payload.types))
                elif payload is not None:
                    payload = ("rdata", payload.to_text())
                items.append((wire, payload))
            sets.append((slot, rs.ttl, items))
        out.append((key, node.text, node.labels, sets))
    return [str(data.origin), out]


def test_real_zones_read_fast_and_verify_like_the_reference(bases):
    for kind, path in bases.items():
        assert reference(path) == [], kind
        data = verify_read.read_text(path.read_text())
        assert data is not None, f"{kind}: the lean reader stepped aside"
        assert dump(data) == dump(verify_read.from_zone(load_zone(path, fast=False))), kind
        assert fast(path) == [] and fast(path, workers=2) == [], kind
        assert verify_zone(load_zone(path), now=NOW) == [], kind
        if kind != "ours-friendly":  # peers do not know CAPS/LOAD by name
            peer = run(["dnssec-verify", "-z", "-o", str(data.origin), str(path)], check=False)
            assert peer.returncode == 0, peer.stdout + peer.stderr


def test_expiry_and_time_checks_match(bases):
    for path in bases.values():
        for now in (INCEPTION - 1, EXPIRATION + 1, EXPIRATION):
            assert fast(path, now=now) == reference(path, now=now)


def test_bind_default_format_falls_back_to_dnspython(tmp_path):
    signed = nsec3_zones.bind_sign(tmp_path, "fb.cid.")  # multi-line RRSIGs in parentheses
    assert verify_read.read_text(signed.path.read_text()) is None
    assert fast(signed.path) == reference(signed.path, now=None) == []


# --- fuzzing: broken copies of the real zones --------------------------------------------------------

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _records(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if line and not line.startswith((";", "$"))]


def _mutate(lines: list[str], rng: random.Random) -> list[str]:
    lines = list(lines)
    records = _records(lines)
    i = rng.choice(records)
    fields = lines[i].split()
    kind = rng.randrange(18)
    rrsigs = [j for j in records if lines[j].split()[3:4] == ["RRSIG"]]
    if kind == 0:
        del lines[i]
    elif kind == 1:
        lines.insert(rng.randrange(len(lines)), lines[i])
    elif kind == 2 and rrsigs:  # one signature character changed
        j = rng.choice(rrsigs)
        line = lines[j]
        k = rng.randrange(len(line) - 40, len(line) - 4)
        if line[k] in _B64:
            lines[j] = line[:k] + rng.choice(_B64.replace(line[k], "")) + line[k + 1:]
    elif kind == 3:  # TTL
        if fields[1].isdigit():
            fields[1] = str(rng.choice([0, 60, 300, 3600, 86400, int(fields[1]) + 1]))
            lines[i] = " ".join(fields)
    elif kind == 4:  # owner case
        fields[0] = "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in fields[0])
        lines[i] = " ".join(fields)
    elif kind == 5 and rrsigs:  # an RRSIG field: labels, times, key tag, algorithm, original TTL
        j = rng.choice(rrsigs)
        f = lines[j].split()
        at = rng.choice([6, 7, 8, 9, 10, 5, 11])
        if len(f) <= at:  # an RRSIG continued on the next line (BIND's "( ... )" form): leave it
            return lines
        f[at] = {6: lambda v: str(int(v) + rng.choice([-1, 1, 2])),
                 7: lambda v: str(int(v) + 1),
                 8: lambda v: str(rng.choice([EXPIRATION, INCEPTION, NOW - 10])),
                 9: lambda v: str(rng.choice([INCEPTION, NOW + 10, EXPIRATION + 5])),
                 10: lambda v: str((int(v) + 1) % 65536),
                 5: lambda v: rng.choice(["13", "8", "15", "16"]),
                 11: lambda v: rng.choice([v.upper(), "example.net.", "com."])}[at](f[at])
        lines[j] = " ".join(f)
    elif kind == 6:  # NSEC next name or bitmap
        nsecs = [j for j in records if lines[j].split()[3:4] == ["NSEC"]]
        if nsecs:
            j = rng.choice(nsecs)
            f = lines[j].split()
            if rng.random() < 0.5:
                f[4] = rng.choice([lines[k].split()[0] for k in records])
            elif len(f) > 6:
                del f[rng.randrange(5, len(f))]
            else:
                f.append(rng.choice(["TXT", "AAAA", "TYPE65380", "DS"]))
            lines[j] = " ".join(f)
    elif kind == 7:  # an extra record somewhere
        origin = next(line.split()[1] for line in lines if line.startswith("$ORIGIN")) \
            if any(line.startswith("$ORIGIN") for line in lines) else lines[records[0]].split()[0]
        lines.insert(rng.randrange(len(lines)), rng.choice([
            f"extra.{origin} 300 IN A 192.0.2.99",
            f"glue.child.{origin} 300 IN A 192.0.2.98",
            f"ns.child.{origin} 300 IN NSEC {origin} A RRSIG NSEC",
            f"*.wild2.{origin} 300 IN TXT \"star; not a comment\"",
            f"{origin} 300 IN DNSKEY 256 3 15 " + "A" * 43 + "=",
            f"deep.below.alias.{origin} 60 IN AAAA 2001:db8::1",
            f"txt.{origin} 300 IN TXT \"a (b)\"",
            f"cname.{origin} 300 IN CNAME www.{origin}",
        ]))
    elif kind == 8:  # A address
        if fields[3:4] == ["A"]:
            fields[4] = rng.choice(["192.0.2.200", "010.0.0.1", "1.2.3"])
            lines[i] = " ".join(fields)
    elif kind == 9:  # implicit owner (leading blank)
        if i > 0:
            lines[i] = "\t" + " ".join(fields[1:])
    elif kind == 10:  # DNSKEY flags
        keys = [j for j in records if lines[j].split()[3:4] == ["DNSKEY"]]
        if keys:
            j = rng.choice(keys)
            f = lines[j].split()
            f[4] = rng.choice(["256", "385", "1", "257"])
            f[5] = rng.choice([f[5], f[5], "2"])
            lines[j] = " ".join(f)
    elif kind == 11 and len(rrsigs) > 1:  # two signatures swapped
        a, b = rng.sample(rrsigs, 2)
        fa, fb = lines[a].split(), lines[b].split()
        fa[12:], fb[12:] = fb[12:], fa[12:]
        lines[a], lines[b] = " ".join(fa), " ".join(fb)
    elif kind == 12:  # class or TTL layout
        if fields[2] == "IN":
            lines[i] = " ".join([fields[0], fields[2], fields[1], *fields[3:]])
    elif kind == 13:  # a comment
        lines[i] += rng.choice([" ; comment", ";", " ; (paren)"])
    elif kind == 14:  # $TTL and a record without TTL
        lines.insert(0, "$TTL 120")
        if fields[1].isdigit():
            lines[i + 1] = " ".join([fields[0], *fields[2:]])
    elif kind == 15:  # a type in generic form
        parts = fields[4].split(".") if fields[3:4] == ["A"] else []
        if len(parts) == 4 and all(x.isdigit() and int(x) < 256 for x in parts):  # not a mangled address
            octets = bytes(int(x) for x in parts)
            lines[i] = " ".join([*fields[:3], "TYPE1", "\\#", "4", octets.hex()])
    elif kind == 16:  # an RRSIG in mnemonic algorithm form
        if rrsigs:
            j = rng.choice(rrsigs)
            f = lines[j].split()
            f[5] = {"15": "ED25519", "13": "ECDSAP256SHA256", "8": "RSASHA256"}.get(f[5], f[5])
            lines[j] = " ".join(f)
    else:  # a line cut short
        lines[i] = " ".join(fields[:rng.randrange(2, len(fields))])
    return lines


KINDS = ["ours-generic", "ours-friendly", "bind-nsec", "bind-nsec3", "bind-nsec3-optout"]


@pytest.mark.parametrize("kind", KINDS)
def test_broken_copies_give_the_reference_problem_lines(bases, kind, tmp_path):
    _fuzz(bases, kind, tmp_path, trials=30, seed=f"verify-fast-{kind}")  # 600 under -m slow


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_broken_copies_long_run(bases, kind, tmp_path):
    _fuzz(bases, kind, tmp_path, trials=600, seed=f"verify-fast-long-{kind}-{os.getpid()}")


def _fuzz(bases, kind: str, tmp_path: Path, trials: int, seed: str) -> None:
    rng = random.Random(seed)
    lines = bases[kind].read_text().splitlines()
    path = tmp_path / "broken.db"
    differed = read_fast = 0
    for trial in range(trials):
        broken = lines
        for _ in range(rng.choice([1, 1, 2, 3])):
            broken = _mutate(broken, rng)
        path.write_text("\n".join(broken) + "\n")
        expected = reference(path)
        got = fast(path)
        assert got == expected, f"trial {trial}:\n" + "\n".join(
            line for line in broken if line not in set(lines))
        if trial % 8 == 0:
            assert fast(path, workers=2) == expected
        if not isinstance(expected, tuple):
            assert verify_zone(load_zone(path), now=NOW) == expected
            data = verify_read.read_text(path.read_text())
            if data is not None:
                read_fast += 1
                assert dump(data) == dump(verify_read.from_zone(load_zone(path, fast=False)))
        differed += expected != []
    assert differed > trials // 3  # the mutations did break the zone, often
    assert read_fast > trials // 3  # and the lean reader took most of them


# --- Ed25519: libsodium's verdict is OpenSSL's -------------------------------------------------------

_L = 2 ** 252 + 27742317777372353535851937790883648493  # the group order (RFC 8032)


def _openssl(public: bytes, signature: bytes, data: bytes) -> bool:
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
        return True
    except (InvalidSignature, ValueError):
        return False


class _Fallback:
    def __init__(self, public: bytes):
        self.key = ed25519.Ed25519PublicKey.from_public_bytes(public)

    def verify(self, signature: bytes, data: bytes) -> None:
        self.key.verify(signature, data)


def test_ed25519_verifier_agrees_with_openssl_on_hostile_input():
    rng = random.Random(8)
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    small_order = [bytes(32), (1).to_bytes(32, "little"), bytes.fromhex(
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  # -1: non-canonical y
        bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")]  # order 8
    cases = []
    for n in range(300):
        data = os.urandom(rng.randrange(0, 300))
        signature = private.sign(data)
        cases.append((public, signature, data))
        flipped = bytearray(signature)
        flipped[rng.randrange(64)] ^= 1 << rng.randrange(8)
        cases.append((public, bytes(flipped), data))
        if data:
            cases.append((public, signature, data[:-1]))
        s = int.from_bytes(signature[32:], "little")
        cases.append((public, signature[:32] + (s + _L).to_bytes(32, "little"), data))  # S not reduced
        cases.append((public, signature[:63], data))
        cases.append((public, signature + b"\0", data))
        bad_key = bytearray(public)
        bad_key[rng.randrange(32)] ^= 1 << rng.randrange(8)
        cases.append((bytes(bad_key), signature, data))
    for key in small_order:
        for signature in (bytes(64), key + bytes(32), (1).to_bytes(32, "little") + bytes(32)):
            cases.append((key, signature, b"message"))
    checked = 0
    for key, signature, data in cases:
        try:
            fallback = _Fallback(key)
        except ValueError:
            continue  # dnspython refuses the key before any signature is checked
        verdict = sign_crypto.ed25519_verifier(key, fallback)(signature, data)
        assert verdict == _openssl(key, signature, data), (key.hex(), signature.hex(), data.hex())
        checked += 1
    assert checked > 1500


def test_ed25519_signer_makes_openssls_bytes():
    # PyNaCl is a dependency; without it this test would only compare OpenSSL with itself.
    assert sign_crypto.HAVE_SODIUM, "PyNaCl is not installed: python3 -m pip install -e '.[test]'"
    for seed in range(20):
        private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
        signer = sign_crypto.Ed25519Signer(private)
        for size in (0, 1, 64, 200, 1000):
            data = bytes(range(size % 256)) * (size // 256 + 1)
            assert signer.sign(data[:size]) == private.sign(data[:size])


# --- the command line -----------------------------------------------------------------------------


def _cid(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "resolver", "zone", *args], capture_output=True, text=True,
                          timeout=120, **kw)


def test_cli_jobs_one_and_two_print_the_same_problem_lines(bases, tmp_path):
    rng = random.Random("cli-jobs")
    lines = bases["ours-generic"].read_text().splitlines()
    for trial in range(6):
        broken = lines
        for _ in range(3):
            broken = _mutate(broken, rng)
        path = tmp_path / f"broken-{trial}.db"
        path.write_text("\n".join(broken) + "\n")
        one = _cid("verify", str(path), "--now", str(NOW), "--jobs", "1")
        two = _cid("verify", str(path), "--now", str(NOW), "--jobs", "2")
        assert (one.returncode, one.stdout, one.stderr) == (two.returncode, two.stdout, two.stderr)
        expected = reference(path)
        if isinstance(expected, tuple):
            assert one.returncode != 0 and expected[1] in one.stderr
        elif expected:
            assert one.returncode == 1 and one.stdout.splitlines()[:len(expected)] == expected[:100]
        else:
            assert one.stdout == "ok\n"
    assert _cid("verify", str(bases["bind-nsec"]), "--jobs", "0").returncode == 2


def _pty_run(args: list[str]) -> tuple[int, str]:
    """Run with stdin, stdout and stderr on a pseudo-terminal; (exit status, everything shown)."""
    import pty
    import select
    import fcntl
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # as a terminal window
    proc = subprocess.Popen([sys.executable, "-m", "resolver", "zone", *args], stdin=slave, stdout=slave,
                            stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            proc.kill()
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


_BAR = re.compile(r"(read|verify|sign|load)\S*:? .*\d+(it| names| lines)")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_progress_bar_on_a_terminal_only(bases, jobs, tmp_path):
    path = bases["bind-nsec"]
    status, shown = _pty_run(["verify", str(path), "--now", str(NOW), "--jobs", jobs, "--progress", "auto"])
    assert status == 0 and "ok" in shown
    assert _BAR.search(shown), shown  # tqdm drew the bar
    piped = _cid("verify", str(path), "--now", str(NOW), "--jobs", jobs)
    assert piped.returncode == 0 and piped.stdout == "ok\n" and piped.stderr == ""
    # Signing too: a bar on the terminal, nothing but the summary line through a pipe.
    key = generate_key(ORIGIN)
    from resolver.auth.keys import write_key_files
    write_key_files(key, tmp_path)
    unsigned = tmp_path / "example.com.db"
    unsigned.write_text(ZONE)
    keyfile = str(tmp_path / f"{key.basename}.key")
    status, shown = _pty_run(["sign", str(unsigned), "--key", keyfile, "-o", str(tmp_path / "a.signed"), "--jobs", jobs])
    assert status == 0 and _BAR.search(shown), shown
    piped = _cid("sign", str(unsigned), "--key", keyfile, "-o", str(tmp_path / "b.signed"), "--jobs", jobs)
    assert piped.returncode == 0 and piped.stderr == "" and len(piped.stdout.splitlines()) == 1
