"""Sidecar analyzers beyond Istio's own cases (tests/analysis/istio_cases): message text,
the Sidecar the mesh really applies, and Kiali's KIA1004 for an egress host that imports
nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sailmesh.analysis.catalogue import analyze
from sailmesh.analysis.context import build_context, layer, with_builtin_gateways
from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.loader import load_paths

NOW = datetime(2025, 6, 1, tzinfo=UTC)
CONFIG = """\
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: prod}
spec:
  ports: [{name: http, port: 9080}]
  selector: {app: reviews}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: egress}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: test}
spec:
  egress:
  - hosts:
    - ./*
    - prod/reviews.prod.svc.cluster.local
    - "*/*.example.com"
    - prod/ratings.prod.svc.cluster.local
    - egress/*.example.org
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: second, namespace: test}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""


def _lines(tmp_path: Path) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    loaded = load_paths([path], None, tolerant=True)
    snapshot = Snapshot.of(with_builtin_gateways(layer([], loaded.resources, NOW)))
    ctx = build_context(snapshot, NOW, [], loaded.errors)
    return [m.line() for m in analyze(ctx) if m.ref.startswith("Sidecar")]


def test_sidecar_messages(tmp_path: Path) -> None:
    lines = _lines(tmp_path)
    assert lines == [
        "Error [IST0111] (Sidecar test/default) spec.workloadSelector: The "
        'Sidecars [default second] in namespace "test" have no workload selector, which can '
        "lead to undefined behavior. (sailmesh applies the oldest, default.) Fix: keep one "
        "Sidecar without workloadSelector per namespace (merge their egress hosts), or give "
        "the others a workloadSelector. [SM0172]",
        "Error [IST0111] (Sidecar test/second) spec.workloadSelector: The "
        'Sidecars [default second] in namespace "test" have no workload selector, which can '
        "lead to undefined behavior. (sailmesh applies the oldest, default.) Fix: keep one "
        "Sidecar without workloadSelector per namespace (merge their egress hosts), or give "
        "the others a workloadSelector. [SM0172]",
        "Warning [SM0175] (Sidecar test/default) spec.egress[0].hosts[3]: egress "
        "host prod/ratings.prod.svc.cluster.local matches no Service, ServiceEntry or "
        "VirtualService: it imports nothing Fix: name a host that a Service, ServiceEntry or "
        "VirtualService of that namespace defines (`ns/name.ns.svc.cluster.local`, `ns/*`), "
        "or remove it. [KIA1004]",
        "Warning [SM0175] (Sidecar test/default) spec.egress[0].hosts[4]: egress "
        "host egress/*.example.org matches no Service, ServiceEntry or VirtualService: it "
        "imports nothing Fix: name a host that a Service, ServiceEntry or VirtualService of "
        "that namespace defines (`ns/name.ns.svc.cluster.local`, `ns/*`), or remove it. "
        "[KIA1004]",
    ]
