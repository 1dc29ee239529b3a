"""LOAD (private type 65381): live state of a compute resource, short TTL (spec/records.md)."""

import dns.immutable

from .mapdata import MapRdata

TYPE = 65381


@dns.immutable.immutable
class LOAD(MapRdata):
    """Live state: a canonical msgpack map (free devices, utilisation, queue, price, timestamp)."""

    __slots__: list[str] = []
