"""BIND's named serves the zones our signer produced (CAPS/LOAD in generic form), and our
resolver validates identifiers through it: secure, insecure and NXDOMAIN as from our own servers."""

from __future__ import annotations

from pathlib import Path

from resolver.demo.build import build
from support import peer_servers
from support.demo_proc import resolve_json
from support.net import free_port

ADDRESS = "127.0.0.1"  # named listens only on configured addresses; lo always has this one


def _resolve(identifier: str, port: int, anchor: Path) -> tuple[int, dict]:
    return resolve_json(identifier, f"cid.={ADDRESS}", port, anchor)


def test_named_serves_our_signed_zones_and_we_validate_through_it(tmp_path: Path) -> None:
    fed = build(tmp_path / "demo", 5300)
    port = free_port(ADDRESS)
    zones = {z.name: z.file for z in fed.zones}  # one named, parent and child zones together
    with peer_servers.named(tmp_path / "named", ADDRESS, port, zones):
        code, secure = _resolve("cid:pool-7.bj.cmcc.cid", port, fed.trust_anchor)
        assert (secure["status"], secure["rcode"], code) == ("secure", "NOERROR", 0), secure
        assert secure["capabilities"]["accel_slug"] == "nvidia-h100-sxm5-80gb"
        assert [e["port"] for e in secure["endpoints"]] == [8443, 443]

        code, insecure = _resolve("cid:l4-1.plain.cid", port, fed.trust_anchor)
        assert (insecure["status"], code) == ("insecure", 0), insecure

        code, missing = _resolve("cid:nope.us-east.acme.cid", port, fed.trust_anchor)
        assert (missing["status"], missing["rcode"], code) == ("secure", "NXDOMAIN", 1), missing
