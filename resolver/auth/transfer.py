"""Zone transfers out: AXFR (RFC 5936) and IXFR (RFC 1995) of the live zones, with TSIG and an ACL.

Who may transfer a zone is its ``allow_transfer`` list (``TransferAcl``): TSIG key names and
source addresses (or prefixes); a request is allowed when it is signed by a listed key or
comes from a listed address. Everything else is refused (spec/registration.md §10):

* a key we do not know / a MAC that does not verify / a time outside the fudge: NOTAUTH with
  TSIG error BADKEY / BADSIG / BADTIME (RFC 8945 §5.2, the same answers as for updates);
* a zone we do not serve, or a name that is not a zone apex: NOTAUTH (RFC 5936 §2.2.1);
* not allowed by the ACL: REFUSED (signed with the request's key when it was signed);
* AXFR over UDP: REFUSED (RFC 5936 §4.2: AXFR runs over TCP).

Only the durable state is sent (``LiveZone.committed_serial``): a transfer waits, a bounded
time, until no change is between memory and disk, so a secondary never holds a serial a crash
could take back. AXFR sends a snapshot of the zone taken at that moment, SOA first and last,
in as many messages as it needs. IXFR sends the journal's steps from the client's serial
(``Journal.changes_since``): the whole zone instead, AXFR-style, when the journal does not know
that serial or the steps are bigger than the zone (RFC 1995 §4), and the current SOA alone when
the client is up to date. IXFR over UDP is answered with the current SOA alone (RFC 1995 §2):
the client learns the serial and comes back over TCP.

Every message of a signed transfer is signed (RFC 8945 §5.3.1), each MAC chained to the
previous one by dnspython's ``dns.tsig.sign`` in multi-message mode; the messages themselves
are laid out here from the store's wire-form records, without dnspython objects per record.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig

from ..serving import Handled, Stream
from .journal import Diff
from .live import LiveZone, soa_serial
from .serial import serial_gt
from .zonedb import SOA, iter_rrsets

if TYPE_CHECKING:
    from .primary import Primary

log = logging.getLogger("cid.auth.transfer")

AXFR, IXFR = 252, 251
MESSAGE_SIZE = 16000  # bytes of records per message (BIND's habit; leaves room for the TSIG)
MESSAGES_PER_TURN = 8  # messages made before other work gets the loop
COMMIT_WAIT = 5.0  # seconds a transfer waits for memory and disk to agree
TSIG_FUDGE = 300
_QR_AA = 0x8400
_HEADER = struct.Struct("!HHHHHH")
_TSIG_HEAD = struct.Struct("!HHIH")


class AclError(ValueError):
    """An ``allow_transfer`` entry is neither an address (prefix) nor a key name."""


class TransferAcl:
    """``allow_transfer``: TSIG key names and source addresses or prefixes (module text)."""

    def __init__(self, entries: Iterable[str], key_names: Iterable[dns.name.Name] | None = None):
        known = set(key_names) if key_names is not None else None
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.keys: set[dns.name.Name] = set()
        for entry in entries:
            text = str(entry).strip()
            try:
                self.networks.append(ipaddress.ip_network(text, strict=False))
                continue
            except ValueError:
                pass
            try:
                name = dns.name.from_text(text)
            except dns.exception.DNSException:
                raise AclError(f"allow_transfer: {text!r} is neither an address nor a key name") from None
            if known is not None and name not in known:
                raise AclError(f"allow_transfer: {text!r} is neither an address nor a configured [[key]]")
            self.keys.add(name)

    def allows(self, host: str | None, key: dns.name.Name | None) -> bool:
        if key is not None and key in self.keys:
            return True
        if host is None or not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in net for net in self.networks)


def is_transfer(wire: bytes) -> bool:
    """Whether ``wire`` is a query (QR=0, opcode QUERY) for AXFR or IXFR, from its bytes."""
    if len(wire) < 17 or wire[2] & 0xF8 or wire[4:6] != b"\x00\x01":
        return False
    pos = 12
    end = len(wire)
    while pos < end and wire[pos]:
        if wire[pos] & 0xC0:
            return False
        pos += 1 + wire[pos]
    if pos + 5 > end:
        return False
    qtype = (wire[pos + 1] << 8) | wire[pos + 2]
    return qtype in (AXFR, IXFR)


class Transfers:
    """AXFR and IXFR out of a Primary's live zones (module text)."""

    def __init__(self, primary: "Primary"):
        self.primary = primary
        self.counts: Counter[str] = Counter()  # "axfr", "ixfr", "ixfr-as-axfr", "uptodate", "refused"
        self._acls: dict[int, tuple[list[str], TransferAcl]] = {}

    def acl(self, live: LiveZone) -> TransferAcl:
        entries = list(getattr(live.config, "allow_transfer", []) or [])
        cached = self._acls.get(id(live))
        if cached is None or cached[0] != entries:
            cached = (entries, TransferAcl(entries))
            self._acls[id(live)] = cached
        return cached[1]

    def handle(self, wire: bytes, tcp: bool, peer) -> Handled:
        primary = self.primary
        message = primary.read(wire, tcp)
        if not isinstance(message, dns.message.Message):
            return message
        question = message.question[0]
        qtype = question.rdtype
        host = peer[0] if peer else None
        key = message.keyname if message.had_tsig else None
        who = f"{host or '?'}" + (f" key {key}" if key else "")
        live = primary.zone(question.name) if question.rdclass == dns.rdataclass.IN else None
        if live is None:
            log.info("%s of %s from %s: not a zone served here", _kind(qtype), question.name, who)
            return _reply(message, dns.rcode.NOTAUTH)
        if not self.acl(live).allows(host, key):
            self.counts["refused"] += 1
            log.info("%s of %s from %s: refused by allow_transfer", _kind(qtype), live.origin, who)
            return _reply(message, dns.rcode.REFUSED)
        if not tcp:
            if qtype == AXFR:
                return _reply(message, dns.rcode.REFUSED)
            return self._soa_only(message, live)  # RFC 1995 §2: ask again over TCP
        client = None
        if qtype == IXFR:
            soas = [rr for rr in message.authority if rr.rdtype == dns.rdatatype.SOA]
            if not soas:
                return _reply(message, dns.rcode.FORMERR)
            client = soas[0][0].serial
        return Stream(self._stream(message, live, client, who))

    def _soa_only(self, message: dns.message.Message, live: LiveZone) -> bytes:
        response = dns.message.make_response(message)
        response.flags |= dns.flags.AA
        soa = _soa_rr(live)
        rdata = dns.rdata.from_wire(dns.rdataclass.IN, SOA, soa, _rdata_start(soa), len(soa) - _rdata_start(soa))
        response.answer.append(dns.rrset.from_rdata(live.origin, _rr_ttl(soa), rdata))
        self.counts["uptodate"] += 1
        return response.to_wire()

    async def _stream(self, message: dns.message.Message, live: LiveZone, client: int | None,
                      who: str) -> AsyncIterator[bytes]:
        signer = _Signer(message)
        if not await _durable(live):
            log.warning("zone %s: transfer to %s: changes not yet durable after %.0f s", live.origin,
                        who, COMMIT_WAIT)
            yield signer.finish(_header(message, dns.rcode.SERVFAIL, 0, question=True), 0)
            return
        serial = soa_serial(live.data)
        soa = _soa_rr(live)
        if client is not None and (client == serial or serial_gt(client, serial)):
            self.counts["uptodate"] += 1
            log.info("zone %s: IXFR to %s: up to date at serial %d", live.origin, who, serial)
            for out in _messages(message, signer, iter([soa])):
                yield out
            return
        diffs = None
        if client is not None and live.journal is not None:
            loop = asyncio.get_running_loop()
            diffs = await loop.run_in_executor(None, live.journal.changes_since, client)
            if diffs is not None and (not diffs or diffs[-1].serial_to != serial):
                diffs = None  # the journal moved on meanwhile: send the zone
        if diffs is not None and _size(diffs) < _zone_size(live):
            self.counts["ixfr"] += 1
            records: Iterator[bytes] = _ixfr_records(soa, diffs)
            what = f"IXFR serial {client} -> {serial}, {len(diffs)} change(s)"
        else:
            self.counts["ixfr-as-axfr" if client is not None else "axfr"] += 1
            records = _axfr_records(live, soa)
            what = (f"IXFR from serial {client} answered with the whole zone" if client is not None
                    else "AXFR") + f", serial {serial}"
        count = 0
        started = time.monotonic()
        for out in _messages(message, signer, records):
            count += 1
            yield out
            if count % MESSAGES_PER_TURN == 0:
                await asyncio.sleep(0)
        log.info("zone %s: %s to %s: %d message(s), %.3f s", live.origin, what, who, count,
                 time.monotonic() - started)


async def _durable(live: LiveZone) -> bool:
    deadline = time.monotonic() + COMMIT_WAIT
    while soa_serial(live.data) != live.committed_serial and live.journal is not None:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def _soa_rr(live: LiveZone) -> bytes:
    data = live.data
    return data.apex_wire + data.node(data.apex).rrsets[SOA].chunks[0]


def _rdata_start(rr: bytes) -> int:
    pos = 0
    while rr[pos]:
        pos += 1 + rr[pos]
    return pos + 11


def _rr_ttl(rr: bytes) -> int:
    return struct.unpack_from("!I", rr, _rdata_start(rr) - 7)[0]


def _size(diffs: list[Diff]) -> int:
    return sum(len(rr) for d in diffs for rr in (*d.removed, *d.added))


def _zone_size(live: LiveZone) -> int:
    data = live.data
    return sum(map(len, dict.values(data.blobs))) + sum(map(len, dict.values(data.hashed)))


def _ixfr_records(soa: bytes, diffs: list[Diff]) -> Iterator[bytes]:
    """RFC 1995 §4: the new SOA, then per step the old SOA, what went, the new SOA, what came,
    and the new SOA again (the journal keeps each step's SOAs first in its two runs)."""
    yield soa
    for diff in diffs:
        yield from diff.removed
        yield from diff.added
    yield soa


def _axfr_records(live: LiveZone, soa: bytes) -> Iterator[bytes]:
    """RFC 5936 §2.2: SOA, every other record of a snapshot of the zone, SOA."""
    data = live.data
    # The snapshot: blobs are immutable bytes, replaced on change, so copies of the dicts are
    # the zone at this instant even while updates go on during the transfer.
    plain, hashed, spelled = dict(data.blobs), dict(data.hashed), dict(data.spelled)
    apex = data.apex
    yield soa
    for blobs in (plain, hashed):
        for key in sorted(blobs):
            owner = spelled.get(key) or data.owner_wire(key)
            for rrset in iter_rrsets(blobs[key]):
                if rrset.rdtype == SOA and key == apex:
                    continue
                for chunk in rrset.chunks:
                    yield owner + chunk
    yield soa


class _Signer:
    """TSIG for the messages of one transfer (RFC 8945 §5.3.1), or nothing when unsigned."""

    def __init__(self, message: dns.message.Message):
        self.key = message.keyring if message.had_tsig else None
        self.keyname = message.keyname
        self.algorithm = message.keyalgorithm
        self.request_mac = message.mac if message.had_tsig else None
        self.qid = message.id
        self.ctx = None

    def finish(self, head: bytes, count_ar: int, body: bytes = b"") -> bytes:
        wire = head + body
        if self.key is None:
            return wire
        template = dns.message.Message._make_tsig(self.keyname, self.algorithm, 0, TSIG_FUDGE, b"",
                                                  self.qid, 0, b"")[0]
        rdata, self.ctx = dns.tsig.sign(wire, self.key, template, int(time.time()), self.request_mac,
                                        self.ctx, True)
        tsig = rdata.to_wire()
        wire = wire[:10] + struct.pack("!H", count_ar + 1) + wire[12:]
        return wire + self.keyname.to_wire() + _TSIG_HEAD.pack(dns.rdatatype.TSIG, dns.rdataclass.ANY,
                                                                 0, len(tsig)) + tsig


def _question(message: dns.message.Message) -> bytes:
    q = message.question[0]
    return q.name.to_wire() + struct.pack("!HH", q.rdtype, q.rdclass)


def _header(message: dns.message.Message, rcode: int, answers: int, *, question: bool) -> bytes:
    flags = _QR_AA | (message.flags & 0x0100) | rcode  # RD copied (RFC 1035 §4.1.1)
    head = _HEADER.pack(message.id, flags, 1 if question else 0, answers, 0, 0)
    return head + (_question(message) if question else b"")


def _messages(message: dns.message.Message, signer: _Signer, records: Iterator[bytes]) -> Iterator[bytes]:
    """Records packed into messages of up to MESSAGE_SIZE bytes; the first carries the
    question (RFC 5936 §2.2.1)."""
    first = True
    batch: list[bytes] = []
    size = 0
    for rr in records:
        if batch and size + len(rr) > MESSAGE_SIZE:
            yield signer.finish(_header(message, 0, len(batch), question=first), 0, b"".join(batch))
            first, batch, size = False, [], 0
        batch.append(rr)
        size += len(rr)
    yield signer.finish(_header(message, 0, len(batch), question=first), 0, b"".join(batch))


def _kind(qtype: int) -> str:
    return "AXFR" if qtype == AXFR else "IXFR"


def _reply(message: dns.message.Message, rcode: int) -> bytes:
    # make_response signs with the request's key when the request was signed (RFC 8945 §5.3).
    response = dns.message.make_response(message)
    response.set_rcode(rcode)
    return response.to_wire()


__all__ = ["AclError", "TransferAcl", "Transfers", "is_transfer"]
