"""Zone keys: generation, BIND key-file pairs, and refusal of corrupted or mismatched files."""

from __future__ import annotations

import base64
import re
import stat

import dns.dnssec
import dns.name
import pytest

import resolver  # noqa: F401
from resolver.auth.keys import (KeyFileError, ZoneKey, generate_key, load_zone_keys, read_key_files,
                                write_key_files)

ZONE = dns.name.from_text("example.com.")


@pytest.fixture(scope="module")
def rsa_key():
    return generate_key(ZONE, 8)  # RSA generation is the slow one; make it once


def fields(path):
    return dict(line.split(": ", 1) for line in path.read_text().splitlines() if ": " in line)


@pytest.mark.parametrize("algorithm, name", [(15, "ED25519"), (13, "ECDSAP256SHA256"), (8, "RSASHA256")])
def test_round_trip_every_algorithm(tmp_path, rsa_key, algorithm, name):
    key = rsa_key if algorithm == 8 else generate_key("example.com", algorithm)
    assert isinstance(key, ZoneKey) and key.zone == ZONE and key.flags == 257
    assert key.key_tag == dns.dnssec.key_id(key.dnskey)
    public, private = write_key_files(key, tmp_path)
    assert public.name == f"Kexample.com.+{algorithm:03d}+{key.key_tag:05d}.key"
    assert private.name == public.name[:-4] + ".private"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    f = fields(private)
    assert f["Private-key-format"] == "v1.3" and f["Algorithm"] == f"{algorithm} ({name})"
    if algorithm == 8:
        assert {"Modulus", "PublicExponent", "PrivateExponent", "Prime1", "Prime2", "Exponent1",
                "Exponent2", "Coefficient"} <= f.keys()
    else:
        assert len(base64.b64decode(f["PrivateKey"])) == 32
    assert f"example.com. IN DNSKEY 257 3 {algorithm} " in public.read_text()
    for path in (public, private, public.with_suffix("")):  # either half, or the base name
        again = read_key_files(path)
        assert again.dnskey == key.dnskey and again.key_tag == key.key_tag and again.flags == 257
        # the private half is really the same key: it signs what the DNSKEY verifies
        rrset = dns.rrset.from_text("www.example.com.", 60, "IN", "A", "192.0.2.1")
        sig = dns.dnssec.sign(rrset, again.private_key, ZONE, key.dnskey, lifetime=3600)
        dns.dnssec.validate_rrsig(rrset, sig, {ZONE: dns.rrset.from_rdata(ZONE, 60, key.dnskey)})


def test_zsk_flags_and_bad_arguments():
    assert generate_key(ZONE, flags=256).flags == 256
    assert not generate_key(ZONE, flags=256).is_ksk
    with pytest.raises(ValueError):
        generate_key(ZONE, algorithm=5)
    with pytest.raises(ValueError):
        generate_key(ZONE, flags=1)


def test_write_never_overwrites(tmp_path):
    key = generate_key(ZONE)
    write_key_files(key, tmp_path)
    secret = (tmp_path / f"{key.basename}.private").read_text()
    with pytest.raises(FileExistsError):
        write_key_files(key, tmp_path)
    assert (tmp_path / f"{key.basename}.private").read_text() == secret


def test_load_zone_keys_only_takes_that_zone(tmp_path, rsa_key):
    ksk, zsk = generate_key(ZONE), generate_key(ZONE, 13, 256)
    for key in (ksk, zsk, rsa_key, generate_key("sub.example.com"), generate_key("xexample.com")):
        write_key_files(key, tmp_path)
    (tmp_path / "Kexample.com.+015+00001.state").write_text("junk the loader must ignore\n")
    keys = load_zone_keys(tmp_path, "EXAMPLE.com")
    assert {k.dnskey for k in keys} == {ksk.dnskey, zsk.dnskey, rsa_key.dnskey}
    assert keys[-1].flags == 256  # KSKs first
    assert load_zone_keys(tmp_path, "nothing.example.") == []
    with pytest.raises(KeyFileError, match="cannot list"):
        load_zone_keys(tmp_path / "absent", ZONE)


@pytest.fixture
def pair(tmp_path):
    key = generate_key(ZONE)
    public, private = write_key_files(key, tmp_path)
    return key, public, private


def corrupt(private, field, value):
    text = private.read_text()
    private.write_text(re.sub(rf"^{field}: .*$", f"{field}: {value}", text, flags=re.M))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("PrivateKey", "!!!not base64!!!", "not valid base64"),
        ("PrivateKey", base64.b64encode(b"short").decode(), "must be 32 bytes"),
        ("Algorithm", "99 (FUTURE)", "unsupported algorithm 99"),
        ("Algorithm", "", "bad Algorithm"),
        ("Private-key-format", "v2.0", "not a BIND private key file"),
    ],
)
def test_corrupted_private_file(pair, field, value, message):
    key, public, private = pair
    corrupt(private, field, value)
    with pytest.raises(KeyFileError, match=message) as err:
        read_key_files(public)
    assert str(private) in str(err.value) or str(public) in str(err.value)


def test_private_key_of_another_key_is_refused(pair):
    key, public, private = pair
    other = generate_key(ZONE)
    raw = other.private_key.private_bytes_raw()
    corrupt(private, "PrivateKey", base64.b64encode(raw).decode())
    with pytest.raises(KeyFileError, match="does not match the DNSKEY"):
        read_key_files(private)


def test_ecdsa_scalar_out_of_range(tmp_path):
    key = generate_key(ZONE, 13)
    _, private = write_key_files(key, tmp_path)
    corrupt(private, "PrivateKey", base64.b64encode(b"\xff" * 32).decode())  # above the P-256 order
    with pytest.raises(KeyFileError, match="invalid private key"):
        read_key_files(private)


def test_inconsistent_rsa_numbers(tmp_path, rsa_key):
    _, private = write_key_files(rsa_key, tmp_path)
    corrupt(private, "Prime1", base64.b64encode(b"\x0b").decode())
    with pytest.raises(KeyFileError, match="invalid private key"):
        read_key_files(private)
    corrupt(private, "Modulus", base64.b64encode(b"\x01\x01").decode())
    with pytest.raises(KeyFileError, match="RSA modulus of 9 bits"):
        read_key_files(private)


@pytest.mark.parametrize(
    "public_text, message",
    [
        ("", "exactly one DNSKEY"),
        ("example.com. IN A 192.0.2.1\n", "exactly one DNSKEY"),
        ("example.com. IN DNSKEY 257 3 15 @@@\n", "example.com"),
    ],
)
def test_bad_public_file(pair, public_text, message):
    key, public, private = pair
    public.write_text(public_text)
    with pytest.raises(KeyFileError, match=message):
        read_key_files(private)


def test_public_file_with_wrong_algorithm_or_no_zone_flag(pair):
    key, public, private = pair
    text = public.read_text()
    public.write_text(text.replace("DNSKEY 257 3 15", "DNSKEY 257 3 13"))
    with pytest.raises(KeyFileError, match="algorithm 13 but private key is 15"):
        read_key_files(private)
    public.write_text(text.replace("DNSKEY 257 3 15", "DNSKEY 1 3 15"))
    with pytest.raises(KeyFileError, match="lacks the ZONE flag"):
        read_key_files(private)


def test_missing_half_and_hostile_files(pair, tmp_path):
    key, public, private = pair
    public.unlink()
    with pytest.raises(KeyFileError, match=r"\.key: cannot read"):
        read_key_files(private)
    private.write_bytes(b"\x00\xff" * 10)
    with pytest.raises(KeyFileError, match="non-ASCII"):
        read_key_files(private)
    private.write_text("Private-key-format: v1.3\n" + "x" * 70000)
    with pytest.raises(KeyFileError, match="too large"):
        read_key_files(private)
    private.write_text("no colon here\n")
    with pytest.raises(KeyFileError, match=":1: expected 'Field: value'"):
        read_key_files(private)
