"""Prices that compare (spec/discovery.md §5.4): exchange rates from a small TOML file, and the
rule that two currencies are never ranked together.

A rates file::

    [rates]
    base = "USD"          # the currency every price is converted into
    date = 2026-12-01     # when the rates were taken (TOML date or date-time)
    CNY = 0.14            # one CNY is worth 0.14 USD
    EUR = 1.08

is refused (one line, RatesError) when it is malformed or older than MAX_AGE_DAYS.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .conditions import ConditionError

MAX_AGE_DAYS = 7          # rates older than this are stale
MAX_AHEAD_DAYS = 1        # a date further ahead than this (time zones aside) is a mistake
MAX_FILE = 1 << 20        # bytes of a rates file
MAX_RATE = 1e9
_CODE = re.compile(r"[A-Z]{3}")


class RatesError(ConditionError):
    """A rates file or mapping that cannot be used; str is one line naming the file."""


def currency_code(code: Any, what: str = "currency") -> str:
    """An ISO 4217 code (three letters, any case in, upper case out); ConditionError otherwise."""
    if not isinstance(code, str) or not _CODE.fullmatch(code.upper()) or not code.isascii():
        shown = code if isinstance(code, str) and code.isprintable() and len(code) < 40 else repr(code)[:40]
        raise ConditionError(f"{what} {shown}: not an ISO 4217 currency code (three letters, e.g. USD)")
    return code.upper()


@dataclass(frozen=True)
class Rates:
    """What one unit of each currency is worth in ``base`` (``rates[base] == 1``)."""

    base: str
    date: dt.date
    rates: Mapping[str, float] = field(default_factory=dict)
    source: str = "rates"

    def factor(self, code: str, into: str) -> float | None:
        """Multiply an amount in ``code`` by this to get ``into``; None when either is unknown."""
        a, b = self.rates.get(code), self.rates.get(into)
        if a is None or b is None:
            return None
        return a / b

    def to_json(self) -> dict[str, Any]:
        return {"base": self.base, "date": self.date.isoformat(), "source": self.source,
                "rates": dict(sorted(self.rates.items()))}

    @classmethod
    def load(cls, path: str | Path, *, today: dt.date | None = None) -> Rates:
        """Read a rates file; RatesError (one line, naming the file) when it cannot be used."""
        name = str(path)
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_FILE + 1)
        except OSError as exc:
            raise RatesError(f"{name}: cannot read: {exc.strerror or exc}") from None
        if len(data) > MAX_FILE:
            raise RatesError(f"{name}: larger than {MAX_FILE} bytes: not a rates file")
        try:
            doc = tomllib.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise RatesError(f"{name}: not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise RatesError(f"{name}: not TOML: {exc}") from None
        return cls.from_mapping(doc, source=name, today=today)

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any], *, source: str = "rates", today: dt.date | None = None) -> Rates:
        """From the file's structure (``{"rates": {...}}``) or its ``[rates]`` table itself."""
        if not isinstance(doc, Mapping):
            raise RatesError(f"{source}: rates are a mapping with base, date and CODE = rate")
        if "rates" in doc and isinstance(doc["rates"], Mapping):
            extra = sorted(k for k in doc if k != "rates")
            if extra:
                raise RatesError(f"{source}: unknown top-level key {extra[0]!r} (only a [rates] table)")
            table = doc["rates"]
        elif "base" in doc:
            table = doc
        else:
            raise RatesError(f"{source}: no [rates] table (base = \"USD\", date = YYYY-MM-DD, CODE = rate)")
        base = table.get("base")
        if base is None:
            raise RatesError(f"{source}: [rates] has no base (the currency prices are converted into)")
        try:
            base = currency_code(base, "base")
        except ConditionError as exc:
            raise RatesError(f"{source}: {exc}") from None
        date = _date(table.get("date"), source)
        today = today or dt.datetime.fromtimestamp(time.time(), dt.timezone.utc).date()
        age = (today - date).days
        if age > MAX_AGE_DAYS:
            raise RatesError(f"{source}: stale: the rates are of {date.isoformat()}, {age} days old "
                             f"(at most {MAX_AGE_DAYS})")
        if age < -MAX_AHEAD_DAYS:
            raise RatesError(f"{source}: date {date.isoformat()} is in the future")
        rates: dict[str, float] = {base: 1.0}
        for key, value in table.items():
            if key in ("base", "date"):
                continue
            if not isinstance(key, str) or not _CODE.fullmatch(key):
                raise RatesError(f"{source}: {str(key)[:40]!r} is not a currency code (upper case, e.g. CNY)")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not 0 < value <= MAX_RATE:
                raise RatesError(f"{source}: {key} = {str(value)[:40]}: a rate is a positive number "
                                 f"(what one {key} is worth in {base})")
            if key == base and value != 1:
                raise RatesError(f"{source}: {key} is the base, its rate must be 1")
            rates[key] = float(value)
        if len(rates) == 1:
            raise RatesError(f"{source}: no rates besides the base {base}")
        return cls(base, date, rates, source)


def _date(value: Any, source: str) -> dt.date:
    if value is None:
        raise RatesError(f"{source}: [rates] has no date (when the rates were taken: date = YYYY-MM-DD)")
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
        try:
            return _date(dt.datetime.fromisoformat(value), source)
        except ValueError:
            pass
    raise RatesError(f"{source}: date {str(value)[:40]!r} is not a date (YYYY-MM-DD)")


def load_rates(rates: str | Path | Mapping[str, Any] | Rates | None) -> Rates | None:
    if rates is None or isinstance(rates, Rates):
        return rates
    if isinstance(rates, (str, Path)):
        return Rates.load(rates)
    if isinstance(rates, Mapping):
        return Rates.from_mapping(rates)
    raise RatesError(f"rates {type(rates).__name__}: a file path, a mapping or a Rates")


class MixedCurrencies(ConditionError):
    """Prices in several currencies were to be compared without a currency or rates: a usage
    error found after the search (the currencies are only known then)."""

    def __init__(self, what: str, currencies: tuple[str, ...]):
        self.what, self.currencies = what, currencies
        super().__init__(f"{what} over prices in several currencies ({', '.join(currencies)}): "
                         "pass currency='CODE' to keep one, or rates= to convert them")
