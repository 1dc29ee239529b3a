"""``key=value`` items for CAPS and LOAD, checked against the key registry before anything is sent.

The rules (spec/registration.md, client section):

* a key is a registry key (spec/capabilities.md §2) or an extension key with a ``.``
  (``acme.tier``, §1.6) or an import leftover ``x-<source>``; anything else is an error that
  names the nearest registry keys (a misspelt ``accel_cuont`` must not be published);
* a registry number is read with its unit (``80GiB``, ``3.5GHz``, ``10Gbps``, ``5min``,
  ``80%``; as ``cid find --where`` reads them, resolver/discovery/units.py), must be whole for an
  ``int`` key and within the key's range;
* a registry string follows the key's syntax: lower case, one DNS label (``region``,
  ``accel_slug``), ISO 4217 upper case (``currency``), ``major.minor`` (compute capability),
  verbatim (``accel_product``, ``model``), one of the key's choices;
* an extension value is read as the CAPS presentation form reads it (spec/records.md §4.1):
  ``true``/``false``/``null``, a number, JSON ``[...]``/``{...}``, ``"quoted"`` text or a word;
  an extension key whose name ends in a unit suffix (``_bytes``, ``_s``, ...) takes units.

Keys in the wrong record (a live key in CAPS, a static one in LOAD) are legal (§1.4): they are
returned as warnings, not errors.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..discovery import units
from ..records import capsmap, registry

CAPS_SOFT_LIMIT = 1024  # spec/records.md §2: octets of RDATA so a signed answer fits 1232 octets
LOAD_SOFT_LIMIT = 512
_KEY = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_VERSION = re.compile(r"[0-9]{1,6}\.[0-9]{1,6}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")


class CapsValueError(ValueError):
    """An item that cannot be published; str() is one line."""


def _nearest(key: str) -> str:
    near = difflib.get_close_matches(key.lower(), list(registry.REGISTRY), n=3, cutoff=0.6)
    if not near and len(key) >= 3:
        near = [k for k in registry.REGISTRY if key.lower() in k][:3]
    return f"nearest registry keys: {', '.join(near)}" if near else "see spec/capabilities.md §2"


def check_key(key: str, record: str) -> registry.KeySpec | None:
    """The registry entry of ``key`` (None for an extension key); CapsValueError otherwise."""
    if key in registry.REGISTRY:
        return registry.REGISTRY[key]
    if not _KEY.fullmatch(key):
        lower = key.lower()
        if lower != key and lower in registry.REGISTRY:
            raise CapsValueError(f"{record} key {key!r}: keys are lower case, did you mean {lower}?")
        raise CapsValueError(f"{record} key {key!r}: not a key (lower-case letters, digits, '_', '-', '.'; "
                             "1-63 characters, starting with a letter or digit)")
    if "." in key or key.startswith(registry.IMPORT_PREFIX):
        return None
    raise CapsValueError(f"{record}: unknown key {key!r} ({_nearest(key)}); an extension key is written "
                         "with a '.', e.g. acme.tier (spec/capabilities.md §1.6)")


def _kind(spec: registry.KeySpec) -> str:
    unit = f" in {spec.unit}" if spec.unit not in ("", "count", "score") else ""
    return ("a whole number" if spec.type == "int" else "a number") + unit


def _range(spec: registry.KeySpec) -> str:
    low = "" if spec.minimum is None else f"{spec.minimum:g}"
    high = "" if spec.maximum is None else f"{spec.maximum:g}"
    return f"{low}..{high}"


def _registry_value(spec: registry.KeySpec, raw: str, record: str) -> Any:
    where = f"{record} {spec.name}={raw}"
    if spec.type in ("int", "number", "float"):
        unit = "" if spec.name == "ts" else spec.unit
        try:
            value = units.parse_quantity(raw, unit)
        except units.UnitError as exc:
            raise CapsValueError(f"{where}: {spec.name} is {_kind(spec)} ({exc})") from None
        if spec.type == "int" and not isinstance(value, int):
            raise CapsValueError(f"{where}: {spec.name} is {_kind(spec)}, not a fraction")
        if spec.type == "float":
            value = float(value)
        if ((spec.minimum is not None and value < spec.minimum)
                or (spec.maximum is not None and value > spec.maximum)):
            hint = " (a ratio: 0.8, or 80%)" if spec.unit == "ratio" and value > 1 else ""
            raise CapsValueError(f"{where}: out of range {_range(spec)}{hint}")
        if spec.type == "number" and isinstance(value, float) and value.is_integer() and "." not in raw:
            value = int(value)
        return value
    if spec.type == "bool":
        if raw in ("true", "false"):
            return raw == "true"
        raise CapsValueError(f"{where}: {spec.name} is true or false")
    if spec.type != "str":
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise CapsValueError(f"{where}: {spec.name} holds {spec.type}, written as JSON") from None
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        raw = raw[1:-1]
    if not raw:
        raise CapsValueError(f"{where}: empty value")
    syntax = spec.value_syntax
    if syntax == "verbatim":
        return raw
    if syntax == "currency":
        if not _CURRENCY.fullmatch(raw):
            hint = f"; did you mean {raw.upper()}?" if _CURRENCY.fullmatch(raw.upper()) else ""
            raise CapsValueError(f"{where}: {spec.name} is an ISO 4217 code in upper case, e.g. USD{hint}")
        return raw
    if syntax == "version":
        if not _VERSION.fullmatch(raw):
            raise CapsValueError(f"{where}: {spec.name} is MAJOR.MINOR, e.g. 9.0")
        return raw
    if raw != raw.lower():
        raise CapsValueError(f"{where}: registry values are lower case (spec/capabilities.md §1.8): "
                             f"{spec.name}={raw.lower()}")
    if syntax == "label" and not _LABEL.fullmatch(raw):
        raise CapsValueError(f"{where}: {spec.name} is one DNS label (lower-case letters, digits, inner '-')")
    if spec.choices is not None and raw not in spec.choices:
        near = difflib.get_close_matches(raw, spec.choices, n=1, cutoff=0.5)
        hint = f"; did you mean {near[0]}?" if near else ""
        raise CapsValueError(f"{where}: {spec.name} is one of {', '.join(spec.choices)}{hint}")
    return raw


def _extension_value(key: str, raw: str, record: str) -> Any:
    where = f"{record} {key}={raw}"
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            raise CapsValueError(f"{where}: unbalanced quotes")
        return raw[1:-1]
    if raw in ("true", "false", "null"):
        return json.loads(raw)
    if raw[:1] in "[{":
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CapsValueError(f"{where}: bad JSON value: {exc.msg}") from None
    unit = units.unit_of_name(key)
    if unit or units.is_number_text(raw):
        if _NUMBER.fullmatch(raw) and not unit:
            value = json.loads(raw)
            return value
        try:
            return units.parse_quantity(raw, unit)
        except units.UnitError as exc:
            if unit:
                raise CapsValueError(f"{where}: {key} is a number in {unit} (by its name, "
                                     f"spec/capabilities.md §1.2) ({exc})") from None
            raise CapsValueError(f"{where}: {exc}") from None
    if not raw:
        raise CapsValueError(f"{where}: empty value; write {key}='\"\"' for an empty string")
    return raw


def parse_item(item: str, record: str = "CAPS") -> tuple[str, Any]:
    key, eq, raw = item.partition("=")
    if not eq or not key:
        raise CapsValueError(f"{record}: expected KEY=VALUE, got {item!r}")
    key = key.strip()
    spec = check_key(key, record)
    if spec is None:
        return key, _extension_value(key, raw, record)
    return key, _registry_value(spec, raw, record)


def parse_items(items: Iterable[str], record: str = "CAPS") -> dict[str, Any]:
    """``["accel_count=8", "accel_memory_bytes=80GiB"]`` -> the map; CapsValueError on the first bad item."""
    out: dict[str, Any] = {}
    for item in items:
        key, value = parse_item(item, record)
        if key in out:
            raise CapsValueError(f"{record}: {key} given twice")
        out[key] = value
    return out


def check_map(mapping: Mapping[str, Any], record: str = "CAPS") -> tuple[dict[str, Any], list[str]]:
    """A map given in Python (the API's ``caps=``): every key checked as on the command line,
    values of registry keys checked for type and range (text values are read as typed on the
    command line, so ``"80GiB"`` works); returns (canonical map, warnings)."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise CapsValueError(f"{record}: key {key!r} is not a string")
        spec = check_key(key, record)
        if isinstance(value, str) and spec is not None and spec.type != "str":
            value = _registry_value(spec, value, record)
        elif spec is not None and spec.type == "str" and isinstance(value, str):
            value = _registry_value(spec, value, record)
        out[key] = value
    problems = [w for w in registry.validate_caps(out, record=record) if not _placement(w)]
    if problems:
        raise CapsValueError(f"{record} {problems[0]}")
    try:
        normalized = capsmap.normalize(out)
    except capsmap.CapsError as exc:
        raise CapsValueError(f"{record}: {exc}") from None
    return normalized, warnings(normalized, record)


def _placement(warning: str) -> bool:
    return "publish it in" in warning


def warnings(mapping: Mapping[str, Any], record: str) -> list[str]:
    """What is legal but probably a mistake: keys in the other record, a map over the size
    that keeps a signed answer within 1232 octets."""
    found = [f"{record} {w}" for w in registry.validate_caps(mapping, record=record) if _placement(w)]
    size = len(capsmap.encode(dict(mapping)))
    limit = CAPS_SOFT_LIMIT if record == "CAPS" else LOAD_SOFT_LIMIT
    if size > limit:
        found.append(f"{record} is {size} octets, more than the {limit} that keep a signed answer in one "
                     "UDP response (spec/records.md §2)")
    return found
