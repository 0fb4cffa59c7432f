"""Workloads as analysis sees them: who runs, with which labels and ports, with or without a
sidecar — decided from the config alone, so that `analyze` works offline.

Owns: one `MeshWorkload` per Deployment (its pod template stands for its pods, as offline
there are no pods) and per Pod given in analyzed files; which workloads a Service selects
and on which container port. The injection decision is the running mesh's own
(`model.injection`), so analysis describes the mesh that runs. Must not know: the runtime,
Envoy, output.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sailmesh.model.injection import injection, is_router
from sailmesh.model.services import MeshService, ServicePort
from sailmesh.model.snapshot import Snapshot
from sailmesh.model.workloads import Workload, selector_matches
from sailmesh.resources.core import Deployment, Namespace


@dataclass(frozen=True)
class MeshWorkload:
    """A Deployment's pod template or a Pod from the analyzed files."""

    kind: str  # "Deployment" or "Pod"
    namespace: str
    name: str
    labels: Mapping[str, str]
    service_account: str
    sidecar: bool
    sidecar_reason: str  # why injected or not, in one clause
    router: bool  # a gateway proxy (istio-ingressgateway and the like)
    container_ports: Mapping[str, int] = field(default_factory=dict)  # name (or number) → port

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def ports(self) -> frozenset[int]:
        return frozenset(self.container_ports.values())

    def identity(self, trust_domain: str) -> str:
        return f"spiffe://{trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    def as_policy_workload(self) -> Workload:
        """The record `model.policy` resolves PeerAuthentication for."""
        return Workload(self.namespace, self.name, dict(self.labels), "", self.service_account,
                        True, dict(self.container_ports))


def collect(snapshot: Snapshot, pods: Iterable[dict[str, Any]] = ()) -> tuple[MeshWorkload, ...]:
    """Workloads of every Deployment in `snapshot`, then of every raw Pod object in `pods`."""
    ns_labels = {n.name: dict(n.metadata.labels) for n in snapshot.of_kind(Namespace)}
    out: list[MeshWorkload] = []
    for d in snapshot.of_kind(Deployment):
        tmpl = d.spec.template
        router = any(is_router(c.image, c.args) for c in tmpl.spec.containers)
        ports = {p.name or str(p.container_port): p.container_port
                 for c in tmpl.spec.containers for p in c.ports}
        sidecar, why = injection(d.namespace, ns_labels.get(d.namespace, {}),
                                 tmpl.metadata.labels, tmpl.metadata.annotations, router=router,
                                 host_network=bool(tmpl.spec.host_network))
        out.append(MeshWorkload("Deployment", d.namespace, d.name, dict(tmpl.metadata.labels),
                                tmpl.spec.service_account_or_default, sidecar, why, router,
                                ports))
    for raw in pods:
        w = _pod(raw, ns_labels)
        if w is not None:
            out.append(w)
    return tuple(out)


def _pod(raw: dict[str, Any], ns_labels: Mapping[str, Mapping[str, str]]) -> MeshWorkload | None:
    """A Pod manifest, read leniently: only labels, annotations, ports and containers."""
    meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
    spec = raw.get("spec") if isinstance(raw.get("spec"), dict) else {}
    name = meta.get("name")
    if not isinstance(name, str):
        return None
    ns = meta.get("namespace") if isinstance(meta.get("namespace"), str) else "default"
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    names = {c.get("name") for c in containers}
    router = any(is_router(c.get("image"), c.get("args")) for c in containers)
    ports: dict[str, int] = {}
    for c in containers:
        for p in c.get("ports") or []:
            if isinstance(p, dict) and isinstance(p.get("containerPort"), int):
                ports[str(p.get("name") or p["containerPort"])] = p["containerPort"]
    if "istio-proxy" in names and not router:
        sidecar, why = True, "pod has an istio-proxy container"
    else:
        sidecar, why = injection(ns, ns_labels.get(ns, {}), labels, annotations, router=router,
                                 host_network=spec.get("hostNetwork") is True)
    sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    return MeshWorkload("Pod", ns, name, labels, str(sa), sidecar, why, router, ports)


def selected_by(workloads: Iterable[MeshWorkload], svc: MeshService, *,
                gateways: bool = False) -> list[MeshWorkload]:
    """Workloads a Service's selector picks (none for a Service without selector); gateway
    workloads only when asked for."""
    if not svc.selector:
        return []
    return [w for w in workloads if w.namespace == svc.namespace and (gateways or not w.router)
            and selector_matches(svc.selector, w.labels)]


def target_port(port: ServicePort, workload: MeshWorkload) -> int | None:
    """The container port a Service port reaches on `workload` (None: a name it lacks)."""
    target = port.target_port
    if target is None:
        return port.port
    if isinstance(target, int):
        return target
    if target.isdigit():
        return int(target)
    return workload.container_ports.get(target)
