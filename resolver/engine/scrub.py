"""The scrubber: clean a response before anything else looks at it (Unbound iter_scrub.c).

A server is trusted only for names inside the zone we asked it about (its bailiwick).
Everything else is removed here, so cache poisoning by out-of-bailiwick data (Kaminsky-style
glue, unrelated answers, NS hijacks of a parent) cannot reach the cache:

* answer: only the query name and the CNAME chain from it (with the DNAMEs that rewrite
  it), inside the bailiwick, and of the type asked (or CNAME);
* authority: NS only for the zone itself or a child on the path to the query name; SOA only at
  the zone apex; DS, NSEC, NSEC3 and RRSIG only inside the bailiwick; anything else dropped;
* additional: only A/AAAA of name servers named in the kept NS records, inside the bailiwick.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.rdatatype
import dns.rrset

from ..nametext import same_name
from . import wire_reader

_AA = int(dns.flags.AA)  # header flag tests on ints: Flag's & is an enum call

RRSIG = dns.rdatatype.RRSIG
_ADDRESS = (dns.rdatatype.A, dns.rdatatype.AAAA)
_AUTHORITY_TYPES = (dns.rdatatype.NS, dns.rdatatype.SOA, dns.rdatatype.DS, dns.rdatatype.NSEC, dns.rdatatype.NSEC3)


@dataclass(frozen=True)
class Scrubbed:
    rcode: int
    aa: bool
    answer: tuple[dns.rrset.RRset, ...]
    authority: tuple[dns.rrset.RRset, ...]
    additional: tuple[dns.rrset.RRset, ...]
    dropped: int  # how many RRsets were removed (for the trace/debugging)
    stray: bool = False  # the answer held RRsets at the name, none of the type asked (all removed)
    foreign_ns: bool = False  # the authority held NS RRsets for other zones (upward, sideways): removed

    def find(self, section: str, name: dns.name.Name, rdtype: int, covers: int = 0):
        for rrset in getattr(self, section):
            if rrset.rdtype == rdtype and rrset.covers == covers and same_name(rrset.name, name):
                return rrset
        return None

    def sigs(self, section: str, rrset: dns.rrset.RRset):
        return self.find(section, rrset.name, RRSIG, rrset.rdtype)


def _type_of(rrset: dns.rrset.RRset) -> int:
    return rrset.covers if rrset.rdtype == RRSIG else rrset.rdtype


def folded(name: dns.name.Name) -> tuple[bytes, ...]:
    """The name's labels case-folded as dnspython compares them (bytes.lower: ASCII only, RFC
    4343). Two names are equal iff their folded tuples are: the tuple hashes and compares in C,
    where Name.__eq__/__hash__ lower every label again on each use."""
    return tuple([label.lower() for label in name.labels])


def within(name: tuple[bytes, ...], zone: tuple[bytes, ...]) -> bool:
    """dns.name.Name.is_subdomain (equality included) on folded labels: zone's labels are the
    tail of name's. The empty (relative) zone contains only relative names, as in dnspython."""
    n = len(zone)
    if not n:
        return not name or name[-1] != b""
    return n <= len(name) and name[len(name) - n:] == zone


def scrub(response: dns.message.Message, zone: dns.name.Name, qname: dns.name.Name) -> Scrubbed:
    dropped = 0
    # Each owner name is folded once: the CNAME walk below may revisit every answer RRset, and
    # each RRset is tested against the zone and the name sets (profiled: issue 11).
    zkey = folded(zone)
    qkey = folded(qname)
    answers = [(rrset, folded(rrset.name)) for rrset in response.answer]
    # Answer: walk the CNAME chain from qname — and DNAMEs at its ancestors (RFC 6672 §2.2,
    # the name below them is rewritten) — so that unrelated answers cannot ride along.
    qtype = response.question[0].rdtype if response.question else None
    wanted = {qkey: qname}
    dnames: set[tuple[bytes, ...]] = set()  # owners of the DNAMEs that apply
    for _ in range(len(answers) + 1):
        grew = False
        for rrset, key in answers:
            if not within(key, zkey):
                continue
            if rrset.rdtype == dns.rdatatype.CNAME and key in wanted:
                targets = [rrset[0].target]
            elif rrset.rdtype == dns.rdatatype.DNAME and qtype != dns.rdatatype.DNAME and len(rrset):
                targets = []
                for wkey, name in list(wanted.items()):
                    if wkey != key and within(wkey, key):
                        dnames.add(key)
                        try:
                            targets.append(name.relativize(rrset.name).concatenate(rrset[0].target))
                        except dns.name.NameTooLong:
                            pass
            else:
                continue
            for target in targets:
                tkey = folded(target)
                if tkey not in wanted:
                    wanted[tkey] = target
                    grew = True
        if not grew:
            break
    answer = []
    stray = False
    for rrset, key in answers:
        kind = _type_of(rrset)
        if not within(key, zkey):
            dropped += 1
        elif kind == dns.rdatatype.DNAME and qtype != dns.rdatatype.DNAME:
            if key in dnames:
                answer.append(rrset)
            else:
                dropped += 1
        elif key not in wanted:
            dropped += 1
        elif kind not in (qtype, dns.rdatatype.CNAME) and qtype != dns.rdatatype.ANY:
            # An RRset of another type than asked (an A for an AAAA question): not an answer,
            # and never cached — a server may not slip in data nobody asked for.
            dropped += 1
            stray = True
        else:
            answer.append(rrset)

    authority = []
    foreign_ns = False
    nameservers: set[tuple[bytes, ...]] = set()
    for rrset in response.authority:
        kind = _type_of(rrset)
        key = folded(rrset.name)
        ok = within(key, zkey) and kind in _AUTHORITY_TYPES
        if ok and kind == dns.rdatatype.NS:
            # NS for the zone itself or a cut on the way down to qname; never a sibling or parent.
            ok = within(qkey, key)
            if ok and rrset.rdtype == dns.rdatatype.NS:
                nameservers.update(folded(rd.target) for rd in rrset)
        elif ok and kind == dns.rdatatype.SOA:
            ok = key == zkey
        if ok:
            authority.append(rrset)
        else:
            dropped += 1
            foreign_ns = foreign_ns or rrset.rdtype == dns.rdatatype.NS

    additional = []
    for rrset in response.additional:
        key = folded(rrset.name)
        if _type_of(rrset) in _ADDRESS and key in nameservers and within(key, zkey):
            additional.append(rrset)
        else:
            dropped += 1

    return Scrubbed(
        rcode=wire_reader.rcode(response),
        aa=bool(int(response.flags) & _AA),
        answer=tuple(answer),
        authority=tuple(authority),
        additional=tuple(additional),
        dropped=dropped,
        stray=stray and not answer,
        foreign_ns=foreign_ns,
    )
