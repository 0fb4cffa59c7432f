"""Running workloads as the runtime reports them: the only live input of the model.

Owns: the `Workload` record (one pod), Kubernetes label selection and an index of
selectors by label. Must not know: how pods are started, Envoy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Workload:
    """A running pod. `ready` decides endpoint membership, as Kubernetes readiness does."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    ip: str
    service_account: str
    ready: bool
    # Port name → number, so that a Service's named targetPort can be resolved.
    container_ports: Mapping[str, int] = field(default_factory=dict)


# Istio's default cluster id (values.global.multiCluster.clusterName) for one cluster: its
# proxies' ISTIO_META_CLUSTER_ID.
CLUSTER_ID = "Kubernetes"
# Istio's injector labels every pod with its canonical service and revision, taken from the
# first of these labels present (else the workload's name, and `latest`).
CANONICAL_NAME_LABELS = ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
CANONICAL_REVISION_LABELS = ("service.istio.io/canonical-revision", "app.kubernetes.io/version",
                             "version")


def canonical_service(labels: Mapping[str, str], workload: str) -> str:
    return next((labels[k] for k in CANONICAL_NAME_LABELS if k in labels), workload)


def canonical_revision(labels: Mapping[str, str]) -> str:
    return next((labels[k] for k in CANONICAL_REVISION_LABELS if k in labels), "latest")


def selector_matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Kubernetes equality-based selection: every selector label present with that value."""
    return all(labels.get(k) == v for k, v in selector.items())


class SelectorIndex(Generic[T]):
    """Items with a namespace and a non-empty label selector, found by the labels of a pod
    in that namespace (each item is filed under one label of its selector, so a pod's
    labels look up only the items that could select it). Results keep the items' order."""

    def __init__(self, items: Iterable[tuple[str, Mapping[str, str], T]]) -> None:
        self._by_label: dict[tuple[str, str, str], list[tuple[int, Mapping[str, str], T]]] = (
            defaultdict(list))
        for i, (namespace, selector, item) in enumerate(items):
            k, v = min(selector.items())
            self._by_label[(namespace, k, v)].append((i, selector, item))

    def selecting(self, namespace: str, labels: Mapping[str, str]) -> list[T]:
        found = [entry for k, v in labels.items()
                 for entry in self._by_label.get((namespace, k, v), ())]
        return [item for _, selector, item in sorted(found, key=lambda e: e[0])
                if selector_matches(selector, labels)]


class WorkloadIndex:
    """Workloads by (namespace, label, value): the pods a selector selects, in order."""

    def __init__(self, workloads: Iterable[Workload]) -> None:
        self._by_label: dict[tuple[str, str, str], list[Workload]] = defaultdict(list)
        for w in workloads:
            for k, v in w.labels.items():
                self._by_label[(w.namespace, k, v)].append(w)

    def selected(self, namespace: str, selector: Mapping[str, str]) -> list[Workload]:
        """Workloads of `namespace` that a non-empty `selector` selects."""
        k, v = min(selector.items())
        return [w for w in self._by_label.get((namespace, k, v), ())
                if selector_matches(selector, w.labels)]
