"""CAPS and LOAD rdata: master files, messages, DNSSEC, peers, and hostile wire input."""

from __future__ import annotations

import random
import time

import dns.dnssec
import dns.exception
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

import resolver  # noqa: F401
from resolver.records import CAPS, LOAD, capsmap
from support import peers

ORIGIN = dns.name.from_text("bj.cmcc.cid.")
POOL = dns.name.from_text("pool-7.bj.cmcc.cid.")
CAPS_TEXT = "accel_count=8 accel_memory_bytes=85899345920 accel_slug=nvidia-h100-sxm5-80gb accel_vendor=nvidia region=bj"
LOAD_TEXT = "accel_free=3 accel_util_ratio=0.62 source=measured ts=1764070000"

ZONE = f"""$ORIGIN bj.cmcc.cid.
$TTL 3600
@       SOA ns1 hostmaster 1 3600 900 604800 300
@       NS  ns1
ns1     A   127.0.0.2
pool-7  SVCB 1 . alpn=h2 port=8443 ipv4hint=127.0.0.10
pool-7  A   127.0.0.10
pool-7  CAPS {CAPS_TEXT}
pool-7  10 LOAD {LOAD_TEXT}
"""


def _zone(text: str) -> dns.zone.Zone:
    return dns.zone.from_text(text, origin=ORIGIN, relativize=False)


def test_master_file_friendly_and_generic_forms_agree():
    zone = _zone(ZONE)
    caps = zone.find_rdataset(POOL, "CAPS")
    load = zone.find_rdataset(POOL, "LOAD")
    assert load.ttl == 10 and caps.ttl == 3600
    caps_wire = caps[0].to_wire()
    load_wire = load[0].to_wire()
    generic = ZONE.replace(f"CAPS {CAPS_TEXT}", f"TYPE65380 \\# {len(caps_wire)} {caps_wire.hex()}")
    generic = generic.replace(f"LOAD {LOAD_TEXT}", f"TYPE65381 \\# {len(load_wire)} {load_wire.hex()}")
    other = _zone(generic)
    assert other.find_rdataset(POOL, CAPS) == caps
    assert other.find_rdataset(POOL, LOAD) == load
    assert caps[0].mapping["accel_slug"] == "nvidia-h100-sxm5-80gb"
    assert load[0].mapping["accel_util_ratio"] == 0.62


def test_message_round_trip_and_mnemonics():
    zone = _zone(ZONE)
    query = dns.message.make_query(POOL, "CAPS", want_dnssec=True)
    response = dns.message.make_response(query)
    rrset = zone.find_rrset(POOL, "CAPS")
    response.answer.append(rrset)
    back = dns.message.from_wire(response.to_wire())
    assert back.answer[0] == rrset
    assert "IN CAPS accel_count=8" in back.to_text()
    assert dns.rdatatype.to_text(LOAD) == "LOAD"


def _response_with_caps_bytes(payload: bytes) -> bytes:
    """A response whose answer carries raw CAPS RDATA, built with a valid rdata then patched."""
    query = dns.message.make_query(POOL, "CAPS")
    response = dns.message.make_response(query)
    placeholder = bytes([0x81, 0xA1, 0x70]) + b"\xa0"  # {"p": ""}
    response.answer.append(dns.rrset.from_rdata(POOL, 60, dns.rdata.from_wire(
        dns.rdataclass.IN, CAPS, placeholder, 0, len(placeholder))))
    wire = response.to_wire()
    head = wire[: wire.rindex(placeholder) - 2]
    return head + len(payload).to_bytes(2, "big") + payload


def test_hostile_rdata_in_a_message_is_a_format_error():
    good = capsmap.encode({"a": 1})
    assert dns.message.from_wire(_response_with_caps_bytes(good)).answer[0][0].mapping == {"a": 1}
    for bad in (b"\x81\xa1a\xcc\x05", b"\x82\xa1b\x01\xa1a\x02", b"\x81\xa1a\x01\x00", b"", b"\x91\x01"):
        with pytest.raises(dns.exception.FormError):
            dns.message.from_wire(_response_with_caps_bytes(bad))


def _mutations(rng: random.Random, seeds: list[bytes]):
    for _ in range(3000):
        choice = rng.random()
        if choice < 0.3:
            yield bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
            continue
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            if op < 0.4 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            elif op < 0.6:
                data.insert(rng.randint(0, len(data)), rng.randrange(256))
            elif op < 0.8 and data:
                del data[rng.randrange(len(data))]
            else:
                data = data[: rng.randint(0, len(data))]
        yield bytes(data)


def test_fuzz_wire_parser_only_raises_form_error_or_round_trips():
    rng = random.Random(65380)
    seeds = [
        capsmap.encode({"a": 1}),
        capsmap.encode({"accel_count": 8, "region": "bj", "x": [1, 2.5, None, True, {"y": "z"}]}),
        capsmap.encode({"k": -129, "s": "ü" * 40, "t": list(range(20))}),
        msgpack.packb({"a": b"bin", "b": 1.5}, use_bin_type=True),
        msgpack.packb({"a": 0.5}, use_single_float=True),
    ]
    accepted = rejected = 0
    for blob in _mutations(rng, seeds):
        for rdtype in (CAPS, LOAD):
            try:
                rd = dns.rdata.from_wire(dns.rdataclass.IN, rdtype, blob, 0, len(blob))
            except dns.exception.FormError:
                rejected += 1
                continue
            accepted += 1
            assert rd.to_wire() == blob  # canonical: the only accepted spelling is the one we emit
            assert dns.rdata.from_text(dns.rdataclass.IN, rdtype, rd.to_text()) == rd
    assert accepted > 0 and rejected > 0


def test_rdata_is_immutable_and_mapping_is_a_copy():
    rd = dns.rdata.from_text(dns.rdataclass.IN, CAPS, "a=[1,2] b=x")
    copy = rd.mapping
    copy["a"].append(3)
    copy["c"] = 1
    assert rd.mapping == {"a": [1, 2], "b": "x"}
    with pytest.raises(TypeError):
        rd.data = None  # type: ignore[misc]
    same = dns.rdata.from_text(dns.rdataclass.IN, CAPS, "b=x a=[1,2]")
    assert rd == same and hash(rd) == hash(same)
    assert rd != dns.rdata.from_text(dns.rdataclass.IN, LOAD, "a=[1,2] b=x")


def test_caps_rrset_signs_and_validates_in_either_form():
    key = ed25519.Ed25519PrivateKey.generate()
    dnskey = dns.dnssec.make_dnskey(key.public_key(), dns.dnssec.Algorithm.ED25519, flags=257)
    keys = {ORIGIN: dns.rrset.from_rdata(ORIGIN, 3600, dnskey)}
    rrset = _zone(ZONE).find_rrset(POOL, "CAPS")
    now = time.time()
    rrsig = dns.dnssec.sign(rrset, key, ORIGIN, dnskey, inception=now - 3600, expiration=now + 86400)
    sigs = dns.rrset.from_rdata(POOL, 3600, rrsig)
    dns.dnssec.validate(rrset, sigs, keys, now=now)
    wire = rrset[0].to_wire()
    generic = dns.rrset.from_text(POOL, 3600, "IN", "TYPE65380", f"\\# {len(wire)} {wire.hex()}")
    dns.dnssec.validate(generic, sigs, keys, now=now)
    tampered = dns.rrset.from_text(POOL, 3600, "IN", "CAPS", CAPS_TEXT.replace("count=8", "count=9"))
    with pytest.raises(dns.dnssec.ValidationFailure):
        dns.dnssec.validate(tampered, sigs, keys, now=now)


def test_bind_reads_and_writes_the_generic_form(tmp_path):
    """BIND knows nothing of CAPS/LOAD: it must carry them as TYPE65380/65381 \\# and give back
    the same bytes, which we must read."""
    zone = _zone(ZONE)
    caps_wire = zone.find_rdataset(POOL, "CAPS")[0].to_wire()
    load_wire = zone.find_rdataset(POOL, "LOAD")[0].to_wire()
    text = ZONE.replace(f"CAPS {CAPS_TEXT}", f"TYPE65380 \\# {len(caps_wire)} {caps_wire.hex()}")
    text = text.replace(f"LOAD {LOAD_TEXT}", f"TYPE65381 \\# {len(load_wire)} {load_wire.hex()}")
    source = tmp_path / "in.zone"
    source.write_text(text)
    out = tmp_path / "out.zone"
    peers.run(["named-compilezone", "-q", "-i", "none", "-o", str(out), str(ORIGIN), str(source)])
    compiled = out.read_text()
    assert "TYPE65380" in compiled and "TYPE65381" in compiled
    back = dns.zone.from_text(compiled, origin=ORIGIN, relativize=False)
    assert back.find_rdataset(POOL, CAPS) == zone.find_rdataset(POOL, CAPS)
    assert back.find_rdataset(POOL, LOAD) == zone.find_rdataset(POOL, LOAD)


def test_fuzz_presentation_parser_only_raises_syntax_error_or_round_trips():
    rng = random.Random(3597)
    pieces = ["a=", "b=", "A=", "=", "1", "-0", "1.5", "1e400", "true", "null", '"', '\\"', "\\", "\\032",
              "\\255", "[", "]", "{", "}", ",", ":", " ", "(", ")", ";", "x", "é", "\\# ", "\\# 1 80", "0x",
              '{\\"k\\":', "[" * 50, "ud800", "\n"]
    accepted = 0
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        try:
            rd = dns.rdata.from_text(dns.rdataclass.IN, CAPS, text)
        except dns.exception.SyntaxError:
            continue
        accepted += 1
        wire = rd.to_wire()
        assert capsmap.decode(wire) == rd.mapping
        assert dns.rdata.from_text(dns.rdataclass.IN, CAPS, rd.to_text()) == rd
    assert accepted > 0


@pytest.mark.parametrize("blob", [
    b"\x81\xa1a" + b"\x91" * 60000 + b"\x01",          # nesting far beyond any stack
    b"\x81\xa1a" * 20000 + b"\x01",
    b"\xdf\xff\xff\xff\xff",                            # map32 claiming 4 billion entries
    b"\x81\xa1a\xdd\xff\xff\xff\xff",                   # array32 likewise
    b"\x81\xa1a\xdb\xff\xff\xff\xff",                   # str32 longer than the RDATA
    b"\xde\x40\x00" + b"".join(b"\xa3k%02x\x01" % (i % 256) for i in range(16384)),  # duplicates
], ids=["deep-arrays", "deep-maps", "map32", "array32", "str32", "many-duplicates"])
def test_hostile_sizes_are_format_errors(blob):
    with pytest.raises(dns.exception.FormError):
        dns.rdata.from_wire(dns.rdataclass.IN, CAPS, blob, 0, len(blob))
