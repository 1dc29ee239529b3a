"""The fast zone writer (resolver/auth/render.py) writes exactly what dnspython's to_text does.

The reference below renders every record with dnspython's own ``Rdata.to_text`` (the writer the
project used before render.py); the zones cover CAPS/LOAD in both forms, escaped and IDN-like
labels, names differing only in case, long TXT, relative zones and signatures of three
algorithms (base64 of 64, 64 and 256 bytes).
"""

from __future__ import annotations

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest

import resolver  # noqa: F401  (registers CAPS/LOAD)
from resolver.auth import render
from resolver.auth.keys import generate_key
from resolver.auth.signer import attach_signatures, compute_signatures, sign_zone
from resolver.auth.zonefile import load_zone, zone_to_text

NOW = 1_800_000_000
ORIGIN = dns.name.from_text("example.com.")
LONG = "x" * 255
VARIED = f"""\
$ORIGIN example.com.
$TTL 3600
@ IN SOA ns1 hostmaster 2026112501 7200 3600 1209600 300
@ NS ns1
@ NS ns\\.odd.example.net.
@ MX 10 mail
ns1 A 192.0.2.1
ns1 AAAA 2001:db8::1
pool-7 CAPS gpu_count=8 gpu_vendor=nvidia
pool-7 30 LOAD gpu_free=3
pool-8 TYPE65380 \\# 10 81a467707573a3613130
pool-8 30 TYPE65381 \\# 1 80
pool-7 SVCB 1 . alpn=h2 port=8443
a\\.dot A 192.0.2.2
sp\\032ace A 192.0.2.3
q\\"uote TXT "say \\"hi\\"" "back\\\\slash"
semi\\;colon PTR target\\;x.example.net.
paren\\(x CNAME www
\\200high A 192.0.2.4
xn--bcher-kva A 192.0.2.5
bücher-two A 192.0.2.6
Upper.Case A 192.0.2.7
upper.case.alias CNAME Upper.Case
other CNAME upper.CASE
long TXT "{LONG}" "{"y" * 200}" ""
_sip._tcp SRV 0 5 5060 sip
*.wild TXT "wildcard"
child NS ns.child
child DS 12345 15 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
ns.child A 192.0.2.53
alias DNAME example.net.
empty TXT ""
"""


def reference_text(zone: dns.zone.Zone, generic: bool) -> str:
    origin = zone.origin
    lines = [f"$ORIGIN {origin}"]
    private = render.PRIVATE_TYPES

    def type_text(t: int) -> str:
        return f"TYPE{t}" if generic and t in private else dns.rdatatype.to_text(t)

    def bitmap(windows):
        return [w * 256 + i * 8 + b for w, m in windows for i, byte in enumerate(m)
                for b in range(8) if byte & (0x80 >> b)]

    def rdata_text(rd) -> str:
        text = rd.to_text(origin=origin, relativize=False)
        if not generic:
            return text
        if rd.rdtype in private:
            return rd.to_generic().to_text()
        if rd.rdtype == dns.rdatatype.RRSIG and rd.type_covered in private:
            return f"TYPE{rd.type_covered} " + text.split(" ", 1)[1]
        if rd.rdtype == dns.rdatatype.NSEC:
            return " ".join([rd.next.derelativize(origin).to_text(), *map(type_text, bitmap(rd.windows))])
        return text

    def order(rds):
        base = rds.covers if rds.rdtype == dns.rdatatype.RRSIG else rds.rdtype
        return (base != dns.rdatatype.SOA, base, rds.rdtype == dns.rdatatype.RRSIG)

    for key in sorted(zone.nodes, key=lambda n: n.derelativize(origin)):
        owner = key.derelativize(origin).to_text()
        for rds in sorted(zone.nodes[key].rdatasets, key=order):
            for rd in rds:
                lines.append(f"{owner} {rds.ttl} IN {type_text(rds.rdtype)} {rdata_text(rd)}".rstrip())
    lines.append("")
    return "\n".join(lines)


@pytest.fixture
def varied(tmp_path):
    path = tmp_path / "varied.db"
    path.write_text(VARIED, encoding="utf-8")
    return load_zone(path)


def test_reference_zone_has_the_hard_cases(varied):
    text = reference_text(varied, False)
    for fragment in ("a\\.dot.example.com.", "sp\\032ace", "\\200high", "Upper.Case.example.com.",
                     "upper.CASE.example.com.", "CAPS gpu_count=8", '"say \\"hi\\""', "semi\\;colon"):
        assert fragment in text


@pytest.mark.parametrize("generic", [False, True])
def test_unsigned_zone_text_matches_dnspython(varied, generic):
    assert zone_to_text(varied, generic=generic) == reference_text(varied, generic)


@pytest.mark.parametrize("generic", [False, True])
@pytest.mark.parametrize("algorithms", [(15,), (15, 13, 8)])
def test_signed_zone_text_matches_dnspython(varied, generic, algorithms):
    keys = [generate_key(ORIGIN, a, flags) for a in algorithms for flags in (257, 256)]
    sign_zone(varied, keys, now=NOW)
    text = zone_to_text(varied, generic=generic)
    assert text == reference_text(varied, generic)
    assert " RRSIG TYPE65380 " in text if generic else " RRSIG CAPS " in text


@pytest.mark.parametrize("generic", [False, True])
def test_signatures_written_directly_equal_attached_ones(varied, generic):
    keys = [generate_key(ORIGIN, 15, 257), generate_key(ORIGIN, 8, 256)]
    signed = compute_signatures(varied, keys, now=NOW)
    direct = render.zone_text(varied, generic=generic, signatures=signed)
    attach_signatures(varied, signed)
    assert direct == zone_to_text(varied, generic=generic) == reference_text(varied, generic)


def test_relativized_zone_matches_dnspython():
    zone = dns.zone.from_text(VARIED, origin=ORIGIN, relativize=True)
    sign_zone(zone, [generate_key(ORIGIN)], now=NOW)
    for generic in (False, True):
        assert zone_to_text(zone, generic=generic) == reference_text(zone, generic)


def test_same_name_spelled_differently_keeps_each_spelling(varied):
    text = zone_to_text(varied)
    assert "upper.case.alias.example.com. 3600 IN CNAME Upper.Case.example.com." in text
    assert "other.example.com. 3600 IN CNAME upper.CASE.example.com." in text
    assert "\nUpper.Case.example.com. 3600 IN A 192.0.2.7" in text
