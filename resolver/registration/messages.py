"""UPDATE messages (RFC 2136) of the registration commands, and what the server's answer means.

Sans-I/O: these functions build ``dns.update.UpdateMessage`` objects and read responses; the
transport (transport.py) sends them. Every message is TSIG-signed (RFC 8945) by the caller's key.

* register: delete the identifier's SVCB, A, AAAA, CAPS and LOAD RRsets and add the new ones
  (one message, so a reader sees the old registration or the new one), plus its browse PTRs
  (spec/discovery.md §2.5: the UPDATE that registers an identifier carries them), the PTRs of
  its previous CAPS removed first;
* unregister: delete every RRset at the identifier and its browse PTRs;
* load: replace LOAD only, with the prerequisite "name is in use" (RFC 2136 §2.4.4), so that a
  heartbeat never brings back an identifier that was unregistered or whose lease ran out.

The lease is the EDNS UPDATE-LEASE option (RFC 9664, option code 2): LEASE (4 octets,
seconds) and optionally KEY-LEASE (4 octets). A server that implements it answers with the
lease it granted; one that does not answers without the option (BIND, Knot).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.PTR
import dns.rrset
import dns.tsig
import dns.update

from .. import records
from ..records import registry
from ..records.caps import CAPS as CapsRdata
from ..records.load import LOAD as LoadRdata
from .endpoints import Endpoints

UPDATE_LEASE = 2  # RFC 9664 §4: EDNS option code
MAX_LEASE = 2**32 - 1
TTL = 300  # SVCB, A, AAAA (spec/records.md table)
CAPS_TTL = 3600
LOAD_TTL = 15
MAX_LOAD_TTL = 300  # spec/records.md §2: LOAD TTL MUST NOT exceed 300 s
EDNS_PAYLOAD = 1232
# What a registration owns at the identifier's name (register replaces exactly these).
OWNED_TYPES = (dns.rdatatype.SVCB, dns.rdatatype.A, dns.rdatatype.AAAA, records.CAPS, records.LOAD)


def lease_option(lease: int, key_lease: int | None = None) -> dns.edns.GenericOption:
    if not 0 <= lease <= MAX_LEASE or (key_lease is not None and not 0 <= key_lease <= MAX_LEASE):
        raise ValueError(f"a lease is 0..{MAX_LEASE} seconds")
    data = struct.pack("!I", lease) if key_lease is None else struct.pack("!II", lease, key_lease)
    return dns.edns.GenericOption(UPDATE_LEASE, data)


def read_lease(message: dns.message.Message) -> tuple[int, int | None] | None:
    """(LEASE, KEY-LEASE or None) from a message's UPDATE-LEASE option, or None without one."""
    for option in message.options:
        if option.otype == UPDATE_LEASE:
            data = option.to_wire() if not isinstance(option, dns.edns.GenericOption) else option.data
            if len(data) == 4:
                return struct.unpack("!I", data)[0], None
            if len(data) == 8:
                lease, key_lease = struct.unpack("!II", data)
                return lease, key_lease
            return None  # malformed: treated as absent
    return None


def _message(zone: dns.name.Name, key: dns.tsig.Key | None, lease: int | None,
             key_lease: int | None = None) -> dns.update.UpdateMessage:
    update = dns.update.UpdateMessage(zone)
    options = [lease_option(lease, key_lease)] if lease is not None else []
    update.use_edns(0, payload=EDNS_PAYLOAD, options=options)
    if key is not None:
        update.use_tsig(key)
    return update


def caps_rdata(caps: Mapping[str, Any]) -> CapsRdata:
    return CapsRdata(dns.rdataclass.IN, records.CAPS, dict(caps))


def load_rdata(load: Mapping[str, Any], now: float | None = None) -> LoadRdata:
    """LOAD with ``ts`` set to now unless given (spec/capabilities.md §1.5)."""
    mapping = dict(load)
    mapping.setdefault("ts", int(time.time() if now is None else now))
    return LoadRdata(dns.rdataclass.IN, records.LOAD, mapping)


def _ptr(target: dns.name.Name) -> dns.rdata.Rdata:
    return dns.rdtypes.ANY.PTR.PTR(dns.rdataclass.IN, dns.rdatatype.PTR, target)


@dataclass(frozen=True)
class Registration:
    """What ``cid register`` publishes for one identifier."""

    identifier: dns.name.Name
    zone: dns.name.Name
    endpoints: Endpoints
    caps: Mapping[str, Any]
    load: Mapping[str, Any] | None = None
    ttl: int = TTL
    caps_ttl: int = CAPS_TTL
    load_ttl: int = LOAD_TTL
    browse: bool = True  # add the browse PTRs (spec/discovery.md §2)

    def browse_names(self) -> list[dns.name.Name]:
        return registry.browse_names(self.zone, self.caps) if self.browse else []


def register_message(reg: Registration, key: dns.tsig.Key | None, *, lease: int | None = None,
                     key_lease: int | None = None, old_caps: Mapping[str, Any] | None = None,
                     now: float | None = None) -> dns.update.UpdateMessage:
    update = _message(reg.zone, key, lease, key_lease)
    name = reg.identifier
    target = _ptr(name)
    if reg.browse and old_caps is not None:
        for browse in registry.browse_names(reg.zone, old_caps):
            update.delete(browse, target)
    for rdtype in OWNED_TYPES:
        update.delete(name, rdtype)
    for rd in reg.endpoints.svcb:
        update.add(name, reg.ttl, rd)
    for address in reg.endpoints.a:
        update.add(name, reg.ttl, dns.rdatatype.A, address)
    for address in reg.endpoints.aaaa:
        update.add(name, reg.ttl, dns.rdatatype.AAAA, address)
    update.add(name, reg.caps_ttl, caps_rdata(reg.caps))
    if reg.load is not None:
        update.add(name, reg.load_ttl, load_rdata(reg.load, now))
    for browse in reg.browse_names():
        update.add(browse, reg.caps_ttl, target)
    return update


def unregister_message(identifier: dns.name.Name, zone: dns.name.Name, key: dns.tsig.Key | None, *,
                       old_caps: Mapping[str, Any] | None = None, browse: bool = True) -> dns.update.UpdateMessage:
    update = _message(zone, key, None)
    target = _ptr(identifier)
    if browse:
        # _compute.N always; the sub-types the current CAPS put the identifier under.
        for name in registry.browse_names(zone, old_caps or {}):
            update.delete(name, target)
    update.delete(identifier)
    return update


def load_message(identifier: dns.name.Name, zone: dns.name.Name, key: dns.tsig.Key | None,
                 load: Mapping[str, Any], *, ttl: int = LOAD_TTL, lease: int | None = None,
                 key_lease: int | None = None, now: float | None = None) -> dns.update.UpdateMessage:
    update = _message(zone, key, lease, key_lease)
    update.present(identifier)  # RFC 2136 §2.4.4: name is in use
    update.replace(identifier, ttl, load_rdata(load, now))
    return update


def delegation_message(parent: dns.name.Name, child: dns.name.Name, key: dns.tsig.Key | None, *,
                       ns: Sequence[tuple[dns.name.Name, Sequence[str]]], ds: Sequence[dns.rdata.Rdata],
                       ttl: int = 3600, browse: bool = True) -> dns.update.UpdateMessage:
    """NS, glue (addresses of name servers below the cut) and DS for ``child`` in ``parent``,
    replacing what was there, and the ``_children`` PTR (spec/discovery.md §2.2)."""
    update = _message(parent, key, None)
    update.delete(child, dns.rdatatype.NS)
    update.delete(child, dns.rdatatype.DS)
    for server, addresses in ns:
        update.add(child, ttl, dns.rdatatype.NS, server.to_text())
        if server.is_subdomain(child):
            update.delete(server, dns.rdatatype.A)
            update.delete(server, dns.rdatatype.AAAA)
            for address in addresses:
                rdtype = dns.rdatatype.AAAA if ":" in address else dns.rdatatype.A
                update.add(server, ttl, rdtype, address)
    for rd in ds:
        update.add(child, ttl, rd)
    if browse:
        update.add(registry.children_name(parent), ttl, _ptr(child))
    return update


def undelegation_message(parent: dns.name.Name, child: dns.name.Name, key: dns.tsig.Key | None, *,
                         glue: Sequence[dns.name.Name] = (), browse: bool = True) -> dns.update.UpdateMessage:
    """Remove the delegation of ``child``: its NS and DS, the glue at ``glue`` names below the
    cut, and the ``_children`` PTR."""
    update = _message(parent, key, None)
    for server in glue:
        if server.is_subdomain(child):
            update.delete(server, dns.rdatatype.A)
            update.delete(server, dns.rdatatype.AAAA)
    update.delete(child, dns.rdatatype.DS)
    update.delete(child, dns.rdatatype.NS)
    if browse:
        update.delete(registry.children_name(parent), _ptr(child))
    return update


# --- the answer ------------------------------------------------------------------------------

# RFC 2136 §2.2 and RFC 8945 §5.3: what each answer means for the one who sent the update.
MEANINGS = {
    dns.rcode.NOERROR: "done",
    dns.rcode.FORMERR: "the server could not parse the update (FORMERR)",
    dns.rcode.SERVFAIL: "the server failed to apply the update (SERVFAIL); nothing may have changed",
    dns.rcode.NXDOMAIN: "a prerequisite failed: the name is not in use (not registered, or its lease ran out)",
    dns.rcode.NOTIMP: "the server does not implement UPDATE (NOTIMP)",
    dns.rcode.REFUSED: "the server refused: this key may not change these names or types (its update "
                       "policy / grant), or the zone takes no updates from this address",
    dns.rcode.YXDOMAIN: "a prerequisite failed: a name that must not exist exists",
    dns.rcode.YXRRSET: "a prerequisite failed: an RRset that must not exist exists",
    dns.rcode.NXRRSET: "a prerequisite failed: an RRset that must exist does not",
    dns.rcode.NOTAUTH: "the server is not authoritative (primary) for the zone",
    dns.rcode.NOTZONE: "a name in the update is outside the zone",
}
TSIG_ERROR_NAMES = {16: "BADSIG", 17: "BADKEY", 18: "BADTIME", 22: "BADTRUNC"}  # 16 is also BADVERS
TSIG_MEANINGS = {
    dns.rcode.BADSIG: "BADSIG: the server knows the key name but the signature did not verify (wrong secret "
                      "or algorithm)",
    dns.rcode.BADKEY: "BADKEY: the server does not know this key (name or algorithm), or does not let it "
                      "make this change (Knot answers a change outside a key's ACL this way)",
    dns.rcode.BADTIME: "BADTIME: this machine's clock and the server's differ by more than the fudge",
    dns.rcode.BADTRUNC: "BADTRUNC: bad truncation of the MAC",
}


@dataclass(frozen=True)
class Answer:
    """A server's answer to one UPDATE, in a form to print or test."""

    rcode: int
    tsig_error: int = 0
    lease: tuple[int, int | None] | None = None  # what the server granted, if it said
    authenticated: bool = True  # the response's TSIG verified (or no key was used)
    server_time: int | None = None  # from a BADTIME TSIG (RFC 8945 §5.2.3)
    ede: str | None = None  # extended DNS error text (RFC 8914), when the server gave one

    @property
    def ok(self) -> bool:
        return self.rcode == dns.rcode.NOERROR and self.tsig_error == 0 and self.authenticated

    @property
    def rcode_text(self) -> str:
        """``NOERROR``, ``REFUSED``, ... and for a TSIG failure ``NOTAUTH/BADSIG`` (RFC 8945 §5.3:
        the RCODE is NOTAUTH and the TSIG error field says why)."""
        text = dns.rcode.to_text(self.rcode)
        if self.tsig_error:
            text += "/" + TSIG_ERROR_NAMES.get(self.tsig_error, str(self.tsig_error))
        return text

    def meaning(self) -> str:
        if self.tsig_error:
            text = TSIG_MEANINGS.get(self.tsig_error, f"TSIG error {self.tsig_error}")
            if self.tsig_error == dns.rcode.BADTIME and self.server_time is not None:
                skew = int(time.time()) - self.server_time
                text += f" (ours is {abs(skew)} s {'ahead' if skew > 0 else 'behind'}); fix the clock"
            return text
        if not self.authenticated and self.rcode == dns.rcode.NOERROR:
            return "NOERROR, but the answer's TSIG is missing or did not verify: not trusted as done"
        text = MEANINGS.get(self.rcode, dns.rcode.to_text(self.rcode))
        if self.ede:
            text += f" ({self.ede})"
        if not self.authenticated:
            text += " [the answer was not signed with our key]"
        return text

    def lease_text(self, asked: int | None) -> str:
        if asked is None:
            return ""
        if self.lease is None:
            return ("no lease in the answer: the server ignores UPDATE-LEASE (RFC 9664), so the records "
                    "stay until unregistered")
        lease, key_lease = self.lease
        granted = f"lease {lease} s granted"
        if lease != asked:
            granted += f" (asked {asked} s)"
        if key_lease is not None and key_lease != lease:
            granted += f", key lease {key_lease} s"
        return granted


def read_answer(message: dns.message.Message, *, authenticated: bool = True) -> Answer:
    tsig_error = 0
    server_time = None
    if message.tsig is not None:
        trd = message.tsig[0]
        tsig_error = trd.error
        if trd.error == dns.rcode.BADTIME and len(trd.other) == 6:
            server_time = int.from_bytes(trd.other, "big")
    ede = None
    for option in message.options:
        if option.otype == dns.edns.OptionType.EDE:
            text = getattr(option, "text", None)
            code = getattr(option, "code", None)
            ede = f"EDE {int(code)}{': ' + text if text else ''}" if code is not None else None
    return Answer(message.rcode(), tsig_error, read_lease(message), authenticated, server_time, ede)


def parse_answer(wire: bytes, request: dns.message.Message) -> Answer:
    """Read the server's answer to ``request``: verified against the request's TSIG when the
    request was signed. A TSIG error in the answer (BADKEY, BADSIG, BADTIME: the server could
    not check our signature, so it cannot sign its answer either) is reported as such; any
    other answer whose TSIG is missing or wrong is marked unauthenticated, never "done"."""
    keyring = request.keyring if request.had_tsig else None
    try:
        message = dns.message.from_wire(wire, keyring=keyring, request_mac=request.mac if request.had_tsig else b"")
    except dns.tsig.PeerError:
        return read_answer(dns.message.from_wire(wire, keyring=False))
    except (dns.tsig.BadSignature, dns.tsig.BadKey, dns.tsig.BadAlgorithm, dns.tsig.BadTime,
            dns.message.UnknownTSIGKey, dns.exception.FormError) as exc:
        try:
            message = dns.message.from_wire(wire, keyring=False)
        except dns.exception.DNSException:
            raise exc from None
        return read_answer(message, authenticated=False)
    if message.id != request.id or message.opcode() != dns.opcode.UPDATE or not message.flags & dns.flags.QR:
        raise dns.exception.FormError("the answer does not match the update")
    return read_answer(message)
