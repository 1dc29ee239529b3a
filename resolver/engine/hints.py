"""Server hints: where a namespace's servers are (stub-zone style), parsed once and checked.

``{"cid.": ["127.0.0.2", "127.0.0.3:5300", "[::1]:5300"]}``: an address without a port uses
the resolver's port. Only IP addresses are accepted — a hint that needs resolving would
need a hint of its own.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

import dns.exception
import dns.name

Server = tuple[str, int]
Hints = dict[dns.name.Name, tuple[Server, ...]]


class HintError(ValueError):
    """A hint is malformed; the message names it."""


def parse_address(text: str, default_port: int) -> Server:
    """``ADDR``, ``ADDR:PORT``, ``[V6]`` or ``[V6]:PORT`` → (address, port)."""
    text = text.strip()
    host, port = text, default_port
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise HintError(f"{text!r}: missing ']'")
        if rest:
            if not rest.startswith(":"):
                raise HintError(f"{text!r}: expected ':PORT' after ']'")
            port = _port(text, rest[1:])
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(text, port_text)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise HintError(f"{text!r}: not an IP address") from None
    return str(address), port


def _port(text: str, port_text: str) -> int:
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise HintError(f"{text!r}: port must be 1-65535")
    return int(port_text)


def parse_hints(hints: Mapping[str | dns.name.Name, Sequence[str] | str], default_port: int) -> Hints:
    out: Hints = {}
    for zone_text, addresses in hints.items():
        try:
            zone = dns.name.from_text(str(zone_text)) if not isinstance(zone_text, dns.name.Name) else zone_text
        except dns.exception.DNSException as exc:
            raise HintError(f"{zone_text!r}: bad zone name: {exc}") from None
        if isinstance(addresses, str):
            addresses = [addresses]
        servers = tuple(parse_address(a, default_port) for a in addresses)
        if not servers:
            raise HintError(f"{zone}: no addresses")
        out[zone.canonicalize()] = out.get(zone.canonicalize(), ()) + servers
    return out


def parse_hint_option(text: str) -> tuple[str, str]:
    """``ZONE=ADDR[:PORT]`` (the --hint syntax) → (zone, address), checked."""
    zone, sep, address = text.partition("=")
    if not sep or not zone or not address:
        raise HintError(f"{text!r}: expected ZONE=ADDR[:PORT]")
    parse_address(address, 53)
    try:
        dns.name.from_text(zone)
    except dns.exception.DNSException as exc:
        raise HintError(f"{text!r}: bad zone name: {exc}") from None
    return zone, address
