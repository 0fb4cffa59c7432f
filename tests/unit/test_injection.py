"""Sidecar injection, one rule for the running mesh and for analysis.

Cases follow Istio's sidecar injector: the four entries of its MutatingWebhookConfiguration
(namespace / rev.namespace / object / rev.object) and pkg/kube/inject injectRequired (label
over annotation, y/yes/true/on, hostNetwork, system namespaces). The planner
(`meshd.planner`, what runs) and `analysis.workloads` (what analyze and tls-check describe)
must give the same answer for every case.
"""

from __future__ import annotations

import pytest
from test_planner import _router, _sidecar, _snapshot

from sailmesh.analysis.workloads import collect
from sailmesh.meshd.planner import plan_pods
from sailmesh.model.injection import injection

ENABLED = {"istio-injection": "enabled"}
INJECT = "sidecar.istio.io/inject"

CASES = [
    # (namespace labels, pod labels, pod annotations, injected)
    (ENABLED, {}, {}, True),
    ({}, {}, {}, False),
    ({"istio-injection": "disabled"}, {}, {}, False),
    (ENABLED, {}, {INJECT: "false"}, False),
    (ENABLED, {INJECT: "false"}, {}, False),
    (ENABLED, {}, {INJECT: "no"}, False),
    (ENABLED, {}, {INJECT: "yes"}, True),
    # The object webhook: a pod label "true" in a namespace with neither label.
    ({}, {INJECT: "true"}, {}, True),
    # The object webhook reads the label only: the annotation alone does not admit the pod.
    ({}, {}, {INJECT: "true"}, False),
    # istio-injection=disabled wins over every pod setting (no webhook entry selects it).
    ({"istio-injection": "disabled"}, {INJECT: "true"}, {}, False),
    # istio.io/rev: injected by the revision `default` only (sailmesh's control plane).
    ({"istio.io/rev": "default"}, {}, {}, True),
    ({"istio.io/rev": "canary"}, {}, {}, False),
    ({"istio.io/rev": "default"}, {INJECT: "false"}, {}, False),
    # istio-injection is present: the rev entries do not apply, istio-injection decides.
    ({"istio-injection": "enabled", "istio.io/rev": "canary"}, {}, {}, True),
    # The pod label istio.io/rev=default in an unlabelled namespace (rev.object).
    ({}, {"istio.io/rev": "default"}, {}, True),
    # Label and annotation disagree: injectRequired prefers the label.
    (ENABLED, {INJECT: "true"}, {INJECT: "false"}, True),
    (ENABLED, {INJECT: "False"}, {}, False),
]


@pytest.mark.parametrize(("ns_labels", "pod_labels", "annotations", "injected"), CASES)
def test_running_mesh_and_analysis_agree_with_istio(ns_labels: dict[str, str],
                                                    pod_labels: dict[str, str],
                                                    annotations: dict[str, str],
                                                    injected: bool) -> None:
    assert injection("foo", ns_labels, pod_labels, annotations)[0] is injected
    snap = _snapshot(ns_labels, pod_labels, annotations)
    (planned,) = plan_pods(snap, {}, [], _router, _sidecar).pods
    assert planned.sidecar is injected
    (analysed,) = [w for w in collect(snap) if w.name == "app"]
    assert analysed.sidecar is injected


def test_reasons_name_the_deciding_label() -> None:
    assert injection("foo", ENABLED, {}, {}) == (True, "namespace label istio-injection=enabled")
    assert injection("foo", {}, {INJECT: "true"}, {}) == (
        True, 'pod template label sidecar.istio.io/inject: "true"')
    assert injection("foo", {"istio-injection": "disabled"}, {INJECT: "true"}, {}) == (
        False, "namespace label istio-injection=disabled")
    assert injection("foo", ENABLED, {}, {INJECT: "false"}) == (
        False, "pod template annotation sidecar.istio.io/inject: 'false'")
    assert injection("foo", {"istio.io/rev": "canary"}, {}, {}) == (
        False, "namespace label istio.io/rev=canary names no control plane here "
        "(the only revision is default)")


def test_never_in_system_namespaces_nor_with_host_network() -> None:
    assert injection("kube-system", ENABLED, {}, {}) == (
        False, "Istio never injects in namespace kube-system")
    assert injection("foo", ENABLED, {}, {}, host_network=True) == (
        False, "pod uses hostNetwork")
    assert injection("foo", ENABLED, {}, {}, router=True) == (
        False, "gateway proxy (runs Envoy itself)")
