"""Loading master files for serving (resolver/auth/zoneload.py, masterfile.py) against dnspython.

The oracle is dnspython's zone reader (``zonefile.load_zone(fast=False)``) turned into the same
compact form: on files written by the peer signers themselves — dnssec-signzone in its default
multi-line layout and with ``-O full``, with NSEC and NSEC3 (opt-out too), ldns-signzone (NSEC
and NSEC3), Knot's zone dump (signatures and NSEC chain in sections of their own) — and on
hand-written files with every syntax dnspython reads, both readers must load the same records.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import msgpack
import pytest

import resolver  # noqa: F401  (registers CAPS/LOAD)
from resolver.auth import zonedb, zoneload
from resolver.auth.store import from_zone
from resolver.auth.zonefile import load_zone
from support.peers import require

ORIGIN = "bj.cmcc.cid."
CAPS = msgpack.packb({"accel_count": 8, "region": "bj"})

SOURCE = f"""$ORIGIN {ORIGIN}
$TTL 300
@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
ns1 A 192.0.2.1
pool-1 A 10.0.0.1
pool-1 TYPE65380 \\# {len(CAPS)} {CAPS.hex()}
pool-2 A 10.0.0.2
pool-2 TXT "hello world" "x;y"
pool-2 AAAA 2001:db8::2
*.w A 10.0.0.9
sub NS ns.sub
ns.sub A 10.0.0.10
secure NS ns.sub
secure DS 12345 15 2 {"ab" * 32}
a.b.c A 10.0.0.11
Mixed.Case MX 10 mail.example.net.
"""


def records(data: zonedb.ZoneData) -> dict:
    out = {}
    for key, blob in [*data.blobs.items(), *data.hashed.items()]:
        out[key] = {k: (v[0], list(v[1])) for k, v in zonedb.decode_sets(blob).items()}
    return out


def same_as_dnspython(path) -> zonedb.ZoneData:
    fast = zoneload.load(path).zone
    slow = from_zone(load_zone(path, fast=False))
    assert records(fast) == records(slow)
    assert {fast.owner_wire(k) for k in fast.blobs} == {slow.owner_wire(k) for k in slow.blobs}
    return fast


@pytest.fixture(scope="module")
def signed_files(tmp_path_factory):
    """The same zone as each peer signer writes it."""
    d = tmp_path_factory.mktemp("peers")
    src = d / "zone.db"
    src.write_text(SOURCE)
    run = lambda *a: subprocess.run(a, cwd=d, check=True, capture_output=True, timeout=120)  # noqa: E731
    run(require("dnssec-keygen"), "-q", "-a", "ED25519", "-f", "KSK", ORIGIN)
    run(require("dnssec-keygen"), "-q", "-a", "ED25519", ORIGIN)
    files = {}
    for name, extra in {"bind-text": [], "bind-full": ["-O", "full"], "bind-nsec3": ["-3", "-", "-H", "0"],
                        "bind-nsec3-optout": ["-3", "-", "-A", "-H", "0"]}.items():
        run(require("dnssec-signzone"), "-q", "-S", *extra, "-o", ORIGIN, "-f", f"{name}.db", str(src))
        files[name] = d / f"{name}.db"
    ldns_key = subprocess.run([require("ldns-keygen"), "-a", "ED25519", "-k", ORIGIN], cwd=d, check=True,
                              capture_output=True, text=True).stdout.strip()
    for name, extra in {"ldns": [], "ldns-nsec3": ["-n"]}.items():
        run(require("ldns-signzone"), *extra, "-o", ORIGIN, "-f", f"{name}.db", str(src), ldns_key)
        files[name] = d / f"{name}.db"
    files["knot"] = _knot_signed(d, src)
    return files


def _knot_signed(d, src):
    """Knot signs the zone itself and dumps it (zonefile-sync) in its own layout."""
    work = d / "knot"
    (work / "keys").mkdir(parents=True)
    (work / "db").mkdir()
    shutil.copy(src, work / f"{ORIGIN}zone")
    conf = work / "knot.conf"
    conf.write_text(f"""server:
  listen: 127.0.70.251@53999
  rundir: "{work}"
  user: root
log:
  - target: stderr
    any: warning
database:
  storage: "{work}/db"
keystore:
  - id: pem
    backend: pem
    config: "{work}/keys"
policy:
  - id: ed
    algorithm: ed25519
    keystore: pem
template:
  - id: default
    storage: "{work}"
    file: "%s.zone"
    zonefile-sync: 0
    zonefile-load: whole
    journal-content: none
    dnssec-signing: on
    dnssec-policy: ed
zone:
  - domain: {ORIGIN}
""")
    proc = subprocess.Popen([require("knotd"), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    out = work / f"{ORIGIN}zone"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if "RRSIG" in out.read_text():
                break
            subprocess.run([require("knotc"), "-c", str(conf), "zone-flush"], capture_output=True, timeout=10)
            time.sleep(0.3)
        else:
            raise RuntimeError("knotd did not write the signed zone")
    finally:
        subprocess.run([require("knotc"), "-c", str(conf), "stop"], capture_output=True, timeout=10)
        proc.wait(timeout=10)
    return out


@pytest.mark.parametrize("signer", ["bind-text", "bind-full", "bind-nsec3", "bind-nsec3-optout",
                                    "ldns", "ldns-nsec3", "knot"])
def test_peer_signed_files_load_as_dnspython_loads_them(signed_files, signer):
    text = signed_files[signer].read_text()
    if signer == "bind-text":
        assert "(" in text and "\n\t\t\t" in text  # really the multi-line layout
    if signer == "knot":
        assert ";; DNSSEC signatures" in text
    data = same_as_dnspython(signed_files[signer])
    assert data.signed and (data.nsec3 is not None) == ("nsec3" in signer)


@pytest.mark.parametrize("text", [
    # TTL and class in either order, units, owners carried over, comments, duplicates, min TTL,
    # an RRset resumed after other types
    """$ORIGIN example.com.
$TTL 3600
@ IN SOA ns1 hostmaster ( 1 ; serial
   7200 3600 1209600 300 )
@ NS ns1
ns1 A 192.0.2.1
www 300 IN A 192.0.2.10 ; the web
www IN 1h AAAA 2001:db8::10
    60 TXT plain words here
    A 192.0.2.11
www 30 A 192.0.2.10
  ; a comment line
Mixed.Case MX 10 mail.example.net.
*.wild 1w2d TXT wildcard
txt TXT "quoted ; not a comment" "and (parens)"
esc\\.aped A 192.0.2.9
gen TYPE65380 \\# 1 80
$ORIGIN sub.example.com.
deep CNAME www.example.com.
@ 7 CAPS accel_count=8 region=bj
$ORIGIN example.com.
$TTL 5m
late A 192.0.2.12
_svc._tcp SRV 0 5 8443 www
pool SVCB 1 . alpn=h2 port=8443
v6 AAAA 2001:DB8:0:0::1
key DNSKEY 257 3 15 ( Id1p9zYz147MO0RYcxVJxB+x
                      Mkb5rytqCSaC6d7Pp8E= )
sig RRSIG A 15 3 300 20300101000000 20200101000000 1 example.com. AAAA
sig2 RRSIG A ED25519 3 300 1700000000 1600000000 1 example.com. AA AA
n3 NSEC3PARAM 1 0 10 abcd
""",
    # no $TTL: the SOA MINIMUM becomes the default, a stated TTL is remembered (RFC 2308 §4 as
    # dnspython applies it)
    "$ORIGIN example.com.\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n"
    "a 60 A 192.0.2.2\nb A 192.0.2.3\n",
    "$ORIGIN example.com.\n@ 100 SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\r\n",
])
def test_hand_written_files_load_as_dnspython_loads_them(tmp_path, text):
    path = tmp_path / "zone.db"
    path.write_text(text)
    same_as_dnspython(path)


def test_include_and_generate(tmp_path):
    inner = tmp_path / "inner.db"
    inner.write_text("host A 192.0.2.50\n")
    path = tmp_path / "zone.db"
    path.write_text(f"$ORIGIN example.com.\n$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"
                    f"$INCLUDE {inner} sub.example.com.\nafter A 192.0.2.51\n")
    data = same_as_dnspython(path)
    assert data.exists(__import__("dns.name").name.from_text("host.sub.example.com."))
    path.write_text("$ORIGIN example.com.\n$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"
                    "$GENERATE 1-3 h$ A 192.0.2.$\n")
    same_as_dnspython(path)  # left to dnspython's reader


def test_progress_is_reported(tmp_path):
    path = tmp_path / "zone.db"
    body = "".join(f"h{i} A 10.0.{i >> 8}.{i & 255}\n" for i in range(40_000))
    path.write_text("$ORIGIN example.com.\n$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n" + body)
    seen = []
    loaded = zoneload.load(path, progress=lambda lines, names: seen.append((lines, names)))
    assert seen and seen[-1][1] == len(loaded.zone.blobs) == 40_002
    assert [n for _, n in seen] == sorted(n for _, n in seen)
