"""One host, a definition per namespace: the proxies and the analyzers use the same one.

Service shop/httpbin is kept to its namespace (exportTo `.`); namespace client defines the
same name by a ServiceEntry with another port (80 → 8000, DNS). A sidecar in shop reaches
the pods over mesh mTLS on 8000; a sidecar in client reaches them in plaintext on 80.
`x tls-check` from each namespace must say so, and `analyze` must judge a route in client
by client's definition.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.manifests import HTTPBIN, deployment, injected_namespace
from tests.e2e.mesh import Mesh, eventually

pytestmark = pytest.mark.e2e

HOST = "httpbin.shop.svc.cluster.local"


def _sleep(ns: str) -> dict[str, Any]:
    return deployment(ns, "sleep", {"image": "curlimages/curl",
                                 "command": ["/bin/sleep", "infinity"]})


def _manifests() -> list[dict[str, Any]]:
    return [
        injected_namespace("shop"), injected_namespace("client"),
        deployment("shop", "httpbin", {"image": "docker.io/kong/httpbin", "command": HTTPBIN,
                                    "ports": [{"containerPort": 8080}]}),
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "httpbin", "namespace": "shop",
                      "annotations": {"networking.istio.io/exportTo": "."}},
         "spec": {"selector": {"app": "httpbin"},
                  "ports": [{"name": "http", "port": 8000, "targetPort": 8080}]}},
        _sleep("shop"), _sleep("client"),
        {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
         "metadata": {"name": "httpbin-alias", "namespace": "client"},
         "spec": {"hosts": [HOST], "exportTo": ["."], "location": "MESH_EXTERNAL",
                  "ports": [{"number": 80, "name": "http", "protocol": "HTTP",
                             "targetPort": 8000}],
                  "resolution": "DNS"}},
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
         "metadata": {"name": "httpbin-alias", "namespace": "client"},
         "spec": {"hosts": [HOST], "exportTo": ["."],
                  "http": [{"timeout": "5s", "route": [
                      {"destination": {"host": HOST, "port": {"number": 80}}}]}]}},
    ]


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("hpn")
    try:
        m.sailctl("apply", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": _manifests()}))
        m.wait_pods_ready("shop", 2, timeout=120)
        m.wait_pods_ready("client", 1, timeout=120)
        yield m
    finally:
        m.stop()


def _headers(m: Mesh, ns: str, url: str) -> dict[str, str]:
    proc = m.sailctl("-n", ns, "exec", "deploy/sleep", "--", "curl", "-sS", "-m", "8", url,
                     check=False, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)["headers"]


def _check(m: Mesh, ns: str, dest: str) -> dict[str, Any]:
    out = m.sailctl("x", "tls-check", "-n", ns, "deploy/sleep", dest, "-o", "json").stdout
    return json.loads(out)


def test_each_namespace_reaches_the_definition_it_sees(mesh: Mesh) -> None:
    # shop: the Service, mesh mTLS (the server's sidecar adds the client's identity).
    report = _check(mesh, "shop", f"{HOST}:8000")
    assert report["destination"]["resource"] == "Service shop/httpbin", report
    assert report["verdict"] == "works" and report["servers"][0]["sends"].startswith(
        "mesh mTLS"), report
    assert report["live"]["client"]["agrees"] is True, report["live"]
    headers = {}

    def mtls() -> None:
        headers.update(_headers(mesh, "shop", f"http://{HOST}:8000/headers"))
        assert "spiffe://cluster.local/ns/shop/sa/sleep" in headers.get(
            "X-Forwarded-Client-Cert", ""), headers
    eventually(mtls, timeout=20)

    # client: the ServiceEntry, port 80, plaintext to the same pods.
    report = _check(mesh, "client", f"{HOST}:80")
    assert report["destination"]["resource"] == "ServiceEntry client/httpbin-alias", report
    assert report["verdict"] == "works" and report["servers"][0]["sends"].startswith(
        "plaintext"), report
    headers = _headers(mesh, "client", f"http://{HOST}/headers")
    assert "X-Forwarded-Client-Cert" not in headers, headers
    # Port 8000 is no port of client's definition: tls-check says so, as its proxy has
    # no cluster for it.
    proc = mesh.sailctl("x", "tls-check", "-n", "client", "deploy/sleep", f"{HOST}:8000",
                        check=False)
    assert proc.returncode != 0 and "declares ports 80" in proc.stderr, proc.stderr
    clusters = mesh.sailctl("-n", "client", "proxy-config", "cluster", "deploy/sleep",
                            "--fqdn", HOST).stdout
    assert "80 " in clusters and "8000" not in clusters, clusters


def test_analyze_judges_a_route_by_its_namespace_s_definition(mesh: Mesh) -> None:
    out = mesh.sailctl("analyze", "-n", "client", check=False)
    assert "VirtualService client/httpbin-alias" not in out.stdout, out.stdout
    assert "no port 80" not in out.stdout + out.stderr, out.stdout
