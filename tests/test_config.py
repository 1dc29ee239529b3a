"""The client configuration file (spec/resolution.md §11): where it is found, what it may say,
and every command that uses it when no --hint is given, run as a user runs them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resolver.client import Resolver, ResolverConfigError, config_path, config_paths
from support import federation as F
from support.net import free_port

CID = [sys.executable, "-m", "resolver"]
SYSTEM = Path("/etc/cid/config.toml")


# --- where it is looked for ---------------------------------------------------------------------

def test_search_order(tmp_path):
    env = {"CID_CONFIG": str(tmp_path / "mine.toml"), "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
           "HOME": str(tmp_path / "home")}
    assert config_paths(env) == [tmp_path / "mine.toml", tmp_path / "xdg/cid/config.toml", SYSTEM]
    del env["CID_CONFIG"]
    assert config_paths(env) == [tmp_path / "xdg/cid/config.toml", SYSTEM]
    env["XDG_CONFIG_HOME"] = "relative/dir"  # the XDG spec: ignore a relative path
    assert config_paths(env) == [tmp_path / "home/.config/cid/config.toml", SYSTEM]
    env["CID_CONFIG"] = ""  # empty is unset
    assert config_paths(env)[0] == tmp_path / "home/.config/cid/config.toml"


def test_first_existing_file_wins_and_a_named_missing_file_is_an_error(tmp_path):
    user = tmp_path / "xdg/cid/config.toml"
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}
    if not SYSTEM.exists():
        assert config_path(env) is None
    user.parent.mkdir(parents=True)
    user.write_text('hints = {"cid." = ["127.0.72.1"]}\n')
    assert config_path(env) == user
    mine = tmp_path / "mine.toml"
    env["CID_CONFIG"] = str(mine)
    with pytest.raises(ResolverConfigError, match=r"mine\.toml: no such file \(named by \$CID_CONFIG\)"):
        config_path(env)  # never silently another file
    mine.write_text('hints = {"cid." = ["127.0.72.1"]}\n')
    assert config_path(env) == mine


# --- what it may say ----------------------------------------------------------------------------

def test_keys_and_overrides(tmp_path):
    (tmp_path / "ta").mkdir()
    anchor = tmp_path / "ta" / "cid.ds"
    anchor.write_text("cid. IN DS 1 15 2 " + "ab" * 32 + "\n")
    path = tmp_path / "config.toml"
    path.write_text('hints = {"cid." = ["127.0.72.1", "127.0.72.2:5301"]}\nport = 5300\ntimeout = 1.5\n'
                    'trust_anchor = "ta/cid.ds"\nvalidation = "on"\nrequire_secure = true\n')
    r = Resolver.from_config(path)
    assert r.config_file == path and r.port == 5300 and r.timeout == 1.5 and r.require_secure
    assert [str(z) for z in r.trust_anchor.zones] == ["cid."]  # relative to the file, not the cwd
    assert r.validation == "on"
    r = Resolver.from_config(path, port=53, require_secure=False, validation="off")
    assert r.port == 53 and not r.require_secure and r.validation == "off" and r.trust_anchor is None


def test_from_config_without_a_path_searches(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text('[resolver]\nhints = {"cid." = ["127.0.72.1"]}\nvalidation = "off"\n')
    monkeypatch.setenv("CID_CONFIG", str(path))
    r = Resolver.from_config()
    assert r.config_file == path and r.validation == "off"
    monkeypatch.delenv("CID_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path / "none"))
    if not SYSTEM.exists():
        with pytest.raises(ResolverConfigError, match="no client configuration file: set \\$CID_CONFIG"):
            Resolver.from_config()


@pytest.mark.parametrize("text, message", [
    ('hints = {"cid." = ["127.0.72.1"]\n', "at line 1"),  # TOML syntax: tomllib names line and column
    ('hints = {"cid." = ["127.0.72.1"]}\nvalidation = "maybe"\n', "validation='maybe'"),
    ('hints = {"cid." = ["127.0.72.1"]}\nvalidation = false\n', "'validation' must be 'on' or 'off'"),
    ('hints = {"cid." = ["127.0.72.1"]}\nrequire_secure = "yes"\n', "'require_secure' must be true or false"),
    ('hints = {"cid." = ["127.0.72.1"]}\nport = "53"\n', "'port' must be a port number"),
    ('hints = {"cid." = ["127.0.72.1"]}\nport = 70000\n', "'port' must be 1-65535"),
    ('hints = {"cid." = ["127.0.72.1"]}\nport = true\n', "'port' must be a port number"),
    ('hints = {"cid." = ["127.0.72.1"]}\ntimeout = 0\n', "'timeout' must be more than 0"),
    ('hints = {"cid." = "127.0.72.1"}\n', "'cid.' must be a list of addresses"),
    ('hints = {"cid." = ["nowhere"]}\n', "not an IP address"),
    ('port = 53\n', "'hints' must be a table"),
    ('hints = {"cid." = ["127.0.72.1"]}\ntrust_anchr = "x"\n', "unknown setting(s) trust_anchr"),
    ('hints = {"cid." = ["127.0.72.1"]}\ntrust_anchor = "missing.ds"\n', "cannot read trust anchor"),
    ('resolver = 3\n', "'resolver' must be a table"),
])
def test_a_broken_file_is_one_line_naming_it(tmp_path, text, message):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ResolverConfigError) as err:
        Resolver.from_config(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value), str(err.value)
    assert "\n" not in str(err.value)
    # The CLI says the same, in one line, exit 2.
    p = subprocess.run([*CID, "resolve", "cid:pool-7.cid"], capture_output=True, text=True, timeout=30,
                       env={**os.environ, "CID_CONFIG": str(path)})
    assert p.returncode == 2 and p.stderr.startswith(f"cid resolve: {path}: ") and message in p.stderr
    assert len(p.stderr.splitlines()) == 1, p.stderr


# --- the commands, with no flags ----------------------------------------------------------------

@pytest.fixture(scope="module")
def configured(tmp_path_factory):
    """The test federation served on loopback, and a config file that reaches it."""
    directory = tmp_path_factory.mktemp("config")
    fed = F.build(now=time.time())
    (directory / "anchors").mkdir()
    (directory / "anchors" / "cid.anchor").write_text(fed.anchor_text)
    with F.serving_in_thread(fed) as port:
        path = directory / "config.toml"
        path.write_text(f'hints = {{ "cid." = ["127.0.0.2"], "far-ops.net." = ["127.0.0.7"] }}\n'
                        f'port = {port}\ntrust_anchor = "anchors/cid.anchor"\ntimeout = 1\n')
        yield path, port, directory


def cid(*args, config=None, timeout=30, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("CID_CONFIG", "XDG_CONFIG_HOME")}
    if config is not None:
        environ["CID_CONFIG"] = str(config)
    environ.update(env)
    return subprocess.run([*CID, *args], capture_output=True, text=True, timeout=timeout, env=environ,
                          cwd="/")  # the anchor is found next to the file, whatever the cwd


def test_resolve_dig_and_find_with_no_flags(configured):
    path, _, _ = configured
    p = cid("resolve", "cid:pool-7.bj.cmcc.cid", config=path)
    assert p.returncode == 0, p.stderr
    assert "status: secure" in p.stdout and "192.0.2.7" in p.stdout
    p = cid("dig", "pool-7.bj.cmcc.cid", "SVCB", "+trace", config=path)
    assert p.returncode == 0, p.stderr
    assert f"; (resolver settings from {path})" in p.stdout and ";; zone bj.cmcc.cid. keys: secure" in p.stdout
    doc = json.loads(cid("dig", "pool-7.bj.cmcc.cid", "CAPS", "+json", config=path).stdout)
    assert doc["validation"]["status"] == "secure" and doc["config"] == str(path)
    p = cid("find", "cid:bj.cmcc.cid", "--json", config=path)
    assert p.returncode in (0, 1) and "no --hint" not in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_the_users_config_directory_is_used(configured, tmp_path):
    path, _, _ = configured
    user = tmp_path / "xdg" / "cid" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text(path.read_text().replace('"anchors/cid.anchor"', json.dumps(str(path.parent / "anchors/cid.anchor"))))
    p = cid("resolve", "cid:pool-7.bj.cmcc.cid", XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    assert p.returncode == 0 and "status: secure" in p.stdout, p.stderr


def test_flags_override_the_file(configured, tmp_path):
    path, port, directory = configured
    # --require-secure over require_secure = false: the unsigned zone's answer is refused.
    p = cid("resolve", "cid:pool-1.open.cid", config=path)
    assert p.returncode == 0 and "status: insecure" in p.stdout
    p = cid("resolve", "cid:pool-1.open.cid", "--require-secure", config=path)
    assert p.returncode == 1 and "refused" in p.stderr and "--require-secure" in p.stderr
    # --no-validate: nothing validated, so accepted as indeterminate.
    p = cid("resolve", "cid:pool-7.bj.cmcc.cid", "--no-validate", "--json", config=path)
    assert p.returncode == 0 and json.loads(p.stdout)["status"] == "indeterminate"
    # --trust-anchor as typed (relative to the working directory, not the file): a wrong anchor
    # makes the answer bogus.
    wrong = tmp_path / "wrong.ds"
    wrong.write_text("cid. IN DS 1 15 2 " + "ab" * 32 + "\n")
    p = cid("resolve", "cid:pool-7.bj.cmcc.cid", "--trust-anchor", str(wrong), "--json", config=path)
    assert p.returncode == 1 and json.loads(p.stdout)["status"] == "bogus"
    # --port over port: nothing there, refused at once.
    p = cid("resolve", "cid:pool-7.bj.cmcc.cid", "--port", str(free_port("127.0.0.2")), config=path)
    assert p.returncode == 1 and "connection refused" in p.stdout


def test_hint_means_the_file_is_not_read(configured, tmp_path):
    _, port, directory = configured
    broken = tmp_path / "broken.toml"
    broken.write_text("this is not toml")
    p = cid("resolve", "cid:pool-7.bj.cmcc.cid", "--hint", "cid.=127.0.0.2", "--port", str(port),
            "--trust-anchor", str(directory / "anchors/cid.anchor"), config=broken)
    assert p.returncode == 0, p.stderr
    p = cid("resolve", "cid:pool-7.bj.cmcc.cid", config=broken)
    assert p.returncode == 2 and p.stderr.startswith(f"cid resolve: {broken}: ")


def test_bind_form_trust_anchor_in_the_file(configured, tmp_path):
    from resolver.dnssec.anchors import TrustAnchor
    path, port, directory = configured
    bind = tmp_path / "anchors.conf"
    bind.write_text("// delv -a form\n" + TrustAnchor.load(directory / "anchors/cid.anchor").to_bind())
    config = tmp_path / "config.toml"
    config.write_text(f'hints = {{ "cid." = ["127.0.0.2"] }}\nport = {port}\ntrust_anchor = "anchors.conf"\n')
    p = cid("resolve", "cid:pool-7.bj.cmcc.cid", config=config)
    assert p.returncode == 0 and "status: secure" in p.stdout, p.stderr


def test_serve_resolver_without_hint_uses_the_file(configured, tmp_path):
    import dns.flags
    import dns.message
    import dns.query

    path, _, _ = configured
    log_path = tmp_path / "serve.log"
    environ = {**os.environ, "CID_CONFIG": str(path)}
    with open(log_path, "w") as log:
        proc = subprocess.Popen([*CID, "serve", "resolver", "--listen", "127.0.72.5:0"], stdout=subprocess.DEVNULL,
                                stderr=log, stdin=subprocess.DEVNULL, env=environ)
        try:
            listen = None
            for _ in range(400):
                found = re.search(r"listening on 127\.0\.72\.5:(\d+)", log_path.read_text())
                if found or proc.poll() is not None:
                    listen = found and int(found.group(1))
                    break
                time.sleep(0.05)
            assert listen, log_path.read_text()
            query = dns.message.make_query("pool-7.bj.cmcc.cid.", "A", want_dnssec=True)
            reply = dns.query.udp(query, "127.0.72.5", port=listen, timeout=10)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
    assert reply.flags & dns.flags.AD and "192.0.2.7" in reply.to_text()
    assert "validating" in log_path.read_text()
