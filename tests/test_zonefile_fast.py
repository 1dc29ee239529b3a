"""The fast master-file reader (resolver/auth/fastload.py) builds the zone dnspython's reader
builds — or steps aside, so that hostile and unusual files still get dnspython's reading and
``<path>:<line>:`` errors."""

from __future__ import annotations

import dns.name
import pytest

import resolver  # noqa: F401  (registers CAPS/LOAD)
from resolver.auth import fastload
from resolver.auth.zonefile import ZoneFileError, load_zone

ORIGIN = dns.name.from_text("example.com.")
HEAD = "$ORIGIN example.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n"

PLAIN = [
    # the benchmark's shape
    HEAD + "".join(f"pool-{i} IN A 10.0.{i >> 8}.{i & 255}\n" for i in range(300)),
    # TTL and class in either order, units, continuation lines, comments, duplicates, min TTL,
    # an RRset resumed after other types (dnspython moves it last in the node)
    HEAD + """\
www 300 IN A 192.0.2.10 ; the web
www IN 1h AAAA 2001:db8::10
    60 TXT plain words here
    A 192.0.2.11
www 30 A 192.0.2.10
  ; a comment line
Mixed.Case MX 10 mail.example.net.
*.wild 1w2d TXT wildcard
$ORIGIN sub.example.com.
deep CNAME www.example.com.
@ 7 CAPS gpu_count=8 gpu_vendor=nvidia
@ LOAD gpu_free=3
$ORIGIN example.com.
$TTL 5m
late A 192.0.2.12
_svc._tcp SRV 0 5 8443 www
pool SVCB 1 . alpn=h2 port=8443
""",
    # no $TTL: the SOA MINIMUM becomes the default, a stated TTL is remembered (RFC 2308 §4 as
    # dnspython applies it)
    "$ORIGIN example.com.\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n"
    "a 60 A 192.0.2.2\nb A 192.0.2.3\n",
    "$ORIGIN example.com.\n@ 100 SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n",
    # non-canonical addresses go through dnspython's rdata parser
    HEAD + "v6 AAAA 2001:DB8:0:0::1\nv6 AAAA ::ffff:192.0.2.1\nsig RRSIG A 15 3 300 20300101000000 20200101000000 1 example.com. AAAA\n",
]


def structure(zone):
    """Everything a loaded zone holds, in node order: types, TTLs, rdata in order, comments."""
    return {key: [(rds.rdtype, rds.covers, rds.ttl, [(rd.to_text(), rd.rdcomment) for rd in rds])
                  for rds in node.rdatasets] for key, node in zone.nodes.items()}


@pytest.mark.parametrize("index", range(len(PLAIN)))
def test_fast_reader_builds_what_dnspython_builds(tmp_path, index):
    path = tmp_path / "zone.db"
    path.write_text(PLAIN[index])
    assert fastload.load_text(PLAIN[index], ORIGIN) is not None  # the fast path is taken
    fast, slow = load_zone(path), load_zone(path, fast=False)
    assert structure(fast) == structure(slow)
    assert list(fast.nodes) == list(slow.nodes)


@pytest.mark.parametrize("text", [
    HEAD + 'txt TXT "quoted ; not a comment"\n',
    HEAD + "multi SOA ( ns1 h 1 2 3 4 5 )\n",
    HEAD + "esc\\.aped A 192.0.2.9\n",
    HEAD + "gen TYPE65380 \\# 1 80\n",
    HEAD + "$INCLUDE other.db\n",
    HEAD + "$GENERATE 1-3 h$ A 192.0.2.$\n",
    HEAD + "chaos CH A 192.0.2.9\n",
    HEAD + "crlf A 192.0.2.9\r\n",
    HEAD + "bücher A 192.0.2.9\n",
])
def test_unusual_lines_go_to_dnspython(text):
    assert fastload.load_text(text, ORIGIN) is None


@pytest.mark.parametrize("line, message", [
    ("www.example.org. A 192.0.2.9", "outside the zone"),
    ("bad A 300.1.1.1", ""),
    ("bad A 192.0.2", ""),
    ("bad AAAA 2001:db8:::1", ""),
    ("bad FOO bar", "unknown type FOO"),
    ("bad 99999999999 A 192.0.2.9", ""),
    ("x" * 64 + " A 192.0.2.9", ""),
    ("sub SOA ns1 h 1 2 3 4 5", ""),
    ("ns1 CNAME www", "CNAME"),
    ("bad MX ten mail", ""),
])
def test_hostile_lines_still_get_file_and_line(tmp_path, line, message):
    path = tmp_path / "zone.db"
    path.write_text(HEAD + "ok A 192.0.2.8\n" + line + "\nafter A 192.0.2.7\n")
    with pytest.raises(ZoneFileError) as caught:
        load_zone(path)
    assert str(caught.value).startswith(f"{path}:7: ")
    assert message in str(caught.value)


def test_missing_ttl_and_missing_apex_records_are_reported(tmp_path):
    path = tmp_path / "zone.db"
    path.write_text("$ORIGIN example.com.\nwww A 192.0.2.1\n")
    with pytest.raises(ZoneFileError, match=r"zone.db:2: .*TTL"):
        load_zone(path, "example.com.")
    path.write_text("$ORIGIN example.com.\n$TTL 60\nwww A 192.0.2.1\n")
    with pytest.raises(ZoneFileError, match="no SOA record at the zone origin"):
        load_zone(path, "example.com.")
