"""Differential: the lean UPDATE reader/writer (resolver/auth/updatewire.py) against dnspython.

The same inputs go to both — UPDATE messages of every shape dnspython builds, one BIND's
nsupdate sends (captured on a loopback socket), and fuzzed copies of them re-signed so the
TSIG still verifies and the body is what was mutated. Where the lean reader accepts, dnspython
accepts with the same content; where dnspython refuses, the lean reader does too (and the
server then answers from dnspython's reading). The lean responses parse and verify under the
request's key like dnspython's, with the same header, zone, EDNS and options.
"""

from __future__ import annotations

import random
import socket
import struct
import subprocess
import time

import dns.edns
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
import pytest

from resolver.auth import updatewire
from resolver.auth.live import Request, render_response
from resolver.auth.update import Outcome
from support.net import free_port
from support.peers import require

ZONE = "ex.cid."
KEYRING = {name: dns.tsig.Key(name, secret, dns.tsig.HMAC_SHA256) for name, secret in dns.tsigkeyring.from_text(
    {"prov.": "ZOExvQuEZSD+4qOkL8jLEtwnVEVdyVlaivW3KaEIkIE=",
     "other.ex.cid.": "bmFycm93LWtleS1zZWNyZXQtZm9yLXRlc3RzLW9ubHk="}).items()}  # as Keyring.tsig_keyring
ADDRESS = "127.0.156.20"


def _update(keyname: str = "prov.", **edns) -> dns.update.UpdateMessage:
    u = dns.update.UpdateMessage(ZONE, keyring=KEYRING, keyname=dns.name.from_text(keyname),
                                 keyalgorithm=dns.tsig.HMAC_SHA256)
    if edns:
        u.use_edns(**edns)
    return u


def corpus() -> list[bytes]:
    out = []
    u = _update()
    u.add(f"u1.pool-1.{ZONE}", 30, "A", "127.0.0.1")
    out.append(u.to_wire())
    u = _update("other.ex.cid.")
    u.add(f"svc.pool-1.{ZONE}", 60, "AAAA", "2001:db8::1")
    u.add(f"svc.pool-1.{ZONE}", 60, "TXT", '"hello" "world"')
    u.add(f"_x._tcp.pool-1.{ZONE}", 60, "SRV", f"0 5 443 svc.pool-1.{ZONE}")
    u.add(f"mx.pool-1.{ZONE}", 60, "MX", f"10 svc.pool-1.{ZONE}")
    u.add(f"c.pool-1.{ZONE}", 60, "CNAME", f"svc.pool-1.{ZONE}")
    u.add(f"g.pool-1.{ZONE}", 60, "TYPE65300", r"\# 3 010203")
    out.append(u.to_wire())
    u = _update()
    u.present(f"svc.pool-1.{ZONE}")
    u.present(f"svc.pool-1.{ZONE}", "AAAA")
    u.absent(f"new.pool-1.{ZONE}")
    u.absent(f"new.pool-1.{ZONE}", "A")
    u.present(f"svc.pool-1.{ZONE}", "AAAA", "2001:db8::1")
    u.delete(f"old.pool-1.{ZONE}")
    u.delete(f"old.pool-1.{ZONE}", "A")
    u.delete(f"old.pool-1.{ZONE}", "A", "127.0.0.9")
    u.replace(f"svc.pool-1.{ZONE}", 90, "A", "127.0.0.2")
    out.append(u.to_wire())
    for options in ([], [dns.edns.GenericOption(2, struct.pack("!I", 60))],
                    [dns.edns.GenericOption(2, struct.pack("!II", 60, 600))],
                    [dns.edns.GenericOption(2, b"\x00\x01")], [dns.edns.GenericOption(12, b"\x00" * 8)],
                    [dns.edns.ECSOption("192.0.2.0", 24)], [dns.edns.GenericOption(10, b"\x01" * 8)]):
        u = _update(edns=0, payload=1232, options=options)
        u.add(f"lease.pool-1.{ZONE}", 30, "A", "127.0.0.3")
        out.append(u.to_wire())
    u = _update(edns=0, payload=300)
    u.delete(f"lease.pool-1.{ZONE}")
    out.append(u.to_wire())
    return out


def strip_tsig(wire: bytes) -> bytes:
    """The message without its last RR (the TSIG), ARCOUNT one less."""
    message = dns.message.from_wire(wire, keyring=KEYRING)
    at = len(wire) - len(message.tsig[0].to_wire()) - 10 - len(message.keyname.to_wire())
    count = struct.unpack_from("!H", wire, 10)[0]
    return wire[:10] + struct.pack("!H", count - 1) + wire[12:at]


def sign(body: bytes, keyname: str = "prov.", when: int | None = None) -> bytes:
    """``body`` with a TSIG appended, made by dnspython (time ``when``, default now)."""
    name = dns.name.from_text(keyname)
    key = KEYRING[name]
    (qid,) = struct.unpack_from("!H", body)
    template = dns.message.Message._make_tsig(name, dns.tsig.HMAC_SHA256, 0, 300, b"", qid, 0, b"")[0]
    tsig, _ = dns.tsig.sign(body, key, template, int(time.time()) if when is None else when, b"")
    rdata = tsig.to_wire()
    count = struct.unpack_from("!H", body, 10)[0]
    return (body[:10] + struct.pack("!H", count + 1) + body[12:] + name.to_wire()
            + struct.pack("!HHIH", 250, 255, 0, len(rdata)) + rdata)


def dnspython_reads(wire: bytes):
    try:
        return dns.message.from_wire(wire, keyring=KEYRING, one_rr_per_rrset=True)
    except Exception:  # noqa: BLE001
        return None


def _section(rrsets) -> list[tuple]:
    return [(r.name, int(r.rdtype), int(r.rdclass), r.deleting, r.ttl, [rd.to_wire() for rd in r]) for r in rrsets]


def assert_agree(wire: bytes) -> str:
    """Both readers on ``wire``: 'lean' (both accept, same content), 'fallback' (only dnspython
    accepts) or 'reject' (both refuse)."""
    lean = updatewire.read(wire, KEYRING)
    full = dnspython_reads(wire)
    if lean is None:
        return "fallback" if full is not None else "reject"
    assert full is not None, f"lean reader accepted what dnspython refuses: {wire.hex()}"
    assert full.opcode() == dns.opcode.UPDATE and full.had_tsig
    assert (lean.id, lean.flags) == (full.id, int(full.flags) | (dns.opcode.UPDATE << 11))
    assert (lean.zone, lean.zone_class) == (full.question[0].name, int(full.question[0].rdclass))
    assert _section(lean.prerequisite) == _section(full.prerequisite)
    assert _section(lean.update) == _section(full.update)
    assert lean.edns == full.edns
    if full.edns >= 0:
        assert lean.payload == max(512, full.payload)
    assert lean.options == [(int(o.otype), o.to_wire()) for o in full.options]
    assert (lean.keyname, lean.mac) == (full.keyname, full.mac)
    return "lean"


def test_corpus_agrees():
    # every shape is the lean reader's (a 2-byte LEASE too: Primary refuses that one after reading)
    assert {assert_agree(wire) for wire in corpus()} == {"lean"}


def test_refusals_agree():
    wire = corpus()[0]
    body = strip_tsig(wire)
    assert assert_agree(sign(body, when=int(time.time()) - 1000)) == "reject"  # BADTIME
    bad_mac = bytearray(wire)
    bad_mac[-10] ^= 1
    assert assert_agree(bytes(bad_mac)) == "reject"  # BADSIG
    unknown = dns.update.UpdateMessage(ZONE, keyring=dns.tsigkeyring.from_text({"nobody.": "AAAA"}),
                                       keyalgorithm=dns.tsig.HMAC_SHA256)
    unknown.add(f"x.{ZONE}", 30, "A", "127.0.0.1")
    assert updatewire.read(unknown.to_wire(), KEYRING) is None  # BADKEY: dnspython's refusal
    assert assert_agree(body) == "fallback"  # unsigned: refused by the dnspython path


def test_fuzzed_bodies_agree():
    rng = random.Random(2136)
    counts = {"lean": 0, "fallback": 0, "reject": 0}
    bodies = [strip_tsig(w) for w in corpus()]
    for _ in range(3000):
        body = bytearray(rng.choice(bodies))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(2, len(body))
            action = rng.random()
            if action < 0.7:
                body[at] = rng.randrange(256) if rng.random() < 0.5 else body[at] ^ (1 << rng.randrange(8))
            elif action < 0.85:
                del body[at:at + rng.randint(1, 4)]
            else:
                body[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        if len(body) < 12:
            continue
        counts[assert_agree(sign(bytes(body)))] += 1
    assert counts["lean"] > 300 and counts["reject"] > 300, counts


def _responses(wire: bytes, outcome: Outcome, lease: int | None = None) -> tuple:
    lean = updatewire.read(wire, KEYRING)
    full = dnspython_reads(wire)
    out = []
    for message in (lean, full):
        request = Request(message, None, None, False, lease)
        request.outcome = outcome
        request.granted = lease
        out.append(render_response(request))
    return out, full


@pytest.mark.parametrize("outcome, lease", [
    (Outcome(), None), (Outcome(), 60),
    (Outcome(dns.rcode.REFUSED, "key prov. may not change x.ex.cid. A", 18), None),
    (Outcome(dns.rcode.NXRRSET, "prerequisite: no A RRset", None), None)])
def test_responses_agree(outcome, lease):
    for wire in corpus():
        if updatewire.read(wire, KEYRING) is None:
            continue
        (lean, full), request = _responses(wire, outcome, lease)
        parsed = [dns.message.from_wire(w, keyring=KEYRING, request_mac=request.mac) for w in (lean, full)]
        a, b = parsed  # both verify under the key, over the request MAC
        assert (a.id, a.flags, a.rcode(), a.question, a.edns, a.payload, a.ednsflags) == \
               (b.id, b.flags, b.rcode(), b.question, b.edns, b.payload, b.ednsflags)
        assert a.options == b.options and a.answer == b.answer == [] and a.authority == b.authority == []
        ta, tb = a.tsig[0], b.tsig[0]
        assert (a.keyname, ta.algorithm, ta.fudge, ta.original_id, ta.error, ta.other) == \
               (b.keyname, tb.algorithm, tb.fudge, tb.original_id, tb.error, tb.other)


def test_nsupdate_message_agrees(tmp_path):
    """What BIND's nsupdate sends, caught on a socket that never answers."""
    port = free_port(ADDRESS)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ADDRESS, port))
    sock.settimeout(10)
    script = (f"server {ADDRESS} {port}\nzone {ZONE}\nupdate add n1.pool-1.{ZONE} 30 A 127.0.0.5\n"
              f"update add n1.pool-1.{ZONE} 30 TXT \"t\"\nupdate delete old.pool-1.{ZONE} A\nsend\n")
    proc = subprocess.Popen([require("nsupdate"), "-t", "2", "-u", "1", "-r", "0", "-y",
                             "hmac-sha256:prov.:ZOExvQuEZSD+4qOkL8jLEtwnVEVdyVlaivW3KaEIkIE="],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    try:
        proc.stdin.write(script)
        proc.stdin.close()
        wire, _ = sock.recvfrom(65535)
    finally:
        proc.kill()
        proc.wait()
        sock.close()
    assert assert_agree(wire) == "lean"
    assert len(updatewire.read(wire, KEYRING).update) == 3
