"""`sailctl analyze` and `sailctl x tls-check` on a running mesh, compared with what the
proxies do: each hop an analyzer calls broken must fail for a real curl through the
sidecars (and tls-check must say so), each hop it only warns about must work, and of two
Gateways that claim one host the one analyze names as the winner must answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.mesh import Mesh
from tests.e2e.test_tls_check import _deploy, _ns, _svc

pytestmark = pytest.mark.e2e

def _dr(ns: str, name: str, host: str, mode: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"host": host}
    if mode:
        spec["trafficPolicy"] = {"tls": {"mode": mode}}
    else:
        spec["subsets"] = [{"name": "v1", "labels": {"app": host.split(".")[0]}}]
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def _pa(ns: str, mode: str) -> dict[str, Any]:
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": "default", "namespace": ns}, "spec": {"mtls": {"mode": mode}}}


def _gateway(name: str) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": name, "namespace": "k3"},
            "spec": {"selector": {"istio": "ingressgateway"},
                     "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"},
                                  "hosts": ["conflict.example.com"]}]}}


def _gateway_vs(name: str, route: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": "k3"},
            "spec": {"hosts": ["conflict.example.com"], "gateways": [name], "http": [route]}}


def _manifests() -> list[dict[str, Any]]:
    return [
        *(_ns(ns, True) for ns in ("client", "k1", "k2", "k3")),
        _deploy("client", "sleep", False),
        _deploy("k1", "a", True), _svc("k1", "a", "a"), _deploy("k2", "b", True),
        _svc("k2", "b", "b"), _deploy("k3", "c", True), _svc("k3", "c", "c"),
        # KIA0207: namespace-wide DISABLE rule towards a STRICT namespace.
        _pa("k1", "STRICT"), _dr("k1", "k1-wide", "*.k1.svc.cluster.local", "DISABLE"),
        # KIA0505: DISABLE namespace, and a namespace-wide rule that still sends mTLS.
        _pa("k2", "DISABLE"), _dr("k2", "k2-wide", "*.k2.svc.cluster.local", "ISTIO_MUTUAL"),
        # KIA0204: a subsets-only rule hides the namespace-wide ISTIO_MUTUAL (auto mTLS on).
        _dr("k3", "k3-wide", "*.k3.svc.cluster.local", "ISTIO_MUTUAL"),
        _dr("k3", "c", "c.k3.svc.cluster.local", None),
        # IST0145: two Gateways claim conflict.example.com on port 80; alpha is older.
        _gateway("alpha"), _gateway("beta"),
        _gateway_vs("alpha", {"route": [{"destination": {"host": "c.k3.svc.cluster.local"}}]}),
        _gateway_vs("beta", {"directResponse": {"status": 418}}),
    ]


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("a17")
    try:
        m.sailctl("apply", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": _manifests()}))
        for ns in ("client", "k1", "k2", "k3"):
            m.wait_pods_ready(ns, 1, timeout=120)
        yield m
    finally:
        m.stop()


@pytest.fixture(scope="module")
def analyzed(mesh: Mesh) -> list[dict[str, Any]]:
    proc = mesh.sailctl("analyze", "-A", "-o", "json", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # Errors are found
    return json.loads(proc.stdout)


def _codes(analyzed: list[dict[str, Any]], resource: str) -> set[str]:
    return {m["sailmeshCode"] for m in analyzed if m["resource"] == resource}


def _curl(m: Mesh, url: str) -> str:
    proc = m.sailctl("-n", "client", "exec", "deploy/sleep", "--", "curl", "-sS", "-m", "8",
                     "-o", "/dev/null", "-w", "%{http_code}", url, check=False, timeout=30)
    return proc.stdout.strip() or "000"


# (destination, the resource analyze blames, our code, its level, what the proxies do)
HOPS = [
    ("a.k1", "DestinationRule k1/k1-wide", "SM0166", "Error", "fails"),
    ("b.k2", "PeerAuthentication k2/default", "SM0169", "Error", "fails"),
    ("c.k3", "DestinationRule k3/c", "SM0163", "Warning", "works"),
]


@pytest.mark.parametrize(("dest", "resource", "code", "level", "verdict"), HOPS,
                         ids=[h[0] for h in HOPS])
def test_analyze_and_tls_check_agree_with_the_proxies(
        mesh: Mesh, analyzed: list[dict[str, Any]], dest: str, resource: str, code: str,
        level: str, verdict: str) -> None:
    [message] = [m for m in analyzed if m["resource"] == resource and m["sailmeshCode"] == code]
    assert message["level"] == level
    report = json.loads(mesh.sailctl("x", "tls-check", "-n", "client", "deploy/sleep", dest,
                                     "-o", "json").stdout)
    assert report["verdict"] == verdict, report
    status = _curl(mesh, f"http://{dest}/status/200")
    assert (status == "200") == (verdict == "works"), (status, report)


def test_the_older_gateway_serves_the_host_both_claim(
        mesh: Mesh, analyzed: list[dict[str, Any]]) -> None:
    alpha = [m for m in analyzed if m["resource"] == "Gateway k3/alpha"
             and m["code"] == "IST0145"]
    beta = [m for m in analyzed if m["resource"] == "Gateway k3/beta" and m["code"] == "IST0145"]
    assert len(alpha) == len(beta) == 1
    assert "its server wins" in alpha[0]["message"]
    assert "Gateway k3/alpha is older" in beta[0]["message"]
    status = mesh.status_code("-H", "Host: conflict.example.com",
                              "http://127.0.0.1:8080/status/200")
    assert status == "200"  # alpha's route to httpbin, not beta's 418


def test_sound_resources_get_no_messages(analyzed: list[dict[str, Any]]) -> None:
    for resource in ("Deployment client/sleep", "Service k1/a", "VirtualService k3/alpha",
                     "PeerAuthentication k1/default"):
        assert not _codes(analyzed, resource), resource
    # The rule that c's rule hides applies to no service at all (k3 has only c).
    assert _codes(analyzed, "DestinationRule k3/k3-wide") == {"SM0119"}
