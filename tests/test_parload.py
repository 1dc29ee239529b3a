"""Reading a master file in forked workers, one byte range each (resolver/auth/parload.py).

The thresholds are made small so that files of a few hundred kilobytes really are split and
read by several processes; whatever the ranges, the zone, the warnings and the error (its
file:line: the first in the file) must be those of the one-process read (``jobs=1``), and the
zone and the error's place those of dnspython's reader, the oracle. Ranges are cut where
``split_points`` cuts them and, to reach the cases it avoids, at lines chosen at random (a
record without owner or TTL opening a range, a parenthesised record cut in two, one owner's
records on both sides). Workers are killed with SIGKILL while reading and before sending.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import signal

import msgpack
import pytest

import resolver  # noqa: F401  (registers CAPS/LOAD)
from resolver.auth import masterfile, parload, zonedb, zoneload
from resolver.auth.store import from_zone
from resolver.auth.zonefile import ZoneFileError, load_zone

ORIGIN = "scale.cid."
CAPS = msgpack.packb({"accel_count": 8, "region": "bj"})
BAD_CAPS = msgpack.packb({"accel_count": "eight"})
_WHERE = re.compile(r"^(.*?:\d+):")


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch):
    monkeypatch.setattr(parload, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(parload, "HEAD_BYTES", 2048)


@pytest.fixture
def absorbed(monkeypatch):
    """How many worker parts the reader took (0: every range was read in this process)."""
    count = [0]
    real = zoneload.Part.absorb

    def spy(self, exported):
        count[0] += 1
        return real(self, exported)
    monkeypatch.setattr(zoneload.Part, "absorb", spy)
    return count


def zone_text(seed: int, names: int = 1500, *, ttl_directive: bool = True, directives_late: bool = False,
              parens: bool = True, signatures: str | None = None, outside: bool = False) -> str:
    """A zone of ``names`` owners written the many ways master files write them: relative,
    absolute and mixed-case owners, owners left out (a record continuing the owner before),
    TTLs given, left out and with units, class before or after the TTL, comments, blank
    lines, quoted TXT with ``;`` and parentheses, multi-line parenthesised records, RFC 3597
    CAPS, an RRset resumed further on, a wildcard."""
    rnd = random.Random(seed)
    out = [f"$ORIGIN {ORIGIN}"]
    if ttl_directive:
        out.append("$TTL 300")
    out += ["@ 3600 IN SOA ns1 hostmaster ( 1 ; serial", "    7200 3600 1209600 300 )",
            "@ NS ns1", "ns1 A 192.0.2.1", "*.wild TXT wildcard"]
    resumed = []
    for i in range(names):
        owner = f"h{i}"
        spelled = rnd.choice([owner, owner.upper(), f"{owner}.{ORIGIN}", f"{owner.capitalize()}.{ORIGIN.upper()}"])
        kind = rnd.random()
        ttl = rnd.choice(["", "", "60 ", "1h ", "IN 2m ", "120 IN "])
        out.append(f"{spelled} {ttl}A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
        if kind < 0.3:
            out.append(f"\t{rnd.choice(['', '90 '])}AAAA 2001:db8::{i:x}")
        if kind < 0.15:
            out.append(f"  TYPE65380 \\# {len(CAPS)} {CAPS.hex()}")
        if 0.3 <= kind < 0.35:
            out.append(f'{owner} TXT "quoted ; not a comment" "and (parens)"')
        if parens and 0.35 <= kind < 0.4:
            out += [f"{owner} DNSKEY 257 3 15 ( Id1p9zYz147MO0RYcxVJxB+x", "    Mkb5rytqCSaC6d7Pp8E= )"]
        if 0.4 <= kind < 0.43:
            out += ["; a comment line", ""]
        if 0.43 <= kind < 0.45:
            resumed.append(owner)
        if signatures and kind < 0.1:
            window = {"expired": "20200201000000 20200101000000", "future": "20990201000000 20990101000000",
                      "good": "20990201000000 20200101000000"}[signatures if i % 7 == 0 else "good"]
            out.append(f"{owner} RRSIG A 15 3 300 {window} 1 {ORIGIN} AAAA")
        if outside and i % 211 == 0:
            out.append(f"stray{i}.elsewhere.example. A 192.0.2.9")
        if i % 397 == 0 and i:
            out.append(f"bad{i} TYPE65380 \\# {len(BAD_CAPS)} {BAD_CAPS.hex()}")
        if directives_late and i in (names // 3, 2 * names // 3):
            out += [f"$ORIGIN sub{i}.{ORIGIN}", f"$TTL {600 + i}", "inner A 192.0.2.77", "  TXT no-ttl",
                    f"$ORIGIN {ORIGIN}"]
    for owner in resumed:
        out.append(f"{owner} A 10.255.255.1")
    return "\n".join(out) + "\n"


def records(data: zonedb.ZoneData) -> dict:
    out = {}
    for key, blob in [*data.blobs.items(), *data.hashed.items()]:
        out[key] = {k: (v[0], sorted(v[1])) for k, v in zonedb.decode_sets(blob).items()}
    return out


def outcome(path, jobs: int):
    """What ``zoneload.load`` makes of the file: the zone, spellings, warnings, lines; or the error."""
    try:
        loaded = zoneload.load(path, jobs=jobs, now=1_900_000_000)
    except zoneload.ZoneLoadError as exc:
        return ("error", str(exc))
    zone = loaded.zone
    return ("zone", records(zone), {zone.owner_wire(k) for k in zone.blobs}, loaded.warnings,
            loaded.records, loaded.lines)


def oracle(path):
    """dnspython's reader: the records, or the file:line of its error. Out-of-zone data, which
    dnspython refuses and we ignore with a warning (as NSD and Knot do), is made a comment."""
    text = path.read_text()
    if ".elsewhere.example." in text:
        path = path.with_name(path.name + ".oracle")
        path.write_text(re.sub(r"(?m)^stray", ";stray", text))
    try:
        zone = from_zone(load_zone(path, fast=False))
    except ZoneFileError as exc:
        where = _WHERE.match(str(exc))
        return ("error", where.group(1) if where else str(exc))
    return ("zone", records(zone), {zone.owner_wire(k) for k in zone.blobs})


def assert_same(path, jobs: int):
    """The parallel read equals the one-process read and dnspython's; returns it."""
    alone = outcome(path, 1)
    together = outcome(path, jobs)
    assert together == alone
    expected = oracle(path)
    if alone[0] == "zone":
        assert expected[0] == "zone", expected
        assert alone[1:3] == expected[1:3]
    else:
        assert expected[0] == "error", alone
        assert _WHERE.match(alone[1]).group(1) == expected[1].replace(".oracle:", ":"), (alone[1], expected[1])
    return together


@pytest.mark.parametrize("jobs", [2, 3, 5])
def test_split_file_loads_as_one_process_and_dnspython_load_it(tmp_path, absorbed, jobs):
    path = tmp_path / "zone.db"
    path.write_text(zone_text(jobs))
    result = assert_same(path, jobs)
    assert result[0] == "zone" and len(result[1]) > 1500
    assert absorbed[0] == jobs - 1  # every later range came from a worker
    assert any("CAPS" in w for w in result[3])  # the maps' warnings survived the merge


def test_cuts_fall_where_split_points_says(tmp_path):
    path = tmp_path / "zone.db"
    path.write_text(zone_text(11))
    data = path.read_bytes()
    with open(path, "rb") as handle:
        cuts = parload.split_points(handle, len(data), 4)
    assert len(cuts) == 4 and cuts == sorted(set(cuts))
    for cut in cuts:
        assert data[cut - 1:cut] == b"\n" and data[cut:cut + 1] not in (b" ", b"\t", b";", b"$", b"\n")
        before = data[:cut].rstrip(b"\n").rsplit(b"\n", 1)[-1]
        # not the owner of the line before it (when that line names one)
        if before[:1] not in (b" ", b"\t"):
            assert before.split()[0].lower() != data[cut:].split(None, 1)[0].lower()


def test_directives_after_the_head_and_an_implicit_ttl(tmp_path, absorbed):
    """$ORIGIN/$TTL in a later range change what the ranges after it assumed: those are read
    again here; a file without $TTL (records take the TTL before them, RFC 1035 §5.1, or the
    SOA MINIMUM as dnspython applies it) needs what came before each range."""
    path = tmp_path / "late.db"
    path.write_text(zone_text(21, directives_late=True))
    assert_same(path, 3)
    path = tmp_path / "nottl.db"
    path.write_text(zone_text(22, ttl_directive=False))
    assert_same(path, 3)


def test_warnings_of_later_ranges_are_kept_in_file_order(tmp_path, absorbed):
    for which in ("expired", "future"):
        path = tmp_path / f"{which}.db"
        path.write_text(zone_text(31, signatures=which, outside=True))
        result = assert_same(path, 4)
        assert absorbed[0] > 0
        assert any(which.replace("future", "not yet valid") in w for w in result[3])
        outside = [w for w in result[3] if "out-of-zone" in w]
        lines = [int(w.split(":")[1]) for w in outside if w[0] != "."]
        assert len(outside) > 3 and lines == sorted(lines)


@pytest.mark.parametrize("seed", range(6))
def test_any_cut_at_a_line_start_gives_the_same_zone(tmp_path, monkeypatch, seed):
    """Ranges opening with a record without owner, inside a parenthesised record, between two
    records of one owner (spelled alike or not), on a comment or a directive."""
    path = tmp_path / "zone.db"
    path.write_text(zone_text(40 + seed, names=600, directives_late=seed % 2 == 0,
                              ttl_directive=seed % 3 != 0))
    data = path.read_bytes()
    starts = [m.end() for m in re.finditer(b"\n", data)][:-1]
    rnd = random.Random(seed)
    cuts = sorted(rnd.sample(starts, 6))
    monkeypatch.setattr(parload, "split_points", lambda *a, **k: list(cuts))
    assert_same(path, 6)


def test_cut_between_records_of_one_owner_and_inside_parentheses(tmp_path, monkeypatch, absorbed):
    text = (f"$ORIGIN {ORIGIN}\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n"
            "ns1 A 192.0.2.1\nsplit A 10.0.0.1\n"          # cut 1 after this line: same owner
            f"SPLIT.{ORIGIN} A 10.0.0.2\n  AAAA 2001:db8::1\n"
            "key DNSKEY 257 3 15 ( Id1p9zYz147MO0RYcxVJxB+x\n"  # cut 2 after this line
            "    Mkb5rytqCSaC6d7Pp8E= )\nafter A 10.0.0.3\n  TXT \"owner carried over\"\n"  # cut 3 before TXT
            "last A 10.0.0.4\n")
    path = tmp_path / "zone.db"
    path.write_text(text)
    data = path.read_bytes()
    cut = [data.index(b"SPLIT."), data.index(b"    Mkb5"), data.index(b'  TXT "owner'), data.index(b"last ")]
    monkeypatch.setattr(parload, "split_points", lambda *a, **k: [data.index(b"split "), *cut])
    result = assert_same(path, 5)
    assert result[0] == "zone"
    assert absorbed[0] >= 1  # the range holding SPLIT's second record came from a worker


@pytest.mark.parametrize("where", ["head", "first", "later", "two"])
def test_the_first_error_in_the_file_is_reported(tmp_path, absorbed, where):
    lines = zone_text(51).splitlines()
    bad = {"head": [8], "first": [len(lines) // 4], "later": [len(lines) * 4 // 5],
           "two": [len(lines) * 3 // 5, len(lines) * 9 // 10]}[where]
    for n in reversed(bad):
        lines.insert(n, f"broken{n} A 10.0.0.300")
    path = tmp_path / "zone.db"
    path.write_text("\n".join(lines) + "\n")
    result = assert_same(path, 4)
    assert result[0] == "error" and f":{bad[0] + 1}: " in result[1]


def test_errors_the_checks_find_across_ranges(tmp_path, absorbed):
    """A second, different SOA and a CNAME beside other data, each part in a different range."""
    lines = zone_text(61).splitlines()
    lines.insert(len(lines) * 3 // 4, "@ SOA ns1 hostmaster 2 7200 3600 1209600 300")
    path = tmp_path / "soa.db"
    path.write_text("\n".join(lines) + "\n")
    alone, together = outcome(path, 1), outcome(path, 4)
    assert together == alone and alone[0] == "error" and "singleton" in alone[1]
    lines = zone_text(62).splitlines()
    lines.insert(len(lines) * 3 // 4, "h5 CNAME elsewhere.example.")
    path = tmp_path / "cname.db"
    path.write_text("\n".join(lines) + "\n")
    alone, together = outcome(path, 1), outcome(path, 4)
    assert together == alone and alone[0] == "error" and "CNAME and other data" in alone[1]


def _in_worker(parent: int) -> bool:
    return os.getpid() != parent


@pytest.mark.parametrize("when", ["while-reading", "before-sending", "garbled"])
def test_a_worker_that_dies_is_read_around(tmp_path, monkeypatch, absorbed, when):
    """kill -9 of a worker (by itself while reading, by the parent while it waits to send) and
    a worker that sends half its result: the reader reads those ranges itself, same zone."""
    path = tmp_path / "zone.db"
    path.write_text(zone_text(71))
    expected = outcome(path, 1)
    parent = os.getpid()
    killed: list[int] = []
    forked: list[int] = []
    real_fork = parload._fork
    monkeypatch.setattr(parload, "_fork", lambda *a: (w := real_fork(*a), forked.append(w.pid))[0])
    if when == "while-reading":
        real_blocks = masterfile.Source.blocks

        def blocks(self):
            for n, block in enumerate(real_blocks(self)):
                if n == 1 and _in_worker(parent):
                    os.kill(os.getpid(), signal.SIGKILL)
                yield block
        monkeypatch.setattr(masterfile.Source, "blocks", blocks)
        monkeypatch.setattr(masterfile, "BLOCK_BYTES", 4096)
    elif when == "before-sending":
        gate, _ = os.pipe()  # never written to: a worker blocks on it until it is killed
        real_read = parload._read_range
        real_collect = parload._collect

        def read_range(*args):
            result = real_read(*args)
            os.read(gate, 1)
            return result

        def collect(worker):
            os.kill(worker.pid, signal.SIGKILL)
            killed.append(worker.pid)
            return real_collect(worker)
        monkeypatch.setattr(parload, "_read_range", read_range)
        monkeypatch.setattr(parload, "_collect", collect)
    else:
        real_dumps = pickle.dumps
        monkeypatch.setattr(parload.pickle, "dumps", lambda obj, **k: real_dumps(obj, **k)[:5000])
    assert outcome(path, 4) == expected
    assert absorbed[0] == 0
    if when == "before-sending":
        assert len(killed) == 1  # the first; the reader read on and stopped the others
    assert len(forked) == 3
    for pid in forked:  # every worker reaped: no zombie left behind
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
