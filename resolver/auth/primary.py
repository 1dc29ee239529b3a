"""From wire bytes to live-zone requests: UPDATE messages and TSIG-signed queries.

``Primary.handle_update`` authenticates an UPDATE with dnspython's TSIG support (the keyring
is the configured keys; ``dns.message.from_wire`` checks the MAC and the time) and hands it to
the zone's ``LiveZone``, which replies once the change is durable. Refusals before that
(RFC 8945 §5.2, RFC 2136 §3.1):

* a key we do not know: NOTAUTH, TSIG error BADKEY, unsigned (MAC empty);
* a MAC that does not verify: NOTAUTH, BADSIG, unsigned;
* a time outside the fudge (a replayed or very late message): NOTAUTH, BADTIME, signed, with
  our time in Other Data;
* no TSIG at all: NOTAUTH (this server never takes unsigned updates);
* a zone we do not serve (or not class IN): NOTAUTH;
* anything dnspython cannot read as an UPDATE (zone section not one SOA-type RR, RDATA in a
  delete-RRset, a bad UPDATE-LEASE option, ...), or a TSIG whose CLASS is not ANY or TTL not 0
  (RFC 8945 §4.2; neither is covered by the MAC): FORMERR.

TSIG-signed queries (``nsupdate`` signs the SOA queries it makes to find the zone) are
answered like any query and the response signed with the same key.
"""

from __future__ import annotations

import logging
import struct
import time

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.tsig

from ..serving import LATER, Handled, Reply
from . import updatewire, wirename
from .answer import answer_query
from .live import LEASE_OPTION, LiveZone, Request
from .policy import Keyring
from .store import ZoneStore
from .update import EDE_PROHIBITED

log = logging.getLogger("cid.auth.update")

_QR = 0x8000
_TSIG_TYPE_CLASS = b"\x00\xfa\x00\xff"  # TYPE TSIG, CLASS ANY


class _Unverified:
    """A keyring answer that makes dnspython parse a TSIG without checking it (to build the
    error response after the checked parse failed)."""

    def __bool__(self) -> bool:
        return False


_SKIP = _Unverified()


def _skip_keyring(message, name):
    return _SKIP


class Primary:
    """The live zones of a server and the TSIG keys allowed to change them."""

    def __init__(self, store: ZoneStore, keyring: Keyring | None = None):
        self.store = store
        self.keyring = keyring or Keyring()
        self.zones: dict[bytes, LiveZone] = {}
        self.update_rcodes: dict[int, int] = {}  # replies to UPDATEs by RCODE (see handle)

    def add(self, zone: LiveZone) -> None:
        self.zones[zone.data.apex] = zone

    def remove(self, origin: dns.name.Name) -> LiveZone | None:
        return self.zones.pop(wirename.key_of(origin), None)

    def zone(self, origin: dns.name.Name | str) -> LiveZone | None:
        name = dns.name.from_text(origin) if isinstance(origin, str) else origin
        return self.zones.get(wirename.key_of(name))

    def status(self) -> list[dict]:
        """Per-zone status (``LiveZone.status``) of every live zone."""
        return [zone.status() for zone in self.zones.values()]

    # --- dispatch ------------------------------------------------------------------------

    @staticmethod
    def wants(wire: bytes) -> bool:
        """Whether a message is ours: an UPDATE, or anything carrying a TSIG."""
        if len(wire) < 12:
            return False
        if (wire[2] >> 3) & 0xF == dns.opcode.UPDATE:
            return True
        return (wire[10] or wire[11]) and _TSIG_TYPE_CLASS in wire[12:]

    def handle(self, wire: bytes, tcp: bool, later: Reply) -> Handled:
        if len(wire) < 12 or (wire[2] >> 3) & 0xF != dns.opcode.UPDATE:
            return self._dispatch(wire, tcp, later)
        # Every reply to an UPDATE counted by its RCODE (/metrics: accepted = NOERROR), whether
        # it is made at once (a bad TSIG, a zone not served) or after the zone's commit.
        def counted(response: bytes) -> None:
            self._count_update(response)
            later(response)
        outcome = self._dispatch(wire, tcp, counted)
        if isinstance(outcome, bytes):
            self._count_update(outcome)
        return outcome

    def _count_update(self, response: bytes) -> None:
        if len(response) >= 4:
            code = response[3] & 0xF
            self.update_rcodes[code] = self.update_rcodes.get(code, 0) + 1

    def _dispatch(self, wire: bytes, tcp: bool, later: Reply) -> Handled:
        if len(wire) < 12 or ((wire[2] << 8) | wire[3]) & _QR:
            return None
        if (wire[2] >> 3) & 0xF == dns.opcode.UPDATE:
            lean = updatewire.read(wire, self.keyring.tsig_keyring)
            if lean is not None:  # the usual shape, verified; anything else as dnspython reads it
                return self._update(lean, tcp, later)
        message = self.read(wire, tcp, one_rr_per_rrset=True)
        if not isinstance(message, dns.message.Message):
            return message
        if message.opcode() == dns.opcode.UPDATE:
            return self._update(message, tcp, later)
        if not message.had_tsig:
            return answer_query(self.store, wire, tcp=tcp)
        return self._signed_query(message, tcp)

    def read(self, wire: bytes, tcp: bool, *, one_rr_per_rrset: bool = False) -> dns.message.Message | bytes:
        """The request, its TSIG checked (RFC 8945 §5.2), or the reply that refuses it:
        NOTAUTH with the TSIG error for a bad key, signature or time, FORMERR for bytes that
        do not parse or a TSIG altered outside its MAC. Updates and transfers both read here."""
        try:
            message = dns.message.from_wire(wire, keyring=self.keyring.tsig_keyring,
                                            one_rr_per_rrset=one_rr_per_rrset)
        except dns.message.UnknownTSIGKey:
            return self._tsig_error(wire, dns.rcode.BADKEY, tcp)
        except dns.tsig.BadSignature:
            return self._tsig_error(wire, dns.rcode.BADSIG, tcp)
        except dns.tsig.BadTime:
            return self._tsig_error(wire, dns.rcode.BADTIME, tcp)
        except (dns.tsig.BadKey, dns.tsig.BadAlgorithm):
            return self._tsig_error(wire, dns.rcode.BADKEY, tcp)
        except Exception:  # noqa: BLE001 - malformed, whatever dnspython raised
            return header_only(wire, dns.rcode.FORMERR)
        if message.had_tsig and not _tsig_class_ttl_ok(wire, message):
            return header_only(wire, dns.rcode.FORMERR)
        return message

    def _update(self, message: dns.message.Message | updatewire.LeanUpdate, tcp: bool, later: Reply) -> Handled:
        if not message.had_tsig:
            log.info("unsigned update refused")
            return _reply(message, dns.rcode.NOTAUTH, tcp, "unsigned update", EDE_PROHIBITED)
        if isinstance(message, updatewire.LeanUpdate):
            zone_name, zone_class, options = message.zone, message.zone_class, message.options
        else:
            zone_name, zone_class = message.question[0].name, message.question[0].rdclass
            options = [(option.otype, option.to_wire()) for option in message.options]
        live = self.zones.get(wirename.key_of(zone_name)) if zone_class == dns.rdataclass.IN else None
        if live is None:
            log.info("update for zone %s (not served here) refused", zone_name)
            return _reply(_full(message), dns.rcode.NOTAUTH, tcp, f"not authoritative for {zone_name}", 20)
        lease = key_lease = None
        for otype, data in options:
            if otype == LEASE_OPTION:
                if len(data) == 4:
                    (lease,) = struct.unpack("!I", data)
                elif len(data) == 8:
                    lease, key_lease = struct.unpack("!II", data)
                else:
                    return _reply(_full(message), dns.rcode.FORMERR, tcp, "UPDATE-LEASE option of "
                                  f"{len(data)} bytes (4 or 8)", 0)
        key = self.keyring.get(message.keyname)
        live.submit(Request(message, key, later, tcp, lease, key_lease))
        return LATER

    def _signed_query(self, message: dns.message.Message, tcp: bool) -> Handled:
        request_mac = message.mac
        key = message.keyring
        answer = answer_query(self.store, _strip_tsig(message), tcp=tcp)
        if answer is None:
            return None
        response = dns.message.from_wire(answer)
        response.use_tsig(key, message.keyname, algorithm=message.keyalgorithm)
        response.request_mac = request_mac
        limit = 65535 if tcp else max(512, min(message.payload if message.edns >= 0 else 512, 65535))
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer, response.authority, response.additional = [], [], []
            response.flags |= dns.flags.TC
            return response.to_wire(max_size=limit)

    def _tsig_error(self, wire: bytes, error: int, tcp: bool) -> Handled:
        try:
            message = dns.message.from_wire(wire, keyring=_skip_keyring, one_rr_per_rrset=True)
        except Exception:  # noqa: BLE001
            return header_only(wire, dns.rcode.FORMERR)
        if not message.had_tsig:
            return header_only(wire, dns.rcode.FORMERR)
        rdata = message.tsig[0]
        log.info("TSIG %s from key %s: refused", dns.rcode.to_text(error), message.keyname)
        response = dns.message.make_response(message)
        response.set_rcode(dns.rcode.NOTAUTH)
        key = self.keyring.tsig_keyring.get(message.keyname) if error == dns.rcode.BADTIME else None
        if key is not None and key.algorithm == rdata.algorithm:
            now = int(time.time())
            other = struct.pack("!HI", (now >> 32) & 0xFFFF, now & 0xFFFFFFFF)
            response.use_tsig(key, message.keyname, fudge=rdata.fudge, tsig_error=error,
                              other_data=other, algorithm=rdata.algorithm)
            response.request_mac = rdata.mac
        else:
            # RFC 8945 §5.3.2: BADKEY and BADSIG responses are unsigned (an empty MAC).
            response.tsig = dns.message.Message._make_tsig(
                message.keyname, rdata.algorithm, rdata.time_signed, rdata.fudge, b"",
                message.id, error, b"")
            response.want_tsig_sign = False
        return response.to_wire()


def _full(message: dns.message.Message | updatewire.LeanUpdate) -> dns.message.Message:
    """The dnspython form of a request (a lean one read again: for the rare refusals)."""
    if isinstance(message, updatewire.LeanUpdate):
        return dns.message.from_wire(message.wire, keyring={message.keyname: message.key},
                                     one_rr_per_rrset=True)
    return message


def _tsig_class_ttl_ok(wire: bytes, message: dns.message.Message) -> bool:
    """RFC 8945 §4.2: the TSIG RR (the message's last) has CLASS ANY and TTL 0. Neither is
    under the MAC and dnspython does not look at them, so a copy altered there would otherwise
    verify and be carried out as the signer sent it."""
    rdlen = len(message.tsig[0].to_wire())
    at = len(wire) - rdlen - 10  # TYPE, CLASS, TTL, RDLENGTH before the RDATA
    if at < 12:
        return False
    rdtype, rdclass, ttl, length = struct.unpack_from("!HHIH", wire, at)
    return (rdtype, rdclass, ttl, length) == (dns.rdatatype.TSIG, dns.rdataclass.ANY, 0, rdlen)


def _strip_tsig(message: dns.message.Message) -> bytes:
    """The message's wire form without its TSIG (what the answering code sees)."""
    saved = message.tsig, message.keyring
    message.tsig, message.keyring = None, None
    try:
        return message.to_wire()
    finally:
        message.tsig, message.keyring = saved


def _reply(message: dns.message.Message, rcode: int, tcp: bool, reason: str | None = None,
           ede: int | None = None) -> bytes:
    response = dns.message.make_response(message)
    response.set_rcode(rcode)
    if message.edns >= 0 and reason is not None and ede is not None:
        response.use_edns(0, 0, 1232, options=[dns.edns.EDEOption(ede, reason[:300])])
    return response.to_wire(max_size=65535 if tcp else 512)


def header_only(wire: bytes, rcode: int) -> bytes:
    """A response of just the header (and the question, when it can be copied)."""
    qid = wire[:2]
    flags = ((wire[2] << 8) | wire[3]) & 0x7900 | _QR  # opcode and RD copied
    return qid + struct.pack("!HHHHH", flags | (rcode & 0xF), 0, 0, 0, 0)


__all__ = ["Primary", "header_only"]
