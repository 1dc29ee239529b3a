"""A hierarchy made only with peer tools is resolved and validated by `cid resolve`.

Keys and signatures come from dnssec-keygen/dnssec-signzone (one algorithm per level: Ed25519,
ECDSA P-256, RSA/SHA-256), zones are served by NSD and Knot, and CAPS/LOAD appear only in the
RFC 3597 generic form that those programs understand. Then one RRSIG is corrupted: bogus.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from resolver import records
from support import peer_servers
from support.demo_proc import resolve_json
from support.net import free_port
from support.peers import run

NSD_ADDR, KNOT_ADDR = "127.0.20.1", "127.0.20.2"
CAPS = {"accel_count": 8, "accel_model": "h100", "accel_slug": "nvidia-h100-sxm5-80gb",
        "accel_vendor": "nvidia", "region": "lab", "x-unknown-key": [1, "two"]}
LOAD = {"accel_free": 3, "timestamp": 1795000000}


def generic(mapping: dict) -> str:
    wire = records.encode(mapping)
    return f"\\# {len(wire)} {wire.hex()}"


ZONES = {
    # zone: (server address, algorithm args, body lines)
    "cid.": (NSD_ADDR, ["-a", "ED25519"], [
        "op NS ns1.op", f"ns1.op A {KNOT_ADDR}",
    ]),
    "op.cid.": (KNOT_ADDR, ["-a", "ECDSAP256SHA256"], [
        "r NS ns1.r", f"ns1.r A {NSD_ADDR}",
    ]),
    "r.op.cid.": (NSD_ADDR, ["-a", "RSASHA256", "-b", "2048"], [
        "gpu-1 SVCB 1 . alpn=h2 port=8443",
        "gpu-1 A 127.0.21.7",
        f"gpu-1 3600 TYPE65380 {generic(CAPS)}",
        f"gpu-1 15 TYPE65381 {generic(LOAD)}",
    ]),
}


def _sign_all(workdir: Path, leaf_algorithm: list[str] | None = None) -> dict[str, Path]:
    """Sign children first so each parent can include its child's dsset."""
    keydir = workdir / "keys"
    keydir.mkdir()
    signed: dict[str, Path] = {}
    for zone in ("r.op.cid.", "op.cid.", "cid."):
        address, alg, body = ZONES[zone]
        if zone == "r.op.cid." and leaf_algorithm is not None:
            alg = leaf_algorithm
        run(["dnssec-keygen", "-q", "-K", str(keydir), *alg, "-f", "KSK", "-n", "ZONE", zone])
        lines = [f"$ORIGIN {zone}", "$TTL 300",
                 "@ SOA ns1 hostmaster 1 3600 600 86400 60", "@ NS ns1", f"ns1 A {address}", *body]
        source = workdir / f"{zone}zone"
        text = "\n".join(lines) + "\n"
        for child in signed:
            if dns_parent(child) == zone:
                text += (keydir / f"dsset-{child}").read_text()
        source.write_text(text)
        out = workdir / f"{zone}signed"
        run(["dnssec-signzone", "-S", "-z", "-K", str(keydir), "-d", str(keydir), "-O", "full",
             "-o", zone, "-f", str(out), str(source)])
        signed[zone] = out
    return signed


def dns_parent(zone: str) -> str:
    return zone.split(".", 1)[1]


def _resolve(identifier: str, port: int, anchor: Path) -> tuple[int, dict]:
    return resolve_json(identifier, f"cid.={NSD_ADDR}", port, anchor)


def _knot(workdir: Path, signed: dict[str, Path], port: int):
    return peer_servers.knot(workdir, KNOT_ADDR, port, {"op.cid.": signed["op.cid."]})


def _nsd(workdir: Path, signed: dict[str, Path], port: int):
    return peer_servers.nsd(workdir, NSD_ADDR, port, {"cid.": signed["cid."], "r.op.cid.": signed["r.op.cid."]})


def _assert_validates(port: int, anchor: Path) -> dict:
    """gpu-1 is secure and gpu-2 a secure NXDOMAIN (the chain validates); gpu-1's result."""
    code, result = _resolve("cid:gpu-1.r.op.cid", port, anchor)
    assert (code, result["status"]) == (0, "secure"), result
    missing_code, missing = _resolve("cid:gpu-2.r.op.cid", port, anchor)
    assert (missing["rcode"], missing["status"], missing_code) == ("NXDOMAIN", "secure", 1)
    return result


def _corrupt_caps_signature(path: Path) -> None:
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        fields = line.split()
        if "RRSIG" in fields and fields[fields.index("RRSIG") + 1] == "TYPE65380":
            sig = fields[-1]
            mid = len(sig) // 2
            fields[-1] = sig[:mid] + ("A" if sig[mid] != "A" else "B") + sig[mid + 1:]
            lines[i] = " ".join(fields)
            path.write_text("\n".join(lines) + "\n")
            return
    raise AssertionError("no RRSIG over TYPE65380 in the signed zone")


def test_peer_signed_hierarchy_is_secure_then_bogus(tmp_path: Path) -> None:
    signed = _sign_all(tmp_path)
    anchor = tmp_path / "keys" / "dsset-cid."
    port = free_port(NSD_ADDR)
    with _knot(tmp_path / "knot", signed, port):
        with _nsd(tmp_path / "nsd", signed, port):
            result = _assert_validates(port, anchor)
            assert result["capabilities"] == CAPS  # unknown key preserved, not dropped
            assert result["load"] == LOAD
            assert result["endpoints"][0]["port"] == 8443
            assert result["endpoints"][0]["addresses"] == ["127.0.21.7"]

        _corrupt_caps_signature(signed["r.op.cid."])
        with _nsd(tmp_path / "nsd2", signed, port):
            code, result = _resolve("cid:gpu-1.r.op.cid", port, anchor)
            assert result["status"] == "bogus", result
            assert code == 1
            assert "r.op.cid" in result["why"]


@pytest.mark.parametrize("digest", ["-2"])
def test_trust_anchor_from_dsset_is_accepted(tmp_path: Path, digest: str) -> None:
    """dnssec-dsfromkey output is a valid trust anchor file for our resolver."""
    from resolver.dnssec.anchors import TrustAnchor

    run(["dnssec-keygen", "-q", "-K", str(tmp_path), "-a", "ED25519", "-f", "KSK", "-n", "ZONE", "cid."])
    key = next(tmp_path.glob("Kcid.+015+*.key"))
    ds = run(["dnssec-dsfromkey", digest, str(key)]).stdout
    (tmp_path / "ta.ds").write_text(ds)
    anchor = TrustAnchor.load(tmp_path / "ta.ds")
    assert [str(z) for z in anchor.zones] == ["cid."]


@pytest.mark.parametrize("algorithm", [["-a", "RSASHA512", "-b", "2048"], ["-a", "ECDSAP384SHA384"], ["-a", "ED448"]])
def test_leaf_signed_with_other_validator_algorithms_is_secure(tmp_path: Path, algorithm: list[str]) -> None:
    """RSA/SHA-512 (10) is a MUST for validators (RFC 8624 §3.1); ECDSA P-384 (14) and Ed448 (16)
    are accepted too: a leaf zone signed with each by BIND validates end to end."""
    signed = _sign_all(tmp_path, algorithm)
    anchor = tmp_path / "keys" / "dsset-cid."
    port = free_port(NSD_ADDR)
    with _knot(tmp_path / "knot", signed, port), _nsd(tmp_path / "nsd", signed, port):
        _assert_validates(port, anchor)
