"""Trust anchors: the DS and/or DNSKEY records a validator starts its chains of trust from.

Accepted input (one file may mix owners):
- master-file records, as Unbound's ``trust-anchor-file`` (``. IN DS 20326 8 2 E06D...``,
  ``cid. 3600 IN DNSKEY 257 3 15 ...``); ``$ORIGIN``/``$TTL``, comments and parentheses work;
- BIND configuration clauses, as ``delv -a`` and named read them: ``trust-anchors { NAME
  static-key|initial-key|static-ds|initial-ds ...; };`` and the older ``managed-keys`` (same
  entries) and ``trusted-keys`` (``NAME FLAGS PROTOCOL ALGORITHM "KEY";``); comments ``//``,
  ``#``, ``/* */``; quoted strings may span lines (bind.keys splits long keys). ``initial-*``
  entries are used as static anchors (no RFC 5011 rollover is tracked).
Nothing else: a stray record type, a clause of another kind or text outside the clauses is an
error, not silently ignored, because a mistyped anchor would otherwise leave a zone
unvalidated without anyone noticing. Errors are one line, ``SOURCE:LINE: what``.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.tokenizer
import dns.zonefile

_FLAG_ZONE = 0x0100
_FLAG_REVOKE = 0x0080
_DEFAULT_TTL = 3600

_BIND_CLAUSES = ("trust-anchors", "managed-keys", "trusted-keys")
_BIND_KINDS = {"static-key": "DNSKEY", "initial-key": "DNSKEY", "static-ds": "DS", "initial-ds": "DS"}
MAX_ANCHOR_BYTES = 1 << 20  # an anchor file is a few records; anything this big is a mistake
MAX_ANCHOR_ENTRIES = 1000


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
        # Anchored zones by their lower-case labels, for closest(): a tuple of bytes hashes
        # from cached label hashes, a Name character by character (the tables never change).
        self._zones_by_labels = {tuple(label.lower() for label in zone.labels): zone
                                 for table in (self._ds, self._dnskey) for zone in table}
        if not self._ds and not self._dnskey:
            raise TrustAnchorError("trust anchor holds no DS or DNSKEY record")

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> TrustAnchor:
        path = Path(path)
        try:
            with path.open("rb") as f:
                data = f.read(MAX_ANCHOR_BYTES + 1)
            if len(data) > MAX_ANCHOR_BYTES:
                raise TrustAnchorError(f"{path}: trust anchor file larger than {MAX_ANCHOR_BYTES} bytes")
            text = data.decode("utf-8")
        except OSError as exc:
            raise TrustAnchorError(f"{path}: cannot read trust anchor: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise TrustAnchorError(f"{path}: trust anchor is not UTF-8 text") from None
        return cls.from_text(text, source=str(path))

    @classmethod
    def from_text(cls, text: str, *, source: str = "<trust anchor>") -> TrustAnchor:
        if len(text) > MAX_ANCHOR_BYTES:
            raise TrustAnchorError(f"{source}: trust anchor text longer than {MAX_ANCHOR_BYTES} characters")
        if "\x00" in text:
            raise TrustAnchorError(f"{source}:{text[:text.index(chr(0))].count(chr(10)) + 1}: NUL character")
        tokens = _bind_tokens(text, source)
        if tokens and not tokens[0][2] and tokens[0][0].lower() in _BIND_CLAUSES:
            return cls.from_rrsets(_read_bind(tokens, source), source=source)
        try:
            rrsets = _read(text)
        except dns.exception.DNSException as exc:
            raise TrustAnchorError(_locate(text, exc, source)) from None
        try:
            return cls.from_rrsets(rrsets, source=source)
        except TrustAnchorError as exc:
            bad = getattr(exc, "rrset", None)
            line = _line_of(text, bad) if bad is not None else None
            if line is None:
                raise
            raise TrustAnchorError(str(exc).replace(f"{source}: ", f"{source}:{line}: ", 1)) from None

    @classmethod
    def from_rrsets(cls, rrsets, *, source: str = "<trust anchor>") -> TrustAnchor:
        ds: dict[dns.name.Name, dns.rdataset.Rdataset] = {}
        dnskey: dict[dns.name.Name, dns.rdataset.Rdataset] = {}
        for rrset in rrsets:
            where = f"{source}: {rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}"
            problem = None
            if rrset.rdclass != dns.rdataclass.IN:
                problem = "class must be IN"
            elif rrset.rdtype == dns.rdatatype.DS:
                target = ds
            elif rrset.rdtype == dns.rdatatype.DNSKEY:
                problem = next((p for p in map(_key_problem, rrset) if p), None)
                target = dnskey
            else:
                problem = "only DS and DNSKEY records can be trust anchors"
            if problem is not None:
                err = TrustAnchorError(f"{where}: {problem}")
                err.rrset = rrset  # from_text adds the line
                raise err
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
        labels = tuple([label.lower() for label in name.labels])
        zones = self._zones_by_labels
        for i in range(len(labels)):
            zone = zones.get(labels[i:])
            if zone is not None:
                return zone
        return None

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


def _key_problem(key) -> str | None:
    if not key.flags & _FLAG_ZONE or key.flags & _FLAG_REVOKE or key.protocol != 3:
        return (f"key flags {key.flags} protocol {key.protocol} cannot be an anchor "
                "(needs the ZONE flag, no REVOKE, protocol 3)")
    return None


def _line_of(text: str, rrset) -> int | None:
    """The line where ``rrset``'s first record is (bisecting on prefixes of the text)."""
    lines = text.splitlines()

    def holds(k: int) -> bool:
        try:
            return any(r.name == rrset.name and r.rdtype == rrset.rdtype and r.rdclass == rrset.rdclass
                       for r in _read("\n".join(lines[:k])))
        except dns.exception.DNSException:
            return False
    low, high = 1, len(lines)
    if not holds(high):
        return None
    while low < high:
        mid = (low + high) // 2
        if holds(mid):
            high = mid
        else:
            low = mid + 1
    return low


# --- BIND / delv form ----------------------------------------------------------------------------

_PUNCT = "{};"


def _bind_tokens(text: str, source: str) -> list[tuple[str, int, bool]]:
    """named.conf tokens: (text, line, quoted). Comments (``//``, ``#``, ``/* */``) dropped;
    ``{ } ;`` are tokens of their own; a quoted string is one token (it may span lines).
    Only called on the text's start to tell the format, or on a whole BIND file."""
    tokens: list[tuple[str, int, bool]] = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif c == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise TrustAnchorError(f"{source}:{line}: unterminated /* comment")
            line += text.count("\n", i, end)
            i = end + 2
        elif c == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise TrustAnchorError(f"{source}:{line}: unterminated quoted string")
            tokens.append((text[i + 1:end], line, True))
            line += text.count("\n", i, end)
            i = end + 1
        elif c in _PUNCT:
            tokens.append((c, line, False))
            i += 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in _PUNCT and text[i] != '"':
                if text.startswith("//", i) or text.startswith("/*", i) or text[i] == "#":
                    break
                i += 1
            tokens.append((text[start:i], line, False))
        if len(tokens) == 1 and (tokens[0][2] or tokens[0][0].lower() not in _BIND_CLAUSES):
            return tokens  # not BIND form: the master-file reader takes over
    return tokens


def _read_bind(tokens: list[tuple[str, int, bool]], source: str) -> list[dns.rrset.RRset]:
    """The anchors of ``trust-anchors`` / ``managed-keys`` / ``trusted-keys`` clauses."""
    rrsets: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}
    entries = 0
    i, n = 0, len(tokens)

    def at(k: int) -> tuple[str, int, bool]:
        return tokens[k] if k < n else ("end of input", tokens[-1][1], False)

    while i < n:
        word, line, quoted = tokens[i]
        clause = word.lower()
        if quoted or clause not in _BIND_CLAUSES:
            raise TrustAnchorError(f"{source}:{line}: unexpected {word!r}: expected "
                                   f"{', '.join(_BIND_CLAUSES)}")
        if at(i + 1)[0] != "{" or at(i + 1)[2]:
            raise TrustAnchorError(f"{source}:{at(i + 1)[1]}: expected '{{' after {clause}, not {at(i + 1)[0]!r}")
        i += 2
        start_line = line
        while True:
            if i >= n:
                raise TrustAnchorError(f"{source}:{start_line}: unterminated {clause} clause (no closing '}}')")
            if tokens[i][0] == "}" and not tokens[i][2]:
                break
            end = i
            while end < n and not (tokens[end][0] in _PUNCT and not tokens[end][2]):
                end += 1
            if end >= n:
                raise TrustAnchorError(f"{source}:{start_line}: unterminated {clause} clause (no closing '}}')")
            if tokens[end][0] != ";":
                raise TrustAnchorError(f"{source}:{tokens[end][1]}: expected ';' to end the entry, "
                                       f"not {tokens[end][0]!r}")
            if end > i:
                entries += 1
                if entries > MAX_ANCHOR_ENTRIES:
                    raise TrustAnchorError(f"{source}:{tokens[i][1]}: more than {MAX_ANCHOR_ENTRIES} entries")
                owner, rdtype, rd = _bind_entry(clause, tokens[i:end], source)
                key = (owner, rdtype)
                if key not in rrsets:
                    rrsets[key] = dns.rrset.RRset(owner, dns.rdataclass.IN, rdtype)
                    rrsets[key].update_ttl(_DEFAULT_TTL)
                rrsets[key].add(rd)
            i = end + 1
        if at(i + 1)[0] != ";" or at(i + 1)[2]:
            raise TrustAnchorError(f"{source}:{at(i + 1)[1]}: expected ';' after the {clause} clause's '}}', "
                                   f"not {at(i + 1)[0]!r}")
        i += 2
    if not rrsets:
        raise TrustAnchorError(f"{source}: the BIND trust anchor clause holds no entries")
    return list(rrsets.values())


def _bind_entry(clause: str, entry: list[tuple[str, int, bool]], source: str):
    """One ``NAME [KIND] A B C "DATA"`` entry: (owner, rdtype, rdata); errors name its line."""
    line = entry[0][1]
    owner_text = entry[0][0]
    where = f"{source}:{line}: {clause} entry for {owner_text!r}"
    try:
        owner = dns.name.from_text(owner_text)
    except dns.exception.DNSException as exc:
        raise TrustAnchorError(f"{where}: bad name: {_clean(exc)}") from None
    rest = entry[1:]
    if clause == "trusted-keys":
        rtype = "DNSKEY"
    else:
        if not rest or rest[0][2] or rest[0][0].lower() not in _BIND_KINDS:
            got = rest[0][0] if rest else "nothing"
            raise TrustAnchorError(f"{where}: expected one of {', '.join(_BIND_KINDS)}, not {got!r}")
        rtype = _BIND_KINDS[rest[0][0].lower()]
        rest = rest[1:]
    if len(rest) == 4 and not rest[3][2]:
        raise TrustAnchorError(f"{where}: the {'key' if rtype == 'DNSKEY' else 'digest'} must be a quoted string "
                               "(as named.conf has it)")
    if len(rest) != 4 or any(quoted for _, _, quoted in rest[:3]):
        shape = 'FLAGS PROTOCOL ALGORITHM "KEY"' if rtype == "DNSKEY" else 'KEYTAG ALGORITHM DIGEST-TYPE "DIGEST"'
        raise TrustAnchorError(f"{where}: expected {shape} ({len(rest)} field(s) given)")
    numbers = [t for t, _, _ in rest[:3]]
    data = "".join(rest[3][0].split())
    try:
        rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rtype), " ".join([*numbers, data]))
    except (dns.exception.DNSException, ValueError) as exc:
        raise TrustAnchorError(f"{where}: bad {rtype}: {_clean(exc)}") from None
    if rtype == "DNSKEY":
        problem = _key_problem(rd)
        if problem is not None:
            raise TrustAnchorError(f"{where}: {problem}")
    return owner, rd.rdtype, rd
