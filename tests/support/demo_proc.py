"""Run `cid demo --serve` as a user would, in a subprocess, until the test is done with it."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .peer_servers import wait_until_answers


@contextlib.contextmanager
def serving_demo(directory: Path, port: int, timeout: float = 60.0) -> Iterator[dict]:
    """Yield the parsed federation.json once every zone server answers."""
    log = directory.parent / f"{directory.name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "resolver", "demo", "--serve", "--dir", str(directory),
             "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
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
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
