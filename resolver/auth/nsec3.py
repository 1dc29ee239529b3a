"""Serving NSEC3 (RFC 5155 §7.2): the hashed chain of a zone and which records prove what.

A zone signed with NSEC3 by a peer signer (BIND's ``dnssec-signzone -3``, Knot, OpenDNSSEC) is
served with the proofs Knot and NSD give (spec/dnssec.md §5). ``Nsec3Chain`` is built once per
zone (``zonedb.ZoneData``) when the apex holds an NSEC3PARAM:

* the NSEC3 records whose hash algorithm, iterations and salt are the NSEC3PARAM's (RFC 5155
  §7.3: a server uses the chain NSEC3PARAM names), kept sorted by raw digest, which is the order
  of their base32hex owner labels (RFC 5155 §1.3);
* for every name of the zone that exists (empty non-terminals included), the NSEC3 matching it,
  found by hashing each name once here. At query time only names that do not exist (a next
  closer name, a wildcard) are hashed: at most two per proof, whatever the query name's depth.

Names are canonical keys (``wirename``); the proofs name NSEC3 owners by their keys in
``ZoneData.hashed``. ``zonechange`` keeps the chain current as names come and go.
The tuple-of-labels helpers (``Key``, ``key_of``, ``digest``) serve ``verify_nsec3``.
"""
from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import TYPE_CHECKING

import dns.name
import dns.rdatatype
from sortedcontainers import SortedList

from ..dnssec.nsec3 import b32, digest_wire, owner_digest  # noqa: F401  (b32: zonechange)
from . import wirename

if TYPE_CHECKING:
    from .zonedb import RRset, ZoneData

NSEC3 = dns.rdatatype.NSEC3
NSEC3PARAM = dns.rdatatype.NSEC3PARAM
SHA1 = 1  # the only NSEC3 hash algorithm (RFC 5155 §11)
OPT_OUT = 0x01
_WILDCARD = b"*"

Key = tuple[bytes, ...]  # lower-cased labels, root (b"") last
Params = tuple[int, int, bytes]  # (hash algorithm, iterations, salt)


def key_of(name: dns.name.Name) -> Key:
    return tuple([label.lower() for label in name.labels])


def wire_of(key: Key) -> bytes:
    """Canonical wire form of a name given as lower-cased labels."""
    return b"".join([bytes((len(label),)) + label for label in key])


def digest(key: Key, salt: bytes, iterations: int) -> bytes:
    """RFC 5155 §5 over the canonical owner name; ``key`` must already be lower-cased (RFC 4034
    §6.2: ASCII letters only)."""
    return digest_wire(wire_of(key), salt, iterations)


def name_digest(name: dns.name.Name, salt: bytes, iterations: int) -> bytes:
    return digest(key_of(name), salt, iterations)


def chain_params(nsec3param: "RRset") -> list[Params]:
    """The parameters of the NSEC3PARAM records a server may use, in canonical RDATA order.

    RFC 5155 §4.1.2: an NSEC3PARAM whose flags are not zero is ignored; only SHA-1 (§11) is
    defined. Canonical order is the order Knot keeps an RRset in, so several NSEC3PARAMs (a
    chain being replaced) resolve to the same chain there and here (NSEC3PARAM RDATA holds no
    name, so its wire form is its canonical form).
    """
    usable = sorted(rd for rd in nsec3param.rdatas if len(rd) >= 5 and rd[0] == SHA1 and rd[1] == 0)
    return [wire_params(rd) for rd in usable]


def wire_params(rdata: bytes) -> Params:
    """(algorithm, iterations, salt) of an NSEC3 or NSEC3PARAM RDATA in wire form."""
    return (rdata[0], (rdata[2] << 8) | rdata[3], rdata[5:5 + rdata[4]])


def wire_flags(rdata: bytes) -> int:
    return rdata[1]


def params_of(rd) -> Params:
    return (rd.algorithm, rd.iterations, rd.salt)


def key_digest(key: bytes, salt: bytes, iterations: int) -> bytes:
    """RFC 5155 §5 hash of the name with canonical ``key`` (``wirename``)."""
    return digest_wire(wirename.wire_of_key(key), salt, iterations)


class Nsec3Chain:
    """One zone's NSEC3 chain with the matching record of every existing name (module text)."""

    __slots__ = ("params", "salt", "iterations", "_zone", "_digests", "_owners", "_matching",
                 "_hash_of", "_name_of")

    def __init__(self, zone: "ZoneData", params: Params, owners: dict[bytes, bytes]):
        """``owners``: digest → key of the hashed owner holding an NSEC3 with ``params``."""
        self.params = params
        _, self.iterations, self.salt = params
        self._zone = zone
        self._owners = owners
        self._digests = SortedList(owners)
        # Every existing name (ENTs too): name key → digest and back; and name key → owner key
        # of the NSEC3 matching it, where the chain has one.
        self._hash_of: dict[bytes, bytes] = {}
        self._name_of: dict[bytes, bytes] = {}
        self._matching: dict[bytes, bytes] = {}
        for key in _existing_keys(zone):
            self.name_added(key)

    @classmethod
    def for_zone(cls, zone: "ZoneData", nsec3param: "RRset") -> "Nsec3Chain | None":
        """The chain of the first usable NSEC3PARAM that has NSEC3 records (RFC 5155 §7.3)."""
        candidates = chain_params(nsec3param)
        if not candidates:
            return None
        by_params: dict[Params, dict[bytes, bytes]] = {p: {} for p in candidates}
        for key in zone.hashed:
            value = _owner_value(zone, key)
            if value is None:
                continue
            node = zone.hashed_node(key)
            for rdata in node.rrsets[NSEC3].rdatas if node is not None and NSEC3 in node.rrsets else ():
                found = by_params.get(wire_params(rdata))
                if found is not None:
                    found[value] = key
        for params in candidates:
            if by_params[params]:
                return cls(zone, params, by_params[params])
        return None  # no usable chain: negative answers carry the SOA only

    def __len__(self) -> int:
        return len(self._digests)

    # --- upkeep (zonechange) --------------------------------------------------------------------

    def name_added(self, key: bytes) -> None:
        """A name (or empty non-terminal) now exists."""
        if key in self._hash_of:
            return
        value = key_digest(key, self.salt, self.iterations)
        self._hash_of[key] = value
        self._name_of[value] = key
        owner = self._owners.get(value)
        if owner is not None:
            self._matching[key] = owner

    def name_removed(self, key: bytes) -> None:
        value = self._hash_of.pop(key, None)
        if value is not None and self._name_of.get(value) == key:
            del self._name_of[value]
        self._matching.pop(key, None)

    def owner_added(self, owner: bytes) -> None:
        """A hashed owner now holds an NSEC3 of this chain."""
        value = _owner_value(self._zone, owner)
        if value is None or value in self._owners:
            return
        self._owners[value] = owner
        self._digests.add(value)
        name = self._name_of.get(value)
        if name is not None:
            self._matching[name] = owner

    def owner_removed(self, owner: bytes) -> None:
        value = _owner_value(self._zone, owner)
        if value is None or self._owners.get(value) != owner:
            return
        del self._owners[value]
        self._digests.remove(value)
        name = self._name_of.get(value)
        if name is not None:
            self._matching.pop(name, None)

    def has_params(self, rdata: bytes) -> bool:
        return wire_params(rdata) == self.params

    def digest_of(self, key: bytes) -> bytes:
        found = self._hash_of.get(key)
        return found if found is not None else key_digest(key, self.salt, self.iterations)

    def owner_of_digest(self, value: bytes) -> bytes | None:
        return self._owners.get(value)

    def successor(self, value: bytes) -> bytes | None:
        """The next digest of the chain after ``value`` (wrapping), for a new NSEC3's next hash."""
        digests = self._digests
        if not digests:
            return None
        i = digests.bisect_right(value)
        return digests[i if i < len(digests) else 0]

    def predecessor(self, value: bytes) -> bytes | None:
        digests = self._digests
        if not digests:
            return None
        i = digests.bisect_left(value) - 1
        return digests[i]

    # --- lookups ----------------------------------------------------------------------------------

    def matching(self, key: bytes) -> bytes | None:
        """Owner key of the NSEC3 whose owner is the hash of ``key`` (an existing name)."""
        return self._matching.get(key)

    def covering(self, key: bytes) -> bytes | None:
        """Owner of the NSEC3 covering the hash of ``key``: its predecessor in hash order; the
        last one wraps around to the first (RFC 5155 §3.1.7)."""
        digests = self._digests
        if not digests:
            return None
        i = digests.bisect_right(key_digest(key, self.salt, self.iterations)) - 1
        return self._owners[digests[i]]  # i == -1: before the first hash, so covered by the last

    def closest_provable_encloser(self, key: bytes) -> tuple[list[bytes], int, bytes] | None:
        """(ancestors of ``key`` longest first, i, owner) for the deepest ancestor
        ``ancestors[i]`` with a matching NSEC3.

        Without opt-out this is the closest encloser (RFC 5155 §7.2.1); with opt-out an empty
        non-terminal or unsigned delegation may have no NSEC3, and the proof moves up to the
        closest encloser that can be proven (§7.2.3, §7.2.7), as Knot does (NSD 4.6 stops at the
        unprovable encloser and sends a proof no validator can use; spec/dnssec.md §5).
        Dictionary lookups only: at most one per label, no hashing.
        """
        matching = self._matching
        ancestors = wirename.ancestor_keys(key, self._zone.apex)
        for i, ancestor in enumerate(ancestors):
            found = matching.get(ancestor)
            if found is not None:
                return ancestors, i, found
        return None

    # --- the proofs of RFC 5155 §7.2, as lists of NSEC3 owner keys (duplicates removed by caller)

    def closest_encloser_proof(self, key: bytes) -> tuple[list[bytes], bytes | None]:
        """§7.2.1: NSEC3 matching the closest (provable) encloser and NSEC3 covering the next
        closer name; also returns the encloser (None when even the apex has no NSEC3)."""
        found = self.closest_provable_encloser(key)
        if found is None:
            return [], None
        ancestors, i, match = found
        proof = [match]
        if i > 0:
            cover = self.covering(ancestors[i - 1])
            if cover is not None:
                proof.append(cover)
        return proof, ancestors[i]

    def name_error(self, key: bytes) -> list[bytes]:
        """§7.2.2 (NXDOMAIN): closest encloser proof plus the NSEC3 covering the wildcard at the
        closest encloser."""
        proof, encloser = self.closest_encloser_proof(key)
        if encloser is not None:
            cover = self.covering(encloser + b"*" + wirename.END)
            if cover is not None:
                proof.append(cover)
        return proof

    def no_data(self, key: bytes) -> list[bytes]:
        """§7.2.3/§7.2.4 (NODATA, DS included) and §7.2.7 (unsigned referral): the NSEC3
        matching ``key``; when opt-out left it without one, the closest provable encloser proof
        (its next closer name is then covered by an opt-out NSEC3)."""
        match = self._matching.get(key)
        if match is not None:
            return [match]
        return self.closest_encloser_proof(key)[0]

    def wildcard_answer(self, key: bytes, encloser: bytes) -> list[bytes]:
        """§7.2.6: the NSEC3 covering the next closer name of ``key`` below the closest encloser
        (the wildcard's parent): no closer match existed, so the expansion was legitimate."""
        next_closer = key[:key.index(wirename.END, len(encloser)) + 1]
        cover = self.covering(next_closer)
        return [cover] if cover is not None else []

    def wildcard_no_data(self, key: bytes, encloser: bytes, wildcard: bytes) -> list[bytes]:
        """§7.2.5: NSEC3 matching the closest encloser, covering the next closer name, and
        matching the wildcard (whose bitmap lacks the type)."""
        proof = [n for n in (self._matching.get(encloser),) if n is not None]
        proof += self.wildcard_answer(key, encloser)
        match = self._matching.get(wildcard)
        if match is not None:
            proof.append(match)
        return proof


def _owner_value(zone: "ZoneData", key: bytes) -> bytes | None:
    """The digest a hashed owner spells, if it is one label directly below the apex (§7.1)."""
    apex = zone.apex
    if not key.startswith(apex) or key.count(wirename.END, len(apex)) != 1:
        return None
    label = zone.owner_wire(key)[1:1 + zone.owner_wire(key)[0]]
    value = owner_digest(label)
    return value if value is not None and len(value) == 20 else None


def _existing_keys(zone: "ZoneData") -> set[bytes]:
    """Every name of the zone, empty non-terminals included (RFC 5155 §7.1)."""
    existing: set[bytes] = set()
    apex = zone.apex
    for key in zone.blobs:
        for ancestor in wirename.ancestor_keys(key, apex):
            if ancestor in existing:
                break
            existing.add(ancestor)
    return existing
