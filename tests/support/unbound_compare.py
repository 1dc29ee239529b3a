"""Both sides of a differential test against Unbound, as comparable "views" — used by
tests/test_interop_nsec3.py and tests/test_interop_misbehaving.py.

* A recursive server's side (Unbound, or `cid serve resolver`), asked with dnspython, RD=1, DO=1:
  ``server_dig`` for one question, ``server_resolve`` for what `cid resolve` would build from
  its answers (SVCB → A/AAAA of each target → CAPS/LOAD, the weakest verdict of them all).
* Our command line's side: ``our_commands`` gives the `cid` commands of a case, ``cid_batch``
  runs many of them in one Python child process (each like a separate `cid` invocation: own argv,
  own Resolver, own event loop), ``our_view`` turns a case's runs into the same view.

Views: ``{"rcode", "verdict", "answer"}`` for dig (answer data sorted, RRSIGs left out, names
in canonical lower case), ``{"rcode", "verdict", "endpoints", "capabilities", "load"}`` for
resolve. Verdicts: SERVFAIL ⇔ bogus, AD=1 ⇔ secure, else insecure.

A case is any object with ``kind`` ("dig" or "resolve"), ``name`` and ``rdtype``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.svcbbase as svcbbase

import resolver  # noqa: F401  (CAPS/LOAD rdata types, so both sides print them alike)

SECURE, INSECURE, BOGUS = "secure", "insecure", "bogus"
STRENGTH = {BOGUS: 0, "indeterminate": 1, INSECURE: 2, SECURE: 3}
NO_REPLY = {"rcode": "no reply"}


# --- answers as data ---------------------------------------------------------------------------

def canonical(rdtype: int, rdata: dns.rdata.Rdata) -> str:
    """Rdata text in canonical form (RFC 4034 §6.2: names in CNAME, NS, SOA... lower-cased), so
    the case of names, which DNS ignores, does not count as different data."""
    wire = rdata.to_digestable()
    return dns.rdata.from_wire(dns.rdataclass.IN, rdtype, wire, 0, len(wire)).to_text()


def row(name: str, rdtype: str, text: str) -> tuple[str, str, str]:
    """One record given as text, as ``answer_data`` gives it."""
    t = dns.rdatatype.from_text(rdtype)
    return (name.lower(), dns.rdatatype.to_text(t), canonical(t, dns.rdata.from_text(dns.rdataclass.IN, t, text)))


def answer_data(rrsets) -> list[tuple[str, str, str]]:
    return sorted((str(r.name).lower(), dns.rdatatype.to_text(r.rdtype), canonical(r.rdtype, rd))
                  for r in rrsets if r.rdtype != dns.rdatatype.RRSIG for rd in r)


def verdict(message: dns.message.Message) -> str:
    if message.rcode() == dns.rcode.SERVFAIL:
        return BOGUS
    return SECURE if message.flags & dns.flags.AD else INSECURE


# --- a recursive server's side -----------------------------------------------------------------

def ask(server: tuple[str, int], name: str, rdtype: str, timeout: float = 15) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, want_dnssec=True)  # RD is set by default
    return dns.query.udp_with_fallback(query, server[0], port=server[1], timeout=timeout)[0]


def server_dig(server: tuple[str, int], case, timeout: float = 15) -> tuple[dict, str]:
    """A recursive server's view of a dig case; NO_REPLY when it does not answer within
    ``timeout``."""
    try:
        message = ask(server, case.name, case.rdtype, timeout)
    except dns.exception.Timeout:
        return dict(NO_REPLY), f";; no reply within {timeout} s"
    return ({"rcode": dns.rcode.to_text(message.rcode()), "verdict": verdict(message),
             "answer": answer_data(message.answer)}, message.to_text())


def server_resolve(server: tuple[str, int], case) -> tuple[dict, str]:
    """The Resolution `cid resolve` builds (resolver/client/assembly.py) from a recursive server's answers: SVCB;
    unless NXDOMAIN or failed, A and AAAA of each ServiceMode target, CAPS and LOAD; the
    weakest verdict of them all."""
    name = dns.name.from_text(case.name)
    asked: list[tuple[str, dns.message.Message]] = []

    def lookup(qname, rdtype: str):
        message = ask(server, str(qname), rdtype)
        asked.append((f"{qname} {rdtype}", message))
        wanted = dns.rdatatype.from_text(rdtype)
        return next((r for r in message.answer if r.rdtype == wanted), None)

    svcb = lookup(name, "SVCB")
    endpoints, capabilities, load = [], {}, None
    first = asked[0][1]
    if first.rcode() == dns.rcode.NOERROR:
        addresses = {}
        for rd in sorted((rd for rd in (svcb or []) if rd.priority != 0), key=lambda rd: (rd.priority, rd.target)):
            target = svcb.name if rd.target == dns.name.root else rd.target
            if target not in addresses:
                found = [lookup(target, t) for t in ("A", "AAAA")]
                addresses[target] = sorted({r.address for rrset in found if rrset for r in rrset})
            port = rd.params.get(svcbbase.ParamKey.PORT)
            alpn = rd.params.get(svcbbase.ParamKey.ALPN)
            endpoints.append({"target": target.to_text(), "priority": rd.priority,
                              "port": port.port if port else None,
                              "alpn": [x.decode() for x in alpn.ids] if alpn else [],
                              "addresses": addresses[target]})
        caps, live = lookup(name, "TYPE65380"), lookup(name, "TYPE65381")
        for rd in sorted(caps or [], key=lambda r: r.to_digestable()):
            capabilities.update(rd.mapping)
        if live is not None:
            load = {}
            for rd in sorted(live, key=lambda r: r.to_digestable()):
                load.update(rd.mapping)
    weakest = min((verdict(m) for _, m in asked), key=STRENGTH.__getitem__)
    rcode = dns.rcode.to_text(first.rcode())
    if weakest == BOGUS:
        rcode, endpoints, capabilities, load = "SERVFAIL", [], {}, None
    view = {"rcode": rcode, "verdict": weakest, "endpoints": endpoints, "capabilities": capabilities, "load": load}
    text = "\n".join(f";; --- {what}: {dns.rcode.to_text(m.rcode())} {dns.flags.to_text(m.flags)}\n{m}"
                     for what, m in asked)
    return view, text


# --- our side: every command in one child process ------------------------------------------------

# Each {"argv"} runs like a separate `cid` process would (own argv, own Resolver, own event loop);
# each {"sequence"} runs its steps through one Resolver (with "options") and keeps the traces.
_BATCH = r"""
import asyncio, contextlib, io, json, sys, traceback
from resolver.cli.main import main
from resolver import Resolver

async def sequence(steps, options):
    out = []
    async with Resolver(**options) as r:
        for name, rdtype in steps:
            lk = await r.lookup(name, rdtype)
            out.append({"rcode": lk.rcode, "status": lk.status.value, "why": lk.why,
                        "trace": [str(e) for e in lk.trace]})
    return out

out = []
for item in json.load(sys.stdin):
    if "sequence" in item:
        out.append({"steps": asyncio.run(sequence(item["sequence"], item["options"]))})
        continue
    argv = item["argv"]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
        except BaseException:
            rc = -1
            traceback.print_exc()
    out.append({"argv": argv, "rc": rc, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()})
json.dump(out, sys.stdout)
"""


def cid_batch(items: list[dict]) -> list[dict]:
    """Run ``items`` ({"argv": [...]} or {"sequence": [[name, type], ...], "options": {...}}) in
    one child process; one result per item, in order: {"argv", "rc", "stdout", "stderr"} or
    {"steps": [{"rcode", "status", "why", "trace"}, ...]}."""
    proc = subprocess.run([sys.executable, "-c", _BATCH], input=json.dumps(items),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def our_commands(case, options: list[str], check: tuple[str, ...] = ()) -> list[list[str]]:
    """The `cid` commands of a case: `cid resolve ID --json`; or `cid dig NAME TYPE +json` (rcode,
    flags and answer) and the same dig with ``check`` flags instead of +json, for its
    ``;; VALIDATION:`` verdict and why."""
    if case.kind == "resolve":
        return [["resolve", case.name, "--json", *options]]
    return [["dig", case.name, case.rdtype, "+json", *options], ["dig", case.name, case.rdtype, *check, *options]]


def our_view(case, runs: list[dict]) -> tuple[dict, str]:
    """Our view of a case from the results of its ``our_commands``. A dig verdict that the
    ``;; VALIDATION:`` status does not bear out is marked (e.g. SERVFAIL from an upstream
    failure, status indeterminate, is not bogus)."""
    first = runs[0]
    if not first["stdout"].strip():
        return {"error": f"exit {first['rc']}: {first['stderr'][-2000:]}"}, first["stderr"]
    data = json.loads(first["stdout"])
    if case.kind == "resolve":
        endpoints = [{k: e[k] for k in ("target", "priority", "port", "alpn", "addresses")} for e in data["endpoints"]]
        view = {"rcode": data["rcode"], "verdict": data["status"], "endpoints": endpoints,
                "capabilities": data["capabilities"], "load": data["load"]}
        return view, f"why: {data['why']}\n{first['stdout']}"
    rcode = data["rcode"]
    seen = BOGUS if rcode == "SERVFAIL" else SECURE if "ad" in data["flags"] else INSECURE
    answer = sorted(row(rr["name"], rr["type"], rr["text"]) for rr in data["answer"] if rr["type"] != "RRSIG")
    second = runs[1]["stdout"]
    why = next((line for line in second.splitlines() if line.startswith(";; VALIDATION:")),
               f";; VALIDATION: (none) {runs[1]['stderr'][-500:]}")
    status = why.split()[2]
    if status != seen:
        seen = f"{seen} (status {status})"
    label = " ".join(a for a in runs[1]["argv"][3:] if a.startswith("+")) or "dig"
    text = f"{why}\n--- {label}\n{second}\n--- +json\n{first['stdout']}"
    return {"rcode": rcode, "verdict": seen, "answer": answer}, text


def split_runs(flat: list[dict], groups: list[list]) -> list[list[dict]]:
    """``flat`` (cid_batch of the commands of ``groups``, one after another) cut back into one
    list of results per group."""
    out, i = [], 0
    for group in groups:
        out.append(flat[i:i + len(group)])
        i += len(group)
    return out
