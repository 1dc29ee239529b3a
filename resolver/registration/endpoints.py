"""``--endpoint`` specifications: SVCB ServiceMode records (RFC 9460) and the addresses they need.

Two spellings (spec/registration.md, client section):

* ``ALPN[,ALPN...]://HOST[:PORT]`` — ``h2://127.0.0.5:8443``, ``h2,h3://[2001:db8::5]:443``,
  ``h2://gw.bj.cmcc.cid:443``. An address as HOST makes TargetName ``.`` (the identifier's own
  A/AAAA, which the registration publishes) with the address also as ``ipv4hint``/``ipv6hint``;
  a name as HOST makes it the TargetName (its A/AAAA are that name's owner's business).
* the RFC 9460 presentation form, ``"1 . alpn=h2 port=8443"`` or ``"2 gw.bj.cmcc.cid. alpn=h3"``,
  for full control; a TargetName must then be absolute or ``.``.

Endpoints written as URLs get SvcPriority 1, 2, ... in the order given. Every endpoint with
TargetName ``.`` shares the identifier's A/AAAA RRsets, so those endpoints must name the same
addresses (more can be added with ``--address``): two different hosts behind one identifier
are two named targets, not one ``.``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

_URL = re.compile(r"(?P<alpn>[^:/\s][^:\s]*)://(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+)(?::(?P<port>[0-9]{1,5}))?/?")
_PRESENTATION = re.compile(r"\s*[0-9]+\s")
_ALPN = re.compile(r"[\x21-\x7e]{1,255}")


class EndpointError(ValueError):
    """An endpoint that cannot be published; str() is one line."""


@dataclass(frozen=True)
class Endpoints:
    """What the endpoints publish: the SVCB rdatas and the identifier's own addresses."""

    svcb: tuple[dns.rdata.Rdata, ...]
    addresses: tuple[str, ...] = field(default=())  # A/AAAA at the identifier (TargetName ".")

    @property
    def a(self) -> list[str]:
        return [a for a in self.addresses if ipaddress.ip_address(a).version == 4]

    @property
    def aaaa(self) -> list[str]:
        return [a for a in self.addresses if ipaddress.ip_address(a).version == 6]


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text[1:-1] if text.startswith("[") else text))
    except ValueError:
        return None


def _svcb(text: str, where: str) -> dns.rdata.Rdata:
    try:
        rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.SVCB, text, origin=None)
    except (dns.exception.DNSException, ValueError) as exc:
        raise EndpointError(f"{where}: not an SVCB record: {exc}") from None
    if not rd.target.is_absolute():
        raise EndpointError(f"{where}: TargetName {rd.target} must be absolute (end it with '.') or '.'")
    if rd.priority == 0:
        raise EndpointError(f"{where}: SvcPriority 0 is AliasMode; an endpoint is ServiceMode (1 or more)")
    return rd


def _from_url(match: re.Match, priority: int, where: str) -> tuple[dns.rdata.Rdata, str | None]:
    alpns = match.group("alpn").split(",")
    for alpn in alpns:
        if not _ALPN.fullmatch(alpn) or any(c in alpn for c in '",\\'):
            raise EndpointError(f"{where}: bad ALPN protocol id {alpn!r} (e.g. h2, h3, http/1.1)")
    host, port = match.group("host"), match.group("port")
    params = [f"alpn={','.join(alpns)}"]
    if port is not None:
        if not 1 <= int(port) <= 65535:
            raise EndpointError(f"{where}: port {port} is not 1..65535")
        params.append(f"port={int(port)}")
    address = _address(host)
    if address is not None:
        target = "."
        params.append(f"{'ipv4hint' if ipaddress.ip_address(address).version == 4 else 'ipv6hint'}={address}")
    else:
        if host.startswith("["):
            raise EndpointError(f"{where}: {host} is not an IPv6 address")
        try:
            name = dns.name.from_text(host)
        except dns.exception.DNSException as exc:
            raise EndpointError(f"{where}: bad host name {host!r}: {exc}") from None
        target = name.to_text()
    return _svcb(f"{priority} {target} {' '.join(params)}", where), address


def parse_endpoints(specs: Sequence[str], addresses: Iterable[str] = ()) -> Endpoints:
    """The SVCB records and the identifier's addresses for ``--endpoint`` specs and ``--address``es."""
    records: list[dns.rdata.Rdata] = []
    own: list[str] = []
    for text in addresses:
        address = _address(text)
        if address is None:
            raise EndpointError(f"--address {text}: not an IPv4 or IPv6 address")
        own.append(address)
    url_hosts: dict[str, int] = {}
    priority = 0
    for index, text in enumerate(specs, 1):
        where = f"--endpoint {text}"
        match = _URL.fullmatch(text.strip())
        if match is not None:
            priority = max(priority, max((r.priority for r in records), default=0)) + 1
            rd, address = _from_url(match, priority, where)
            if address is not None:
                url_hosts.setdefault(address, index)
        elif _PRESENTATION.match(text):
            rd = _svcb(text, where)
        else:
            raise EndpointError(f"{where}: expected ALPN://HOST[:PORT] (h2://127.0.0.5:8443) or an SVCB "
                                "record's data (\"1 . alpn=h2 port=8443\")")
        if any(r.priority == rd.priority and r.target == rd.target for r in records):
            raise EndpointError(f"{where}: a second endpoint with priority {rd.priority} and target {rd.target}")
        records.append(rd)
    if not records:
        raise EndpointError("no --endpoint: an identifier is reachable through SVCB (spec/records.md §1.5)")
    if len(url_hosts) > 1:
        (a, i), (b, j) = list(url_hosts.items())[:2]
        raise EndpointError(f"endpoints {i} and {j} both use the identifier's own addresses (TargetName .) "
                            f"but name different hosts ({a}, {b}); publish one under a host name of its own "
                            "(h2://host.example.:443), or give the extra addresses with --address")
    own = list(dict.fromkeys([*url_hosts, *own]))
    if any(r.target == dns.name.root for r in records) and not own:
        raise EndpointError("an endpoint with TargetName . needs the identifier's addresses: put an address in "
                            "the URL (h2://127.0.0.5:8443) or give --address")
    return Endpoints(tuple(records), tuple(own))
