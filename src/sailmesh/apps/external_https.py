"""An "external" HTTPS server for egress tests and offline demos: it reports what it received.

Runs as the container of a Deployment outside the mesh (see docs/egress.md): TLS with its
own certificate (from a Secret volume), optionally requiring a client certificate signed by
a given CA. Every response is a JSON page describing the request as the server saw it —
TLS version, SNI, cipher, the client certificate's subject and SANs, method, path, headers,
body, peer address — so that a test can check origination from the receiving end. Every
handshake, good or failed, is also logged to stdout as one JSON line (a missing client
certificate shows there, since no request follows it).

    python -m sailmesh.apps.external_https --cert /certs/tls.crt --key /certs/tls.key \
        [--client-ca /certs/ca.crt] [--port 8443] [--plain-port 8080] [--name wikipedia.org] \
        [--tcp-port 9000]

`--port`, `--plain-port` and `--tcp-port` take several ports. A TCP port answers each line
it receives with `echo <name> <peer address> <line>` (raw bytes, no HTTP, no TLS).
"""

from __future__ import annotations

import argparse
import json
import socket
import socketserver
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_VERSIONS = {"TLSv1": "TLSv1.0"}


def _log(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, sort_keys=True) + "\n")
    sys.stdout.flush()


def _client_cert(conn: socket.socket) -> dict[str, Any] | None:
    if not isinstance(conn, ssl.SSLSocket):
        return None
    cert = conn.getpeercert()
    if not cert:
        return None
    subject = {k: v for rdn in cert.get("subject", ()) for k, v in rdn}
    return {"subject": subject, "san": [v for _, v in cert.get("subjectAltName", ())],
            "issuer": {k: v for rdn in cert.get("issuer", ()) for k, v in rdn}}


def _tls_info(conn: socket.socket) -> dict[str, Any]:
    if not isinstance(conn, ssl.SSLSocket):
        return {"tls": False}
    version = conn.version() or ""
    cipher = conn.cipher()
    return {"tls": True, "tls_version": _VERSIONS.get(version, version),
            "sni": getattr(conn, "sailmesh_sni", None), "cipher": cipher[0] if cipher else None,
            "alpn": conn.selected_alpn_protocol(), "client_cert": _client_cert(conn)}


class _Handler(BaseHTTPRequestHandler):
    server_version = "sailmesh-external/1"
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        page = {
            "server": self.server.name,  # type: ignore[attr-defined]
            "method": self.command, "path": self.path,
            "headers": dict(self.headers.items()),
            "body": body.decode("utf-8", "replace"),
            "peer": self.client_address[0],
            **_tls_info(self.connection),
        }
        _log({"event": "request", **page})
        out = (json.dumps(page, indent=1, sort_keys=True) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are logged as JSON in _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, name: str, context: ssl.SSLContext | None) -> None:
        super().__init__(("0.0.0.0", port), _Handler)
        self.name = name
        self.context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The handshake runs in the connection's own thread, so a slow or failing client
        # never blocks accept().
        if self.context is not None:
            try:
                request = self.context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                _log({"event": "handshake_failed", "peer": client_address[0],
                      "reason": getattr(exc, "reason", None) or str(exc)})
                return
            _log({"event": "handshake", "peer": client_address[0], **_tls_info(request)})
        super().finish_request(request, client_address)


def _context(cert: str, key: str, client_ca: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED

    def remember_sni(conn: Any, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        conn.sailmesh_sni = server_name

    ctx.sni_callback = remember_sni
    return ctx


class _EchoHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            self.wfile.write(f"echo {self.server.name} {self.client_address[0]} {text}\n"
                             .encode())  # type: ignore[attr-defined]
            self.wfile.flush()


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, name: str) -> None:
        super().__init__(("0.0.0.0", port), _EchoHandler)
        self.name = name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-ca", help="require client certificates signed by this CA")
    parser.add_argument("--port", type=int, nargs="+", default=[8443], help="TLS ports")
    parser.add_argument("--plain-port", type=int, nargs="+", default=[],
                        help="also serve plain HTTP on these ports")
    parser.add_argument("--tcp-port", type=int, nargs="+", default=[],
                        help="also echo lines of raw TCP on these ports")
    parser.add_argument("--name", default=socket.gethostname())
    args = parser.parse_args(argv)
    context = _context(args.cert, args.key, args.client_ca)
    servers: list[socketserver.TCPServer] = [_Server(p, args.name, context) for p in args.port]
    servers += [_Server(p, args.name, None) for p in args.plain_port]
    servers += [_EchoServer(p, args.name) for p in args.tcp_port]
    _log({"event": "listening", "ports": [s.server_address[1] for s in servers],
          "client_ca": bool(args.client_ca)})
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
