"""Query/response matching and 0x20 case randomisation (draft-vixie-dnsext-dns0x20).

A response is taken for a query only if it comes from the address and port asked (the
driver and ``Engine.on_response`` check that), carries the query's ID and QR, and repeats
the question. With 0x20 the question's letters are upper- or lower-cased at random, so a
blind spoofer must guess one more bit per letter besides the 16-bit ID and the source port
(RFC 5452 §9.3 encourages such extra entropy). Servers echo the question byte for byte, so
the case must come back exactly; a case-only difference is treated as a spoof and the packet
is ignored. Some servers do not echo case: ``ServerSelection`` remembers them (see
``Engine._exchange``) and they are asked in lower case for a while.

Everything after matching works on canonical (lower-case) owner names: validation and the
cache compare names case-insensitively anyway, and users should not see our random case.
"""

from __future__ import annotations

import enum
import random

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset


class Match(enum.Enum):
    EXACT = "exact"        # ID, QR and question byte for byte: usable
    CASE = "case"          # same question but different letter case: a spoof or a non-echoing server
    NO_QUESTION = "no-question"  # an error rcode without a question section (FORMERR/NOTIMP of old servers)
    MISMATCH = "mismatch"  # another query's answer, or garbage: ignore


# Error rcodes that old servers send with an empty question section. They carry no data, so
# accepting them can at worst make us try another server or drop EDNS for one (see engine).
_BARE_ERRORS = (dns.rcode.FORMERR, dns.rcode.NOTIMP, dns.rcode.SERVFAIL, dns.rcode.REFUSED)


def randomise(name: dns.name.Name, rng: random.Random) -> dns.name.Name:
    """``name`` in lower case with each ASCII letter upper-cased with probability 1/2."""
    labels = []
    for label in name.canonicalize().labels:
        if not label:
            labels.append(label)
            continue
        bits = rng.getrandbits(len(label))
        out = bytearray(label)
        for i, byte in enumerate(out):
            if 0x61 <= byte <= 0x7A and bits >> i & 1:
                out[i] = byte - 0x20
        labels.append(bytes(out))
    return dns.name.Name(labels)


def same_case(a: dns.name.Name, b: dns.name.Name) -> bool:
    """Byte-for-byte equality (dnspython's ``==`` ignores case)."""
    return a.labels == b.labels


def match(query: dns.message.Message, response: dns.message.Message) -> Match:
    if response.id != query.id or not response.flags & dns.flags.QR:
        return Match.MISMATCH
    if not response.question:
        return Match.NO_QUESTION if response.rcode() in _BARE_ERRORS else Match.MISMATCH
    if response.question != query.question:  # name (ignoring case), type and class
        return Match.MISMATCH
    if not same_case(response.question[0].name, query.question[0].name):
        return Match.CASE
    return Match.EXACT


def canonicalise_owners(response: dns.message.Message) -> dns.message.Message:
    """Lower-case every owner name in place (servers copy the question's random case into
    owners compressed against it). RDATA names are left alone: every comparison of them is
    case-insensitive and RRSIG verification canonicalises them (RFC 4034 §6.2)."""
    # The question gets new entries: dnspython's make_response shares them with the query.
    response.question = [dns.rrset.RRset(q.name.canonicalize(), q.rdclass, q.rdtype) for q in response.question]
    for section in (response.answer, response.authority, response.additional):
        for rrset in section:
            name = rrset.name.canonicalize()
            if name.labels != rrset.name.labels:
                rrset.name = name
    return response
