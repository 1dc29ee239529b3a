"""`cid find` as users run it, against a signed hierarchy with browse names on loopback."""

from __future__ import annotations

import json
import subprocess

import pytest

from resolver.cli.main import main
from support import discovery_zones as D
from support import federation as F


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    fed = D.build()
    anchor = tmp_path_factory.mktemp("ta") / "cid.anchor"
    anchor.write_text(fed.anchor_text)
    with F.serving_in_thread(fed) as port:
        yield fed, port, str(anchor)


def cid(*args, timeout=60):
    return subprocess.run(["cid", *args], capture_output=True, text=True, timeout=timeout)


def opts(served):
    _, port, anchor = served
    return ["--hint", f"cid.=127.0.0.2:{port}", "--port", str(port), "--trust-anchor", anchor,
            "--timeout", "1"]


def test_find_human_output_one_line_per_identifier(served):
    p = cid("find", "cid:cid", *opts(served))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [
        "cid:cpu-box.bj.cmcc.cid", "cid:pool-7.bj.cmcc.cid", "cid:hinted.bj.cmcc.cid", "cid:pool-1.open.cid"]
    assert lines[0].split()[1:4] == ["secure", "cpu", "cpu"]   # status, kind, cpu free/count
    assert "40/64" in lines[0] and "192.0.2.90:9000" in lines[0]
    assert lines[1].split()[1:4] == ["secure", "gpu", "free"] and "3/8" in lines[1]
    assert lines[3].split()[1] == "insecure"
    # the summary and every skipped item go to standard error, one line each
    assert "status insecure" in p.stderr
    assert "; skipped ghost.bj.cmcc.cid.: listed but does not exist" in p.stderr


def test_find_json_is_a_list_of_results(served):
    p = cid("find", "cid.", "--where", "accel_kind=gpu", "--where", "accel_free>=1", "--json", *opts(served))
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert isinstance(doc, list) and [d["identifier"] for d in doc] == ["cid:pool-7.bj.cmcc.cid"]
    assert doc[0]["status"] == "secure" and doc[0]["load"]["accel_free"] == 3


def test_find_sort_and_limit(served):
    # -KEY reverses (written --sort=-KEY, as argparse takes "-x" for an option); identifiers
    # without the key come last in both directions, ties by free capacity.
    p = cid("find", "cid", "--sort=-accel_count", "--limit", "1", *opts(served))
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[0] == "cid:pool-7.bj.cmcc.cid" and len(p.stdout.splitlines()) == 1
    assert "accel_count=8" not in p.stdout  # a shown figure is not repeated as KEY=VALUE
    # a sort key the line does not show anyway is added as KEY=VALUE
    lines = cid("find", "cid", "--sort", "util", *opts(served)).stdout.splitlines()
    assert lines[0].startswith("cid:pool-7.bj.cmcc.cid") and lines[0].endswith("util=0.5")
    assert all(line.endswith("util=-") for line in lines[1:])
    p = cid("find", "cid", "--sort", "accel_count", "--limit", "2", "--json", *opts(served))
    doc = json.loads(p.stdout)
    assert [d["identifier"] for d in doc] == ["cid:pool-7.bj.cmcc.cid", "cid:cpu-box.bj.cmcc.cid"]


def test_find_nothing_matched_exits_1(served):
    p = cid("find", "cid:cmcc.cid", "--where", "accel_free>100", "--json", *opts(served))
    assert p.returncode == 1 and json.loads(p.stdout) == []
    p = cid("find", "cid:nowhere.cid", *opts(served))
    assert p.returncode == 1 and p.stdout == "" and "0 shown" in p.stderr


@pytest.mark.parametrize("args, message", [
    (["cid:bad..cid"], "empty label"),
    (["cid", "--where", "accel_free>>1"], "KEY OP VALUE"),
    (["cid", "--where", "accel_free"], "KEY OP VALUE"),
    (["cid", "--sort", "a b"], "not a sort key"),
    (["cid", "--limit", "0"], "--limit 0"),
    (["cid", "--limit", "x"], "invalid int"),
    (["cid", "--deadline", "0"], "--deadline"),
])
def test_find_usage_errors_exit_2_with_one_line(served, args, message, capsys):
    # In-process (no query is sent before these are caught); argparse's own errors exit 2.
    try:
        code = main(["find", *args, *opts(served)])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
