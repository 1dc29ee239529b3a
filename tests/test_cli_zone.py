"""`cid zone keygen|sign|ds|verify` driven as a user would, through `python -m resolver`."""

from __future__ import annotations

import re
import subprocess
import sys

import dns.rdatatype
import pytest

import resolver  # noqa: F401
from resolver.auth.zonefile import load_zone

ZONE = """\
$ORIGIN example.com.
$TTL 3600
@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
ns1 A 192.0.2.1
pool-7 CAPS gpu_count=8
pool-7 30 LOAD gpu_free=3
child NS ns.child
ns.child A 192.0.2.53
"""


def cid(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "resolver", "zone", *map(str, args)],
                          capture_output=True, text=True, timeout=60, cwd=cwd)


def ok(*args, cwd=None):
    proc = cid(*args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def usage_error(proc, *fragments):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr
    return proc.stderr


@pytest.fixture
def zonefile(tmp_path):
    path = tmp_path / "example.com.db"
    path.write_text(ZONE)
    return path


def test_keygen_sign_ds_verify(tmp_path, zonefile):
    ksk = ok("keygen", "example.com", "--dir", tmp_path).strip()
    zsk = ok("keygen", "example.com", "--zsk", "--algorithm", "ed25519", "--dir", tmp_path).strip()
    assert re.fullmatch(r"Kexample\.com\.\+015\+\d{5}", ksk) and ksk != zsk
    assert (tmp_path / f"{ksk}.key").exists() and (tmp_path / f"{zsk}.private").exists()

    summary = ok("sign", zonefile, "--ds-out", tmp_path / "ds.txt", cwd=tmp_path)
    signed = tmp_path / "example.com.db.signed"
    assert summary.startswith("example.com.: signed ") and str(signed) in summary
    assert len(summary.strip().splitlines()) == 1
    text = signed.read_text()
    assert "TYPE65380 \\# " in text and " CAPS " not in text  # peers can read it
    zone = load_zone(signed)
    assert len(zone.get_rdataset("example.com.", "DNSKEY")) == 2

    assert ok("verify", signed) == "ok\n"
    ds_from_zone = ok("ds", signed)
    ds_from_key = ok("ds", tmp_path / f"{ksk}.key")
    assert ds_from_zone == ds_from_key == (tmp_path / "ds.txt").read_text()
    assert re.fullmatch(rf"example\.com\. 3600 IN DS {int(ksk[-5:])} 15 2 [0-9a-f]{{64}}\n", ds_from_zone)
    assert " 15 4 " in ok("ds", "--digest", "sha384", tmp_path / f"{ksk}.private")


def test_sign_with_explicit_keys_window_and_output(tmp_path, zonefile):
    keydir = tmp_path / "keys"
    keydir.mkdir()
    base = ok("keygen", "example.com", "-a", "ecdsap256sha256", "--dir", keydir).strip()
    out = tmp_path / "out.db"
    ok("sign", zonefile, "--key", keydir / f"{base}.key", "-o", out,
       "--inception", "20260101000000", "--expiration", "20300101000000", "--friendly")
    zone = load_zone(out)
    sig = zone.get_rdataset("ns1.example.com.", "RRSIG", "A")[0]
    assert (sig.inception, sig.expiration, sig.algorithm) == (1767225600, 1893456000, 13)
    assert " CAPS gpu_count=8" in out.read_text()
    assert ok("verify", out, "--now", "20290101000000") == "ok\n"
    # re-signing the signed output with --keydir gives a zone that still verifies
    ok("sign", out, "--keydir", keydir, "-o", tmp_path / "again.db")
    assert ok("verify", tmp_path / "again.db") == "ok\n"


def test_verify_reports_problems_with_exit_1(tmp_path, zonefile):
    ok("keygen", "example.com", "--dir", tmp_path)
    ok("sign", zonefile, "--keydir", tmp_path, "-o", tmp_path / "s.db")
    text = (tmp_path / "s.db").read_text().replace("192.0.2.1\n", "192.0.2.2\n", 1)
    (tmp_path / "bad.db").write_text(text)
    proc = cid("verify", tmp_path / "bad.db")
    assert proc.returncode == 1
    assert "ns1.example.com. A: algorithm 15: no RRSIGs validated" in proc.stdout
    assert proc.stdout.strip().endswith("1 problem in example.com.")
    expired = cid("verify", tmp_path / "s.db", "--now", "now+30d")
    assert expired.returncode == 1 and "signature expired at" in expired.stdout


def test_errors_are_one_line_exit_2(tmp_path, zonefile):
    usage_error(cid("sign", tmp_path / "absent.db"), "absent.db: cannot read")
    bad = tmp_path / "bad.db"
    bad.write_text(ZONE + "www IN FOO 1\n")
    usage_error(cid("sign", bad), f"{bad}:10: unknown type FOO")
    usage_error(cid("sign", zonefile, "--keydir", tmp_path), "no keys for example.com.", "cid zone keygen")
    base = ok("keygen", "example.com", "--dir", tmp_path).strip()
    private = tmp_path / f"{base}.private"
    private.write_text(private.read_text().replace("PrivateKey: ", "PrivateKey: !!"))
    usage_error(cid("sign", zonefile, "--key", private), "not valid base64")
    usage_error(cid("ds", private), "not valid base64")
    usage_error(cid("sign", zonefile, "--inception", "yesterday"), "bad time 'yesterday'")
    usage_error(cid("sign", zonefile, "--inception", "20269999000000"), "not a valid YYYYMMDDHHMMSS")
    other = ok("keygen", "example.org", "--dir", tmp_path).strip()
    usage_error(cid("sign", zonefile, "--key", tmp_path / f"{other}.key"), "is for example.org.")
    usage_error(cid("ds", zonefile), "no DNSKEY records")
    usage_error(cid("keygen", "bad..name"), "bad zone name")
    usage_error(cid("keygen", "example.com", "--dir", tmp_path / "no" / "such"), "cannot write key files")
    usage_error(cid("keygen", "example.com", "--algorithm", "rsasha1"), "invalid choice")
    usage_error(cid(), "ACTION")


def test_rsa_key_end_to_end(tmp_path, zonefile):
    base = ok("keygen", "example.com", "-a", "rsasha256", "--dir", tmp_path).strip()
    assert "+008+" in base
    ok("sign", zonefile, "--keydir", tmp_path, "-o", tmp_path / "s.db")
    zone = load_zone(tmp_path / "s.db")
    assert {s.algorithm for s in zone.get_rdataset("example.com.", "RRSIG", "SOA")} == {8}
    assert zone.get_rdataset("child.example.com.", dns.rdatatype.RRSIG, dns.rdatatype.NS) is None
    assert ok("verify", tmp_path / "s.db") == "ok\n"


def _ptrs(path) -> dict[str, set[str]]:
    zone = load_zone(str(path), "example.com.")
    found: dict[str, set[str]] = {}
    for name, node in zone.nodes.items():
        rds = node.get_rdataset(zone.rdclass, dns.rdatatype.PTR)
        if rds is not None:
            found[name.derelativize(zone.origin).to_text()] = {rd.target.derelativize(zone.origin).to_text() for rd in rds}
    return found


def test_sign_adds_the_browse_names_the_zone_calls_for(tmp_path, zonefile):
    """spec/discovery.md §2: the identifier (CAPS) is listed under _compute, the delegation under
    _children; PTRs already in the file stay and are not doubled; --no-browse signs the file as is.
    dnssec-verify -z (one CSK) accepts the result: the PTRs are signed and in the NSEC chain."""
    ok("keygen", "example.com", "--dir", tmp_path)
    out = ok("sign", zonefile, "-K", tmp_path)
    assert "(2 browse PTRs added)" in out, out
    signed = tmp_path / "example.com.db.signed"
    assert _ptrs(signed) == {"_compute.example.com.": {"pool-7.example.com."},
                             "_children._compute.example.com.": {"child.example.com."}}
    ok("verify", signed)
    verify = subprocess.run(["dnssec-verify", "-z", "-o", "example.com", str(signed)], capture_output=True, text=True,
                            timeout=60)
    assert verify.returncode == 0, verify.stderr
    # Signing the file again with its PTRs written in: nothing added, nothing doubled.
    listed = tmp_path / "listed.db"
    listed.write_text(ZONE + "_compute PTR pool-7\n_compute PTR elsewhere.example.net.\n")
    out = ok("sign", listed, "-K", tmp_path)
    assert "(1 browse PTR added)" in out, out  # only _children: _compute already lists pool-7
    assert _ptrs(tmp_path / "listed.db.signed")["_compute.example.com."] == {"pool-7.example.com.",
                                                                             "elsewhere.example.net."}
    out = ok("sign", zonefile, "-K", tmp_path, "--no-browse", "-o", tmp_path / "bare.signed")
    assert "PTRs added" not in out and _ptrs(tmp_path / "bare.signed") == {}
