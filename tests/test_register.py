"""Registration client without sockets: keys, values, endpoints, UPDATE messages, answers, schedule."""

from __future__ import annotations

import struct

import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tsig
import dns.update
import pytest

import resolver  # noqa: F401  (CAPS/LOAD registered)
from resolver import records
from resolver.registration import client, endpoints, messages, tsigkeys, values

SECRET = "ZOExvQuEZSD+4qOkL8jLEtwnVEVdyVlaivW3KaEIkIE="
N = dns.name.from_text


# --- keys ------------------------------------------------------------------------------------

def test_key_on_the_command_line_as_nsupdate_takes_it():
    key = tsigkeys.parse_key(f"upd:{SECRET}")
    assert key.name == N("upd.") and key.algorithm == "hmac-sha256"
    assert tsigkeys.parse_key(f"hmac-sha512:upd:{SECRET}").algorithm == "hmac-sha512"
    assert key.key.algorithm == dns.tsig.HMAC_SHA256
    for bad, why in ((f"upd{SECRET}", "NAME:SECRET"), ("upd:not*base64", "not base64"), ("upd:", "empty"),
                     (f"hmac-md5:upd:{SECRET}", "not one of")):
        with pytest.raises(tsigkeys.TsigKeyError, match=why):
            tsigkeys.parse_key(bad)


def test_key_files_bind_knot_and_plain(tmp_path):
    bind = tmp_path / "bind.key"
    bind.write_text(f'// made by tsig-keygen\nkey "upd" {{\n\talgorithm hmac-sha256;\n\tsecret "{SECRET}";\n}};\n'
                    f'/* another */ key other {{ algorithm hmac-sha384; secret "{SECRET}"; }};\n')
    with pytest.raises(tsigkeys.TsigKeyError, match="2 keys.*--key-name"):
        tsigkeys.read_key_file(bind)
    assert tsigkeys.read_key_file(bind, "upd").secret == SECRET
    assert tsigkeys.read_key_file(bind, "other").algorithm == "hmac-sha384"
    with pytest.raises(tsigkeys.TsigKeyError, match="no key named nope"):
        tsigkeys.read_key_file(bind, "nope")
    knot = tmp_path / "knot.key"
    knot.write_text(f"# hmac-sha256:upd:{SECRET}\nkey:\n  - id: upd\n    algorithm: hmac-sha256\n    secret: {SECRET}\n")
    assert tsigkeys.read_key_file(knot).name == N("upd.")
    plain = tmp_path / "plain"
    plain.write_text(f"upd:{SECRET}\n")
    assert tsigkeys.read_key_file(plain).secret == SECRET
    slashes = tsigkeys.make_key("s", "////" + SECRET[4:])  # a secret with // is not a comment
    (tmp_path / "slashes.key").write_text(tsigkeys.bind_key_text(slashes) + "// trailing comment\n")
    assert tsigkeys.read_key_file(tmp_path / "slashes.key") == slashes
    made = tsigkeys.generate_key("gen")
    (tmp_path / "gen.key").write_text(tsigkeys.bind_key_text(made))
    assert tsigkeys.read_key_file(tmp_path / "gen.key") == made
    (tmp_path / "junk").write_text("hello\nworld\n")
    with pytest.raises(tsigkeys.TsigKeyError, match="junk: expected"):
        tsigkeys.read_key_file(tmp_path / "junk")
    with pytest.raises(tsigkeys.TsigKeyError, match="cannot read"):
        tsigkeys.read_key_file(tmp_path / "missing")


# --- values ----------------------------------------------------------------------------------

def test_caps_values_take_units_and_the_registry_types():
    caps = values.parse_items(["accel_memory_bytes=80GiB", "memory_bytes=512G", "cpu_frequency_hz=3.5GHz",
                               "network_bps=100Gbps", "accel_count=8", "region=cn-bj", "currency=CNY",
                               "accel_compute_capability=9.0", "accel_product=A100-SXM4-40GB",
                               "price_per_hour=2.5", "acme.tier=gold", "acme.ok=true", "acme.n=3",
                               "acme.list=[1,2]", 'acme.s="8"', "acme.cache_bytes=1Ki"])
    assert caps["accel_memory_bytes"] == 80 * 2**30 and caps["memory_bytes"] == 512 * 10**9
    assert caps["cpu_frequency_hz"] == 3_500_000_000 and caps["network_bps"] == 100 * 10**9
    assert caps["accel_compute_capability"] == "9.0" and caps["accel_product"] == "A100-SXM4-40GB"
    assert caps["price_per_hour"] == 2.5 and caps["acme.ok"] is True and caps["acme.n"] == 3
    assert caps["acme.list"] == [1, 2] and caps["acme.s"] == "8" and caps["acme.cache_bytes"] == 1024
    load = values.parse_items(["accel_util_ratio=80%", "queue_wait_s=5min", "latency_s=250ms", "accel_free=3"],
                              "LOAD")
    assert load == {"accel_util_ratio": 0.8, "queue_wait_s": 300, "latency_s": 0.25, "accel_free": 3}


@pytest.mark.parametrize("item, message", [
    ("accel_cuont=8", "unknown key 'accel_cuont' (nearest registry keys: accel_count"),
    ("Region=bj", "keys are lower case, did you mean region"),
    ("accel_count=8.5", "whole number"),
    ("accel_count=-1", "out of range 0.."),
    ("accel_memory_bytes=80XB", "unknown unit"),
    ("accel_util_ratio=1.5", "out of range 0..1 (a ratio: 0.8, or 80%)"),
    ("region=CN-BJ", "lower case"),
    ("region=cn_bj", "one DNS label"),
    ("accel_kind=gpy", "one of gpu, npu, tpu, fpga, asic; did you mean gpu"),
    ("currency=usd", "did you mean USD"),
    ("accel_compute_capability=nine", "MAJOR.MINOR"),
    ("accel_count", "expected KEY=VALUE"),
    ("acme.size_bytes=3 apples", "a number in bytes"),
    ("acme.j=[1,", "bad JSON"),
])
def test_bad_values_are_one_line_errors(item, message):
    with pytest.raises(values.CapsValueError) as exc:
        values.parse_items([item])
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_keys_in_the_other_record_and_oversized_maps_are_warnings():
    caps, warnings = values.check_map({"accel_free": 3, "region": "bj"}, "CAPS")
    assert caps == {"accel_free": 3, "region": "bj"}
    assert warnings == ["CAPS accel_free: a live value; publish it in LOAD, not CAPS"]
    _, warnings = values.check_map({f"acme.k{i}": "x" * 40 for i in range(20)}, "LOAD")
    assert "more than the 512" in warnings[0]
    with pytest.raises(values.CapsValueError, match="accel_count: expected int"):
        values.check_map({"accel_count": 8.5}, "CAPS")
    with pytest.raises(values.CapsValueError, match="accel_count is a whole number"):
        values.check_map({"accel_count": "eight"}, "CAPS")
    assert values.check_map({"accel_memory_bytes": "80GiB"}, "CAPS")[0] == {"accel_memory_bytes": 80 * 2**30}


# --- endpoints -------------------------------------------------------------------------------

def _svcb(text):
    return dns.rdata.from_text("IN", "SVCB", text)


def test_endpoint_urls_and_presentation_form():
    eps = endpoints.parse_endpoints(["h2://127.0.0.5:8443", "h2,h3://gw.bj.cmcc.cid:443", "5 . alpn=h3 port=8444"])
    assert list(eps.svcb) == [_svcb("1 . alpn=h2 port=8443 ipv4hint=127.0.0.5"),
                              _svcb("2 gw.bj.cmcc.cid. alpn=h2,h3 port=443"), _svcb("5 . alpn=h3 port=8444")]
    assert eps.a == ["127.0.0.5"] and eps.aaaa == []
    six = endpoints.parse_endpoints(["h3://[2001:db8::5]"], addresses=["192.0.2.1"])
    assert six.svcb[0] == _svcb("1 . alpn=h3 ipv6hint=2001:db8::5")
    assert six.aaaa == ["2001:db8::5"] and six.a == ["192.0.2.1"]


@pytest.mark.parametrize("specs, message", [
    ([], "no --endpoint"),
    (["h2://127.0.0.5", "h2://127.0.0.6"], "name different hosts"),
    (["1 . alpn=h2"], "needs the identifier's addresses"),
    (["1 gw alpn=h2"], "must be absolute"),
    (["0 gw.example."], "AliasMode"),
    (["h2://[nope]:1"], "expected ALPN://HOST"),
    (["h2://[1:2:3:4:5:6:7:8:9]:1"], "not an IPv6 address"),
    (["h2://127.0.0.5:99999"], "not 1..65535"),
    (["127.0.0.5:443"], "expected ALPN://HOST"),
    (["h2://127.0.0.5:0"], "port 0"),
])
def test_bad_endpoints(specs, message):
    with pytest.raises(endpoints.EndpointError, match=message):
        endpoints.parse_endpoints(specs)


# --- messages --------------------------------------------------------------------------------

KEY = tsigkeys.parse_key(f"upd:{SECRET}").key
ZONE = N("bj.cmcc.cid.")
ID = N("pool-7.bj.cmcc.cid.")


def _publication(**kw):
    return client.prepare("cid:pool-7.bj.cmcc.cid", endpoints=["h2://127.0.0.5:8443"],
                          caps=["accel_kind=gpu", "accel_vendor=nvidia", "region=cn-bj"],
                          load=["accel_free=3"], **kw)


def _update_section(update):
    return {(rr.name.to_text(), rr.rdclass, rr.rdtype, rr.deleting) for rr in update.update}


def test_register_message_replaces_the_owned_rrsets_and_adds_browse_ptrs():
    pub = _publication()
    update = messages.register_message(pub.registration(ZONE), KEY, lease=300,
                                       old_caps={"accel_kind": "gpu", "region": "cn-sh"}, now=1000)
    assert update.opcode() == dns.opcode.UPDATE and update.zone[0].name == ZONE
    wire = update.to_wire()
    parsed = dns.message.from_wire(wire, keyring={KEY.name: KEY})
    assert parsed.had_tsig
    assert messages.read_lease(parsed) == (300, None)
    text = update.to_text()
    # the old region's sub-type PTR goes, the new ones come, SVCB/A/AAAA/CAPS/LOAD are replaced
    assert "_region-cn-sh._sub._compute.bj.cmcc.cid. 0 NONE PTR pool-7.bj.cmcc.cid." in text
    assert "_region-cn-bj._sub._compute.bj.cmcc.cid. 3600 IN PTR pool-7.bj.cmcc.cid." in text
    for rdtype in ("SVCB", "A", "AAAA", "CAPS", "LOAD"):
        assert f"pool-7.bj.cmcc.cid. ANY {rdtype}" in text
    assert _svcb("1 . alpn=h2 port=8443 ipv4hint=127.0.0.5") in update.find_rrset(
        update.update, ID, dns.rdataclass.IN, dns.rdatatype.SVCB)
    assert "pool-7.bj.cmcc.cid. 15 IN LOAD accel_free=3 source=measured ts=1000" in text
    assert "pool-7.bj.cmcc.cid. 3600 IN CAPS accel_kind=gpu accel_vendor=nvidia region=cn-bj" in text
    # deletions come before additions (RFC 2136 §3.4.2 applies them in order)
    rows = [rr for rr in update.update if rr.name == ID]
    assert all(rr.deleting for rr in rows[:5]) and not any(rr.deleting for rr in rows[5:])


def test_unregister_load_and_delegation_messages():
    text = messages.unregister_message(ID, ZONE, KEY, old_caps={"region": "cn-bj"}).to_text()
    assert "pool-7.bj.cmcc.cid. ANY ANY" in text
    assert "_compute.bj.cmcc.cid. 0 NONE PTR pool-7.bj.cmcc.cid." in text
    assert "_region-cn-bj._sub._compute.bj.cmcc.cid. 0 NONE PTR pool-7.bj.cmcc.cid." in text
    load = messages.load_message(ID, ZONE, KEY, {"accel_free": 1}, now=5)
    assert "pool-7.bj.cmcc.cid. ANY ANY" in load.to_text().split(";UPDATE")[0]  # prerequisite: name in use
    assert "pool-7.bj.cmcc.cid. 15 IN LOAD accel_free=1 ts=5" in load.to_text()
    assert messages.read_lease(load) is None
    ds = dns.rdata.from_text("IN", "DS", "12345 15 2 " + "ab" * 32)
    deleg = messages.delegation_message(N("cmcc.cid."), ZONE, KEY, ns=[(N("ns1.bj.cmcc.cid."), ["127.0.75.4"]),
                                                                        (N("ns.other.example."), ["192.0.2.1"])],
                                        ds=[ds]).to_text()
    assert "bj.cmcc.cid. 3600 IN NS ns1.bj\n" in deleg and "ns1.bj.cmcc.cid. 3600 IN A 127.0.75.4" in deleg
    assert "bj.cmcc.cid. 3600 IN DS 12345 15 2" in deleg
    assert "192.0.2.1" not in deleg  # no glue outside the cut
    assert "_children._compute.cmcc.cid. 3600 IN PTR bj.cmcc.cid." in deleg
    undeleg = messages.undelegation_message(N("cmcc.cid."), ZONE, KEY, glue=[N("ns1.bj.cmcc.cid.")]).to_text()
    assert "bj.cmcc.cid. ANY NS" in undeleg and "ns1.bj.cmcc.cid. ANY A" in undeleg


def test_lease_option_wire_form():
    assert messages.lease_option(300).data == struct.pack("!I", 300)
    assert messages.lease_option(300, 3600).data == struct.pack("!II", 300, 3600)
    with pytest.raises(ValueError):
        messages.lease_option(2**32)


def _answer(update, rcode=dns.rcode.NOERROR, *, sign=True, lease=None, tsig_error=0, other=b""):
    response = dns.message.make_response(update)
    response.set_rcode(rcode)
    if lease is not None:
        response.use_edns(0, options=[messages.lease_option(*lease)])
    if sign:
        response.use_tsig(KEY, tsig_error=tsig_error, other_data=other)
    elif not sign:
        response.keyring = None
        response.tsig = None
    return response.to_wire()


def test_answers_and_what_they_mean():
    update = messages.register_message(_publication().registration(ZONE), KEY, lease=300)
    update.to_wire()  # computes the request MAC the answer is checked against
    ok = messages.parse_answer(_answer(update, lease=(120, None)), update)
    assert ok.ok and ok.lease == (120, None)
    assert ok.lease_text(300) == "lease 120 s granted (asked 300 s)"
    ignored = messages.parse_answer(_answer(update), update)
    assert ignored.ok and "ignores UPDATE-LEASE" in ignored.lease_text(300)
    refused = messages.parse_answer(_answer(update, dns.rcode.REFUSED), update)
    assert not refused.ok and refused.rcode_text == "REFUSED" and "may not change" in refused.meaning()
    unsigned = messages.parse_answer(_answer(update, sign=False), update)
    assert not unsigned.ok and "not trusted" in unsigned.meaning()
    unsigned_refusal = messages.parse_answer(_answer(update, dns.rcode.NOTIMP, sign=False), update)
    assert "does not implement UPDATE" in unsigned_refusal.meaning() and "not signed" in unsigned_refusal.meaning()


def test_tsig_errors_are_named():
    update = messages.register_message(_publication().registration(ZONE), KEY)
    update.to_wire()
    for error, name, text in ((dns.rcode.BADKEY, "NOTAUTH/BADKEY", "does not know this key"),
                              (dns.rcode.BADSIG, "NOTAUTH/BADSIG", "did not verify"),
                              (dns.rcode.BADTIME, "NOTAUTH/BADTIME", "clock")):
        wire = _answer(update, dns.rcode.NOTAUTH, tsig_error=error,
                       other=(1000).to_bytes(6, "big") if error == dns.rcode.BADTIME else b"")
        answer = messages.parse_answer(wire, update)
        assert not answer.ok and answer.rcode_text == name and text in answer.meaning()
    assert "fix the clock" in messages.parse_answer(
        _answer(update, dns.rcode.NOTAUTH, tsig_error=dns.rcode.BADTIME, other=(1000).to_bytes(6, "big")),
        update).meaning()


def test_result_lines():
    update = messages.register_message(_publication().registration(ZONE), KEY, lease=60)
    update.to_wire()
    result = client.Result("register", ID, ZONE, ("127.0.75.1", 53),
                           messages.parse_answer(_answer(update, lease=(60, None)), update), 60, "1 SVCB")
    assert result.line() == ("cid:pool-7.bj.cmcc.cid registered in bj.cmcc.cid. at 127.0.75.1:53: NOERROR "
                             "(1 SVCB); lease 60 s granted")
    bad = client.Result("register", ID, ZONE, ("127.0.75.1", 53),
                        messages.parse_answer(_answer(update, dns.rcode.REFUSED), update), 60)
    assert bad.line().startswith("cid:pool-7.bj.cmcc.cid not registered: REFUSED from 127.0.75.1:53")


# --- the steps, scripted -----------------------------------------------------------------------

def _soa_answer(query, zone=ZONE):
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.NXDOMAIN)
    response.authority.append(dns.rrset.from_text(zone, 60, "IN", "SOA", f"ns1.{zone} h.{zone} 1 2 3 4 5"))
    return response.to_wire()


def test_register_steps_find_the_zone_and_the_old_caps():
    pub = _publication()
    steps = client.register_steps(pub, KEY, ("127.0.0.1", 53), lease=30)
    query, is_update = next(steps)
    assert not is_update and query.question[0].rdtype == dns.rdatatype.SOA and query.question[0].name == ID
    query, _ = steps.send(_soa_answer(query))
    assert query.question[0].rdtype == records.CAPS
    old = dns.message.make_response(query)
    old.answer.append(dns.rrset.from_text(ID, 3600, "IN", "CAPS", "region=cn-sh"))
    update, is_update = steps.send(old.to_wire())
    assert is_update and "_region-cn-sh._sub._compute.bj.cmcc.cid. 0 NONE PTR" in update.to_text()
    with pytest.raises(StopIteration) as done:
        steps.send(_answer(update, lease=(30, None)))
    assert done.value.value.ok and done.value.value.zone == ZONE


def test_zone_step_errors():
    steps = client.unregister_steps(ID, KEY, ("127.0.0.1", 53))
    query, _ = next(steps)
    refused = dns.message.make_response(query)
    refused.set_rcode(dns.rcode.REFUSED)
    with pytest.raises(client.RegistrationError, match="refused a SOA query.*--zone"):
        steps.send(refused.to_wire())
    with pytest.raises(client.RegistrationError, match="not in zone"):
        next(client.unregister_steps(ID, KEY, ("127.0.0.1", 53), zone=N("other.")))


def test_schedule_renews_at_three_quarters_and_heartbeats_between():
    s = client.Schedule(lease=40, load_interval=10)
    assert s.due(0) == "register"
    ok = client.Result("register", ID, ZONE, ("127.0.0.1", 53), messages.Answer(0, lease=(40, None)), 40)
    s.registered(0, ok)
    assert s.due(5) is None and s.due(10) == "load" and s.renew_at == 30
    s.loaded(10, client.Result("load", ID, ZONE, ("127.0.0.1", 53), messages.Answer(0)))
    assert s.load_at == 20
    s.loaded(20, client.Result("load", ID, ZONE, ("127.0.0.1", 53), messages.Answer(dns.rcode.NXDOMAIN)))
    assert s.due(20) == "register"  # the name is gone: register again at once
    s.registered(20, None)  # unreachable: try again soon
    assert s.renew_at == 24
