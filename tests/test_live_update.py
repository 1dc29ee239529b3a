"""Signed dynamic updates on `cid serve auth --config` (issue 9), driven as a user would.

BIND's nsupdate (a real process) and `cid register/load/unregister` change a zone signed by
`cid zone sign`; after each change the server is asked directly (data with its RRSIG, SOA serial
grown), `cid zone export` writes the live zone and `cid zone verify` and named-checkzone accept it,
our resolver and Unbound validate the answers from the zone's DS, and `find` sees registrations
through the browse PTRs the server made itself. Refusals change nothing: the serial stays and
the names stay absent.
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
import types

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
import dns.zone
import pytest

import resolver  # noqa: F401
from resolver import Resolver, records
from resolver.records import capsmap
from support import live_primary as lp
from support.net import free_port
from support.peer_servers import unbound
from support.peers import require, run

ADDRESS = "127.0.92.1"
UNBOUND = "127.0.92.2"
ZONE = lp.ZONE
ADMIN_SECRET = "YWRtaW4ta2V5LXNlY3JldC1mb3ItdGhlLWxpdmUtdGVzdHM="
ADMIN = f"admin.:{ADMIN_SECRET}"
CAPS = ["accel_kind=gpu", "accel_vendor=nvidia", "accel_count=8", "accel_memory_bytes=80GiB", "region=cn-bj"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    admin = f"""
[[key]]
name = "admin."
secret = "{ADMIN_SECRET}"
  [[key.grant]]
  zone = "{ZONE}"
"""
    return lp.build(tmp_path_factory.mktemp("live"), ADDRESS, free_port(ADDRESS), extra=admin)


@pytest.fixture(scope="module")
def server(site):
    with lp.serve(site) as running:
        yield running


def keyring(key: str) -> tuple[dict, dns.name.Name]:
    name, secret = key.split(":")
    ring = dns.tsigkeyring.from_text({name: ("hmac-sha256", secret)})
    return ring, dns.name.from_text(name)


def update(key: str | None = lp.PROV) -> dns.update.UpdateMessage:
    if key is None:
        return dns.update.UpdateMessage(ZONE)
    ring, name = keyring(key)
    return dns.update.UpdateMessage(ZONE, keyring=ring, keyname=name, keyalgorithm=dns.tsig.HMAC_SHA256)


def send(server: lp.Running, message: dns.message.Message) -> dns.message.Message:
    return dns.query.tcp(message, server.address, port=server.port, timeout=10)


def ede_text(response: dns.message.Message) -> str:
    return " ".join(e.text or "" for e in response.extended_errors())


def test_nsupdate_adds_deletes_and_prerequisites(server, site, tmp_path):
    serial = server.serial()
    out = server.nsupdate("update add pool-1.ex.cid. 60 A 127.0.92.50\nupdate add pool-1.ex.cid. 60 TXT \"hello\"")
    assert out.returncode == 0, out.stdout + out.stderr
    assert [rd.address for rd in server.signed("pool-1.ex.cid.", "A")] == ["127.0.92.50"]
    assert server.signed("pool-1.ex.cid.", "TXT")[0].strings == (b"hello",)
    assert server.serial() > serial  # RFC 1982 is fine here: far from wrapping
    serial = server.serial()
    assert server.signed(ZONE, "SOA")[0].serial == serial

    # RFC 2136 §2.4 prerequisites; each failure changes nothing.
    failing = [
        ("prereq nxdomain pool-1.ex.cid.", "YXDOMAIN"),
        ("prereq yxdomain pool-2.ex.cid.", "NXDOMAIN"),
        ("prereq nxrrset pool-1.ex.cid. A", "YXRRSET"),
        ("prereq yxrrset pool-1.ex.cid. AAAA", "NXRRSET"),
        ("prereq yxrrset pool-1.ex.cid. A 127.0.92.51", "NXRRSET"),
    ]
    for prereq, rcode in failing:
        out = server.nsupdate(f"{prereq}\nupdate add pool-1.ex.cid. 60 AAAA ::1")
        assert out.returncode != 0 and rcode in out.stdout + out.stderr, (prereq, out.stdout, out.stderr)
    assert server.serial() == serial and not server.rrset("pool-1.ex.cid.", "AAAA")
    out = server.nsupdate("prereq yxrrset pool-1.ex.cid. A 127.0.92.50\nprereq nxrrset pool-1.ex.cid. AAAA\n"
                          "prereq yxdomain pool-1.ex.cid.\nprereq nxdomain pool-2.ex.cid.\n"
                          "update add pool-1.ex.cid. 60 AAAA ::1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert server.signed("pool-1.ex.cid.", "AAAA")
    assert server.serial() > serial

    # Deletes: one RR, one RRset, the whole name; NSEC then proves what is gone.
    out = server.nsupdate("update add pool-1.ex.cid. 60 A 127.0.92.51\nupdate delete pool-1.ex.cid. A 127.0.92.50\n"
                          "update delete pool-1.ex.cid. TXT")
    assert out.returncode == 0, out.stdout + out.stderr
    assert [rd.address for rd in server.signed("pool-1.ex.cid.", "A")] == ["127.0.92.51"]
    nodata = server.ask("pool-1.ex.cid.", "TXT")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
    nsec = [r for r in nodata.authority if r.rdtype == dns.rdatatype.NSEC]
    types_listed = nsec[0][0].to_text().split()[1:]
    assert "AAAA" in types_listed and "TXT" not in types_listed, nsec
    assert any(r.rdtype == dns.rdatatype.RRSIG and r.covers == dns.rdatatype.NSEC for r in nodata.authority)
    out = server.nsupdate("update add pool-2.ex.cid. 60 A 127.0.92.52")
    assert out.returncode == 0
    out = server.nsupdate("update delete pool-2.ex.cid.")
    assert out.returncode == 0, out.stdout + out.stderr
    gone = server.ask("pool-2.ex.cid.", "A")
    assert gone.rcode() == dns.rcode.NXDOMAIN
    assert any(r.rdtype == dns.rdatatype.RRSIG and r.covers == dns.rdatatype.NSEC for r in gone.authority)

    # The live zone as a master file: our verifier and BIND's checker accept it, dnspython reads it.
    exported = lp.export(site, tmp_path / "live.zone")
    lp.verify(exported)
    check = run([require("named-checkzone"), "-i", "full", ZONE, str(exported)], check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    zone = dns.zone.from_file(str(exported), origin=ZONE, relativize=False)
    assert zone.get_rdataset("pool-1.ex.cid.", "AAAA") is not None
    assert zone.get_node("pool-2.ex.cid.") is None
    assert zone.get_rdataset(ZONE, "SOA")[0].serial == server.serial()


def test_register_find_load_unregister_validated_by_us_and_unbound(server, site, tmp_path):
    ident = "cid:pool-2.ex.cid"
    name = "pool-2.ex.cid."
    out = lp.cid("register", ident, "--server", server.server, "--key", lp.PROV, "--endpoint",
                 "h2://127.0.92.9:8443", "--caps", *CAPS, "--load", "accel_free=3", "--lease", "600")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "lease 600 s granted" in out.stdout, out.stdout
    assert server.signed(name, "SVCB") and server.signed(name, records.CAPS)
    # The browse PTRs are the server's: _compute and one sub-type per selector (spec/discovery.md §2).
    for browse in (f"_compute.{ZONE}", f"_region-cn-bj._sub._compute.{ZONE}", f"_vendor-nvidia._sub._compute.{ZONE}"):
        assert name in [rd.target.to_text() for rd in server.signed(browse, "PTR")], browse

    async def resolve_and_find():
        async with Resolver(hints={ZONE: [server.server]}, trust_anchor=site.trust_anchor(), port=server.port) as r:
            res = await r.resolve(ident)
            found = await r.find("cid:ex.cid", where=["region=cn-bj", "accel_free>=2"])
            return res, found

    res, found = asyncio.run(resolve_and_find())
    assert (res.status.value, res.rcode) == ("secure", "NOERROR"), res.why
    assert res.capabilities["accel_count"] == 8 and res.load["accel_free"] == 3
    assert [x.identifier for x in found] == [ident]

    with unbound(tmp_path / "unbound", UNBOUND, server.port, trust_anchor=site.trust_anchor(),
                 stubs={ZONE: f"{ADDRESS}@{server.port}"}) as ub:
        def ask(qname, rdtype):
            query = dns.message.make_query(qname, rdtype, want_dnssec=True)
            return dns.query.tcp(query, UNBOUND, port=server.port, timeout=10)

        for qname, rdtype in ((name, "SVCB"), (name, "TYPE65380"), (f"_compute.{ZONE}", "PTR")):
            answer = ask(qname, rdtype)
            assert answer.rcode() == dns.rcode.NOERROR and answer.flags & dns.flags.AD, (qname, answer)

        out = lp.cid("load", ident, "accel_free=1", "--server", server.server, "--key", lp.PROV)
        assert out.returncode == 0 and "LOAD updated" in out.stdout, out.stdout + out.stderr
        assert server.signed(name, records.LOAD)[0].data.value["accel_free"] == 1

        # CAPS change: the sub-type PTR moves in the same change.
        caps = [c if not c.startswith("region=") else "region=cn-sh" for c in CAPS]
        out = lp.cid("register", ident, "--server", server.server, "--key", lp.PROV, "--endpoint",
                     "h2://127.0.92.9:8443", "--caps", *caps)
        assert out.returncode == 0, out.stdout + out.stderr
        assert server.ask(f"_region-cn-bj._sub._compute.{ZONE}", "PTR").rcode() == dns.rcode.NXDOMAIN
        assert name in [rd.target.to_text() for rd in server.signed(f"_region-cn-sh._sub._compute.{ZONE}", "PTR")]

        out = lp.cid("unregister", ident, "--server", server.server, "--key", lp.PROV)
        assert out.returncode == 0 and "unregistered" in out.stdout, out.stdout + out.stderr
        assert server.ask(name, "SVCB").rcode() == dns.rcode.NXDOMAIN
        assert server.ask(f"_region-cn-sh._sub._compute.{ZONE}", "PTR").rcode() == dns.rcode.NXDOMAIN
        ub.flush(ZONE)
        answer = ask(name, "SVCB")  # a validated denial from Unbound
        assert answer.rcode() == dns.rcode.NXDOMAIN and answer.flags & dns.flags.AD, answer
    lp.verify(lp.export(site, tmp_path / "after.zone"))


def _unchanged(server: lp.Running, serial: int, name: str, rdtype: str = "A") -> None:
    assert server.serial() == serial
    assert not server.rrset(name, rdtype)


def test_tsig_and_grant_refusals_change_nothing(server, monkeypatch):
    serial = server.serial()
    target = "pool-1.ex.cid."
    body = f"update add {target} 60 TYPE65534 \\# 1 01"
    name, secret = lp.PROV.split(":")
    cases = [
        (None, "NOTAUTH"),  # unsigned
        (f"{name}:{secret[:-8]}AAAAAAA=", "BADSIG"),  # wrongly signed
        (f"nobody.:{secret}", "BADKEY"),  # a key the server does not know
        (lp.NARROW, "REFUSED"),  # a key granted only A at only.<zone>
    ]
    for key, expected in cases:
        out = server.nsupdate(body, key=key or "")
        assert out.returncode != 0 and expected in out.stdout + out.stderr, (key, out.stdout, out.stderr)
    _unchanged(server, serial, target, "TYPE65534")
    # Out of the grant: a type the narrow key may not touch, a name outside its subtree.
    for body, key in ((f"update add only.{ZONE} 60 TXT \"x\"", lp.NARROW),
                      (f"update add elsewhere.{ZONE} 60 A 127.0.92.7", lp.PROV),
                      (f"update add pool-10.{ZONE} 60 A 127.0.92.7", lp.PROV)):  # pool-1 is no prefix of pool-10
        out = server.nsupdate(body, key=key)
        assert out.returncode != 0 and "REFUSED" in out.stdout + out.stderr, (body, out.stdout, out.stderr)
    _unchanged(server, serial, f"elsewhere.{ZONE}")
    _unchanged(server, serial, f"pool-10.{ZONE}")
    assert not server.rrset(f"only.{ZONE}", "TXT")
    # Within the grant the narrow key works.
    assert server.nsupdate(f"update add only.{ZONE} 60 A 127.0.92.8", key=lp.NARROW).returncode == 0
    serial = server.serial()

    # A message signed 20 minutes ago (a late replay, outside the 300 s fudge): BADTIME, and the
    # error response is signed with our time in Other Data (RFC 8945 §5.2.3).
    message = update()
    message.add(target, 60, "TXT", '"late"')
    real = time.time
    monkeypatch.setattr(dns.message, "time", types.SimpleNamespace(time=lambda: real() - 1200))
    wire = message.to_wire()
    monkeypatch.undo()
    ring, _ = keyring(lp.PROV)
    reply = _raw_tcp(server, wire)
    assert reply[3] & 0xF == dns.rcode.NOTAUTH
    with pytest.raises(dns.tsig.PeerBadTime):
        dns.message.from_wire(reply, keyring=ring, request_mac=message.mac)
    unchecked = dns.message.from_wire(reply, keyring=lambda message, name: _Unchecked())
    (their_time,) = struct.unpack("!Q", b"\x00\x00" + unchecked.tsig[0].other)
    assert abs(their_time - real()) < 60 and unchecked.tsig[0].mac  # signed, with our time
    # The same bytes replayed later are refused the same way; nothing changed.
    assert _raw_tcp(server, wire)[3] & 0xF == dns.rcode.NOTAUTH
    _unchanged(server, serial, target, "TXT")


class _Unchecked:
    """A keyring answer under which dnspython reads a TSIG without checking it."""

    def __bool__(self) -> bool:
        return False


def _raw_tcp(server: lp.Running, wire: bytes) -> bytes:
    import socket
    with socket.create_connection((server.address, server.port), timeout=10) as sock:
        sock.sendall(struct.pack("!H", len(wire)) + wire)
        with sock.makefile("rb") as stream:
            (length,) = struct.unpack("!H", stream.read(2))
            return stream.read(length)


def _raw_udp(server: lp.Running, wire: bytes, timeout: float = 5) -> bytes:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(wire, (server.address, server.port))
        return sock.recvfrom(65535)[0]


def test_zone_rules_refused_with_a_reason(server):
    serial = server.serial()
    assert server.nsupdate("update add cname.ex.cid. 60 A 127.0.92.60").returncode == 0
    serial = server.serial()
    cases = []
    m = update()
    m.add("cname.ex.cid.", 60, "CNAME", "pool-1.ex.cid.")
    cases.append((m, "CNAME and other data"))
    m = update()
    m.add("host.child.ex.cid.", 60, "TXT", '"below"')
    cases.append((m, "below the zone cut"))
    m = update(ADMIN)
    m.delete(ZONE, "SOA")
    cases.append((m, "apex SOA"))
    m = update(ADMIN)
    m.delete(ZONE, "NS")
    cases.append((m, "apex NS"))
    m = update(ADMIN)
    m.delete(ZONE, "DNSKEY")
    cases.append((m, "apex DNSKEY"))
    m = update(ADMIN)
    m.delete(ZONE)
    cases.append((m, "apex"))
    m = update()
    wrong = capsmap.encode({"accel_count": "eight"})
    rdata = dns.rdata.from_wire(dns.rdataclass.IN, records.CAPS, wrong, 0, len(wrong))
    m.add("pool-1.ex.cid.", 60, rdata)
    cases.append((m, "accel_count"))
    for message, reason in cases:
        message.use_edns(0, 0, 1232)
        response = send(server, message)
        assert response.rcode() == dns.rcode.REFUSED, (reason, response)
        assert reason in ede_text(response), (reason, ede_text(response))
    assert server.serial() == serial
    assert server.rrset(ZONE, "DNSKEY") and server.rrset(ZONE, "NS")
    assert not server.rrset("cname.ex.cid.", "CNAME") and not server.rrset("host.child.ex.cid.", "TXT")
    assert "accel_count: expected int" in lp.until(lambda: "accel_count: expected int" in server.log_text()
                                                   and server.log_text(), "the refusal's log line")
    # Glue below the cut is allowed (an address is not "data below a cut").
    assert server.nsupdate("update add ns2.child.ex.cid. 60 A 127.0.92.61").returncode == 0
    referral = server.ask("ns2.child.ex.cid.", "A")  # a referral, not an answer: glue is not ours
    assert not referral.answer and not referral.flags & dns.flags.AA
    assert any(r.rdtype == dns.rdatatype.NS for r in referral.authority)


def test_malformed_updates_get_formerr_and_fuzz_changes_nothing(server, site, tmp_path):
    serial = server.serial()
    good = update()
    good.add("pool-1.ex.cid.", 60, "TXT", '"fuzz"')
    wire = good.to_wire()

    def rcode_of(request: bytes) -> int:
        reply = _raw_udp(server, request)
        assert reply[:2] == request[:2] and reply[2] & 0x80, reply
        return reply[3] & 0xF

    # Truncated at every few bytes, counts larger than the records, two zone RRs.
    for cut in range(12, len(wire), 7):
        assert rcode_of(wire[:cut]) == dns.rcode.FORMERR, cut
    bad_counts = bytearray(wire)
    bad_counts[9] += 3  # NSCOUNT (updates) beyond the records present
    assert rcode_of(bytes(bad_counts)) == dns.rcode.FORMERR
    two = update()
    two.question.append(two.question[0])
    two.add("pool-1.ex.cid.", 60, "TXT", '"two zones"')
    assert rcode_of(two.to_wire()) == dns.rcode.FORMERR
    # A signed update whose UPDATE-LEASE option has 5 bytes (RFC 9664: 4 or 8).
    lease = update()
    lease.use_edns(0, 0, 1232, options=[dns.edns.GenericOption(2, b"\x00\x00\x00\x3c\x00")])
    lease.add("pool-1.ex.cid.", 60, "TXT", '"lease"')
    ring, _ = keyring(lp.PROV)
    reply = dns.message.from_wire(_raw_udp(server, lease.to_wire()), keyring=ring, request_mac=lease.mac)
    assert reply.rcode() == dns.rcode.FORMERR
    # The TSIG's TTL and CLASS are outside its MAC: an altered copy must not be carried out.
    for offset in (4, 6):  # from the end of the fixed fields before the RDATA: TTL, CLASS
        altered = bytearray(wire)
        at = len(wire) - len(good.tsig[0].to_wire()) - 10 + offset
        altered[at] ^= 0x40
        assert rcode_of(bytes(altered)) == dns.rcode.FORMERR, offset
    # Fuzzed copies (bounded): every one answered or dropped, none changes the zone.
    rng = random.Random(9)
    for _ in range(300):
        mutated = bytearray(wire)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(2, len(mutated))] = rng.randrange(256)  # the ID is kept to match replies
        if bytes(mutated) == wire:
            continue  # every "mutation" wrote the byte already there (the TSIG time and MAC vary per run)
        try:
            reply = _raw_udp(server, bytes(mutated), timeout=0.5)
        except TimeoutError:
            continue  # a message that is not a query at all (QR=1) is dropped, as it should be
        assert reply[2] & 0x80 and (reply[3] & 0xF != dns.rcode.NOERROR or (reply[2] >> 3) & 0xF != 5), reply
    assert server.proc.poll() is None
    assert server.serial() == serial and not server.rrset("pool-1.ex.cid.", "TXT")
    lp.verify(lp.export(site, tmp_path / "fuzzed.zone"))


def test_export_errors_are_one_line(site, tmp_path):
    out = lp.cid("zone", "export", "nope.cid.", "--config", str(site.config))
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "no zone nope.cid." in out.stderr, out.stderr
    out = lp.cid("zone", "export", ZONE, "--config", str(tmp_path / "missing.toml"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "cannot read" in out.stderr, out.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[[zone]]\nfile = 3\n")
    out = lp.cid("zone", "export", ZONE, "--config", str(bad))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "expected a path" in out.stderr, out.stderr
