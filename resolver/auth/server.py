"""Asyncio serving of the authoritative answerer: UDP and TCP on each listen address.

All DNS decisions live in ``answer.answer_query``; the listeners (``resolver.serving``) only
move bytes. Repeat UDP questions are answered from ``store.responses`` (rendered responses by
query bytes after the ID) without entering ``answer_query``. It runs on whatever loop is
current (the CLI installs uvloop), and several servers can share one loop.

With a ``primary`` (``cid serve auth --config``), UPDATE messages and TSIG-signed messages
go to it (``resolver.auth.primary``): updates are answered later, once durable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..serving import TCP_IDLE_TIMEOUT, DnsServer, Handled, Reply, ResponseDict
from .answer import answer_query
from .store import ZoneStore
from .transfer import Transfers, is_transfer

if TYPE_CHECKING:
    from .primary import Primary

MAX_TCP_CONNECTIONS = 512  # beyond this, new connections are closed at once (RFC 7766 §6.2.2)


class AuthServer(DnsServer):
    """Serve ``store`` over UDP and TCP on every (host, port) in ``listen``; port 0 picks one."""

    def __init__(
        self,
        store: ZoneStore,
        listen: list[tuple[str, int]],
        *,
        tcp_idle_timeout: float = TCP_IDLE_TIMEOUT,
        max_tcp_connections: int = MAX_TCP_CONNECTIONS,
        primary: "Primary | None" = None,
    ):
        super().__init__(listen, tcp_idle_timeout=tcp_idle_timeout,
                         max_tcp_connections=max_tcp_connections)
        self.store = store
        # Live zones (``--config``): UPDATE and TSIG-signed messages go there (primary.py),
        # AXFR and IXFR to their transfers (transfer.py); without, transfers are refused.
        self.primary = primary
        self.transfers = Transfers(primary) if primary is not None else None

    def udp_cache(self) -> tuple[ResponseDict, float | None]:
        # Same contract as answer_query's cache: identical bytes after the ID get the identical
        # response (only ever stored for well-formed queries, never for QR=1). Read per wake-up
        # because the store replaces the dict whenever the served data changes.
        return self.store.responses, None

    def handle_from(self, wire: bytes, tcp: bool, later: Reply, peer) -> Handled:
        # Transfers depend on who asks (allow_transfer); everything else does not.
        if self.transfers is not None and is_transfer(wire):
            return self.transfers.handle(wire, tcp, peer)
        return self.handle(wire, tcp, later)

    def handle(self, wire: bytes, tcp: bool, later: Reply) -> Handled:
        # Queries: synchronous, an answer or None (drop the datagram / close the stream).
        # UPDATEs: LATER, answered by ``later`` once the change is durable (live.py).
        primary = self.primary
        if primary is not None and primary.wants(wire):
            return primary.handle(wire, tcp, later)
        return answer_query(self.store, wire, tcp=tcp)
