"""`sailctl apply` through the running daemon (as kubectl through the API server), on a real
mesh with real Envoy and curl: a change is served once the command returns; bad input is
refused with file:line and changes nothing; with the mesh down the CLI applies by itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.mesh import Mesh, eventually

GATEWAY = """apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: web, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [web.example.com]
"""


def route(body: str) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web, namespace: default}}
spec:
  hosts: [web.example.com]
  gateways: [web]
  http: [{{directResponse: {{status: 200, body: {{string: "{body}"}}}}}}]
"""


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("ap")
    try:
        (m.work / "gateway.yaml").write_text(GATEWAY)
        (m.work / "route.yaml").write_text(route("one"))
        m.sailctl("apply", "-f", "gateway.yaml", "-f", "route.yaml")
        yield m
    finally:
        m.stop()


def served(mesh: Mesh) -> str:
    return mesh.curl("-H", "Host: web.example.com", "http://127.0.0.1:8080/").stdout


def applies_seen_by_daemon(mesh: Mesh) -> list[str]:
    log = (mesh.home / "run" / "meshd.log").read_text()
    return [line for line in log.splitlines() if "apply of " in line]


def test_change_through_the_daemon_is_served_when_apply_returns(mesh: Mesh) -> None:
    assert served(mesh) == "one"
    before = len(applies_seen_by_daemon(mesh))
    (mesh.work / "route.yaml").write_text(route("two"))
    out = mesh.sailctl("apply", "-f", "route.yaml")
    assert out.stdout == "virtualservice.networking.istio.io/web configured\n", out.stderr
    # `apply` returns once every proxy confirmed: no waiting loop here.
    assert served(mesh) == "two"
    seen = applies_seen_by_daemon(mesh)
    assert len(seen) == before + 1 and "VirtualService default/web, exit 0" in seen[-1]


def test_bad_input_through_the_daemon_changes_nothing(mesh: Mesh) -> None:
    good = served(mesh)
    before = mesh.sailctl("get", "virtualservice", "web", "-o", "yaml").stdout
    bad = route("three").replace("directResponse", "directResponze")
    (mesh.work / "bad.yaml").write_text(GATEWAY + "---\n" + bad)
    out = mesh.sailctl("apply", "-f", "bad.yaml", check=False)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("error: bad.yaml:16: VirtualService default/web: "
                                 "spec.http[0].directResponze: unknown field"), out.stderr
    assert "exit 1" in applies_seen_by_daemon(mesh)[-1]  # the daemon refused it
    assert mesh.sailctl("get", "virtualservice", "web", "-o", "yaml").stdout == before
    assert served(mesh) == good
    # The daemon keeps serving: the next apply goes through.
    (mesh.work / "route.yaml").write_text(route("four"))
    mesh.sailctl("apply", "-f", "route.yaml")
    assert served(mesh) == "four"


def test_with_the_mesh_down_the_cli_applies_by_itself(mesh: Mesh) -> None:
    mesh.sailctl("down")
    (mesh.work / "route.yaml").write_text(route("five"))
    out = mesh.sailctl("apply", "-f", "route.yaml")
    assert out.stdout == "virtualservice.networking.istio.io/web configured\n", out.stderr
    shown = mesh.sailctl("get", "virtualservice", "web", "-o", "jsonpath={.spec.http[0]"
                         ".directResponse.body.string}").stdout
    assert shown == "five"
    out = mesh.sailctl("apply", "-f", "bad.yaml", check=False)
    assert out.returncode == 1 and out.stderr.startswith("error: bad.yaml:16: ")
    # Started again, the mesh serves what was applied while it was down.
    mesh.sailctl("up", "-d", timeout=90)

    def five() -> None:
        assert served(mesh) == "five"

    eventually(five, timeout=30)
