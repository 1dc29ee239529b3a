"""`cid serve resolver` under a random-subdomain flood, driven as a user drives it: the CLI in a
subprocess, our authoritative servers (the signed test federation) counting every query they
receive, random names asked with dnspython. Aggressive use of the validated NSEC chain
(RFC 8198) must answer them all NXDOMAIN with AD while the zone's server is asked at most once
per NSEC span, and not at all once the chain is cached."""

from __future__ import annotations

import collections
import random
import string
import time

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from resolver.auth import server as auth_server
from support import federation as F
from support.demo_proc import serving_resolver
from support.net import free_port

N = dns.name.from_text
ZONE = "bj.cmcc.cid."
ADDRESS = "127.0.61.21"  # the resolver under test

received: collections.Counter[str] = collections.Counter()  # queries per authoritative address


class CountingAuthServer(auth_server.AuthServer):
    """An AuthServer that counts each query it receives (repeats too: no UDP response cache,
    so every datagram reaches ``handle``)."""

    def udp_cache(self):
        return {}, None

    def handle(self, wire, tcp, later):
        for host, _ in self.listen:
            received[host] += 1
        return super().handle(wire, tcp, later)


class Service:
    def __init__(self, fed: F.Federation, address: str, port: int):
        self.fed, self.address, self.port = fed, address, port

    def ask(self, name: str, rdtype: str, *, do: bool) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=do)
        if not do:
            query.flags |= dns.flags.AD  # RFC 6840 §5.7: AD without DO asks for the AD bit only
        return dns.query.udp(query, self.address, port=self.port, timeout=5)

    def upstream(self) -> dict[str, int]:
        return dict(received)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    fed = F.build(now=time.time())  # a real process validates against the real clock
    work = tmp_path_factory.mktemp("aggressive")
    anchor = work / "anchor.key"
    anchor.write_text(fed.anchor_text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth_server, "AuthServer", CountingAuthServer)  # what serving_stores starts
        servers = F.stores_serving_in_thread(fed.stores())
        port = servers.__enter__()
    try:
        listen = free_port(ADDRESS)
        args = ["--hint", f"cid.={fed.addresses['cid.']}", "--port", str(port), "--trust-anchor", str(anchor)]
        with serving_resolver(args, ADDRESS, listen, work / "resolver.log"):
            yield Service(fed, ADDRESS, listen)
    finally:
        servers.__exit__(None, None, None)


def random_label(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(12))


def assert_secure_nxdomain(response: dns.message.Message, name: str, do: bool) -> None:
    assert response.rcode() == dns.rcode.NXDOMAIN, (name, response)
    assert response.flags & dns.flags.AD, (name, response)
    assert not response.answer
    kinds = {(r.rdtype, r.covers) for r in response.authority}
    assert (dns.rdatatype.SOA, 0) in kinds and response.authority[0].name == N(ZONE)
    if do:  # the proof, for a validator downstream (RFC 4035 §3.1.3.2)
        assert {(dns.rdatatype.NSEC, 0), (dns.rdatatype.RRSIG, dns.rdatatype.NSEC),
                (dns.rdatatype.RRSIG, dns.rdatatype.SOA)} <= kinds, response
    else:
        assert kinds == {(dns.rdatatype.SOA, 0)}, response


def test_random_names_cost_at_most_one_query_per_nsec_span_then_none(service):
    fed = service.fed
    bj = fed.addresses[ZONE]
    zone = fed.zones[ZONE]
    owners = sorted(name for name, node in zone.nodes.items()
                    if node.get_rdataset(1, dns.rdatatype.NSEC) is not None)
    spans = len(owners)
    warm = service.ask(f"pool-7.{ZONE}", "A", do=True)  # delegations and keys in place
    assert warm.rcode() == dns.rcode.NOERROR and warm.flags & dns.flags.AD

    rng = random.Random(7)
    before = service.upstream()
    for i in range(200):
        name = f"{random_label(rng)}.{ZONE}"
        assert_secure_nxdomain(service.ask(name, rng.choice(["A", "SVCB", "TXT"]), do=i % 2 == 0), name, i % 2 == 0)
    first = service.upstream()
    assert first.get(bj, 0) - before.get(bj, 0) <= spans, (first, before, spans)

    # The whole chain cached: one name inside every span the single-label names fall in (the
    # apex's, then each owner's first label followed by "0", just after it in canonical order).
    apex = N(ZONE)
    for owner in owners:
        label = "0" if owner == apex else owner.relativize(apex).labels[-1].decode() + "0"
        name = f"{label}.{ZONE}"
        assert_secure_nxdomain(service.ask(name, "A", do=True), name, True)
    cached = service.upstream()
    assert cached.get(bj, 0) - before.get(bj, 0) <= spans, (cached, before, spans)

    for i in range(50):
        name = f"{random_label(rng)}.{ZONE}"
        assert_secure_nxdomain(service.ask(name, rng.choice(["A", "AAAA", "SVCB", "TXT", "MX"]), do=i % 2 == 1),
                               name, i % 2 == 1)
    assert service.upstream() == cached  # no server was asked anything
