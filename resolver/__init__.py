"""Unified compute-identifier resolver: a DNS profile for finding and using compute.

Importing the package registers the CAPS and LOAD record types with dnspython.
"""

from . import records  # noqa: F401  (registers CAPS/LOAD)
from .identifier import IdentifierError
from .status import Status
from .resolution import Endpoint, Resolution
from .client import Resolver

__all__ = ["Endpoint", "IdentifierError", "Resolution", "Resolver", "Status"]
__version__ = "0.1.0"
