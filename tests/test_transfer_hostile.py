"""Zone transfers out of `cid serve auth` under hostile or odd requests (issue 9, RFC 1995, RFC 5936,
RFC 8945): IXFR from a serial we never had or one ahead of ours, bad and unknown TSIG keys, a
TSIG altered where its MAC does not reach, requests outside the ACL, NOTIFY from strangers, and a
transfer long enough to need many messages, each of them signed. One real server for the file."""

from __future__ import annotations

import socket
import struct
import subprocess

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import dns.update
import pytest

from support import live_primary as lp
from support import secondaries
from support.net import free_port
from support.peers import require

PRIMARY = "127.0.151.11"
INSIDE = "127.0.151.12"  # allow_transfer lists this address: unsigned transfers from it are fine
OUTSIDE = "127.0.151.13"
KNOT = "127.0.151.14"
LISTENER = "127.0.151.15"  # stands in for a secondary: receives our NOTIFYs  # a Knot primary of the same zone (differential)
KEY = secondaries.XFR_KEY
PROV = dns.tsigkeyring.from_text({"prov.": lp.SECRET})  # a key we know, not in allow_transfer
DIG_KEY = f"hmac-sha256:{KEY}:{secondaries.XFR_SECRET}"
NAMES = 400  # static names: the AXFR takes several messages of ≤ 16 kB


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port(PRIMARY)
    # A secondary that is only a socket: the NOTIFYs sent to it are read by the test.
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind((LISTENER, 0))
    site = secondaries.primary_site(tmp_path_factory.mktemp("hostile"), PRIMARY, port, notify=(LISTENER,),
                                    notify_port=listener.getsockname()[1],
                                    allow_transfer=(KEY, f"{INSIDE}/32"), static_names=NAMES)
    running = lp.start(site)
    running.listener = listener
    try:
        first = running.serial()
        update = dns.update.UpdateMessage(lp.ZONE, keyring=PROV, keyname="prov.")
        update.add(f"pool-1.{lp.ZONE}", 60, "A", "127.0.151.50")
        assert dns.query.tcp(update, PRIMARY, port=port, timeout=10).rcode() == dns.rcode.NOERROR
        running.first_serial = first
        yield running
    finally:
        lp.stop(running)
        listener.close()


def _query(rdtype: str, *, serial: int | None = None, keyring=secondaries.XFR_RING, keyname: str = KEY):
    query = dns.message.make_query(lp.ZONE, rdtype)
    if serial is not None:
        query.authority.append(_soa(serial))
    if keyring is not None:
        query.use_tsig(keyring, keyname=keyname)
    return query


def _soa(serial: int) -> dns.rrset.RRset:
    return dns.rrset.from_text(lp.ZONE, 0, "IN", "SOA", f". . {serial} 0 0 0 0")


def _xfr_messages(server, rdtype: str = "AXFR", serial: int = 0, *, source: str | None = None,
                  keyring=secondaries.XFR_RING, keyname: str | None = KEY) -> list[dns.message.Message]:
    """The messages of a transfer as dnspython reads them, every TSIG checked (RFC 8945 §5.3.1)."""
    return list(dns.query.xfr(PRIMARY, lp.ZONE, rdtype=rdtype, serial=serial, port=server.port, timeout=10,
                              keyring=keyring, keyname=keyname, source=source, relativize=False))


def _records(messages: list[dns.message.Message]) -> list[tuple]:
    return [(r.name, r.rdtype, rd) for m in messages for r in m.answer for rd in r]


def _raw_tcp(server, wire: bytes, source: str | None = None) -> bytes:
    with socket.create_connection((PRIMARY, server.port), timeout=5,
                                  source_address=(source, 0) if source else None) as sock:
        sock.sendall(struct.pack("!H", len(wire)) + wire)
        length = struct.unpack("!H", _recv(sock, 2))[0]
        return _recv(sock, length)


def _recv(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, "connection closed"
        data += chunk
    return data


def test_our_notify_is_a_signed_notify_from_the_listen_address(server):
    """RFC 1996 §3.7: opcode NOTIFY, AA, no RD, question ZONE SOA, the SOA in the answer section;
    TSIG with the entry's key;
    each answered, until the current serial's NOTIFY is acknowledged (bounded)."""
    server.listener.settimeout(10)
    hinted: list[int] = []
    done = f"NOTIFY serial {server.serial()} to {LISTENER}:{server.listener.getsockname()[1]} key {KEY} acknowledged"
    for _ in range(20):
        wire, (host, port) = server.listener.recvfrom(65535)
        notify = dns.message.from_wire(wire, keyring=secondaries.XFR_RING)
        assert host == PRIMARY and notify.had_tsig and notify.keyname.to_text() == KEY
        assert notify.opcode() == dns.opcode.NOTIFY and notify.flags & dns.flags.AA
        assert not notify.flags & (dns.flags.RD | dns.flags.QR)
        assert [(q.name.to_text(), q.rdtype) for q in notify.question] == [(lp.ZONE, dns.rdatatype.SOA)]
        # The SOA hint (RFC 1996 §3.7) carries the serial being announced.
        [soa] = notify.answer
        assert (soa.name.to_text(), soa.rdtype, len(soa)) == (lp.ZONE, dns.rdatatype.SOA, 1)
        assert soa.ttl > 0
        hinted.append(soa[0].serial)
        server.listener.sendto(dns.message.make_response(notify).to_wire(), (host, port))
        if _logged(server, done):
            break
    else:
        raise AssertionError(f"no acknowledged NOTIFY for the current serial: {server.log_text()[-2000:]}")
    assert hinted[-1] == server.serial(), hinted


def _logged(server, line: str, wait: float = 0.3) -> bool:
    try:
        return bool(lp.until(lambda: line in server.log_text(), line, timeout=wait, interval=0.02))
    except AssertionError:
        return False


def test_axfr_of_many_messages_is_signed_in_every_one(server):
    messages = _xfr_messages(server)
    assert len(messages) > 1
    assert all(m.had_tsig for m in messages)
    records = _records(messages)
    assert records[0][1] == records[-1][1] == dns.rdatatype.SOA
    assert sum(r[1] == dns.rdatatype.SOA for r in records) == 2
    assert len({r[0] for r in records}) > NAMES
    # dig checks the MAC of each message too ("Transfer failed" or "Couldn't verify" if not).
    dig = subprocess.run([require("dig"), f"@{PRIMARY}", "-p", str(server.port), lp.ZONE, "AXFR",
                          "-y", DIG_KEY],
                         capture_output=True, text=True, timeout=20)
    assert "Transfer failed" not in dig.stdout and "verify" not in dig.stdout.lower(), dig.stdout[-2000:]
    assert dig.stdout.count("\tSOA\t") == 2, dig.stdout[-2000:]


def test_ixfr_from_a_serial_we_never_had_sends_the_whole_zone(server):
    current = server.serial()
    axfr = _records(_xfr_messages(server))
    for unknown in (server.first_serial + 1, 12345):  # older than ours, not in the journal
        records = _records(_xfr_messages(server, "IXFR", unknown))
        assert records[0][2].serial == current
        assert records[1][1] != dns.rdatatype.SOA, "an incremental answer from a serial we never had"
        assert sorted(map(str, records)) == sorted(map(str, axfr))


def test_ixfr_from_the_previous_serial_is_incremental(server):
    current = server.serial()
    records = _records(_xfr_messages(server, "IXFR", server.first_serial))
    soas = [r[2].serial for r in records if r[1] == dns.rdatatype.SOA]
    # RFC 1995 §4: new SOA, old SOA, deletions, new SOA, additions, new SOA.
    assert soas == [current, server.first_serial, current, current], soas
    assert records[-2][1] != dns.rdatatype.SOA
    added = records[records.index(next(r for r in records[2:] if r[1] == dns.rdatatype.SOA)):]
    assert any(r[0].to_text() == f"pool-1.{lp.ZONE}" and r[1] == dns.rdatatype.A for r in added)
    dig = subprocess.run([require("dig"), f"@{PRIMARY}", "-p", str(server.port), lp.ZONE,
                          f"IXFR={server.first_serial}", "-y", DIG_KEY],
                         capture_output=True, text=True, timeout=20)
    assert "Transfer failed" not in dig.stdout and dig.stdout.count("\tSOA\t") == 4, dig.stdout[-2000:]


@pytest.mark.parametrize("ahead", [0, 1, 1000])
def test_ixfr_from_our_serial_or_ahead_is_our_soa_alone(server, ahead):
    """RFC 1995 §2. Read raw: dnspython's client rightly raises SerialWentBackwards on it."""
    current = server.serial()
    query = _query("IXFR", serial=(current + ahead) % 2**32)
    response = dns.message.from_wire(_raw_tcp(server, query.to_wire()), keyring=secondaries.XFR_RING,
                                     request_mac=query.mac)
    assert response.had_tsig and response.rcode() == dns.rcode.NOERROR
    assert [(r[1], r[2].serial) for r in _records([response])] == [(dns.rdatatype.SOA, current)]


def test_unknown_key_is_notauth_badkey(server):
    stranger = dns.tsigkeyring.from_text({"nobody.": secondaries.XFR_SECRET})
    with pytest.raises(dns.tsig.PeerBadKey):
        dns.query.tcp(_query("AXFR", keyring=stranger, keyname="nobody."), PRIMARY, port=server.port, timeout=5)
    response = dns.message.from_wire(_raw_tcp(server, _query("AXFR", keyring=stranger, keyname="nobody.").to_wire()),
                                     keyring=False)
    assert response.rcode() == dns.rcode.NOTAUTH and not response.answer


def test_wrong_secret_is_notauth_badsig(server):
    wrong = dns.tsigkeyring.from_text({KEY: lp.OTHER_SECRET})
    with pytest.raises(dns.tsig.PeerBadSignature):
        dns.query.tcp(_query("AXFR", keyring=wrong), PRIMARY, port=server.port, timeout=5)
    with pytest.raises(dns.tsig.PeerBadSignature):
        dns.query.tcp(_query("IXFR", serial=server.first_serial, keyring=wrong), PRIMARY, port=server.port, timeout=5)


@pytest.mark.parametrize("field", ["class", "ttl"])
def test_tsig_altered_outside_its_mac_is_formerr(server, field):
    """RFC 8945 §4.2: TSIG CLASS is ANY and TTL 0; neither is under the MAC, so a copy altered
    there still verifies and must be refused by those fields."""
    query = _query("AXFR")
    wire = bytearray(query.to_wire())
    rdlen = len(query.tsig[0].to_wire())
    at = len(wire) - rdlen - 10 + 2  # CLASS after TYPE
    if field == "class":
        wire[at:at + 2] = struct.pack("!H", 1)
    else:
        wire[at + 2:at + 6] = struct.pack("!I", 300)
    response = dns.message.from_wire(_raw_tcp(server, bytes(wire)), keyring=False)
    assert response.rcode() == dns.rcode.FORMERR and not response.answer


def test_outside_the_acl_is_refused(server):
    # Unsigned, from an address not listed: REFUSED, not a byte of the zone.
    for source in (OUTSIDE, PRIMARY):
        response = dns.message.from_wire(_raw_tcp(server, _query("AXFR", keyring=None).to_wire(), source))
        assert response.rcode() == dns.rcode.REFUSED and not response.answer, source
    # Signed by a key we know but allow_transfer does not list: REFUSED, signed back.
    response = dns.query.tcp(_query("AXFR", keyring=PROV, keyname="prov."), PRIMARY, port=server.port,
                             timeout=5, source=OUTSIDE)
    assert response.rcode() == dns.rcode.REFUSED and response.had_tsig and not response.answer
    response = dns.query.tcp(_query("IXFR", serial=server.first_serial, keyring=None), PRIMARY,
                             port=server.port, timeout=5, source=OUTSIDE)
    assert response.rcode() == dns.rcode.REFUSED
    # dig says so too.
    dig = subprocess.run([require("dig"), f"@{PRIMARY}", "-p", str(server.port), "-b", OUTSIDE, lp.ZONE, "AXFR"],
                         capture_output=True, text=True, timeout=10)
    assert "Transfer failed" in dig.stdout
    # The listed address may transfer unsigned.
    records = _records(_xfr_messages(server, source=INSIDE, keyring=None, keyname=None))
    assert len(records) > NAMES


def test_axfr_over_udp_is_refused(server):
    response = dns.query.udp(_query("AXFR"), PRIMARY, port=server.port, timeout=5)
    assert response.rcode() == dns.rcode.REFUSED and not response.answer


def test_notify_from_a_stranger_is_ignored(server):
    """We are the primary: a NOTIFY to us, signed or not, changes nothing and starts no transfer."""
    before = server.serial()
    log_before = server.log_text()
    for keyring, keyname in ((None, None), (secondaries.XFR_RING, KEY), (PROV, "prov.")):
        notify = dns.message.make_query(lp.ZONE, "SOA")
        notify.flags = dns.flags.AA
        notify.set_opcode(dns.opcode.NOTIFY)
        notify.answer.append(_soa((before + 100) % 2**32))
        if keyring is not None:
            notify.use_tsig(keyring, keyname=keyname)
        response = dns.query.udp(notify, PRIMARY, port=server.port, timeout=5, source=OUTSIDE)
        assert response.rcode() == dns.rcode.NOTIMP and response.had_tsig == (keyring is not None), response
    assert server.serial() == before
    new = server.log_text()[len(log_before):]
    assert "AXFR" not in new and "IXFR" not in new and "Traceback" not in new, new


def test_axfr_and_ixfr_match_knot_serving_the_same_zone(server, tmp_path):
    """Differential: Knot loads our exported zone, then the export after one more change (its
    journal holds the difference); AXFR and IXFR from each carry the same records. Last in the
    file: it changes the zone."""
    before = lp.export(server.site, tmp_path / "before.zone")
    serial_before = server.serial()
    update = dns.update.UpdateMessage(lp.ZONE, keyring=PROV, keyname="prov.")
    update.add(f"pool-2.{lp.ZONE}", 60, "A", "127.0.151.51")
    update.delete(f"pool-1.{lp.ZONE}", "A")
    assert dns.query.tcp(update, PRIMARY, port=server.port, timeout=10).rcode() == dns.rcode.NOERROR
    serial = server.serial()
    served = tmp_path / "served.zone"
    served.write_bytes(before.read_bytes())
    port = free_port(KNOT)
    with secondaries.knot_primary(tmp_path / "knot", KNOT, port, lp.ZONE, served) as conf:
        lp.export(server.site, served)
        subprocess.run([require("knotc"), "-c", str(conf), "zone-reload", lp.ZONE], check=True,
                       capture_output=True, timeout=20)
        lp.until(lambda: _soa_serial(KNOT, port) == serial, "Knot to load the new serial")
        ours = {"AXFR": _xfr_messages(server)}
        ours["IXFR"] = _xfr_messages(server, "IXFR", serial_before)
        knots = {kind: list(dns.query.xfr(KNOT, lp.ZONE, rdtype=kind, serial=serial_before, port=port,
                                          timeout=10, keyring=secondaries.XFR_RING, keyname=KEY,
                                          relativize=False)) for kind in ("AXFR", "IXFR")}
    assert _steps(_records(ours["AXFR"])) == _steps(_records(knots["AXFR"]))
    steps = _steps(_records(ours["IXFR"]))
    assert steps == _steps(_records(knots["IXFR"]))
    assert len(steps) == 9 and steps[4] and steps[6], steps  # old SOA, deletions, new SOA, additions
    for messages in (*ours.values(), *knots.values()):
        assert len(messages[0].question) == 1
    for messages in ours.values():  # RFC 5936 §2.2.1: AA when NOERROR (Knot 3.2 leaves it clear)
        assert all(m.flags & dns.flags.AA for m in messages)


def _soa_serial(address: str, port: int) -> int | None:
    try:
        response = dns.query.udp(dns.message.make_query(lp.ZONE, "SOA"), address, port=port, timeout=1)
    except dns.exception.Timeout:
        return None
    return response.answer[0][0].serial if response.answer else None


def _steps(records: list[tuple]) -> list:
    """A transfer's records cut at its SOAs (RFC 1995 §4 runs, or an AXFR's body), each run
    as a set: the order inside a run is the server's choice."""
    runs: list = [[]]
    for record in records:
        if record[1] == dns.rdatatype.SOA:
            runs.append(record[2].serial)
            runs.append(set())
        else:
            runs[-1].add((record[0], record[1], record[2].to_text()))
    return runs
