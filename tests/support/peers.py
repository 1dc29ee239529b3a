"""Running peer programs (BIND, NSD, Knot, Unbound, dig, ...) installed by .ci/run.

A missing peer program is an error, not a skip: CI installs them all (tools/setup).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def require(program: str) -> str:
    path = shutil.which(program) or next(
        (str(p) for d in ("/usr/sbin", "/sbin") if (p := Path(d, program)).exists()), None
    )
    if path is None:
        raise RuntimeError(f"peer program {program!r} is not installed; run tools/setup")
    return path


def run(args: list[str], *, timeout: float = 60, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run a peer program; on failure the assertion shows its output."""
    args = [require(args[0]), *args[1:]]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc
