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
