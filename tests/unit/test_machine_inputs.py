"""Which changes make a sync plan the machine (pods, ClusterIPs, kube-proxy, router) again:
the kinds the machine reads, checked against what the planner really reads and produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from sailmesh.meshd.machine_inputs import (
    MACHINE_KINDS,
    TRAFFIC_KINDS,
    machine_kinds_changed,
    machine_sync_reason,
)
from sailmesh.meshd.planner import PlannedPod, plan_pods, service_rules
from sailmesh.model.route_admission import DEFAULT_APPS_DOMAIN, admit
from sailmesh.model.snapshot import Snapshot
from sailmesh.model.stats_inclusion import StatsInclusion
from sailmesh.resources.base import Resource
from sailmesh.resources.core import Deployment, Service
from sailmesh.resources.kinds import KINDS
from sailmesh.resources.loader import load_text
from sailmesh.resources.openshift import Route
from sailmesh.runtime.plans import ContainerPlan

# One object of every accepted kind; the placeholders are what a test changes.
MESH = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: %(injection)s}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: conf, namespace: shop}
data: {site.conf: "%(config)s"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: shop}
stringData: {token: "%(secret)s"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: %(replicas)s
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {sidecar.istio.io/statsInclusionSuffixes: "%(stats)s"}
    spec:
      serviceAccountName: web
      containers:
      - name: web
        image: curlimages/curl
        command: [sleep, infinity]
        ports: [{name: http, containerPort: 8080}]
        volumeMounts: [{name: conf, mountPath: /etc/web}, {name: creds, mountPath: /etc/creds}]
      volumes: [{name: conf, configMap: {name: conf}}, {name: creds, secret: {secretName: creds}}]
---
apiVersion: v1
kind: Service
metadata: {name: %(service)s, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: mesh, namespace: istio-system}
spec:
  meshConfig:
    defaultConfig:
      proxyStatsMatcher: {inclusionPrefixes: [%(mesh_stats)s]}
---
apiVersion: route.openshift.io/v1
kind: Route
metadata: {name: web, namespace: shop}
spec:
  host: %(route_host)s
  to: {kind: Service, name: web}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: shop}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["%(gateway_host)s"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  hosts: [web]
  http: [{directResponse: {status: 200, body: {string: "%(response)s"}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: shop}
spec:
  host: web
  subsets: [{name: %(subset)s, labels: {version: %(subset)s}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: shop}
spec:
  hosts: [%(external)s]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec: {mtls: {mode: %(mtls)s}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec: {egress: [{hosts: ["%(egress)s"]}]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: shop}
rules: [{apiGroups: [""], resources: [%(rbac)s], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: ServiceAccount, name: web, namespace: shop}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: cluster-reader}
rules: [{apiGroups: [""], resources: [%(rbac)s], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: cluster-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-reader}
subjects: [{kind: ServiceAccount, name: web, namespace: shop}]
"""
VALUES = {"injection": "enabled", "config": "one", "secret": "one", "replicas": 1,
          "stats": "upstream_rq_total", "service": "web", "mesh_stats": "cluster_manager",
          "route_host": "web.apps.example.com", "gateway_host": "a.example.com",
          "response": "one", "subset": "v1", "external": "api.example.com", "mtls": "STRICT",
          "egress": "./*", "rbac": "pods"}

# Per kind, a change of a field the kind's rule names (its own placeholder).
MACHINE_CHANGES = {
    "Namespace": {"injection": "disabled"},  # Istio's injection label
    "Deployment": {"stats": "upstream_cx_total"},  # a proxy config annotation
    "IstioOperator": {"mesh_stats": "listener"},  # meshConfig.defaultConfig
    "ConfigMap": {"config": "two"},
    "Secret": {"secret": "two"},
    "Service": {"service": "shop-web"},
    "Route": {"route_host": "www.apps.example.com"},
}
TRAFFIC_CHANGES = {
    "ServiceAccount": None,  # removed: a pod's identity is its spec's account name
    "Gateway": {"gateway_host": "b.example.com"},
    "VirtualService": {"response": "two"},
    "DestinationRule": {"subset": "v2"},
    "ServiceEntry": {"external": "other.example.com"},
    "PeerAuthentication": {"mtls": "PERMISSIVE"},
    "Sidecar": {"egress": "istio-system/*"},
    "Role": {"rbac": "secrets"},
    "RoleBinding": None,
    "ClusterRole": {"rbac": "secrets"},
    "ClusterRoleBinding": None,
}


def mesh(without: str = "", **changes: Any) -> Snapshot:
    resources = load_text(MESH % {**VALUES, **changes}, "mesh.yaml", None).resources
    return Snapshot.of(r for r in resources if without != r.KIND)


@dataclass(frozen=True)
class Recording(Snapshot):
    """A snapshot that records which kinds are asked of it."""

    asked: set[type[Resource]] = field(default_factory=set, compare=False)

    def of_kind(self, kind: type[Any]) -> list[Any]:
        self.asked.add(kind)
        return super().of_kind(kind)

    def get(self, kind: type[Any], namespace: str, name: str) -> Any:
        self.asked.add(kind)
        return super().get(kind, namespace, name)


def _sidecar(ns: str, pod: str, sa: str, stats: StatsInclusion) -> ContainerPlan:
    return ContainerPlan("istio-proxy", ("envoy", sa),
                         {"STATS": ",".join((*stats.prefixes, *stats.suffixes))})


def _router(ns: str, pod: str, stats: StatsInclusion) -> ContainerPlan:
    return ContainerPlan("istio-proxy", ("envoy",), {})


def machine(snap: Snapshot) -> tuple[Any, ...]:
    """Everything the machine's side of a sync derives from a snapshot: the pods (names kept,
    as for running pods), the blocked ones, the ClusterIPs, kube-proxy's rules with every pod
    ready, and the admitted Routes' hosts (the router's configuration and the pods' hosts
    files)."""
    vips = {(s.namespace, s.name): f"10.96.0.{i + 1}"
            for i, s in enumerate(sorted(snap.of_kind(Service),
                                         key=lambda s: (s.namespace, s.name)))}
    hosts = sorted({a.host for a in admit(snap.of_kind(Route), DEFAULT_APPS_DOMAIN).admitted})
    existing = [("shop", f"web-{d.template_hash()}-abcde") for d in snap.of_kind(Deployment)]
    plan = plan_pods(snap, vips, existing, _router, _sidecar, None, hosts)
    ready: list[tuple[PlannedPod, str]] = [(p, "10.1.0.2") for p in plan.pods]
    return (plan.pods, plan.blocked, vips, service_rules(snap, vips, ready), hosts)


def test_every_accepted_kind_is_placed_once() -> None:
    assert MACHINE_KINDS.isdisjoint(TRAFFIC_KINDS)
    assert set(KINDS.values()) == MACHINE_KINDS | TRAFFIC_KINDS
    assert set(MACHINE_CHANGES) | set(TRAFFIC_CHANGES) == set(KINDS)
    assert {k.KIND for k in MACHINE_KINDS} == set(MACHINE_CHANGES)


def test_the_machine_asks_only_for_machine_kinds() -> None:
    snap = mesh()
    recording = Recording(resources=snap.resources, version=snap.version)
    assert machine(recording) == machine(snap)
    assert recording.asked - {KINDS["Route"]}, "the planner asked for nothing"
    assert recording.asked <= MACHINE_KINDS


@pytest.mark.parametrize("kind", sorted(MACHINE_CHANGES))
def test_a_change_of_a_machine_kind_changes_the_machine(kind: str) -> None:
    before, after = mesh(), mesh(**MACHINE_CHANGES[kind])
    assert machine(after) != machine(before)
    assert machine_kinds_changed(before, after) == [kind]
    assert machine_sync_reason((before, {}), after, set(), {}, blocked=False,
                               adoptable=False) == f"{kind} changed"


@pytest.mark.parametrize("kind", sorted(TRAFFIC_CHANGES))
def test_a_change_of_a_traffic_kind_leaves_the_machine(kind: str) -> None:
    change = TRAFFIC_CHANGES[kind]
    before = mesh()
    after = mesh(without=kind) if change is None else mesh(**change)
    assert after.version != before.version
    assert machine(after) == machine(before)
    assert machine_kinds_changed(before, after) == []
    assert machine_sync_reason((before, {}), after, set(), {}, blocked=False,
                               adoptable=False) == ""


def test_a_machine_object_read_again_unchanged_is_no_change() -> None:
    """The store hands out the parsed object of an unchanged file; a fresh parse of the same
    content (another object) compares equal."""
    assert machine_kinds_changed(mesh(), mesh()) == []


RUNNING = ("Running", True, "10.1.0.2")


@pytest.mark.parametrize(("planned", "pods", "blocked", "adoptable", "reason"), [
    ({("shop", "a")}, {("shop", "a"): RUNNING}, False, False, ""),
    ({("shop", "a")}, {("shop", "a"): RUNNING}, True, False, "a pod is blocked"),
    ({("shop", "a")}, {("shop", "a"): RUNNING}, False, True, "pods to adopt"),
    ({("shop", "a")}, {}, False, False, "pods differ from the plan"),
    ({("shop", "a")}, {("shop", "a"): RUNNING, ("shop", "b"): RUNNING}, False, False,
     "pods differ from the plan"),
    ({("shop", "a")}, {("shop", "a"): ("Failed", False, "")}, False, False, "a pod failed"),
    ({("shop", "a")}, {("shop", "a"): ("Running", False, "10.1.0.2")}, False, False,
     "pods changed since the last push"),
])
def test_pods_that_need_the_machine_planned_again(
        planned: set[tuple[str, str]], pods: dict[tuple[str, str], Any], blocked: bool,
        adoptable: bool, reason: str) -> None:
    snap = mesh()
    synced = (snap, {("shop", "a"): RUNNING})
    assert machine_sync_reason(synced, mesh(response="two"), planned, pods, blocked=blocked,
                               adoptable=adoptable) == reason


def test_the_first_sync_plans_the_machine() -> None:
    assert machine_sync_reason(None, mesh(), set(), {}, blocked=False,
                               adoptable=False) == "first sync"
