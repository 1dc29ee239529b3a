"""Replication (issue 9): AXFR/IXFR out of `cid serve auth --config` with TSIG and an ACL, NOTIFY to
NSD, Knot and BIND as secondaries (real processes on loopback), a leased registration carried by
each and its expiry too. How long each secondary took is printed (target ≤ 2 s), not asserted."""

from __future__ import annotations

import contextlib
import subprocess
import time

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.exception
import dns.tsigkeyring
import dns.xfr

from support import live_primary as lp
from support import secondaries
from support.misbehaving_hierarchy import loopback_address
from support.net import free_port
from support.peers import require

PRIMARY = "127.0.151.1"
PORT = free_port(PRIMARY)
NSD, KNOT, BIND = "127.0.151.2", "127.0.151.3", "127.0.151.4"
XFR = secondaries.XFR_RING
WRONG = dns.tsigkeyring.from_text({secondaries.XFR_KEY: lp.OTHER_SECRET})
IDENT = f"pool-1.{lp.ZONE}"
BROWSE = (f"_compute.{lp.ZONE}", f"_region-cn-bj._sub._compute.{lp.ZONE}")


def _site(tmp_path, notify=()):
    return secondaries.primary_site(tmp_path / "site", PRIMARY, PORT, notify)


def _axfr(address, port, keyring=None, keyname=None):
    return secondaries.zone_records(address, port, keyring, keyname)


def _register(lease: int) -> tuple[float, float]:
    """`cid register` of IDENT (SVCB, A, CAPS and the browse PTRs the server adds): when it was
    sent (the lease starts after that) and when its acknowledgement was in."""
    sent = time.monotonic()
    out = lp.cid("register", f"cid:{IDENT.rstrip('.')}", "--server", f"{PRIMARY}:{PORT}", "--key", lp.PROV,
                 "--endpoint", "h2://127.0.151.50:8443", "--caps", "accel_kind=gpu", "region=cn-bj",
                 "--lease", str(lease))
    assert out.returncode == 0 and f"lease {lease} s granted" in out.stdout, out.stdout + out.stderr
    return sent, time.monotonic()


def _served(address: str, name: str = IDENT, rdtype: str = "SVCB") -> bool:
    query = dns.message.make_query(name, rdtype, want_dnssec=True)
    try:
        response = dns.query.udp(query, address, port=PORT, timeout=0.5)
    except Exception:  # noqa: BLE001 - not up yet
        return False
    types = {r.rdtype for r in response.answer}
    return dns.rdatatype.RdataType.make(rdtype) in types and dns.rdatatype.RRSIG in types


def _wait(predicate, limit: float = 20.0) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if predicate():
            return time.monotonic()
        time.sleep(0.02)
    return None


def test_transfers_need_the_key(tmp_path):
    site = _site(tmp_path)
    running = lp.start(site)
    try:
        records = _axfr(PRIMARY, PORT, XFR, secondaries.XFR_KEY)
        assert any(r[1] == dns.rdatatype.RRSIG for r in records) and len(records) > 10
        for keyring, keyname in ((None, None), (WRONG, secondaries.XFR_KEY)):
            try:
                _axfr(PRIMARY, PORT, keyring, keyname)
            except Exception as exc:  # noqa: BLE001 - refused or the MAC fails: either way no zone
                assert "REFUSED" in str(exc) or "NOTAUTH" in str(exc) or "BADSIG" in str(exc) \
                    or isinstance(exc, (dns.xfr.TransferError, dns.tsig.PeerError, dns.exception.DNSException)), exc
            else:
                raise AssertionError("transfer without the right key succeeded")
        dig = subprocess.run([require("dig"), f"@{PRIMARY}", "-p", str(PORT), lp.ZONE, "AXFR"],
                             capture_output=True, text=True, timeout=10)
        assert "Transfer failed" in dig.stdout
        bad = subprocess.run([require("dig"), f"@{PRIMARY}", "-p", str(PORT), lp.ZONE, "AXFR",
                              "-y", f"hmac-sha256:{secondaries.XFR_KEY}:{lp.OTHER_SECRET}"],
                             capture_output=True, text=True, timeout=10)
        assert "SOA" not in bad.stdout.split("ANSWER")[0] or "failed" in bad.stdout.lower()
        # IXFR over UDP: the current SOA alone; from an up-to-date serial: the SOA alone.
        serial = running.serial()
        query = dns.message.make_query(lp.ZONE, "IXFR")
        query.authority.append(dns.rrset.from_text(lp.ZONE, 0, "IN", "SOA", f". . {serial - 1} 0 0 0 0"))
        query.use_tsig(XFR, keyname=secondaries.XFR_KEY)
        response = dns.query.udp(query, PRIMARY, port=PORT, timeout=5)
        assert [r.rdtype for r in response.answer] == [dns.rdatatype.SOA]
    finally:
        lp.stop(running)


def test_nsd_knot_bind_carry_a_registration_and_its_expiry(tmp_path):
    """Only NOTIFY can make them transfer: the zone's SOA refresh is 3600 s. Each must take the
    change by IXFR (RFC 1995), the registration and then its expiry (the records, browse PTRs,
    NSEC and RRSIG changes), and end with the zone `cid zone export` writes."""
    site = _site(tmp_path, notify=(NSD, KNOT, BIND))
    running = lp.start(site)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(loopback_address(BIND))
            peers = {
                "nsd": NSD, "knot": KNOT, "bind": BIND,
            }
            stack.enter_context(secondaries.nsd(tmp_path / "nsd", NSD, PORT, lp.ZONE, PRIMARY, PORT))
            stack.enter_context(secondaries.knot(tmp_path / "knot", KNOT, PORT, lp.ZONE, PRIMARY, PORT))
            stack.enter_context(secondaries.bind(tmp_path / "bind", BIND, PORT, lp.ZONE, PRIMARY, PORT))
            for kind, address in peers.items():
                assert _wait(lambda a=address: _served(a, f"ns1.{lp.ZONE}", "A"), 30), f"{kind} never loaded the zone"
            sent, acked = _register(lease=4)
            seen = {}
            for kind, address in peers.items():
                at = _wait(lambda a=address: _served(a) and all(_served(a, b, "PTR") for b in BROWSE))
                assert at is not None, f"{kind} never served the registration\n{running.log_text()[-3000:]}"
                seen[kind] = at - acked
            ours = _axfr(PRIMARY, PORT, XFR, secondaries.XFR_KEY)
            for kind, address in peers.items():
                assert _axfr(address, PORT, XFR, secondaries.XFR_KEY) == ours, f"{kind}'s copy differs"
            expires = sent + 4  # at the latest
            gone = {}
            for kind, address in {"primary": PRIMARY, **peers}.items():
                at = _wait(lambda a=address: not _served(a) and not any(_served(a, b, "PTR") for b in BROWSE), 30)
                assert at is not None, f"{kind} still serves the expired registration"
                gone[kind] = at - expires
            exported = secondaries.file_records(lp.export(site, tmp_path / "export.zone"))
            assert _axfr(PRIMARY, PORT, XFR, secondaries.XFR_KEY) == exported
            for kind, address in peers.items():
                copy = _axfr(address, PORT, XFR, secondaries.XFR_KEY)
                assert copy == exported, f"{kind}'s copy after the expiry differs: {copy ^ exported}"
            print("registration visible after the acknowledgement (s):",
                  {k: round(v, 3) for k, v in seen.items()})
            print("expiry gone at most this long after the lease ended (s):", {k: round(v, 3) for k, v in gone.items()})
            print("expiry gone from each secondary after the primary (s):",
                  {k: round(v - gone["primary"], 3) for k, v in gone.items() if k != "primary"})
        log = running.log_text()
        for kind, address in peers.items():
            # Bootstrap by AXFR, then the registration and the expiry each by IXFR, never AXFR.
            mine = [line for line in log.splitlines() if f" to {address} key" in line]
            assert sum("IXFR serial" in line for line in mine) >= 2, (kind, mine)
            assert sum(" AXFR," in line or "whole zone" in line for line in mine) == 1, (kind, mine)
        lp.verify(tmp_path / "export.zone")
    finally:
        lp.stop(running)
