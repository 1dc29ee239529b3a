"""``cid zone sign`` for a plain unsigned master file: read, sign and write without a dnspython
object per record.

Profiled on the 100 000-name benchmark zone (one A per name, one Ed25519 CSK), the dnspython
route spends, per core-second of the whole job, about as much building and walking dnspython
objects (loading 3.8 s, preparing 1.2 s, laying out canonical wire 1.3 s, re-attaching 1.1 s,
rendering 2.1 s) as on the 200 000 signatures themselves (7.2 s with libsodium), and the loading
and preparing run in one process. Here the file is read by ``verify_read`` (canonical wire per
RRset, the same reader ``cid zone verify`` uses), the zone is laid out once (canonical order,
authoritative names, NSEC chain), and forked workers each sign and render a range of names
straight to text.

The output is byte for byte what ``signer.sign_zone`` followed by ``zonefile.zone_to_text``
writes (the tests compare them): same records, same order (names in canonical order, SOA first,
each type followed by its RRSIGs), same text for every record (A and AAAA from their addresses,
RRSIG and NSEC as ``render`` writes them, anything else by ``render``'s dnspython fallback).

Only fresh zones go this way: no RRSIG, NSEC, NSEC3 or NSEC3PARAM anywhere and no DNSKEY at the
apex (re-signing must strip and keep keys as ``signer.prepare_signing`` does), in a file
``verify_read`` reads. ``prepare`` returns None for anything else, and the caller signs the
dnspython way.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

import dns.ipv6
import dns.name
import dns.rdatatype

from . import parallel_sign, render, signer, verify_parallel, verify_read
from .keys import ZoneKey
from .verify_read import Node, RRset, ZoneData

A, AAAA, SOA, NS, DS, DNSKEY = (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.SOA, dns.rdatatype.NS,
                                dns.rdatatype.DS, dns.rdatatype.DNSKEY)
RRSIG, NSEC = dns.rdatatype.RRSIG, dns.rdatatype.NSEC
_NONE = dns.rdatatype.NONE
_STRIPPED = frozenset({RRSIG, NSEC, dns.rdatatype.NSEC3, dns.rdatatype.NSEC3PARAM})
PIECES_PER_WORKER = 8


class Plan(NamedTuple):
    data: ZoneData
    start: int
    end: int
    nsec_ttl: int
    order: list[tuple[bytes, Node]]  # every node, canonical order
    auth: list[bool | None]  # per entry of order: None (not authoritative), else is_delegation
    following: list[tuple[str, tuple[bytes, ...]] | None]  # per entry: the NSEC's next name (text, labels)
    nsec_types: list[list[int] | None]
    ksks: list[Any]
    zsks: list[Any]


class SignedText(NamedTuple):
    text: str
    rrsets: int
    rrsigs: int


def read(text: str, origin: dns.name.Name | None = None,
         progress: Callable[[int], Any] | None = None) -> ZoneData | None:
    """The zone of an unsigned plain master file, or None (sign it the dnspython way)."""
    data = verify_read.read_text(text, origin, progress)
    if data is None:
        return None
    for node in data.nodes.values():
        for rdtype, _ in node.sets:
            if rdtype in _STRIPPED:
                return None
    apex = data.nodes[data.origin_folded]
    if (DNSKEY, _NONE) in apex.sets:
        return None
    return data


def prepare(data: ZoneData, keys: list[ZoneKey], *, inception: int | None = None,
            expiration: int | None = None, now: float | None = None) -> Plan:
    """As ``signer.prepare_signing`` for a fresh zone: the keys' DNSKEYs added at the apex, the
    names in canonical order, the NSEC chain laid out. Raises ValueError as it does."""
    with parallel_sign.no_gc():
        return _prepare(data, keys, inception, expiration, now)


def _prepare(data: ZoneData, keys: list[ZoneKey], inception: int | None, expiration: int | None,
             now: float | None) -> Plan:
    origin = data.origin
    if not keys:
        raise ValueError("no keys to sign with")
    for key in keys:
        if key.zone != origin:
            raise ValueError(f"key {key.key_tag} is for {key.zone}, not {origin}")
    start, end = signer.signature_window(inception, expiration, now)
    apex = data.nodes[data.origin_folded]
    soa_rs = apex.sets[(SOA, _NONE)]
    soa = next(iter(soa_rs.items.values()))
    dnskeys = apex.sets[(DNSKEY, _NONE)] = RRset(soa_rs.ttl)  # no DNSKEY before: the SOA's TTL
    for key in keys:
        dnskeys.items.setdefault(key.dnskey.to_digestable(origin), key.dnskey)
    order = verify_parallel.canonical_order(data)
    names = verify_parallel.authoritative(data, order)
    position = {id(node): i for i, (_, _, node) in enumerate(order)}
    auth: list[bool | None] = [None] * len(order)
    following: list[tuple[str, tuple[bytes, ...]] | None] = [None] * len(order)
    nsec_types: list[list[int] | None] = [None] * len(order)
    apex_next = (origin.to_text(), origin.labels)
    for i, (_, node, delegation) in enumerate(names):
        at = position[id(node)]
        auth[at] = delegation
        if i + 1 < len(names):
            after = names[i + 1][1]
            following[at] = (after.text, after.labels)
        else:
            following[at] = apex_next
        nsec_types[at] = verify_parallel._nsec_types(node, delegation)
    ksks, zsks = signer._roles(keys)
    return Plan(data, start, end, min(soa_rs.ttl, soa.minimum), [(key, node) for _, key, node in order],
                auth, following, nsec_types, ksks, zsks)


def sign_range(plan: Plan, lo: int, hi: int, generic: bool) -> tuple[str, int, int]:
    """The signed master-file lines of ``plan.order[lo:hi]``, with the counts of RRsets signed
    and RRSIGs made."""
    data = plan.data
    origin = data.origin
    rdclass = data.rdclass
    texts = render._Texts(generic, origin)
    signer_wire = origin.to_digestable()
    start, end, nsec_ttl = plan.start, plan.end, plan.nsec_ttl
    ksks, zsks = plan.ksks, plan.zsks
    head = struct.Struct("!HBBIIIH").pack
    fixed = struct.Struct("!HHI").pack
    length = struct.Struct("!H").pack
    nsec_type, rrsig_prefix_type = texts.type(NSEC), "RRSIG"
    lines: list[str] = []
    append = lines.append
    rrsets = rrsigs = 0
    for i in range(lo, hi):
        _, node = plan.order[i]
        owner = node.text
        delegation = plan.auth[i]
        entries: list[tuple[Any, ...]] = []
        for (rdtype, _), rs in node.sets.items():
            entries.append((rdtype != SOA, rdtype, False, 0, rdtype, rs))
        if delegation is not None:
            types = plan.nsec_types[i]
            assert types is not None
            entries.append((True, NSEC, False, 1, NSEC, None))
            canonical = verify_read.name_wire(node.labels).lower()
            labels = len(node.labels) - 1 - (1 if node.labels[0] == b"*" else 0)  # RFC 4034 §3.1.3
            following = plan.following[i]
            assert following is not None
            # RFC 6840 §5.1: the next name keeps its case.
            nsec_wire = verify_read.name_wire(following[1]) + verify_read.bitmap_wire(tuple(types))
            signed: list[tuple[int, int, list[tuple[int, int, bytes]]]] = []
            for (rdtype, _), rs in node.sets.items():
                if delegation and rdtype != DS:
                    continue
                body = canonical + fixed(rdtype, rdclass, rs.ttl)
                body = b"".join([body + length(len(w)) + w for w in sorted(rs.items)])
                signed.append((rdtype, rs.ttl, _sign(ksks if rdtype == DNSKEY else zsks, head, rdtype, labels,
                                                     rs.ttl, start, end, signer_wire, body)))
            body = canonical + fixed(NSEC, rdclass, nsec_ttl) + length(len(nsec_wire)) + nsec_wire
            signed.append((NSEC, nsec_ttl, _sign(zsks, head, NSEC, labels, nsec_ttl, start, end, signer_wire, body)))
            for rdtype, ttl, made in signed:
                entries.append((rdtype != SOA, rdtype, True, 2, (rdtype, ttl, labels), made))
                rrsets += 1
                rrsigs += len(made)
        entries.sort(key=lambda e: e[:3])
        for entry in entries:
            kind = entry[3]
            if kind == 0:
                rdtype, rs = entry[4], entry[5]
                prefix = f"{owner} {rs.ttl} IN {texts.type(rdtype)} "
                for wire, payload in rs.items.items():
                    if rdtype == A:
                        text = socket.inet_ntop(socket.AF_INET, wire)
                    elif rdtype == AAAA:
                        text = dns.ipv6.inet_ntoa(wire)  # what dnspython keeps as the address
                    else:
                        text = texts.rdata(payload)
                    append((prefix + text).rstrip())
            elif kind == 1:
                append(f"{owner} {nsec_ttl} IN {nsec_type} {plan.following[i][0]} "  # type: ignore[index]
                       + " ".join([texts.type(t) for t in plan.nsec_types[i]]))  # type: ignore[union-attr]
            else:
                rdtype, ttl, labels = entry[4]
                prefix = f"{owner} {ttl} IN {rrsig_prefix_type} "
                for algorithm, key_tag, signature in entry[5]:
                    append(prefix + texts.rrsig(rdtype, algorithm, labels, ttl, end, start, key_tag, origin, signature))
    lines.append("")
    return ("\n".join(lines) if len(lines) > 1 else ""), rrsets, rrsigs


def _sign(roles: list[Any], head: Callable[..., bytes], rdtype: int, labels: int, ttl: int, start: int, end: int,
          signer_wire: bytes, body: bytes) -> list[tuple[int, int, bytes]]:
    made = []
    for private, algorithm, key_tag in roles:
        data = head(rdtype, algorithm, labels, ttl, end, start, key_tag) + signer_wire + body
        made.append((algorithm, key_tag, private.sign(data)))
    return made


def signed_text(plan: Plan, *, generic: bool = True, workers: int | None = None,
                progress: Callable[[int], Any] | None = None,
                total: Callable[[int], Any] | None = None) -> SignedText:
    """The signed zone's master-file text, signed and rendered by range in ``workers`` forked
    processes (default: one per CPU from parallel_sign.PARALLEL_THRESHOLD RRSIGs on)."""
    names = sum(1 for a in plan.auth if a is not None)
    count = parallel_sign.choose_workers(workers, 2 * names * len(plan.zsks))
    if total is not None:
        total(len(plan.order))

    def task(lo: int, hi: int) -> tuple[str, int, int]:
        return sign_range(plan, lo, hi, generic)

    with parallel_sign.no_gc():
        parts = parallel_sign.map_ranges(task, len(plan.order), count, progress=progress,
                                         pieces=count * PIECES_PER_WORKER if progress is not None or count > 1
                                         else None)
    head = f"$ORIGIN {plan.data.origin}\n"
    return SignedText(head + "".join(p[0] for p in parts), sum(p[1] for p in parts), sum(p[2] for p in parts))
