"""README.md's admin walkthrough ("From an empty machine to a live namespace"), run as it
stands: its ``sh`` blocks, in order, in one bash (``set -eu``), in an empty directory, with real
`cid serve auth --config`, `cid zone delegate` to the live parent, SIGHUP, `cid register
--keepalive`, NSD as secondary and dig. So the README
cannot rot: a command that stops working fails this test.

Changed for the run only: the port (a free one instead of 5300), ``pip install -e .`` skipped
(done by the test set-up), and a line annotated ``# exit N`` must exit N (the walkthrough shows
a provider's disappearance by commands that fail)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from support.net import free_port_on
from support.peers import require

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## From an empty machine to a live namespace"
PRIMARY, SECONDARY = "127.0.153.1", "127.0.153.2"  # as the README says (this helper's range)


def walkthrough(port: int) -> str:
    """The section's shell blocks as one script for ``port``."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, "the README lost its admin walkthrough"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) >= 7, blocks
    lines = ["set -eu"]
    for line in "".join(blocks).replace("5300", str(port)).splitlines():
        if line.strip() == "pip install -e .":
            continue
        expected = re.match(r"(?P<cmd>.*?)\s+# exit (?P<rc>\d+)\b", line)
        if expected:
            cmd, rc = expected["cmd"], expected["rc"]
            line = (f"rc=0; {cmd} || rc=$?; [ \"$rc\" = {rc} ] || "
                    f"{{ echo \"walkthrough: exit $rc, not {rc}: {cmd.replace(chr(34), '')}\" >&2; exit 97; }}")
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    nsd = require("nsd")
    require("dig")
    port = free_port_on([PRIMARY, SECONDARY])
    script = walkthrough(port)
    (tmp_path / "walkthrough.sh").write_text(script)
    env = {k: v for k, v in os.environ.items() if k != "CID_CONFIG"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), str(Path(nsd).parent), env.get("PATH", "")])
    proc = subprocess.Popen(["bash", str(tmp_path / "walkthrough.sh")], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"walkthrough did not finish in 120 s\n{out}\n{err}")
    finally:
        try:  # whatever it left running (a failed step skips its kill line)
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    ops = tmp_path / "ops"
    logs = "".join(f"\n--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                   for p in (ops / "primary.log", ops / "provider.log", ops / "nsd" / "nsd.log") if p.is_file())
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}{logs}"
    assert "status: secure" in out and "cid:pool-1.ops.example.cid" in out, out
    assert "2 namespace(s) searched, 1 identifier(s) listed, 1 matched" in err, err  # find descended
    assert re.search(r"pool-1\.ops\.example\.cid\.\s+\d+\s+IN\s+RRSIG\s+SVCB ", out), out  # NSD served it signed
    assert "delegated" in err + out or "added" in err + out, err  # cid zone delegate's report
    assert (ops / "ops.example.cid.now").is_file()
    assert "pool-1" not in (ops / "ops.example.cid.now").read_text()  # gone from the journaled zone
