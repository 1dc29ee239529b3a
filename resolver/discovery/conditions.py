"""``--where`` conditions and ``--sort`` keys of a search (spec/discovery.md §3.6–3.7).

A condition is evaluated only on validated data of a resolution: LOAD first, then CAPS.
Values compare as numbers when both sides are numbers, otherwise as strings; a missing key
fails the condition (so a search can never match on data that is not there).
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..records import registry
from ..resolution import Resolution

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}
_EXPR = re.compile(r"\s*([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*(!=|<=|>=|==|=|<|>)\s*(.*?)\s*", re.S)
_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
MAX_KEY = 64
MAX_VALUE = 256
# Keys that are "more is better" and so sort descending (spec/discovery.md §3.7).
_DESCENDING_SUFFIXES = ("_free", "_count", "_bytes", "_norm")
_DESCENDING_KEYS = ("norm_fi",)


class ConditionError(ValueError):
    """A where-condition or sort key that cannot be understood; str is one line for users."""


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def _parse_number(text: str) -> float | int | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None  # "nan"/"inf" are strings, not numbers


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Condition:
    """``key op value``; ``value`` is the text as written (compared as a string) and ``number``
    its numeric reading when it is one (compared as a number against numeric data)."""

    key: str
    op: str
    value: str
    number: float | int | None = None

    @classmethod
    def make(cls, key: str, op: str, value: Any) -> Condition:
        op = "=" if op == "==" else op
        if not isinstance(key, str) or not _KEY.fullmatch(key) or len(key) > MAX_KEY:
            raise ConditionError(f"{key!r}: not a key (letters, digits, '_', '-', '.')")
        if op not in OPERATORS:
            raise ConditionError(f"{op!r}: operator must be one of {' '.join(OPERATORS)}")
        if isinstance(value, str):
            text, number = value, _parse_number(value)
        elif _number(value) is not None:
            text, number = _as_text(value), value
        elif isinstance(value, bool):
            text, number = _as_text(value), None
        else:
            raise ConditionError(f"{key}{op}{value!r}: value must be a string or a finite number")
        if not text or len(text) > MAX_VALUE:
            raise ConditionError(f"{key}{op}: value is empty or longer than {MAX_VALUE} characters")
        return cls(key, op, text, number)

    @classmethod
    def parse(cls, text: str) -> Condition:
        """``"accel_free>=2"``, ``"region=cn-bj"``, ``"accel_vendor != nvidia"``."""
        if not isinstance(text, str):
            raise ConditionError(f"{text!r}: a condition is a string KEY OP VALUE")
        match = _EXPR.fullmatch(text)
        if match is None or match.group(3)[:1] in ("<", ">", "=", "!"):  # "a>>1", "a=<1": typos
            raise ConditionError(f"{text!r}: expected KEY OP VALUE with OP one of {' '.join(OPERATORS)}")
        return cls.make(*match.groups())

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"

    def holds(self, resolution: Resolution) -> bool:
        found, actual = lookup_key(resolution, self.key)
        if not found:
            return False
        compare = OPERATORS[self.op]
        actual_number = _number(actual)
        if actual_number is not None and self.number is not None:
            return compare(actual_number, self.number)
        return compare(_as_text(actual), self.value)

    @property
    def selector(self) -> tuple[str, Any] | None:
        """The browse sub-type this condition allows (an equality on a §1.1 key), if any."""
        return registry.selector_for(self.key, self.value) if self.op == "=" else None


WhereItem = str | Condition | tuple
# What ``Resolver.find(where=...)`` accepts: one item, a list of items, or {key: value} equalities.
Where = WhereItem | Mapping[str, Any] | Iterable[WhereItem] | None


def parse_where(where: Where) -> tuple[Condition, ...]:
    """Conditions from strings (``"accel_free>=2"``), tuples (``("accel_free", ">=", 2)``),
    Condition objects, a mapping of equalities (``{"region": "cn-bj"}``) or a list of these."""
    if where is None:
        return ()
    single_tuple = (isinstance(where, tuple) and len(where) == 3 and isinstance(where[0], str)
                    and where[1] in (*OPERATORS, "=="))
    if isinstance(where, (str, Condition)) or single_tuple:
        where = [where]
    elif isinstance(where, Mapping):
        where = [(k, "=", v) for k, v in where.items()]
    out = []
    for item in where:
        if isinstance(item, Condition):
            out.append(item)
        elif isinstance(item, str):
            out.append(Condition.parse(item))
        elif isinstance(item, tuple) and len(item) == 3:
            out.append(Condition.make(*item))
        else:
            raise ConditionError(f"{item!r}: a condition is 'KEY OP VALUE' or (key, op, value)")
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


@dataclass(frozen=True)
class SortKey:
    key: str
    descending: bool

    @classmethod
    def parse(cls, text: str) -> SortKey:
        """``KEY`` or ``-KEY``: descending for counts, free amounts, bytes and CATS scores,
        ascending otherwise; the ``-`` prefix reverses that."""
        if not isinstance(text, str):
            raise ConditionError(f"{text!r}: a sort key is a string")
        reverse = text.startswith("-")
        key = text[1:] if reverse else text
        if not _KEY.fullmatch(key) or len(key) > MAX_KEY:
            raise ConditionError(f"{text!r}: not a sort key (KEY or -KEY)")
        natural = key.endswith(_DESCENDING_SUFFIXES) or key in _DESCENDING_KEYS
        return cls(key, natural != reverse)

    def compare(self, a: Resolution, b: Resolution) -> int:
        """cmp-style; identifiers without the key come last whichever the direction."""
        found_a, va = lookup_key(a, self.key)
        found_b, vb = lookup_key(b, self.key)
        if not (found_a and found_b):
            return (not found_a) - (not found_b)
        na, nb = _number(va), _number(vb)
        if na is not None and nb is not None:
            pa, pb = na, nb
        elif na is not None or nb is not None:
            return -1 if na is not None else 1  # numbers before strings, in both directions
        else:
            pa, pb = _as_text(va), _as_text(vb)
        result = (pa > pb) - (pa < pb)
        return -result if self.descending else result


def sort_function(key: SortKey | None, tie_break: Callable[[Resolution], Any]) -> Callable[[Resolution], Any]:
    """A ``sorted`` key: the sort key (if any), then the caller's tie-break."""
    def cmp(a: Resolution, b: Resolution) -> int:
        if key is not None:
            first = key.compare(a, b)
            if first:
                return first
        ta, tb = tie_break(a), tie_break(b)
        return (ta > tb) - (ta < tb)
    return functools.cmp_to_key(cmp)
