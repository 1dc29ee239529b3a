"""`cid demo` end to end as a newcomer runs it, and the zones it signs checked by peer tools."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.net import free_port
from support.peers import run


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    directory = tmp_path_factory.mktemp("demo") / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "resolver", "demo", "--dir", str(directory),
         "--port", str(free_port("127.0.10.1"))],
        capture_output=True, text=True, timeout=120)
    return proc, directory


def test_demo_resolves_samples_as_expected(demo_run) -> None:
    proc, _ = demo_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "UNEXPECTED" not in proc.stdout
    out = proc.stdout
    assert "pool-7.bj.cmcc.cid" in out and "secure" in out and "insecure" in out
    assert "NXDOMAIN" in out
    # one provider stops heartbeating and its lease runs out: gone from answers and from find
    assert "registered 21 providers by signed UPDATE" in out
    gone = [line for line in out.splitlines() if "l4-edge.bj.cmcc.cid gone" in line]
    assert gone and gone[0].startswith("--- ok"), out
    assert "resolve: NXDOMAIN (secure); cid find cid:bj.cmcc.cid: 5 listed (was 6)" in out


def test_federation_json_describes_every_zone(demo_run) -> None:
    _, directory = demo_run
    fed = json.loads((directory / "federation.json").read_text())
    assert fed["apex"] == "cid."
    assert Path(fed["trust_anchor"]).read_text().startswith("cid.")
    names = [z["name"] for z in fed["zones"]]
    assert {"cid.", "cmcc.cid.", "acme.cid.", "plain.cid.", "bj.cmcc.cid."} <= set(names)
    addresses = [z["address"] for z in fed["zones"]]
    assert len(set(addresses)) == len(addresses), "each zone has its own server address"
    assert all(ipaddress.ip_address(a).is_loopback for a in addresses)
    assert all(Path(z["file"]).is_file() for z in fed["zones"])
    assert len(fed["identifiers"]) >= 20
    assert all(i.startswith("cid:") for i in fed["identifiers"])
    assert [z["signed"] for z in fed["zones"]].count(False) == 1
    for zone in fed["zones"]:  # BRIEF §3: the config `cid serve auth --config` serves, its TSIG keys
        assert Path(zone["config"]).is_file()
        assert all(set(k) == {"name", "algorithm", "secret"} for k in zone["keys"])
    assert sum(bool(z["keys"]) for z in fed["zones"]) == 5  # every zone that lists compute


def test_every_signed_demo_zone_passes_dnssec_verify(demo_run) -> None:
    _, directory = demo_run
    fed = json.loads((directory / "federation.json").read_text())
    signed = [z for z in fed["zones"] if z["signed"]]
    assert len(signed) >= 6
    for zone in signed:
        out = run(["dnssec-verify", "-o", zone["name"], zone["file"]])
        assert "Zone fully signed" in out.stdout + out.stderr
        run(["ldns-verify-zone", zone["file"]])


def test_demo_records_follow_the_key_registry() -> None:
    from resolver.demo.inventory import namespaces
    from resolver.records import registry

    for ns in namespaces():
        for res in ns.resources:
            assert registry.validate_caps(res.caps) == [], res.label
            assert registry.validate_load({**res.load, "ts": 1}) == [], res.label


def test_demo_publishes_browse_names(demo_run) -> None:
    _, directory = demo_run
    fed = json.loads((directory / "federation.json").read_text())
    zones = {z["name"]: z for z in fed["zones"]}
    bj, apex = zones["bj.cmcc.cid."], zones["cid."]
    text = Path(bj["file"]).read_text()
    assert "_accel-nvidia-h100-sxm5-80gb._sub._compute.bj.cmcc.cid." in text
    # the file is the live zone exported after the run: the expired provider is gone from it
    assert "pool-7.bj.cmcc.cid." in text and "l4-edge" not in text
    assert "_children._compute.cid." in Path(apex["file"]).read_text()


def test_second_demo_run_reuses_keys_and_trust_anchor(tmp_path: Path) -> None:
    from resolver.demo.build import build

    first = build(tmp_path, 5300)
    anchor = first.trust_anchor.read_text()
    keys = sorted(p.name for p in (tmp_path / "keys").iterdir())
    second = build(tmp_path, 5300)
    assert second.trust_anchor.read_text() == anchor
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == keys
    assert len(keys) == 4 * 7  # KSK + ZSK, .key + .private, for each of the 7 signed zones


def test_demo_writes_a_client_configuration(demo_run) -> None:
    from resolver.client import Resolver

    _, directory = demo_run
    config = directory / "config.toml"
    r = Resolver.from_config(config)  # the demo resolved its samples through this very file
    fed = json.loads((directory / "federation.json").read_text())
    apex = next(z for z in fed["zones"] if z["name"] == fed["apex"])
    assert r.port == apex["port"] and r.validation == "on" and not r.require_secure
    assert [str(z) for z in r.trust_anchor.zones] == ["cid."]
    assert f"export CID_CONFIG={config}" in config.read_text()


def test_demo_serve_prints_the_one_export_line_the_readme_examples_need(tmp_path: Path) -> None:
    import shlex
    import signal
    import threading
    import time

    port = free_port("127.0.10.1")
    proc = subprocess.Popen([sys.executable, "-m", "resolver", "demo", "--serve", "--dir", str(tmp_path / "out"),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not any(line.startswith("Ctrl-C stops.") for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        exports = [line.strip() for line in lines if line.strip().startswith("export ")]
        assert len(exports) == 1 and exports[0].startswith("export CID_CONFIG="), "".join(lines)
        cid = f"{shlex.quote(sys.executable)} -m resolver"

        def shell(command: str) -> subprocess.CompletedProcess:
            # A fresh shell where the user pasted the export line; no other set-up, no flags.
            env = {k: v for k, v in __import__("os").environ.items() if k != "CID_CONFIG"}
            return subprocess.run(["bash", "-c", f"{exports[0]} && cd / && {command}"], capture_output=True,
                                  text=True, timeout=60, env=env)

        # Every command printed under "then try:", as printed (cid as this interpreter), exits 0.
        at = next(i for i, line in enumerate(lines) if line.startswith("then try"))
        tries = [line.strip() for line in lines[at + 1:] if line.startswith("  ")]
        assert len(tries) >= 6 and any(t.startswith("dig ") for t in tries), tries
        assert not any("[" in t.split("--caps")[0] for t in tries), tries  # nothing to edit first
        for command in tries:
            p = shell(cid + command[3:] if command.startswith("cid ") else command)
            assert p.returncode == 0 and p.stdout, (command, p.stdout, p.stderr)
            if command.startswith("dig "):
                assert "status: NOERROR" in p.stdout and "TYPE65380" in p.stdout, p.stdout
        assert "l4-edge.bj.cmcc.cid" in p.stdout, p.stdout  # the last find sees it back
        p = shell(f"{cid} resolve cid:pool-7.bj.cmcc.cid")
        assert "status: secure" in p.stdout, p.stdout
        # The README's "Using it" commands, as written (with the demo's port), after the one export.
        readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
        block = readme.split("## Using it", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
        commands = [line.split("#", 1)[0].replace("[--json]", "").replace("5300", str(port)).strip()
                    for line in block.splitlines() if line.startswith("cid ") and not line.startswith("cid demo")]
        assert len(commands) >= 3 and not any("--hint" in c or "--trust-anchor" in c for c in commands), commands
        for command in commands:
            p = shell(cid + command[3:])
            assert p.returncode == 0 and p.stdout, (command, p.stdout, p.stderr)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
