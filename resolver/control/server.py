"""The control server inside ``cid serve auth`` / ``cid serve resolver``: a Unix socket (mode
0600: who can open it is who may command the server) and, optionally, loopback TCP where every
request must carry the shared key's HMAC (protocol.py). A bad frame is answered with an error
and the connection closed; nothing a client sends can stop the server."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from . import protocol

log = logging.getLogger(__name__)

# A command gets its arguments and returns (text for people, data for --json).
Command = Callable[[list[str]], Awaitable[tuple[str, Any]]]
IDLE_TIMEOUT = 10.0  # a client that opens the socket and says nothing is cut off
BACKLOG = 64


class CommandError(Exception):
    """A command's failure the operator can act on (bad name, unknown zone): one line."""


def loopback_address(text: str) -> tuple[str, int]:
    """``127.0.0.1:PORT`` or ``[::1]:PORT``; ValueError for anything not on loopback."""
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host:
        raise ValueError(f"--control-tcp {text}: give ADDR:PORT")
    try:
        address = ipaddress.ip_address(host)
        port = int(port_text)
    except ValueError:
        raise ValueError(f"--control-tcp {text}: not an IP address and port") from None
    if not address.is_loopback:
        raise ValueError(f"--control-tcp {text}: the control channel listens on loopback only")
    if not 0 <= port <= 65535:
        raise ValueError(f"--control-tcp {text}: port out of range")
    return host, port


class ControlServer:
    def __init__(self, commands: Mapping[str, Command], path: Path | None,
                 tcp: tuple[str, int] | None = None, key: bytes | None = None):
        if tcp is not None and key is None:
            raise ValueError("--control-tcp needs --control-key: TCP control requests are authenticated")
        self.commands, self.path, self.tcp, self.key = dict(commands), path, tcp, key
        self._servers: list[asyncio.base_events.Server] = []
        self._sockets: list[tuple[socket.socket, bool]] = []  # (listening socket, is TCP)
        self._seen: dict[str, float] = {}
        self.tcp_address: tuple[str, int] | None = None
        # A default path (no --control given) that another server holds is passed over with a
        # note, not an error: a second server on one machine must still start (name one with
        # --control PATH to reach it). A path the operator named is an error when taken.
        self.optional = False
        self.skipped: str | None = None

    def bind(self) -> None:
        """Create the listening sockets now, without an event loop: ``cid serve resolver
        --workers`` binds the shared socket in the supervisor (a taken path is an error at start)
        and serves it from a forked control process. ``start`` binds when this was not done."""
        if self._sockets:
            return
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if self.path.is_socket() and _alive(self.path) and self.optional:
                self.skipped = (f"control socket {self.path} is another server's: no control socket "
                                "for this one (give --control PATH)")
                self.path = None
        if self.path is not None:
            if self.path.is_socket():
                if _alive(self.path):
                    taken, self.path = self.path, None  # not ours: close() must not unlink it
                    raise OSError(f"{taken}: another server is listening there")
                self.path.unlink()  # left by a server that was killed
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old = os.umask(0o177)  # created 0600, never briefly wider
            try:
                sock.bind(str(self.path))
            except OSError:
                sock.close()
                self.path = None  # nothing of ours there
                raise
            finally:
                os.umask(old)
            os.chmod(self.path, 0o600)
            sock.listen(BACKLOG)
            self._sockets.append((sock, False))
        if self.tcp is not None:
            family = socket.AF_INET6 if ":" in self.tcp[0] else socket.AF_INET
            sock = socket.create_server(self.tcp, family=family, backlog=BACKLOG)
            self.tcp_address = sock.getsockname()[:2]
            self._sockets.append((sock, True))

    async def start(self) -> None:
        self.bind()
        for sock, tcp in self._sockets:
            def client(r, w, tcp=tcp):
                return self._client(r, w, tcp)
            if tcp:
                server = await asyncio.start_server(client, sock=sock)
            else:
                server = await asyncio.start_unix_server(client, sock=sock)
            self._servers.append(server)

    async def close(self, unlink: bool = True) -> None:
        """Stop serving; ``unlink=False`` in a forked process that shares the sockets with the
        one that bound them (that one removes the path)."""
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        self.release()
        if unlink and self.path is not None and self.path.is_socket():
            self.path.unlink(missing_ok=True)

    def release(self) -> None:
        """Close this process's copies of the listening sockets, leaving the path: a forked
        worker does so with the supervisor's public sockets, which it does not serve."""
        for sock, _ in self._sockets:
            sock.close()
        self._sockets.clear()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tcp: bool) -> None:
        try:
            try:
                message = await asyncio.wait_for(protocol.read_frame(reader, protocol.MAX_REQUEST), IDLE_TIMEOUT)
                reply = await self._answer(message, tcp)
            except protocol.ProtocolError as exc:
                reply = {"ok": False, "error": str(exc)}
            writer.write(protocol.encode(reply))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            pass  # the client went away or said nothing: nothing to answer
        except Exception:  # noqa: BLE001 - a bug costs one control connection, not the server
            log.exception("control request failed")
        finally:
            writer.close()

    async def _answer(self, message: Any, tcp: bool) -> dict[str, Any]:
        command, args = protocol.check_request(message)
        if tcp:
            assert self.key is not None
            why = protocol.authentic(message, self.key, self._seen)
            if why is not None:
                return {"ok": False, "error": why, "refused": True}
        handler = self.commands.get(command)
        if handler is None:
            return {"ok": False, "unsupported": True,
                    "error": f"{command}: not a command of this server (it knows {', '.join(sorted(self.commands))})"}
        try:
            text, data = await handler(args)
        except CommandError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            log.exception("control command %s failed", command)
            return {"ok": False, "error": f"{command} failed: {exc}"}
        return {"ok": True, "text": text, "data": data}


def _alive(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
            return True
        except OSError:
            return False


def runtime_directory() -> Path:
    """Where control sockets go when no configuration file says (like /run/unbound)."""
    if os.geteuid() == 0:
        return Path("/run/cid")
    base = os.environ.get("XDG_RUNTIME_DIR")
    return Path(base) / "cid" if base else Path(f"/tmp/cid-{os.getuid()}")


def default_socket(kind: str, config: str | None) -> Path:
    """``FILE.ctl`` beside the configuration file, else ``<runtime dir>/<kind>.ctl``."""
    if config is not None:
        return Path(config).resolve().with_name(Path(config).name + ".ctl")
    return runtime_directory() / f"{kind}.ctl"
