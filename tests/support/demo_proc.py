"""Run ``cid`` in a subprocess as a user would (``cid demo --serve``, ``cid serve resolver``),
until the test is done with it."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .peer_servers import process, wait_until_answers


@contextlib.contextmanager
def cid(args: list[str], log: Path) -> Iterator[subprocess.Popen]:
    """``python -m resolver ARGS`` (this interpreter), output to ``log``; SIGTERM on exit (it
    must stop cleanly within 10 s, else it is killed)."""
    with process([sys.executable, "-m", "resolver", *args], log, grace=10.0) as proc:
        yield proc


@contextlib.contextmanager
def serving_resolver(args: list[str], address: str, port: int, log: Path,
                     probe: str = "cid.") -> Iterator[subprocess.Popen]:
    """``cid serve resolver --listen ADDRESS:PORT ARGS`` once it answers ``probe`` SOA."""
    with cid(["serve", "resolver", "--listen", f"{address}:{port}", *args], log) as proc:
        wait_until_answers(address, port, probe, proc, log)
        yield proc


def resolve_json(identifier: str, hint: str, port: int, anchor: Path) -> tuple[int, dict]:
    """``cid resolve IDENTIFIER --hint HINT --port PORT --trust-anchor ANCHOR --json``:
    (exit status, parsed JSON result)."""
    proc = subprocess.run(
        [sys.executable, "-m", "resolver", "resolve", identifier, "--hint", hint,
         "--port", str(port), "--trust-anchor", str(anchor), "--json"],
        capture_output=True, text=True, timeout=60)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@contextlib.contextmanager
def serving_demo(directory: Path, port: int, timeout: float = 60.0) -> Iterator[dict]:
    """Yield the parsed federation.json once every zone server answers."""
    log = directory.parent / f"{directory.name}.log"
    with cid(["demo", "--serve", "--dir", str(directory), "--port", str(port)], log) as proc:
        deadline = time.monotonic() + timeout
        fed_file = directory / "federation.json"
        while not fed_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"demo did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
        fed = json.loads(fed_file.read_text())
        for zone in fed["zones"]:
            wait_until_answers(zone["address"], zone["port"], zone["name"], proc, log,
                               timeout=max(1.0, deadline - time.monotonic()))
        yield fed
