"""A Route's own backend settings: spec.httpHeaders (validation as openshift/api's CRD and
library-go check it; rendering as openshift/router writes it) and the router annotations
(balance, timeout, timeout-tunnel, ip_allowlist/ip_whitelist, hsts_header, cookies), each
rendered into a configuration `haproxy -c` accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.unit.test_routes import _problems, _rendered, _route

from sailmesh.model.route_settings import sanitize_rewrite_target
from sailmesh.router.route_options import backend_options, quote

GW = {"to": {"kind": "Service", "name": "istio-ingressgateway"}, "port": {"targetPort": "https"}}


def _headers(phase: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"httpHeaders": {"actions": {phase: list(items)}}}


def _set(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "action": {"type": "Set", "set": {"value": value}}}


def _delete(name: str) -> dict[str, Any]:
    return {"name": name, "action": {"type": "Delete"}}


@pytest.mark.parametrize(("spec", "expected"), [
    (_headers("response", _set("X-Frame-Options", "DENY"), _delete("Server")), None),
    (_headers("request", _set("X-Host", "%[req.hdr(host),lower]")), None),
    (_headers("request", _set("x-forwarded-client-cert", "%{+Q}[ssl_c_der,base64]")), None),
    (_headers("response", _set("X-Host", "%[req.hdr(host)]")),
     "sample fetcher/converter specified is not allowed. Sample fetchers allowed are res.hdr"),
    (_headers("request", _set("X-Env", "%[env(HOME)]")), "Sample fetchers allowed are req.hdr"),
    (_headers("request", _set("X-Bad", "line\nbreak")), "not in correct format"),
    (_headers("response", _set("Strict-Transport-Security", "max-age=1")),
     "strict-transport-security may not be set/delete via header actions"),
    (_headers("request", _delete("Proxy")), "proxy may not be set/delete via header actions"),
    (_headers("response", _delete("Set-Cookie")), "set-cookie may not be set/delete"),
    (_headers("request", _set("Host", "example.com")), None),  # allowed on a Route
    (_headers("request", _delete("bad header")), "a header name is 1 to 1024 characters"),
    (_headers("request", _delete("X-A"), _delete("X-A")), 'Duplicate value: "X-A"'),
    (_headers("request", {"name": "X-A", "action": {"type": "Set"}}),
     "set is required when type is Set, and forbidden otherwise"),
    (_headers("request", {"name": "X-A", "action": {"type": "Delete", "set": {"value": "v"}}}),
     "set is required when type is Set"),
    (_headers("response", *[_delete(f"X-{i}") for i in range(21)]),
     "spec.httpHeaders.actions.response: Too many: 21: must have at most 20 items"),
    ({**_headers("response", _delete("Server")), "tls": {"termination": "passthrough"}},
     "header actions are not permitted when tls termination is passthrough."),
])
def test_http_headers_validation(spec: dict[str, Any], expected: str | None) -> None:
    problems = _problems(spec)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


def test_quote_as_haproxy_reads_it() -> None:
    assert quote("DENY") == "'DENY'"
    assert quote("""\"abc"\\ 'def'""") == """'"abc"\\ '\\''def'\\'''"""


@pytest.mark.parametrize(("annotation", "haproxy"), [
    ("/", "/\\1"),
    ("/v1/", "/v1/\\1"),
    ("/foo#", "/foo"),  # an unescaped # ends the value, and no \1 is added
    ("/a b", "/a b\\1"),
    ("/%", "/%%\\1"),
    ("/%%", "/%%\\1"),
    ("/%%%", "/%%%%%%\\1"),
    ("/x\\'y", "/x'\\''y\\1"),
    ('"/q"', "/q\\1"),
    ("/a\\\\b", "/a\\b\\1"),
])
def test_rewrite_target_keeps_its_meaning(annotation: str, haproxy: str) -> None:
    assert sanitize_rewrite_target(annotation) == haproxy


def _backend(config: str, name: str) -> list[str]:
    section = config.split(f"backend {name}\n", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in section.splitlines()]


def test_headers_and_annotations_render_and_load(tmp_path: Path) -> None:
    many = " ".join(f"10.0.{i}.0/24" for i in range(70))
    edge = _route({**GW, "host": "edge.example.com", "tls": {"termination": "edge"},
                   "httpHeaders": {"actions": {
                       "request": [_set("X-Route", "it's me"), _delete("X-Debug")],
                       "response": [_set("X-Frame-Options", "DENY"), _delete("Server")]}}},
                  name="edge", namespace="istio-system")
    edge = edge.model_copy(update={"metadata": edge.metadata.model_copy(update={"annotations": {
        "haproxy.router.openshift.io/balance": "leastconn",
        "haproxy.router.openshift.io/timeout": "2m",
        "haproxy.router.openshift.io/timeout-tunnel": "99999999999s",
        "haproxy.router.openshift.io/ip_allowlist": "127.0.0.1 192.168.0.0/16 nonsense",
        "haproxy.router.openshift.io/hsts_header": "max-age=31536000;includeSubDomains",
        "router.openshift.io/cookie_name": "my_cookie"}})})
    plain = _route({**GW, "host": "plain.example.com", "path": "/api"}, name="plain",
                   namespace="istio-system")
    plain = plain.model_copy(update={"metadata": plain.metadata.model_copy(update={"annotations": {
        "haproxy.router.openshift.io/balance": "fastest",  # not an algorithm: ignored
        "haproxy.router.openshift.io/timeout": "5 s",  # not a time: ignored
        "haproxy.router.openshift.io/ip_whitelist": many,
        "haproxy.router.openshift.io/disable_cookies": "true",
        "haproxy.router.openshift.io/rewrite-target": "/"}})})
    files = _rendered(tmp_path, [edge, plain])  # haproxy -c accepts it
    config = files["conf/haproxy.config"]
    lines = _backend(config, "be_edge_http:istio-system:edge")
    assert "balance leastconn" in lines
    assert "timeout server  2m" in lines and "timeout tunnel  2147483647ms" in lines
    assert "acl allowlist src 127.0.0.1 192.168.0.0/16" in lines
    assert "tcp-request content reject if !allowlist" in lines
    assert "cookie my_cookie insert indirect nocache httponly secure attr SameSite=None" in lines
    headers = [line for line in lines if line.startswith(("http-request set-header X-R",
                                                          "http-request del-header",
                                                          "http-response"))]
    assert headers == [
        "http-response set-header Strict-Transport-Security 'max-age=31536000;includeSubDomains'",
        "http-request set-header X-Route 'it'\\''s me'",
        "http-request del-header X-Debug",
        "http-response set-header X-Frame-Options 'DENY'",
        "http-response del-header Server",
    ]
    lines = _backend(config, "be_http:istio-system:plain")
    assert "balance random" in lines and not any(x.startswith("timeout server") for x in lines)
    assert "http-request replace-path '^/api/?(.*)$' '/\\1'" in lines
    assert not any(x.startswith("cookie") or " cookie " in x for x in lines)
    allow = f"{tmp_path}/haproxy/router/allowlists/istio-system:plain.txt"
    assert f"acl allowlist src -f {allow}" in lines
    assert files["router/allowlists/istio-system:plain.txt"].split() == many.split()


def test_passthrough_timeout_is_a_tunnel_timeout() -> None:
    route = _route({**GW, "tls": {"termination": "passthrough"}})
    route = route.model_copy(update={"metadata": route.metadata.model_copy(update={
        "annotations": {"haproxy.router.openshift.io/timeout": "90s"}})})
    opts = backend_options(route, "passthrough", 1, "c", "/f")
    assert opts.balance == "source" and opts.lines == ("timeout tunnel  90s",)
    assert backend_options(route, "passthrough", 2, "c", "/f").balance == "roundrobin"
