"""A fast reader for the plain master files that large zones are: one record per line.

dnspython's zone reader tokenizes character by character and routes every record through a
transaction; on a 100 000-name zone that is most of the time ``cid zone sign`` takes. This reader
handles the common shape — ``owner [ttl] [IN] type rdata`` on one line, ``$ORIGIN``, ``$TTL``,
``;`` comments — and builds the same zone dnspython's reader would (same nodes, rdatasets in the
same order, same TTL rules: RFC 1035 §5.1 and RFC 2308 §4 as dnspython applies them). Rdata is
parsed by dnspython (``dns.rdata.from_text``), except A and AAAA in canonical form, built from
the address directly.

On anything else — parentheses, quotes, escapes, ``$INCLUDE``/``$GENERATE``, classes other than
IN, names outside the zone, a CNAME beside other data, a repeated singleton type, any rdata
dnspython refuses — it gives up (returns None) and the caller reads the file with dnspython's
reader, which reports errors as ``<path>:<line>: <message>``. So the fast path never decides
whether a file is valid; it only speeds up files that plainly are.
"""

from __future__ import annotations

import re
import socket

import dns.exception
import dns.name
import dns.node
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.ttl
import dns.zone

_IN = dns.rdataclass.IN
_A, _AAAA, _SOA, _CNAME = dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.SOA, dns.rdatatype.CNAME
# Characters whose meaning depends on the tokenizer's state (quotes, multi-line parentheses,
# escapes): a line holding one goes to dnspython.
_TRICKY = re.compile(r'["()\\]|[^\t\x20-\x7e]')
_PLAIN_NAME = re.compile(r"(?:[A-Za-z0-9_*-]{1,63}\.)*[A-Za-z0-9_*-]{1,63}\.?")
_CLASS_WORDS = frozenset({"IN", "CH", "CHAOS", "HS", "HESIOD", "NONE", "ANY", "RESERVED0"})


class _GiveUp(Exception):
    """The line is not one this reader handles; dnspython's reader must read the file."""


def load_text(text: str, origin: dns.name.Name) -> dns.zone.Zone | None:
    """The zone in ``text`` (origin ``origin``, class IN, absolute names), or None to say: use
    dnspython's reader. The zone is not checked for SOA and NS at the apex (the caller does)."""
    try:
        return _Reader(origin).read(text)
    except (_GiveUp, dns.exception.DNSException, ValueError, KeyError, TypeError):
        return None


class _Reader:
    def __init__(self, origin: dns.name.Name):
        self.zone_origin = origin
        self.origin = origin  # $ORIGIN
        self.origin_inside = True
        self.last_name = origin
        self.last_ttl: int | None = None
        self.default_ttl: int | None = None
        self.default_from_soa = False
        self.names: dict[str, dns.name.Name] = {}
        self.rdatasets: dict[tuple[bytes, int, int], dns.rdataset.Rdataset] = {}
        self.nodes: dict[bytes, dns.node.Node] = {}
        self.zone = dns.zone.Zone(origin, _IN, relativize=False)

    def read(self, text: str) -> dns.zone.Zone:
        for line in text.split("\n"):
            comment = None
            if ";" in line:
                line, comment = line.split(";", 1)
            if not line or line.isspace():
                continue
            if _TRICKY.search(line):
                raise _GiveUp
            if line[0] == "$":
                self._directive(line.split())
            else:
                self._record(line, comment)
        for node in self.zone.nodes.values():
            kinds = {dns.node.NodeKind.classify_rdataset(rds) for rds in node.rdatasets}
            if dns.node.NodeKind.CNAME in kinds and dns.node.NodeKind.REGULAR in kinds:
                raise _GiveUp  # dnspython's reader reports the conflict with its line
        return self.zone

    def _directive(self, fields: list[str]) -> None:
        word = fields[0].upper()
        if word == "$TTL" and len(fields) == 2:
            self.default_ttl = dns.ttl.from_text(fields[1])
            self.default_from_soa = False
        elif word == "$ORIGIN" and len(fields) == 2:
            origin = self._name(fields[1])
            if not origin.is_absolute():
                raise _GiveUp
            self.origin = origin
            self.origin_inside = origin.is_subdomain(self.zone_origin)
            self.names.clear()  # relative owner names now mean something else
        else:
            raise _GiveUp

    def _name(self, token: str) -> dns.name.Name:
        name = self.names.get(token)
        if name is None:
            if token == "@":
                name = self.origin
            elif _PLAIN_NAME.fullmatch(token):
                labels = token.encode("ascii").split(b".")
                if labels[-1]:
                    name = dns.name.Name(labels + list(self.origin.labels))
                else:
                    name = dns.name.Name(labels)
            else:
                raise _GiveUp
            if len(self.names) < 4096:  # owner names repeat within a node's lines
                self.names[token] = name
        return name

    def _record(self, line: str, comment: str | None) -> None:
        fields = line.split()
        at = 0
        if not line[0].isspace():
            token = fields[0]
            self.last_name = self._name(token)
            # A relative owner is inside the zone when $ORIGIN is (checked when $ORIGIN is set).
            if not (self.origin_inside and token[-1] != ".") and not self.last_name.is_subdomain(self.zone_origin):
                raise _GiveUp
            at = 1
        name = self.last_name
        ttl: int | None = None
        seen_class = False
        # [ttl] [class] or [class] [ttl], as dnspython's reader accepts them
        for _ in range(2):
            if at >= len(fields):
                raise _GiveUp
            token = fields[at]
            if token[0].isdigit():
                if ttl is not None:
                    raise _GiveUp
                ttl = dns.ttl.from_text(token)
                self.last_ttl = ttl
            elif token.upper() in _CLASS_WORDS or token.upper().startswith("CLASS"):
                if token.upper() != "IN" or seen_class:
                    raise _GiveUp
                seen_class = True
            else:
                break
            at += 1
        if at >= len(fields):
            raise _GiveUp
        rdtype = dns.rdatatype.from_text(fields[at])
        if ttl is None:
            ttl = self._implicit_ttl()
        rest = fields[at + 1:]
        if rdtype == _A and len(rest) == 1 and _canonical(socket.AF_INET, rest[0]):
            rd = dns.rdtypes.IN.A.A.__new__(dns.rdtypes.IN.A.A)
            # The state unpickling sets; the address was checked to be canonical IPv4 text.
            rd.__setstate__({"rdclass": _IN, "rdtype": _A, "rdcomment": None, "address": rest[0]})
        elif rdtype == _AAAA and len(rest) == 1 and _canonical(socket.AF_INET6, rest[0]):
            rd = dns.rdtypes.IN.AAAA.AAAA.__new__(dns.rdtypes.IN.AAAA.AAAA)
            rd.__setstate__({"rdclass": _IN, "rdtype": _AAAA, "rdcomment": None, "address": rest[0]})
        else:
            rd = dns.rdata.from_text(_IN, rdtype, " ".join(rest), self.origin, False, self.zone_origin)
        if comment is not None:
            object.__setattr__(rd, "rdcomment", comment)  # as dns.rdata.from_text keeps it
        if rdtype == _SOA:
            if name != self.zone_origin:
                raise _GiveUp
            if self.default_ttl is None:
                # dnspython's pre-RFC 2308 rule: no $TTL yet, so SOA MINIMUM becomes the default.
                self.default_ttl = rd.minimum
                self.default_from_soa = True
                if ttl is None:
                    ttl = self._implicit_ttl()
        if ttl is None:
            raise _GiveUp
        self._add(name, ttl, rd)

    def _implicit_ttl(self) -> int | None:
        if self.last_ttl is not None and (self.default_ttl is None or self.default_from_soa):
            return self.last_ttl
        return self.default_ttl

    def _add(self, name: dns.name.Name, ttl: int, rd: dns.rdata.Rdata) -> None:
        # Local maps are keyed by the lowercased wire labels: hashing a dns.name.Name walks its
        # characters in Python, and these maps see every record.
        folded = b".".join(name.labels).lower()
        covers = rd.covers()
        key = (folded, rd.rdtype, covers)
        rds = self.rdatasets.get(key)
        node = self.nodes.get(folded)
        if node is None:
            node = self.nodes[folded] = self.zone.nodes[name] = self.zone.node_factory()
        if rds is None:
            rds = self.rdatasets[key] = dns.rdataset.Rdataset(_IN, rd.rdtype, covers)
            node.rdatasets.append(rds)
            rds.update_ttl(ttl)
            rds.items[rd] = None  # what Rdataset.add does to an empty set, minus a second hash
            return
        if dns.rdatatype.is_singleton(rd.rdtype):
            raise _GiveUp
        if node.rdatasets[-1] is not rds:
            # dnspython's reader replaces the RRset it adds to, which moves it last in the node.
            node.rdatasets.remove(rds)
            node.rdatasets.append(rds)
        rds.add(rd, ttl)


def _canonical(family: int, text: str) -> bool:
    try:
        return socket.inet_ntop(family, socket.inet_pton(family, text)) == text
    except (OSError, ValueError):
        return False
