"""The NSEC3 part of ``signer.verify_zone`` (``cid zone verify``): is the hashed chain complete?

For every usable NSEC3PARAM at the apex (hash algorithm 1, flags 0: RFC 5155 §4.1.2) the NSEC3
records with its parameters must form one chain (RFC 5155 §7.1):

* every authoritative name and every empty non-terminal has an NSEC3 whose owner is its hash;
  an unsigned delegation, and an empty non-terminal that exists only because of unsigned
  delegations, may have none, but then the NSEC3 covering the next closer name to it (below
  its closest provable encloser) must have the opt-out flag, or no validator can prove it
  insecure (§7.2.7);
* no NSEC3 matches a name the zone is not authoritative for (glue, occluded data) or no name;
* in hash order each record's next hashed owner is the following owner, the last the first;
* each bitmap lists the types present at its name (at a delegation only NS and DS; RRSIG when
  the name has signed RRsets; nothing for an empty non-terminal);
* every NSEC3 has the NSEC3PARAM's algorithm, iterations and salt, and no unknown flag.

Signatures over the NSEC3 RRsets are checked with every other RRset by ``verify_zone``. Each
problem is one line, ``<name> NSEC3: ...`` or ``<hashed owner> NSEC3: ...``.
"""

from __future__ import annotations

import bisect
from typing import Any

import dns.name
import dns.rdatatype
import dns.zone

from ..dnssec.nsec3 import b32, owner_digest
from .nsec3 import OPT_OUT, SHA1, Key, digest, key_of, params_of

NSEC3 = dns.rdatatype.NSEC3
NSEC3PARAM = dns.rdatatype.NSEC3PARAM
RRSIG, NS, DS = dns.rdatatype.RRSIG, dns.rdatatype.NS, dns.rdatatype.DS
_HASH_SIZE = 20  # SHA-1


def uses_nsec3(zone: dns.zone.Zone) -> bool:
    return zone.get_rdataset(zone.origin, NSEC3PARAM) is not None


def is_nsec3_only(node: Any) -> bool:
    """A node holding NSEC3 (and its RRSIGs) only: a hashed owner name, not a name of the zone."""
    return bool(node.rdatasets) and all(
        r.rdtype == NSEC3 or (r.rdtype == RRSIG and r.covers == NSEC3) for r in node.rdatasets)


def _show(params: tuple[int, int, bytes]) -> str:
    algorithm, iterations, salt = params
    return f"{algorithm} {iterations} {salt.hex().upper() or '-'}"


def _types(types: set[int]) -> str:
    return " ".join(dns.rdatatype.to_text(t) for t in sorted(types))


def _bitmap(windows: Any) -> set[int]:
    return {window * 256 + i * 8 + bit for window, bits in windows
            for i, byte in enumerate(bits) for bit in range(8) if byte & (0x80 >> bit)}


class _Names:
    """The names an NSEC3 chain must (or may) cover, with the types each NSEC3 bitmap must show."""

    def __init__(self, zone: dns.zone.Zone, names: list[tuple[dns.name.Name, dns.name.Name, bool]]):
        origin = zone.origin
        rdclass = zone.rdclass
        self.depth = len(origin.labels)
        self.types: dict[Key, set[int]] = {}  # authoritative names and ENTs -> expected bitmap
        self.shown: dict[Key, dns.name.Name] = {}
        optional: set[Key] = set()  # unsigned delegations, and ENTs only they make
        required_ents: set[Key] = set()
        ents: set[Key] = set()
        for node_key, name, delegation in names:
            node = zone.nodes[node_key]
            if is_nsec3_only(node):
                continue
            key = key_of(name)
            present = {r.rdtype for r in node.rdatasets if r.rdtype not in (RRSIG, NSEC3)}
            if delegation:
                present &= {NS, DS}
                signed = DS in present
            else:
                signed = bool(present)
            self.types[key] = present | ({RRSIG} if signed else set())
            self.shown[key] = name
            unsigned = delegation and node.get_rdataset(rdclass, DS) is None
            if unsigned:
                optional.add(key)
            for i in range(1, len(key) - self.depth):
                ancestor = key[i:]
                ents.add(ancestor)
                if not unsigned:
                    if ancestor in required_ents:
                        break  # its ancestors were marked by an earlier name
                    required_ents.add(ancestor)
        for key in ents - set(self.types):
            self.types[key] = set()
            self.shown[key] = dns.name.Name(key)
            if key not in required_ents:
                optional.add(key)
        self.optional = optional


def verify_nsec3(zone: dns.zone.Zone, names: list[tuple[dns.name.Name, dns.name.Name, bool]]) -> list[str]:
    """Problems with the zone's NSEC3 chains (module text). ``names`` is
    ``signer.authoritative_names(zone)``."""
    origin = zone.origin
    problems: list[str] = []
    usable: list[tuple[int, int, bytes]] = []
    for rd in zone.get_rdataset(origin, NSEC3PARAM) or ():
        if rd.algorithm != SHA1:
            problems.append(f"{origin} NSEC3PARAM: hash algorithm {rd.algorithm} is unknown (only 1, SHA-1)")
        elif rd.flags != 0:
            problems.append(f"{origin} NSEC3PARAM: flags {rd.flags}, must be 0 (RFC 5155 §4.1.2)")
        elif params_of(rd) not in usable:
            usable.append(params_of(rd))
    if not usable:
        return problems + [f"{origin} NSEC3PARAM: none usable, so no NSEC3 chain is in use"]

    # The NSEC3 records, by chain and hash.
    chains: dict[tuple[int, int, bytes], dict[bytes, tuple[dns.name.Name, Any]]] = {p: {} for p in usable}
    depth = len(origin.labels)
    for node_key, node in zone.nodes.items():
        rds = node.get_rdataset(zone.rdclass, NSEC3)
        if rds is None:
            continue
        owner = node_key.derelativize(origin) if not node_key.is_absolute() else node_key
        value = owner_digest(owner.labels[0]) if len(owner.labels) == depth + 1 else None
        if value is None or len(value) != _HASH_SIZE or owner.parent() != origin:
            problems.append(f"{owner} NSEC3: owner is not a SHA-1 hash label directly below {origin}")
            continue
        for rd in rds:
            params = params_of(rd)
            if params not in chains:
                problems.append(f"{owner} NSEC3: parameters {_show(params)} are not the NSEC3PARAM's "
                                f"({', '.join(_show(p) for p in usable)})")
                continue
            if rd.flags & ~OPT_OUT:
                problems.append(f"{owner} NSEC3: unknown flags {rd.flags}")
            if value in chains[params]:
                problems.append(f"{owner} NSEC3: more than one record with parameters {_show(params)}")
                continue
            chains[params][value] = (owner, rd)

    expected = _Names(zone, names)
    for params, chain in chains.items():
        problems += _check_chain(zone, names, expected, params, chain, len(usable) > 1)
    return problems


def _check_chain(zone: dns.zone.Zone, names: list[tuple[dns.name.Name, dns.name.Name, bool]],
                 expected: _Names, params: tuple[int, int, bytes],
                 chain: dict[bytes, tuple[dns.name.Name, Any]], several: bool) -> list[str]:
    _, iterations, salt = params
    tag = f" ({_show(params)})" if several else ""
    problems: list[str] = []
    order = sorted(chain)
    if not order:
        return [f"{zone.origin} NSEC3{tag}: no NSEC3 records with the NSEC3PARAM's parameters"]

    # In hash order, each next hashed owner is the following owner; the last wraps (§3.1.7).
    for i, value in enumerate(order):
        owner, rd = chain[value]
        following = order[(i + 1) % len(order)]
        if rd.next != following:
            problems.append(f"{owner} NSEC3{tag}: next hashed owner is {b32(rd.next).upper()}, "
                            f"expected {b32(following).upper()}")

    def covering(key: Key) -> tuple[dns.name.Name, Any]:
        i = bisect.bisect_right(order, digest(key, salt, iterations)) - 1
        return chain[order[i]]

    hashes: dict[Key, bytes] = {key: digest(key, salt, iterations) for key in expected.types}
    matched: set[bytes] = set()
    for key, types in expected.types.items():
        name = expected.shown[key]
        value = hashes[key]
        found = chain.get(value)
        if found is None:
            if key not in expected.optional:
                problems.append(f"{name} NSEC3{tag}: missing (no NSEC3 at {b32(value).upper()})")
                continue
            # May be left out under opt-out: the NSEC3 covering the next closer name must say so.
            for i in range(1, len(key) - expected.depth + 1):
                if hashes.get(key[i:]) in chain:
                    break
            next_closer = key[i - 1:]
            owner, rd = covering(next_closer)
            if not rd.flags & OPT_OUT:
                problems.append(f"{name} NSEC3{tag}: missing, and {owner} covering "
                                f"{dns.name.Name(next_closer)} has no opt-out flag")
            continue
        matched.add(value)
        owner, rd = found
        present = _bitmap(rd.windows)
        if present != types:
            problems.append(f"{name} NSEC3{tag} {owner}: bitmap [{_types(present)}] does not match "
                            f"types present [{_types(types)}]")

    unmatched = [value for value in order if value not in matched]
    if unmatched:
        # Name the glue or occluded name an NSEC3 was made for, when it is one.
        authoritative = {key_of(name) for _, name, _ in names}
        others: dict[bytes, dns.name.Name] = {}
        for node_key in zone.nodes:
            name = node_key.derelativize(zone.origin) if not node_key.is_absolute() else node_key
            key = key_of(name)
            if key not in authoritative and key not in expected.types:
                others[digest(key, salt, iterations)] = name
        for value in unmatched:
            owner, _ = chain[value]
            if value in others:
                problems.append(f"{owner} NSEC3{tag}: matches {others[value]}, which the zone is not "
                                "authoritative for")
            else:
                problems.append(f"{owner} NSEC3{tag}: matches no name of the zone")
    return problems
