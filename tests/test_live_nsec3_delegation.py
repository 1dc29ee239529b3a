"""A child delegated by signed UPDATE from a parent signed with NSEC3 (issue 8/9): `cid serve auth
--config` serves a parent that `dnssec-signzone -3` signed; `cid zone delegate --server --key`
adds the child (NS, glue, DS) live, which the server's NSEC3 upkeep puts in the chain (RFC 5155
§7.1: glue kept out, NS DS RRSIG at the delegation point). Our resolver and Unbound then
validate an NXDOMAIN under the parent and the child's data through the secure delegation; the
same after a restart (the journal replayed); `cid zone export` passes `dnssec-verify`. Every
server is on port 53 of its own loopback address, so resolvers follow the referral's glue."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.zone

from resolver import Resolver
from support import live_primary, peer_servers
from support.live_primary import cid
from support.net import free_port
from support.peers import run

PARENT, CHILD = "n3.cid.", "c.n3.cid."
P_ADDR, C_ADDR, UNBOUND = "127.0.159.1", "127.0.159.2", "127.0.159.10"
SECRET = "bnNlYzMtZGVsZWdhdGlvbi1rZXktZm9yLXRlc3RzLW8="
GRANT = f'[[key]]\nname = "deleg."\nsecret = "{SECRET}"\n  [[key.grant]]\n  zone = "{PARENT}"\n'
SALT, ITERATIONS = "c0ffee", 2


def nsec3_site(directory: Path) -> live_primary.Site:
    """The live-primary site (its keys, config, trust anchor), its zone re-signed by BIND with
    NSEC3 and those keys; an empty non-terminal (b.deep) and an unsigned delegation in it."""
    site = live_primary.build(directory, P_ADDR, 53, zone=PARENT, extra=GRANT,
                              extra_records=f"a.b.deep.{PARENT} IN TXT \"deep\"\n")
    plain = directory / f"{PARENT.rstrip('.')}.zone"
    run(["dnssec-signzone", "-S", "-K", str(directory / "keys"), "-d", str(directory), "-z", "-3", SALT,
         "-H", str(ITERATIONS), "-o", PARENT, "-f", str(site.zone_file), str(plain)])
    return site


def lookup(name: str, anchor: Path):
    """Our resolver, hinted at the parent only, trusting the parent's DS."""
    async def go():
        async with Resolver(hints={PARENT: [P_ADDR]}, trust_anchor=anchor, port=53) as r:
            return await r.lookup(name, "A", policy=False)
    return asyncio.run(go())


def assert_validates(anchor: Path, unbound) -> None:
    """NXDOMAIN under the parent (NSEC3 proof) and the child's NS address through its DS,
    both secure for our resolver and for Unbound (AD)."""
    for name, rcode in ((f"nowhere.{PARENT}", "NXDOMAIN"), (f"nope.b.deep.{PARENT}", "NXDOMAIN"),
                        (f"ns1.{CHILD}", "NOERROR")):
        ours = lookup(name, anchor)
        assert ours.rcode == rcode and ours.status.value == "secure", (name, ours.rcode, ours.status, ours.why)
        unbound.flush(PARENT)
        response = dns.query.udp(dns.message.make_query(name, "A", want_dnssec=True), UNBOUND,
                                 port=unbound.port, timeout=10)
        assert dns.rcode.to_text(response.rcode()) == rcode, response.to_text()
        assert response.flags & dns.flags.AD, response.to_text()


def delegation_nsec3(text: str) -> list[str]:
    """The type lists of the NSEC3 records of an exported zone whose bitmap holds NS."""
    zone = dns.zone.from_text(text, PARENT, relativize=False, check_origin=False)
    return sorted(" ".join(rd.to_text().split()[5:]) for _, rds in zone.iterate_rdatasets("NSEC3")
                  for rd in rds if " NS " in f" {rd.to_text()} ")


def check_export(site: live_primary.Site, out: Path) -> None:
    exported = live_primary.export(site, out)
    run(["dnssec-verify", "-q", "-z", "-o", PARENT, str(exported)])
    live_primary.verify(exported)
    # The delegation point's NSEC3 lists NS DS RRSIG only (RFC 5155 §7.1); the unsigned
    # delegation child.<parent> BIND signed has NS alone; the glue has none (dnssec-verify).
    text = exported.read_text()
    assert delegation_nsec3(text) == ["NS", "NS DS RRSIG", "NS SOA RRSIG DNSKEY NSEC3PARAM"]
    # At the cut only the DS is signed; the glue not at all (RFC 4035 §2.2).
    zone = dns.zone.from_text(text, PARENT, relativize=False, check_origin=False)
    assert [rds.covers for rds in zone[CHILD] if rds.rdtype == dns.rdatatype.RRSIG] == [dns.rdatatype.DS]
    assert not [rds for rds in zone[f"ns1.{CHILD}"] if rds.rdtype == dns.rdatatype.RRSIG]


def test_delegate_child_of_nsec3_parent_validates_and_survives_restart(tmp_path: Path) -> None:
    site = nsec3_site(tmp_path / "parent")
    anchor = site.trust_anchor()
    child_dir = tmp_path / "child"
    with live_primary.serve(site) as running:
        done = cid("zone", "delegate", PARENT, CHILD, "--ns", f"ns1={C_ADDR}", "--dir", str(child_dir),
                   "--server", site.server, "--key", f"deleg.:{SECRET}")
        assert done.returncode == 0, done.stderr
        assert running.rrset(CHILD, "DS")
        config = child_dir / f"{CHILD.rstrip('.')}.toml"
        with peer_servers.process([sys.executable, "-m", "resolver", "serve", "auth", "--config", str(config)],
                                  child_dir / "serve.log") as child:
            peer_servers.wait_until_answers(C_ADDR, 53, CHILD, child, child_dir / "serve.log", timeout=30)
            with peer_servers.unbound(tmp_path / "unbound", UNBOUND, free_port(UNBOUND), trust_anchor=anchor,
                                      stubs={PARENT: [f"{P_ADDR}@53"]}) as unbound:
                assert_validates(anchor, unbound)
                live_primary.stop(running)
                check_export(site, tmp_path / "stopped.zone")
                with live_primary.serve(site):  # the journal replayed at start
                    assert_validates(anchor, unbound)
    check_export(site, tmp_path / "restarted.zone")
