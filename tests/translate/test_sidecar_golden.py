"""Golden sidecar translation cases, each also checked by the real `envoy --mode validate`.

A case under sidecar_cases/ is laid out as the gateway cases are (input.yaml,
workloads.yaml naming the proxy pod, golden.yaml); the proxy is a sidecar. For validation
RDS is inlined, EDS becomes STATIC, SDS references become static secrets and the workload
identity `default` / `ROOTCA` is filled with test certificates (the CA side serves them
in a real run). `REFRESH_GOLDEN=1 pytest tests/translate` rewrites the goldens.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cases_io import (
    CERTS,
    ENVOY,
    NOW,
    check_golden,
    envoy_validate,
    load_workloads,
    render,
    static_bootstrap,
)

from sailmesh.model.mesh import MeshModel, build_model
from sailmesh.model.proxy import Proxy
from sailmesh.translate import translate_proxy

SIDECAR_CASES = Path(__file__).parent / "sidecar_cases"
CASE_DIRS = sorted(p for p in SIDECAR_CASES.iterdir() if (p / "input.yaml").exists())


def load_sidecar_case(path: Path) -> tuple[MeshModel, Proxy, dict[str, Path]]:
    snapshot, workloads, spec, pod = load_workloads(path)
    ns, name = pod.namespace, pod.name
    files = {k: CERTS / v for k, v in (spec.get("files") or {}).items()}
    return (build_model(snapshot, workloads), Proxy("sidecar", ns, name, pod.labels, pod.ip),
            files)


@pytest.mark.parametrize("case_dir", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_sidecar_golden(case_dir: Path) -> None:
    model, proxy, _ = load_sidecar_case(case_dir)
    check_golden(case_dir, render(translate_proxy(model, proxy, now=NOW)))


@pytest.mark.skipif(not ENVOY.exists(), reason="envoy binary not installed in .venv")
@pytest.mark.parametrize("case_dir", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_sidecar_envoy_accepts(case_dir: Path, tmp_path: Path) -> None:
    model, proxy, files = load_sidecar_case(case_dir)
    config = translate_proxy(model, proxy, now=NOW)
    assert "virtualInbound" in config.listeners and "virtualOutbound" in config.listeners
    result = envoy_validate(static_bootstrap(config, proxy, files), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
