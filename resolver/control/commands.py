"""The commands each server answers on its control channel (spec/service.md, Control)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype

from .server import Command, CommandError


def _name(args: list[str], command: str) -> dns.name.Name:
    if len(args) != 1:
        raise CommandError(f"{command} takes one NAME")
    try:
        return dns.name.from_text(args[0])
    except dns.exception.DNSException as exc:
        raise CommandError(f"{command} {args[0]}: {exc}") from None


def _no_args(args: list[str], command: str) -> None:
    if args:
        raise CommandError(f"{command} takes no arguments")


def metric_lines(families) -> tuple[str, dict[str, float]]:
    """Prometheus metric families as unbound-control-style ``name.label.label=value`` lines
    (a histogram's ``_created`` timestamps left out: they count nothing)."""
    data: dict[str, float] = {}
    for family in families:
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            key = ".".join([sample.name, *sample.labels.values()])
            data[key] = sample.value
    return "\n".join(f"{k}={v:.15g}" for k, v in data.items()), data


def family_data(families) -> list[dict[str, Any]]:
    """Metric families as JSON (the ``samples`` command): what another process needs to merge
    them (control/workers.py)."""
    return [{"name": f.name, "type": f.type, "help": f.documentation, "unit": f.unit,
             "samples": [[s.name, s.labels, s.value] for s in f.samples]} for f in families]


def resolver_commands(server, resolver, metrics, reload: Callable[[], Awaitable[list[str]]]) -> dict[str, Command]:
    """``server``: the RecursiveServer; ``metrics``: the /metrics collector (http/metrics.py)."""

    def forget_rendered() -> None:  # rendered responses hold the flushed data too
        server.udp_responses.clear()
        server.tcp_responses.clear()

    async def stats(args):
        _no_args(args, "stats")
        return metric_lines(metrics.registry.collect())

    async def samples(args):  # for the --workers aggregation (stats and /metrics of all workers)
        _no_args(args, "samples")
        return "", family_data(metrics.registry.collect())

    async def flush(args):
        n = resolver.cache.flush(name=_name(args, "flush"))
        forget_rendered()
        return f"flushed {n} entries", {"flushed": n}

    async def flush_subtree(args):
        n = resolver.cache.flush(subtree=_name(args, "flush-subtree"))
        forget_rendered()
        return f"flushed {n} entries", {"flushed": n}

    async def flush_all(args):
        _no_args(args, "flush-all")
        n = resolver.cache.flush()
        forget_rendered()
        return f"flushed {n} entries", {"flushed": n}

    async def dump_cache(args):
        _no_args(args, "dump-cache")
        records = resolver.cache.dump()
        lines = []
        for r in records:
            entry = resolver.cache.get_rrset(dns.name.from_text(r.name), dns.rdatatype.from_text(r.type)) if r.kind == "rrset" else None
            if entry is not None:  # one RRset per line: owner TTL class type rdata; rdata...
                rrset = entry.rrset
                lines.append(f"{r.name} {r.ttl} IN {r.type} " + " ; ".join(rd.to_text() for rd in rrset)
                             + f"  ; {r.status}")
            else:
                lines.append(f";{r.kind} {r.name} {r.ttl} {r.type} {r.rcode or ''} {r.status or ''}".rstrip())
        return "\n".join(lines), [r.to_json() for r in records]

    async def do_reload(args):
        _no_args(args, "reload")
        lines = await reload()
        return "\n".join(lines), {"reloaded": lines}

    return {"stats": stats, "samples": samples, "flush": flush, "flush-subtree": flush_subtree,
            "flush-all": flush_all, "dump-cache": dump_cache, "reload": do_reload}


def auth_commands(server, primary, reload: Callable[[], Awaitable[list[str]]] | None,
                  api=None) -> dict[str, Command]:
    """``server``: the AuthServer; ``primary``: its live zones (None when serving plain files);
    ``api``: the auth_resolve.AuthResolver behind --http's /v1/resolve and /v1/find, whose cache
    ``flush``, ``flush-subtree`` and ``flush-all`` empty (None without --http: no cache, and
    those commands are unsupported)."""
    import time

    def flusher(command: str, key: str | None):
        async def run(args):
            if key is None:
                _no_args(args, command)
                selector = {}
            else:
                selector = {key: _name(args, command)}
            cache = getattr(api.resolver, "cache", None)  # None until the first /v1 request made it
            n = cache.flush(**selector) if cache is not None else 0
            return f"flushed {n} entries", {"flushed": n}
        return run

    def zone_info(live) -> dict[str, Any]:
        journal = getattr(live, "journal", None)
        size = None
        if journal is not None:
            size = sum(p.stat().st_size for p in journal.path.parent.glob(journal.path.name + "*"))
        maintenance = getattr(live, "maintenance", None)
        due = getattr(maintenance, "next_due", None)
        resign = due() if callable(due) else None
        return {"zone": live.origin.to_text(), "serial": live.committed_serial, "names": len(live.data.blobs),
                "next_resign": resign, "leases": len(live.leases), "next_lease_expiry": live.next_expiry(),
                "updates": live.updates, "journal_bytes": size}

    async def stats(args):
        _no_args(args, "stats")
        data: dict[str, float] = {}
        for protocol_name, counts in (("udp", server.udp_rcodes), ("tcp", server.tcp_rcodes)):
            for code, n in enumerate(counts):
                if n:
                    data[f"queries.{protocol_name}.{dns.rcode.to_text(code)}"] = n
        for live in (primary.zones.values() if primary is not None else ()):
            data[f"zone.{live.origin}.updates"] = live.updates
            data[f"zone.{live.origin}.leases"] = len(live.leases)
        return "\n".join(f"{k}={v:g}" for k, v in data.items()), data

    async def zone_status(args):
        if primary is None:
            raise CommandError("zone-status needs a server started with --config (live zones)")
        zones = list(primary.zones.values())
        if args:
            wanted = _name(args, "zone-status")
            zones = [z for z in zones if z.origin == wanted]
            if not zones:
                raise CommandError(f"{wanted}: not a zone of this server")
        infos = [zone_info(z) for z in zones]
        now = time.time()

        def when(t):
            return "-" if t is None else f"in {max(0, t - now):.0f} s"
        text = "\n".join(f"{i['zone']} serial={i['serial']} names={i['names']} next-resign={when(i['next_resign'])} "
                         f"leases={i['leases']} journal={i['journal_bytes'] if i['journal_bytes'] is not None else '-'}B"
                         for i in infos)
        return text, infos

    commands: dict[str, Command] = {"stats": stats, "zone-status": zone_status}
    if api is not None:  # without --http there is no cache: the commands are unsupported
        commands.update({"flush": flusher("flush", "name"), "flush-subtree": flusher("flush-subtree", "subtree"),
                         "flush-all": flusher("flush-all", None)})
    if reload is not None:
        async def do_reload(args):
            _no_args(args, "reload")
            lines = await reload()
            return "\n".join(lines), {"reloaded": lines}
        commands["reload"] = do_reload
    return commands

