"""Running workloads as the runtime reports them: the only live input of the model.

Owns: the `Workload` record (one pod). Must not know: how pods are started, Envoy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


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


def selector_matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Kubernetes equality-based selection: every selector label present with that value."""
    return all(labels.get(k) == v for k, v in selector.items())
