"""`sailctl dashboard`: the mesh's web UI on 127.0.0.1, like `istioctl dashboard kiali`.

Owns: the HTTP server (stdlib, one thread per request) and its routes: the page and its
scripts, cytoscape.js (installed from npm by `make install`), and the JSON the page reads
(`/api/graph`, `/api/edge`, `/api/namespaces`, `/api/certificates`). Must not know: how
edges, statuses or explanations are computed (see `dashboard_data`).
"""

from __future__ import annotations

import json
import sys
import threading
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import click

from sailmesh.cli import dashboard_data as data
from sailmesh.cli.output import fail

WEB = Path(__file__).with_name("web")
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/style.css": ("style.css", "text/css; charset=utf-8")}
# Where scripts/install.sh puts cytoscape from the npm registry (inside the virtualenv).
CYTOSCAPE = Path(sys.prefix) / "share" / "sailmesh" / "web" / "node_modules" / "cytoscape" \
    / "dist" / "cytoscape.min.js"
DEFAULT_PORT = 20001  # Kiali's port


class _Handler(BaseHTTPRequestHandler):
    server_version = "sailmesh-dashboard"

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v for k, v in parse_qs(url.query).items()}
        try:
            if url.path in STATIC:
                name, ctype = STATIC[url.path]
                self._send(HTTPStatus.OK, (WEB / name).read_bytes(), ctype)
            elif url.path == "/vendor/cytoscape.min.js":
                self._send(HTTPStatus.OK, CYTOSCAPE.read_bytes(), "text/javascript")
            elif url.path.startswith("/api/"):
                self._json(HTTPStatus.OK, _api(url.path, query))
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
        except data.MeshDown as exc:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)})
        except (ValueError, KeyError) as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})

    def _json(self, status: HTTPStatus, body: Any) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the terminal shows the URL, not every request


def _api(path: str, query: dict[str, list[str]]) -> Any:
    one = {k: v[0] for k, v in query.items() if v}
    if path == "/api/graph":
        chosen = [ns for v in query.get("namespace", []) for ns in v.split(",") if ns]
        return data.graph_data(float(one.get("window", data.DEFAULT_WINDOW)), chosen)
    if path == "/api/edge":
        port = one.get("port")
        return data.explain_edge(one.get("namespace", ""), one["workload"],
                                 one.get("gateway") == "true", one["host"],
                                 int(port) if port else None)
    if path == "/api/namespaces":
        return data.namespaces_data()
    if path == "/api/certificates":
        return data.certificates_data()
    raise KeyError(f"no such endpoint {path}")


def start(port: int) -> ThreadingHTTPServer:
    """Serve on 127.0.0.1:`port` (0: any free port) from a background thread."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@click.command("dashboard")
@click.argument("name", required=False, default="kiali")
@click.option("--port", "-p", type=int, default=DEFAULT_PORT, show_default=True,
              help="Local port (0 picks a free one).")
@click.option("--browser/--no-browser", default=True, show_default=True,
              help="Open the page in the default browser.")
def dashboard(name: str, port: int, browser: bool) -> None:
    """Open the mesh's web UI: graph with Security display, namespaces, certificates.

    NAME is accepted as with `istioctl dashboard` (kiali, the default).
    """
    if name not in ("kiali", "sailmesh"):
        fail(f"unknown dashboard {name!r}: this mesh serves one (kiali)")
    if not CYTOSCAPE.exists():
        fail(f"cytoscape.js is not installed ({CYTOSCAPE}); run `make install`")
    try:
        server = start(port)
    except OSError as exc:
        fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror} (use --port)")
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    click.echo(f"{url}\n(Ctrl-C to stop)")
    if browser:
        webbrowser.open(url)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


__all__ = ["CYTOSCAPE", "dashboard", "start"]
