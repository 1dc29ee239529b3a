"""Start-up: what `cid --help`, `cid --version` and `import resolver` load (behaviour, not
speed: the times are measured by tools/bench/startup.py, never asserted here)."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("dns", "asyncio", "aiohttp", "cryptography", "msgpack", "uvloop")


def loaded_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; the heavy top-level packages it left loaded."""
    probe = (f"import sys\n{code}\n"
             f"print(__import__('json').dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_import_cli_main_loads_nothing_heavy():
    assert loaded_after("import resolver.cli.main") == []
    assert loaded_after("import resolver") == []


@pytest.mark.parametrize("argv", [["--help"], ["--version"]])
def test_help_and_version_load_nothing_heavy(argv):
    code = ("import contextlib, io\nfrom resolver.cli.main import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try:\n        main({argv!r})\n    except SystemExit:\n        pass")
    assert loaded_after(code) == []


@pytest.mark.parametrize("command", ["dig", "demo"])
def test_registering_a_subcommand_parser_loads_nothing_heavy(command):
    assert loaded_after(f"from resolver.cli.main import build_parser\nbuild_parser({command!r})") == []


def test_version_everywhere():
    import resolver
    expected = f"cid {importlib.metadata.version('cid-resolver')}"
    assert resolver.__version__ == importlib.metadata.version("cid-resolver")
    commands = [[sys.executable, "-m", "resolver", "--version"]]
    script = Path(sys.executable).with_name("cid")  # the console script next to this python
    if script.exists():
        commands.append([str(script), "--version"])
    for command in commands:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and proc.stdout.strip() == expected, (command, proc.stdout, proc.stderr)


def test_top_level_help_lists_every_subcommand_with_its_own_help():
    import argparse

    from resolver.cli.main import SUBCOMMANDS, build_parser

    def helps(parser):
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return {c.dest: c.help for c in sub._choices_actions}

    full = helps(build_parser())  # every module imported and registered
    assert full == SUBCOMMANDS
    assert helps(build_parser(None)) == SUBCOMMANDS  # what `cid --help` shows without importing them
    out = subprocess.run([sys.executable, "-m", "resolver", "--help"], capture_output=True, text=True,
                         timeout=60).stdout
    out = " ".join(out.split())  # argparse wraps long help lines
    for name, text in SUBCOMMANDS.items():
        assert name in out and text in out


def test_subcommand_help_and_unknown_commands():
    proc = subprocess.run([sys.executable, "-m", "resolver", "dig", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "--deadline" in proc.stdout and "--hint" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "resolver", "resolv", "x"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "invalid choice: 'resolv'" in proc.stderr


@pytest.mark.parametrize("code", [
    # CAPS/LOAD are registered whichever way dnspython comes in after `import resolver`
    "import resolver, dns.rdatatype\nassert dns.rdatatype.from_text('CAPS') == 65380",
    "import resolver, dns.message\n"
    "m = dns.message.from_text('id 1\\n;ANSWER\\nx. 60 IN LOAD accel_free=2\\n')\n"
    "assert m.answer[0][0].mapping == {'accel_free': 2}",
    "import resolver, dns.zone\n"
    "z = dns.zone.from_text('@ 60 SOA a. b. 1 2 3 4 5\\n@ 60 NS a.\\nx 60 TYPE65380 \\\\# 1 80\\n', 'c.')\n"
    "assert 'CAPS' in z.to_text()",
    # ... and when dnspython was there first
    "import dns.rdatatype, resolver\nassert dns.rdatatype.from_text('LOAD') == 65381",
    "import dns, resolver, dns.rdatatype\nassert dns.rdatatype.from_text('CAPS') == 65380",
])
def test_record_types_are_registered_lazily(code):
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_public_names_resolve_on_first_use():
    import resolver
    for name in resolver.__all__:
        assert getattr(resolver, name) is not None
    assert {"Resolver", "AiohttpResolver", "Status", "config_path"} <= set(dir(resolver))
    from resolver import Resolver, ValidationRefused
    from resolver.client import Resolver as Direct
    assert Resolver is Direct and issubclass(ValidationRefused, LookupError)
    with pytest.raises(AttributeError):
        resolver.NoSuchThing  # noqa: B018
