"""Serving NSEC3 (RFC 5155 §7.2): the hashed chain of a zone and which records prove what.

A zone signed with NSEC3 by a peer signer (BIND's ``dnssec-signzone -3``, Knot, OpenDNSSEC) is
served with the proofs Knot and NSD give (spec/dnssec.md §5). ``Nsec3Chain`` is built once per
zone index when the apex holds an NSEC3PARAM:

* the NSEC3 records whose hash algorithm, iterations and salt are the NSEC3PARAM's (RFC 5155
  §7.3: a server uses the chain NSEC3PARAM names), sorted by raw digest, which is the order of
  their base32hex owner labels (RFC 5155 §1.3);
* for every name of the zone that exists (empty non-terminals included), the NSEC3 matching it,
  found by hashing each name once here. At query time only names that do not exist (a next
  closer name, a wildcard) are hashed: at most two per proof, whatever the query name's depth.

Names are handled as tuples of lower-cased labels, root last (``store._key``), which are also
what the canonical wire form used for hashing is made of (RFC 5155 §5, RFC 4034 §6.2).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import TYPE_CHECKING

import dns.name
import dns.rdatatype

from ..dnssec.nsec3 import digest_wire, owner_digest

if TYPE_CHECKING:
    from .store import NodeData

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


def chain_params(nsec3param) -> list[Params]:
    """The parameters of the NSEC3PARAM records a server may use, in canonical RDATA order.

    RFC 5155 §4.1.2: an NSEC3PARAM whose flags are not zero is ignored; only SHA-1 (§11) is
    defined. Canonical order is the order Knot keeps an RRset in, so several NSEC3PARAMs (a
    chain being replaced) resolve to the same chain there and here.
    """
    usable = [rd for rd in nsec3param if rd.flags == 0 and rd.algorithm == SHA1]
    usable.sort(key=lambda rd: rd.to_digestable())
    return [(rd.algorithm, rd.iterations, rd.salt) for rd in usable]


def params_of(rd) -> Params:
    return (rd.algorithm, rd.iterations, rd.salt)


class Nsec3Chain:
    """One zone's NSEC3 chain with the matching record of every existing name (module text)."""

    __slots__ = ("params", "salt", "iterations", "_depth", "_digests", "_nodes", "_matching")

    def __init__(self, params: Params, depth: int, nsec3_nodes: Iterable[NodeData],
                 existing: Iterable[Key]):
        self.params = params
        _, self.iterations, self.salt = params
        self._depth = depth  # labels of the zone origin, root included
        owners: list[tuple[bytes, NodeData]] = []
        for node in nsec3_nodes:
            value = owner_digest(node.name.labels[0]) if len(node.name.labels) == depth + 1 else None
            if value is None or len(value) != 20:
                continue  # not a hashed name directly below the apex (RFC 5155 §7.1)
            if any(params_of(rd) == params for rd in node.rrsets[NSEC3]):
                owners.append((value, node))
        owners.sort(key=lambda entry: entry[0])
        self._digests = [value for value, _ in owners]
        self._nodes = [node for _, node in owners]
        by_digest = dict(owners)
        salt, iterations = self.salt, self.iterations
        matching: dict[Key, NodeData] = {}
        if by_digest:
            for key in existing:
                found = by_digest.get(digest(key, salt, iterations))
                if found is not None:
                    matching[key] = found
        self._matching = matching

    def __len__(self) -> int:
        return len(self._nodes)

    def matching(self, key: Key) -> NodeData | None:
        """The NSEC3 whose owner is the hash of ``key`` (an existing name), if the chain has one."""
        return self._matching.get(key)

    def covering(self, key: Key) -> NodeData | None:
        """The NSEC3 covering the hash of ``key``: its predecessor in hash order; the last one
        wraps around to the first (RFC 5155 §3.1.7)."""
        if not self._digests:
            return None
        i = bisect.bisect_right(self._digests, digest(key, self.salt, self.iterations)) - 1
        return self._nodes[i]  # i == -1: before the first hash, so covered by the last

    def closest_provable_encloser(self, key: Key) -> tuple[int, NodeData] | None:
        """(i, NSEC3) for the deepest ancestor ``key[i:]`` of ``key`` with a matching NSEC3.

        Without opt-out this is the closest encloser (RFC 5155 §7.2.1); with opt-out an empty
        non-terminal or unsigned delegation may have no NSEC3, and the proof moves up to the
        closest encloser that can be proven (§7.2.3, §7.2.7), as Knot does (NSD 4.6 stops at the
        unprovable encloser and sends a proof no validator can use; spec/dnssec.md §5).
        Dictionary lookups only: at most one per label (127 at most), no hashing.
        """
        matching = self._matching
        for i in range(len(key) - self._depth + 1):
            found = matching.get(key[i:])
            if found is not None:
                return i, found
        return None

    # --- the proofs of RFC 5155 §7.2, as lists of NSEC3 nodes (duplicates removed by the caller)

    def closest_encloser_proof(self, key: Key) -> tuple[list[NodeData], Key | None]:
        """§7.2.1: NSEC3 matching the closest (provable) encloser and NSEC3 covering the next
        closer name; also returns the encloser (None when even the apex has no NSEC3)."""
        found = self.closest_provable_encloser(key)
        if found is None:
            return [], None
        i, match = found
        proof = [match]
        if i > 0:
            cover = self.covering(key[i - 1:])
            if cover is not None:
                proof.append(cover)
        return proof, key[i:]

    def name_error(self, key: Key) -> list[NodeData]:
        """§7.2.2 (NXDOMAIN): closest encloser proof plus the NSEC3 covering the wildcard at the
        closest encloser."""
        proof, encloser = self.closest_encloser_proof(key)
        if encloser is not None:
            cover = self.covering((_WILDCARD, *encloser))
            if cover is not None:
                proof.append(cover)
        return proof

    def no_data(self, key: Key) -> list[NodeData]:
        """§7.2.3/§7.2.4 (NODATA, DS included) and §7.2.7 (unsigned referral): the NSEC3
        matching ``key``; when opt-out left it without one, the closest provable encloser proof
        (its next closer name is then covered by an opt-out NSEC3)."""
        match = self._matching.get(key)
        if match is not None:
            return [match]
        return self.closest_encloser_proof(key)[0]

    def wildcard_answer(self, key: Key, encloser: Key) -> list[NodeData]:
        """§7.2.6: the NSEC3 covering the next closer name of ``key`` below the closest encloser
        (the wildcard's parent): no closer match existed, so the expansion was legitimate."""
        cover = self.covering(key[len(key) - len(encloser) - 1:])
        return [cover] if cover is not None else []

    def wildcard_no_data(self, key: Key, encloser: Key, wildcard: Key) -> list[NodeData]:
        """§7.2.5: NSEC3 matching the closest encloser, covering the next closer name, and
        matching the wildcard (whose bitmap lacks the type)."""
        proof = [n for n in (self._matching.get(encloser),) if n is not None]
        proof += self.wildcard_answer(key, encloser)
        match = self._matching.get(wildcard)
        if match is not None:
            proof.append(match)
        return proof
