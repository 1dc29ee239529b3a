"""`cid resolve` and `cid dig` (built-in resolver) as users run them, against real servers."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from support import federation as F


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    fed = F.build(now=time.time())
    anchor = tmp_path_factory.mktemp("ta") / "cid.anchor"
    anchor.write_text(fed.anchor_text)
    with F.serving_in_thread(fed) as port:
        yield fed, port, str(anchor)


def cid(*args, timeout=30):
    return subprocess.run(["cid", *args], capture_output=True, text=True, timeout=timeout)


def opts(served):
    fed, port, anchor = served
    return ["--hint", f"cid.=127.0.0.2:{port}", "--hint", f"far-ops.net.=127.0.0.7:{port}",
            "--port", str(port), "--trust-anchor", anchor, "--timeout", "1"]


def test_resolve_human_output(served):
    p = cid("resolve", "cid:pool-7.bj.cmcc.cid", *opts(served))
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "cid:pool-7.bj.cmcc.cid" in out and "status: secure" in out
    assert "endpoint 1 pool-7.bj.cmcc.cid. port 8443 alpn h2 -> 192.0.2.7 2001:db8::7" in out
    assert "capabilities: accel_count=8 accel_kind=gpu" in out and "load: accel_free=3 util=0.5" in out


def test_resolve_json(served):
    p = cid("resolve", "pool-1.open.cid.", "--json", *opts(served))
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["status"] == "insecure" and doc["rcode"] == "NOERROR"
    assert doc["endpoints"][0]["addresses"] == ["192.0.2.21"] and doc["load"] is None


def test_resolve_not_found_exits_1(served):
    p = cid("resolve", "cid:absent.bj.cmcc.cid", "--json", *opts(served))
    assert p.returncode == 1 and json.loads(p.stdout)["rcode"] == "NXDOMAIN"


@pytest.mark.parametrize("args, message", [
    (["cid:bad_label.cid"], "bad_label"),
    (["cid:pool.cid", "--hint", "cid.-127.0.0.2"], "ZONE=ADDR"),
    (["cid:pool.cid", "--hint", "cid.=nowhere"], "not an IP address"),
    (["cid:pool.cid", "--hint", "cid.=127.0.0.2", "--trust-anchor", "/nonexistent/ta"], "cannot read"),
    (["cid:pool.cid"], "no --hint"),
    (["cid:pool.cid", "--hint", "cid.=127.0.0.2", "--port", "0"], "--port 0"),
    (["cid:pool.cid", "--hint", "cid.=127.0.0.2", "--timeout", "0"], "--timeout 0"),
    (["cid:pool.cid", "--hint", "cid.=127.0.0.2:99999"], "port must be"),
])
def test_resolve_usage_errors_are_one_line_exit_2(args, message):
    p = cid("resolve", *args)
    assert p.returncode == 2
    assert message in p.stderr and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_dig_via_resolver_trace_and_ad(served):
    p = cid("dig", "pool-7.bj.cmcc.cid.", "SVCB", "+trace", *opts(served))
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert ";; referral from cid. to cmcc.cid." in out and ";; referral from cmcc.cid. to bj.cmcc.cid." in out
    assert ";; zone bj.cmcc.cid. keys: secure" in out
    assert "status: NOERROR" in out and " ad" in out.split("flags:")[1].splitlines()[0]
    answers = [line.split() for line in out.splitlines() if line.startswith("pool-7.bj.cmcc.cid.")]
    assert ["SVCB", "1", ".", 'alpn="h2"'] in [a[3:7] for a in answers]


def test_dig_via_resolver_insecure_has_no_ad_and_short_works(served):
    p = cid("dig", "pool-1.open.cid.", "A", *opts(served))
    assert p.returncode == 0, p.stderr
    assert " ad" not in p.stdout.split("flags:")[1].splitlines()[0]
    short = cid("dig", "+short", "pool-7.bj.cmcc.cid.", "CAPS", *opts(served))
    assert short.stdout.strip() == "accel_count=8 accel_kind=gpu"


def test_dig_via_resolver_tcp_and_cd(served):
    p = cid("dig", "+tcp", "+trace", "pool-7.bj.cmcc.cid.", "A", *opts(served))
    assert p.returncode == 0, p.stderr
    queries = [line for line in p.stdout.splitlines() if line.startswith(";; query ")]
    assert queries and all("(tcp," in line for line in queries)
    p = cid("dig", "+cd", "+dnssec", "pool-7.bj.cmcc.cid.", "A", *opts(served))
    assert p.returncode == 0 and "RRSIG" in p.stdout and "192.0.2.7" in p.stdout


# --- NSEC3: +trace says which record proved what --------------------------------------------------

def _nsec3_federation(break_chain: bool = False):
    import base64

    import dns.dnssec
    import dns.name
    import dns.rdatatype

    from support.nsec3_chain import nsec3_federation
    fed = nsec3_federation(F.build(now=time.time()))
    if break_chain:  # delete the NSEC3 whose span holds the hash of nope.bj.cmcc.cid.
        zone = fed.zones["bj.cmcc.cid."]
        target = base64.b32hexdecode(dns.dnssec.nsec3_hash("nope.bj.cmcc.cid.", b"", 0, 1))
        for name, node in list(zone.nodes.items()):
            rds = node.get_rdataset(1, dns.rdatatype.NSEC3)
            if rds is None:
                continue
            owner = base64.b32hexdecode(name.labels[0].upper())
            nxt = rds[0].next
            if (owner < target < nxt) if owner < nxt else (target > owner or target < nxt):
                del zone.nodes[name]
    return fed


@pytest.fixture(scope="module", params=["good", "broken"])
def served_nsec3(request, tmp_path_factory):
    fed = _nsec3_federation(break_chain=request.param == "broken")
    anchor = tmp_path_factory.mktemp("ta3") / "cid.anchor"
    anchor.write_text(fed.anchor_text)
    with F.serving_in_thread(fed) as port:
        yield request.param, (fed, port, str(anchor))


def test_dig_trace_shows_which_nsec3_proved_what(served_nsec3):
    import dns.dnssec
    kind, served = served_nsec3
    p = cid("dig", "nope.bj.cmcc.cid.", "A", "+trace", *opts(served))
    assert p.returncode == 0, p.stderr
    out = p.stdout
    next_closer = dns.dnssec.nsec3_hash("nope.bj.cmcc.cid.", b"", 0, 1).lower()
    apex = dns.dnssec.nsec3_hash("bj.cmcc.cid.", b"", 0, 1).lower()
    proof = [line for line in out.splitlines() if " proof: " in line]
    if kind == "good":
        assert "status: NXDOMAIN" in out
        assert f";;   secure proof: NSEC3 {apex} matches closest encloser bj.cmcc.cid." in proof
        assert any(f"covers next closer nope.bj.cmcc.cid. (hash {next_closer})" in line for line in proof)
        assert any("covers wildcard *.bj.cmcc.cid. (hash " in line for line in proof)
        # The unsigned child: which opt-out span of cid. made it insecure.
        p = cid("dig", "pool-1.open.cid.", "A", "+trace", *opts(served))
        assert any("insecure proof:" in line and "(opt-out) covers next closer open.cid." in line
                   for line in p.stdout.splitlines()), p.stdout
    else:
        assert "status: SERVFAIL" in out
        assert any(line.startswith(";;   bogus proof: NXDOMAIN nope.bj.cmcc.cid. unproven") and
                   f"next closer nope.bj.cmcc.cid. (hash {next_closer})" in line for line in proof), proof
        # Every NSEC3 that did come is listed, so the gap in the chain can be seen.
        assert sum("NSEC3 in response:" in line for line in proof) >= 2


# --- honest errors and timing -------------------------------------------------------------------

def _to(events, server, kind):
    return [e for e in events if type(e).__name__ == kind and e.server == server]


async def test_refused_server_fails_at_once_and_is_held_down(served):
    import asyncio

    from resolver import Resolver
    from support.net import free_port

    fed, port, anchor = served
    dead = ("127.0.72.1", free_port("127.0.72.1"))  # nothing listens: connection refused
    # timeout=30: a refused server waited on like a silent one would run into the 20 s bound.
    async with asyncio.timeout(20):
        r = Resolver({"cid.": [f"{dead[0]}:{dead[1]}", f"127.0.0.2:{port}"], "far-ops.net.": [f"127.0.0.7:{port}"]},
                     anchor, port=port, timeout=30)
        first = await r.resolve("cid:pool-7.bj.cmcc.cid")
        assert first.status.value == "secure" and first.rcode == "NOERROR"
        sent, failed = _to(first.trace, dead, "QuerySent"), _to(first.trace, dead, "ServerFailed")
        # Asked first (never measured), with the zone's DNSKEY query sent alongside; both refused,
        # neither retried.
        assert 1 <= len(sent) <= 2 and [e.reason for e in failed] == ["connection refused"] * len(sent)
        assert r.cache.servers.is_down(dead)
        second = await r.resolve("cid:pool-1.open.cid")  # new questions to cid.'s servers
        assert second.status.value == "insecure" and _to(second.trace, dead, "QuerySent") == []


async def test_every_server_refused_fails_with_each_named_and_no_retries(served):
    import asyncio

    from resolver import Resolver
    from support.net import free_port

    _, port, _ = served
    dead = [("127.0.72.1", free_port("127.0.72.1")), ("127.0.72.3", free_port("127.0.72.3"))]
    async with asyncio.timeout(20):
        r = Resolver({"cid.": [f"{a}:{p}" for a, p in dead]}, None, timeout=30, retries=3, validation="off")
        lookup = await r.lookup("pool-7.bj.cmcc.cid.", "SVCB")
    assert lookup.rcode == "SERVFAIL"
    assert f"127.0.72.1:{dead[0][1]} connection refused; 127.0.72.3:{dead[1][1]} connection refused" in lookup.why
    for server in dead:  # one try per question (minimised, then the full name); retries are for timeouts
        questions = {e.qname for e in _to(lookup.trace, server, "QuerySent")}
        assert len(_to(lookup.trace, server, "QuerySent")) == len(questions) == 2


def test_resolve_refused_everywhere_exits_1_at_once(served):
    from support.net import free_port
    dead = free_port("127.0.72.1")
    p = cid("resolve", "cid:pool-7.bj.cmcc.cid", "--hint", f"cid.=127.0.72.1:{dead}", "--no-validate",
            "--timeout", "30", timeout=20)
    assert p.returncode == 1 and "connection refused" in p.stdout and "timeout" not in p.stdout


def _resolver_from(*argv):
    from resolver.cli.main import build_parser
    from resolver.cli.options import resolver_from_args
    return resolver_from_args(build_parser("resolve").parse_args(["resolve", "cid:x.cid", *argv]))


def test_timeout_is_the_wait_for_each_response_retries_included():
    import dns.rdatatype

    def waits(r):
        engine = r.engine("pool-7.cid.", dns.rdatatype.A)
        first = engine.next_actions()[0]
        engine.on_timeout(first.token)
        again = engine.next_actions()[0]
        assert again.server == first.server
        return first.timeout, again.timeout

    assert waits(_resolver_from("--hint", "cid.=127.0.72.1", "--timeout", "1.5", "--no-validate")) == (1.5, 1.5)
    # Without --timeout, the library's backoff (spec/resolution.md §2.1): 2 s, then 4 s.
    assert waits(_resolver_from("--hint", "cid.=127.0.72.1", "--no-validate")) == (2.0, 4.0)


def test_deadline_bounds_the_whole_resolution():
    import socket

    from support.net import free_port
    assert _resolver_from("--hint", "cid.=127.0.72.1", "--deadline", "3").max_time == 3
    port = free_port("127.0.72.2")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mute:  # takes queries, never answers
        mute.bind(("127.0.72.2", port))
        # --timeout 30 alone would wait until the default 10 s budget; the 8 s bound fails that.
        p = cid("resolve", "cid:pool-7.cid", "--hint", f"cid.=127.0.72.2:{port}", "--no-validate",
                "--timeout", "30", "--deadline", "1.5", timeout=8)
    assert p.returncode == 1 and "time budget exhausted" in p.stdout, p.stdout + p.stderr
    p = cid("resolve", "cid:pool-7.cid", "--hint", "cid.=127.0.72.2", "--deadline", "0")
    assert p.returncode == 2 and "--deadline 0" in p.stderr


def test_dig_json_carries_the_validation_status(served):
    for name, status in (("pool-7.bj.cmcc.cid.", "secure"), ("pool-1.open.cid.", "insecure")):
        p = cid("dig", name, "SVCB", "+json", *opts(served))
        assert p.returncode == 0, p.stderr
        doc = json.loads(p.stdout)
        assert doc["validation"]["status"] == status and doc["validation"]["why"], doc
        assert ("ad" in doc["flags"]) is (status == "secure")
    _, port, _ = served
    direct = json.loads(cid("dig", "@127.0.0.4", "-p", str(port), "pool-7.bj.cmcc.cid.", "+json").stdout)
    assert "validation" not in direct  # a server's answer: nothing was validated


def test_dig_header_via_the_resolver_echoes_the_command(served):
    args = ["pool-7.bj.cmcc.cid.", "CAPS", "+dnssec", *opts(served)]
    p = cid("dig", *args)
    assert p.returncode == 0, p.stderr
    assert "; <<>> cid dig <<>> " + " ".join(args) in p.stdout.splitlines()


# --- Python errors speak Python; no endpoint connecting names every endpoint ---------------------

def _unreachable_federation():
    from support.net import free_port
    ports = free_port("127.0.72.11"), free_port("127.0.72.12")
    bj = F.ZONES["bj.cmcc.cid."][1] + f"""
down 300 SVCB 1 a alpn=h2 port={ports[0]}
down 300 SVCB 2 b alpn=h2 port={ports[1]}
a 300 A 127.0.72.11
b 300 A 127.0.72.12
"""
    return F.build(now=time.time(), overrides={"bj.cmcc.cid.": bj}), ports


async def test_aiohttp_error_lists_every_endpoint_tried():
    import asyncio
    import socket

    import aiohttp

    from resolver import AiohttpResolver, Resolver
    from resolver.aiohttp_resolver import Connector, EndpointsUnreachable

    fed, ports = _unreachable_federation()
    tried = [("127.0.72.11", ports[0]), ("127.0.72.12", ports[1])]
    async with asyncio.timeout(30), F.serving(fed) as port:
        async with Resolver(fed.hints(), fed.anchor(), port=port, timeout=1.0) as r:
            resolver = AiohttpResolver(r)
            async with aiohttp.ClientSession(connector=Connector(resolver)) as http:
                with pytest.raises(EndpointsUnreachable) as info:
                    await http.get("http://down.bj.cmcc.cid/")
            err = info.value
            assert isinstance(err, aiohttp.ClientConnectorError) and not isinstance(err, aiohttp.ClientConnectorDNSError)
            assert err.tried == tried and err.resolution.identifier == "cid:down.bj.cmcc.cid"
            assert f"127.0.72.11:{ports[0]}, 127.0.72.12:{ports[1]}" in str(err) and "2 endpoint" in str(err)
            # aiohttp's own connector: its error names one address; tried() has them all.
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver)) as http:
                with pytest.raises(aiohttp.ClientConnectorError):
                    await http.get("http://down.bj.cmcc.cid/")
            assert resolver.tried("down.bj.cmcc.cid") == tried
            with pytest.raises(OSError) as info:  # no IPv6 address: the endpoints are listed
                await resolver.resolve("down.bj.cmcc.cid", 80, socket.AF_INET6)
            assert "a.bj.cmcc.cid. priority 1: 127.0.72.11; b.bj.cmcc.cid. priority 2: 127.0.72.12" in str(info.value)


async def test_aiohttp_resolver_messages_name_no_cli_flags(served):
    import asyncio
    import socket

    from resolver import AiohttpResolver, Resolver
    from resolver.aiohttp_resolver import ResolutionError, _python_words

    fed, port, anchor = served
    async with asyncio.timeout(30):
        messages = []
        async with Resolver({"cid.": [f"127.0.0.2:{port}"]}, None, port=port, timeout=1) as unanchored:
            with pytest.raises(ResolutionError) as info:  # indeterminate: refused
                await AiohttpResolver(unanchored).resolve("pool-7.bj.cmcc.cid", 80, socket.AF_INET)
            messages.append(str(info.value))
            assert info.value.errno == socket.EAI_FAIL and "trust_anchor=" in str(info.value)
            with pytest.raises(ResolutionError) as info:  # outside every hinted namespace
                await AiohttpResolver(unanchored).resolve("pool.example.org", 80, socket.AF_INET)
            messages.append(str(info.value))
            assert "Resolver(hints=...)" in str(info.value) and "fallback=" in str(info.value)
        async with Resolver({"cid.": [f"127.0.0.2:{port}"]}, anchor, port=port, timeout=1) as r:
            with pytest.raises(ResolutionError) as info:
                await AiohttpResolver(r, require_secure=True).resolve("pool-1.open.cid", 80, socket.AF_INET)
            messages.append(str(info.value))
            assert "require_secure=True" in str(info.value)
    assert all(" --" not in m for m in messages), messages
    assert _python_words("no hint covers x.org.: give a --hint for one of its zones") == \
        "no hint covers x.org.: add one of its zones to Resolver(hints=...)"


def test_unreachable_reasons_are_the_ones_the_engine_holds_down():
    import errno

    from resolver.drivers.transport import reason
    from resolver.engine.selection import UNREACHABLE, ServerSelection

    said = {reason(OSError(code, "x")) for code in (errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH,
                                                   errno.EHOSTDOWN)}
    assert said == UNREACHABLE == {"connection refused", "network unreachable", "host unreachable"}
    assert reason(OSError(errno.ECONNRESET, "Connection reset by peer")) == "connection reset"
    assert reason(OSError(errno.EACCES, "Permission denied")) == "permission denied"
    clock = [100.0]
    servers = ServerSelection(lambda: clock[0])
    a, b = ("127.0.72.1", 53), ("127.0.72.2", 53)
    servers.unreachable(a)
    assert servers.order([a, b]) == [b, a] and servers.is_down(a)
    clock[0] += 31
    assert not servers.is_down(a)  # held down for 30 s, then asked again like any other


async def test_refused_over_tcp_too(served):
    import asyncio

    from resolver import Resolver
    from support.net import free_port

    dead = ("127.0.72.1", free_port("127.0.72.1"))
    async with asyncio.timeout(20):
        r = Resolver({"cid.": [f"{dead[0]}:{dead[1]}"]}, None, timeout=30, validation="off")
        lookup = await r.lookup("pool-7.cid.", "A", tcp=True)
    assert lookup.rcode == "SERVFAIL" and f"127.0.72.1:{dead[1]} connection refused" in lookup.why
    assert len(_to(lookup.trace, dead, "QuerySent")) == 1 and r.cache.servers.is_down(dead)
