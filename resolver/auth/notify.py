"""NOTIFY (RFC 1996) to a zone's secondaries: at start and after every durable change.

A zone's ``notify`` list names its secondaries as ``"ADDR[:PORT]"`` or ``"ADDR[:PORT] key NAME"``
(the NOTIFY is then TSIG-signed with that [[key]], as BIND's ``also-notify { ADDR key NAME; }``).
Each goes over UDP from the server's first listen address (secondaries accept NOTIFY from their
primary's address), is retried with doubling timeouts a bounded number of times (RFC 1996
§3.6), and a newer serial replaces a NOTIFY still being retried for an older one. The secondary
then asks for the SOA and transfers (``transfer.py``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from .policy import Keyring

log = logging.getLogger("cid.auth.notify")

TRIES = 5
FIRST_TIMEOUT = 0.5  # seconds, doubled after each unanswered try: 0.5 + 1 + 2 + 4 + 8


class NotifyError(ValueError):
    """A ``notify`` entry cannot be read."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int = 53
    key: dns.name.Name | None = None

    def __str__(self) -> str:
        where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        return where + (f" key {self.key}" if self.key else "")


def parse_target(text: str) -> Target:
    """``ADDR[:PORT]``, ``[V6]:PORT`` or ``ADDR`` (port 53), optionally followed by ``key NAME``."""
    parts = str(text).split()
    if len(parts) not in (1, 3) or (len(parts) == 3 and parts[1] != "key"):
        raise NotifyError(f"notify: {text!r}: expected \"ADDR[:PORT]\" or \"ADDR[:PORT] key NAME\"")
    address = parts[0]
    port = 53
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        if rest:
            port = _port(rest.lstrip(":"), text)
    elif address.count(":") == 1:
        host, _, rest = address.partition(":")
        port = _port(rest, text)
    else:
        host = address
    key = None
    if len(parts) == 3:
        try:
            key = dns.name.from_text(parts[2])
        except dns.exception.DNSException as exc:
            raise NotifyError(f"notify: {text!r}: bad key name: {exc}") from None
    return Target(host, port, key)


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise NotifyError(f"notify: {entry!r}: bad port {text!r}")
    return int(text)


class Notifier:
    """Sends the NOTIFYs of every zone (module text); ``source`` is our address to send from."""

    def __init__(self, keyring: Keyring, source: str | None = None, *, tries: int = TRIES,
                 first_timeout: float = FIRST_TIMEOUT):
        self.keyring = keyring
        self.source = source
        self.tries = tries
        self.first_timeout = first_timeout
        self._tasks: dict[tuple[dns.name.Name, Target], asyncio.Task] = {}
        self.sent = 0
        self.answered = 0

    def notify(self, zone: dns.name.Name, serial: int, targets: list[Target],
               soa: tuple[int, dns.rdata.Rdata] | None = None) -> None:
        """``soa``: the zone's SOA (TTL, rdata), sent in the answer section with ``serial`` in it (RFC 1996
        §3.7 allows it as a hint, and BIND sends it): a secondary that already has the serial
        need not ask for the SOA."""
        if soa is not None:
            soa = (soa[0], soa[1].replace(serial=serial))
        for target in targets:
            running = self._tasks.get((zone, target))
            if running is not None and not running.done():
                running.cancel()  # a newer serial replaces the one still being retried
            task = asyncio.ensure_future(self._send(zone, serial, target, soa))
            self._tasks[(zone, target)] = task

    async def _send(self, zone: dns.name.Name, serial: int, target: Target,
                    soa: tuple[int, dns.rdata.Rdata] | None = None) -> bool:
        key = self.keyring.get(target.key) if target.key is not None else None
        if target.key is not None and key is None:
            log.warning("zone %s: NOTIFY to %s: no [[key]] %s", zone, target, target.key)
            return False
        timeout = self.first_timeout
        for attempt in range(1, self.tries + 1):
            query = dns.message.make_query(zone, dns.rdatatype.SOA)
            # RFC 1996 §3.7: AA set, RD clear. The opcode lives in the same flags word, so it is
            # set after them (assigning ``flags`` afterwards turned the NOTIFY into a QUERY).
            query.flags = dns.flags.AA
            query.set_opcode(dns.opcode.NOTIFY)
            if soa is not None:
                query.find_rrset(query.answer, zone, dns.rdataclass.IN, dns.rdatatype.SOA,
                                 create=True).add(soa[1], soa[0])
            if key is not None:
                query.use_tsig(key.tsig, key.name, algorithm=key.algorithm)
            self.sent += 1
            try:
                response = await dns.asyncquery.udp(query, target.host, timeout=timeout, port=target.port,
                                                    source=self.source)
            except dns.exception.Timeout:
                log.debug("zone %s: NOTIFY serial %d to %s: no answer (try %d)", zone, serial, target, attempt)
                timeout *= 2
                continue
            except (OSError, dns.exception.DNSException) as exc:
                log.info("zone %s: NOTIFY serial %d to %s: %s (try %d)", zone, serial, target, exc, attempt)
                await asyncio.sleep(timeout)
                timeout *= 2
                continue
            self.answered += 1
            rcode = response.rcode()
            if rcode != dns.rcode.NOERROR:
                log.info("zone %s: NOTIFY serial %d to %s answered %s", zone, serial, target,
                         dns.rcode.to_text(rcode))
                return False  # an answer, if a refusal: retrying will not change it
            log.info("zone %s: NOTIFY serial %d to %s acknowledged", zone, serial, target)
            return True
        log.warning("zone %s: NOTIFY serial %d to %s: no answer after %d tries", zone, serial, target, self.tries)
        return False

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        self._tasks.clear()


__all__ = ["Notifier", "NotifyError", "Target", "parse_target"]
