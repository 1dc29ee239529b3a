"""The event loop every ``cid`` command runs on: uvloop where installed (the serving and
resolving hot paths are faster on it), the stock asyncio loop otherwise. asyncio itself is
imported only when a command runs a loop (``cid --help`` never does)."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        import asyncio
        return asyncio.run(coro)
    return uvloop.run(coro)
