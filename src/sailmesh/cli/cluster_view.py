"""What kubectl reads from an API server, built from the store and the running mesh.

Owns: the API objects `get`, `describe` and `wait` print or test — stored resources as
applied, plus the objects the cluster itself would hold (Pods and ReplicaSets from the
running pods, Deployment and Service `status`) — as plain JSON-like dicts.
Must not know: how they are printed (cli.printers) or any Istio rule.

Kubernetes facts reproduced:
- A Deployment's status counts its pods: `replicas`, `updatedReplicas`, `readyReplicas`,
  `availableReplicas`, and conditions `Available` (all wanted replicas ready) and
  `Progressing`. A Pod has conditions `PodScheduled`, `Initialized`, `ContainersReady`,
  `Ready`, one `containerStatuses` entry per container (the injected `istio-proxy` too).
- Pods are named `<deployment>-<pod-template-hash>-<suffix>` and owned by ReplicaSet
  `<deployment>-<pod-template-hash>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sailmesh.cli.common import daemon_call
from sailmesh.cli.live_kinds import LIVE_KINDS, live_kind
from sailmesh.meshd.paths import Home
from sailmesh.resources.base import Resource
from sailmesh.resources.base import type_name as resource_type_name
from sailmesh.resources.kinds import KINDS, stored_kind
from sailmesh.store import Store

# `kubectl get all`: the kinds of the "all" category that sailmesh has.
ALL_CATEGORY = ("Pod", "Service", "Deployment", "ReplicaSet")
PROXY_IMAGE = "docker.io/istio/proxyv2"


class UnknownKind(LookupError):
    pass


def resolve_kind(name: str) -> str:
    """kubectl's resource names (`svc`, `gateways`, `deployment.apps`) → kind."""
    stored = stored_kind(name)
    if stored is not None:
        return stored
    live = live_kind(name)
    if live is not None:
        return live
    raise UnknownKind(f'the server doesn\'t have a resource type "{name}"')


def api_version(kind: str) -> str:
    if kind in LIVE_KINDS:
        return LIVE_KINDS[kind][0]
    return KINDS[kind].API_VERSIONS[0]


def namespaced(kind: str) -> bool:
    return kind in LIVE_KINDS or KINDS[kind].NAMESPACED


def type_name(kind: str, version: str | None = None) -> str:
    """kubectl's `<resource>.<group>` prefix, for stored and live kinds."""
    return resource_type_name(kind, version or api_version(kind))


def resource_dict(r: Resource) -> dict[str, Any]:
    return r.model_dump(by_alias=True, exclude_unset=True, mode="json")


def _timestamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t else ""


@dataclass
class ClusterView:
    """One consistent read: the store's resources and (when it runs) the daemon's status."""

    resources: list[Resource]
    status: dict[str, Any] | None
    _pods: list[dict[str, Any]] | None = field(default=None, repr=False)

    @classmethod
    def read(cls, home: Home, *, live: bool = True) -> ClusterView:
        return cls(Store(home.root).list(), daemon_call("status") if live else None)

    @property
    def running(self) -> bool:
        return self.status is not None

    def objects(self, kind: str, namespace: str | None) -> list[dict[str, Any]]:
        """Every object of a kind in a namespace (None: all namespaces), as the API has it."""
        if kind == "Pod":
            items = self.pods()
        elif kind == "ReplicaSet":
            items = self._replica_sets()
        else:
            items = [self._with_status(r) for r in self.resources if r.kind == kind]
        if namespace is not None and namespaced(kind):
            items = [o for o in items if o["metadata"].get("namespace") == namespace]
        return items

    def _with_status(self, r: Resource) -> dict[str, Any]:
        obj = resource_dict(r)
        if r.kind == "Deployment":
            obj["status"] = self._deployment_status(r, obj)
        elif r.kind == "Service":
            obj["spec"].setdefault("type", "ClusterIP")
            vip = (self.status or {}).get("vips", {}).get(f"{r.namespace}/{r.name}")
            if vip and obj["spec"].get("clusterIP") is None:
                obj["spec"]["clusterIP"] = vip
            obj["status"] = {"loadBalancer": self._load_balancer(r)}
        elif r.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        elif r.kind == "Route":
            obj["status"] = self._route_status(r)
        return obj

    def _route_status(self, r: Resource) -> dict[str, Any]:
        """The router's `status.ingress`; with the mesh down, what it would report."""
        live = (self.status or {}).get("routes", {}).get(f"{r.namespace}/{r.name}")
        if live:
            return dict(live)
        from sailmesh.meshd.openshift_router import RouterConfig
        from sailmesh.model.route_admission import admit
        from sailmesh.resources.openshift import Route

        domain = RouterConfig.from_env().apps_domain
        routes = [x for x in self.resources if isinstance(x, Route)]
        assert isinstance(r, Route)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return admit(routes, domain).status(r, domain, now)

    def _load_balancer(self, r: Resource) -> dict[str, Any]:
        if getattr(r, "spec", None) is None or r.spec.type != "LoadBalancer":  # type: ignore[attr-defined]
            return {}
        # The address the mesh gives it on the host's loopback, once a gateway serves it;
        # before that (or for a Service of plain pods) none: EXTERNAL-IP <pending>.
        ip = (self.status or {}).get("load_balancers", {}).get(f"{r.namespace}/{r.name}")
        return {"ingress": [{"ip": ip, "ipMode": "VIP"}]} if ip else {}

    def _deployment_status(self, r: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        wanted = obj["spec"].get("replicas", 1)
        pods = [p for p in self.pods() if p["metadata"]["namespace"] == r.namespace
                and _owner_deployment(p) == r.name]
        current = r.template_hash()  # type: ignore[attr-defined]
        ready = sum(1 for p in pods if _condition(p, "Ready"))
        updated = sum(1 for p in pods if p["metadata"]["labels"].get("pod-template-hash") == current)
        status: dict[str, Any] = {"observedGeneration": 1, "replicas": len(pods),
                                  "updatedReplicas": updated}
        if ready:
            status["readyReplicas"] = ready
            status["availableReplicas"] = ready
        if wanted - ready > 0:
            status["unavailableReplicas"] = wanted - ready
        available = ready >= wanted
        status["conditions"] = [
            _cond("Available", available,
                  "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                  "Deployment has minimum availability." if available
                  else "Deployment does not have minimum availability."),
            _cond("Progressing", True, "NewReplicaSetAvailable",
                  f'ReplicaSet "{r.name}-{current}" has successfully progressed.'),
        ]
        return status

    def pods(self) -> list[dict[str, Any]]:
        if self._pods is None:
            images = self._images()
            self._pods = [_pod(p, images) for p in status_pods(self.status)]
        return self._pods

    def raw_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        for p in status_pods(self.status):
            if p["namespace"] == namespace and p["name"] == name:
                return p
        return None

    def _images(self) -> dict[tuple[str, str], dict[str, str]]:
        out: dict[tuple[str, str], dict[str, str]] = {}
        for r in self.resources:
            if r.kind == "Deployment":
                out[(r.namespace, r.name)] = {
                    c.name: c.image for c in r.spec.template.spec.containers  # type: ignore[attr-defined]
                }
        return out

    def _replica_sets(self) -> list[dict[str, Any]]:
        sets: dict[tuple[str, str], dict[str, Any]] = {}
        deployments = {(r.namespace, r.name): r for r in self.resources if r.kind == "Deployment"}
        for p in self.pods():
            dep = _owner_deployment(p)
            ns = p["metadata"]["namespace"]
            rs_name = p["metadata"]["name"].rsplit("-", 1)[0]
            if (ns, dep) not in deployments:
                continue
            rs = sets.setdefault((ns, rs_name), {
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs_name, "namespace": ns,
                             "creationTimestamp": p["metadata"].get("creationTimestamp", ""),
                             "labels": p["metadata"]["labels"],
                             "ownerReferences": [{"kind": "Deployment", "name": dep}]},
                "spec": {"replicas": deployments[(ns, dep)].spec.replicas},  # type: ignore[attr-defined]
                "status": {"replicas": 0, "readyReplicas": 0},
            })
            rs["status"]["replicas"] += 1
            rs["status"]["readyReplicas"] += int(_condition(p, "Ready"))
        return list(sets.values())


def status_pods(status: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The daemon's pod records and, as the pod of Deployment istio-system/istiod, the
    daemon itself (model.install)."""
    if not status:
        return []
    control_plane = status.get("control_plane")
    return [*status.get("pods", []), *([control_plane] if control_plane else [])]


def _cond(kind: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    c: dict[str, Any] = {"type": kind, "status": "True" if ok else "False"}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def _condition(obj: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in obj.get("status", {}).get("conditions", []))


def condition_status(obj: dict[str, Any], kind: str) -> str | None:
    """The status ("True"/"False"/…) of a condition, compared case-insensitively as kubectl."""
    for c in obj.get("status", {}).get("conditions", []):
        if str(c.get("type", "")).lower() == kind.lower():
            return str(c.get("status"))
    return None


def _owner_deployment(pod: dict[str, Any]) -> str:
    """The Deployment of a pod, through its ReplicaSet `<deployment>-<hash>`."""
    for ref in pod["metadata"].get("ownerReferences", []):
        if ref.get("kind") == "ReplicaSet":
            return str(ref["name"]).rsplit("-", 1)[0]
    return ""


def _pod(p: dict[str, Any], images: dict[tuple[str, str], dict[str, str]]) -> dict[str, Any]:
    """A Pod object from the daemon's record of a local pod."""
    names = p.get("container_names") or list(p.get("logs") or {}) or ["app"]
    app_images = images.get((p["namespace"], p.get("deployment", "")), {})
    ready = bool(p["ready"])
    statuses = []
    for name in names:
        running = p["phase"] == "Running"
        state: dict[str, Any] = (
            {"running": {"startedAt": _timestamp(p.get("started_at") or 0)}} if running
            else {"waiting": _waiting(p, name)}
        )
        statuses.append({"name": name, "ready": ready, "restartCount": p.get("restarts", 0),
                         "image": app_images.get(name, PROXY_IMAGE if name == "istio-proxy" else ""),
                         "started": running, "state": state})
    meta: dict[str, Any] = {"name": p["name"], "namespace": p["namespace"],
                            "labels": dict(p.get("labels") or {}),
                            "creationTimestamp": _timestamp(p.get("started_at") or 0)}
    if p.get("deployment") or p["name"].count("-") >= 2:  # blocked pods carry no deployment
        rs = p["name"].rsplit("-", 1)[0]
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                    "controller": True}]
    scheduled = bool(p.get("ip")) or p["phase"] != "Pending"
    status: dict[str, Any] = {
        "phase": "Running" if p["phase"] == "Terminating" else p["phase"],
        "conditions": [_cond("PodScheduled", True), _cond("Initialized", scheduled),
                       _cond("ContainersReady", ready), _cond("Ready", ready)],
        "containerStatuses": statuses,
        "hostIP": "127.0.0.1",
    }
    if p.get("ip"):
        status["podIP"] = p["ip"]
        status["podIPs"] = [{"ip": p["ip"]}]
    if p.get("started_at"):
        status["startTime"] = _timestamp(p["started_at"])
    containers = [{"name": s["name"], "image": s["image"]} for s in statuses]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": containers, "nodeName": "sailmesh"}, "status": status}


def _waiting(p: dict[str, Any], name: str) -> dict[str, str]:
    """A waiting container's reason and message: a pod that cannot start names the container
    at fault (`waiting`); the others wait without a reason, as ones not yet created."""
    if p.get("waiting") and p["waiting"] != name:
        return {}
    out = {"reason": p.get("reason") or ""}
    if p.get("message"):
        out["message"] = p["message"]
    return out


def pod_status_text(pod: dict[str, Any], raw: dict[str, Any] | None) -> str:
    """kubectl's STATUS column: the phase, or the reason a container is waiting."""
    if raw is not None and raw.get("phase") == "Terminating":
        return "Terminating"
    for s in pod["status"].get("containerStatuses", []):
        waiting = s.get("state", {}).get("waiting")
        if waiting and waiting.get("reason"):
            return str(waiting["reason"])
    return str(pod["status"]["phase"])
