"""Whether a sync must plan the machine again: its pods, ClusterIPs, kube-proxy's rules and the
OpenShift router, or whether only the proxies' configuration changed.

The machine's side of a sync (`planner.plan_pods`, `planner.service_rules`, the daemon's
ClusterIP and LoadBalancer addresses, `OpenShiftRouter`) reads only the kinds in
MACHINE_KINDS. What of them it reads, and why each is there:
- Deployment: the pods themselves; the pod template's labels and annotations are Istio's
  injection inputs (`sidecar.istio.io/inject`, `sidecar.istio.io/statsInclusion*`,
  `sidecar.istio.io/userVolume*`, `model.injection`, `model.stats_inclusion`).
- Namespace: Istio's injection labels (`istio-injection`, `istio.io/rev`).
- IstioOperator: meshConfig.defaultConfig, the proxy config every injected proxy starts with.
- ConfigMap, Secret: pod volumes (and the router's certificates).
- Service: ClusterIPs, every pod's hosts file, kube-proxy's rules, external stand-ins.
- Route: the router's configuration, and the Route hosts in every pod's hosts file.
The other kinds (TRAFFIC_KINDS: Istio's traffic and security API, Sidecar, RBAC and
ServiceAccounts) reach the proxies' xDS only. Istio behaves the same way: a VirtualService or
DestinationRule change is pushed to the proxies and no pod is re-injected or restarted.

Every accepted kind is in exactly one of the two sets (a test checks it against
`resources.kinds.KINDS`), so a new kind must be placed before it is accepted.
Owns: that rule, and the other reasons a sync re-plans the machine whatever changed.
Must not: do IO.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.base import Resource
from sailmesh.resources.core import ConfigMap, Deployment, Namespace, Secret, Service, ServiceAccount
from sailmesh.resources.networking import DestinationRule, Gateway, ServiceEntry, VirtualService
from sailmesh.resources.openshift import Route
from sailmesh.resources.operator import IstioOperator
from sailmesh.resources.rbac import ClusterRole, ClusterRoleBinding, Role, RoleBinding
from sailmesh.resources.security import PeerAuthentication
from sailmesh.resources.sidecar import Sidecar
from sailmesh.runtime.plans import PodStatus

MACHINE_KINDS: frozenset[type[Resource]] = frozenset(
    {Deployment, Namespace, IstioOperator, ConfigMap, Secret, Service, Route})
TRAFFIC_KINDS: frozenset[type[Resource]] = frozenset(
    {Gateway, VirtualService, DestinationRule, ServiceEntry, PeerAuthentication, Sidecar,
     ServiceAccount, Role, ClusterRole, RoleBinding, ClusterRoleBinding})

PodState = tuple[str, bool, str]


def pod_state(st: PodStatus) -> PodState:
    """What of a pod a push reads and the runtime reports as a change: phase, ready, IP."""
    return st.phase, st.ready, st.ip


def machine_kinds_changed(before: Snapshot, after: Snapshot) -> list[str]:
    """The machine kinds whose resources differ between two snapshots (added, removed,
    changed, reordered), by kind name. An unchanged resource is usually the same object
    (the store keeps what it parsed from an unchanged file); otherwise it is compared."""
    changed = []
    for kind in sorted(MACHINE_KINDS, key=lambda k: k.KIND):
        old, new = before.of_kind(kind), after.of_kind(kind)
        if len(old) != len(new) or any(a is not b and a != b for a, b in zip(old, new,
                                                                             strict=True)):
            changed.append(kind.KIND)
    return changed


def machine_sync_reason(
    synced: tuple[Snapshot, Mapping[tuple[str, str], PodState]] | None,
    snap: Snapshot,
    planned: Set[tuple[str, str]],
    pods: Mapping[tuple[str, str], PodState],
    *,
    blocked: bool,
    adoptable: bool,
) -> str:
    """Why a sync of `snap` must plan the machine again; "" when it need not.

    `synced`: the snapshot and pod states of the last push whose machine part completed
    (None: none yet); `planned`: the pods it planned; `pods`: the pods running now. Besides
    a changed machine kind, the machine is planned again while a pod is blocked (a missing
    command may have been installed since: the kubelet retries too), failed or missing (it
    is recreated), when pods wait to be adopted, and when a pod changed since that push
    (kube-proxy's endpoints follow readiness)."""
    if synced is None:
        return "first sync"
    kinds = machine_kinds_changed(synced[0], snap)
    if kinds:
        return f"{', '.join(kinds)} changed"
    if blocked:
        return "a pod is blocked"
    if adoptable:
        return "pods to adopt"
    if set(pods) != planned:
        return "pods differ from the plan"
    if any(phase == "Failed" for phase, _, _ in pods.values()):
        return "a pod failed"
    if pods != synced[1]:
        return "pods changed since the last push"
    return ""


__all__ = ["MACHINE_KINDS", "TRAFFIC_KINDS", "PodState", "machine_kinds_changed",
           "machine_sync_reason", "pod_state"]
