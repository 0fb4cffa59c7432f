"""Istio's own sample manifests (tests/e2e/data/istio, copied unchanged from Istio's
repository) applied as Istio's documentation applies them, on a real local mesh."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.mesh import Mesh

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).parent / "data" / "istio" / "samples"


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("s14")
    try:
        yield m
    finally:
        m.stop()


@pytest.mark.parametrize("app", ["sleep", "curl"])
def test_sleep_and_curl_run_with_their_optional_secret_volume(mesh: Mesh, app: str) -> None:
    """samples/sleep and samples/curl mount `<app>-secret` with `optional: true`: the pod
    starts without it (an empty directory), and the Secret's files appear once it exists."""
    ns = f"opt-{app}"
    mesh.sailctl("create", "namespace", ns)
    mesh.sailctl("apply", "-n", ns, "-f", str(SAMPLES / app / f"{app}.yaml"))
    mesh.wait_pods_ready(ns, 1)
    listing = mesh.sailctl("exec", "-n", ns, f"deploy/{app}", "--", "ls", "-A", f"/etc/{app}/tls")
    assert listing.stdout == ""
    mesh.sailctl("create", "secret", "generic", f"{app}-secret", "-n", ns,
                 "--from-literal=tls.crt=CERT")
    deadline, out = time.monotonic() + 60, ""
    while time.monotonic() < deadline:
        out = mesh.sailctl("exec", "-n", ns, f"deploy/{app}", "--", "cat", f"/etc/{app}/tls/tls.crt",
                           check=False).stdout
        if out == "CERT":
            break
        time.sleep(0.3)
    assert out == "CERT"
    mesh.sailctl("delete", "namespace", ns)


def test_a_dns_entry_applied_before_its_stand_in_serves_once_the_stand_in_exists(
        mesh: Mesh) -> None:
    """Order must not matter: a DNS ServiceEntry whose external stand-in is applied later
    serves as soon as the name resolves (tls-check said "works" and requests stayed
    503 UH for about a minute before); until then tls-check says why it fails."""
    ns = "late-entry"
    mesh.sailctl("apply", "-f", "-", input=f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}, labels: {{istio-injection: enabled}}}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: late, namespace: {ns}}}
spec:
  hosts: [late.example]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{{number: 80, name: http, protocol: HTTP}}]
""")
    mesh.sailctl("apply", "-n", ns, "-f", str(SAMPLES / "sleep" / "sleep.yaml"))
    mesh.wait_pods_ready(ns, 1)
    before = mesh.sailctl("x", "tls-check", "-n", ns, "deploy/sleep", "late.example",
                          check=False).stdout
    assert "FAILS" in before and "resolves in no pod" in before, before
    mesh.sailctl("apply", "-f", "-", input="""
apiVersion: v1
kind: Namespace
metadata: {name: late-world}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: late-world}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: late-world
  annotations: {sailmesh.io/external-hosts: late.example}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}]
""")
    mesh.wait_pods_ready("late-world", 1)
    deadline, code = time.monotonic() + 15, ""
    while time.monotonic() < deadline and code != "200":
        code = mesh.sailctl("exec", "-n", ns, "deploy/sleep", "--", "curl", "-s", "-m", "2",
                            "-o", "/dev/null", "-w", "%{http_code}", "http://late.example/",
                            check=False).stdout
        time.sleep(0.5)
    assert code == "200"
    after = mesh.sailctl("x", "tls-check", "-n", ns, "deploy/sleep", "late.example").stdout
    assert "Verdict: works" in after, after
    for done in (ns, "late-world"):
        mesh.sailctl("delete", "namespace", done)


def _echo(mesh: Mesh, ns: str, host: str, port: int, line: str) -> str:
    """One line through a TCP connection from the curl pod (bash's /dev/tcp), first line back."""
    script = f"exec 3<>/dev/tcp/{host}/{port}; echo {line} >&3; head -n 1 <&3"
    return mesh.sailctl("exec", "-n", ns, "deploy/curl", "--", "bash", "-c", script,
                        timeout=30).stdout


def test_tcp_echo_samples_answer_as_the_real_server(mesh: Mesh) -> None:
    """samples/tcp-echo: tcp-echo.yaml (port 9000, prefix hello) and tcp-echo-services.yaml
    (v1 `one` / v2 `two` on the Service's ports 9000 and 9001) behind sidecars, reached
    from Istio's curl sample."""
    ns = "tcp-echo"
    mesh.sailctl("create", "namespace", ns)
    mesh.sailctl("label", "namespace", ns, "istio-injection=enabled")
    mesh.sailctl("apply", "-n", ns, "-f", str(SAMPLES / "curl" / "curl.yaml"))
    mesh.sailctl("apply", "-n", ns, "-f", str(SAMPLES / "tcp-echo" / "tcp-echo.yaml"))
    mesh.wait_pods_ready(ns, 2)
    assert _echo(mesh, ns, "tcp-echo", 9000, "world") == "hello world\n"
    logs = mesh.sailctl("logs", "-n", ns, "deploy/tcp-echo").stdout
    assert "listening on [::]:9000, prefix: hello\n" in logs
    assert "request: world\nresponse: hello world\n" in logs

    mesh.sailctl("delete", "deployment", "tcp-echo", "-n", ns)
    mesh.sailctl("apply", "-n", ns, "-f", str(SAMPLES / "tcp-echo" / "tcp-echo-services.yaml"))
    mesh.wait_pods_ready(ns, 3)
    seen = {_echo(mesh, ns, "tcp-echo", port, "x") for port in (9000, 9001) for _ in range(6)}
    assert seen == {"one x\n", "two x\n"}, seen
    mesh.sailctl("delete", "namespace", ns)
