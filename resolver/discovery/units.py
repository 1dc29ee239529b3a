"""Numbers with units on input (spec/capabilities.md §1.2, §7): ``80GiB``, ``512G``, ``3.5GHz``,
``10Gbps``, ``5min``, ``80%`` — read exactly (Decimal), checked against the bounds a record can
carry, and turned into the base unit of the key.

The unit of a key is its registry unit, or for an extension key the unit its name ends with
(§1.2: ``_bytes``, ``_hz``, ``_bps``, ``_s``, ``_ratio``). Every suffix is case-insensitive
except that a bare ``m`` is never accepted for seconds (minutes or milliseconds?).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# The largest magnitude a CAPS/LOAD number can have: msgpack integers go to 2^64 - 1, and a
# larger float cannot name anything a publisher measured.
LIMIT = 2**64
_NUMBER = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?)\s?([A-Za-z%/µ]*)")

_SI = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15, "e": 10**18}
_IEC = {"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40, "pi": 2**50, "ei": 2**60}


def _table(names: tuple[str, ...], prefixes: dict[str, int]) -> dict[str, int]:
    return {p + n: f for p, f in prefixes.items() for n in names}


# unit -> {lower-case suffix: factor to the base unit}
SUFFIXES: dict[str, dict[str, Decimal | int]] = {
    "bytes": {**_table(("", "b"), _SI), **_table(("", "b"), _IEC)},
    "Hz": _table(("", "hz"), {k: v for k, v in _SI.items() if k in ("", "k", "m", "g", "t")}),
    "bit/s": _table(("", "bps", "bit/s"), {k: v for k, v in _SI.items() if k in ("", "k", "m", "g", "t")}),
    "FLOP/s": _table(("", "flops", "flop/s"), _SI),
    "s": {"": 1, "s": 1, "ms": Decimal("0.001"), "us": Decimal("0.000001"), "µs": Decimal("0.000001"),
          "min": 60, "h": 3600, "d": 86400},
    "ratio": {"": 1, "%": Decimal("0.01")},
}
# What the accepted suffixes are called in error messages.
SPELLED = {
    "bytes": "k M G T P E (powers of 1000), Ki Mi Gi Ti Pi Ei (powers of 1024), optional B",
    "Hz": "k M G T, optional Hz",
    "bit/s": "k M G T, optional bps",
    "FLOP/s": "k M G T P E, optional FLOPS",
    "s": "ms, s, min, h, d",
    "ratio": "% (80% is 0.8)",
}
# Extension keys take the unit of their name's suffix (spec/capabilities.md §1.2).
SUFFIX_UNITS = (("_bytes", "bytes"), ("_hz", "Hz"), ("_bps", "bit/s"), ("_s", "s"), ("_ratio", "ratio"))


def unit_of_name(key: str) -> str:
    for suffix, unit in SUFFIX_UNITS:
        if key.endswith(suffix):
            return unit
    return ""


class UnitError(ValueError):
    """A quantity that cannot be read; str says why, without the key (the caller adds it)."""


def parse_quantity(text: str, unit: str) -> int | float:
    """``text`` in ``unit``'s base unit, exactly: an int when whole, else a float.
    Raises UnitError for anything that is not a finite number within ±2^64 with a known suffix."""
    match = _NUMBER.fullmatch(text.strip())
    if match is None:
        raise UnitError("not a number")
    number, suffix = match.groups()
    table = SUFFIXES.get(unit, {"": 1})
    factor = table.get(suffix.lower()) if suffix != "m" or unit != "s" else None
    if factor is None:
        if unit in SPELLED:
            raise UnitError(f"unknown unit {suffix!r} (a value in {unit}: {SPELLED[unit]})")
        raise UnitError(f"takes no unit, got {suffix!r}")
    try:
        value = Decimal(number) * factor
    except InvalidOperation:  # pragma: no cover - the pattern admits only finite decimals
        raise UnitError("not a number") from None
    if abs(value) > LIMIT:
        raise UnitError("out of range (larger than 2^64)")
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def is_number_text(text: str) -> bool:
    """A plain decimal number (no unit), as the untyped values of extension keys are read."""
    match = _NUMBER.fullmatch(text.strip())
    return match is not None and not match.group(2)
