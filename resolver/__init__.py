"""Unified compute-identifier resolver: a DNS profile for finding and using compute.

Importing the package registers the CAPS and LOAD record types with dnspython — lazily: the
names below are imported on first use (``from resolver import Resolver``), and the record
types are registered as soon as dnspython's ``dns.rdata`` is imported (at once when it
already is), so ``import resolver`` itself stays cheap (``cid --help`` does not load
dnspython, asyncio or aiohttp) while every dnspython API still knows CAPS and LOAD.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "AiohttpResolver": ".aiohttp_resolver",
    "Condition": ".discovery",
    "ConditionError": ".discovery",
    "Endpoint": ".resolution",
    "FindResult": ".discovery",
    "IdentifierError": ".identifier",
    "Resolution": ".resolution",
    "Resolver": ".client",
    "ResolverConfigError": ".client",
    "Status": ".status",
    "ValidationRefused": ".client",
    "config_path": ".client",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


class _RegisterRecordTypes:
    """A one-shot import hook: right after dnspython's package ``dns`` has executed (before any
    of its submodules starts), import ``resolver.records``, which loads ``dns.rdata`` and
    registers CAPS and LOAD. So no partially imported dnspython module is ever touched, and
    whatever part of dnspython is imported next already knows the two types."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "dns":
            return None
        _uninstall()
        spec = importlib.util.find_spec(fullname)
        exec_module = getattr(getattr(spec, "loader", None), "exec_module", None)
        if exec_module is None:
            return spec

        def exec_and_register(module):
            exec_module(module)
            importlib.import_module(".records", __name__)

        spec.loader.exec_module = exec_and_register
        return spec


def _uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _RegisterRecordTypes)]


if "dns" in sys.modules:
    from . import records  # noqa: F401  (dnspython is in use already: register now)
else:
    _uninstall()
    sys.meta_path.insert(0, _RegisterRecordTypes())
