"""TSIG keys and what each may update (spec/registration.md §3).

A key is a TSIG key (RFC 8945: name, algorithm, secret) with a list of **grants**. A grant
names one zone, one or more subtrees of it (a name and everything below it), the RR types it
may add or delete there, and a lease cap. An update is allowed only when every RR it adds or
deletes is covered by one grant of the key that signed it (the browse PTRs the server derives
from a granted change need no grant of their own: spec/registration.md §4).

Keys are checked by dnspython's ``dns.tsig`` (``keyring`` returns the ``dns.tsig.Key``);
nothing here touches an HMAC.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass, field

import dns.name
import dns.rdatatype
import dns.tsig

# Types no client may add or delete: the server makes them (RFC 3007 §4.3, RFC 4035 §2).
SERVER_TYPES = frozenset(int(t) for t in (dns.rdatatype.RRSIG, dns.rdatatype.NSEC,
                                          dns.rdatatype.NSEC3, dns.rdatatype.NSEC3PARAM))
# The algorithms keys may use (RFC 8945 §6: hmac-sha256 is mandatory to implement).
ALGORITHMS = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
}


class PolicyError(ValueError):
    """A key or grant in the configuration is unusable; str() says which and why."""


@dataclass(frozen=True)
class Grant:
    """What one key may change in one zone."""

    zone: dns.name.Name
    subtrees: tuple[dns.name.Name, ...]
    types: frozenset[int] | None = None  # None: every type a client may update
    max_lease: int | None = None  # seconds; None: no cap (an update without a lease is permanent)

    def covers(self, name: dns.name.Name, rdtype: int) -> bool:
        if self.types is not None and rdtype not in self.types:
            return False
        return any(name.is_subdomain(subtree) for subtree in self.subtrees)

    def covers_name(self, name: dns.name.Name) -> bool:
        return any(name.is_subdomain(subtree) for subtree in self.subtrees)


@dataclass(frozen=True)
class TsigKey:
    name: dns.name.Name
    algorithm: dns.name.Name
    secret: bytes
    grants: tuple[Grant, ...] = ()

    @property
    def tsig(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.name, self.secret, self.algorithm)

    @property
    def algorithm_text(self) -> str:
        return self.algorithm.to_text(omit_final_dot=True)

    def grants_for(self, zone: dns.name.Name) -> list[Grant]:
        return [g for g in self.grants if g.zone == zone]

    def allows(self, zone: dns.name.Name, name: dns.name.Name, rdtype: int) -> bool:
        return rdtype not in SERVER_TYPES and any(g.covers(name, rdtype) for g in self.grants_for(zone))

    def lease_cap(self, zone: dns.name.Name, names: Iterable[dns.name.Name]) -> int | None:
        """The smallest cap among the grants of ``zone`` that cover any of ``names`` (None: no
        cap). A key whose matching grants all lack a cap gets none."""
        caps = []
        wanted = list(names)
        for grant in self.grants_for(zone):
            if any(grant.covers_name(n) for n in wanted) and grant.max_lease is not None:
                caps.append(grant.max_lease)
        return min(caps) if caps else None


@dataclass
class Keyring:
    """The server's TSIG keys by name: ``tsig_keyring`` is what dnspython's parser takes."""

    keys: dict[dns.name.Name, TsigKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tsig_keyring = {name: key.tsig for name, key in self.keys.items()}

    def get(self, name: dns.name.Name) -> TsigKey | None:
        return self.keys.get(name)

    def __len__(self) -> int:
        return len(self.keys)


def make_key(name: str, algorithm: str, secret: str, grants: Iterable[Grant] = ()) -> TsigKey:
    """A key from configuration text (the secret in base64, as ``nsupdate -y`` and BIND take it)."""
    try:
        key_name = dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        raise PolicyError(f"key {name!r}: bad name: {exc}") from None
    alg = ALGORITHMS.get(algorithm.lower().rstrip("."))
    if alg is None:
        raise PolicyError(f"key {name}: algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    try:
        raw = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise PolicyError(f"key {name}: secret is not base64") from None
    if len(raw) < 16:
        raise PolicyError(f"key {name}: secret of {len(raw)} bytes is too short (at least 16)")
    return TsigKey(key_name, alg, raw, tuple(grants))


def parse_types(values: Iterable[str] | None, where: str) -> frozenset[int] | None:
    if values is None:
        return None
    out = set()
    for text in values:
        if text in ("*", "ANY"):
            return None
        try:
            rdtype = int(dns.rdatatype.from_text(str(text).upper()))
        except dns.exception.DNSException:
            raise PolicyError(f"{where}: unknown type {text!r}") from None
        if rdtype in SERVER_TYPES:
            raise PolicyError(f"{where}: {text} records are made by the server and cannot be granted")
        out.add(rdtype)
    return frozenset(out)


__all__ = ["ALGORITHMS", "Grant", "Keyring", "PolicyError", "SERVER_TYPES", "TsigKey", "make_key",
           "parse_types"]
