"""The query language of ``find`` (spec/discovery.md §5): ``--where`` conditions and ``--sort``
keys, one parser for the CLI and the Python API.

Every key is checked against the capability registry (spec/capabilities.md §2): a registry key
is typed (its values are read in its type and unit and checked against its range and choices),
an extension key must be written as one (it contains a ``.``, §1.6) and is untyped, and
``cost`` is derived (the price of the devices asked for). Anything else is a ConditionError
that names the nearest registry keys. Conditions are evaluated only on validated data: LOAD
first (when it is live), then CAPS; a missing key fails the condition, whatever the operator.
"""

from __future__ import annotations

import difflib
import functools
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..records import registry
from ..resolution import Resolution
from . import units

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}
LIST_OPERATORS = ("in", "notin")
ALL_OPERATORS = (*OPERATORS, *LIST_OPERATORS)
ORDERING = ("<", "<=", ">", ">=")
MAX_KEY = 63            # records.md §3.2: [a-z0-9][a-z0-9_.-]{0,62}
MAX_VALUE = 256         # characters of one value
MAX_ITEMS = 64          # items of one in/notin list
MAX_TEXT = 2048         # characters of a whole condition
MAX_SORT_KEYS = 8
PRICE_KEY = "price_per_hour"
COST_KEY = "cost"
PRICE_KEYS = (PRICE_KEY, COST_KEY)
# Keys computed by the search rather than read from a record (spec/discovery.md §5.3).
DERIVED: dict[str, registry.KeySpec] = {
    COST_KEY: registry.KeySpec(COST_KEY, "number", "currency/h", "derived",
                               "price_per_hour × the devices needed (need, 1 by default)", minimum=0),
}
_KEY = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_VERSION = re.compile(r"([0-9]{1,6})\.([0-9]{1,6})")
_CURRENCY = re.compile(r"[A-Z]{3}")
_PRICE = re.compile(r"(.*?)\s?([A-Za-z]{3})")
_LIST_FORM = re.compile(r"\s*([^\s=!<>\[\]\"]+)\s+(in|notin|not\s+in)(?=[\s\[])\s*(.*?)\s*", re.S)
_OP_FORM = re.compile(r"\s*([^\s=!<>\[\]\"]+)\s*(!=|<=|>=|==|=|<|>)\s*(.*?)\s*", re.S)
# Keys that are "more is better" and so sort descending (spec/discovery.md §5.2).
_DESCENDING_SUFFIXES = ("_free", "_count", "_bytes", "_norm", "_hz", "_bps")
_DESCENDING_KEYS = ("norm_fi", "accel_flops_fp16", "accel_flops_fp32")


class ConditionError(ValueError):
    """A where-condition, sort key or search option that cannot be understood; str is one line."""


def _show(text: Any) -> str:
    """User input in an error message: as typed when short and printable, else a short repr."""
    if isinstance(text, str) and text.isprintable() and len(text) <= 80:
        return text
    shown = repr(text)
    return shown if len(shown) <= 80 else shown[:77] + "..."


# --- keys ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyInfo:
    """What the query language knows about a key: its registry entry (``spec``), or None for an
    extension key (untyped; the unit comes from its name's suffix)."""

    name: str
    spec: registry.KeySpec | None
    origin: str  # "registry" | "derived" | "extension"

    @property
    def type(self) -> str | None:
        return self.spec.type if self.spec is not None else None

    @property
    def unit(self) -> str:
        if self.name == "ts":
            return ""  # a point in time (POSIX seconds), not a duration: no suffixes
        return self.spec.unit if self.spec is not None else units.unit_of_name(self.name)

    @property
    def is_price(self) -> bool:
        return self.name in PRICE_KEYS

    @property
    def live(self) -> bool:
        """Read from LOAD only when LOAD is live (registry kind live or any; unknown keys too)."""
        return self.spec is None or self.spec.kind in ("live", "any")


def nearest_keys(key: str, n: int = 3) -> list[str]:
    """Registry (and derived) keys closest to ``key``: difflib first, then keys containing it."""
    known = [*registry.REGISTRY, *DERIVED]
    close = difflib.get_close_matches(key.lower(), known, n=n, cutoff=0.6)
    if not close and len(key) >= 3:
        close = [k for k in known if key.lower() in k][:n]
    return close


def key_info(key: Any, context: str | None = None) -> KeyInfo:
    """The KeyInfo of a key as written; ConditionError (naming the nearest keys) otherwise."""
    where = f"{_show(context)}: " if context is not None else ""
    if not isinstance(key, str):
        raise ConditionError(f"{where}{_show(key)}: a key is a string")
    if key in registry.REGISTRY:
        return KeyInfo(key, registry.REGISTRY[key], "registry")
    if key in DERIVED:
        return KeyInfo(key, DERIVED[key], "derived")
    if not _KEY.fullmatch(key):
        lower = key.lower()
        if lower != key and (lower in registry.REGISTRY or lower in DERIVED):
            raise ConditionError(f"{where}key {_show(key)}: keys are lower case, did you mean {lower}?")
        raise ConditionError(f"{where}{_show(key)}: not a key (lower-case letters, digits, '_', '-', '.'; "
                             f"at most {MAX_KEY} characters, starting with a letter or digit)")
    if key.startswith(registry.IMPORT_PREFIX):
        raise ConditionError(f"{where}key {key}: an import leftover (x-<source>, spec/capabilities.md §1.7) "
                             "holds [key, value] pairs and cannot be compared")
    if "." in key:
        return KeyInfo(key, None, "extension")
    near = nearest_keys(key)
    hint = f"nearest registry keys: {', '.join(near)}" if near else "see spec/capabilities.md §2 for the registry"
    raise ConditionError(f"{where}unknown key {key!r} ({hint}); an extension key is written with a '.', "
                         "e.g. acme.tier (spec/capabilities.md §1.6)")


# --- values ----------------------------------------------------------------------------------

def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def version(value: Any) -> tuple[int, int] | None:
    """``"9.0"`` -> (9, 0); numbers are read as their text (a publisher's 8.6)."""
    if _number(value) is not None:
        value = repr(value)
    if not isinstance(value, str):
        return None
    match = _VERSION.fullmatch(value)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _unquote(text: str, where: str) -> tuple[str, bool]:
    """(text, quoted): ``"a b"`` is the string ``a b``; a stray quote is an error."""
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"') or '"' in text[1:-1]:
            raise ConditionError(f"{where}: unbalanced quotes in {_show(text)}")
        return text[1:-1], True
    if '"' in text:
        raise ConditionError(f"{where}: a quote inside {_show(text)} (quote the whole value: \"...\")")
    return text, False


def _range_text(spec: registry.KeySpec) -> str:
    low = "" if spec.minimum is None else f"{spec.minimum:g}"
    high = "" if spec.maximum is None else f"{spec.maximum:g}"
    return f"{low}..{high}"


def _kind_text(info: KeyInfo) -> str:
    spec = info.spec
    assert spec is not None
    unit = f" in {spec.unit}" if spec.unit not in ("", "count", "score") else ""
    if spec.type == "int":
        return f"a whole number{unit}" + (" (a count)" if spec.unit == "count" else "")
    return f"a number{unit}"


def _typed_number(info: KeyInfo, raw: Any, where: str) -> int | float:
    spec = info.spec
    assert spec is not None
    if isinstance(raw, str):
        try:
            value = units.parse_quantity(raw, info.unit)
        except units.UnitError as exc:
            raise ConditionError(f"{where}: {info.name} is {_kind_text(info)}, got {_show(raw)} ({exc})") from None
    elif _number(raw) is not None:
        value = raw
        if isinstance(value, float) and value.is_integer() and spec.type == "int":
            value = int(value)
        if abs(value) > units.LIMIT:
            raise ConditionError(f"{where}: {info.name} {value!r} is out of range (larger than 2^64)")
    else:
        raise ConditionError(f"{where}: {info.name} is {_kind_text(info)}, got {_show(raw)}")
    if spec.type == "int" and not isinstance(value, int):
        raise ConditionError(f"{where}: {info.name} is {_kind_text(info)}, got {_show(raw)}")
    if ((spec.minimum is not None and value < spec.minimum)
            or (spec.maximum is not None and value > spec.maximum)):
        hint = " (a ratio: 0.8, or 80%)" if spec.unit == "ratio" and value > 1 else ""
        raise ConditionError(f"{where}: {info.name} {_show(raw)} is out of range {_range_text(spec)}{hint}")
    return value


def _typed_text(info: KeyInfo, raw: Any, op: str, where: str) -> Any:
    spec = info.spec
    assert spec is not None
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise ConditionError(f"{where}: {info.name} is text, got {_show(raw)}")
    text = raw if isinstance(raw, str) else repr(raw)
    syntax = spec.value_syntax
    if syntax == "version":
        parsed = version(text)
        if parsed is None:
            raise ConditionError(f"{where}: {info.name} is a version MAJOR.MINOR (e.g. 9.0), got {_show(text)}")
        return parsed
    if op in ORDERING:
        raise ConditionError(f"{where}: {info.name} is text: compare it with = != in notin, not {op}")
    if syntax == "currency":
        code = text.upper()
        if not _CURRENCY.fullmatch(code):
            raise ConditionError(f"{where}: {info.name} is an ISO 4217 code such as USD, got {_show(text)}")
        return code
    if syntax == "verbatim":
        return text
    text = text.lower()  # registry values are lower case (spec/capabilities.md §1.8)
    if syntax == "label" and not _LABEL.fullmatch(text):
        raise ConditionError(f"{where}: {info.name} is one DNS label (letters, digits, '-'), got {_show(raw)}")
    if spec.choices is not None and text not in spec.choices:
        near = difflib.get_close_matches(text, spec.choices, n=1, cutoff=0.5)
        hint = f"; did you mean {near[0]}?" if near else ""
        raise ConditionError(f"{where}: {info.name} is one of {', '.join(spec.choices)}, got {_show(raw)}{hint}")
    return text


def _typed_bool(info: KeyInfo, raw: Any, op: str, where: str) -> bool:
    if op in ORDERING:
        raise ConditionError(f"{where}: {info.name} is true or false: compare it with = != in notin")
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ConditionError(f"{where}: {info.name} is true or false, got {_show(raw)}")


def _untyped(info: KeyInfo, raw: Any, quoted: bool, where: str) -> Any:
    """An extension key's value: a number (in its name's unit), true/false, or a string."""
    if isinstance(raw, bool):
        return raw
    if _number(raw) is not None:
        if abs(raw) > units.LIMIT:
            raise ConditionError(f"{where}: {info.name} {raw!r} is out of range (larger than 2^64)")
        return raw
    if not isinstance(raw, str):
        raise ConditionError(f"{where}: a value is a string, a finite number or true/false, got {_show(raw)}")
    if quoted:
        return raw
    if raw in ("true", "false"):
        return raw == "true"
    if info.unit or units.is_number_text(raw):
        try:
            return units.parse_quantity(raw, info.unit)
        except units.UnitError as exc:
            if info.unit:
                raise ConditionError(f"{where}: {info.name} is a number in {info.unit} (by its name, "
                                     f"spec/capabilities.md §1.2), got {_show(raw)} ({exc})") from None
            raise ConditionError(f"{where}: {_show(raw)}: {exc}") from None
    return raw


def _split_price(raw: Any, where: str) -> tuple[Any, str | None]:
    """``2.5``, ``2.5USD``, ``2.5 usd``: (number text, currency code or None)."""
    if not isinstance(raw, str):
        return raw, None
    match = _PRICE.fullmatch(raw.strip())
    if match is None or not match.group(1) or not units.is_number_text(match.group(1)):
        return raw, None
    return match.group(1), match.group(2).upper()


# --- conditions ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Condition:
    """``key op value`` (or ``key in [v, ...]``), typed by the key: ``values`` holds the values
    in the key's type and base unit; ``value`` is their text as the condition prints them;
    ``currency`` is the currency a price condition's values are written in, if it says."""

    key: str
    op: str
    value: str
    values: tuple = ()
    currency: str | None = None
    info: KeyInfo | None = field(default=None, compare=False, repr=False)

    @classmethod
    def make(cls, key: Any, op: Any, value: Any, *, _text: str | None = None,
             _quoted: tuple[bool, ...] | None = None) -> Condition:
        """From Python values: ``("accel_free", ">=", 2)``, ``("region", "in", ["bj", "sh"])``,
        ``("accel_memory_bytes", ">=", "80GiB")``."""
        shown = _text if _text is not None else f"{key}{op}{value!r}" if not isinstance(value, str) else f"{key}{op}{value}"
        where = _show(shown)
        if op == "==":
            op = "="
        if op == "not in":
            op = "notin"
        if not isinstance(op, str) or op not in ALL_OPERATORS:
            raise ConditionError(f"{where}: operator {_show(op)} must be one of {' '.join(ALL_OPERATORS)}")
        info = key_info(key, shown)
        spec = info.spec
        if spec is not None and spec.type not in ("int", "number", "float", "str", "bool"):
            raise ConditionError(f"{where}: {info.name} holds {spec.type} and cannot be compared")
        if op in LIST_OPERATORS:
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
                raise ConditionError(f"{where}: {op} takes a list of values, e.g. region in [bj,sh]")
            raw = list(value)
            if not raw:
                raise ConditionError(f"{where}: the list is empty")
            if len(raw) > MAX_ITEMS:
                raise ConditionError(f"{where}: more than {MAX_ITEMS} values in the list")
        else:
            if isinstance(value, (list, tuple, set, frozenset, dict)):
                raise ConditionError(f"{where}: a list of values goes with in or notin, not {op}")
            raw = [value]
        quoted = _quoted or tuple(False for _ in raw)
        typed = []
        currencies = set()
        for item, was_quoted in zip(raw, quoted):
            if isinstance(item, str):
                if not item:
                    raise ConditionError(f"{where}: empty value")
                if len(item) > MAX_VALUE:
                    raise ConditionError(f"{where}: a value is longer than {MAX_VALUE} characters")
                if not item.isprintable():
                    raise ConditionError(f"{where}: a value has control characters")
            if info.is_price:
                item, code = _split_price(item, where)
                currencies.add(code)
            if spec is None:
                typed.append(_untyped(info, item, was_quoted, where))
            elif spec.type in ("int", "number", "float"):
                typed.append(_typed_number(info, item, where))
            elif spec.type == "str":
                typed.append(_typed_text(info, item, op, where))
            else:
                typed.append(_typed_bool(info, item, op, where))
        if info.is_price and len(currencies) > 1:
            raise ConditionError(f"{where}: the values are in different currencies")
        currency = next(iter(currencies)) if info.is_price else None
        return cls(info.name, op, _values_text(typed, op, currency), tuple(typed), currency, info)

    @classmethod
    def parse(cls, text: Any) -> Condition:
        """``"accel_free>=2"``, ``"region in [bj,sh]"``, ``"accel_memory_bytes>=80GiB"``."""
        if not isinstance(text, str):
            raise ConditionError(f"{_show(text)}: a condition is a string KEY OP VALUE")
        where = _show(text)
        if len(text) > MAX_TEXT:
            raise ConditionError(f"{where}: longer than {MAX_TEXT} characters")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
            raise ConditionError(f"{where}: control characters are not allowed")
        match = _LIST_FORM.fullmatch(text)
        if match is not None:
            key, op, rest = match.groups()
            items, quoted = _parse_list(rest, where)
            op = "notin" if op.startswith("not") else op
            return cls.make(key, op, items, _text=text, _quoted=quoted)
        match = _OP_FORM.fullmatch(text)
        if match is None:
            raise ConditionError(f"{where}: expected KEY OP VALUE with OP one of {' '.join(ALL_OPERATORS)} "
                                 "(in/notin take a list: region in [bj,sh])")
        key, op, rest = match.groups()
        if rest[:1] in ("<", ">", "=", "!"):  # "a>>1", "a=<1": typos
            raise ConditionError(f"{where}: expected KEY OP VALUE, the value starts with {rest[0]!r}")
        if rest.startswith("["):
            raise ConditionError(f"{where}: a list of values goes with in or notin (region in [bj,sh])")
        if not rest:
            raise ConditionError(f"{where}: empty value")
        value, was_quoted = _unquote(rest, where)
        if ("[" in value or "]" in value) and not was_quoted:
            raise ConditionError(f"{where}: brackets belong around an in/notin list")
        return cls.make(key, op, value, _text=text, _quoted=(was_quoted,))

    def __str__(self) -> str:
        if self.op in LIST_OPERATORS:
            return f"{self.key} {self.op} {self.value}"
        return f"{self.key}{self.op}{self.value}"

    @property
    def is_price(self) -> bool:
        return self.key in PRICE_KEYS

    def test(self, actual: Any) -> bool:
        """Whether a value read from validated data satisfies the condition."""
        spec = self.info.spec if self.info is not None else None
        syntax = spec.value_syntax if spec is not None else None
        if spec is None:
            return self._test_untyped(actual)
        if spec.type in ("int", "number", "float"):
            actual = _number(actual)
        elif spec.type == "bool":
            actual = actual if isinstance(actual, bool) else None
        elif syntax == "version":
            actual = version(actual)
        elif not isinstance(actual, str):
            actual = None
        elif syntax == "currency":
            actual = actual.upper()
        elif syntax != "verbatim":
            actual = actual.lower()
        if actual is None:
            return False
        return self._apply(actual, self.values)

    def _apply(self, actual: Any, values: tuple) -> bool:
        if self.op == "in":
            return actual in values
        if self.op == "notin":
            return actual not in values
        return OPERATORS[self.op](actual, values[0])

    def _test_untyped(self, actual: Any) -> bool:
        def same_kind(v: Any) -> bool:
            if isinstance(v, bool) or isinstance(actual, bool):
                return isinstance(v, bool) and isinstance(actual, bool)
            if _number(v) is not None:
                return _number(actual) is not None
            return isinstance(actual, str)
        if not isinstance(actual, (str, int, float)) or (_number(actual) is None and not isinstance(actual, (str, bool))):
            return False  # arrays, maps, null, NaN: nothing compares with them
        values = tuple(v for v in self.values if same_kind(v))
        if self.op == "notin":
            return actual not in values
        if not values:
            return self.op == "!="  # another kind of value is certainly not equal
        if self.op == "in":
            return actual in values
        if self.op in ORDERING and isinstance(actual, bool):
            return False
        return self._apply(actual, values)

    def holds(self, resolution: Resolution) -> bool:
        """Evaluated on a resolution as it is (LOAD first, then CAPS; prices not converted)."""
        found, actual = lookup_key(resolution, self.key)
        return found and self.test(actual)

    @property
    def selector(self) -> tuple[str, Any] | None:
        """The browse sub-type this condition allows (an equality on a §1.1 key), if any."""
        if self.op != "=" or not isinstance(self.values[0], str):
            return None
        return registry.selector_for(self.key, self.values[0])


def _values_text(values: list, op: str, currency: str | None) -> str:
    def one(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, tuple):
            return f"{v[0]}.{v[1]}"
        text = v if isinstance(v, str) else repr(v)
        return f"{text} {currency}" if currency else text
    if op in LIST_OPERATORS:
        return "[" + ",".join(one(v) for v in values) + "]"
    return one(values[0])


def _parse_list(text: str, where: str) -> tuple[list[str], tuple[bool, ...]]:
    """``[bj, sh, "a b"]``: items split on commas outside quotes, trimmed, none empty."""
    if not text.startswith("[") or not text.endswith("]") or len(text) < 2:
        raise ConditionError(f"{where}: in/notin take a list in brackets, e.g. region in [bj,sh]"
                             + (" (unbalanced brackets)" if text.count("[") != text.count("]") else ""))
    inner = text[1:-1]
    items, quoted, current, in_quote = [], [], [], False
    for ch in inner:
        if ch == '"':
            in_quote = not in_quote
            current.append(ch)
        elif in_quote:
            current.append(ch)
        elif ch in "[]":
            raise ConditionError(f"{where}: unbalanced or nested brackets")
        elif ch == ",":
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    if in_quote:
        raise ConditionError(f"{where}: unbalanced quotes")
    items.append("".join(current))
    if len(items) == 1 and not items[0].strip():
        raise ConditionError(f"{where}: the list is empty")
    out = []
    for item in items:
        item = item.strip()
        if not item:
            raise ConditionError(f"{where}: an empty item in the list")
        value, was_quoted = _unquote(item, where)
        out.append(value)
        quoted.append(was_quoted)
    if len(out) > MAX_ITEMS:
        raise ConditionError(f"{where}: more than {MAX_ITEMS} values in the list")
    return out, tuple(quoted)


WhereItem = str | Condition | tuple
# What ``Resolver.find(where=...)`` accepts: one item, a list of items, or {key: value} equalities
# ({key: [values]} is ``key in [values]``).
Where = WhereItem | Mapping[str, Any] | Iterable[WhereItem] | None


def parse_where(where: Where) -> tuple[Condition, ...]:
    """Conditions from strings (``"accel_free>=2"``), tuples (``("accel_free", ">=", 2)``,
    ``("region", "in", ["bj", "sh"])``), Condition objects, a mapping of equalities
    (``{"region": "bj"}``, ``{"region": ["bj", "sh"]}``) or a list of these."""
    if where is None:
        return ()
    # (key, op, value) rather than three condition strings: its first item is a bare key.
    single_tuple = (isinstance(where, tuple) and len(where) == 3 and isinstance(where[0], str)
                    and not any(ch in where[0] for ch in "=<>! "))
    if isinstance(where, (str, Condition)) or single_tuple:
        where = [where]
    elif isinstance(where, Mapping):
        where = [(k, "in" if isinstance(v, (list, tuple, set, frozenset)) else "=", v) for k, v in where.items()]
    elif isinstance(where, (bytes, int, float)) or not isinstance(where, Iterable):
        raise ConditionError(f"{_show(where)}: conditions are strings, (key, op, value) tuples or a mapping")
    out = []
    for item in where:
        if isinstance(item, Condition):
            # One built by hand (Condition("accel_free", ">=", "2")) is read like its text.
            out.append(item if item.info is not None and item.values else Condition.parse(str(item)))
        elif isinstance(item, str):
            out.append(Condition.parse(item))
        elif isinstance(item, tuple) and len(item) == 3:
            out.append(Condition.make(*item))
        else:
            raise ConditionError(f"{_show(item)}: a condition is 'KEY OP VALUE' or (key, op, value)")
        if len(out) > 64:
            raise ConditionError("more than 64 conditions")
    return tuple(out)


def lookup_key(resolution: Resolution, key: str) -> tuple[bool, Any]:
    """LOAD first (what is true now), then CAPS (spec/discovery.md §3.6)."""
    for source in (resolution.load, resolution.capabilities):
        if source is not None and key in source:
            return True, source[key]
    return False, None


def browse_selector(conditions: Iterable[Condition]) -> tuple[str, Any] | None:
    """The sub-type to browse: among equalities on §1.1 keys, the most specific selector
    (registry order: accel, vendor, kind, region), so the listing fetched is the smallest."""
    found = {c.selector[0]: c.selector for c in conditions if c.selector is not None}
    return next((found[s] for s in registry.SELECTORS if s in found), None)


# --- sort keys -------------------------------------------------------------------------------

def natural_descending(key: str) -> bool:
    return key.endswith(_DESCENDING_SUFFIXES) or key in _DESCENDING_KEYS


@dataclass(frozen=True)
class SortKey:
    key: str
    descending: bool
    info: KeyInfo | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: Any) -> SortKey:
        """``KEY`` (its natural direction: descending for counts, free amounts, bytes, rates and
        CATS scores, ascending otherwise), ``KEY+`` ascending, ``KEY-`` descending, ``-KEY``
        the natural direction reversed."""
        if not isinstance(text, str):
            raise ConditionError(f"{_show(text)}: a sort key is a string")
        stripped = text.strip()
        if not stripped:
            raise ConditionError("empty sort key")
        reverse = stripped.startswith("-")
        key = stripped[1:] if reverse else stripped
        explicit = None
        if key[-1:] in ("+", "-"):
            explicit, key = key[-1] == "-", key[:-1]
            if reverse:
                raise ConditionError(f"sort key {_show(text)}: write KEY+ or KEY-, or -KEY, not both")
        if not key or key[:1] in "+-" or any(ch.isspace() for ch in key):
            raise ConditionError(f"{_show(text)}: not a sort key (KEY, KEY+, KEY- or -KEY)")
        info = key_info(key, f"sort key {text}")
        if info.spec is not None and info.spec.type not in ("int", "number", "float", "str", "bool"):
            raise ConditionError(f"sort key {key}: holds {info.spec.type} and cannot be ordered")
        natural = natural_descending(key)
        return cls(key, explicit if explicit is not None else natural != reverse, info)

    def __str__(self) -> str:
        return f"{self.key}{'-' if self.descending else '+'}"

    def sortable(self, value: Any) -> tuple[int, Any] | None:
        """(class, value) for ordering: numbers (0) before versions (1) before text (2)."""
        spec = self.info.spec if self.info is not None else None
        if spec is not None and spec.value_syntax == "version":
            v = version(value)
            return (1, v) if v is not None else None
        n = _number(value)
        if n is not None:
            return (0, n)
        if isinstance(value, bool):
            return (2, "true" if value else "false")
        if isinstance(value, str):
            return (2, value.lower() if spec is not None and spec.value_syntax == "lower" else value)
        return None

    def compare_values(self, a: tuple[bool, Any], b: tuple[bool, Any]) -> int:
        """cmp-style on (found, value) pairs; values that are missing (or cannot be ordered)
        come last whichever the direction, and numbers before strings in both directions."""
        pa = self.sortable(a[1]) if a[0] else None
        pb = self.sortable(b[1]) if b[0] else None
        if pa is None or pb is None:
            return (pa is None) - (pb is None)
        if pa[0] != pb[0]:
            return -1 if pa[0] < pb[0] else 1
        result = (pa[1] > pb[1]) - (pa[1] < pb[1])
        return -result if self.descending else result

    def compare(self, a: Resolution, b: Resolution) -> int:
        return self.compare_values(lookup_key(a, self.key), lookup_key(b, self.key))


SortSpec = str | SortKey | Iterable[str | SortKey | tuple] | None


def parse_sort(sort: SortSpec) -> tuple[SortKey, ...]:
    """``"price_per_hour+,accel_free-"``, ``[("price_per_hour", "asc"), "accel_free-"]``,
    a SortKey, or None (no sort keys)."""
    if sort is None:
        return ()
    if isinstance(sort, SortKey):
        return (sort,)
    if isinstance(sort, str):
        items: list[Any] = sort.split(",")
        if not sort.strip():
            raise ConditionError("empty sort key")
    elif isinstance(sort, tuple) and len(sort) == 2 and all(isinstance(x, str) for x in sort) \
            and sort[1].lower() in ("asc", "desc"):
        items = [sort]
    elif isinstance(sort, Iterable) and not isinstance(sort, (bytes, Mapping)):
        items = list(sort)
    else:
        raise ConditionError(f"sort {_show(sort)}: 'key+,key-' or a list of keys or (key, 'asc'|'desc')")
    keys: list[SortKey] = []
    for item in items:
        if isinstance(item, SortKey):
            key = item
        elif isinstance(item, str):
            if not item.strip():
                raise ConditionError(f"sort {_show(sort)}: an empty key")
            key = SortKey.parse(item)
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], str) \
                and item[1].lower() in ("asc", "desc"):
            info = key_info(item[0], f"sort key {item[0]}")
            key = SortKey(info.name, item[1].lower() == "desc", info)
        else:
            raise ConditionError(f"sort {_show(item)}: a key, 'key+'/'key-', or (key, 'asc'|'desc')")
        if any(k.key == key.key for k in keys):
            raise ConditionError(f"sort key {key.key} given twice")
        keys.append(key)
        if len(keys) > MAX_SORT_KEYS:
            raise ConditionError(f"more than {MAX_SORT_KEYS} sort keys")
    if not keys:
        raise ConditionError("empty sort key")
    return tuple(keys)


def sort_function(keys: SortKey | Iterable[SortKey] | None, tie_break: Callable[[Resolution], Any],
                  value: Callable[[Resolution, str], tuple[bool, Any]] | None = None
                  ) -> Callable[[Resolution], Any]:
    """A ``sorted`` key: the sort keys in turn, then the caller's tie-break. ``value(r, key)``
    reads a key (default: LOAD, then CAPS, as they are)."""
    if keys is None:
        keys = ()
    elif isinstance(keys, SortKey):
        keys = (keys,)
    keys = tuple(keys)
    read = value or lookup_key

    def cmp(a: Resolution, b: Resolution) -> int:
        for key in keys:
            first = key.compare_values(read(a, key.key), read(b, key.key))
            if first:
                return first
        ta, tb = tie_break(a), tie_break(b)
        return (ta > tb) - (ta < tb)
    return functools.cmp_to_key(cmp)
