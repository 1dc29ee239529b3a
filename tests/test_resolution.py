"""Resolution/Endpoint: the JSON schema of `cid resolve --json` and the HTTP API."""

from __future__ import annotations

import json

from resolver import Endpoint, Resolution, Status
from resolver.engine.result import weakest


def sample(**kw) -> Resolution:
    base = dict(identifier="cid:pool-7.bj.cmcc.cid", name="pool-7.bj.cmcc.cid.", rcode="NOERROR",
                status=Status.SECURE, why="ok", ttl=30,
                endpoints=(Endpoint("pool-7.bj.cmcc.cid.", 1, 8443, ("h2",), ("192.0.2.7",)),),
                capabilities={"accel_kind": "gpu"}, load={"util": 0.5})
    base.update(kw)
    return Resolution(**base)


def test_json_has_exactly_the_agreed_keys():
    doc = sample().to_json()
    assert list(doc) == ["identifier", "name", "rcode", "status", "why", "ttl", "endpoints",
                         "capabilities", "load", "stale"]
    assert doc["endpoints"] == [{"target": "pool-7.bj.cmcc.cid.", "priority": 1, "port": 8443,
                                 "alpn": ["h2"], "addresses": ["192.0.2.7"]}]
    assert doc["status"] == "secure" and doc["load"] == {"util": 0.5}
    assert json.loads(json.dumps(doc)) == doc
    assert sample(load=None).to_json()["load"] is None


def test_found_needs_data_and_no_bogus():
    assert sample().found
    assert not sample(rcode="NXDOMAIN", endpoints=(), capabilities={}, load=None).found
    assert not sample(endpoints=(), capabilities={}).found  # NODATA
    assert not sample(status=Status.BOGUS).found
    assert sample(endpoints=()).found  # capabilities alone


def test_weakest_status_order():
    assert weakest(Status.SECURE, Status.INSECURE) is Status.INSECURE
    assert weakest(Status.INSECURE, Status.INDETERMINATE) is Status.INDETERMINATE
    assert weakest(Status.SECURE, Status.BOGUS, Status.INDETERMINATE) is Status.BOGUS
    assert weakest(Status.SECURE) is Status.SECURE
