"""Istio's Sidecar resource on real proxies (instance scr): a namespace-default Sidecar
scopes a sidecar's outbound configuration to its namespace and istio-system.

Namespaces front (sleep, httpbin) and back (httpbin), both injected, PERMISSIVE. Istio's
behaviour, reproduced:
- No Sidecar: sleep reaches httpbin.back over mesh mTLS (its sidecar has the cluster; the
  server's sidecar adds X-Forwarded-Client-Cert).
- Sidecar front/default with egress hosts `./*` and `istio-system/*`: httpbin.front still
  over mesh mTLS; httpbin.back has no cluster, no virtual host, no endpoints in sleep's
  proxy (`istioctl proxy-config clusters/routes`), so with ALLOW_ANY the request passes
  through to its original address untouched (plaintext: no XFCC), and with the Sidecar's
  outboundTrafficPolicy REGISTRY_ONLY it gets 502 from the `block_all` virtual host.
- `x tls-check` says the same and agrees with the running proxy.
- Deleting the Sidecar restores the cluster and mesh mTLS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.istio_docs import run
from tests.e2e.manifests import HTTPBIN, deployment, injected_namespace
from tests.e2e.mesh import Mesh, eventually

pytestmark = pytest.mark.e2e

BACK = "httpbin.back.svc.cluster.local"
FRONT = "httpbin.front.svc.cluster.local"
XFCC = "X-Forwarded-Client-Cert"


def _httpbin(ns: str) -> list[dict[str, Any]]:
    return [deployment(ns, "httpbin", {"image": "docker.io/kong/httpbin", "command": HTTPBIN,
                                    "ports": [{"containerPort": 8080}]}),
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "httpbin", "namespace": ns},
             "spec": {"selector": {"app": "httpbin"},
                      "ports": [{"name": "http", "port": 8000, "targetPort": 8080}]}}]


SIDECAR = """apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: front
spec:
  egress:
  - hosts:
    - "./*"
    - "istio-system/*"
"""


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("scr")
    try:
        items = [injected_namespace("front"), injected_namespace("back"), *_httpbin("front"), *_httpbin("back"),
                 deployment("front", "sleep", {"image": "curlimages/curl",
                                            "command": ["/bin/sleep", "infinity"]})]
        m.sailctl("apply", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": items}))
        m.wait_pods_ready("front", 2, timeout=120)
        m.wait_pods_ready("back", 1, timeout=120)
        yield m
    finally:
        m.stop()


def _get(m: Mesh, url: str) -> tuple[str, dict[str, str]]:
    """(status code, request headers httpbin saw) of a real curl from front's sleep pod."""
    proc = m.sailctl("-n", "front", "exec", "deploy/sleep", "--", "curl", "-sS", "-m", "8",
                     "-w", "\n%{http_code}", url, check=False, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    body, _, code = proc.stdout.rpartition("\n")
    try:
        headers = json.loads(body)["headers"] if code == "200" else {}
    except ValueError:
        headers = {}
    return code, headers


def _via_mesh(m: Mesh, host: str) -> None:
    code, headers = _get(m, f"http://{host}:8000/headers")
    assert code == "200" and "spiffe://cluster.local/ns/front/sa/sleep" in headers.get(
        XFCC, ""), (code, headers)


def _passthrough(m: Mesh, host: str) -> None:
    code, headers = _get(m, f"http://{host}:8000/headers")
    assert code == "200" and XFCC not in headers, (code, headers)


def _proxy_config(m: Mesh, what: str) -> str:
    return run(m, f"istioctl proxy-config {what} deploy/sleep -n front")


def test_namespace_default_sidecar_scopes_the_proxy(mesh: Mesh) -> None:
    eventually(lambda: _via_mesh(mesh, BACK), timeout=30)
    assert BACK in _proxy_config(mesh, "clusters")

    mesh.sailctl("apply", "-f", "-", input=SIDECAR)
    eventually(lambda: _passthrough(mesh, BACK), timeout=30)
    _via_mesh(mesh, FRONT)
    clusters, routes = _proxy_config(mesh, "clusters"), _proxy_config(mesh, "routes")
    assert FRONT in clusters and BACK not in clusters, clusters
    assert "httpbin.front" in routes and "httpbin.back" not in routes, routes
    endpoints = _proxy_config(mesh, "endpoints")
    assert f"outbound|8000||{FRONT}" in endpoints and BACK not in endpoints, endpoints

    report = json.loads(mesh.sailctl("x", "tls-check", "-n", "front", "deploy/sleep",
                                     f"{BACK}:8000", "-o", "json").stdout)
    assert report["verdict"] == "works", report
    assert report["client"]["policy"] == "passthrough (ALLOW_ANY)", report["client"]
    assert report["servers"][0]["sends"] == "plaintext", report["servers"]
    assert "Sidecar front/default" in " ".join(report["client"]["reasons"])
    assert report["live"]["client"]["agrees"] is True, report["live"]


def test_registry_only_sidecar_blocks_what_it_does_not_import(mesh: Mesh) -> None:
    mesh.sailctl("apply", "-f", "-",
                 input=SIDECAR + "  outboundTrafficPolicy:\n    mode: REGISTRY_ONLY\n")

    def blocked() -> None:
        assert _get(mesh, f"http://{BACK}:8000/headers")[0] == "502"
    eventually(blocked, timeout=30)
    _via_mesh(mesh, FRONT)
    proc = mesh.sailctl("x", "tls-check", "-n", "front", "deploy/sleep", f"{BACK}:8000",
                        check=False)
    assert "502 (route block_all" in proc.stdout, proc.stdout


def test_deleting_the_sidecar_restores_the_whole_mesh(mesh: Mesh) -> None:
    mesh.sailctl("apply", "-f", "-", input=SIDECAR)
    eventually(lambda: _passthrough(mesh, BACK), timeout=30)
    mesh.sailctl("delete", "sidecar", "default", "-n", "front")
    eventually(lambda: _via_mesh(mesh, BACK), timeout=30)
    assert BACK in _proxy_config(mesh, "clusters")
