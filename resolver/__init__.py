"""Unified compute-identifier resolver: a DNS profile for finding and using compute.

Importing the package registers the CAPS and LOAD record types with dnspython.
"""

from . import records  # noqa: F401  (registers CAPS/LOAD)
from .identifier import IdentifierError
from .status import Status
from .resolution import Endpoint, Resolution
from .client import Resolver, ValidationRefused
from .discovery import Condition, ConditionError, FindResult

__all__ = ["AiohttpResolver", "Condition", "ConditionError", "Endpoint", "FindResult", "IdentifierError",
           "Resolution", "Resolver", "Status", "ValidationRefused"]


def __getattr__(name: str):
    # aiohttp is imported only by those who use it: `cid` starts faster without it.
    if name == "AiohttpResolver":
        from .aiohttp_resolver import AiohttpResolver
        return AiohttpResolver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__version__ = "0.1.0"
