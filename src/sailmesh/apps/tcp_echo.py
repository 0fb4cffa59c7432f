"""Local stand-in for Istio's `istio/tcp-echo-server` image (samples/tcp-echo).

Mirrors the sample's server: `tcp-echo PORTS PREFIX`, PORTS a comma-separated list
(`9000,9001,9002` in tcp-echo-services.yaml); on every port, each line a client sends
(up to and including its `\\n`) comes back as `PREFIX LINE`; a last line without `\\n`
is dropped when the client closes, and the server closes its side then. It prints
`listening on [::]:PORT, prefix: PREFIX` per port, and `request: …` / `response: …` per
line, as the image does on its stdout. The image's default arguments are `9000 hello`.

Standard library only (asyncio). Must not know about the runtime that starts it or Istio.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

DEFAULT_ARGS = ("9000", "hello")


def reply(prefix: str, line: bytes) -> bytes:
    """The answer to one line: the prefix, a space, then the line as received."""
    return prefix.encode() + b" " + line


def _say(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


async def _serve_connection(prefix: str, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            line = await reader.readline()
            if not line.endswith(b"\n"):  # EOF: a partial line gets no answer
                return
            text = line.decode(errors="replace")
            _say(f"request: {text}")
            answer = reply(prefix, line)
            _say(f"response: {answer.decode(errors='replace')}")
            writer.write(answer)
            await writer.drain()
    except (ConnectionError, asyncio.LimitOverrunError, ValueError) as exc:
        _say(f"failed to read data, err: {exc}\n")
    finally:
        writer.close()


async def _main(ports: Sequence[int], prefix: str) -> None:
    servers = []
    for port in ports:
        server = await asyncio.start_server(
            lambda r, w: _serve_connection(prefix, r, w), host="0.0.0.0", port=port,
            limit=1 << 20)
        _say(f"listening on [::]:{port}, prefix: {prefix}\n")
        servers.append(server)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv) or list(DEFAULT_ARGS)
    if len(args) < 2:
        print("usage: tcp-echo PORT[,PORT...] PREFIX", file=sys.stderr)
        return 2
    try:
        ports = [int(p) for p in args[0].split(",")]
    except ValueError:
        print(f"failed to create listener, err: invalid port list {args[0]!r}")
        return 1
    try:
        asyncio.run(_main(ports, args[1]))
    except OSError as exc:
        print(f"failed to create listener, err: {exc}")
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
