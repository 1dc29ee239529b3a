"""The validation policy, fail closed (spec/resolution.md §5.1), as users meet it: the Python API
(lookup, resolve, find, AiohttpResolver) and the CLI (exit codes, one-line refusals), over the
signed test federation on loopback (cid. signed, open.cid. provably unsigned)."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from resolver import Resolver, Status, ValidationRefused
from resolver.aiohttp_resolver import AiohttpResolver, ResolutionError
from support import federation as F

ID, OPEN = "cid:pool-7.bj.cmcc.cid", "cid:pool-1.open.cid"


@pytest.fixture(scope="module")
def fed():
    return F.build(now=time.time())


@pytest.fixture(scope="module")
def served(fed, tmp_path_factory):
    anchor = tmp_path_factory.mktemp("policy") / "cid.anchor"
    anchor.write_text(fed.anchor_text)
    with F.serving_in_thread(fed) as port:
        yield fed, port, anchor


def make(fed, port, **kw) -> Resolver:
    return Resolver(fed.hints(), port=port, timeout=1.0, **kw)


async def test_without_a_trust_anchor_answers_are_refused_in_python(served):
    fed, port, _ = served
    async with make(fed, port) as r:
        with pytest.raises(ValidationRefused) as refused:
            await r.resolve(ID)
        assert refused.value.status is Status.INDETERMINATE and refused.value.result.endpoints
        message = str(refused.value)
        assert "trust_anchor=" in message and "validation='off'" in message and "--" not in message
        with pytest.raises(ValidationRefused):
            await r.lookup("pool-7.bj.cmcc.cid.", "A")
        with pytest.raises(ValidationRefused):  # again, from the cache
            await r.lookup("pool-7.bj.cmcc.cid.", "A")
        with pytest.raises(ValidationRefused):
            await r.find("cid:bj.cmcc.cid")
        loose = await r.lookup("pool-7.bj.cmcc.cid.", "A", policy=False)  # what the DNS front end uses
        assert loose.status is Status.INDETERMINATE and loose.rrset is not None


async def test_validation_off_accepts_unvalidated_answers_and_fetches_no_keys(served):
    fed, port, anchor = served
    async with make(fed, port, trust_anchor=anchor, validation="off") as r:
        result = await r.resolve(ID)
        assert result.status is Status.INDETERMINATE and result.found
        assert not any("DNSKEY" in str(e) for e in result.trace)


async def test_insecure_is_accepted_and_marked_unless_secure_is_required(served):
    fed, port, anchor = served
    async with make(fed, port, trust_anchor=anchor) as r:
        assert (await r.resolve(ID)).status is Status.SECURE
        insecure = await r.resolve(OPEN)
        assert insecure.status is Status.INSECURE and insecure.found
    async with make(fed, port, trust_anchor=anchor, require_secure=True) as r:
        assert (await r.resolve(ID)).status is Status.SECURE
        with pytest.raises(ValidationRefused) as refused:
            await r.resolve(OPEN)
        assert refused.value.status is Status.INSECURE and "require_secure=False" in str(refused.value)


async def test_failures_are_results_not_refusals(served):
    fed, port, anchor = served
    async with make(fed, port, trust_anchor=anchor, max_resolve_queries=7) as r:
        result = await r.resolve(ID)  # budget runs out: some lookups fail (indeterminate)
    assert result.status is Status.INDETERMINATE and "budget of 7" in result.why
    async with make(fed, port, trust_anchor=anchor) as r:
        missing = await r.resolve("cid:nope.bj.cmcc.cid")
    assert missing.rcode == "NXDOMAIN" and missing.status is Status.SECURE


def test_validation_mode_is_checked():
    with pytest.raises(ValueError, match="validation='maybe'"):
        Resolver({"cid.": ["127.0.0.2"]}, validation="maybe")


async def test_aiohttp_resolver_never_connects_to_unvalidated_endpoints(served):
    fed, port, anchor = served
    async with make(fed, port) as r:
        with pytest.raises(ResolutionError) as failed:
            await AiohttpResolver(r).resolve("pool-7.bj.cmcc.cid", 443, socket.AF_INET)
        assert failed.value.errno == socket.EAI_FAIL and "--" not in str(failed.value)
    async with make(fed, port, trust_anchor=anchor) as r:
        answer = await AiohttpResolver(r).resolve("pool-7.bj.cmcc.cid", 443, socket.AF_INET)
        assert answer and answer[0]["host"] == "192.0.2.7"


def cid(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["cid", *args], capture_output=True, text=True, timeout=60)


def test_cli_refuses_in_one_line_and_says_what_to_pass(served):
    fed, port, anchor = served
    base = ["--hint", f"cid.=127.0.0.2:{port}", "--port", str(port), "--timeout", "1"]
    p = cid("resolve", ID, *base)
    assert p.returncode == 1 and p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert "indeterminate" in p.stderr and "--trust-anchor" in p.stderr and "--no-validate" in p.stderr
    p = cid("resolve", ID, *base, "--no-validate", "--json")
    assert p.returncode == 0 and '"status": "indeterminate"' in p.stdout
    p = cid("resolve", OPEN, *base, "--trust-anchor", str(anchor))
    assert p.returncode == 0 and "status: insecure" in p.stdout
    p = cid("resolve", OPEN, *base, "--trust-anchor", str(anchor), "--require-secure")
    assert p.returncode == 1 and "insecure" in p.stderr and "--require-secure" in p.stderr
    p = cid("find", "cid:bj.cmcc.cid", *base)
    assert p.returncode == 1 and "--trust-anchor" in p.stderr
    p = cid("resolve", ID, *base, "--no-validate", "--require-secure")
    assert p.returncode == 2 and "not allowed with" in p.stderr
