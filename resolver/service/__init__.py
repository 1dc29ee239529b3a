"""The recursive DNS front end: plain DNS over UDP and TCP answered by a Resolver, as a
validating recursive resolver answers stubs (see spec/service.md)."""

from .answer import Request, read_query, respond
from .server import RecursiveServer

__all__ = ["RecursiveServer", "Request", "read_query", "respond"]
