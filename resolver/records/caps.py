"""CAPS (private type 65380): static capabilities of a compute resource (spec/records.md)."""

import dns.immutable

from .mapdata import MapRdata

TYPE = 65380


@dns.immutable.immutable
class CAPS(MapRdata):
    """Capabilities: a canonical msgpack map with keys from the registry in spec/capabilities.md."""

    __slots__: list[str] = []
