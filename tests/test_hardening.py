"""Hardening of the engine without sockets: random IDs, 0x20 case and its per-server fallback,
EDNS fallback, backoff, response matching, bailiwick scrubbing and the resolution limits.
Responses come from the real authoritative code (support.federation), rewritten by a hostile
or broken server where the test says so."""

from __future__ import annotations

import random
from collections.abc import Callable

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from resolver.engine import selection as S
from resolver.engine import trace as ev
from resolver.engine.actions import Done, Send
from resolver.engine.cache import Cache
from resolver.engine.case import Match, match, randomise
from resolver.engine.engine import MAX_NS_LOOKUPS, MAX_REFERRALS, Engine
from resolver.engine.scrub import scrub
from resolver.status import Status
from support import federation as F

N = dns.name.from_text
A = dns.rdatatype.A
BJ, OPEN = ("127.0.0.4", 53), ("127.0.0.5", 53)
Responder = Callable[[Send], "dns.message.Message | None"]


@pytest.fixture(scope="module")
def fed():
    return F.build()


def engine(fed, qname, qtype="A", *, cache=None, hints=None, anchor=True, seed=1, **kw) -> Engine:
    return Engine(qname, qtype, hints or fed.hints(), fed.anchor() if anchor else None,
                  cache if cache is not None else Cache(lambda: fed.now), now=lambda: fed.now,
                  rng=random.Random(seed), **kw)


def honest(fed, aliases: dict[str, str] | None = None) -> Responder:
    stores = fed.stores()
    for alias, real in (aliases or {}).items():
        stores[alias] = stores[real]

    def respond(action: Send):
        store = stores.get(action.server[0])
        if store is None:
            return None
        wire = F.answer_query(store, action.query.to_wire(), tcp=action.tcp)
        return dns.message.from_wire(wire) if wire is not None else None
    return respond


def drive(e: Engine, respond: Responder, max_steps: int = 300) -> tuple[object, list[Send]]:
    """Run ``e`` to the end; ``respond`` returns a message, or None for a timeout."""
    sent: list[Send] = []
    for _ in range(max_steps):
        action = e.next_action()
        if isinstance(action, Done):
            return action.result, sent
        sent.append(action)
        response = respond(action)
        if response is None:
            e.on_timeout(action.token)
        else:
            e.on_response(action.token, response, action.server)
    raise AssertionError("engine did not finish")


def qname_of(send: Send) -> dns.name.Name:
    return send.query.question[0].name


def letters(name: dns.name.Name) -> bytes:
    return b"".join(name.labels)


# --- random query ID, 0x20 case -----------------------------------------------------------------

def test_ids_and_case_are_random_yet_replayable_with_a_seeded_source(fed):
    def run(seed):
        _, sent = drive(engine(fed, "pool-7.bj.cmcc.cid.", seed=seed), honest(fed))
        return [(s.query.id, letters(qname_of(s))) for s in sent]
    first = run(5)
    assert first == run(5)  # an injected source replays a resolution exactly
    assert first != run(6)
    ids = [i for i, _ in first]
    assert len(set(ids)) == len(ids) > 3
    assert any(name != name.lower() for _, name in first)  # some letters went upper case


def test_default_source_is_the_os_csprng(fed):
    e = Engine("pool-7.bj.cmcc.cid.", "A", fed.hints(), fed.anchor(), Cache(lambda: fed.now), now=lambda: fed.now)
    assert isinstance(e.rng, random.SystemRandom)


def test_randomise_changes_only_letter_case():
    name = N("gpu-7.x_y.Bj.CMCC.cid.")
    rng = random.Random(0)
    variants = {letters(randomise(name, rng)) for _ in range(50)}
    assert len(variants) > 20
    for v in variants:
        assert v.lower() == letters(name).lower() and b"-" in v and b"_" in v and b"7" in v


def test_results_and_cache_use_lower_case_names(fed):
    cache = Cache(lambda: fed.now)
    result, sent = drive(engine(fed, "Pool-7.BJ.cmcc.cid.", cache=cache), honest(fed))
    assert result.status is Status.SECURE
    assert letters(result.rrset.name) == b"pool-7bjcmcccid"
    assert cache.get_rrset(N("pool-7.bj.cmcc.cid."), A) is not None


def test_case_randomisation_can_be_turned_off(fed):
    result, sent = drive(engine(fed, "pool-7.bj.cmcc.cid.", case_randomisation=False), honest(fed))
    assert result.status is Status.SECURE
    assert all(letters(qname_of(s)) == letters(qname_of(s)).lower() for s in sent)


def test_reply_in_the_wrong_case_is_ignored_and_its_data_never_used(fed):
    """A spoofer who guessed ID and port but not the case: the forged address never shows,
    the real server is asked again and keeps its 0x20 protection."""
    respond, spoofed = honest(fed), []

    def spoof_once(action):
        response = respond(action)
        if action.server == BJ and not spoofed and response.answer:
            spoofed.append(action)
            response.question[0].name = dns.name.Name([label.swapcase() for label in qname_of(action).labels])
            response.answer = [dns.rrset.from_text(r.name, r.ttl, "IN", "A", "203.0.113.66") if r.rdtype == A else r
                               for r in response.answer]
        return response
    cache = Cache(lambda: fed.now)
    result, sent = drive(engine(fed, "pool-7.bj.cmcc.cid.", cache=cache), spoof_once)
    assert spoofed and result.status is Status.SECURE
    assert [rd.address for rd in result.rrset] == ["192.0.2.7"]
    assert any(isinstance(t, ev.ServerFailed) and "case" in t.reason for t in result.trace)
    assert cache.servers.uses_case(BJ)


def test_server_that_does_not_echo_case_is_asked_in_lower_case_for_a_while(fed):
    respond = honest(fed)

    def lowercasing(action):
        response = respond(action)
        if action.server == BJ and response is not None:
            response.question[0].name = qname_of(action).canonicalize()
        return response
    clock = [fed.now]
    cache = Cache(lambda: clock[0])
    e = Engine("pool-7.bj.cmcc.cid.", "A", fed.hints(), fed.anchor(), cache, now=lambda: clock[0],
               rng=random.Random(2))
    result, sent = drive(e, lowercasing)
    assert result.status is Status.SECURE
    to_bj = [letters(qname_of(s)) for s in sent if s.server == BJ]
    assert to_bj[0] != to_bj[0].lower() and to_bj[1] != to_bj[1].lower()  # two strikes ...
    assert all(n == n.lower() for n in to_bj[2:])                        # ... then lower case
    assert not cache.servers.uses_case(BJ)
    again, sent = drive(Engine("pool-7.bj.cmcc.cid.", "AAAA", fed.hints(), fed.anchor(), cache,
                               now=lambda: clock[0], rng=random.Random(3)), lowercasing)
    assert again.status is Status.SECURE
    assert not any(isinstance(t, ev.ServerFailed) for t in again.trace)  # no wasted queries
    clock[0] += S.NO_CASE_FOR + 1
    assert cache.servers.uses_case(BJ)  # re-probed later


# --- EDNS fallback ------------------------------------------------------------------------------

def formerr_to_edns(respond: Responder, server, *, keep_question=True, with_opt=False) -> Responder:
    def wrapped(action):
        if action.server == server and action.query.edns >= 0:
            response = dns.message.make_response(action.query)
            response.set_rcode(dns.rcode.FORMERR)
            if not with_opt:
                response.use_edns(False)
            if not keep_question:
                response.question = []
            return response
        return respond(action)
    return wrapped


@pytest.mark.parametrize("keep_question", [True, False])
def test_formerr_to_edns_is_retried_without_edns_and_remembered(fed, keep_question):
    cache = Cache(lambda: fed.now)
    respond = formerr_to_edns(honest(fed), OPEN, keep_question=keep_question)
    result, sent = drive(engine(fed, "pool-1.open.cid.", cache=cache), respond)
    assert result.rcode == "NOERROR" and result.status is Status.INSECURE
    to_open = [s.query.edns for s in sent if s.server == OPEN]
    assert to_open[0] >= 0 and all(edns < 0 for edns in to_open[1:])
    # Remembered only from a reply that repeated the question (0x20 included): a bare FORMERR
    # is what a blind spoofer can forge most cheaply, so it costs EDNS for one question only.
    assert cache.servers.uses_edns(OPEN) is not keep_question and cache.servers.uses_edns(BJ)
    again, sent = drive(engine(fed, "pool-1.open.cid.", "SVCB", cache=cache), respond)
    assert again.rcode == "NOERROR"
    first_to_open = next(s for s in sent if s.server == OPEN)
    assert (first_to_open.query.edns < 0) is keep_question  # remembered: no wasted query


def test_formerr_with_opt_is_not_a_reason_to_drop_edns(fed):
    """An EDNS-aware server that returns FORMERR objects to something else; a bare FORMERR is
    also all a blind spoofer can send without knowing what the server supports."""
    cache = Cache(lambda: fed.now)
    result, _ = drive(engine(fed, "pool-1.open.cid.", cache=cache),
                      formerr_to_edns(honest(fed), OPEN, with_opt=True))
    assert result.rcode == "SERVFAIL" and "FORMERR" in result.why
    assert cache.servers.uses_edns(OPEN)


def test_edns_downgrade_of_a_signed_zone_is_bogus_not_insecure(fed):
    """Without EDNS there is no DO bit and no RRSIG: a signed zone's data cannot validate."""
    result, _ = drive(engine(fed, "pool-7.bj.cmcc.cid."), formerr_to_edns(honest(fed), BJ))
    assert result.status is Status.BOGUS and result.rrset is None


def test_edns_payload_is_configurable(fed):
    _, sent = drive(engine(fed, "pool-7.bj.cmcc.cid.", edns_payload=4096), honest(fed))
    assert {s.query.payload for s in sent} == {4096}
    assert all(s.query.ednsflags & dns.flags.DO and s.query.flags & dns.flags.CD
               and not s.query.flags & dns.flags.RD for s in sent)


# --- retries and backoff ------------------------------------------------------------------------

@pytest.mark.parametrize("retries, waits", [(0, [2.0]), (1, [2.0, 4.0]), (2, [2.0, 4.0, 8.0])])
def test_servers_that_time_out_are_retried_with_doubled_timeouts(fed, retries, waits):
    respond = honest(fed)
    dead = ("127.0.0.12", 53)

    def dead_server(action):
        return None if action.server == dead else respond(action)
    hints = {"cid.": ["127.0.0.12", "127.0.0.2"], "far-ops.net.": ["127.0.0.7"]}
    result, sent = drive(engine(fed, "pool-7.bj.cmcc.cid.", hints=hints, retries=retries, timeout=2.0),
                         dead_server)
    assert result.status is Status.SECURE
    first_question = qname_of(sent[0]).canonicalize()
    assert [s.timeout for s in sent if s.server == dead and qname_of(s) == first_question] == waits[:1]
    everyone_dead, sent = drive(engine(fed, "pool-7.bj.cmcc.cid.", hints={"cid.": ["127.0.0.12"]},
                                       retries=retries, timeout=2.0), dead_server)
    assert everyone_dead.rcode == "SERVFAIL"
    per_question: dict = {}
    for s in sent:
        per_question.setdefault(qname_of(s).canonicalize(), []).append(s.timeout)
    assert all(w == waits for w in per_question.values()), per_question


# --- answers are matched on ID, QR and question -------------------------------------------------

@pytest.mark.parametrize("mutate", ["qr", "qtype", "qclass", "data-without-question"])
def test_replies_that_do_not_answer_the_query_are_not_accepted(fed, mutate):
    respond = honest(fed)

    def forge(action):
        response = respond(action)
        if mutate == "qr":
            response.flags &= ~dns.flags.QR
        elif mutate == "qtype":
            response.question = [dns.rrset.RRset(qname_of(action), dns.rdataclass.IN, dns.rdatatype.AAAA)]
        elif mutate == "qclass":
            response.question = [dns.rrset.RRset(qname_of(action), dns.rdataclass.CH, A)]
        else:
            response.question = []
            response.answer = [dns.rrset.from_text("cmcc.cid.", 60, "IN", "A", "203.0.113.5")]
        return response
    result, sent = drive(engine(fed, "pool-7.bj.cmcc.cid.", qname_minimisation=False), forge)
    assert result.rcode == "SERVFAIL" and result.rrset is None
    assert len(sent) == 1  # the only server of cid. failed; nothing else was believed


def test_match_classifies_replies():
    q = dns.message.make_query(N("PoOl-7.Bj.cid."), "A", id=4242)
    exact = dns.message.make_response(q)
    assert match(q, exact) is Match.EXACT
    lower = dns.message.make_response(q)
    lower.question = [dns.rrset.RRset(N("pool-7.bj.cid."), dns.rdataclass.IN, A)]
    assert match(q, lower) is Match.CASE
    bare = dns.message.make_response(q)
    bare.question = []
    bare.set_rcode(dns.rcode.NOERROR)
    assert match(q, bare) is Match.NO_QUESTION  # a failed try at once; its data is never used (upstream._ask)
    bare.set_rcode(dns.rcode.FORMERR)
    assert match(q, bare) is Match.NO_QUESTION
    other = dns.message.make_response(q)
    other.id ^= 0x8000
    assert match(q, other) is Match.MISMATCH


# --- bailiwick scrubbing ------------------------------------------------------------------------

def test_scrubber_drops_hostile_authority_and_additional_data():
    q = dns.message.make_query("a.z.cid.", "A")
    r = dns.message.make_response(q)
    r.answer = [dns.rrset.from_text("a.z.cid.", 60, "IN", "CNAME", "b.other.cid."),
                dns.rrset.from_text("b.other.cid.", 60, "IN", "A", "203.0.113.1")]   # chain leaves z.cid.
    r.authority = [dns.rrset.from_text("other.cid.", 60, "IN", "NSEC", "zz.other.cid. A"),  # not ours
                   dns.rrset.from_text("cid.", 60, "IN", "DS", "1 15 2 " + "00" * 32),    # parent's data
                   dns.rrset.from_text("cid.", 60, "IN", "SOA", ". . 1 1 1 1 1"),        # a parent SOA
                   dns.rrset.from_text("sib.z.cid.", 60, "IN", "NS", "ns.sib.z.cid."),   # cut off the path
                   dns.rrset.from_text("z.cid.", 60, "IN", "NS", "ns.z.cid.")]
    r.additional = [dns.rrset.from_text("ns.sib.z.cid.", 60, "IN", "A", "203.0.113.2"),  # for the dropped NS
                    dns.rrset.from_text("ns.z.cid.", 60, "IN", "A", "192.0.2.53")]
    s = scrub(r, N("z.cid."), N("a.z.cid."))
    assert [(str(x.name), x.rdtype) for x in s.answer] == [("a.z.cid.", dns.rdatatype.CNAME)]
    assert [str(x.name) for x in s.authority] == ["z.cid."]
    assert [str(x.name) for x in s.additional] == ["ns.z.cid."]
    assert s.dropped == 6


def test_out_of_bailiwick_glue_in_a_referral_is_not_used(fed):
    """The cid. server points cmcc.cid. at an attacker by glue for a name outside cid."""
    respond = honest(fed)

    def poison(action):
        response = respond(action)
        if action.server == ("127.0.0.2", 53):
            for rrset in response.authority:
                if rrset.rdtype == dns.rdatatype.NS and rrset.name == N("cmcc.cid."):
                    response.authority = [dns.rrset.from_text("cmcc.cid.", 3600, "IN", "NS", "ns.evil.example."),
                                          *[r for r in response.authority if r.rdtype != dns.rdatatype.NS]]
                    response.additional = [dns.rrset.from_text("ns.evil.example.", 3600, "IN", "A", "203.0.113.9")]
        return response
    result, sent = drive(engine(fed, "pool-7.bj.cmcc.cid."), poison)
    assert result.rcode == "SERVFAIL"
    assert not any(s.server[0].startswith("203.0.113.") for s in sent)


# --- limits -------------------------------------------------------------------------------------

def endless_referrals(base: dns.name.Name) -> Responder:
    """Server 127.0.1.d serves the zone d labels below ``base`` and refers every question one
    label further down, with glue to 127.0.1.(d+1): a delegation chain without end."""
    def respond(action):
        depth = int(action.server[0].split(".")[-1])
        zone_labels = len(base) + depth
        name = qname_of(action)
        response = dns.message.make_response(action.query)
        if len(name) <= zone_labels:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        child = name.canonicalize().split(zone_labels + 1)[1]
        ns = dns.name.Name((b"ns",) + child.labels)
        response.authority = [dns.rrset.from_text(child, 60, "IN", "NS", ns.to_text())]
        response.additional = [dns.rrset.from_text(ns, 60, "IN", "A", f"127.0.1.{depth + 1}")]
        return response
    return respond


@pytest.mark.parametrize("qmin", [True, False])
def test_delegation_depth_is_bounded(fed, qmin):
    qname = N(".".join(f"l{i}" for i in range(40)) + ".deep.")
    e = Engine(qname, "A", {"deep.": ["127.0.1.0"]}, None, Cache(lambda: fed.now), now=lambda: fed.now,
               rng=random.Random(1), qname_minimisation=qmin)
    result, sent = drive(e, endless_referrals(N("deep.")))
    assert result.rcode == "SERVFAIL" and "referrals" in result.why
    assert len(sent) <= MAX_REFERRALS + 2


def test_name_servers_without_glue_are_resolved_at_most_three_per_referral(fed):
    """A referral naming many glueless name servers must not turn into a query flood."""
    respond = honest(fed)

    def many_ns(action):
        if action.server == ("127.0.0.2", 53) and qname_of(action).canonicalize() == N("evil.cid."):
            response = dns.message.make_response(action.query)
            response.authority = [dns.rrset.from_text("evil.cid.", 60, "IN", "NS",
                                                      *[f"ns{i}.far-ops.net." for i in range(20)])]
            return response
        return respond(action)
    result, sent = drive(engine(fed, "x.evil.cid."), many_ns)
    assert result.rcode == "SERVFAIL"
    looked_up = {qname_of(s).canonicalize() for s in sent if s.server == ("127.0.0.7", 53)}
    assert len(looked_up) <= MAX_NS_LOOKUPS


def test_total_upstream_queries_are_bounded_whatever_the_servers_do(fed):
    """Every server times out, and every timeout is retried: the budget still ends it."""
    e = engine(fed, "pool-7.bj.cmcc.cid.", hints={"cid.": [f"127.0.2.{i}" for i in range(30)]},
               max_queries=12, retries=5)
    result, sent = drive(e, lambda action: None)
    assert result.rcode == "SERVFAIL" and "budget" in result.why
    assert len(sent) == 12


# --- settings -------------------------------------------------------------------------------------

@pytest.mark.parametrize("line, message", [
    ("retries = 9", "retries must be an integer 0-5"),
    ("edns_payload = 100", "edns_payload must be an integer 512-4096"),
    ('qname_minimisation = "yes"', "qname_minimisation must be true or false"),
    ("case_randomisation = 1", "case_randomisation must be true or false"),
    ("minimise = false", "[engine]: unknown setting(s) minimise"),
])
def test_bad_engine_settings_are_one_clear_error_naming_the_file(tmp_path, line, message):
    from resolver.client import Resolver, ResolverConfigError
    config = tmp_path / "r.toml"
    config.write_text(f'hints = {{"cid." = ["127.0.0.2"]}}\n[engine]\n{line}\n')
    with pytest.raises(ResolverConfigError) as err:
        Resolver.from_config(config)
    assert str(config) in str(err.value) and message in str(err.value)


def test_engine_settings_reach_every_engine(tmp_path):
    from resolver.client import Resolver
    config = tmp_path / "r.toml"
    config.write_text('hints = {"cid." = ["127.0.0.2"]}\n[engine]\nqname_minimisation = false\n'
                      "case_randomisation = false\nedns_payload = 4096\nretries = 0\n")
    e = Resolver.from_config(config).engine("x.cid.", "A")
    assert (e.qname_minimisation, e.case_randomisation, e.edns_payload, e.retries) == (False, False, 4096, 0)
    d = Resolver({"cid.": ["127.0.0.2"]}).engine("x.cid.", "A")
    assert (d.qname_minimisation, d.case_randomisation, d.edns_payload, d.retries) == (True, True, 1232, 1)
