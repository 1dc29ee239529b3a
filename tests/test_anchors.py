"""Trust anchors: master-file and BIND formats, lookups, clear errors; files made and checked by
BIND (dnssec-keygen, dnssec-dsfromkey, named-checkconf) and Unbound (unbound-checkconf)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dns.dnssec
import dns.name
import pytest

from resolver.dnssec.anchors import TrustAnchor, TrustAnchorError
from resolver.dnssec.verify import verify_dnskeys
from resolver.status import Status
from support.peers import require
from support.signing import NOW, dnskey_rrset, make_key, name, sign

ROOT_DS = ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"
CID_KEY = "cid. 3600 IN DNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4="


def test_master_file_ds_and_dnskey():
    ta = TrustAnchor.from_text(f"; anchors\n{ROOT_DS}\n{CID_KEY}\n")
    assert ta.zones == [dns.name.root, name("cid.")]
    assert ta.ds(".")[0].key_tag == 20326 and ta.dnskey(".") is None
    assert ta.dnskey("CID.")[0].algorithm == 15 and ta.ds("cid.") is None
    assert ta.closest(name("pool-7.bj.cmcc.cid.")) == name("cid.")
    assert ta.closest("cid.") == name("cid.")
    assert ta.closest("example.com.") == dns.name.root


def test_closest_without_root_anchor():
    ta = TrustAnchor.from_text(CID_KEY)
    assert ta.closest("a.cid.") == name("cid.")
    assert ta.closest("example.com.") is None
    assert ta.closest(dns.name.root) is None


def test_master_file_directives_parentheses_and_several_records(tmp_path):
    path = tmp_path / "ta.ds"
    path.write_text(
        "$ORIGIN cid.\n$TTL 600\nops IN DS 1111 15 2 (\n  aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899 )\n"
        "ops IN DS 2222 13 4 " + "ab" * 48 + "\n"
    )
    ta = TrustAnchor.load(path)
    assert ta.zones == [name("ops.cid.")]
    assert sorted(d.key_tag for d in ta.ds("ops.cid.")) == [1111, 2222]


def test_unbound_autotrust_style_file(tmp_path):
    path = tmp_path / "root.key"
    path.write_text(
        "; autotrust trust anchor file\n;;id: . 1\n;;last_queried: 1700000000 ;;Wed Nov 15 2023\n"
        f"{CID_KEY} ;{{id = 3613 (ksk), size = 256b}} ;;state=2 [  VALID  ] ;;count=0 ;;lastchange=1700000000\n"
    )
    ta = TrustAnchor.load(path)
    assert ta.zones == [name("cid.")] and dns.dnssec.key_id(ta.dnskey("cid.")[0]) == 3613


def test_bind_trust_anchors_clause():
    text = """
    // delv -a / named.conf style
    trust-anchors {
        /* the root */
        . initial-ds 20326 8 2 "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D";
        "cid." static-key 257 3 15 "l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4="; # trailing comment
    };
    """
    ta = TrustAnchor.from_text(text)
    assert ta.ds(".")[0].key_tag == 20326
    assert ta.dnskey("cid.")[0].key == TrustAnchor.from_text(CID_KEY).dnskey("cid.")[0].key


def test_bind_managed_and_trusted_keys():
    text = """managed-keys { "cid." initial-key 257 3 15 "l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4="; };
    trusted-keys { ops.cid. 257 3 15 "l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4="; };"""
    assert TrustAnchor.from_text(text).zones == [name("cid."), name("ops.cid.")]


def test_round_trips():
    ta = TrustAnchor.from_text(f"{ROOT_DS}\n{CID_KEY}\n")
    for text in (ta.to_text(), ta.to_bind()):
        again = TrustAnchor.from_text(text)
        assert again.zones == ta.zones
        assert again.ds(".") == ta.ds(".") and again.dnskey("cid.") == ta.dnskey("cid.")


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "no DS or DNSKEY"),
        ("; only a comment\n", "no DS or DNSKEY"),
        ("x.cid. IN A 192.0.2.1", "only DS and DNSKEY"),
        ("cid. IN DNSKEY 1 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=", "ZONE flag"),
        ("cid. IN DNSKEY 385 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=", "REVOKE"),
        ("cid. IN DNSKEY 257 2 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=", "protocol"),
        ("cid. CH DS 1 15 2 " + "ab" * 32, "class"),
        ("trust-anchors { cid. sometimes-key 257 3 15 \"AAAA\"; };", "expected one of"),
        ("trust-anchors { cid. static-key 257 3 15 \"AAAA\"; ", "unterminated"),
        ("trust-anchors { };", "no entries"),
        ("$INCLUDE /etc/passwd\n", "$INCLUDE"),
        ("$GENERATE 1-2 x$ IN DS 1 15 2 " + "ab" * 32, "$GENERATE"),
    ],
)
def test_errors_are_one_clear_line(text, message):
    with pytest.raises(TrustAnchorError) as err:
        TrustAnchor.from_text(text)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_error_carries_path_and_line(tmp_path):
    path = tmp_path / "ta.ds"
    for bad, line in (("cid. IN DS 1 15 2 zz-not-hex", 2), ("cid. IN DS 1 15 x " + "ab" * 32, 2), ("cid. IN XX 1", 2)):
        path.write_text(f"{ROOT_DS}\n{bad}\n{ROOT_DS}\n")
        with pytest.raises(TrustAnchorError) as err:
            TrustAnchor.load(path)
        assert str(err.value).startswith(f"{path}:{line}: "), str(err.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(TrustAnchorError, match="cannot read"):
        TrustAnchor.load(tmp_path / "missing.ds")
    binary = tmp_path / "bin.ds"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TrustAnchorError, match="not UTF-8"):
        TrustAnchor.load(binary)
    with pytest.raises(TrustAnchorError):
        TrustAnchor.load(tmp_path)  # a directory


def test_anchor_feeds_verify_dnskeys():
    ksk = make_key("ops.cid.", 15, 257, seed=1)
    keys = dnskey_rrset(ksk)
    sigs = sign(keys, ksk)
    by_ds = TrustAnchor.from_text(f"ops.cid. IN DS {ksk.ds().to_text()}")
    by_key = TrustAnchor.from_text(f"ops.cid. IN DNSKEY {ksk.dnskey.to_text()}")
    zone = by_ds.closest("pool-7.ops.cid.")
    assert verify_dnskeys(keys, sigs, zone=zone, now=NOW, ds=by_ds.ds(zone)).status is Status.SECURE
    assert verify_dnskeys(keys, sigs, zone=zone, now=NOW, anchor_keys=by_key.dnskey(zone)).status is Status.SECURE


# --- peers ---------------------------------------------------------------------------------------


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_bind_made_key_and_ds_files_load(tmp_path):
    keygen, dsfromkey = require("dnssec-keygen"), require("dnssec-dsfromkey")
    base = _run(keygen, "-q", "-K", str(tmp_path), "-a", "ED25519", "-f", "KSK", "peer.cid.", cwd=tmp_path).stdout.strip()
    key_file = tmp_path / f"{base}.key"  # has ";" comment lines before the record
    ds_file = tmp_path / "ds.txt"
    ds_file.write_text(_run(dsfromkey, "-2", str(key_file), cwd=tmp_path).stdout)
    by_key, by_ds = TrustAnchor.load(key_file), TrustAnchor.load(ds_file)
    key = by_key.dnskey("peer.cid.")[0]
    assert by_ds.ds("peer.cid.")[0].key_tag == int(base.rsplit("+", 1)[1]) == dns.dnssec.key_id(key)


def test_bind_accepts_our_bind_output(tmp_path):
    checkconf = require("named-checkconf")
    ta = TrustAnchor.from_text(f"{ROOT_DS}\n{CID_KEY}\n")
    conf = tmp_path / "anchors.conf"
    conf.write_text(ta.to_bind())
    proc = _run(checkconf, str(conf), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    conf.write_text(ta.to_bind().replace("static-key 257", "static-key x257"))
    assert _run(checkconf, str(conf), cwd=tmp_path).returncode != 0


def test_unbound_accepts_our_master_file_output(tmp_path):
    checkconf = require("unbound-checkconf")
    ta = TrustAnchor.from_text(f"{ROOT_DS}\n{CID_KEY}\n")
    anchor = tmp_path / "ta.txt"
    anchor.write_text(ta.to_text())
    conf = tmp_path / "unbound.conf"
    conf.write_text(f'server:\n  chroot: ""\n  username: ""\n  trust-anchor-file: "{anchor}"\n')
    proc = _run(checkconf, str(conf), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    anchor.write_text(ta.to_text().replace("e06d44", "zz06d4"))
    assert _run(checkconf, str(conf), cwd=tmp_path).returncode != 0


# --- BIND / delv form: every mistake is one line naming file:line -------------------------------

DS_HEX = "AB" * 32


def test_delv_forms_as_written_by_bind():
    # trust-anchors (BIND 9.15+), with the key split over lines inside its quotes as bind.keys
    # does, and the managed-keys / trusted-keys forms delv still accepts.
    text = f"""
    trust-anchors {{
        "cid." initial-ds 12345 15 2 "{DS_HEX}";
        "cid." static-key 257 3 15 "l02Woi0iS8Aa25FQ
                                    kUd9RMzZHJpBoRQwAQEX1SxZJA4=";
    }};
    managed-keys {{ "ops.cid." initial-key 257 3 15 "l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4="; }};
    trusted-keys {{ lab.cid 257 3 15 "l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4="; }};
    """
    ta = TrustAnchor.from_text(text)
    assert ta.zones == [name("cid."), name("lab.cid."), name("ops.cid.")]
    assert ta.ds("cid.")[0].key_tag == 12345 and ta.ds("cid.")[0].digest == bytes.fromhex(DS_HEX)
    assert ta.dnskey("cid.")[0].key == TrustAnchor.from_text(CID_KEY).dnskey("cid.")[0].key
    assert ta.dnskey("lab.cid.")[0].flags == 257


@pytest.mark.parametrize("text, line, message", [
    ('trust-anchors {\n  "cid." initial-ds 12345 15 2 "ZZ";\n};', 2, "bad DS"),
    ('trust-anchors {\n  "cid." initial-ds 12345 15 "AB";\n};', 2, 'KEYTAG ALGORITHM DIGEST-TYPE "DIGEST"'),
    ('trust-anchors {\n  "cid." initial-ds 12345 15 2 AB;\n};', 2, "must be a quoted string"),
    ('trust-anchors {\n\n  "cid." someday-key 257 3 15 "AAAA";\n};', 3, "expected one of static-key"),
    ('trust-anchors {\n  "cid." static-key 385 3 15 "l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=";\n};', 2, "REVOKE"),
    ('trust-anchors {\n  "cid." static-key 257 3 15 "!!not base64!!";\n};', 2, "bad DNSKEY"),
    ('trust-anchors {\n  "cid." static-key 257 3 15 "AAAA"\n};', 3, "expected ';' to end the entry"),
    ('trust-anchors {\n  "cid." static-key 257 3 15 "AAAA";\n}\n', 3, "expected ';' after the trust-anchors"),
    ('trust-anchors { "cid." static-key 257 3 15 "AAAA"; };\n\noptions { directory "/"; };', 3, "unexpected 'options'"),
    ('trust-anchors {\n  "cid." static-key 257 3 15 "AAAA;\n};', 2, "unterminated quoted string"),
    ('/* the anchors\ntrust-anchors { };', 1, "unterminated /* comment"),
    ('trust-anchors { { "cid." static-key 257 3 15 "AAAA"; }; };', 1, "not '{'"),
    ('trust-anchors\n  "cid." static-key 257 3 15 "AAAA"; };', 2, "expected '{' after trust-anchors"),
    (f'trust-anchors {{\n  "{"a" * 64}.cid." static-ds 1 15 2 "{DS_HEX}";\n}};', 2, "bad name"),
    ('trust-anchors {\n  "cid." static-ds 1 15 2 "' + "AB" * 32 + '";\n', 1, "unterminated trust-anchors clause"),
    (f"{ROOT_DS}\n\nx.cid. IN A 192.0.2.1\n", 3, "only DS and DNSKEY"),  # master file: the record's line
    (f"{ROOT_DS}\ncid. IN DNSKEY 0 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=\n", 2, "ZONE flag"),
    ("; anchors\n. IN DS 1 8 2 AB\x00CD\n", 2, "NUL"),
])
def test_bad_input_is_one_line_with_its_line_number(text, line, message):
    with pytest.raises(TrustAnchorError) as err:
        TrustAnchor.from_text(text, source="anchors.conf")
    text_of = str(err.value)
    assert text_of.startswith(f"anchors.conf:{line}: ") and message in text_of, text_of
    assert "\n" not in text_of


def test_hostile_sizes(tmp_path):
    with pytest.raises(TrustAnchorError, match="more than 1000 entries"):
        TrustAnchor.from_text("trust-anchors {\n" + f'"cid." static-ds 1 15 2 "{DS_HEX}";\n' * 1001 + "};")
    big = tmp_path / "big.ds"
    big.write_text(f"{ROOT_DS}\n" + ";" * (1 << 20))
    with pytest.raises(TrustAnchorError, match="larger than"):
        TrustAnchor.load(big)
    # Deep nesting and long runs of punctuation end in an error, not a crash or a hang.
    for text in ("trust-anchors " + "{" * 50_000, "trust-anchors {" + ";" * 50_000 + "};", "{" * 50_000,
                 "trust-anchors {" + '"' * 50_001):
        with pytest.raises(TrustAnchorError):
            TrustAnchor.from_text(text)


def test_random_bind_like_input_never_escapes_as_another_error():
    import random
    rng = random.Random(72)
    pieces = ["trust-anchors", "managed-keys", "trusted-keys", "{", "}", ";", '"', '"cid."', "cid.",
              "static-key", "initial-ds", "257", "3", "15", "2", "-1", "99999999999", f'"{DS_HEX}"',
              '"l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4="', "/*", "*/", "//", "#", "\n", " ", "\\", "..",
              "\u00e9", "x" * 70]
    accepted = 0
    for _ in range(3000):
        text = "trust-anchors {" + " ".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        try:
            TrustAnchor.from_text(text, source="fuzz")
            accepted += 1
        except TrustAnchorError as exc:
            assert str(exc).startswith("fuzz") and "\n" not in str(exc), repr(str(exc))
    assert accepted < 3000  # (most random texts are wrong; none may raise anything else)


def test_bind_form_file_validates_end_to_end(tmp_path):
    """A BIND-form anchor (as ``cid zone ds --format bind`` or delv users write it) is what
    `cid resolve --trust-anchor` reads: same zones, same digests as the master-file form."""
    ta = TrustAnchor.from_text(f"{ROOT_DS}\n{CID_KEY}\n")
    path = tmp_path / "anchors.conf"
    path.write_text("// from named.conf\n" + ta.to_bind())
    again = TrustAnchor.load(path)
    assert again.zones == ta.zones and again.ds(".") == ta.ds(".") and again.dnskey("cid.") == ta.dnskey("cid.")
