"""Hostile manifests against a running mesh, through `sailctl apply`: each batch is
refused with file:line for every file (or, for the harmless ones, applied), and after each
batch the gateway still serves, a normal apply still works, and no traceback appears in
the CLI's output or the daemon's log."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.e2e.mesh import EXAMPLES, Mesh
from tests.hostile_manifests import NS, hostile_cases

pytestmark = pytest.mark.e2e
BATCH = 30

GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: plain}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["httpbin.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: plain}
spec:
  hosts: ["httpbin.example.com"]
  gateways: [plain]
  http:
  - route:
    - destination: {host: httpbin, port: {number: 80}}
"""


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("e12")
    try:
        m.sailctl("create", "namespace", "test")
        m.sailctl("create", "namespace", NS)
        m.sailctl("-n", "test", "apply", "-f", str(EXAMPLES / "sni-gateway" / "httpbin.yaml"))
        m.sailctl("-n", "test", "apply", "-f", "-", input=GATEWAY)
        m.wait_pods_ready("test", 1)
        yield m
    finally:
        m.stop()


def _still_serves(mesh: Mesh, probe: int) -> None:
    code = mesh.status_code("-H", "Host: httpbin.example.com", "http://127.0.0.1:8080/status/200")
    assert code == "200"
    mesh.sailctl("-n", NS, "create", "configmap", f"probe-{probe}", "--from-literal=a=b",
                 timeout=20)
    assert f"probe-{probe}" in mesh.sailctl("-n", NS, "get", "configmaps", timeout=20).stdout


def test_hostile_batches_are_refused_and_the_mesh_keeps_serving(mesh: Mesh) -> None:
    cases = hostile_cases()
    refused = [c for c in cases if c[2] == "reject"]
    for start in range(0, len(refused), BATCH):
        batch = mesh.work / f"batch-{start}"
        batch.mkdir()
        for name, text, _ in refused[start:start + BATCH]:
            (batch / f"{name}.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        proc = mesh.sailctl("apply", "-f", str(batch), check=False, timeout=60)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert "Traceback" not in out
        for name, _text, _ in refused[start:start + BATCH]:
            path = re.escape(str(batch / f"{name}.yaml"))
            assert re.search(path + r"(:\d+)?: ", out), f"{name} not reported:\n{out[:3000]}"
        _still_serves(mesh, start)
    accepted = [c for c in cases if c[2] == "accept"]
    good = mesh.work / "accepted"
    good.mkdir()
    for name, text, _ in accepted:
        (good / f"{name}.yaml").write_text(text, encoding="utf-8")
    proc = mesh.sailctl("apply", "-f", str(good), timeout=60)
    assert "Traceback" not in proc.stdout + proc.stderr
    _still_serves(mesh, len(cases))
    log = (mesh.home / "run" / "meshd.log").read_text(errors="replace")
    assert "Traceback" not in log
