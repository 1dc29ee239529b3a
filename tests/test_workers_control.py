"""`cid serve resolver --workers 2` seen as one server (issue 11, spec/service.md §5-§6): `cid ctl`
on the usual socket and keyed TCP sums or fans out to every worker, `/metrics` on whichever worker
answers shows the totals, a worker that is down is named (its counters not made up) and one started
again rejoins. Queries go from a fresh source port each, so the kernel (SO_REUSEPORT, 4-tuple hash)
gives both workers some; every check compares the public totals with each worker's own private
control socket."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest
from prometheus_client.parser import text_string_to_metric_families

from support import federation as F
from support.net import free_port
from test_service_cli import cid

ADDRESS = "127.0.110.1"
KEY = base64.b64encode(b"workers-control-key-0123456789ab").decode()
NAME = "pool-7.bj.cmcc.cid."


class Running:
    def __init__(self, proc: subprocess.Popen, log: Path, public: Path, port: int, http_port: int):
        self.proc, self.log, self.public, self.port, self.http_port = proc, log, public, port, http_port
        self.config: Path | None = None

    def text(self) -> str:
        return self.log.read_text()

    def private(self, index: int) -> Path:
        directory = re.search(r"worker control sockets in (\S+)", self.text()).group(1)
        return Path(directory) / f"worker-{index}.ctl"

    def workers(self) -> list[int]:
        return [int(p) for p in re.search(r"2 workers: ([\d, ]+)", self.text()).group(1).split(", ")]

    def tcp(self) -> str:
        return re.search(r"control on (\S+) \(TCP, keyed", self.text()).group(1)


def _until(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("workers_control")
    fed = F.build(now=time.time())
    with F.serving_in_thread(fed) as auth_port:
        config = F.resolver_config(fed, tmp, auth_port, timeout=1)
        port, http_port = free_port(ADDRESS), free_port(ADDRESS)
        log, public = tmp / "serve.log", config.with_name(config.name + ".ctl")  # the default path
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "resolver", "serve", "resolver", "--listen",
                                     f"{ADDRESS}:{port}", "--config", str(config), "--workers", "2",
                                     "--http", f"{ADDRESS}:{http_port}",
                                     "--control-tcp", f"{ADDRESS}:0", "--control-key", KEY],
                                    stdout=subprocess.DEVNULL, stderr=out, stdin=subprocess.DEVNULL)
        running = Running(proc, log, public, port, http_port)
        running.config = config
        try:
            _until(lambda: running.text().count("control socket /") >= 3 and "control process: " in running.text()
                   or proc.poll() is not None, "workers and control started")
            assert proc.poll() is None, running.text()
            _until(lambda: all(_answers(running.private(i)) for i in range(2)), "private sockets answer")
            yield running
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
            text = log.read_text()
            assert code == 0 and "Traceback" not in text, text
            assert not public.exists()  # the supervisor removed what it bound
            assert not running.private(0).parent.exists()


def _answers(sock: Path) -> bool:
    return cid("ctl", "--socket", str(sock), "stats").returncode == 0


def stats(*where: str) -> dict[str, float]:
    out = cid("ctl", *where, "--json", "stats")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def queries(data: dict[str, float]) -> float:
    return sum(v for k, v in data.items() if k.startswith("cid_dns_queries_total."))


def upstream(data: dict[str, float]) -> float:
    return sum(v for k, v in data.items() if k.startswith("cid_upstream_query_seconds_count."))


def ask_many(port: int, count: int) -> None:
    for _ in range(count):  # a fresh socket each time: a new source port, so any worker may get it
        query = dns.message.make_query(NAME, "SVCB", want_dnssec=True)
        answer = dns.query.udp(query, ADDRESS, port=port, timeout=8)
        assert answer.rcode() == dns.rcode.NOERROR and answer.flags & dns.flags.AD


def each(server: Running) -> list[dict[str, float]]:
    return [stats("--socket", str(server.private(i))) for i in range(2)]


def scrape(server: Running) -> dict[tuple[str, tuple], float]:
    """/metrics over a new connection (whichever worker accepts it), parsed by prometheus_client."""
    connection = http.client.HTTPConnection(ADDRESS, server.http_port, timeout=15)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 200
        text = response.read().decode()
    finally:
        connection.close()
    samples: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"two series for {key}"  # one series per labelset
            samples[key] = sample.value
    return samples


def test_stats_and_metrics_are_the_sums_of_the_workers(server):
    before = [queries(d) for d in each(server)]
    sent = 40
    ask_many(server.port, sent)
    private = each(server)
    mine = [queries(d) - b for d, b in zip(private, before)]
    assert all(n > 0 for n in mine) and sum(mine) == sent, mine  # both workers got some
    total = stats("--config", str(server.config))  # cid ctl finds the default socket beside it
    assert queries(total) == sum(before) + sent == sum(queries(d) for d in private)
    assert [total[f"cid_worker_dns_queries_total.{i}"] for i in range(2)] == [queries(d) for d in private]
    assert total["cid_worker_up.0"] == total["cid_worker_up.1"] == 1
    for key in ("cid_cache_entries", "cid_cache_misses_total.lookup", "cid_upstream_query_seconds_count.response"):
        assert total[key] == sum(d[key] for d in private) and total[key] > 0, key
    assert total["cid_start_time_seconds"] == max(d["cid_start_time_seconds"] for d in private)
    # /metrics from several connections: the same totals whichever worker answers.
    for _ in range(6):
        samples = scrape(server)
        dns_total = sum(v for (name, _), v in samples.items() if name == "cid_dns_queries_total")
        assert dns_total == queries(total)
        assert samples[("cid_cache_entries", ())] == total["cid_cache_entries"]
        assert samples[("cid_upstream_query_seconds_count", (("outcome", "response"),))] == \
            total["cid_upstream_query_seconds_count.response"]
        assert [samples[("cid_worker_up", (("worker", str(i)),))] for i in range(2)] == [1, 1]


def test_flush_is_done_in_every_worker(server):
    ask_many(server.port, 30)  # cached in both workers (each got some, as above)
    before = each(server)
    ask_many(server.port, 30)
    after = each(server)
    for b, a in zip(before, after):  # a cache hit asks nobody, in either worker
        assert queries(a) > queries(b) and upstream(a) == upstream(b)
    out = cid("ctl", "--socket", str(server.public), "--json", "flush", NAME)
    assert out.returncode == 0, out.stderr
    flushed = json.loads(out.stdout)
    assert set(flushed["workers"]) == {"0", "1"} and all(n > 0 for n in flushed["workers"].values())
    ask_many(server.port, 30)
    again = each(server)
    for a, c in zip(after, again):  # whichever worker answers, the flushed name went upstream
        assert queries(c) > queries(a) and upstream(c) > upstream(a)
    text = cid("ctl", "--socket", str(server.public), "flush-all")
    assert text.returncode == 0 and "in 2 workers" in text.stdout
    bad = cid("ctl", "--socket", str(server.public), "flush", "a..b")
    assert bad.returncode == 1 and len(bad.stderr.splitlines()) == 1


def test_dump_cache_reload_and_http_from_either_worker(server):
    ask_many(server.port, 20)
    dump = cid("ctl", "--socket", str(server.public), "dump-cache")
    assert dump.returncode == 0
    blocks = re.split(r"^;; worker (\d): \d+ entries$", dump.stdout, flags=re.M)
    assert blocks[1::2] == ["0", "1"] and all(NAME in b for b in blocks[2::2]), dump.stdout[:2000]
    reload = cid("ctl", "--socket", str(server.public), "reload")
    assert reload.returncode == 0 and "reload done in 2 workers" in reload.stdout
    assert reload.stdout.count("reload done") == 3
    good = server.config.read_text()
    server.config.write_text(good + "[resolver\n")  # unreadable: every worker keeps its settings
    try:
        failed = cid("ctl", "--socket", str(server.public), "reload")
        assert failed.returncode == 1 and "reload failed" in failed.stderr and len(failed.stderr.splitlines()) == 1
    finally:
        server.config.write_text(good)
    # SIGHUP to the supervisor: both workers reload, the control process (no SIGHUP) keeps serving.
    said = server.text().count("SIGHUP: reloaded")
    os.kill(server.proc.pid, signal.SIGHUP)
    _until(lambda: server.text().count("SIGHUP: reloaded") == said + 2, "both workers reloaded on SIGHUP")
    assert "control process (pid" not in server.text() and _answers(server.public)
    doh = dns.message.make_query(NAME, "SVCB").to_wire()
    wire = base64.urlsafe_b64encode(doh).decode().rstrip("=")
    for _ in range(6):  # new connections: whichever worker accepts answers all of it
        for path, check in (("/healthz", lambda body: json.loads(body)["status"] == "ok"),
                            ("/v1/resolve/cid:pool-7.bj.cmcc.cid", lambda body: json.loads(body)["status"] == "secure"),
                            ("/v1/find?namespace=cid:bj.cmcc.cid", lambda body: "results" in json.loads(body)),
                            (f"/dns-query?dns={wire}", lambda body: dns.message.from_wire(body).answer)):
            connection = http.client.HTTPConnection(ADDRESS, server.http_port, timeout=15)
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
                assert response.status == 200 and check(body), (path, body[:300])
            finally:
                connection.close()
    assert queries(stats("--socket", str(server.public))) == sum(queries(d) for d in each(server))


def test_tcp_control_with_the_key_and_a_bad_mac_refused(server):
    address = server.tcp()
    total = stats("--server", address, "--key", KEY)
    assert total["cid_worker_up.0"] == total["cid_worker_up.1"] == 1
    wrong = cid("ctl", "--server", address, "--key", base64.b64encode(b"y" * 32).decode(), "flush-all")
    assert wrong.returncode == 1 and "bad MAC" in wrong.stderr


def test_a_second_server_on_the_same_control_socket_is_refused(server, tmp_path):
    proc = cid("serve", "resolver", "--listen", f"{ADDRESS}:{free_port(ADDRESS)}", "--hint", "cid.=127.0.110.9",
               "--workers", "2", "--control", str(server.public))
    assert proc.returncode == 1 and "another server is listening there" in proc.stderr, proc.stderr
    assert _answers(server.public)  # the first one's socket is still there


def test_a_worker_down_is_named_and_one_started_again_rejoins(server):
    ask_many(server.port, 20)
    pids = server.workers()
    victim = next(p for p in pids if os.path.exists(f"/proc/{p}"))
    index = pids.index(victim)  # the pids line is in worker order
    os.kill(server.proc.pid, signal.SIGSTOP)  # the supervisor cannot start it again yet
    try:
        os.kill(victim, signal.SIGKILL)
        _until(lambda: not _answers(server.private(index)), "the killed worker stops answering")
        alive = stats("--socket", str(server.private(1 - index)))
        out = cid("ctl", "--socket", str(server.public), "stats")
        assert out.returncode == 0
        assert f"cid_worker_up.{index}=0" in out.stdout and f"# worker {index}: down" in out.stdout, out.stdout
        total = stats("--socket", str(server.public))
        assert queries(total) == queries(alive)  # nothing made up for the missing worker
        assert f"cid_worker_dns_queries_total.{index}" not in total
        samples = scrape_retrying(server)
        assert samples[("cid_worker_up", (("worker", str(index)),))] == 0
        flush = cid("ctl", "--socket", str(server.public), "flush-all")
        assert flush.returncode == 1 and f"worker {index}: down" in flush.stderr and "done in 1 of 2" in flush.stderr
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    _until(lambda: "starting it again" in server.text() and _answers(server.private(index)), "worker restarted")
    base = queries(stats("--socket", str(server.public)))
    ask_many(server.port, 40)
    total = stats("--socket", str(server.public))
    assert total[f"cid_worker_up.{index}"] == 1 and total[f"cid_worker_dns_queries_total.{index}"] > 0
    assert queries(total) == base + 40


def scrape_retrying(server: Running) -> dict[tuple[str, tuple], float]:
    """Only the live worker accepts HTTP now, but a connection may have been queued at the dead
    one's listener just before it died (reset): try again on a new connection."""
    for _ in range(10):
        try:
            return scrape(server)
        except (ConnectionError, http.client.HTTPException):
            time.sleep(0.1)
    return scrape(server)


def test_a_supervisor_killed_takes_its_workers_and_control_process_along(tmp_path):
    """kill -9 of the supervisor: its children get SIGTERM (PR_SET_PDEATHSIG), so no worker keeps
    serving unsupervised and no control process keeps answering for them; the stale socket
    left behind does not stop the next start, which removes the dead supervisor's directory of
    worker sockets."""
    public, log = tmp_path / "c.ctl", tmp_path / "serve.log"
    command = [sys.executable, "-m", "resolver", "serve", "resolver", "--listen", f"127.0.110.2:{free_port('127.0.110.2')}",
               "--hint", "cid.=127.0.110.9", "--workers", "2", "--control", str(public)]
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=out, stdin=subprocess.DEVNULL)
    try:
        _until(lambda: log.read_text().count("listening on") >= 2 and "control process: " in log.read_text()
               or proc.poll() is not None, "started")
        children = [int(p) for p in open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()]
        assert len(children) == 3 and _answers(public)
        first = Path(re.search(r"worker control sockets in (\S+)", log.read_text()).group(1))
        proc.kill()
        proc.wait(timeout=10)
        _until(lambda: not any(_running(p) for p in children), "the children ended")
        assert not _answers(public)
        assert first.is_dir()  # nobody left to remove it: the next start does
        with open(log, "a") as out:
            again = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=out, stdin=subprocess.DEVNULL)
        try:
            _until(lambda: log.read_text().count("control process: ") == 2 and _answers(public)
                   and log.read_text().count("listening on") >= 4 or again.poll() is not None,
                   "started again on the stale socket")
            assert again.poll() is None, log.read_text()
            assert not first.exists() and "left by supervisors no longer running" in log.read_text()
        finally:
            again.terminate()
            assert again.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
