"""What analyzers read: one Snapshot, the mesh model over it, the gateway workloads, `now`.

Owns: layering analyzed files over stored config (as if applied, never stored), adding the
built-in ingress and egress gateways when the config has none (offline they count as
present, as in a running mesh), finding gateway workloads (Deployments and analyzed Pods
that run the gateway proxy or whose labels a Gateway's selector matches, as istioctl looks
for pods) and every workload with its sidecar decision; the problems found while reading
the analyzed files (reported as messages, never a refusal).
Must not know: output, the CLI, the clock (`now` is an argument), the store's IO.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sailmesh.analysis.workloads import MeshWorkload, collect
from sailmesh.model.gateway_merge import GatewayServer
from sailmesh.model.install import default_install
from sailmesh.model.mesh import MeshModel, build_model
from sailmesh.model.proxy import Proxy
from sailmesh.model.snapshot import Snapshot
from sailmesh.model.workloads import selector_matches
from sailmesh.resources.base import Resource
from sailmesh.resources.errors import Problem
from sailmesh.resources.networking import Gateway

_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"  # the store's creationTimestamp format


@dataclass(frozen=True)
class GatewayWorkload:
    """A gateway Deployment: where credentials are read and Gateways are merged."""

    namespace: str
    name: str
    labels: dict[str, str]
    router: bool  # runs the gateway proxy image (`proxy router`)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def proxy(self) -> Proxy:
        return Proxy("router", self.namespace, self.name, self.labels, "")


@dataclass(frozen=True)
class AnalysisContext:
    snapshot: Snapshot
    model: MeshModel
    gateway_workloads: tuple[GatewayWorkload, ...]
    now: datetime  # timezone-aware
    workloads: tuple[MeshWorkload, ...] = ()  # every Deployment and analyzed Pod
    input_problems: tuple[Problem, ...] = ()  # errors found reading the analyzed files

    @property
    def root_namespace(self) -> str:
        return self.model.mesh.root_namespace

    def workloads_of(self, gw: Gateway) -> tuple[GatewayWorkload, ...]:
        """Gateway workloads a Gateway's selector picks (an empty selector: every router)."""
        if not gw.spec.selector:
            return tuple(w for w in self.gateway_workloads if w.router)
        return tuple(w for w in self.gateway_workloads
                     if selector_matches(gw.spec.selector, w.labels))

    def merged_servers(self, workload: GatewayWorkload) -> tuple[GatewayServer, ...]:
        """The servers a workload really serves, after Istio's first-wins merge."""
        return self.model.gateways_for(workload.proxy()).servers


def layer(stored: Sequence[Resource], files: Sequence[Resource], now: datetime) -> list[Resource]:
    """`files` applied over `stored` without storing: same key replaces, keeping the stored
    creationTimestamp (as the store does); new objects are stamped `now` in file order, so
    they are the newest ("first wins" rules see them last)."""
    by_key = {r.key: r for r in stored}
    for i, r in enumerate(files):
        old = by_key.get(r.key)
        stamp = (old.metadata.creation_timestamp if old else None) or (
            now + timedelta(microseconds=i)).strftime(_STAMP)
        meta = r.metadata.model_copy(update={"creation_timestamp": stamp})
        by_key[r.key] = r.model_copy(update={"metadata": meta})
    return list(by_key.values())


def with_builtin_gateways(resources: Iterable[Resource]) -> list[Resource]:
    """Add what a mesh has from the start (istio-system, the ingress and egress gateways)
    when missing."""
    out = list(resources)
    keys = {r.key for r in out}
    out += [r for r in default_install() if r.key not in keys]
    return out


def build_context(snapshot: Snapshot, now: datetime, pods: Iterable[dict[str, Any]] = (),
                  input_problems: Iterable[Problem] = ()) -> AnalysisContext:
    """`pods`: raw Pod objects from analyzed files (their labels stand for workloads)."""
    model = build_model(snapshot, workloads=[])
    workloads = collect(snapshot, pods)
    selectors = [g.spec.selector for g in snapshot.of_kind(Gateway) if g.spec.selector]
    gateway_workloads = tuple(
        GatewayWorkload(w.namespace, w.name, dict(w.labels), w.router) for w in workloads
        if w.router or any(selector_matches(sel, w.labels) for sel in selectors))
    return AnalysisContext(snapshot, model, gateway_workloads, now, workloads,
                           tuple(input_problems))
