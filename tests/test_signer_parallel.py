"""Signing across processes gives byte-identical output, and ``cid zone sign`` (which writes
straight from the signatures, render.py) produces zones BIND and ldns verify."""

from __future__ import annotations

import sys

import dns.name
import pytest
from support.peers import run

import resolver  # noqa: F401
from resolver.auth import parallel_sign
from resolver.auth.browse import add_browse_names
from resolver.auth.keys import generate_key, write_key_files
from resolver.auth.signwrite import signed_zone_text
from resolver.auth.signer import compute_signatures, sign_zone, verify_zone
from resolver.auth.zonefile import load_zone, zone_to_text

NOW = 1_800_000_000
ORIGIN = dns.name.from_text("example.com.")
HEAD = ("$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ NS ns1\n"
        "ns1 A 192.0.2.1\npool-0 CAPS gpu_count=8\nchild NS ns.child\nchild DS 1 15 2 " + "AB" * 32 + "\n"
        "ns.child A 192.0.2.53\nalias DNAME example.net.\nbelow.alias A 192.0.2.8\n*.wild AAAA 2001:db8::1\n")


def zone_file(tmp_path, names: int):
    path = tmp_path / "example.com.db"
    path.write_text(HEAD + "".join(f"pool-{i} A 10.0.{i >> 8}.{i & 255}\n" for i in range(names)))
    return path


def test_parallel_signing_is_byte_identical_to_one_process(tmp_path):
    path = zone_file(tmp_path, 200)
    keys = [generate_key(ORIGIN, 15, 257), generate_key(ORIGIN, 15, 256), generate_key(ORIGIN, 8, 256)]
    one, two = load_zone(path), load_zone(path)
    sign_zone(one, keys, now=NOW, workers=1)
    sign_zone(two, keys, now=NOW, workers=2)
    assert zone_to_text(one) == zone_to_text(two)
    assert verify_zone(two, now=NOW) == []


def test_sign_all_keeps_order_and_uses_each_signer():
    keys = [generate_key(ORIGIN, 15, 257), generate_key(ORIGIN, 15, 256)]
    from dns.dnssecalgs import get_algorithm_cls_from_dnskey
    signers = [get_algorithm_cls_from_dnskey(k.dnskey)(key=k.private_key) for k in keys]
    messages = [(i % 2, f"message {i}".encode()) for i in range(300)]
    parallel = parallel_sign.sign_all(signers, messages, workers=2)
    assert parallel == [signers[i].sign(data) for i, data in messages]
    assert parallel_sign.sign_all(signers, [], workers=2) == []


@pytest.mark.parametrize("generic", [True, False])
def test_signed_text_in_two_processes_equals_sign_zone(tmp_path, generic):
    path = zone_file(tmp_path, 300)
    keys = [generate_key(ORIGIN, 15, 257), generate_key(ORIGIN, 15, 256)]
    zone = load_zone(path)
    signed = signed_zone_text(zone, keys, now=NOW, generic=generic, workers=2)
    reference = load_zone(path)
    sign_zone(reference, keys, now=NOW, workers=1)
    assert signed.text == zone_to_text(reference, generic=generic)
    assert signed.rrsigs == signed.text.count(" IN RRSIG ") == signed.rrsets


def test_direct_write_equals_attached_signatures(tmp_path):
    path = zone_file(tmp_path, 50)
    keys = [generate_key(ORIGIN)]
    from resolver.auth.render import zone_text
    zone = load_zone(path)
    direct = zone_text(zone, generic=True, signatures=compute_signatures(zone, keys, now=NOW))
    other = load_zone(path)
    sign_zone(other, keys, now=NOW)
    assert direct == zone_to_text(other, generic=True)


def test_cli_signed_zone_passes_bind_and_ldns(tmp_path):
    jobs = "2"  # explicit, so that even this small zone is signed by two processes
    path = zone_file(tmp_path, 1000)
    key = generate_key(ORIGIN)
    write_key_files(key, tmp_path)
    out = tmp_path / f"signed-{jobs}.db"
    run([sys.executable, "-m", "resolver", "zone", "sign", str(path), "--key", str(tmp_path / f"{key.basename}.key"),
         "-o", str(out), "--jobs", jobs, "--inception", "20260101000000", "--expiration", "20360101000000"])
    run(["dnssec-verify", "-z", "-o", "example.com", str(out)])
    assert "Zone is verified and complete" in run(["ldns-verify-zone", str(out)]).stdout
    reference = load_zone(path, fast=False)
    assert add_browse_names(reference) > 0  # cid zone sign lists the identifiers (spec/discovery.md §2)
    sign_zone(reference, [key], inception=1767225600, expiration=2082758400, workers=1)
    assert out.read_text() == zone_to_text(reference, generic=True)


# --- sign_text: a fresh plain file signed without dnspython objects per record -----------------------

from resolver.auth import sign_text  # noqa: E402
from support.example_zone import ZONE as EXAMPLE  # noqa: E402


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("generic", [True, False])
@pytest.mark.parametrize("roles", ["csk", "ksk+zsk", "two algorithms"])
def test_sign_text_equals_sign_zone_and_zone_to_text(tmp_path, workers, generic, roles):
    keys = {"csk": [generate_key(ORIGIN, 15, 257)],
            "ksk+zsk": [generate_key(ORIGIN, 15, 257), generate_key(ORIGIN, 15, 256)],
            "two algorithms": [generate_key(ORIGIN, 15, 257), generate_key(ORIGIN, 8, 256)]}[roles]
    for text in (EXAMPLE, HEAD + "".join(f"pool-{i} A 10.0.{i >> 8}.{i & 255}\npool-{i} AAAA 2001:db8::{i:x}\n"
                                          for i in range(150))
                 + "MiXeD.Case 60 IN TXT \"a; b\" \"c\"\n*.w CNAME pool-1\nv6 AAAA ::1.2.3.4\n"):
        path = tmp_path / "z.db"
        path.write_text(text)
        data = sign_text.read(path.read_text())
        assert data is not None
        plan = sign_text.prepare(data, keys, now=NOW)
        signed = sign_text.signed_text(plan, generic=generic, workers=workers)
        reference = load_zone(path, fast=False)
        sign_zone(reference, keys, now=NOW, workers=1)
        assert signed.text == zone_to_text(reference, generic=generic)
        assert signed.rrsigs == signed.text.count(" IN RRSIG ")


def test_sign_text_leaves_re_signing_to_dnspython(tmp_path):
    path = zone_file(tmp_path, 20)
    zone = load_zone(path)
    sign_zone(zone, [generate_key(ORIGIN)], now=NOW)
    path.write_text(zone_to_text(zone, generic=True))
    assert sign_text.read(path.read_text()) is None  # old RRSIG/NSEC/DNSKEY: prepare_signing's job
    assert sign_text.read("$ORIGIN example.com.\n@ 300 IN SOA ( ns1 hm 1 2 3 4 5 )\n@ 300 NS ns1\n") is None
