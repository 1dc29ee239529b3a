"""``cid load``: replace an identifier's LOAD by signed UPDATE (resolver/cli/register.py)."""

from .register import register_load as register

__all__ = ["register"]
