"""HTTP front end of ``cid serve resolver --http``: the JSON/msgpack API (/v1/resolve, /v1/find),
DoH (RFC 8484, /dns-query), /healthz and /metrics, on the DNS front end's loop, Resolver and
cache (spec/service.md "HTTP API")."""

from .app import DnsWithHttp, HttpFrontEnd, make_app, make_auth_app

__all__ = ["DnsWithHttp", "HttpFrontEnd", "make_app", "make_auth_app"]
