"""The daemon's control socket: one JSON object per line each way, over a Unix socket.

Owns the wire format and the client used by `sailctl`. Must not know what the operations
do: the daemon registers handlers by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

# One request line. `apply` carries the manifests' text: several inputs of up to the API
# server's 3 MiB each, JSON-escaped. A larger apply is made by the CLI itself.
MAX_REQUEST_BYTES = 64 << 20
# Requests larger than this are decoded off the event loop (xDS streams share it).
_DECODE_ON_LOOP_BYTES = 64 << 10
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class ControlError(Exception):
    """The daemon is not reachable, or it answered with an error."""


class RequestTooLarge(ControlError):
    """The request is over `MAX_REQUEST_BYTES`; it was not sent."""


async def serve(path: Path, handlers: dict[str, Handler]) -> asyncio.AbstractServer:
    import asyncio  # here, not at the top: the CLI imports this module for `call` only

    sock = _bind_private(path)

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

    return await asyncio.start_unix_server(on_client, sock=sock, limit=MAX_REQUEST_BYTES)


def _bind_private(path: Path) -> socket.socket:
    """A Unix socket bound at `path` that only this user can ever connect to (connecting
    needs write permission on the socket file). It is bound in a private directory, made
    0600 and then renamed into place: binding at `path` and changing the mode afterwards
    would leave a moment in which the umask's mode applies."""
    import tempfile  # the CLI imports this module for `call` only

    path.unlink(missing_ok=True)
    private = tempfile.mkdtemp(dir=path.parent, prefix=".c")  # mode 0700
    bound = os.path.join(private, "s")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(bound)
        os.chmod(bound, 0o600)
        os.replace(bound, path)
    except BaseException:
        sock.close()
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(bound)
        os.rmdir(private)
    return sock


async def _answer(line: bytes, handlers: dict[str, Handler]) -> dict[str, Any]:
    import asyncio

    try:
        request = (json.loads(line) if len(line) <= _DECODE_ON_LOOP_BYTES
                   else await asyncio.to_thread(json.loads, line))
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
    request = json.dumps({"op": op, **args}).encode() + b"\n"
    if len(request) > MAX_REQUEST_BYTES:
        raise RequestTooLarge(f"{op!r} request of {len(request)} bytes is over the control"
                              f" socket's limit of {MAX_REQUEST_BYTES}")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
    except OSError as exc:
        s.close()
        raise ControlError(f"the mesh is not running ({path}: {exc.strerror})") from exc
    with s:
        s.sendall(request)
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
