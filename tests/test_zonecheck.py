"""Bad input when loading a zone to serve (resolver/auth/zoneload.py), beside named-checkzone.

Each file is also given to BIND's ``named-checkzone``: where it refuses the zone we refuse it
(an error naming file:line, nothing loaded), where it warns and ignores (out-of-zone data) we
warn and ignore, where it is silent (data below a cut: occluded) we are silent. Expired or
not yet valid signatures and CAPS/LOAD maps that break the key registry are warnings
(errors under ``strict``), with their file:line or what and when.
"""

from __future__ import annotations

import subprocess

import dns.name
import msgpack
import pytest

import resolver  # noqa: F401
from resolver.auth import zoneload
from resolver.auth.store import ZoneStore
from support.peers import require

HEAD = """$ORIGIN example.com.
$TTL 300
@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
ns1 A 192.0.2.1
"""

CASES = {
    # name: (extra lines, our verdict: "error" or "ok", text expected in our message)
    "out-of-zone": ("www.other.org. A 192.0.2.2\nok A 192.0.2.3\n", "ok", ":6: ignoring out-of-zone data (www.other.org.)"),
    "duplicate-soa": ("@ SOA ns2 hostmaster 2 7200 3600 1209600 300\n", "error", ":6: example.com.: multiple RRs of singleton type"),
    "cname-and-other": ("www CNAME ns1\nwww A 192.0.2.5\n", "error", ":6: www.example.com.: CNAME and other data"),
    "below-cut": ("sub NS ns.sub\nns.sub A 192.0.2.6\nwww.sub A 192.0.2.7\nsub A 192.0.2.8\n", "ok", None),
    "syntax": ("bad A 1.2.3\n", "error", ":6:"),
    "soa-below-apex": ("sub SOA ns1 hostmaster 2 7200 3600 1209600 300\n", "error", ":6: SOA record not at top of zone (sub.example.com.)"),
    "unknown-type": ("x BOGUS 1\n", "error", ":6: unknown type BOGUS"),
    "other-class": ("x CH A 192.0.2.1\n", "error", ":6: RR class is not zone's class"),
}


def named_checkzone(path) -> tuple[int, str]:
    proc = subprocess.run([require("named-checkzone"), "example.com", str(path)], capture_output=True,
                          text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_verdicts_match_named_checkzone(tmp_path, case):
    extra, verdict, text = CASES[case]
    path = tmp_path / f"{case}.db"
    path.write_text(HEAD + extra)
    code, bind = named_checkzone(path)
    assert (code != 0) == (verdict == "error"), bind
    if verdict == "error":
        with pytest.raises(zoneload.ZoneLoadError) as caught:
            zoneload.load(path)
        assert str(caught.value).startswith(str(path)) and text in str(caught.value)
    else:
        loaded = zoneload.load(path)
        if text is None:
            assert loaded.warnings == []
        else:
            assert any(w == f"{path}{text}" for w in loaded.warnings), loaded.warnings
            assert "ignoring out-of-zone data" in bind  # BIND says the same, and loads


def test_missing_soa_and_ns(tmp_path):
    path = tmp_path / "nosoa.db"
    path.write_text("$ORIGIN example.com.\n$TTL 300\n@ NS ns1\nns1 A 192.0.2.1\n")
    assert named_checkzone(path)[0] != 0
    with pytest.raises(zoneload.ZoneLoadError, match="no SOA record at its apex"):
        zoneload.load(path)
    path.write_text("$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\nns1 A 192.0.2.1\n")
    assert named_checkzone(path)[0] != 0
    with pytest.raises(zoneload.ZoneLoadError, match="no NS records at its apex"):
        zoneload.load(path)


def test_a_failed_load_leaves_the_served_zone(tmp_path):
    good = tmp_path / "good.db"
    good.write_text(HEAD + "www A 192.0.2.80\n")
    store = ZoneStore([zoneload.load(good).zone])
    bad = tmp_path / "bad.db"
    bad.write_text(HEAD + "www A 192.0.2.81\nbroken A 300.1.1.1\n")
    with pytest.raises(zoneload.ZoneLoadError, match=":7:"):
        store.add(zoneload.load(bad).zone)
    assert store.find_index(dns.name.from_text("www.example.com.")).exists(dns.name.from_text("www.example.com."))


def test_expired_and_future_signatures_are_warnings_that_say_when(tmp_path):
    path = tmp_path / "sigs.db"
    path.write_text(HEAD + "old RRSIG A 15 3 300 20200101000000 20191201000000 1 example.com. AAAA\n"
                    "new RRSIG A 15 3 300 20400101000000 20390101000000 1 example.com. AAAA\n")
    loaded = zoneload.load(path, now=1_900_000_000)
    assert any("1 signature(s) have expired, the first at 2020-01-01T00:00:00Z (old.example.com. A)" in w
               for w in loaded.warnings), loaded.warnings
    assert any("1 signature(s) are not yet valid, the last until 2039-01-01T00:00:00Z (new.example.com. A)" in w
               for w in loaded.warnings), loaded.warnings


def test_caps_that_break_the_registry_warn_or_fail_under_strict(tmp_path):
    bad = msgpack.packb({"accel_count": "eight"})
    path = tmp_path / "caps.db"
    path.write_text(HEAD + f"gpu TYPE65380 \\# {len(bad)} {bad.hex()}\n")
    loaded = zoneload.load(path)
    assert loaded.warnings == [f"{path}:6: gpu.example.com. CAPS: accel_count: expected int, got str 'eight'"]
    with pytest.raises(zoneload.ZoneLoadError, match=r":6: gpu.example.com. CAPS: accel_count.*--strict"):
        zoneload.load(path, strict=True)
    # A map that is not canonical msgpack is an error in any mode, as dnspython reads it.
    path.write_text(HEAD + "gpu TYPE65380 \\# 3 81a178\n")
    with pytest.raises(zoneload.ZoneLoadError, match=":6:"):
        zoneload.load(path)


def test_serve_auth_refuses_a_bad_zone(tmp_path):
    path = tmp_path / "bad.db"
    path.write_text(HEAD + "www CNAME ns1\nwww A 192.0.2.5\n")
    proc = subprocess.run(["python3", "-m", "resolver", "serve", "auth", "--listen", "127.0.70.9:0",
                           "--zone", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and f"{path}:6: www.example.com.: CNAME and other data" in proc.stderr
