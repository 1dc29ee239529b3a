"""Master-file loading and writing: absolute names, CAPS/LOAD in both forms, line-numbered errors."""

from __future__ import annotations

import os

import dns.name
import dns.rdatatype
import pytest

import resolver  # noqa: F401  (registers CAPS/LOAD)
from resolver.auth.zonefile import ZoneFileError, load_zone, write_zone, zone_to_text

ZONE = """\
$ORIGIN example.com.
$TTL 3600
@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
ns1 A 192.0.2.1
pool-7 CAPS gpu_count=8 gpu_vendor=nvidia
pool-7 30 LOAD gpu_free=3
pool-8 TYPE65380 \\# 10 81a467707573a3613130
"""

SOA = "example.com. 3600 IN SOA ns1.example.com. h.example.com. 1 7200 3600 1209600 300\n"
NS = "example.com. 3600 IN NS ns1.example.com.\n"


def write(tmp_path, text, name="zone.db"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_loads_with_absolute_names_and_both_caps_forms(tmp_path):
    zone = load_zone(write(tmp_path, ZONE))
    assert zone.origin == dns.name.from_text("example.com.")
    assert not zone.relativize
    assert dns.name.from_text("pool-7.example.com.") in zone.nodes
    caps = zone.get_rdataset("pool-7.example.com.", "CAPS")
    assert caps[0].mapping == {"gpu_count": 8, "gpu_vendor": "nvidia"}
    generic = zone.get_rdataset("pool-8.example.com.", "CAPS")
    assert generic[0].mapping == {"gpus": "a10"}
    assert zone.get_rdataset("pool-7.example.com.", "LOAD").ttl == 30


def test_origin_from_soa_owner_and_explicit_origin(tmp_path):
    path = write(tmp_path, SOA + NS + "www.example.com. 60 IN A 192.0.2.9\n")
    assert load_zone(path).origin == dns.name.from_text("example.com")
    relative = write(tmp_path, "$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n", "rel.db")
    zone = load_zone(relative, "example.org")
    assert dns.name.from_text("ns1.example.org.") in zone.nodes
    with pytest.raises(ZoneFileError, match="rel.db: cannot tell the zone origin"):
        load_zone(relative)


@pytest.mark.parametrize(
    "line, message",
    [
        ("foo IN FOO bar", "unknown type FOO"),
        ("other.org. IN A 192.0.2.2", "other.org. is outside the zone example.com."),
        ("bad IN A 999.1.1.1", ""),
        ("pool-9 CAPS count=", "count"),
        ("pool-9 TYPE65380 \\# 3 c10000", ""),  # msgpack 0xc1 is never valid
        ("ns1 CNAME www", "CNAME"),
        ("x IN A 192.0.2.1 extra", ""),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, message):
    path = write(tmp_path, ZONE + "\n" + line + "\n")
    with pytest.raises(ZoneFileError) as err:
        load_zone(path)
    text = str(err.value)
    assert text.startswith(f"{path}:10: "), text
    assert message in text
    assert "Traceback" not in text and "caught exception" not in text


def test_missing_soa_and_ns(tmp_path):
    with pytest.raises(ZoneFileError, match="no SOA record at the zone origin example.com."):
        load_zone(write(tmp_path, NS + "ns1.example.com. 60 IN A 192.0.2.1\n"), "example.com.")
    with pytest.raises(ZoneFileError, match="no NS records"):
        load_zone(write(tmp_path, SOA))


def test_unreadable_inputs(tmp_path):
    with pytest.raises(ZoneFileError, match="cannot read: No such file"):
        load_zone(tmp_path / "absent.db")
    with pytest.raises(ZoneFileError, match="cannot read"):
        load_zone(tmp_path)
    binary = tmp_path / "bin.db"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ZoneFileError, match="not UTF-8"):
        load_zone(binary, "example.com.")
    if os.geteuid() != 0:  # root reads anything
        locked = write(tmp_path, ZONE, "locked.db")
        locked.chmod(0)
        with pytest.raises(ZoneFileError, match="Permission denied"):
            load_zone(locked)


def test_missing_include_is_an_error(tmp_path):
    path = write(tmp_path, ZONE + f"$INCLUDE {tmp_path}/nope.db\n")
    with pytest.raises(ZoneFileError, match="nope.db"):
        load_zone(path)


def test_text_round_trip_friendly_and_generic(tmp_path):
    zone = load_zone(write(tmp_path, ZONE))
    friendly = zone_to_text(zone)
    assert "IN CAPS gpu_count=8 gpu_vendor=nvidia" in friendly
    generic = zone_to_text(zone, generic=True)
    assert "CAPS" not in generic and "LOAD" not in generic
    assert "pool-7.example.com. 3600 IN TYPE65380 \\# " in generic
    assert friendly.splitlines()[1].split()[3] == "SOA"  # apex SOA opens the file
    for text, name in ((friendly, "f.db"), (generic, "g.db")):
        assert load_zone(write(tmp_path, text, name)) == zone


def test_generic_form_rewrites_rrsig_and_nsec_types(tmp_path):
    signed = SOA + NS + (
        "example.com. 300 IN NSEC x.example.com. NS SOA RRSIG NSEC\n"
        "x.example.com. 300 IN NSEC example.com. RRSIG NSEC CAPS LOAD\n"
        "x.example.com. 60 IN CAPS a=1\n"
        "x.example.com. 60 IN RRSIG CAPS 15 3 60 20300101000000 20200101000000 1 example.com. AAAA\n"
    )
    zone = load_zone(write(tmp_path, signed))
    text = zone_to_text(zone, generic=True)
    assert "RRSIG NSEC TYPE65380 TYPE65381" in text
    assert "IN RRSIG TYPE65380 15 3 60 " in text
    assert load_zone(write(tmp_path, text, "again.db")) == zone


def test_write_zone_is_atomic_replacement(tmp_path):
    zone = load_zone(write(tmp_path, ZONE))
    out = tmp_path / "out.db"
    out.write_text("old contents\n")
    write_zone(zone, out)
    assert load_zone(out) == zone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.db", "zone.db"]
    assert out.stat().st_mode & 0o777 != 0o600  # not left with mkstemp's private mode


def test_include_works_and_self_inclusion_is_bounded(tmp_path):
    part = write(tmp_path, "www 60 IN A 192.0.2.80\n", "part.db")
    zone = load_zone(write(tmp_path, ZONE + f"$INCLUDE {part}\n"))
    assert zone.get_rdataset("www.example.com.", "A")[0].address == "192.0.2.80"
    loop = tmp_path / "loop.db"
    loop.write_text(ZONE + f"$INCLUDE {loop}\n")
    with pytest.raises(ZoneFileError, match=r"loop.db:9: \$INCLUDE nested more than 16 deep"):
        load_zone(loop)
