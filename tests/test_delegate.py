"""`cid zone delegate` / `cid zone undelegate` (issue 9): a child namespace made and delegated
from a parent that is a master file, or a live primary changed by signed UPDATE (ours, BIND, Knot),
then validated through parent → child by our resolver and by Unbound, found by `cid find`
through `_children`, and gone (NXDOMAIN, secure) after undelegation. Every server is real and
on port 53 of its own loopback address, so resolvers follow the referral's glue as on the
Internet."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from resolver import Resolver
from resolver.auth import authconfig
from support import live_primary, peer_servers, update_primaries
from support.live_primary import cid
from support.misbehaving_hierarchy import loopback_address
from support.net import free_port

SECRET = "ZGVsZWdhdGlvbi1rZXktZm9yLXRlc3RzLW9ubHktMzI="
WRONG = "d3Jvbmctc2VjcmV0LWZvci10aGUtZGVsZWdhdGlvbi0="
UNBOUND = "127.0.152.10"


def parent_zone_text(zone: str, address: str) -> str:
    return (f"$TTL 300\n{zone} IN SOA ns1.{zone} hostmaster.{zone} 1 3600 600 86400 60\n"
            f"{zone} IN NS ns1.{zone}\nns1.{zone} IN A {address}\n")


@contextlib.contextmanager
def serving(log: Path, address: str, *args: str, zone: str) -> Iterator[subprocess.Popen]:
    """`cid serve auth ARGS` on ADDRESS:53, until it answers for ``zone``."""
    with peer_servers.process([sys.executable, "-m", "resolver", "serve", "auth", *args], log) as proc:
        peer_servers.wait_until_answers(address, 53, zone, proc, log, timeout=30)
        yield proc


def lookup(parent: str, address: str, anchor: Path, name: str, rdtype: str = "A"):
    """Our resolver, hinted at the parent only, trusting the parent's DS."""
    async def run():
        async with Resolver(hints={parent: [address]}, trust_anchor=anchor, port=53) as r:
            return await r.lookup(name, rdtype, policy=False)
    return asyncio.run(run())


def assert_secure(parent: str, address: str, anchor: Path, name: str, unbound=None) -> None:
    ours = lookup(parent, address, anchor, name)
    assert ours.rcode == "NOERROR" and ours.rrset is not None, (ours.rcode, ours.why)
    assert ours.status.value == "secure", ours.why
    if unbound is not None:
        unbound.flush(parent)
        response = dns.query.udp(dns.message.make_query(name, "A", want_dnssec=True), UNBOUND,
                                 port=unbound.port, timeout=10)
        assert response.rcode() == dns.rcode.NOERROR and response.answer, response.to_text()
        assert response.flags & dns.flags.AD, response.to_text()


def assert_gone(parent: str, address: str, anchor: Path, name: str, unbound=None) -> None:
    ours = lookup(parent, address, anchor, name)
    assert ours.rcode == "NXDOMAIN" and ours.status.value == "secure", (ours.rcode, ours.status, ours.why)
    if unbound is not None:
        unbound.flush(parent)
        response = dns.query.udp(dns.message.make_query(name, "A", want_dnssec=True), UNBOUND,
                                 port=unbound.port, timeout=10)
        assert response.rcode() == dns.rcode.NXDOMAIN, response.to_text()
        assert response.flags & dns.flags.AD, response.to_text()


def find_namespaces(parent: str, address: str, anchor: Path) -> list[str]:
    """`cid find PARENT --json`: the namespaces it searched (its summary on stderr)."""
    proc = cid("find", parent, "--json", "--hint", f"{parent}={address}", "--trust-anchor", str(anchor),
               "--port", "53")
    summary = json.loads(proc.stderr.strip().splitlines()[-1])
    return summary["namespaces"]


def delegate(parent: str, child: str, ns: str, directory: Path, *where: str) -> subprocess.CompletedProcess:
    return cid("zone", "delegate", parent, child, "--ns", ns, "--dir", str(directory), *where)


def serve_child(child_dir: Path, child: str, address: str):
    config = child_dir / f"{child.rstrip('.')}.toml"
    assert f'listen = ["{address}:53"]' in config.read_text()  # the glue address, from --ns
    return serving(child_dir / "serve.log", address, "--config", str(config), zone=child)


@contextlib.contextmanager
def unbound_for(workdir: Path, parent: str, address: str, anchor: Path):
    port = free_port(UNBOUND)
    with peer_servers.unbound(workdir, UNBOUND, port, trust_anchor=anchor, stubs={parent: [f"{address}@53"]}) as u:
        yield u


# --- a parent that is a master file ----------------------------------------------------------

def test_file_parent_delegate_validate_find_undelegate(tmp_path: Path) -> None:
    parent, child, p_addr, c_addr = "fp.cid.", "c.fp.cid.", "127.0.152.1", "127.0.152.2"
    source = tmp_path / "fp.zone"
    source.write_text(parent_zone_text(parent, p_addr))
    keys = tmp_path / "keys"
    keys.mkdir()
    cid("zone", "keygen", parent, "--dir", str(keys), check=True)
    cid("zone", "sign", str(source), "-K", str(keys), "--ds-out", str(tmp_path / "anchor.ds"), check=True)
    anchor = tmp_path / "anchor.ds"
    child_dir = tmp_path / "child"

    done = delegate(parent, child, f"ns1={c_addr}", child_dir, "--parent-file", str(source), "--parent-keys", str(keys))
    assert done.returncode == 0, done.stderr
    signed = Path(f"{source}.signed")
    text = signed.read_text()
    for record in (f"{child} 3600 IN NS ns1.{child}", f"ns1.{child} 3600 IN A {c_addr}", f"{child} 3600 IN DS ",
                   f"_children._compute.{parent} 3600 IN PTR {child}"):
        assert record in text
    assert f"{parent} 300 IN SOA ns1.{parent} hostmaster.{parent} 1 " not in text  # serial bumped
    live_primary.verify(signed)
    live_primary.verify(child_dir / f"{child.rstrip('.')}.zone.signed")

    # A rerun is refused (the parent delegates the child already) and changes nothing.
    before = signed.read_bytes()
    again = delegate(parent, child, f"ns1={c_addr}", tmp_path / "again", "--parent-file", str(source),
                     "--parent-keys", str(keys))
    assert again.returncode == 1 and "already delegated" in again.stderr and len(again.stderr.splitlines()) == 1
    assert signed.read_bytes() == before and not (tmp_path / "again").exists()

    with serve_child(child_dir, child, c_addr), \
            serving(tmp_path / "parent.log", p_addr, "--listen", f"{p_addr}:53", "--zone", str(signed), zone=parent), \
            unbound_for(tmp_path / "unbound", parent, p_addr, anchor) as u:
        assert_secure(parent, p_addr, anchor, f"ns1.{child}", u)
        assert child in find_namespaces(parent, p_addr, anchor)

        undone = cid("zone", "undelegate", parent, child, "--parent-file", str(source), "--parent-keys", str(keys))
        assert undone.returncode == 0, undone.stderr
        assert "left alone" in undone.stdout and (child_dir / f"{child.rstrip('.')}.zone.signed").exists()
        live_primary.verify(signed)
        assert f"{child} " not in signed.read_text() and "_children" not in signed.read_text()
    # The parent restarted on its new file: the child's names are gone, provably.
    with serving(tmp_path / "parent2.log", p_addr, "--listen", f"{p_addr}:53", "--zone", str(signed), zone=parent), \
            unbound_for(tmp_path / "unbound2", parent, p_addr, anchor) as u:
        assert_gone(parent, p_addr, anchor, f"ns1.{child}", u)


def test_file_parent_refusals(tmp_path: Path) -> None:
    parent = "rp.cid."
    source = tmp_path / "rp.zone"
    source.write_text(parent_zone_text(parent, "127.0.152.1"))
    outside = cid("zone", "delegate", parent, "x.other.cid.", "--ns", "ns1=127.0.152.9", "--parent-file", str(source),
                  "--dir", str(tmp_path / "x"))
    assert outside.returncode == 2 and "not below rp.cid." in outside.stderr
    no_glue = cid("zone", "delegate", parent, "c.rp.cid.", "--ns", "ns1", "--parent-file", str(source),
                  "--dir", str(tmp_path / "c"))
    assert no_glue.returncode == 2 and "glue" in no_glue.stderr
    no_keys = cid("zone", "delegate", parent, "c.rp.cid.", "--ns", "ns1=127.0.152.9", "--parent-file", str(source),
                  "--parent-keys", str(tmp_path), "--dir", str(tmp_path / "c"))
    assert no_keys.returncode == 1 and "no keys for rp.cid." in no_keys.stderr
    neither = cid("zone", "delegate", parent, "c.rp.cid.", "--ns", "ns1=127.0.152.9")
    assert neither.returncode == 2 and "--parent-file" in neither.stderr
    not_there = cid("zone", "undelegate", parent, "c.rp.cid.", "--parent-file", str(source))
    assert not_there.returncode == 1 and "not delegated" in not_there.stderr
    other = tmp_path / "other.zone"
    other.write_text(parent_zone_text("other.cid.", "127.0.152.1"))
    wrong_file = cid("zone", "delegate", parent, "c.rp.cid.", "--ns", "ns1=127.0.152.9", "--parent-file", str(other),
                     "--dir", str(tmp_path / "c"))
    assert wrong_file.returncode == 2 and "is the zone other.cid., not rp.cid." in wrong_file.stderr
    for proc in (outside, no_glue, no_keys, neither, not_there, wrong_file):
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "c").exists() and not (tmp_path / "x").exists()


# --- live parents: signed UPDATE -------------------------------------------------------------

def deleg_grant(zone: str) -> str:
    return f'[[key]]\nname = "deleg."\nsecret = "{SECRET}"\n  [[key.grant]]\n  zone = "{zone}"\n'


def test_live_parent_ours_by_update(tmp_path: Path) -> None:
    parent, child, p_addr, c_addr = "lp.cid.", "c.lp.cid.", "127.0.152.3", "127.0.152.4"
    site = live_primary.build(tmp_path / "parent", p_addr, 53, zone=parent, extra=deleg_grant(parent))
    key = f"deleg.:{SECRET}"
    child_dir = tmp_path / "child"
    with live_primary.serve(site) as running:
        serial = running.serial()
        wrong = delegate(parent, child, f"ns1={c_addr}", tmp_path / "wrong", "--server", site.server,
                         "--key", f"deleg.:{WRONG}")
        assert wrong.returncode == 1 and "NOTAUTH" in wrong.stderr and len(wrong.stderr.splitlines()) == 1
        assert not (tmp_path / "wrong").exists() and running.serial() == serial  # nothing made, nothing changed

        unknown = delegate(parent, child, f"ns1={c_addr}", tmp_path / "unknown", "--server", site.server,
                           "--key", f"nobody.:{SECRET}")
        assert unknown.returncode == 1 and "NOTAUTH/BADKEY" in unknown.stderr
        # prov. may change only some subtrees of the zone (support/live_primary.py): not this one.
        refused = delegate(parent, child, f"ns1={c_addr}", tmp_path / "refused", "--server", site.server,
                           "--key", live_primary.PROV)
        assert refused.returncode == 1 and "REFUSED" in refused.stderr and not (tmp_path / "refused").exists()
        assert running.serial() == serial

        done = delegate(parent, child, f"ns1={c_addr}", child_dir, "--server", site.server, "--key", key, "--zsk")
        assert done.returncode == 0, done.stderr
        assert "(KSK)" in done.stdout and "(ZSK)" in done.stdout
        # The child's config sends its future DS changes (KSK roll) to this parent with this key.
        config = authconfig.load(child_dir / f"{child.rstrip('.')}.toml")
        assert config.zones[0].parent == site.server and str(config.zones[0].parent_key) == "deleg."
        assert config.keys[0].name.to_text() == "deleg." and (child_dir / "parent.tsig").stat().st_mode & 0o077 == 0
        assert len(running.rrset(child, "DS")) == 1  # the KSK's only and running.rrset(f"_children._compute.{parent}", "PTR")
        rerun = delegate(parent, child, f"ns1={c_addr}", tmp_path / "again", "--server", site.server, "--key", key)
        assert rerun.returncode == 1 and "already delegated" in rerun.stderr

        with serve_child(child_dir, child, c_addr), \
                unbound_for(tmp_path / "unbound", parent, p_addr, site.trust_anchor()) as u:
            assert_secure(parent, p_addr, site.trust_anchor(), f"ns1.{child}", u)
            assert child in find_namespaces(parent, p_addr, site.trust_anchor())
            key_file = tmp_path / "deleg.key"  # tsig-keygen's form
            key_file.write_text(f'key "deleg." {{\n\talgorithm hmac-sha256;\n\tsecret "{SECRET}";\n}};\n')
            undone = cid("zone", "undelegate", parent, child, "--server", site.server, "--key-file", str(key_file))
            assert undone.returncode == 0, undone.stderr
            assert_gone(parent, p_addr, site.trust_anchor(), f"ns1.{child}", u)
            # The zone's own delegation (child.lp.cid., listed when it was signed) stays listed.
            listed = [rd.target.to_text() for rd in running.rrset(f"_children._compute.{parent}", "PTR")]
            assert child not in listed and f"child.{parent}" in listed, listed
        twice = cid("zone", "undelegate", parent, child, "--server", site.server, "--key", key)
        assert twice.returncode == 1 and "not delegated" in twice.stderr


def test_live_parent_restarts_after_delegation(tmp_path: Path) -> None:
    parent, child = "rs.cid.", "c.rs.cid."
    site = live_primary.build(tmp_path / "parent", "127.0.152.7", free_port("127.0.152.7"), zone=parent,
                              extra=deleg_grant(parent))
    """The delegation and its glue are one journaled change; replaying it at start (and for
    `cid zone export`) keeps the glue out of the NSEC chain, as the running server did."""
    with live_primary.serve(site):
        done = delegate(parent, child, "ns1=127.0.152.8", tmp_path / "child", "--server", site.server,
                        "--key", f"deleg.:{SECRET}")
        assert done.returncode == 0, done.stderr
    exported = live_primary.export(site, tmp_path / "exported.zone")
    live_primary.verify(exported)
    assert f"ns1.{child} 3600 IN A 127.0.152.8" in exported.read_text()
    assert f"ns1.{child} 60 IN NSEC" not in exported.read_text()
    with live_primary.serve(site) as running:
        assert running.rrset(child, "DS") and running.rrset(f"_children._compute.{parent}", "PTR")


@contextlib.contextmanager
def peer_primary(kind: str, workdir: Path, address: str, zone: str):
    """BIND (named listens only on addresses on an interface: added to lo for the while) or Knot,
    each signing online and taking updates signed with the ``upd`` key."""
    if kind == "bind":
        with loopback_address(address), update_primaries.bind(workdir, address, 53, zone=zone) as primary:
            yield primary
    else:
        with update_primaries.knot(workdir, address, 53, zone=zone) as primary:
            yield primary


@pytest.mark.parametrize("kind", ["bind", "knot"])
def test_live_parent_peer_by_update(tmp_path: Path, kind: str) -> None:
    n = {"bind": 5, "knot": 12}[kind]
    parent, child, p_addr, c_addr = f"{kind}.cid.", f"c.{kind}.cid.", f"127.0.152.{n}", f"127.0.152.{n + 1}"
    child_dir = tmp_path / "child"
    with peer_primary(kind, tmp_path / kind, p_addr, parent) as peer:
        anchor = peer.trust_anchor()
        wrong = delegate(parent, child, f"ns1={c_addr}", tmp_path / "wrong", "--server", peer.server,
                         "--key", f"upd:{WRONG}")
        assert wrong.returncode == 1 and "NOTAUTH" in wrong.stderr and not (tmp_path / "wrong").exists()
        done = delegate(parent, child, f"ns1={c_addr}", child_dir, "--server", peer.server, "--key", peer.key,
                        "--algorithm", "ecdsap256sha256")
        assert done.returncode == 0, done.stderr
        rerun = delegate(parent, child, f"ns1={c_addr}", tmp_path / "again", "--server", peer.server, "--key", peer.key)
        assert rerun.returncode == 1 and "already delegated" in rerun.stderr
        with serve_child(child_dir, child, c_addr):
            # named and knotd may sign the change a moment after acknowledging it.
            live_primary.until(lambda: lookup(parent, p_addr, anchor, f"ns1.{child}").status.value == "secure",
                               f"{kind} to sign the delegation", timeout=15, interval=0.3)
            assert_secure(parent, p_addr, anchor, f"ns1.{child}")
            assert child in find_namespaces(parent, p_addr, anchor)
            undone = cid("zone", "undelegate", parent, child, "--server", peer.server, "--key", peer.key)
            assert undone.returncode == 0, undone.stderr
            live_primary.until(lambda: lookup(parent, p_addr, anchor, f"ns1.{child}").rcode == "NXDOMAIN",
                               f"{kind} to remove the delegation", timeout=15, interval=0.3)
            assert_gone(parent, p_addr, anchor, f"ns1.{child}")
