"""sailmesh.apps.go_httpbin answers as go-httpbin: header, argument and form values are
lists, other responses are httpbin's unchanged."""

from __future__ import annotations

import json

from werkzeug.test import Client

from sailmesh.apps.go_httpbin import app


def test_headers_and_arguments_are_lists() -> None:
    client = Client(app)
    reply = client.get("/get?a=1&a=2&b=3", headers={"X-Forwarded-Client-Cert": "By=spiffe://x"})
    body = reply.get_data()
    assert reply.headers["Content-Length"] == str(len(body))
    doc = json.loads(body)
    assert doc["headers"]["X-Forwarded-Client-Cert"] == ["By=spiffe://x"]
    assert doc["args"] == {"a": ["1", "2"], "b": ["3"]}


def test_other_responses_pass_unchanged() -> None:
    client = Client(app)
    assert client.get("/status/418").status_code == 418
    assert json.loads(client.get("/ip", environ_base={"REMOTE_ADDR": "10.0.0.7"}).get_data()) == {
        "origin": "10.0.0.7"}
