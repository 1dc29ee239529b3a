"""``cid zone verify`` at full speed: the checks of ``signer.verify_zone`` over ``verify_read``'s
lean zone, split by name range across CPU cores.

What is checked, and the problem lines, are those of ``signer.verify_zone_reference`` (the
dnspython implementation, kept as the oracle the tests compare with, line for line and in the
same order): the DNSKEY RRset at the apex signed by its own zone keys; every authoritative
RRset with a currently valid RRSIG for each algorithm that signs the DNSKEY RRset; RRSIGs only
over authoritative data; the NSEC chain in canonical order with exact bitmaps and no NSEC at
names the zone is not authoritative for; NSEC3 chains (``verify_nsec3``) when the apex has an
NSEC3PARAM.

A signature is valid exactly when ``dns.dnssec.validate`` says so (the differential tests check
it on real and fuzzed RRsets): same candidate keys (signer is the apex, algorithm and key tag
match, ZONE flag, protocol 3, REVOKE only over DNSKEY, dnspython's default policy), same time
checks, same wildcard label rules, same signed data (RFC 4034 §3.1.8.1) — built here from the
canonical wire kept per RRset, once per RRset and not once per key — and the same public-key
check (dnspython's algorithm classes; Ed25519 through libsodium with OpenSSL's verdict on
refusal, ``sign_crypto``).

Parallel runs fork workers after the zone is read (``parallel_sign.map_ranges``), so nothing is
pickled on the way in; each returns the problem lines of its range of names, joined in order,
so the output does not depend on the number of workers.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Any

import dns.dnssec
import dns.name
import dns.rdatatype
from cryptography.exceptions import InvalidSignature
from dns.dnssecalgs import get_algorithm_cls_from_dnskey

from . import parallel_sign, sign_crypto, verify_nsec3
from .verify_read import Node, NsecData, RRset, Sig, SigHead, ZoneData, name_wire

RRSIG, NSEC, DNSKEY, DS, NS, DNAME = (dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.DNSKEY,
                                      dns.rdatatype.DS, dns.rdatatype.NS, dns.rdatatype.DNAME)
NSEC3PARAM = dns.rdatatype.NSEC3PARAM
_NONE = dns.rdatatype.NONE
_STRIPPED = frozenset({RRSIG, NSEC, dns.rdatatype.NSEC3, NSEC3PARAM})
_AT_DELEGATION = frozenset({DS, NSEC})
_ZONE_FLAG, _REVOKE_FLAG = 0x0100, 0x0080
_FAIL = "no RRSIGs validated"  # what dns.dnssec.validate raises when no signature validates
PIECES_PER_WORKER = 16  # name ranges per worker: a progress step each, and load balance


class _Abort(Exception):
    """dnspython gives up on this signature (an unsupported algorithm): it does not validate."""


def _key_checker(rd: Any) -> Callable[[bytes, bytes], bool] | None:
    """``check(signature, data)`` for one candidate DNSKEY, as dns.dnssec._validate_signature does
    it; None when dnspython refuses the key ("invalid public key": the next candidate is tried)."""
    try:
        public_cls = get_algorithm_cls_from_dnskey(rd).public_cls
    except dns.dnssec.UnsupportedAlgorithm:
        def unsupported(signature: bytes, data: bytes) -> bool:
            raise _Abort
        return unsupported
    try:
        public = public_cls.from_dnskey(rd)
    except ValueError:
        return None
    except Exception as exc:  # dnspython would raise it when a signature needs this key
        def broken(signature: bytes, data: bytes, exc: Exception = exc) -> bool:
            raise exc
        return broken
    if rd.algorithm == sign_crypto.ED25519:
        return sign_crypto.ed25519_verifier(rd.key, public)
    verify = public.verify

    def check(signature: bytes, data: bytes) -> bool:
        try:
            verify(signature, data)
            return True
        except (InvalidSignature, dns.dnssec.ValidationFailure):
            return False

    return check


class _Keys:
    """The apex DNSKEY RRset as dns.dnssec finds candidate keys in it, per (algorithm, key tag)."""

    def __init__(self, dnskeys: RRset, origin_wire: bytes):
        self.origin_wire = origin_wire
        self.by_tag: dict[tuple[int, int, bool], list[Callable[[bytes, bytes], bool]]] = {}
        policy = dns.dnssec.default_policy
        entries = []
        for rd in dnskeys.items.values():
            if (rd.flags & _ZONE_FLAG) != _ZONE_FLAG or rd.protocol != 3:
                continue
            entries.append((rd, dns.dnssec.key_id(rd)))
        for rd, tag in entries:
            allowed = policy.ok_to_validate(rd)
            checker = _key_checker(rd) if allowed else None
            for covers_dnskey in (False, True):
                if rd.flags & _REVOKE_FLAG and not covers_dnskey:
                    continue
                slot = self.by_tag.setdefault((rd.algorithm, tag, covers_dnskey), [])
                if checker is not None:
                    slot.append(checker)

    def candidates(self, head: SigHead) -> list[Callable[[bytes, bytes], bool]] | None:
        if not head.signer_absolute or head.signer != self.origin_wire:
            return None  # "unknown key": the keyring holds the apex only
        return self.by_tag.get((head.algorithm, head.key_tag, head.covered == DNSKEY), [])


class _Checker:
    """Signature checks over one zone (read-only: shared by forked workers)."""

    def __init__(self, data: ZoneData, keys: _Keys, now: float):
        self.data = data
        self.keys = keys
        self.now = now
        self.rdclass = data.rdclass

    def sig_valid(self, node: Node, owner: bytes, rdtype: int, rs: RRset, sig: Sig,
                  bodies: dict[tuple[int, int], bytes | None]) -> bool:
        head, signature = sig
        candidates = self.keys.candidates(head)
        if candidates is None:
            return False
        now = self.now
        if head.expiration < now or head.inception > now:
            return False
        slot = (head.labels, head.original_ttl)
        body = bodies.get(slot, b"")
        if body == b"":
            body = bodies[slot] = self._body(node, owner, rdtype, rs, head)
        if body is None:
            return False
        data = head.wire + body
        try:
            for check in candidates:
                if check(signature, data):
                    return True
        except _Abort:
            return False
        return False

    def _body(self, node: Node, owner: bytes, rdtype: int, rs: RRset, head: SigHead) -> bytes | None:
        """The RRset as RFC 4034 §3.1.8.1 signs it under this RRSIG's labels and original TTL (None:
        dns.dnssec refuses the labels)."""
        labels = node.labels
        count = len(labels)
        if labels[0] == b"*" and head.labels != count - 2:
            return None  # wild owner name has wrong label length
        if count - 1 < head.labels:
            return None  # owner name longer than RRSIG labels
        if head.labels < count - 1:
            owner = name_wire((b"*", *labels[count - 1 - head.labels:])).lower()
        fixed = owner + struct.pack("!HHI", rdtype, self.rdclass, head.original_ttl)
        return b"".join([fixed + struct.pack("!H", len(w)) + w for w in sorted(rs.items)])

    def valid(self, node: Node, owner: bytes, rdtype: int, rs: RRset, sigs: list[Sig],
              bodies: dict[tuple[int, int], bytes | None]) -> str | None:
        for sig in sigs:
            if self.sig_valid(node, owner, rdtype, rs, sig, bodies):
                return None
        return _explain(sigs, self.now) or _FAIL


def _explain(sigs: list[Sig], now: float) -> str | None:
    """A precise reason when every signature fails for the same time-related cause."""
    heads = [head for head, _ in sigs]
    if heads and all(h.expiration < now for h in heads):
        return f"signature expired at {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(max(h.expiration for h in heads)))} UTC"
    if heads and all(h.inception > now for h in heads):
        return f"signature not valid until {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(min(h.inception for h in heads)))} UTC"
    return None


def canonical_key(labels: tuple[bytes, ...]) -> tuple[bytes, ...]:
    return tuple([label.lower() for label in reversed(labels)])


def canonical_order(data: ZoneData) -> list[tuple[Any, bytes, Node]]:
    """(canonical key, folded owner, node) for every node, in DNSSEC canonical order."""
    if data.plain:
        # Plain names (the text reader's): the folded owner is the lower-cased labels joined by
        # dots, none inside a label; joined root first with NUL (below every label octet), they
        # sort as canonical_key does, as one bytes string each.
        entries = [(b"\0".join(key.split(b".")[::-1]) if key != b"." else b"", key, node)
                   for key, node in data.nodes.items()]
    else:
        entries = [(canonical_key(node.labels), key, node) for key, node in data.nodes.items()]
    entries.sort(key=_first)
    return entries


def _first(entry: tuple[Any, ...]) -> Any:
    return entry[0]


def authoritative(data: ZoneData, order: list[tuple[Any, bytes, Node]] | None = None
                  ) -> list[tuple[bytes, Node, bool]]:
    """(folded owner, node, is_delegation) for every name the zone is authoritative for, in
    DNSSEC canonical order (as signer.authoritative_names); ``order``: canonical_order(data)."""
    if order is None:
        order = canonical_order(data)
    origin = data.origin_folded
    plain = data.plain
    result = []
    cut: Any = None
    for ckey, key, node in order:
        if cut is not None:
            if plain:
                if ckey.startswith(cut):
                    continue  # glue or occluded data below a zone cut or DNAME
            elif len(ckey) > len(cut) and ckey[:len(cut)] == cut:
                continue
        cut = None
        if not node.sets:
            continue
        delegation = (NS, _NONE) in node.sets and key != origin
        if delegation or (DNAME, _NONE) in node.sets:
            cut = ckey + b"\0" if plain else ckey
        result.append((key, node, delegation))
    return result


_NSEC_TYPES: dict[tuple[Any, ...], list[int]] = {}


def _nsec_types(node: Node, delegation: bool) -> list[int]:
    """The types an NSEC at ``node`` lists (as signer._nsec_types); do not modify the list."""
    shape = (delegation, *node.sets)
    types = _NSEC_TYPES.get(shape)
    if types is None:
        types = _nsec_types_of(node, delegation)
        if len(_NSEC_TYPES) < 4096:
            _NSEC_TYPES[shape] = types
    return types


def _nsec_types_of(node: Node, delegation: bool) -> list[int]:
    types = {RRSIG, NSEC}
    for rdtype, _ in node.sets:
        if rdtype in _STRIPPED:
            continue
        if delegation and rdtype not in (NS, DS):
            continue
        types.add(rdtype)
    return sorted(types)


def _type_text(rdtype: int) -> str:
    return dns.rdatatype.to_text(rdtype)


def _check_names(checker: _Checker, names: list[tuple[bytes, Node, bool]], algorithms: list[int],
                 check_nsec: bool, lo: int, hi: int) -> list[str]:
    """The problem lines of names[lo:hi], in order."""
    origin_text = None
    problems: list[str] = []
    add = problems.append
    count = len(names)
    for i in range(lo, hi):
        key, node, delegation = names[i]
        name = node.text
        sets = node.sets
        owner = None
        covered = set()
        for (rdtype, covers), rs in sets.items():
            if rdtype == RRSIG or (delegation and rdtype not in _AT_DELEGATION):
                continue
            covered.add(rdtype)
            sig_rs = sets.get((RRSIG, rdtype))
            if sig_rs is None or not sig_rs.items:
                add(f"{name} {_type_text(rdtype)}: no RRSIG")
                continue
            sigs = list(sig_rs.items.values())
            if owner is None:
                owner = name_wire(node.labels).lower()
            bodies: dict[tuple[int, int], bytes | None] = {}
            for algorithm in algorithms:
                of_alg = [s for s in sigs if s[0].algorithm == algorithm]
                why = checker.valid(node, owner, rdtype, rs, of_alg, bodies) if of_alg else "no signature"
                if why is not None:
                    add(f"{name} {_type_text(rdtype)}: algorithm {algorithm}: {why}")
        for rdtype, covers in sets:
            if rdtype == RRSIG and covers not in covered:
                add(f"{name} RRSIG: covers {_type_text(covers)}, which is absent or not authoritative here")
        if not check_nsec:
            continue
        nsec = sets.get((NSEC, _NONE))
        if i + 1 < count:
            following_node = names[i + 1][1]
            following, following_key = following_node.text, names[i + 1][0]
        else:
            if origin_text is None:
                origin_text = checker.data.origin.to_text()
            following, following_key = origin_text, checker.data.origin_folded
        if nsec is None or len(nsec.items) != 1:
            add(f"{name} NSEC: {'missing' if nsec is None else 'more than one'}")
            continue
        rd: NsecData = next(iter(nsec.items.values()))
        if rd.next_folded != following_key:
            add(f"{name} NSEC: next is {rd.next_text}, expected {following}")
        present = sorted(rd.types)
        expected = _nsec_types(node, delegation)
        if present != expected:
            shown = " ".join(_type_text(t) for t in present)
            want = " ".join(_type_text(t) for t in expected)
            add(f"{name} NSEC: bitmap [{shown}] does not match types present [{want}]")
    return problems


def verify(data: ZoneData, now: float | None = None, workers: int | None = 1,
           progress: Callable[[int], None] | None = None, total: Callable[[int], None] | None = None) -> list[str]:
    """The problems of ``data`` (module text); an empty list means valid.

    ``workers``: processes (None: one per CPU for zones big enough to gain from it).
    ``total(n)`` is called once with the number of names to check and ``progress(k)`` as each
    range of ``k`` names is done (a progress bar's ``reset``/``update``).
    """
    with parallel_sign.no_gc():
        return _verify(data, now, workers, progress, total)


def _verify(data: ZoneData, now: float | None, workers: int | None, progress: Callable[[int], None] | None,
            total: Callable[[int], None] | None) -> list[str]:
    now = time.time() if now is None else now
    origin = data.origin
    origin_key = data.origin_folded
    apex = data.nodes.get(origin_key)
    dnskeys = apex.sets.get((DNSKEY, _NONE)) if apex is not None else None
    if dnskeys is None:
        return [f"{origin} DNSKEY: missing at the zone apex"]
    keys = _Keys(dnskeys, name_wire(origin.labels).lower())
    checker = _Checker(data, keys, now)
    sig_rs = apex.sets.get((RRSIG, DNSKEY))
    dnskey_sigs: list[Sig] = list(sig_rs.items.values()) if sig_rs is not None else []
    apex_owner = name_wire(apex.labels).lower()
    bodies: dict[tuple[int, int], bytes | None] = {}
    algorithms = sorted({s[0].algorithm for s in dnskey_sigs
                         if checker.valid(apex, apex_owner, DNSKEY, dnskeys, [s], bodies) is None})
    if not algorithms:
        why = _explain(dnskey_sigs, now) or "not signed by any of its own zone keys"
        return [f"{origin} DNSKEY: {why}"]

    names = authoritative(data)
    nsec3 = (NSEC3PARAM, _NONE) in apex.sets
    check_nsec = not nsec3 or (NSEC, _NONE) in apex.sets
    if total is not None:
        total(len(names))

    def task(lo: int, hi: int) -> list[str]:
        return _check_names(checker, names, algorithms, check_nsec, lo, hi)

    if workers is None:
        signatures = sum(len(rs.items) for _, node, _ in names for (t, _), rs in node.sets.items() if t == RRSIG)
        workers = parallel_sign.default_workers() if signatures >= parallel_sign.PARALLEL_THRESHOLD else 1
    count = max(1, min(workers, len(names)))
    problems: list[str] = []
    for part in parallel_sign.map_ranges(task, len(names), count, progress=progress,
                                         pieces=max(count, 1) * PIECES_PER_WORKER):
        problems += part
    auth_keys = {key for key, _, _ in names}
    for key, node in data.nodes.items():
        if key not in auth_keys and (NSEC, _NONE) in node.sets:
            problems.append(f"{node.text} NSEC: at a name the zone is not authoritative for")
    if nsec3:
        view = data.zone if data.zone is not None else ZoneView(data)
        problems += verify_nsec3.verify_nsec3(view, _view_names(view, names, data))
    return problems


def _view_names(view: Any, names: list[tuple[bytes, Node, bool]], data: ZoneData):
    """``names`` as ``verify_nsec3`` takes them: (key into view.nodes, absolute name, delegation)."""
    if view is data.zone:
        zone = data.zone
        result = []
        for key, _, delegation in names:
            node_key = data.zone_keys[key]
            result.append((node_key, node_key.derelativize(zone.origin) if zone.relativize else node_key, delegation))
        return result
    return [(view.name_of[key], view.name_of[key], delegation) for key, _, delegation in names]


class _RdatasetView(list):
    """A list of a node's rdata, with the rdataset attributes ``verify_nsec3`` reads."""

    def __init__(self, rdtype: int, covers: int, ttl: int, items):
        super().__init__(items)
        self.rdtype = rdtype
        self.covers = covers
        self.ttl = ttl


class _NodeView:
    __slots__ = ("rdatasets",)

    def __init__(self, node: Node):
        self.rdatasets = [_RdatasetView(rdtype, covers, rs.ttl, rs.items.values())
                          for (rdtype, covers), rs in node.sets.items()]

    def get_rdataset(self, rdclass: int, rdtype: int, covers: int = _NONE):
        for rds in self.rdatasets:
            if rds.rdtype == rdtype and rds.covers == covers:
                return rds
        return None


class ZoneView:
    """The parts of a dnspython zone's interface ``verify_nsec3`` uses, over a ``ZoneData`` (built
    only for NSEC3 zones: one dns.name.Name per node)."""

    def __init__(self, data: ZoneData):
        self.origin = data.origin
        self.rdclass = data.rdclass
        self.relativize = False
        self.name_of: dict[bytes, dns.name.Name] = {}
        self.nodes: dict[dns.name.Name, _NodeView] = {}
        for key, node in data.nodes.items():
            name = dns.name.Name(node.labels)
            self.name_of[key] = name
            self.nodes[name] = _NodeView(node)
        self._apex = self.nodes.get(self.name_of.get(data.origin_folded))

    def get_rdataset(self, name: dns.name.Name, rdtype: int, covers: int = _NONE):
        node = self.nodes.get(name)
        return None if node is None else node.get_rdataset(self.rdclass, rdtype, covers)


def read_file(path: str, origin: dns.name.Name | None = None, progress: Any = None) -> ZoneData:
    """The zone in a master file, read straight into ``ZoneData`` when it is a plain file
    (``verify_read.read_text``), else loaded by ``zonefile.load_zone`` (which raises
    ZoneFileError for a bad file, as for every other command). ``progress``: None, or an object
    with ``stage(name, unit, total=None)`` and ``advance(n)`` (the CLI's progress bar)."""
    from . import verify_read, zonefile
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        text = None  # load_zone says what is wrong with it
    if text is not None:
        if progress is not None:
            progress.stage("read", "lines", text.count("\n") + 1)
        data = verify_read.read_text(text, origin, progress.advance if progress is not None else None)
        if data is not None:
            return data
        del text
    if progress is not None:
        progress.stage("load (dnspython reader)", None)
    return verify_read.from_zone(zonefile.load_zone(path, origin))
