"""Canonical msgpack maps: the RDATA of CAPS and LOAD (spec/records.md §Encoding).

A value is canonical when re-encoding its decoded form gives back the same bytes: one map,
string keys in UTF-8 byte order, no duplicates, the shortest int/str/array/map headers,
floats always as float64, and nothing after the map. Checking by round trip keeps the rule
and its check from drifting apart, and rejects every alternative spelling of a value, which
DNSSEC needs (two encodings of one capability set must not both verify as different RRs).
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgpack

MAX_DEPTH = 8
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,62}$")

Value = None | bool | int | float | str | list["Value"] | dict[str, "Value"]


class CapsError(ValueError):
    """A CAPS/LOAD map is malformed or not in canonical form."""


def _check(value: Any, depth: int, path: str) -> Any:
    if depth > MAX_DEPTH:
        raise CapsError(f"{path}: nested more than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates (e.g. from JSON "\ud800") are not UTF-8
            raise CapsError(f"{path}: string is not valid Unicode text") from None
        return value
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise CapsError(f"{path}: integer {value} does not fit in 64 bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CapsError(f"{path}: NaN and infinities are not allowed")
        return value
    if isinstance(value, (list, tuple)):
        return [_check(v, depth + 1, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return _check_map(value, depth + 1, path)
    raise CapsError(f"{path}: unsupported value type {type(value).__name__}")


def _check_map(mapping: dict[Any, Any], depth: int, path: str) -> dict[str, Value]:
    out: dict[str, Value] = {}
    for key in sorted(mapping, key=lambda k: k.encode("utf-8") if isinstance(k, str) else b""):
        if not isinstance(key, str) or not KEY_RE.fullmatch(key):  # "$" accepts "\n"
            raise CapsError(f"{path}: key {key!r} is not lower-case letters, digits, '_', '-', '.'")
        out[key] = _check(mapping[key], depth, f"{path}.{key}" if path else key)
    return out


def normalize(mapping: dict[str, Any]) -> dict[str, Value]:
    """Validate a map and return it with keys (recursively) in canonical order."""
    if not isinstance(mapping, dict):
        raise CapsError("top level must be a map")
    return _check_map(mapping, 1, "")


def encode(mapping: dict[str, Any]) -> bytes:
    """Canonical bytes of a map."""
    return msgpack.packb(normalize(mapping), use_bin_type=True)


def decode(data: bytes) -> dict[str, Value]:
    """Decode canonical bytes; anything non-canonical or malformed raises CapsError."""
    try:
        value = msgpack.unpackb(
            data, raw=False, strict_map_key=True, use_list=True,
            max_bin_len=0, max_ext_len=0,
        )
    except msgpack.ExtraData as exc:
        raise CapsError("trailing bytes after the map") from exc
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        raise CapsError(f"malformed msgpack: {exc}") from exc
    if not isinstance(value, dict):
        raise CapsError("top level must be a map")
    canonical = encode(value)  # raises CapsError on bad keys/values
    if canonical != data:
        raise CapsError("not canonical (key order, duplicate keys, integer/float/length encoding)")
    return normalize(value)
