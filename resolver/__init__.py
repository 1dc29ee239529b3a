"""Unified compute-identifier resolver: a DNS profile for finding and using compute.

Importing the package registers the CAPS and LOAD record types with dnspython.
"""

from . import records  # noqa: F401  (registers CAPS/LOAD)
from .identifier import IdentifierError
from .status import Status

__all__ = ["IdentifierError", "Status"]
__version__ = "0.1.0"
