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

from resolver.engine import wire_reader
from resolver.nametext import lower_name

_QR = int(dns.flags.QR)  # header flag tests on ints: Flag's & is an enum call

_new, _set = object.__new__, object.__setattr__  # how dnspython's immutable objects take fields


class Match(enum.Enum):
    EXACT = "exact"        # ID, QR and question byte for byte: usable
    CASE = "case"          # same question but different letter case: a spoof or a non-echoing server
    NO_QUESTION = "no-question"  # an error rcode without a question section (FORMERR/NOTIMP of old servers)
    MISMATCH = "mismatch"  # another query's answer, or garbage: ignore


# Error rcodes that old servers send with an empty question section. They carry no data, so
# accepting them can at worst make us try another server or drop EDNS for one (see engine).
_BARE_ERRORS = (dns.rcode.FORMERR, dns.rcode.NOTIMP, dns.rcode.SERVFAIL, dns.rcode.REFUSED)


# 0x20 at each ASCII letter (either case), 0 elsewhere: which bits 0x20 randomisation may flip.
_LETTER_BITS = bytes(0x20 if 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A else 0 for b in range(256))


def randomise(name: dns.name.Name, rng: random.Random) -> dns.name.Name:
    """``name`` in lower case with each ASCII letter upper-cased with probability 1/2: the
    lowered labels XOR (letter mask AND random bytes), done on whole labels as integers, so
    one draw from the random source serves the whole name."""
    labels = name.labels
    noise = rng.randbytes(sum(map(len, labels)))
    out = []
    at = 0
    for label in labels:
        n = len(label)
        if not n:
            out.append(label)
            continue
        lowered = label.lower()
        flip = int.from_bytes(lowered.translate(_LETTER_BITS), "big") & int.from_bytes(noise[at:at + n], "big")
        out.append((int.from_bytes(lowered, "big") ^ flip).to_bytes(n, "big"))
        at += n
    # The labels of a valid Name, lengths unchanged: nothing for Name() to check again.
    randomised = _new(dns.name.Name)
    _set(randomised, "labels", tuple(out))
    return randomised


def same_case(a: dns.name.Name, b: dns.name.Name) -> bool:
    """Byte-for-byte equality (dnspython's ``==`` ignores case)."""
    return a.labels == b.labels


def match(query: dns.message.Message, response: dns.message.Message) -> Match:
    if response.id != query.id or not int(response.flags) & _QR:
        return Match.MISMATCH
    if not response.question:
        # Old servers send bare errors without a question; any other reply without one is a
        # broken server: the try failed, at once (waiting for a timeout helps nobody). Its
        # data is never used (upstream._ask), so a spoofer gains nothing by leaving it out.
        return Match.NO_QUESTION
    asked, echoed = query.question, response.question
    if len(asked) == 1 == len(echoed):
        # One empty question each (ours, and a parsed reply's): RRset == compares name (ignoring
        # case), class, type and covers; equal labels settle the name at once (and say EXACT).
        q, r = asked[0], echoed[0]
        if (q.rdtype == r.rdtype and q.rdclass == r.rdclass and q.covers == r.covers and not q and not r
                and q.name.labels == r.name.labels):
            return Match.EXACT
    if echoed != asked:  # name (ignoring case), type and class
        return Match.MISMATCH
    if not same_case(response.question[0].name, query.question[0].name):
        return Match.CASE
    return Match.EXACT


def exact_echo(query_wire: bytes, data: bytes) -> bool:
    """Whether ``data``, a reply to the query sent as ``query_wire``, is what ``match`` calls
    EXACT on its header and question bytes alone: same ID, QR set, one question, name (0x20
    case included), type and class byte for byte. A True here saves comparing the parsed
    question; False says nothing (``match`` then judges the parsed reply)."""
    end = _qname_end(query_wire)
    return (end != 0 and data[:2] == query_wire[:2] and len(data) > 2 and data[2] & 0x80 != 0
            and data[4:6] == b"\x00\x01" and data[12:end + 4] == query_wire[12:end + 4] and len(data) >= end + 4)


def parse_reply(data: bytes, query: dns.message.Message, query_wire: bytes) -> dns.message.Message:
    """Parse a reply to ``query`` (sent as ``query_wire``). When it echoes the question byte for
    byte — 0x20 case included, which is the check itself — it is parsed with that name in lower
    case, so that every name compressed against the question (owners, and CNAME, NS, SOA, SVCB
    names inside RDATA) comes out as the zone spells it rather than in our random case, which
    users would otherwise see; the query's own question is then put back, so ``match`` still
    sees the exact echo. Anything else is parsed as it came (``match`` judges it)."""
    end = _qname_end(query_wire)
    # One question (QDCOUNT 1), and name, type and class exactly as sent.
    if end and data[4:6] == b"\x00\x01" and data[12:end + 4] == query_wire[12:end + 4]:
        lowered = data[12:end].lower()  # ASCII letters only; label length octets (< 64) stay
        if lowered != data[12:end]:
            response = wire_reader.read(data[:12] + lowered + data[end:])
            response.question = [dns.rrset.RRset(q.name, q.rdclass, q.rdtype) for q in query.question]
            return response
    return wire_reader.read(data)


def _qname_end(query_wire: bytes) -> int:
    """Offset just past the question name of a query we built (0 if it has no question)."""
    if len(query_wire) < 17 or query_wire[4:6] != b"\x00\x01":
        return 0
    pos = 12
    while pos < len(query_wire) and query_wire[pos]:
        pos += 1 + query_wire[pos]
    return pos + 1 if pos < len(query_wire) else 0


def canonicalise_owners(response: dns.message.Message) -> dns.message.Message:
    """Lower-case every owner name in place (servers copy the question's random case into
    owners compressed against it). RDATA names are left alone: every comparison of them is
    case-insensitive and RRSIG verification canonicalises them (RFC 4034 §6.2). The question
    is left as asked and echoed (``match`` has judged it; nothing reads its case after)."""
    for section in (response.answer, response.authority, response.additional):
        for rrset in section:
            name = rrset.name
            lowered = lower_name(name)  # usually already lower case (parse_reply): the same Name
            if lowered is not name:
                rrset.name = lowered
    return response
