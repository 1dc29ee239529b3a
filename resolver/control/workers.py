"""The control channel and ``/metrics`` of ``cid serve resolver --workers N`` (spec/service.md §6).

Every worker answers the usual resolver commands on a private Unix socket (``worker-I.ctl``, mode
0600, in a 0700 directory the supervisor made). The public socket (and the keyed TCP one) is
bound by the supervisor before it forks and served by a small forked control process, which fans
each request out to every worker and merges the replies; a worker's ``/metrics`` asks the other
workers the same way. Why a process of its own: the supervisor stays a plain ``os.wait()`` loop
(forking from a process with a running event loop or a thread is what deadlocks children), and a
crash of the control process costs neither the public socket (the supervisor holds it) nor a
worker.

Merging: counters, histogram buckets and sizes are summed per labelset; values that are points
in time (``*_time_seconds`` gauges, ``*_created``) take the latest, as a worker started again
resets its share of the totals then. A worker that does not answer is named, never left out
silently, and nothing is made up for it.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.metrics_core import Metric

from . import client
from .commands import family_data, metric_lines
from .server import Command, CommandError, ControlServer

READ_TIMEOUT = 5.0  # stats, samples, dump-cache: a wedged worker must not hold the scrape long


@dataclass
class Answer:
    """One worker's reply: ``data``/``text`` when it did it, else ``error`` (one line)."""
    index: int
    text: str = ""
    data: Any = None
    error: str | None = None


class Workers:
    """The workers' private control sockets: ``directory``/worker-I.ctl for I in 0..count-1."""

    def __init__(self, directory: Path, count: int):
        self.directory, self.count = Path(directory), count

    def path(self, index: int) -> Path:
        return self.directory / f"worker-{index}.ctl"

    async def ask(self, index: int, command: str, args: list[str], timeout: float) -> Answer:
        try:
            reply = await client.call(command, args, socket_path=self.path(index), timeout=timeout)
        except client.NotRunning as exc:  # not started again yet, or wedged (no reply in time)
            return Answer(index, error=f"down ({exc})")
        except Exception as exc:  # noqa: BLE001 - a garbled reply is that worker's failure, named
            return Answer(index, error=f"no usable reply ({exc})")
        if not reply.get("ok"):
            return Answer(index, error=str(reply.get("error", "failed")))
        return Answer(index, reply.get("text") or "", reply.get("data"))

    async def ask_all(self, command: str, args: list[str], timeout: float = client.TIMEOUT,
                      skip: int | None = None) -> list[Answer]:
        """Every worker (but ``skip``) at once, in index order."""
        indexes = [i for i in range(self.count) if i != skip]
        return list(await asyncio.gather(*(self.ask(i, command, args, timeout) for i in indexes)))

    async def families(self, own: tuple[int, Iterable] | None = None) -> tuple[list[Metric], list[Answer]]:
        """All workers' metric families merged, with ``cid_worker_up`` and per-worker query
        counts; ``own``: (index, families) of the asking worker, read directly."""
        answers = await self.ask_all("samples", [], READ_TIMEOUT, skip=own[0] if own else None)
        if own is not None:
            answers.append(Answer(own[0], data=family_data(own[1])))
            answers.sort(key=lambda a: a.index)
        return merge([a.data for a in answers if a.error is None]) + per_worker(answers), answers


def _latest(family: str, sample: str) -> bool:
    """Points in time are not added up: the latest is kept."""
    return sample.endswith("_created") or family.endswith("_time_seconds")


def merge(per_worker_families: list[list[dict[str, Any]]]) -> list[Metric]:
    """Families (as ``family_data`` gives them) of several workers as one set: one series per
    labelset, summed (points in time: the latest)."""
    merged: dict[str, Metric] = {}
    values: dict[str, dict[tuple, float]] = {}
    for families in per_worker_families:
        for family in families:
            name = family["name"]
            if name not in merged:
                merged[name] = Metric(name, family["help"], family["type"], family.get("unit") or "")
                values[name] = {}
            seen = values[name]
            for sample_name, labels, value in family["samples"]:
                key = (sample_name, tuple(labels.items()))
                if key not in seen:
                    seen[key] = value
                elif _latest(name, sample_name):
                    seen[key] = max(seen[key], value)
                else:
                    seen[key] += value
    for name, metric in merged.items():
        for (sample_name, labels), value in values[name].items():
            metric.add_sample(sample_name, dict(labels), value)
    return list(merged.values())


def per_worker(answers: list[Answer]) -> list[Metric]:
    """``cid_worker_up{worker}`` (1 answered, 0 did not) and ``cid_worker_dns_queries_total
    {worker}`` (DNS responses that worker sent): how the kernel spreads the load, and who is
    missing from the totals."""
    up = Metric("cid_worker_up", "1 when the worker answered this scrape, 0 when its counters are missing",
                "gauge")
    queries = Metric("cid_worker_dns_queries", "DNS responses sent by one worker", "counter")
    for answer in answers:
        worker = {"worker": str(answer.index)}
        up.add_sample("cid_worker_up", worker, 0 if answer.error else 1)
        if answer.error is None:
            total = sum(value for family in answer.data if family["name"] == "cid_dns_queries"
                        for name, _, value in family["samples"] if name == "cid_dns_queries_total")
            queries.add_sample("cid_worker_dns_queries_total", worker, total)
    return [up, queries]


class Families:
    """Ready families as a "registry" for prometheus_client's generate_latest."""

    def __init__(self, families: list[Metric]):
        self.families = families

    def collect(self):
        return iter(self.families)


def _failures(answers: list[Answer]) -> list[str]:
    return [f"worker {a.index}: {a.error}" for a in answers if a.error is not None]


def _nobody(command: str, answers: list[Answer]) -> None:
    """No worker did it: CommandError, the refusal said once when all gave the same (a bad NAME)."""
    failed = _failures(answers)
    if len(failed) < len(answers):
        return
    errors = {a.error for a in answers}
    if len(errors) == 1 and not any(a.error.startswith(("down", "no usable")) for a in answers):
        raise CommandError(errors.pop())
    raise CommandError(f"{command}: no worker did it; " + "; ".join(failed))


def _all_or_fail(command: str, answers: list[Answer], done: str) -> None:
    """A write that not every worker did is a failure naming who did not (CommandError)."""
    _nobody(command, answers)
    failed = _failures(answers)
    if failed:
        raise CommandError(f"{command}: done in {len(answers) - len(failed)} of {len(answers)} workers"
                           f"{done}; " + "; ".join(failed))


def aggregate_commands(workers: Workers) -> dict[str, Command]:
    """The public control socket's commands: each worker's, fanned out and merged."""

    async def stats(args):
        if args:
            raise CommandError("stats takes no arguments")
        families, answers = await workers.families()
        _nobody("stats", answers)
        text, data = metric_lines(families)
        notes = [f"# {line}: its counters are not in the totals" for line in _failures(answers)]
        return "\n".join([text, *notes]), data

    def flusher(command: str) -> Command:
        async def flush(args):
            answers = await workers.ask_all(command, args)
            counts = [(a.index, a.data["flushed"]) for a in answers if a.error is None]
            total = sum(n for _, n in counts)
            each = ", ".join(f"worker {i}: {n}" for i, n in counts)
            _all_or_fail(command, answers, f" (flushed {total} entries: {each})" if counts else "")
            return f"flushed {total} entries in {len(answers)} workers ({each})", \
                {"flushed": total, "workers": {str(i): n for i, n in counts}}
        return flush

    async def dump_cache(args):
        answers = await workers.ask_all("dump-cache", args, client.TIMEOUT)
        _nobody("dump-cache", answers)
        blocks, data = [], {}
        for a in answers:
            if a.error is not None:
                blocks.append(f";; worker {a.index}: {a.error}: its entries are not listed")
                continue
            blocks.append(f";; worker {a.index}: {len(a.data)} entries")
            if a.text:
                blocks.append(a.text)
            data[str(a.index)] = a.data
        return "\n".join(blocks), data

    async def reload(args):
        answers = await workers.ask_all("reload", args)
        for a in answers:  # a worker that kept its old settings says so in its last line
            if a.error is None and (a.data or {}).get("reloaded", [""])[-1:] != ["reload done"]:
                a.error = " / ".join(a.data.get("reloaded", [])) or "reload failed"
        _all_or_fail("reload", answers, "")
        lines = [f"worker {a.index}: {line}" for a in answers for line in a.data["reloaded"]]
        return "\n".join([*lines, f"reload done in {len(answers)} workers"]), \
            {"reloaded": {str(a.index): a.data["reloaded"] for a in answers}}

    return {"stats": stats, "flush": flusher("flush"), "flush-subtree": flusher("flush-subtree"),
            "flush-all": flusher("flush-all"), "dump-cache": dump_cache, "reload": reload}


def serve_control(channel: ControlServer, workers: Workers) -> int:
    """The control process's life (forked by the supervisor): serve the bound public sockets
    until SIGTERM/SIGINT. SIGHUP is the workers' (they reload); here it is ignored."""
    from ..cli import loop
    for signum in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_IGN)
    channel.commands = aggregate_commands(workers)

    async def main() -> int:
        stop = asyncio.Event()
        running = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            running.add_signal_handler(signum, stop.set)
        from ..service import workers as supervisor
        if supervisor.stop_requested:  # told to stop while it was starting
            stop.set()
        await channel.start()
        await stop.wait()
        await channel.close(unlink=False)  # the supervisor removes the path when all stopped
        return 0
    return loop.run(main())
