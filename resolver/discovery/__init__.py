"""Discovery ("find", spec/discovery.md): search a namespace and its delegated children for
identifiers whose validated capabilities and load match a set of conditions."""

from .conditions import Condition, ConditionError, SortKey, parse_where
from .search import FindResult, Skipped, find

__all__ = ["Condition", "ConditionError", "FindResult", "Skipped", "SortKey", "find", "parse_where"]
