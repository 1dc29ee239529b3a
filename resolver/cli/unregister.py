"""``cid unregister``: remove an identifier's records by signed UPDATE (resolver/cli/register.py)."""

from .register import register_unregister as register

__all__ = ["register"]
