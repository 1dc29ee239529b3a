"""`cid find` as users run it, against a signed hierarchy with browse names and a small priced
market on loopback (tests/support/discovery_zones.py): exit codes, standard output and the
summary and skipped lines on standard error."""

from __future__ import annotations

import datetime as dt
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


@pytest.fixture(scope="module")
def rates(tmp_path_factory):
    path = tmp_path_factory.mktemp("rates") / "rates.toml"
    path.write_text(f'[rates]\nbase = "USD"\ndate = {dt.date.today().isoformat()}\nCNY = 0.14\nEUR = 1.08\n')
    return str(path)


def cid(*args, timeout=60):
    return subprocess.run(["cid", *args], capture_output=True, text=True, timeout=timeout)


def opts(served):
    _, port, anchor = served
    return ["--hint", f"cid.=127.0.0.2:{port}", "--port", str(port), "--trust-anchor", anchor,
            "--timeout", "1"]


def first_words(p) -> list[str]:
    return [line.split()[0] for line in p.stdout.splitlines()]


def summary(p) -> str:
    return p.stderr.splitlines()[0]


def test_find_human_output_one_line_per_identifier(served):
    p = cid("find", "cid:cid", *opts(served))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert first_words(p) == [
        "cid:cpu-box.bj.cmcc.cid", "cid:h100-a.cmcc.cid", "cid:pool-7.bj.cmcc.cid", "cid:a100-b.cmcc.cid",
        "cid:hinted.bj.cmcc.cid", "cid:mi-c.cmcc.cid", "cid:npu-e.cmcc.cid", "cid:pool-1.open.cid"]
    assert lines[0].split()[1:4] == ["secure", "cpu", "cpu"]   # status, kind, cpu free/count
    assert "40/64" in lines[0] and "192.0.2.90:9000" in lines[0] and lines[0].endswith("age ?")  # no ts
    h100 = lines[1].split()
    assert h100[1:5] == ["secure", "nvidia-h100-sxm5-80gb", "free", "4/8"] and "21.5 CNY/h" in lines[1]
    assert h100[-2] == "age" and h100[-1].endswith("s") and int(h100[-1][:-1]) >= D.FRESH_AGE
    assert lines[5].endswith("(stale)") and "free ?/8" in lines[5]  # mi-c: its LOAD is not live
    assert lines[6].endswith("age -")                                # npu-e has no LOAD
    assert lines[7].split()[1] == "insecure"
    # the summary states the status of what was shown and of what was skipped, then one line each
    assert summary(p).startswith("; cid:cid: 8 shown, status insecure; 5 skipped, status secure; ")
    assert "listings insecure because" in summary(p)
    assert "; skipped ghost.bj.cmcc.cid.: listed but does not exist (stale listing)" in p.stderr.splitlines()


def test_summary_never_says_insecure_when_every_result_shown_is_secure(served):
    p = cid("find", "cid", "--where", "accel_kind=gpu", *opts(served))
    assert p.returncode == 0, p.stderr
    assert summary(p).startswith("; cid:cid: 4 shown, status secure; 3 skipped; ")
    assert "status insecure" not in p.stderr and "listings insecure because" in summary(p)


def test_find_json_list_and_json_summary(served):
    p = cid("find", "cid.", "--where", "accel_kind=gpu", "--where", "accel_free>=3", "--json", *opts(served))
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert isinstance(doc, list) and [d["identifier"] for d in doc] == ["cid:h100-a.cmcc.cid", "cid:pool-7.bj.cmcc.cid"]
    assert doc[1]["status"] == "secure" and doc[1]["load"]["accel_free"] == 3
    (line,) = p.stderr.splitlines()  # the summary is one JSON object on standard error
    info = json.loads(line)
    assert info["shown"] == {"count": 2, "status": "secure"} and info["status"] == "secure"
    assert info["listing_status"] == "insecure" and info["skipped_status"] == "secure"  # mi-c: stale LOAD
    assert {"name": "mi-c.cmcc.cid.", "status": "secure"}.items() <= next(
        s for s in info["skipped"] if s["name"] == "mi-c.cmcc.cid.").items()
    assert info["conditions"] == ["accel_kind=gpu", "accel_free>=3"] and "results" not in info
    assert info["matches"][0]["identifier"] == "cid:h100-a.cmcc.cid" and info["matches"][0]["load_live"]


def test_find_sort_several_keys_and_limit(served):
    # -KEY reverses (written --sort=-KEY, as argparse takes "-x" for an option); identifiers
    # without the key come last in both directions.
    p = cid("find", "cid", "--sort=-accel_count", "--limit", "1", *opts(served))
    assert p.returncode == 0, p.stderr
    # fewest devices first: the 8-device pools, ties by live free capacity (h100-a has 4 free)
    assert first_words(p) == ["cid:h100-a.cmcc.cid"] and "accel_count=8" not in p.stdout
    p = cid("find", "cid", "--where", "accel_kind=gpu", "--sort", "accel_memory_bytes+,accel_free-", *opts(served))
    assert first_words(p) == ["cid:a100-b.cmcc.cid", "cid:h100-a.cmcc.cid", "cid:mi-c.cmcc.cid",
                              "cid:pool-7.bj.cmcc.cid"]
    # a sort key the line does not show anyway is added as KEY=VALUE
    lines = cid("find", "cid", "--where", "accel_kind=gpu", "--sort", "acme.tier", *opts(served)).stdout.splitlines()
    assert lines[0].startswith("cid:a100-b.cmcc.cid") and lines[0].endswith("acme.tier=gold")
    assert lines[1].endswith("acme.tier=silver") and all(line.endswith("acme.tier=-") for line in lines[2:])


def test_find_nothing_matched_exits_1(served):
    p = cid("find", "cid:cmcc.cid", "--where", "accel_free>100", "--json", *opts(served))
    assert p.returncode == 1 and json.loads(p.stdout) == []


def test_a_namespace_that_does_not_exist_is_said_plainly(served):
    p = cid("find", "cid:nope.cid", *opts(served))
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr == "cid find: cid:nope.cid: no such namespace (NXDOMAIN, secure)\n"
    p = cid("find", "cid:nope.cid", "--json", *opts(served))
    assert p.returncode == 1 and json.loads(p.stdout) == []
    assert json.loads(p.stderr)["rcode"] == "NXDOMAIN"


def test_prices_in_several_currencies_are_a_usage_error(served):
    p = cid("find", "cid", "--sort", "price_per_hour", *opts(served))
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == ("cid find: sorting by price_per_hour over prices in several currencies (CNY, EUR, USD): "
                        "pass --currency CODE to keep one, or --rates FILE to convert them\n")
    p = cid("find", "cid", "--need", "2", *opts(served))
    assert p.returncode == 2 and "ranking by the cost of 2 device(s)" in p.stderr and "(CNY, USD)" in p.stderr


def test_currency_keeps_one_and_lists_the_others_as_skipped(served):
    p = cid("find", "cid", "--currency", "usd", "--sort", "price_per_hour", *opts(served))
    assert p.returncode == 0, p.stderr
    assert first_words(p) == ["cid:a100-b.cmcc.cid"] and "1.9 USD/h" in p.stdout
    err = p.stderr.splitlines()
    assert "prices in USD" in err[0]
    assert "; skipped h100-a.cmcc.cid.: price in CNY, not USD (the currency kept)" in err
    assert "; skipped npu-e.cmcc.cid.: price in EUR, not USD (the currency kept)" in err


def test_rates_convert_and_need_ranks_by_cost(served, rates):
    p = cid("find", "cid", "--rates", rates, "--sort", "price_per_hour+", "--limit", "2", *opts(served))
    assert p.returncode == 0, p.stderr
    assert first_words(p) == ["cid:npu-e.cmcc.cid", "cid:a100-b.cmcc.cid"]
    assert "1.2 EUR/h (≈1.30 USD)" in p.stdout.splitlines()[0]
    assert f"prices in USD (rates of {dt.date.today().isoformat()}, {rates})" in summary(p)
    p = cid("find", "cid", "--rates", rates, "--need", "2", *opts(served))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert first_words(p) == ["cid:a100-b.cmcc.cid", "cid:h100-a.cmcc.cid", "cid:pool-7.bj.cmcc.cid"]
    assert "cost 3.80 USD/h" in lines[0] and "cost 6.02 USD/h" in lines[1] and "cost -" in lines[2]
    assert "need 2" in summary(p)
    assert any(line.startswith("; skipped mi-c.cmcc.cid.: LOAD is stale") for line in p.stderr.splitlines())
    p = cid("find", "cid", "--rates", rates, "--need", "2", "--where", "cost<=5USD", *opts(served))
    assert first_words(p) == ["cid:a100-b.cmcc.cid"]
    p = cid("find", "cid", "--currency", "CNY", "--sort", "cost-", *opts(served))  # cost of 1 device
    assert first_words(p) == ["cid:h100-a.cmcc.cid", "cid:mi-c.cmcc.cid"]
    assert "cost 21.50 CNY/h" in p.stdout and "cost 15.00 CNY/h" in p.stdout


def test_max_age_and_allow_stale(served):
    p = cid("find", "cid", "--max-age", "10min", *opts(served))
    assert p.returncode == 0, p.stderr
    assert first_words(p) == ["cid:h100-a.cmcc.cid"]
    skipped = [line for line in p.stderr.splitlines() if line.startswith("; skipped a100-b")]
    assert len(skipped) == 1 and "s old, older than the maximum age of 600 s" in skipped[0]
    p = cid("find", "cid", "--where", "accel_free>=8", *opts(served))
    assert p.returncode == 1 and "; skipped mi-c.cmcc.cid.: LOAD is stale" in p.stderr
    p = cid("find", "cid", "--where", "accel_free>=8", "--allow-stale", *opts(served))
    assert p.returncode == 0 and first_words(p) == ["cid:mi-c.cmcc.cid"]
    assert p.stdout.rstrip().endswith("(stale, allowed)") and "free 8/8" in p.stdout


def test_require_secure_skips_insecure_results_and_refuses_an_insecure_namespace(served):
    p = cid("find", "cid", "--require-secure", *opts(served))
    assert p.returncode == 0, p.stderr
    assert "cid:pool-1.open.cid" not in p.stdout and "insecure" not in p.stdout
    assert "; skipped _compute.open.cid.: listing insecure: refused by the require-secure policy" in p.stderr
    p = cid("find", "cid:open.cid", "--require-secure", *opts(served))
    assert p.returncode == 1 and p.stdout == ""
    assert len(p.stderr.splitlines()) == 1 and "--require-secure" in p.stderr


@pytest.mark.parametrize("args, message", [
    (["cid:bad..cid"], "empty label"),
    (["cid", "--where", "accel_free>>1"], "KEY OP VALUE"),
    (["cid", "--where", "accel_free"], "KEY OP VALUE"),
    (["cid", "--where", "accel_fre>=2"], "unknown key 'accel_fre' (nearest registry keys: accel_free"),
    (["cid", "--where", "unknown_key=1"], "an extension key is written with a '.'"),
    (["cid", "--where", "accel_free>=abc"], "accel_free is a whole number (a count), got abc"),
    (["cid", "--where", "accel_util_ratio<=80"], "out of range 0..1"),
    (["cid", "--where", "accel_kind=quantum"], "accel_kind is one of gpu"),
    (["cid", "--where", "region in [bj,sh"], "unbalanced brackets"),
    (["cid", "--where", "region in []"], "the list is empty"),
    (["cid", "--where", "accel_free>=1e999"], "out of range"),
    (["cid", "--where", "accel_free>=" + "9" * 400], "longer than 256 characters"),
    (["cid", "--where", "accel_free>=" + "9" * 40], "out of range"),
    (["cid", "--where", "price_per_hour<nan"], "not a number"),
    (["cid", "--where", "price_per_hour<-inf"], "not a number"),
    (["cid", "--where", "region=北京"], "one DNS label"),
    (["cid", "--where", "région=bj"], "not a key"),
    (["cid", "--where", "region=bj; rm -rf ~"], "one DNS label"),
    (["cid", "--where", "region=' OR 1=1 --"], "one DNS label"),
    (["cid", "--where", "acme.x=\x1b[31mred"], "control characters"),
    (["cid", "--where", "accel_memory_bytes>=80GiBs"], "unknown unit"),
    (["cid", "--where", "price_per_hour<=2JPY", "--currency", "USD"], "in JPY but prices are kept in USD"),
    (["cid", "--sort", "a b"], "not a sort key"),
    (["cid", "--sort", "bogus_key"], "--sort bogus_key: unknown key 'bogus_key'"),
    (["cid", "--sort", "price_per_hour+,accel_fre-"], "--sort accel_fre-: unknown key 'accel_fre' (nearest registry keys: accel_free"),
    (["cid", "--sort", "price_per_hour+,"], "an empty key"),
    (["cid", "--currency", "dollars"], "--currency dollars: not an ISO 4217"),
    (["cid", "--need", "0"], "--need 0"),
    (["cid", "--need", "two"], "invalid int"),
    (["cid", "--max-age", "0"], "--max-age 0"),
    (["cid", "--max-age", "5m"], "--max-age 5m: unknown unit 'm'"),
    (["cid", "--rates", "/nonexistent/rates.toml"], "--rates /nonexistent/rates.toml: cannot read"),
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
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("text, message", [
    ('[rates]\nbase = "USD"\ndate = 2020-01-01\nCNY = 0.14\n', "stale: the rates are of 2020-01-01"),
    ('[rates]\nbase = "USD"\nCNY = 0.14\n', "no date"),
    ('[rates\n', "not TOML"),
    ('[rates]\nbase = "USD"\ndate = {today}\nCNY = -3\n', "a rate is a positive number"),
])
def test_bad_rates_files_are_refused_with_one_line(served, tmp_path, text, message):
    path = tmp_path / "rates.toml"
    path.write_text(text.replace("{today}", dt.date.today().isoformat()))
    p = cid("find", "cid", "--rates", str(path), *opts(served))
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.startswith(f"cid find: --rates {path}: ") and message in p.stderr
    assert len(p.stderr.splitlines()) == 1
