"""The HTTP front end over real loopback sockets (127.0.96.0/24), resolving the signed test
hierarchy served by our authoritative servers: /v1/resolve and /v1/find (JSON validated
against spec/resolution.schema.json, msgpack), policy refusals, DoH compared with UDP,
/metrics parsed and counted, /v1/openapi.json against the mounted routes, hostile input."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from pathlib import Path

import aiohttp
import dns.asyncquery
import dns.message
import dns.rcode
import jsonschema
import msgpack
import pytest
from prometheus_client.parser import text_string_to_metric_families

from resolver import Resolver
from resolver.http import HttpFrontEnd, make_app
from resolver.service import RecursiveServer
from support import discovery_zones as D
from support import federation as F

HOST = "127.0.96.1"
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "spec" / "resolution.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


@pytest.fixture(scope="module")
def fed():
    return F.build(now=time.time())


class Service:
    def __init__(self, fed, **resolver_options):
        self.fed, self.options = fed, resolver_options

    async def __aenter__(self):
        self._serving = F.serving(self.fed)
        port = await self._serving.__aenter__()
        anchor = self.options.pop("anchor", self.fed.anchor())
        self.resolver = Resolver(self.fed.hints(), anchor, port=port, timeout=1.0, **self.options)
        self.dns = RecursiveServer(self.resolver, [(HOST, 0)])
        await self.dns.start()
        self.http = HttpFrontEnd(make_app(self.dns, self.resolver), HOST, 0)
        await self.http.start()
        self.base = f"http://{HOST}:{self.http.address[1]}"
        self.session = aiohttp.ClientSession()
        return self

    async def get(self, path: str, **kw):
        async with self.session.get(self.base + path, **kw) as response:
            return response.status, response.content_type, await response.read()

    async def metrics(self) -> dict[tuple, float]:
        status, _, body = await self.get("/metrics")
        assert status == 200
        out = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return out

    async def __aexit__(self, *exc):
        await self.session.close()
        await self.http.close()
        await self.dns.close()
        await self.resolver.close()
        await self._serving.__aexit__(*exc)


def is_error(status: int, ctype: str, body: bytes, code: str | None = None) -> dict:
    assert ctype == "application/json", body[:200]
    doc = json.loads(body)
    assert doc["status"] == status and isinstance(doc["message"], str) and "Traceback" not in body.decode()
    if code is not None:
        assert doc["error"] == code, doc
    return doc


async def test_resolve_json_and_msgpack_match_the_schema_and_the_python_api(fed):
    async with Service(fed) as s:
        status, ctype, body = await s.get("/v1/resolve/cid:pool-7.bj.cmcc.cid")
        assert status == 200 and ctype == "application/json"
        doc = json.loads(body)
        VALIDATOR.validate(doc)
        assert doc["status"] == "secure" and doc["capabilities"] == {"accel_count": 8, "accel_kind": "gpu"}
        assert doc["endpoints"][0]["addresses"] == ["192.0.2.7", "2001:db8::7"]
        direct = (await s.resolver.resolve("cid:pool-7.bj.cmcc.cid")).to_json()
        assert {k: v for k, v in doc.items() if k != "ttl"} == {k: v for k, v in direct.items() if k != "ttl"}
        status, ctype, body = await s.get("/v1/resolve/pool-7.bj.cmcc.cid.",
                                          headers={"Accept": "application/msgpack"})
        assert status == 200 and ctype == "application/msgpack"
        packed = msgpack.unpackb(body)
        VALIDATOR.validate(packed)
        assert packed["endpoints"] == doc["endpoints"] and packed["load"] == doc["load"]
        status, ctype, body = await s.get("/v1/resolve/cid:pool-7.bj.cmcc.cid", headers={"Accept": "text/csv"})
        is_error(406, ctype, body, "not_acceptable")


async def test_not_found_bad_identifier_and_policy_refusals(fed):
    async with Service(fed) as s:
        status, ctype, body = await s.get("/v1/resolve/cid:nope.bj.cmcc.cid")
        doc = is_error(404, ctype, body, "nxdomain")
        VALIDATOR.validate(doc["resolution"])
        assert doc["resolution"]["status"] == "secure"
        for bad in ("cid:bad..name", "cid:" + "a" * 400, "cid:x_y z"):
            status, ctype, body = await s.get("/v1/resolve/" + bad)
            is_error(400, ctype, body, "bad_identifier")
    # Unsigned open.cid. is insecure: accepted and marked, refused under require_secure (403).
    async with Service(fed, require_secure=True) as s:
        status, ctype, body = await s.get("/v1/resolve/cid:pool-1.open.cid")
        doc = is_error(403, ctype, body, "insecure")
        assert doc["dns_status"] == "insecure" and "capabilities" not in body.decode()
    # Without a trust anchor nothing validates: refused as unvalidated (403).
    async with Service(fed, anchor=None) as s:
        status, ctype, body = await s.get("/v1/resolve/cid:pool-7.bj.cmcc.cid")
        is_error(403, ctype, body, "unvalidated")


async def test_bogus_is_a_502_error_without_data(fed):
    forged = F.build(now=time.time())  # same names, other keys: the anchor of fed does not match
    async with Service(forged, anchor=fed.anchor()) as s:
        status, ctype, body = await s.get("/v1/resolve/cid:pool-7.bj.cmcc.cid")
        doc = is_error(502, ctype, body, "bogus")
        assert doc["dns_status"] == "bogus" and "192.0.2.7" not in body.decode()
        m = await s.metrics()
        assert m[("cid_validation_outcomes_total", (("status", "bogus"),))] >= 1


async def test_find_uses_the_cli_query_language_and_errors():
    async with Service(D.build()) as s:
        status, ctype, body = await s.get("/v1/find", params=[("namespace", "cid:bj.cmcc.cid"),
                                                             ("where", "accel_count>=8"), ("limit", "5")])
        assert status == 200, body
        doc = json.loads(body)
        for r in doc["results"]:
            VALIDATOR.validate(r)
        assert [r["identifier"] for r in doc["results"]] == ["cid:pool-7.bj.cmcc.cid"]
        status, _, body = await s.get("/v1/find", params={"namespace": "cid:bj.cmcc.cid", "where": "accel_count>=9"})
        assert status == 200 and json.loads(body)["results"] == []
        status, ctype, body = await s.get("/v1/find", params={"namespace": "cid:bj.cmcc.cid", "where": "bogus_key>1"})
        doc = is_error(400, ctype, body, "bad_condition")
        assert doc["key"] == "bogus_key" and "bogus_key" in doc["message"]
        status, ctype, body = await s.get("/v1/find", params={"namespace": "cid:bj.cmcc.cid", "where": "accel_count>=lots"})
        doc = is_error(400, ctype, body, "bad_condition")
        assert doc["key"] == "accel_count"
        status, ctype, body = await s.get("/v1/find", params={"namespace": "cid:bj.cmcc.cid", "sort": "nokey+"})
        assert is_error(400, ctype, body, "bad_sort")["key"] == "nokey"
        for params in ({"where": "accel_count>1"}, {"namespace": "cid:bj.cmcc.cid", "limit": "0"},
                       {"namespace": "cid:bj.cmcc.cid", "frobnicate": "1"}):
            status, ctype, body = await s.get("/v1/find", params=params)
            is_error(400, ctype, body)


async def test_doh_get_and_post_answer_as_udp_does(fed):
    async with Service(fed) as s:
        for rdtype in ("SVCB", "TYPE65380", "A"):
            q = dns.message.make_query("pool-7.bj.cmcc.cid.", rdtype, want_dnssec=True)
            q.id = 0  # RFC 8484 §4.1
            udp = await dns.asyncquery.udp(q, HOST, port=s.dns.addresses[0][1], timeout=5)
            text = base64.urlsafe_b64encode(q.to_wire()).rstrip(b"=").decode()
            status, ctype, body = await s.get("/dns-query", params={"dns": text})
            assert status == 200 and ctype == "application/dns-message"
            got = dns.message.from_wire(body)
            async with s.session.post(s.base + "/dns-query", data=q.to_wire(),
                                      headers={"Content-Type": "application/dns-message"}) as r:
                posted = dns.message.from_wire(await r.read())
            for m in (got, posted):
                assert m.id == 0 and m.rcode() == udp.rcode() and m.flags == udp.flags
                assert [(x.name, x.rdtype, sorted(x)) for x in m.answer] == \
                       [(x.name, x.rdtype, sorted(x)) for x in udp.answer]
        status, ctype, body = await s.get("/dns-query", params={"dns": "AAAA"})
        is_error(400, ctype, body, "bad_dns_message")
        status, ctype, body = await s.get("/dns-query", params={"dns": "!!!"})
        is_error(400, ctype, body)
        async with s.session.post(s.base + "/dns-query", data=b"x" * 70000,
                                  headers={"Content-Type": "application/dns-message"}) as r:
            is_error(413, r.content_type, await r.read())
        async with s.session.post(s.base + "/dns-query", data=b"x" * 20, headers={"Content-Type": "text/plain"}) as r:
            is_error(415, r.content_type, await r.read())


async def test_metrics_count_known_queries(fed):
    async with Service(fed) as s:
        before = await s.metrics()
        port = s.dns.addresses[0][1]
        q = dns.message.make_query("pool-7.bj.cmcc.cid.", "A")
        for _ in range(3):
            assert (await dns.asyncquery.udp(q, HOST, port=port, timeout=5)).rcode() == dns.rcode.NOERROR
        nx = dns.message.make_query("nothing-here.bj.cmcc.cid.", "A")
        assert (await dns.asyncquery.tcp(nx, HOST, port=port, timeout=5)).rcode() == dns.rcode.NXDOMAIN
        await s.get("/dns-query", params={"dns": base64.urlsafe_b64encode(q.to_wire()).rstrip(b"=").decode()})
        await s.get("/v1/resolve/cid:pool-7.bj.cmcc.cid")
        await s.get("/v1/resolve/cid:pool-7.bj.cmcc.cid")
        after = await s.metrics()

        def moved(name, **labels):
            key = (name, tuple(sorted(labels.items())))
            return after.get(key, 0) - before.get(key, 0)

        assert moved("cid_dns_queries_total", protocol="udp", rcode="NOERROR") == 3
        assert moved("cid_dns_queries_total", protocol="tcp", rcode="NXDOMAIN") == 1
        assert moved("cid_dns_queries_total", protocol="doh", rcode="NOERROR") == 1
        assert moved("cid_cache_misses_total", layer="resolution") == 1
        assert moved("cid_cache_hits_total", layer="resolution") == 1
        assert moved("cid_cache_hits_total", layer="lookup") >= 1  # the DoH A was cached by UDP
        assert moved("cid_validation_outcomes_total", status="secure") >= 3
        assert moved("cid_upstream_query_seconds_count", outcome="response") >= 1
        assert moved("cid_http_requests_total", route="/v1/resolve/{identifier}", status="200") == 2
        assert ("cid_stale_answers_total", ()) in after and ("cid_cache_evictions_total", ()) in after


async def test_openapi_lists_exactly_the_mounted_routes_and_healthz(fed):
    async with Service(fed) as s:
        status, _, body = await s.get("/v1/openapi.json")
        doc = json.loads(body)
        assert status == 200 and doc["openapi"].startswith("3.1")
        documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
        mounted = {(r.method, r.resource.canonical) for r in s.http.app.router.routes() if r.method != "HEAD"}
        assert documented == mounted
        status, _, body = await s.get("/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        status, ctype, body = await s.get("/no/such/route")
        is_error(404, ctype, body)
        async with s.session.delete(s.base + "/healthz") as r:
            is_error(405, r.content_type, await r.read())


async def raw(host: str, port: int, data: bytes, wait: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(65536), wait)
    finally:
        writer.close()


async def test_hostile_requests_get_json_errors_and_the_server_keeps_serving(fed):
    rng = random.Random(11)
    alphabet = "abc/%?&=;:.-_~!$'()*+,[]{}<>\"\\ \x00\xff#@é"
    async with Service(fed) as s:
        port = s.http.address[1]
        for _ in range(60):  # bounded fuzz of paths and query strings
            path = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 40)))
            prefix = rng.choice(["/v1/resolve/", "/v1/find?", "/dns-query?dns=", "/", "/v1/find?where="])
            target = (prefix + path).encode("utf-8", "replace").replace(b" ", b"%20").replace(b"#", b"%23")
            response = await raw(HOST, port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            head, _, body = response.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1."), response[:100]
            code = int(head.split()[1])
            if code >= 400:
                assert b"application/json" in head and json.loads(body)["status"] == code, response[:300]
            assert b"Traceback" not in response
        # Unparseable request, a request line too long, too many headers: aiohttp's parser, JSON all the same.
        for data in (b"\x16\x03\x01garbage\r\n\r\n", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                     b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(100)) + b"\r\n"):
            response = await raw(HOST, port, data)
            head, _, body = response.partition(b"\r\n\r\n")
            assert int(head.split()[1]) in (400, 413, 414, 431) and json.loads(body)["error"], response[:300]
        status, _, _ = await s.get("/healthz")
        assert status == 200


async def test_slow_client_is_cut_off(fed, monkeypatch):
    from resolver.http import app as app_module
    monkeypatch.setattr(app_module, "IDLE_TIMEOUT", 0.5)
    async with Service(fed) as s:
        reader, writer = await asyncio.open_connection(HOST, s.http.address[1])
        writer.write(b"GET /healthz HTTP/1.1\r\nHost:")  # never finished (slowloris)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server
        writer.close()
