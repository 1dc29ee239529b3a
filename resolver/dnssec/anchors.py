"""Trust anchors: the DS and/or DNSKEY records a validator starts its chains of trust from.

Accepted input (one file may mix owners):
- master-file records, as Unbound's ``trust-anchor-file`` (``. IN DS 20326 8 2 E06D...``,
  ``cid. 3600 IN DNSKEY 257 3 15 ...``); ``$ORIGIN``/``$TTL``, comments and parentheses work;
- BIND configuration clauses, as ``delv -a`` and named read them: ``trust-anchors { NAME
  static-key|initial-key|static-ds|initial-ds ...; };`` and the older ``managed-keys`` /
  ``trusted-keys``.
Nothing else: a stray record type is an error, not silently ignored, because a mistyped anchor
would otherwise leave a zone unvalidated without anyone noticing.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.tokenizer
import dns.zonefile

_FLAG_ZONE = 0x0100
_FLAG_REVOKE = 0x0080
_DEFAULT_TTL = 3600

_BIND_CLAUSE = re.compile(r"\b(trust-anchors|managed-keys|trusted-keys)\s*\{", re.IGNORECASE)
_BIND_KINDS = {"static-key": "DNSKEY", "initial-key": "DNSKEY", "static-ds": "DS", "initial-ds": "DS"}


class TrustAnchorError(Exception):
    """A trust anchor file or text that cannot be used; str is one line for the user."""


class TrustAnchor:
    """DS and DNSKEY anchors keyed by zone name (absolute, case-insensitive)."""

    def __init__(
        self,
        ds: dict[dns.name.Name, dns.rdataset.Rdataset] | None = None,
        dnskey: dict[dns.name.Name, dns.rdataset.Rdataset] | None = None,
    ) -> None:
        self._ds = dict(ds or {})
        self._dnskey = dict(dnskey or {})
        if not self._ds and not self._dnskey:
            raise TrustAnchorError("trust anchor holds no DS or DNSKEY record")

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> TrustAnchor:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TrustAnchorError(f"{path}: cannot read trust anchor: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise TrustAnchorError(f"{path}: trust anchor is not UTF-8 text") from None
        return cls.from_text(text, source=str(path))

    @classmethod
    def from_text(cls, text: str, *, source: str = "<trust anchor>") -> TrustAnchor:
        if _BIND_CLAUSE.search(_strip_bind_comments(text)):
            text = _bind_to_master(text, source)
        try:
            rrsets = _read(text)
        except dns.exception.DNSException as exc:
            raise TrustAnchorError(_locate(text, exc, source)) from None
        return cls.from_rrsets(rrsets, source=source)

    @classmethod
    def from_rrsets(cls, rrsets, *, source: str = "<trust anchor>") -> TrustAnchor:
        ds: dict[dns.name.Name, dns.rdataset.Rdataset] = {}
        dnskey: dict[dns.name.Name, dns.rdataset.Rdataset] = {}
        for rrset in rrsets:
            where = f"{source}: {rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}"
            if rrset.rdclass != dns.rdataclass.IN:
                raise TrustAnchorError(f"{where}: class must be IN")
            if rrset.rdtype == dns.rdatatype.DS:
                target = ds
            elif rrset.rdtype == dns.rdatatype.DNSKEY:
                for key in rrset:
                    if not key.flags & _FLAG_ZONE or key.flags & _FLAG_REVOKE or key.protocol != 3:
                        raise TrustAnchorError(
                            f"{where}: key flags {key.flags} protocol {key.protocol} cannot be an anchor "
                            "(needs the ZONE flag, no REVOKE, protocol 3)"
                        )
                target = dnskey
            else:
                raise TrustAnchorError(f"{where}: only DS and DNSKEY records can be trust anchors")
            rds = target.setdefault(rrset.name, dns.rdataset.Rdataset(rrset.rdclass, rrset.rdtype))
            rds.update(rrset)
        if not ds and not dnskey:
            raise TrustAnchorError(f"{source}: trust anchor holds no DS or DNSKEY record")
        return cls(ds, dnskey)

    # --- queries -----------------------------------------------------------------------------

    @property
    def zones(self) -> list[dns.name.Name]:
        return sorted(set(self._ds) | set(self._dnskey))

    def closest(self, name: dns.name.Name | str) -> dns.name.Name | None:
        """Deepest anchored zone at or above ``name``."""
        name = _as_name(name)
        while True:
            if name in self._ds or name in self._dnskey:
                return name
            if name == dns.name.root or len(name) == 0:
                return None
            name = name.parent()

    def ds(self, zone: dns.name.Name | str) -> dns.rdataset.Rdataset | None:
        return self._ds.get(_as_name(zone))

    def dnskey(self, zone: dns.name.Name | str) -> dns.rdataset.Rdataset | None:
        return self._dnskey.get(_as_name(zone))

    # --- output for peers --------------------------------------------------------------------

    def to_text(self) -> str:
        """Master-file form (Unbound ``trust-anchor-file``, our own ``--trust-anchor``)."""
        lines = []
        for zone in self.zones:
            for table in (self._ds, self._dnskey):
                if zone in table:
                    lines.append(table[zone].to_text(zone))
        return "\n".join(lines) + "\n"

    def to_bind(self) -> str:
        """BIND ``trust-anchors`` clause (``delv -a FILE``, named.conf)."""
        out = ["trust-anchors {"]
        for zone in self.zones:
            for d in self._ds.get(zone, ()):
                out.append(f'\t"{zone}" static-ds {d.key_tag} {d.algorithm} {d.digest_type} "{d.digest.hex().upper()}";')
            for k in self._dnskey.get(zone, ()):
                key = base64.b64encode(k.key).decode("ascii")
                out.append(f'\t"{zone}" static-key {k.flags} {k.protocol} {k.algorithm} "{key}";')
        out.append("};")
        return "\n".join(out) + "\n"

    def __repr__(self) -> str:
        return f"TrustAnchor(zones={[str(z) for z in self.zones]})"


def _as_name(name: dns.name.Name | str) -> dns.name.Name:
    return name if isinstance(name, dns.name.Name) else dns.name.from_text(name)


def _clean(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _read(text: str) -> list[dns.rrset.RRset]:
    # dns.zonefile.read_rrsets() with $ORIGIN/$TTL allowed (it refuses all directives); $INCLUDE
    # stays refused so an anchor file cannot pull in other files.
    manager = dns.zonefile.RRSetsReaderManager(dns.name.root, False, dns.rdataclass.IN)
    with manager.writer(True) as txn:
        reader = dns.zonefile.Reader(
            dns.tokenizer.Tokenizer(text, "<input>"),
            dns.rdataclass.IN,
            txn,
            allow_include=False,
            allow_directives={"$ORIGIN", "$TTL"},
            default_ttl=_DEFAULT_TTL,
        )
        reader.read()
    return manager.rrsets


_LINE_MESSAGE = re.compile(r"^<input>:(\d+): (.*)$")


def _locate(text: str, exc: Exception, source: str) -> str:
    """'source:LINE: message'. dnspython reports an RDATA error after consuming the line's end, i.e.
    on the next line; re-reading without that line tells whether the error is really earlier."""
    message = _clean(exc)
    match = _LINE_MESSAGE.match(message)
    if not match:
        return f"{source}: {message}"
    line, what = int(match.group(1)), match.group(2)
    if line > 1:
        try:
            _read("\n".join(text.splitlines()[: line - 1]))
        except dns.exception.DNSException as earlier:
            again = _LINE_MESSAGE.match(_clean(earlier))
            if again and again.group(2) == what:
                line = int(again.group(1))
    return f"{source}:{line}: {what}"


def _strip_bind_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    return re.sub(r"(//|#)[^\n]*", " ", text)


def _bind_to_master(text: str, source: str) -> str:
    """Rewrite BIND anchor clauses as master-file lines (the key text is the same RDATA)."""
    body = _strip_bind_comments(text)
    lines: list[str] = []
    pos = 0
    for match in _BIND_CLAUSE.finditer(body):
        if match.start() < pos:
            continue
        clause = match.group(1).lower()
        end = body.find("}", match.end())
        if end < 0:
            raise TrustAnchorError(f"{source}: unterminated {clause} clause")
        pos = end + 1
        for entry in body[match.end() : end].split(";"):
            tokens = re.findall(r'"[^"]*"|\S+', entry)
            if not tokens:
                continue
            tokens = [t.strip('"') for t in tokens]
            owner, rest = tokens[0], tokens[1:]
            if clause == "trusted-keys":
                rtype = "DNSKEY"
            else:
                if not rest or rest[0].lower() not in _BIND_KINDS:
                    raise TrustAnchorError(f"{source}: {clause} entry for {owner}: expected one of {', '.join(_BIND_KINDS)}")
                rtype = _BIND_KINDS[rest[0].lower()]
                rest = rest[1:]
            if not owner.endswith("."):
                owner += "."
            lines.append(f"{owner} {_DEFAULT_TTL} IN {rtype} {' '.join(rest)}")
    if not lines:
        raise TrustAnchorError(f"{source}: the BIND trust anchor clause holds no entries")
    return "\n".join(lines) + "\n"
