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
            if rrset.rdtype == rdtype and rrset.covers == covers and rrset.name == name:
                return rrset
        return None

    def sigs(self, section: str, rrset: dns.rrset.RRset):
        return self.find(section, rrset.name, RRSIG, rrset.rdtype)


def _type_of(rrset: dns.rrset.RRset) -> int:
    return rrset.covers if rrset.rdtype == RRSIG else rrset.rdtype


def scrub(response: dns.message.Message, zone: dns.name.Name, qname: dns.name.Name) -> Scrubbed:
    dropped = 0
    # Answer: walk the CNAME chain from qname — and DNAMEs at its ancestors (RFC 6672 §2.2,
    # the name below them is rewritten) — so that unrelated answers cannot ride along.
    qtype = response.question[0].rdtype if response.question else None
    wanted = {qname}
    dnames: set[dns.name.Name] = set()  # owners of the DNAMEs that apply
    for _ in range(len(response.answer) + 1):
        grew = False
        for rrset in response.answer:
            if not rrset.name.is_subdomain(zone):
                continue
            if rrset.rdtype == dns.rdatatype.CNAME and rrset.name in wanted:
                targets = [rrset[0].target]
            elif rrset.rdtype == dns.rdatatype.DNAME and qtype != dns.rdatatype.DNAME and len(rrset):
                targets = []
                for name in list(wanted):
                    if name != rrset.name and name.is_subdomain(rrset.name):
                        dnames.add(rrset.name)
                        try:
                            targets.append(name.relativize(rrset.name).concatenate(rrset[0].target))
                        except dns.name.NameTooLong:
                            pass
            else:
                continue
            for target in targets:
                if target not in wanted:
                    wanted.add(target)
                    grew = True
        if not grew:
            break
    answer = []
    stray = False
    for rrset in response.answer:
        kind = _type_of(rrset)
        if not rrset.name.is_subdomain(zone):
            dropped += 1
        elif kind == dns.rdatatype.DNAME and qtype != dns.rdatatype.DNAME:
            if rrset.name in dnames:
                answer.append(rrset)
            else:
                dropped += 1
        elif rrset.name not in wanted:
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
    nameservers: set[dns.name.Name] = set()
    for rrset in response.authority:
        kind = _type_of(rrset)
        ok = rrset.name.is_subdomain(zone) and kind in _AUTHORITY_TYPES
        if ok and kind == dns.rdatatype.NS:
            # NS for the zone itself or a cut on the way down to qname; never a sibling or parent.
            ok = qname.is_subdomain(rrset.name)
            if ok and rrset.rdtype == dns.rdatatype.NS:
                nameservers.update(rd.target for rd in rrset)
        elif ok and kind == dns.rdatatype.SOA:
            ok = rrset.name == zone
        if ok:
            authority.append(rrset)
        else:
            dropped += 1
            foreign_ns = foreign_ns or rrset.rdtype == dns.rdatatype.NS

    additional = []
    for rrset in response.additional:
        if (_type_of(rrset) in _ADDRESS and rrset.name in nameservers and rrset.name.is_subdomain(zone)):
            additional.append(rrset)
        else:
            dropped += 1

    return Scrubbed(
        rcode=response.rcode(),
        aa=bool(response.flags & dns.flags.AA),
        answer=tuple(answer),
        authority=tuple(authority),
        additional=tuple(additional),
        dropped=dropped,
        stray=stray and not answer,
        foreign_ns=foreign_ns,
    )
