"""The planner's Istio injection rules and pod shape, without running anything."""

from __future__ import annotations

import pytest

from sailmesh.meshd.planner import PROXY_READY_PORT, TLS_MODE_LABEL, injection_wanted, plan_pods
from sailmesh.resources.core import Deployment
from sailmesh.resources.loader import load_text
from sailmesh.runtime.plans import CapturePlan, ContainerPlan
from sailmesh.store.snapshot import Snapshot


def _snapshot(ns_labels: dict[str, str], pod_labels: dict[str, str], annotations: dict[str, str],
              mount_path: str | None = None) -> Snapshot:
    def flow(d: dict[str, str]) -> str:
        return "{" + ", ".join(f'"{k}": "{v}"' for k, v in d.items()) + "}"

    mount = ""
    volumes = ""
    if mount_path:
        mount = f"\n        volumeMounts: [{{name: cfg, mountPath: {mount_path}}}]"
        volumes = "\n      volumes: [{name: cfg, configMap: {name: cfg}}]"
    text = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: foo, labels: {flow(ns_labels)}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg, namespace: foo}}
data: {{a: b}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {flow({"app": "app", **pod_labels})}, annotations: {flow(annotations)}}}
    spec:
      serviceAccountName: robot
      containers:
      - name: app
        image: curlimages/curl
        command: [/bin/sleep, infinity]
        ports: [{{containerPort: 8080}}]{mount}{volumes}
"""
    return Snapshot.of(load_text(text, "test.yaml", None).resources)


def _router(ns: str, pod: str) -> ContainerPlan:
    return ContainerPlan("istio-proxy", ("/bin/true",), {})


def _sidecar(ns: str, pod: str, sa: str) -> ContainerPlan:
    return ContainerPlan("istio-proxy", ("/usr/local/bin/envoy", sa), {}, run_as_uid=1337)


@pytest.mark.parametrize(("ns_labels", "pod_labels", "annotations", "injected"), [
    ({"istio-injection": "enabled"}, {}, {}, True),
    ({}, {}, {}, False),
    ({"istio-injection": "enabled"}, {}, {"sidecar.istio.io/inject": "false"}, False),
    ({"istio-injection": "enabled"}, {"sidecar.istio.io/inject": "false"}, {}, False),
    ({}, {"sidecar.istio.io/inject": "true"}, {}, True),
    ({"istio-injection": "disabled"}, {"sidecar.istio.io/inject": "true"}, {}, False),
])
def test_injection_rules(ns_labels: dict[str, str], pod_labels: dict[str, str],
                         annotations: dict[str, str], injected: bool) -> None:
    snap = _snapshot(ns_labels, pod_labels, annotations)
    (dep,) = snap.of_kind(Deployment)
    assert injection_wanted(snap, dep) is injected
    plan = plan_pods(snap, {}, [], _router, _sidecar)
    (pod,) = plan.pods
    assert pod.sidecar is injected
    names = [c.name for c in pod.plan.containers]
    if injected:
        assert names == ["app", "istio-proxy"]
        assert pod.plan.containers[1].argv[-1] == "robot"  # the service account is passed on
        assert pod.plan.labels[TLS_MODE_LABEL] == "istio"
        assert pod.plan.capture == CapturePlan()
        assert PROXY_READY_PORT in pod.plan.ready_ports
    else:
        assert names == ["app"] and pod.plan.capture is None
        assert TLS_MODE_LABEL not in pod.plan.labels


def test_no_sidecar_factory_means_no_injection() -> None:
    snap = _snapshot({"istio-injection": "enabled"}, {}, {})
    (pod,) = plan_pods(snap, {}, [], _router).pods
    assert not pod.sidecar and len(pod.plan.containers) == 1


def test_new_top_level_mount_path_blocks_the_pod_with_the_reason() -> None:
    plan = plan_pods(_snapshot({}, {}, {}, "/certs-sm-test"), {}, [], _router, _sidecar)
    assert not plan.pods
    (why,) = plan.blocked.values()
    assert "needs a new top-level directory '/certs-sm-test'" in why and "/etc/certs-sm-test" in why
    ok = plan_pods(_snapshot({}, {}, {}, "/etc/certs"), {}, [], _router, _sidecar)
    assert len(ok.pods) == 1 and not ok.blocked
