"""Rdatas that keep the wire form they were read from (the lean reader's A, AAAA, DS, DNSKEY,
RRSIG, NS, SVCB and HTTPS).

dnspython derives an rdata's hash, equality and DNSSEC canonical form (RFC 4034 §6.2) from
``to_digestable``, which re-renders the record every time: a BytesIO, and for an RRSIG or NS
a lowercased copy of the name (an SVCB's parameters, one BytesIO each). A validating resolver asks for it several times per record (the
RRset's set insertion, the signed data, ``==``), about a tenth of a cold resolution's CPU. The
reader already holds those bytes, so each class here is its dnspython class plus two slots:

* ``_canonical`` — ``to_digestable()``: the RDATA with every name uncompressed and lowercased;
* ``_plain`` — ``to_wire()`` with no file and no compression table: names uncompressed, in
  the case received.

Both are None on an object dnspython built (``replace``, ``__init__``), which then
takes dnspython's path: a record is never answered from bytes it does not hold. The fields
are those dnspython's reader sets (tests/test_wire_reader.py compares every slot, the hash,
``==`` and both forms with dnspython's own rendering).
"""

from __future__ import annotations

import inspect

import dns.name
import dns.rdata
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS
from dns.rdtypes.ANY.NS import NS
from dns.rdtypes.ANY.RRSIG import RRSIG
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA
from dns.rdtypes.IN.HTTPS import HTTPS
from dns.rdtypes.IN.SVCB import SVCB

_set = object.__setattr__
CACHE_SLOTS = ("_canonical", "_plain")


def _wired(base: type) -> type:
    """``base`` with its wire forms kept. Its ``__name__`` is dnspython's (error texts name
    the type as before); its qualified name is this module's, which pickling looks up."""

    def __init__(self, *args, **kwargs) -> None:
        base.__init__(self, *args, **kwargs)  # dnspython built it: no wire form held
        _set(self, "_canonical", None)
        _set(self, "_plain", None)

    __init__.__signature__ = inspect.signature(base.__init__)  # Rdata.replace reads the fields from it
    def to_digestable(self, origin: dns.name.Name | None = None) -> bytes:
        canonical = self._canonical
        return base.to_digestable(self, origin) if canonical is None else canonical

    def to_wire(self, file=None, compress=None, origin=None, canonicalize: bool = False):
        if file is None and compress is None:  # names written out, as the held forms have them
            held = self._canonical if canonicalize else self._plain
            if held is not None:
                return held
        return base.to_wire(self, file, compress, origin, canonicalize)

    def __hash__(self) -> int:  # Rdata.__hash__: the hash of the canonical form
        canonical = self._canonical
        return hash(base.to_digestable(self, dns.name.root) if canonical is None else canonical)

    namespace = {"__slots__": CACHE_SLOTS, "__init__": __init__, "to_digestable": to_digestable,
                 "to_wire": to_wire, "__hash__": __hash__, "__module__": __name__,
                 "__qualname__": f"Wired{base.__name__}", "__doc__": base.__doc__}
    return type(base.__name__, (base,), namespace)


WiredA, WiredAAAA, WiredDS, WiredDNSKEY, WiredRRSIG, WiredNS, WiredSVCB, WiredHTTPS = (
    _wired(c) for c in (A, AAAA, DS, DNSKEY, RRSIG, NS, SVCB, HTTPS))
BASE: dict[type, type] = {WiredA: A, WiredAAAA: AAAA, WiredDS: DS, WiredDNSKEY: DNSKEY, WiredRRSIG: RRSIG, WiredNS: NS,
                          WiredSVCB: SVCB, WiredHTTPS: HTTPS}


def dnspython_type(rd: dns.rdata.Rdata) -> type:
    """The dnspython class ``rd`` is (itself for anything this module did not make)."""
    cls = type(rd)
    return BASE.get(cls, cls)
