"""Unbound, given only the demo's trust anchor, validates demo identifiers (AD bit) by iterating
our authoritative servers on port 53, and agrees with our resolver on what is secure."""

from __future__ import annotations

from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from support import peer_servers
from support.demo_proc import serving_demo
from support.net import free_port

UNBOUND_ADDR = "127.0.30.1"


@pytest.fixture(scope="module")
def unbound_on_demo(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("unbound-demo")
    # Port 53: Unbound follows our referrals to glue addresses on the standard port.
    with serving_demo(base / "demo", 53) as fed:
        apex = next(z for z in fed["zones"] if z["name"] == fed["apex"])
        port = free_port(UNBOUND_ADDR)
        with peer_servers.unbound(base / "unbound", UNBOUND_ADDR, port,
                                  trust_anchor=Path(fed["trust_anchor"]),
                                  stubs={fed["apex"]: [f"{apex['address']}@53"]}):
            yield fed, port


def ask(port: int, name: str, rdtype: str, cd: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, want_dnssec=True)
    if cd:
        query.flags |= dns.flags.CD
    return dns.query.udp(query, UNBOUND_ADDR, port=port, timeout=10)


def test_unbound_validates_caps_of_demo_identifier(unbound_on_demo) -> None:
    _, port = unbound_on_demo
    response = ask(port, "pool-7.bj.cmcc.cid.", "TYPE65380")
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AD, response.to_text()
    caps = [rrset for rrset in response.answer if rrset.rdtype == 65380]
    assert caps and caps[0][0].data.value["accel_vendor"] == "nvidia"


def test_unbound_proves_nxdomain_and_insecure_delegation(unbound_on_demo) -> None:
    _, port = unbound_on_demo
    missing = ask(port, "nope.bj.cmcc.cid.", "SVCB")
    assert missing.rcode() == dns.rcode.NXDOMAIN
    assert missing.flags & dns.flags.AD, missing.to_text()
    unsigned = ask(port, "l4-1.plain.cid.", "A")
    assert unsigned.rcode() == dns.rcode.NOERROR and unsigned.answer
    assert not unsigned.flags & dns.flags.AD  # insecure: answered, never marked authentic
