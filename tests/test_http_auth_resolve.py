"""`cid serve auth --http` resolves (issue 11, spec/service.md §5): /v1/resolve and /v1/find
through the one resolution path, starting at the zones the server serves and following their
delegations to a child zone on a second `cid serve auth` (loopback 127.0.111.0/24).

    ex.cid.        signed, live (--config: TSIG key prov. may register pool-1), 127.0.111.1
    └ kids.ex.cid. signed, DS in ex.cid., its own `cid serve auth`                127.0.111.2
    plain.test.    unsigned, served beside ex.cid.                                127.0.111.1

The parent anchors itself at its own keys; its answers must equal `cid resolve` given the
zone's DS as trust anchor. The child server runs with --trust-anchor (its DS file). In process
(127.0.111.3-5): the own anchors and hints follow zones replaced, added and removed, and
servers learned from delegations are asked on the resolve port."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import dns.zone
import jsonschema
import msgpack
import pytest

import resolver  # noqa: F401  (CAPS/LOAD types)
from resolver.auth.browse import add_browse_names
from support import live_primary as lp
from support.net import free_port
from support.peer_servers import wait_until_answers

PARENT, CHILD = "127.0.111.1", "127.0.111.2"
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "spec" / "resolution.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def _load(ts: int, free: int) -> str:
    return f"accel_free={free} source=measured ts={ts}"


def _signed(directory: Path, zone: str, text: str, keys: str) -> tuple[Path, Path]:
    """``text`` with its browse names, keyed (into ``keys``) and signed by `cid zone`: (signed
    file, DS file)."""
    stem = zone.rstrip(".")
    parsed = dns.zone.from_text(text, origin=zone, relativize=False)
    add_browse_names(parsed)
    plain = directory / f"{stem}.zone"
    parsed.to_file(str(plain), relativize=False)
    keys = directory / keys
    keys.mkdir()
    lp.cid("zone", "keygen", zone, "--dir", str(keys), check=True)
    signed, ds = directory / f"{stem}.zone.signed", directory / f"{stem}.ds"
    lp.cid("zone", "sign", str(plain), "-K", str(keys), "-o", str(signed), "--ds-out", str(ds), check=True)
    return signed, ds


def _serve(args: list[str], address: str, port: int, zone: str, log: Path) -> tuple[subprocess.Popen, str]:
    """A `cid serve auth ... --http ADDR:0` process once it answers: (process, HTTP ADDR:PORT)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "resolver", "serve", "auth", *args,
                                 "--http", f"{address}:0", "--control", "none"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until_answers(address, port, zone, proc, log, timeout=30)
        found = lp.until(lambda: re.search(r"HTTP on ([\d.]+:\d+)", log.read_text()), "the HTTP line", timeout=10)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, found.group(1)


class Site:
    def __init__(self, directory: Path):
        self.dir = directory
        self.port = free_port(PARENT)
        now = int(time.time())
        child_signed, self.child_ds = _signed(directory, "kids.ex.cid.", f"""$TTL 300
@ SOA ns hostmaster 1 3600 600 86400 60
@ NS ns
ns A {CHILD}
pool-9 SVCB 1 . alpn=h3 port=9443
pool-9 A 192.0.2.9
pool-9 3600 CAPS accel_kind=gpu accel_count=4 region=sh
pool-9 30 LOAD {_load(now, 1)}
""", "child-keys")
        ds = " ".join(self.child_ds.read_text().split()[4:])
        self.parent_file, self.parent_ds = _signed(directory, "ex.cid.", f"""$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 60
@ NS ns1
ns1 A {PARENT}
pool-7 SVCB 1 . alpn=h2 port=8443
pool-7 A 192.0.2.7
pool-7 AAAA 2001:db8::7
pool-7 3600 CAPS accel_kind=gpu accel_count=8 region=bj
pool-7 30 LOAD {_load(now, 3)}
pool-8 SVCB 1 . alpn=h2
pool-8 A 192.0.2.8
pool-8 3600 CAPS accel_kind=gpu accel_count=2 region=bj
pool-8 30 LOAD {_load(now, 2)}
kids NS ns.kids
ns.kids A {CHILD}
kids DS {ds}
""", "keys")
        (directory / "plain.test.zone").write_text(f"""$TTL 300
plain.test. SOA ns.plain.test. hostmaster.plain.test. 1 3600 600 86400 60
plain.test. NS ns.plain.test.
ns.plain.test. A {PARENT}
pool-3.plain.test. SVCB 1 . alpn=h2
pool-3.plain.test. A 192.0.2.3
pool-3.plain.test. CAPS accel_kind=cpu
""")
        # The live primary's configuration (key prov. may register pool-1), plain.test. beside it.
        live = lp.Site(directory, PARENT, self.port)
        assert live.zone_file == self.parent_file
        live.write_config(extra='\n[[zone]]\nfile = "plain.test.zone"\n')
        self.config = live.config
        self.parent, self.http = _serve(["--config", str(self.config)], PARENT, self.port, "ex.cid.",
                                        directory / "parent.log")
        try:
            self.child, self.child_http = _serve(
                ["--listen", f"{CHILD}:{self.port}", "--zone", str(child_signed),
                 "--trust-anchor", str(self.child_ds)], CHILD, self.port, "kids.ex.cid.", directory / "child.log")
        except BaseException:
            self.close()
            raise

    def get(self, path: str, accept: str | None = None, http: str | None = None) -> tuple[int, str, bytes]:
        request = urllib.request.Request(f"http://{http or self.http}{path}",
                                         headers={"Accept": accept} if accept else {})
        try:
            with urllib.request.urlopen(request, timeout=20) as reply:
                return reply.status, reply.headers.get_content_type(), reply.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get_content_type(), exc.read()

    def json(self, path: str, **kw) -> tuple[int, dict]:
        status, ctype, body = self.get(path, **kw)
        assert ctype == "application/json", body[:300]
        doc = json.loads(body)
        if status >= 400:  # every error: one JSON object, one line, no traceback
            assert doc["status"] == status and "\n" not in doc["message"] and "Traceback" not in body.decode()
        return status, doc

    def close(self) -> None:
        for name in ("parent", "child"):
            proc = getattr(self, name, None)
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = Site(tmp_path_factory.mktemp("authresolve"))
    yield s
    s.close()


def _without_ttl(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "ttl"}


def test_resolve_json_matches_the_schema_and_cid_resolve_with_the_ds_anchor(site):
    status, doc = site.json("/v1/resolve/cid:pool-7.ex.cid")
    assert status == 200, doc
    VALIDATOR.validate(doc)
    assert doc["status"] == "secure" and doc["capabilities"] == {"accel_count": 8, "accel_kind": "gpu", "region": "bj"}
    assert doc["endpoints"][0]["addresses"] == ["192.0.2.7", "2001:db8::7"] and doc["load"]["accel_free"] == 3
    cli = lp.cid("resolve", "cid:pool-7.ex.cid", "--hint", f"ex.cid.={PARENT}", "--port", str(site.port),
                 "--trust-anchor", str(site.parent_ds), "--json")
    assert cli.returncode == 0, cli.stderr
    direct = json.loads(cli.stdout)
    assert _without_ttl(doc) == _without_ttl(direct) and 0 <= doc["ttl"] <= 30
    status, ctype, body = site.get("/v1/resolve/pool-7.ex.cid.", accept="application/msgpack")
    assert status == 200 and ctype == "application/msgpack"
    packed = msgpack.unpackb(body)
    VALIDATOR.validate(packed)
    assert _without_ttl(packed) == _without_ttl(doc)


def test_find_with_where_sort_and_limit_descends_into_the_child(site):
    query = urllib.parse.urlencode([("namespace", "cid:ex.cid"), ("where", "accel_kind=gpu"),
                                    ("sort", "accel_count-"), ("limit", "2")])
    status, doc = site.json(f"/v1/find?{query}")
    assert status == 200, doc
    assert doc["status"] == "secure" and set(doc["namespaces"]) == {"ex.cid.", "kids.ex.cid."}
    assert [r["identifier"] for r in doc["results"]] == ["cid:pool-7.ex.cid", "cid:pool-9.kids.ex.cid"]
    for result in doc["results"]:
        VALIDATOR.validate(result)
    status, doc = site.json("/v1/find?" + urllib.parse.urlencode([("namespace", "cid:ex.cid"),
                                                                  ("where", "accel_count<4")]))
    assert status == 200 and [r["identifier"] for r in doc["results"]] == ["cid:pool-8.ex.cid"]
    status, doc = site.json("/v1/find?namespace=cid:elsewhere.example")
    assert status == 404 and doc["error"] == "not_served"


def test_a_delegation_to_another_server_is_followed_and_validated(site):
    status, doc = site.json("/v1/resolve/cid:pool-9.kids.ex.cid")
    assert status == 200 and doc["status"] == "secure", doc
    assert doc["endpoints"] == [{"target": "pool-9.kids.ex.cid.", "priority": 1, "port": 9443, "alpn": ["h3"],
                                 "addresses": ["192.0.2.9"]}]
    status, missing = site.json("/v1/resolve/cid:nope.kids.ex.cid")
    assert status == 404 and missing["error"] == "nxdomain" and missing["resolution"]["status"] == "secure"
    # The child's own server, anchored by --trust-anchor at its DS, gives the same answer.
    status, own = site.json("/v1/resolve/cid:pool-9.kids.ex.cid", http=site.child_http)
    assert status == 200 and _without_ttl(own) == _without_ttl(doc)
    # ...and refuses its parent's names: it serves only kids.ex.cid. and does not recurse.
    status, refused = site.json("/v1/resolve/cid:pool-7.ex.cid", http=site.child_http)
    assert status == 404 and refused["error"] == "not_served" and refused["zones"] == ["kids.ex.cid."]


def test_not_served_unsigned_and_nxdomain(site):
    status, doc = site.json("/v1/resolve/cid:pool-7.bj.cmcc.cid")
    assert status == 404 and doc["error"] == "not_served"
    assert doc["zones"] == ["ex.cid.", "plain.test."] and "does not recurse" in doc["message"]
    status, doc = site.json("/v1/resolve/cid:pool-3.plain.test")  # unsigned: indeterminate, refused
    assert status == 403 and doc["error"] == "unvalidated" and doc["dns_status"] == "indeterminate"
    assert "192.0.2.3" not in json.dumps(doc)
    status, doc = site.json("/v1/resolve/cid:nope.ex.cid")
    assert status == 404 and doc["error"] == "nxdomain"
    VALIDATOR.validate(doc["resolution"])
    assert doc["resolution"]["status"] == "secure" and doc["resolution"]["rcode"] == "NXDOMAIN"


def test_a_registration_is_visible_right_after_the_ack(site):
    status, doc = site.json("/v1/resolve/cid:pool-1.ex.cid")  # cached as a (validated) NXDOMAIN now
    assert status == 404 and doc["error"] == "nxdomain"
    registered = lp.cid("register", "cid:pool-1.ex.cid", "--server", f"{PARENT}:{site.port}", "--key", lp.PROV,
                        "--endpoint", "h2://192.0.2.1:8443", "--caps", "accel_kind=gpu", "accel_count=16",
                        "--lease", "300")
    assert registered.returncode == 0, registered.stderr
    status, doc = site.json("/v1/resolve/cid:pool-1.ex.cid")
    assert status == 200 and doc["status"] == "secure", doc
    assert doc["endpoints"][0]["port"] == 8443 and doc["endpoints"][0]["addresses"] == ["192.0.2.1"]
    assert doc["capabilities"]["accel_count"] == 16
    query = urllib.parse.urlencode([("namespace", "cid:ex.cid"), ("where", "accel_count>=16")])
    status, found = site.json(f"/v1/find?{query}")  # the live zone's browse names list it too
    assert status == 200 and [r["identifier"] for r in found["results"]] == ["cid:pool-1.ex.cid"]
    gone = lp.cid("unregister", "cid:pool-1.ex.cid", "--server", f"{PARENT}:{site.port}", "--key", lp.PROV)
    assert gone.returncode == 0, gone.stderr
    status, doc = site.json("/v1/resolve/cid:pool-1.ex.cid")
    assert status == 404 and doc["error"] == "nxdomain"


@pytest.mark.parametrize("path, status, code", [
    ("/v1/resolve/cid:bad..name", 400, "bad_identifier"),
    ("/v1/resolve/cid:x_y%20z", 400, "bad_identifier"),
    ("/v1/resolve/cid:" + "a" * 400, 400, "bad_identifier"),
    ("/v1/resolve/%00%ff", 400, "bad_identifier"),
    ("/v1/find", 400, "bad_parameter"),
    ("/v1/find?namespace=cid:ex.cid&bogus=1", 400, "bad_parameter"),
    ("/v1/find?namespace=cid:ex.cid&where=accel_count>>1", 400, "bad_condition"),
    ("/v1/find?namespace=cid:ex.cid&limit=0", 400, "bad_parameter"),
    ("/v1/find?namespace=cid:..", 400, "bad_identifier"),
    ("/v1/resolve/" + "a." * 5000, 400, "bad_request"),  # request line over 8190 octets
])
def test_hostile_input_is_a_4xx_json_error(site, path, status, code):
    got, doc = site.json(path)
    assert got == status and doc["error"] == code, doc


def test_the_openapi_document_lists_the_resolving_routes(site):
    status, doc = site.json("/v1/openapi.json")
    assert status == 200
    assert set(doc["paths"]) == {"/v1/resolve/{identifier}", "/v1/find", "/dns-query", "/healthz", "/metrics",
                                 "/v1/openapi.json"}
    assert "not_served" in doc["paths"]["/v1/resolve/{identifier}"]["get"]["responses"]["404"]["description"]


def test_a_trust_anchor_above_every_served_zone_is_a_usage_error(site, tmp_path):
    anchor = tmp_path / "cid.ds"
    anchor.write_text(site.parent_ds.read_text().replace("ex.cid.", "cid.", 1))
    proc = lp.cid("serve", "auth", "--listen", f"{CHILD}:0", "--zone", str(site.parent_file), "--http",
                  f"{CHILD}:0", "--trust-anchor", str(anchor), "--control", "none", timeout=30)
    assert proc.returncode == 2 and "cid. is not at or below a zone served here" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    proc = lp.cid("serve", "auth", "--listen", f"{CHILD}:0", "--zone", str(site.parent_file),
                  "--trust-anchor", str(anchor), "--control", "none", timeout=30)
    assert proc.returncode == 2 and "give --http" in proc.stderr, proc.stderr


def _key_zone(origin: str, address: str, flags: int = 257, extra: str = "", sign: bool = True):
    """``origin`` with one identifier at ``address`` (and ``extra``), signed by a fresh key of ``flags``."""
    from resolver.auth.keys import generate_key
    from resolver.auth.signer import sign_zone
    zone = dns.zone.from_text(f"""$TTL 300
@ SOA ns hostmaster 1 3600 600 86400 60
@ NS ns
ns A 127.0.111.3
pool SVCB 1 . alpn=h2
pool A {address}
{extra}""", origin=origin, relativize=False)
    if sign:
        sign_zone(zone, [generate_key(origin, flags=flags)])
    return zone


async def test_the_own_anchor_and_the_hints_follow_the_served_zones():
    """In process: a zone replaced by one signed with another key (a KSK rollover done at once,
    a reload) is still secure and shows the new data; a zone added is resolvable at once, one
    signed by a ZSK only (no SEP key) anchored at it, its unsigned child (served here too, no DS:
    proven insecure) accepted and marked; a zone removed is not_served."""
    import aiohttp

    from resolver.auth.server import AuthServer
    from resolver.auth.store import ZoneStore
    from resolver.http import HttpFrontEnd, make_auth_app
    store = ZoneStore([_key_zone("one.cid.", "192.0.2.1")])
    server = AuthServer(store, [("127.0.111.3", 0)])
    await server.start()
    http = HttpFrontEnd(make_auth_app(server), "127.0.111.3", 0)
    await http.start()
    base = f"http://127.0.111.3:{http.address[1]}/v1/resolve/"
    try:
        async with aiohttp.ClientSession() as session:
            async def resolve(identifier: str) -> tuple[int, dict]:
                async with session.get(base + identifier) as reply:
                    return reply.status, await reply.json()
            status, doc = await resolve("cid:pool.one.cid")
            assert status == 200 and doc["status"] == "secure" and doc["endpoints"][0]["addresses"] == ["192.0.2.1"]
            store.add(_key_zone("one.cid.", "192.0.2.2"))
            status, doc = await resolve("cid:pool.one.cid")
            assert status == 200 and doc["status"] == "secure" and doc["endpoints"][0]["addresses"] == ["192.0.2.2"]
            status, doc = await resolve("cid:pool.two.cid")
            assert status == 404 and doc["error"] == "not_served"
            store.add(_key_zone("two.cid.", "192.0.2.3", flags=256, extra="open NS ns.open\nns.open A 127.0.111.3"))
            store.add(_key_zone("open.two.cid.", "192.0.2.4", sign=False))
            status, doc = await resolve("cid:pool.two.cid")
            assert status == 200 and doc["status"] == "secure" and doc["endpoints"][0]["addresses"] == ["192.0.2.3"]
            status, doc = await resolve("cid:pool.open.two.cid")
            assert status == 200 and doc["status"] == "insecure" and doc["endpoints"][0]["addresses"] == ["192.0.2.4"]
            store.remove("one.cid.")
            status, doc = await resolve("cid:pool.one.cid")
            assert status == 404 and doc["error"] == "not_served" and doc["zones"] == ["open.two.cid.", "two.cid."]
    finally:
        await http.close()
        await server.close()


async def test_servers_learned_from_delegations_are_asked_on_the_resolve_port():
    """The child's server listens on another port than the parent's: found with port= (what
    --resolve-port sets), a resolution failure (502) without."""
    import aiohttp

    from resolver.auth.keys import generate_key
    from resolver.auth.server import AuthServer
    from resolver.auth.signer import ds_records, sign_zone
    from resolver.auth.store import ZoneStore
    from resolver.http import HttpFrontEnd, make_auth_app
    from resolver.http.auth_resolve import AuthResolver
    key = generate_key("sub.par.cid.")
    child = dns.zone.from_text("""$TTL 300
@ SOA ns hostmaster 1 3600 600 86400 60
@ NS ns
ns A 127.0.111.5
pool SVCB 1 . alpn=h2
pool A 192.0.2.5
""", origin="sub.par.cid.", relativize=False)
    sign_zone(child, [key])
    ds = " ".join(ds_records("sub.par.cid.", [key])[0].to_text().split())
    parent = _key_zone("par.cid.", "192.0.2.6", extra=f"sub NS ns.sub\nns.sub A 127.0.111.5\nsub DS {ds}")
    child_server = AuthServer(ZoneStore([child]), [("127.0.111.5", 0)])
    parent_server = AuthServer(ZoneStore([parent]), [("127.0.111.4", 0)])
    await child_server.start()
    await parent_server.start()
    fronts = []
    try:
        async with aiohttp.ClientSession() as session:
            outcomes = []
            for port in (child_server.addresses[0][1], None):
                resolver = AuthResolver(parent_server.store, lambda: parent_server.addresses, port=port, timeout=0.3,
                                        max_time=2.0)
                front = HttpFrontEnd(make_auth_app(parent_server, resolver), "127.0.111.4", 0)
                fronts.append(front)
                await front.start()
                async with session.get(f"http://127.0.111.4:{front.address[1]}/v1/resolve/cid:pool.sub.par.cid") as reply:
                    outcomes.append((reply.status, await reply.json()))
        (found, doc), (failed, error) = outcomes
        assert found == 200 and doc["status"] == "secure" and doc["endpoints"][0]["addresses"] == ["192.0.2.5"]
        assert failed == 502 and error["error"] == "resolution_failed", error
    finally:
        for front in fronts:
            await front.close()
        await parent_server.close()
        await child_server.close()


def test_metrics_show_the_embedded_resolvers_cache_and_validation(site):
    """The auth server's /metrics carries the counters of the Resolver behind /v1/resolve: a
    repeat of a resolution is a resolution-cache hit, and secure lookups are counted."""
    from prometheus_client.parser import text_string_to_metric_families

    def samples() -> dict[tuple[str, tuple], float]:
        status, ctype, body = site.get("/metrics")
        assert status == 200 and ctype == "text/plain"
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(body.decode()) for s in family.samples}

    assert site.json("/v1/resolve/cid:pool-7.ex.cid")[0] == 200
    before = samples()
    assert site.json("/v1/resolve/cid:pool-7.ex.cid")[0] == 200
    after = samples()
    hit = ("cid_cache_hits_total", (("layer", "resolution"),))
    assert after[hit] == before[hit] + 1
    assert after[("cid_validation_outcomes_total", (("status", "secure"),))] > 0
    assert after[("cid_cache_entries", ())] > 0 and ("cid_auth_zone_serial", (("zone", "ex.cid."),)) in after
