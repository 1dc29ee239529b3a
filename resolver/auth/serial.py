"""SOA serial arithmetic (RFC 1982) and the serial policy of live zones.

Policy (spec/registration.md §5): each committed change moves the serial to
``old + 1`` (mod 2**32), or to the current Unix time when that is *greater* than ``old + 1``
in RFC 1982 terms — so a zone whose serial is small or a Unix time (Knot's ``unixtime``
policy) moves to and stays on Unix time, a date-style serial above the current Unix time keeps
counting by one, and the serial never goes backwards whatever the clock does.
"""

from __future__ import annotations

HALF = 2 ** 31
MOD = 2 ** 32


def serial_gt(a: int, b: int) -> bool:
    """``a > b`` in RFC 1982 serial number arithmetic (undefined pairs are "not greater")."""
    return a != b and ((a < b and b - a > HALF) or (a > b and a - b < HALF))


def next_serial(old: int, now: float) -> int:
    bumped = (old + 1) % MOD
    unix = int(now) % MOD
    return unix if serial_gt(unix, bumped) else bumped


__all__ = ["next_serial", "serial_gt"]
