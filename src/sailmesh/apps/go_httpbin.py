"""Local stand-in for the `mccutchen/go-httpbin` image (Istio's samples/httpbin today).

go-httpbin serves httpbin's API with one difference in its JSON that Istio's pages rely on:
request headers, query arguments and form fields are lists of strings (Go's
`map[string][]string`), so the pages read a header as `.headers["X-Forwarded-Client-Cert"][0]`.
This app is the httpbin package's API (what kennethreitz/httpbin runs) with those three
objects reshaped to lists; every other response is passed on unchanged.

Run: `gunicorn -b 0.0.0.0:8080 sailmesh.apps.go_httpbin:app -k gevent`.
Must not know about the runtime that starts it or Istio.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from typing import Any

import httpbin

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
LISTED = ("headers", "args", "form")


def reshape(document: Any) -> Any:
    """go-httpbin's shape of an httpbin JSON document: the values of `headers`, `args` and
    `form` as lists (a repeated argument already is one)."""
    if not isinstance(document, dict):
        return document
    out = dict(document)
    for key in LISTED:
        values = out.get(key)
        if isinstance(values, dict):
            out[key] = {k: v if isinstance(v, list) else [v] for k, v in values.items()}
    return out


def go_shaped(inner: WSGIApp) -> WSGIApp:
    """A WSGI app answering as `inner` does, JSON bodies reshaped (`reshape`)."""
    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured.update(status=status, headers=headers, exc_info=exc_info)
            return lambda data: None

        chunks = inner(environ, capture)
        headers = captured["headers"]
        if not any(k.lower() == "content-type" and v.startswith("application/json")
                   for k, v in headers):
            start_response(captured["status"], headers, captured["exc_info"])
            return chunks
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        with contextlib.suppress(ValueError):  # several documents (/stream/N): as they are
            body = (json.dumps(reshape(json.loads(body)), indent=2) + "\n").encode()
        headers = [(k, str(len(body)) if k.lower() == "content-length" else v) for k, v in headers]
        start_response(captured["status"], headers, captured["exc_info"])
        return [body]

    return application


app = go_shaped(httpbin.app)
