"""Discovery ("find", spec/discovery.md): search a namespace and its delegated children for
identifiers whose validated capabilities and load match a set of conditions."""

from .conditions import Condition, ConditionError, SortKey, parse_sort, parse_where
from .prices import MixedCurrencies, Rates, RatesError
from .search import FindResult, Match, Skipped, find

__all__ = ["Condition", "ConditionError", "FindResult", "Match", "MixedCurrencies", "Rates", "RatesError",
           "Skipped", "SortKey", "find", "parse_sort", "parse_where"]
