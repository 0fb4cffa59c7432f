"""Local stand-in for Istio's `examples-helloworld-v1/-v2` images.

GET /hello answers `Hello version: <SERVICE_VERSION>, instance: <HOSTNAME>\n`, as the
sample's Flask app does; every other path is 404. Standard library only: a threaded
HTTP/1.1 server with keep-alive, one thread per connection, so concurrent clients that
reuse connections (Envoy's connection pools do) are served in parallel.

Must not know about the runtime that starts it or about Istio.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_PORT = 5000


class HelloHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive by default
    server_version = "helloworld"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm
    # and the peer's delayed ACK would add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    version = os.environ.get("SERVICE_VERSION", "unknown")
    instance = os.environ.get("HOSTNAME", "")

    def _reply(self, status: int, body: bytes, head_only: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def _route(self) -> tuple[int, bytes]:
        path = self.path.split("?", 1)[0]
        if path == "/hello":
            return 200, f"Hello version: {self.version}, instance: {self.instance}\n".encode()
        return 404, b"Not Found\n"

    def do_GET(self) -> None:
        self._reply(*self._route())

    def do_HEAD(self) -> None:
        self._reply(*self._route(), head_only=True)


class HelloServer(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must not block shutdown
    request_queue_size = 512


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="helloworld sample service")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--host", default="0.0.0.0")
    args = parser.parse_args(argv)
    server = HelloServer((args.host, args.port), HelloHandler)
    print(f"helloworld {HelloHandler.version} listening on {args.host}:{args.port}", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
