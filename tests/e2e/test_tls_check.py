"""`sailctl x tls-check` against a running mesh: every verdict is compared with what a real
curl from the source pod gets, and the live view of both Envoys must agree with the static
one. `x describe` and `analyze` are checked on the same mesh.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.mesh import Mesh

pytestmark = pytest.mark.e2e

HTTPBIN = ["gunicorn", "-b", "0.0.0.0:8080", "httpbin:app", "-k", "gevent"]


def _ns(name: str, injected: bool) -> dict[str, Any]:
    labels = {"istio-injection": "enabled"} if injected else {}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def _deploy(ns: str, name: str, server: bool) -> dict[str, Any]:
    container: dict[str, Any] = (
        {"name": name, "image": "docker.io/kong/httpbin", "command": HTTPBIN,
         "ports": [{"containerPort": 8080}]} if server else
        {"name": name, "image": "curlimages/curl", "command": ["/bin/sleep", "infinity"]})
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [container]}}}}


def _svc(ns: str, name: str, app: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": app},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}


def _dr(ns: str, host: str, mode: str) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": host.split(".")[0], "namespace": ns},
            "spec": {"host": host, "trafficPolicy": {"tls": {"mode": mode}}}}


def _manifests() -> list[dict[str, Any]]:
    return [
        _ns("mesh", True), _ns("srv", True), _ns("legacy", False),
        _deploy("mesh", "sleep", False), _deploy("legacy", "sleep", False),
        _deploy("srv", "strict", True), _deploy("srv", "permissive", True),
        _deploy("legacy", "plain", True),
        {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
         "metadata": {"name": "strict", "namespace": "srv"},
         "spec": {"selector": {"matchLabels": {"app": "strict"}}, "mtls": {"mode": "STRICT"}}},
        _svc("srv", "strict", "strict"), _svc("srv", "strict-plain", "strict"),
        _svc("srv", "permissive", "permissive"), _svc("legacy", "plain", "plain"),
        _svc("legacy", "plain-mtls", "plain"),
        # Pitfall #1: plaintext towards STRICT; pitfall #2: ISTIO_MUTUAL towards no sidecar.
        _dr("srv", "strict-plain.srv.svc.cluster.local", "DISABLE"),
        _dr("mesh", "plain-mtls.legacy.svc.cluster.local", "ISTIO_MUTUAL"),
        _dr("srv", "permissive.srv.svc.cluster.local", "ISTIO_MUTUAL"),
    ]


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("e6")
    try:
        m.sailctl("apply", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": _manifests()}))
        m.wait_pods_ready("srv", 2, timeout=120)
        m.wait_pods_ready("mesh", 1, timeout=120)
        m.wait_pods_ready("legacy", 2, timeout=120)
        yield m
    finally:
        m.stop()


def _curl(m: Mesh, ns: str, url: str) -> str:
    proc = m.sailctl("-n", ns, "exec", "deploy/sleep", "--", "curl", "-sS", "-m", "8", "-o",
                     "/dev/null", "-w", "%{http_code}", url, check=False, timeout=30)
    return proc.stdout.strip() or "000"


def _check(m: Mesh, ns: str, dest: str) -> dict[str, Any]:
    out = m.sailctl("x", "tls-check", "-n", ns, "deploy/sleep", dest, "-o", "json").stdout
    return json.loads(out)


# (client namespace, destination, verdict, what the client sends)
HOPS = [
    ("mesh", "strict.srv", "works", "mesh mTLS"),
    ("mesh", "strict-plain.srv", "fails", "plaintext"),
    ("legacy", "strict.srv", "fails", "plaintext"),
    ("mesh", "permissive.srv", "works", "mesh mTLS"),
    ("legacy", "permissive.srv", "works", "plaintext"),
    ("mesh", "plain.legacy", "works", "plaintext"),
    ("mesh", "plain-mtls.legacy", "fails", "mesh mTLS"),
]


@pytest.mark.parametrize(("ns", "dest", "verdict", "sends"), HOPS,
                         ids=[f"{ns}-{d}" for ns, d, _, _ in HOPS])
def test_verdict_matches_real_traffic(mesh: Mesh, ns: str, dest: str, verdict: str,
                                      sends: str) -> None:
    report = _check(mesh, ns, dest)
    [server] = report["servers"]
    assert report["verdict"] == verdict, report
    assert server["sends"].startswith(sends), server
    code = _curl(mesh, ns, f"http://{dest}/status/200")
    assert (code == "200") == (verdict == "works"), (code, report)
    live = report["live"]
    assert live is not None
    if report["client"]["proxy"]:
        assert live["client"]["agrees"] is True, live
    for s in live["servers"]:
        assert s["agrees"] is True, live


def test_table_output_names_the_deciding_rules(mesh: Mesh) -> None:
    out = mesh.sailctl("x", "tls-check", "-n", "mesh", "deploy/sleep", "strict-plain.srv").stdout
    assert "Client (Deployment mesh/sleep): DISABLE [DestinationRule srv/strict-plain]" in out
    assert "Server Deployment srv/strict port 8080: STRICT [PeerAuthentication srv/strict]" in out
    assert "Live (Envoy config dumps):" in out and "DIFFERS" not in out


def test_describe_and_analyze_on_the_running_mesh(mesh: Mesh) -> None:
    rows = mesh.sailctl("get", "pods", "-n", "srv").stdout.splitlines()[1:]
    [target] = [r.split()[0] for r in rows if r.startswith("strict-")]  # a real pod name
    described = mesh.sailctl("x", "describe", "-n", "srv", "pod", target).stdout
    assert described.startswith("Workload: Deployment srv/strict\n   Sidecar: yes")
    assert "mTLS STRICT [PeerAuthentication srv/strict]" in described
    analyzed = mesh.sailctl("analyze", "-A", check=False)
    assert analyzed.returncode == 1
    assert "Error [SM0117] (DestinationRule srv/strict-plain)" in analyzed.stdout
    assert "Error [SM0118] (DestinationRule mesh/plain-mtls)" in analyzed.stdout
