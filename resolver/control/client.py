"""The client side of the control channel (``cid ctl``): one request, one reply."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from . import protocol

TIMEOUT = 30.0  # a reload of a large zone set takes a while


class NotRunning(Exception):
    """No server at the socket or address (one line)."""


async def call(command: str, args: list[str], *, socket_path: Path | None = None,
               tcp: tuple[str, int] | None = None, key: bytes | None = None,
               timeout: float = TIMEOUT) -> dict[str, Any]:
    try:
        if tcp is not None:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*tcp), timeout)
            where = f"{tcp[0]}:{tcp[1]}"
        else:
            assert socket_path is not None
            where = str(socket_path)
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(socket_path)), timeout)
    except (FileNotFoundError, ConnectionRefusedError):
        raise NotRunning(f"no server is running at {where}") from None
    except PermissionError:
        raise NotRunning(f"{where}: permission denied (run as the server's user)") from None
    except (OSError, asyncio.TimeoutError) as exc:
        raise NotRunning(f"cannot reach {where}: {exc}") from None
    try:
        writer.write(protocol.encode(protocol.request(command, args, key)))
        await writer.drain()
        reply = await asyncio.wait_for(protocol.read_frame(reader, protocol.MAX_REPLY), timeout)
    except (asyncio.IncompleteReadError, ConnectionError):
        raise NotRunning(f"{where} closed the connection without a reply") from None
    except asyncio.TimeoutError:
        raise NotRunning(f"{where} did not reply within {timeout:g} s") from None
    finally:
        writer.close()
    if not isinstance(reply, dict):
        raise protocol.ProtocolError("the server's reply is not an object")
    return reply
