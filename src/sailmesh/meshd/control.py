"""The daemon's control socket: one JSON object per line each way, over a Unix socket.

Owns the wire format and the client used by `sailctl`. Must not know what the operations
do: the daemon registers handlers by name.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

# One request line; every operation's arguments are small (manifests go to the store).
MAX_REQUEST_BYTES = 1 << 20
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class ControlError(Exception):
    """The daemon is not reachable, or it answered with an error."""


async def serve(path: Path, handlers: dict[str, Handler]) -> asyncio.AbstractServer:
    import asyncio  # here, not at the top: the CLI imports this module for `call` only

    path.unlink(missing_ok=True)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                line = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                line = b"\0"  # over the size limit: this caller gets an error, nobody else
            if not line:
                return
            reply = await _answer(line, handlers)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_unix_server(on_client, path=str(path), limit=MAX_REQUEST_BYTES)
    path.chmod(0o600)
    return server


async def _answer(line: bytes, handlers: dict[str, Handler]) -> dict[str, Any]:
    try:
        request = json.loads(line)
    except ValueError:
        request = None
    if not isinstance(request, dict):
        return {"error": f"invalid request: one JSON object of at most {MAX_REQUEST_BYTES}"
                         " bytes per line"}
    handler = handlers.get(request.get("op", ""))
    if handler is None:
        return {"error": f"unknown operation {request.get('op')!r}"}
    try:
        return await handler(request)
    except Exception as exc:  # the daemon keeps running; the caller sees why
        return {"error": f"{type(exc).__name__}: {exc}"}


def call(path: Path, op: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
    """Send one request and wait for its answer (used by the CLI, synchronously)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
    except OSError as exc:
        s.close()
        raise ControlError(f"the mesh is not running ({path}: {exc.strerror})") from exc
    with s:
        s.sendall(json.dumps({"op": op, **args}).encode() + b"\n")
        buf = bytearray()
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            buf += chunk
    if not buf:
        raise ControlError(f"the mesh daemon closed the connection during {op!r}")
    reply = json.loads(buf)
    if "error" in reply:
        raise ControlError(reply["error"])
    return reply
