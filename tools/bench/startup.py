#!/usr/bin/env python3
"""Start-up time of the ``cid`` command, against ``python3 -c pass`` measured in the same run.

    tools/bench/startup.py                 # 15 rounds (targets: --help/--version <= 0.15 s,
                                           # one resolve <= 0.35 s, BRIEF §5)
    tools/bench/startup.py --runs 30 --json

Each round runs every command once, in turn (so load from other work on the machine falls on
all of them alike): ``python3 -c pass``; ``python3 -m resolver --help`` / ``--version``; the
console script next to that python (``<bin>/cid``); ``cid`` as found on PATH when it is another
file (a pyenv shim is a bash script that adds its own start-up); and one ``cid resolve
cid:pool-7.bj.cmcc.cid`` of a demo identifier end to end, with no flags (CID_CONFIG set to
the file ``cid demo --serve`` writes; the demo federation is started here on a free port of
127.0.10.1 and stopped at the end). Prints the median, min and max wall time of each, the
median net of the python start-up, and the median CPU time (user + system; less sensitive to
other work on a shared machine than wall time, which is what the targets are about).

Bytecode: an installed cid runs from cached .pyc files (pip writes them for dependencies; our
own are written on first use). This machine's sessions set PYTHONDONTWRITEBYTECODE=1, which
makes every run compile the package's sources again; by default the measured commands run
without it, with a private PYTHONPYCACHEPREFIX in the temporary directory (nothing is written
into the source tree; the warm-up round fills it). ``--no-bytecode-cache`` measures as the
environment says.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HELP_TARGET, RESOLVE_TARGET = 0.15, 0.35


def _time(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _free_port(host: str) -> int:
    import socket
    for _ in range(50):
        with socket.socket() as tcp:
            tcp.bind((host, 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port")


class Demo:
    """``cid demo --serve`` in a temporary directory; ``config`` is the file it wrote."""

    def __init__(self, python: str, directory: Path):
        self.lines: list[str] = []
        self.proc = subprocess.Popen([python, "-m", "resolver", "demo", "--serve", "--dir", str(directory),
                                      "--port", str(_free_port("127.0.10.1"))],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()
        deadline = time.monotonic() + 180
        while not any(line.startswith("Ctrl-C stops.") for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("cid demo --serve did not start:\n" + "".join(self.lines))
            time.sleep(0.1)
        export = next(line.strip() for line in self.lines if line.strip().startswith("export CID_CONFIG="))
        self.config = export.split("=", 1)[1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run(runs: int = 15, python: str = sys.executable, resolve: bool = True, bytecode_cache: bool = True) -> dict:
    python = str(Path(python))
    script = Path(python).with_name("cid")
    tmp = tempfile.TemporaryDirectory(prefix="cid-startup-")
    env = {k: v for k, v in os.environ.items() if k != "CID_CONFIG"}
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp.name) / "pycache")
    commands: dict[str, list[str]] = {
        "python3 -c pass": [python, "-c", "pass"],
        "python3 -m resolver --help": [python, "-m", "resolver", "--help"],
        "python3 -m resolver --version": [python, "-m", "resolver", "--version"],
    }
    if script.exists():
        commands[f"{script} --help"] = [str(script), "--help"]
        commands[f"{script} --version"] = [str(script), "--version"]
    # Other `cid`s a user's shell may find first: PATH entries and a pyenv shim (a bash script
    # that adds its own start-up before it execs the console script).
    shims = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "shims" / "cid"
    others = [Path(d) / "cid" for d in os.environ.get("PATH", "").split(os.pathsep) if d] + [shims]
    seen = {script.resolve()}
    for other in others:
        if other.is_file() and os.access(other, os.X_OK) and other.resolve() not in seen:
            seen.add(other.resolve())
            commands[f"{other} --version"] = [str(other), "--version"]
    demo = None
    try:
        if resolve:
            demo = Demo(python, Path(tmp.name) / "demo")
            resolve_env = {**env, "CID_CONFIG": demo.config}
            commands["python3 -m resolver resolve cid:pool-7.bj.cmcc.cid"] = \
                [python, "-m", "resolver", "resolve", "cid:pool-7.bj.cmcc.cid"]
            if script.exists():
                commands[f"{script} resolve cid:pool-7.bj.cmcc.cid"] = [str(script), "resolve", "cid:pool-7.bj.cmcc.cid"]
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for name, command in commands.items():  # warm the OS caches and .pyc files once
            _time(command, resolve_env if "resolve" in command else env)
        for _ in range(runs):
            for name, command in commands.items():
                wall, used = _time(command, resolve_env if "resolve" in command else env)
                times[name].append(wall)
                cpu[name].append(used)
    finally:
        if demo is not None:
            demo.stop()
        tmp.cleanup()
    base = statistics.median(times["python3 -c pass"])
    base_cpu = statistics.median(cpu["python3 -c pass"])
    rows = {}
    for name, values in times.items():
        median = statistics.median(values)
        target = RESOLVE_TARGET if "resolve " in name else HELP_TARGET if name != "python3 -c pass" else None
        rows[name] = {"median_s": median, "min_s": min(values), "max_s": max(values),
                      "net_of_python_s": median - base, "cpu_s": statistics.median(cpu[name]),
                      "cpu_net_of_python_s": statistics.median(cpu[name]) - base_cpu, "target_s": target,
                      "met": None if target is None else median <= target}
    return {"runs": runs, "python": python, "load_average": os.getloadavg(), "bytecode_cache": bytecode_cache,
            "rows": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=15, help="rounds (at least 10; default 15)")
    p.add_argument("--python", default=sys.executable, help="the interpreter cid is installed for")
    p.add_argument("--no-resolve", action="store_true", help="leave out the demo resolution")
    p.add_argument("--quick", action="store_true", help="2 rounds, no demo: checks the script only")
    p.add_argument("--no-bytecode-cache", action="store_true",
                   help="keep the environment's PYTHONDONTWRITEBYTECODE (sources compiled on every run)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    cache = not args.no_bytecode_cache
    if args.quick:
        result = run(2, args.python, resolve=False, bytecode_cache=cache)
    else:
        if args.runs < 10:
            p.error("--runs: at least 10")
        result = run(args.runs, args.python, resolve=not args.no_resolve, bytecode_cache=cache)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['runs']} rounds, {result['python']}, "
          f"{'bytecode cached' if result['bytecode_cache'] else 'no bytecode cache'}, load average "
          f"{' '.join(f'{x:.2f}' for x in result['load_average'])}")
    width = max(map(len, result["rows"]))
    print(f"{'command':<{width}}  median    min     max   net of python   CPU   (net)   target (wall, median)")
    for name, row in result["rows"].items():
        target = "" if row["target_s"] is None else f"<= {row['target_s']:.2f} s {'met' if row['met'] else 'NOT met'}"
        print(f"{name:<{width}}  {row['median_s']:.3f}  {row['min_s']:.3f}  {row['max_s']:.3f}  "
              f"{row['net_of_python_s']:+.3f}         {row['cpu_s']:.3f} ({row['cpu_net_of_python_s']:+.3f})  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
