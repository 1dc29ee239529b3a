"""The compact zone: names in canonical order, each with its RRsets in wire form.

One zone is a dict from a name's canonical key (``wirename``) to one ``bytes`` blob holding all
of that name's RRsets as ready-to-send resource records (TYPE, CLASS, TTL, RDLENGTH, RDATA, the
owner left out), plus ordered indexes over the keys (``sortedcontainers.SortedList``):

* every name with data, in canonical order: whether a name exists (empty non-terminals
  included, RFC 4592 §2.2.2) and the closest encloser are bisections, because an ancestor's key
  is a prefix of its descendants' keys;
* the owners of NSEC records: the NSEC matching or covering a name is its predecessor there;
* zone cuts and DNAME owners, as sets (a query walks its ancestors);
* for a zone served with NSEC3 (``nsec3.Nsec3Chain``): the chain in hash order and the hash of
  every existing name, computed once at load.

No dnspython object is kept per record: a 100k-name signed zone is a few hundred bytes per name.
A query decodes only the few blobs it touches (``Node``); rendered answers are cached by the
store (``store.ZoneStore``). Changes go through ``zonechange`` and touch only the names changed
and their chain neighbours.

Blob layout, per RRset: ``!HHHI`` (type, covered type for RRSIG else 0, record count, bytes of
records), then the records, each ``!HHIH`` + RDATA. RRsets keep the order they were added in,
records too (as dnspython's reader keeps them), duplicates removed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping

import dns.name
import dns.rdataclass
import dns.rdatatype
from sortedcontainers import SortedList

from . import wirename

RRSET_HEAD = struct.Struct("!HHHI")
RR_HEAD = struct.Struct("!HHIH")
_RDLEN = struct.Struct("!H")
_TTL = struct.Struct("!I")
IN = int(dns.rdataclass.IN)

A, NS, CNAME, SOA, DNAME = 1, 2, 5, 6, 39
DS, RRSIG, NSEC, DNSKEY, NSEC3, NSEC3PARAM = 43, 46, 47, 48, 50, 51

SetKey = tuple[int, int]  # (type, covered type for RRSIG else 0)
# What a blob decodes to before encoding: RRset key → [ttl, {rdata: None}] (ordered, no dupes)
Sets = dict[SetKey, list]


class RRset:
    """One RRset of a node as records ready to send: ``chunks`` are ``!HHIH`` + RDATA each."""

    __slots__ = ("rdtype", "covers", "ttl", "chunks")

    def __init__(self, rdtype: int, covers: int, ttl: int, chunks: list[bytes]):
        self.rdtype, self.covers, self.ttl, self.chunks = rdtype, covers, ttl, chunks

    @property
    def rdatas(self) -> list[bytes]:
        return [c[10:] for c in self.chunks]

    def with_ttl(self, ttl: int) -> "RRset":
        head = _TTL.pack(ttl)
        return RRset(self.rdtype, self.covers, ttl, [c[:4] + head + c[8:] for c in self.chunks])

    def __len__(self) -> int:
        return len(self.chunks)


def encode(sets: Sets) -> bytes:
    """A node's blob from its RRsets (see the module text)."""
    out = []
    for (rdtype, covers), (ttl, rdatas) in sets.items():
        if not rdatas:
            continue
        head = struct.pack("!HHI", rdtype, IN, ttl)
        body = b"".join([head + _RDLEN.pack(len(rd)) + rd for rd in rdatas])
        out.append(RRSET_HEAD.pack(rdtype, covers, len(rdatas), len(body)))
        out.append(body)
    return b"".join(out)


def decode_sets(blob: bytes) -> Sets:
    """The RRsets of a blob as ``encode`` takes them (for changes and merges)."""
    sets: Sets = {}
    for rrset in iter_rrsets(blob):
        sets[(rrset.rdtype, rrset.covers)] = [rrset.ttl, dict.fromkeys(rrset.rdatas)]
    return sets


def iter_rrsets(blob: bytes) -> Iterator[RRset]:
    pos, end = 0, len(blob)
    unpack_head = RRSET_HEAD.unpack_from
    while pos < end:
        rdtype, covers, count, size = unpack_head(blob, pos)
        yield _rrset_at(blob, pos + 10, rdtype, covers, count, size)
        pos += 10 + size


def _rrset_at(blob: bytes, pos: int, rdtype: int, covers: int, count: int, size: int) -> RRset:
    """The RRset whose ``count`` records (``size`` bytes) start at ``blob[pos]``."""
    body = blob[pos:pos + size]
    if count == 1:
        chunks = [body]
    else:
        chunks = []
        at = 0
        for _ in range(count):
            stop = at + 10 + ((body[at + 8] << 8) | body[at + 9])
            chunks.append(body[at:stop])
            at = stop
    return RRset(rdtype, covers, _TTL.unpack_from(body, 4)[0], chunks)


def set_keys(blob: bytes) -> list[SetKey]:
    """The (type, covered) pairs present in a blob, without splitting records."""
    keys = []
    pos, end = 0, len(blob)
    while pos < end:
        rdtype, covers, _, size = RRSET_HEAD.unpack_from(blob, pos)
        keys.append((rdtype, covers))
        pos += 10 + size
    return keys


class Node:
    """The decoded RRsets of one name: data by type (``rrsets``), signatures by covered type
    (``sig``; ``sigs`` all of them). Signatures are split out of the blob only when asked for:
    most answers need one of a name's RRSIGs, or none (no DO bit)."""

    __slots__ = ("key", "wire", "rrsets", "_blob", "_sig_at", "_sigs")

    def __init__(self, key: bytes, wire: bytes, blob: bytes):
        self.key, self.wire, self._blob = key, wire, blob
        rrsets: dict[int, RRset] = {}
        sig_at: dict[int, tuple[int, int, int]] = {}
        pos, end = 0, len(blob)
        unpack_head = RRSET_HEAD.unpack_from
        while pos < end:
            rdtype, covers, count, size = unpack_head(blob, pos)
            if rdtype == RRSIG:
                sig_at[covers] = (pos + 10, count, size)
            else:
                rrsets[rdtype] = _rrset_at(blob, pos + 10, rdtype, 0, count, size)
            pos += 10 + size
        self.rrsets, self._sig_at = rrsets, sig_at
        self._sigs: dict[int, RRset] = {}

    def sig(self, covered: int) -> RRset | None:
        """The RRSIG RRset covering ``covered``, if any."""
        found = self._sigs.get(covered)
        if found is None:
            at = self._sig_at.get(covered)
            if at is None:
                return None
            found = self._sigs[covered] = _rrset_at(self._blob, at[0], RRSIG, covered, at[1], at[2])
        return found

    @property
    def sigs(self) -> dict[int, RRset]:
        """Every RRSIG RRset of the name by covered type, in blob order."""
        return {covered: self.sig(covered) for covered in self._sig_at}  # type: ignore[misc]

    @property
    def name(self) -> dns.name.Name:
        return wirename.name_of_wire(self.wire)


class _Flags:
    """Which index sets a name belongs in, from its RRset keys."""

    __slots__ = ()

    @staticmethod
    def of(keys: Iterable[SetKey]) -> tuple[bool, bool, bool, bool, bool]:
        types = {t for t, _ in keys}
        hashed = NSEC3 in types and not (types - {NSEC3, RRSIG})
        return NSEC in types, NS in types, DNAME in types, hashed, bool(types)


class ZoneData:
    """One served zone (module text). Build with ``ZoneBuilder``; change with ``zonechange``."""

    def __init__(self, origin: dns.name.Name, blobs: dict[bytes, bytes], hashed: dict[bytes, bytes],
                 spelled: dict[bytes, bytes], nsec_owners: Iterable[bytes], cuts: set[bytes],
                 dnames: set[bytes], *, presorted: list[bytes] | None = None):
        if not origin.is_absolute():
            raise ValueError("zone has no absolute origin")
        self.origin = origin
        self.apex = wirename.key_of(origin)
        self.apex_wire = origin.to_wire()
        self.depth = wirename.label_count(self.apex)
        self.blobs = blobs
        self.hashed = hashed
        self.spelled = spelled
        self.names = SortedList(presorted if presorted is not None else blobs)
        self.nsec_names = SortedList(nsec_owners)
        self.cuts = cuts
        self.dnames = dnames
        self.source: object | None = None  # the dnspython Zone this was made from, if any
        self.nsec3 = None
        self.refresh_apex()

    # --- apex-derived state -------------------------------------------------------------------

    def refresh_apex(self) -> None:
        """Recompute what depends on the apex RRsets (SOA for negative answers, NSEC3PARAM)."""
        apex = self.node(self.apex)
        if apex is None or SOA not in apex.rrsets:
            raise ValueError(f"zone {self.origin} has no SOA at its apex")
        soa = apex.rrsets[SOA]
        minimum = _TTL.unpack_from(soa.chunks[0], len(soa.chunks[0]) - 4)[0]
        # Negative answers are cached for min(SOA TTL, SOA MINIMUM) (RFC 2308 §3, RFC 4035 §3.1.3).
        self.negative_ttl = min(soa.ttl, minimum)
        self.negative_soa = soa.with_ttl(self.negative_ttl)
        sig = apex.sig(SOA)
        self.negative_soa_sig = sig.with_ttl(self.negative_ttl) if sig is not None else None
        self.signed = NSEC in apex.rrsets or DNSKEY in apex.rrsets
        from .nsec3 import Nsec3Chain  # nsec3 imports this module's names
        param = apex.rrsets.get(NSEC3PARAM)
        current = self.nsec3.params if self.nsec3 is not None else None
        chain = Nsec3Chain.for_zone(self, param) if param is not None else None
        if chain is None or current != chain.params or self.nsec3 is None:
            self.nsec3 = chain

    # --- names --------------------------------------------------------------------------------

    def key(self, name: dns.name.Name) -> bytes:
        return wirename.key_of_labels(name.labels)

    def owner_wire(self, key: bytes) -> bytes:
        """The name as spelled in the zone (case kept), uncompressed."""
        wire = self.spelled.get(key)
        return wire if wire is not None else wirename.wire_of_key(key)

    def node(self, key: bytes) -> Node | None:
        blob = self.blobs.get(key)
        if blob is None:
            return None
        return Node(key, self.owner_wire(key), blob)

    def hashed_node(self, key: bytes) -> Node | None:
        blob = self.hashed.get(key)
        return None if blob is None else Node(key, self.owner_wire(key), blob)

    def exists_key(self, key: bytes) -> bool:
        """Whether the name owns data or is an empty non-terminal (a prefix of a name's key)."""
        if key in self.blobs:
            return True
        names = self.names
        i = names.bisect_left(key)
        return i < len(names) and names[i].startswith(key)

    def exists(self, name: dns.name.Name) -> bool:
        return self.exists_key(self.key(name))

    def contains(self, key: bytes) -> bool:
        """Whether the name is at or below the apex."""
        return key.startswith(self.apex)

    def find_cut(self, key: bytes) -> bytes | None:
        """The highest zone cut at or above the name (below the apex), if any."""
        cuts = self.cuts
        if not cuts:
            return None
        for ancestor in reversed(wirename.ancestor_keys(key, self.apex)[:-1]):
            if ancestor in cuts:
                return ancestor
        return None

    def closest_encloser(self, key: bytes) -> bytes:
        """The deepest existing name at or above the name (RFC 4592 §3.3.1)."""
        for ancestor in wirename.ancestor_keys(key, self.apex):
            if self.exists_key(ancestor):
                return ancestor
        return self.apex

    def covering_nsec(self, key: bytes) -> bytes | None:
        """Owner of the NSEC matching or covering the name (its predecessor in canonical order);
        before the first owner only a name outside the zone can be, and the last NSEC wraps."""
        owners = self.nsec_names
        if not owners:
            return None
        i = owners.bisect_right(key) - 1
        return owners[i]

    # --- views kept for callers that think in dnspython names ----------------------------------

    @property
    def zone(self):
        return self.source

    @property
    def nodes(self) -> Mapping[dns.name.Name, Node]:
        return _NodesView(self)

    def __len__(self) -> int:
        return len(self.blobs)


class _NodesView(Mapping):
    """``ZoneData.nodes``: the names with data as dnspython names (for tests and tools)."""

    def __init__(self, zone: ZoneData):
        self._zone = zone

    def __getitem__(self, name: dns.name.Name) -> Node:
        node = self._zone.node(self._zone.key(name))
        if node is None:
            raise KeyError(name)
        return node

    def __iter__(self) -> Iterator[dns.name.Name]:
        for key in self._zone.names:
            yield wirename.name_of_wire(self._zone.owner_wire(key))

    def __len__(self) -> int:
        return len(self._zone.blobs)


# Kinds of a name (``ZoneBuilder.kinds``): the indexes it belongs in.
K_NSEC, K_NS, K_DNAME, K_HASHED = 1, 2, 4, 8
_ONE = struct.Struct("!HHHIHHIH").pack  # RRSET_HEAD + RR_HEAD of an RRset of one record


def kind_of(keys: Iterable[SetKey]) -> int:
    """``K_*`` bits of a name from its RRset keys (hashed: NSEC3 and its RRSIGs only)."""
    kind = 0
    nsec3 = other = False
    for rdtype, _ in keys:
        if rdtype == NSEC:
            kind |= K_NSEC
        elif rdtype == NS:
            kind |= K_NS
        elif rdtype == DNAME:
            kind |= K_DNAME
        elif rdtype == NSEC3:
            nsec3 = True
            continue
        elif rdtype == RRSIG:
            continue
        other = True
    if nsec3 and not other:
        kind |= K_HASHED
    return kind


def _merge(sets: Sets, rdtype: int, covers: int, ttl: int, rdata: bytes) -> None:
    """One record into RRsets, as dnspython's reader adds it: smallest TTL, duplicates
    dropped, a singleton type keeps its last record."""
    entry = sets.get((rdtype, covers))
    if entry is None:
        sets[(rdtype, covers)] = [ttl, {rdata: None}]
        return
    if ttl < entry[0]:
        entry[0] = ttl
    if rdtype in _SINGLETONS:
        entry[1] = {rdata: None}
    else:
        entry[1][rdata] = None


def encode_run(records: list) -> tuple[bytes, int]:
    """The blob and ``K_*`` kind of one name from its records (type, covered, ttl, rdata,
    ...) in file order, merged as ``_merge`` does; the common shape (each RRset one record,
    as most of a signed zone is) is packed without building RRsets first."""
    groups: dict[int, list] = {}
    for rec in records:
        rdtype, covers, ttl, rdata = rec[0], rec[1], rec[2], rec[3]
        k = (rdtype << 16) | covers
        g = groups.get(k)
        if g is None:
            groups[k] = [ttl, rdata, None]
        else:
            if ttl < g[0]:
                g[0] = ttl
            if rdtype in _SINGLETONS:
                g[1], g[2] = rdata, None
            elif g[2] is None:
                if g[1] != rdata:
                    g[2] = {g[1]: None, rdata: None}
            else:
                g[2][rdata] = None
    out = []
    kind = 0
    nsec3 = other = False
    for k, (ttl, rdata, many) in groups.items():
        rdtype = k >> 16
        if many is None:
            size = len(rdata)
            out.append(_ONE(rdtype, k & 0xFFFF, 1, 10 + size, rdtype, IN, ttl, size))
            out.append(rdata)
        else:
            head = struct.pack("!HHI", rdtype, IN, ttl)
            body = b"".join([head + _RDLEN.pack(len(rd)) + rd for rd in many])
            out.append(RRSET_HEAD.pack(rdtype, k & 0xFFFF, len(many), len(body)))
            out.append(body)
        if rdtype == NSEC:
            kind |= K_NSEC
        elif rdtype == NS:
            kind |= K_NS
        elif rdtype == DNAME:
            kind |= K_DNAME
        elif rdtype == NSEC3:
            nsec3 = True
            continue
        elif rdtype == RRSIG:
            continue
        other = True
    if nsec3 and not other:
        kind |= K_HASHED
    return b"".join(out), kind


class ZoneBuilder:
    """Collects records (owner, type, TTL, RDATA in wire form) into a ``ZoneData``.

    Records of one owner usually come together (every signer writes a name's records in one
    run): ``add_run`` takes such a run and encodes it at once; ``add`` takes one record at a
    time and encodes a name when the next owner starts. An owner seen again later (Knot writes
    signatures and the NSEC chain in sections of their own; a file read in ranges by several
    workers, ``merge``) is decoded and merged. Merging follows dnspython's reader: an RRset's
    TTL is the smallest given, duplicate records are dropped, a singleton type (SOA, CNAME, ...)
    keeps its last record. ``kinds`` says, per name, which indexes it belongs in.
    """

    def __init__(self, origin: dns.name.Name):
        self.origin = origin
        self.apex = wirename.key_of(origin)
        self.blobs: dict[bytes, bytes] = {}
        self.kinds: dict[bytes, int] = {}
        self.spelled: dict[bytes, bytes] = {}
        self.order_sorted = True
        self.first_key: bytes | None = None
        self._last_key: bytes | None = None
        self._key: bytes | None = None
        self._sets: Sets = {}
        self.records = 0

    def _spelling(self, key: bytes, wire: bytes) -> None:
        if key not in self.spelled:
            lower = wire.lower()
            if lower != wire:
                self.spelled[key] = wire

    def _order(self, key: bytes) -> None:
        last = self._last_key
        if last is None:
            self.first_key = key
        elif key <= last:
            self.order_sorted = False
        self._last_key = key

    def add(self, key: bytes, wire: bytes, rdtype: int, covers: int, ttl: int, rdata: bytes) -> None:
        if key != self._key:
            self._flush()
            self._key = key
            blob = self.blobs.get(key)
            self._sets = decode_sets(blob) if blob is not None else {}
            if blob is None:
                self._spelling(key, wire)
        self.records += 1
        _merge(self._sets, rdtype, covers, ttl, rdata)

    def add_run(self, key: bytes, wire: bytes, records: list) -> None:
        """Records of one owner, (type, covered, ttl, rdata, ...) each, in file order."""
        if self._key is not None:
            self._flush()
        self.records += len(records)
        old = self.blobs.get(key)
        if old is None:
            self._spelling(key, wire)
            blob, kind = encode_run(records)
        else:
            sets = decode_sets(old)
            for rec in records:
                _merge(sets, rec[0], rec[1], rec[2], rec[3])
            blob, kind = encode(sets), kind_of(sets)
        self.blobs[key] = blob
        self.kinds[key] = kind
        self._order(key)

    def _flush(self) -> None:
        key = self._key
        if key is None:
            return
        self.blobs[key] = encode(self._sets)
        self.kinds[key] = kind_of(self._sets)
        self._order(key)
        self._key = None

    def merge(self, blobs: dict[bytes, bytes], kinds: dict[bytes, int], spelled: dict[bytes, bytes],
              order_sorted: bool, first_key: bytes | None, last_key: bytes | None, records: int) -> None:
        """What another builder collected from the part of the file after this one's."""
        self._flush()
        mine = self.blobs
        for key in mine.keys() & blobs.keys():
            sets = decode_sets(mine[key])
            for (rdtype, covers), (ttl, rdatas) in decode_sets(blobs[key]).items():
                for rdata in rdatas:
                    _merge(sets, rdtype, covers, ttl, rdata)
            blobs[key] = encode(sets)
            kinds[key] = kind_of(sets)
        for key, wire in spelled.items():
            if key not in mine and key not in self.spelled:
                self.spelled[key] = wire
        if not order_sorted:
            self.order_sorted = False
        if first_key is not None:
            self._order(first_key)
            self._last_key = last_key
        mine.update(blobs)
        self.kinds.update(kinds)
        self.records += records

    def sets_of(self, key: bytes) -> Sets:
        """The RRsets collected so far at one name (for checks before ``finish``)."""
        self._flush()
        blob = self.blobs.get(key)
        return decode_sets(blob) if blob is not None else {}

    def finish(self) -> ZoneData:
        self._flush()
        blobs, kinds, apex = self.blobs, self.kinds, self.apex
        hashed = {key: blobs.pop(key) for key, kind in kinds.items() if kind & K_HASHED}
        nsec = [key for key, kind in kinds.items() if kind & (K_NSEC | K_HASHED) == K_NSEC]
        cuts = {key for key, kind in kinds.items() if kind & (K_NS | K_HASHED) == K_NS}
        cuts.discard(apex)
        dnames = {key for key, kind in kinds.items() if kind & (K_DNAME | K_HASHED) == K_DNAME}
        self.blobs, self.kinds = {}, {}
        order = list(blobs)
        if not self.order_sorted:
            order.sort()
        return ZoneData(self.origin, blobs, hashed, self.spelled, nsec, cuts, dnames,
                        presorted=order)


# Types of which an RRset holds one record (dnspython's reader keeps the last one given).
_SINGLETONS = frozenset(int(t) for t in (dns.rdatatype.SOA, dns.rdatatype.CNAME, dns.rdatatype.DNAME,
                                         dns.rdatatype.NXT, dns.rdatatype.NSEC))
