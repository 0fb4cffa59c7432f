"""Desired state of the local machine from a Snapshot: which pods run, with which processes,
volumes and hosts files, and which ClusterIP rules kube-proxy keeps.

This is the controller-manager part (Deployment → pods) and the kubelet's volume and DNS
work, expressed as data for the runtime. Pure apart from the random pod-name suffix, which
the caller passes in through `existing` (names of live pods are kept).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sailmesh.meshd.volume_sources import PodMeta, VolumeSourceError, downward_files, projected_files
from sailmesh.model.external_world import external_hosts_entries
from sailmesh.model.injection import TLS_MODE_LABEL, injection, is_injected_proxy, is_router
from sailmesh.model.install import (
    ROUTER_NAMESPACE,
    ROUTER_SERVICE,
    is_control_plane,
    is_openshift_router,
)
from sailmesh.model.mesh import mesh_config
from sailmesh.model.snapshot import Snapshot
from sailmesh.model.stats_inclusion import StatsInclusion, StatsInclusionError, stats_inclusion
from sailmesh.resources.core import (
    ConfigMap,
    ConfigMapVolumeSource,
    Deployment,
    KeyToPath,
    Namespace,
    Secret,
    SecretVolumeSource,
    Service,
    Volume,
    VolumeMount,
)
from sailmesh.resources.sidecar_volumes import USER_VOLUME_MOUNT, UserVolumeError, user_volumes
from sailmesh.runtime.errors import ContainerConfigError, ImageError
from sailmesh.runtime.images import resolve_container
from sailmesh.runtime.plans import CapturePlan, ContainerPlan, PodPlan, ServiceRule, VolumePlan

CLUSTER_DOMAIN = "svc.cluster.local"
# A pod's hosts file: (address, names) rows.
HostsRows = tuple[tuple[str, tuple[str, ...]], ...]

# Builds the istio-proxy container of a gateway pod: (namespace, pod name, the Envoy stats
# it keeps) → container plan.
RouterFactory = Callable[[str, str, StatsInclusion], ContainerPlan]
# Builds the injected istio-proxy container of an application pod: (namespace, pod name,
# service account, the Envoy stats it keeps) → container plan.
SidecarFactory = Callable[[str, str, str, StatsInclusion], ContainerPlan]
# Builds the HAProxy container of OpenShift's router pod: (namespace, pod name) → plan.
OpenShiftRouterFactory = Callable[[str, str], ContainerPlan]

# Istio's sidecar readiness port (the proxy's /healthz/ready).
PROXY_READY_PORT = 15021


@dataclass(frozen=True)
class PlannedPod:
    plan: PodPlan
    deployment: str
    service_account: str
    container_ports: Mapping[str, int]
    router: bool
    sidecar: bool = False


@dataclass(frozen=True)
class BlockedPod:
    """A pod that cannot start, as the kubelet reports it: the pod stays Pending, the
    container that cannot start waits with `reason`, and `events` are what `describe pod`
    lists (kubelet's event reasons and messages)."""

    deployment: str
    labels: Mapping[str, str]
    containers: tuple[str, ...]  # every container's name, the injected istio-proxy too
    container: str  # the one that cannot start; "" when the whole pod cannot (a volume)
    reason: str  # ImagePullBackOff, RunContainerError, CreateContainerConfigError, ContainerCreating
    message: str
    image: str = ""

    def events(self) -> tuple[tuple[str, str, str], ...]:
        """(type, reason, message) as the kubelet records them for this failure."""
        if self.reason == "ImagePullBackOff":
            return (("Warning", "Failed", f'Failed to pull image "{self.image}": {self.message}'),
                    ("Warning", "Failed", "Error: ErrImagePull"),
                    ("Normal", "BackOff", f'Back-off pulling image "{self.image}"'),
                    ("Warning", "Failed", "Error: ImagePullBackOff"))
        if self.reason == "ContainerCreating":
            return (("Warning", "FailedMount", self.message),)
        return (("Warning", "Failed", f"Error: {self.message}"),)


@dataclass
class Plan:
    pods: list[PlannedPod] = field(default_factory=list)
    # Pods that cannot start, with the reason (`get pods` shows the waiting reason).
    blocked: dict[tuple[str, str], BlockedPod] = field(default_factory=dict)


def plan_pods(
    snap: Snapshot,
    vips: Mapping[tuple[str, str], str],
    existing: Sequence[tuple[str, str]],
    router: RouterFactory,
    sidecar: SidecarFactory | None = None,
    openshift_router: OpenShiftRouterFactory | None = None,
    route_hosts: Sequence[str] = (),
) -> Plan:
    """Pods for every Deployment; `existing` = (namespace, name) of pods alive now.
    Without a `sidecar` factory nothing is injected. `route_hosts` (the admitted Routes'
    hosts) resolve in every pod to the router's internal Service, as cluster DNS
    resolves the apps domain to the router on OpenShift."""
    plan = Plan()
    alive = set(existing)
    # The same for every pod of a namespace: one hosts file per namespace.
    by_namespace: dict[str, HostsRows] = {}
    proxy_defaults = mesh_config(snap).default_config or {}

    def hosts(namespace: str) -> HostsRows:
        if namespace not in by_namespace:
            by_namespace[namespace] = hosts_entries(snap, vips, namespace, route_hosts)
        return by_namespace[namespace]

    for dep in snap.of_kind(Deployment):
        if any(is_control_plane(c.image) for c in dep.spec.template.spec.containers):
            continue  # istiod: the daemon itself (model.install)
        ns, prefix = dep.namespace, f"{dep.name}-{dep.template_hash()}-"
        names = sorted(n for (pns, n) in alive if pns == ns and n.startswith(prefix))
        names = names[: dep.spec.replicas]
        while len(names) < dep.spec.replicas:
            candidate = prefix + _suffix()
            if candidate not in names:
                names.append(candidate)
        for pod in names:
            try:
                plan.pods.append(_plan_pod(snap, dep, pod, vips, router, sidecar,
                                           openshift_router, hosts, proxy_defaults))
            except (ImageError, ContainerConfigError, _MountError) as exc:
                plan.blocked[(ns, pod)] = _blocked(snap, dep, pod, exc, injected=sidecar is not None)
    return plan


def _blocked(snap: Snapshot, dep: Deployment, pod: str, exc: Exception, *,
             injected: bool) -> BlockedPod:
    tmpl = dep.spec.template
    names = [c.name for c in tmpl.spec.containers]
    if injected and injection_wanted(snap, dep) and "istio-proxy" not in names:
        names.append("istio-proxy")
    if isinstance(exc, ImageError):
        container, reason, image = exc.container, exc.reason, exc.image
    elif isinstance(exc, ContainerConfigError):
        container, reason, image = exc.container, "CreateContainerConfigError", ""
    else:
        container, reason, image = "", "ContainerCreating", ""
    return BlockedPod(deployment=dep.name,
                      labels={**tmpl.metadata.labels, "pod-template-hash": pod.rsplit("-", 2)[-2]},
                      containers=tuple(names), container=container, reason=reason,
                      message=str(exc), image=image)


class _MountError(Exception):
    pass


def _plan_pod(
    snap: Snapshot,
    dep: Deployment,
    pod: str,
    vips: Mapping[tuple[str, str], str],
    router: RouterFactory,
    sidecar: SidecarFactory | None,
    openshift_router: OpenShiftRouterFactory | None,
    hosts: Callable[[str], HostsRows],
    proxy_defaults: Mapping[str, Any],
) -> PlannedPod:
    ns, tmpl = dep.namespace, dep.spec.template
    spec = tmpl.spec
    containers: list[ContainerPlan] = []
    ports: dict[str, int] = {}
    ready_ports: list[int] = []
    is_gateway = False
    for c in spec.containers:
        if is_router(c.image, c.args):
            is_gateway = True
            containers.append(router(ns, pod, _proxy_stats(dep, proxy_defaults)))
        elif openshift_router is not None and is_openshift_router(c.image):
            containers.append(openshift_router(ns, pod))
            ready_ports.extend(p.container_port for p in c.ports if p.protocol == "TCP")
        elif is_injected_proxy(c.name, c.image, c.args):
            continue  # kube-inject's istio-proxy: the sidecar factory below runs the real one
        else:
            containers.append(resolve_container(c, pod, ns, spec.security_context))
            ready_ports.extend(p.container_port for p in c.ports if p.protocol == "TCP")
        for p in c.ports:
            ports[p.name or str(p.container_port)] = p.container_port
    labels = {**tmpl.metadata.labels, "pod-template-hash": pod.rsplit("-", 2)[-2]}
    inject = sidecar is not None and not is_gateway and injection_wanted(snap, dep)
    volumes = tuple(_volumes(snap, dep, pod, sidecar=inject))
    capture = None
    if inject:
        assert sidecar is not None
        # Istio's injector: the istio-proxy container, istio-init's capture rules, the
        # label that auto mTLS keys on, and readiness that waits for the proxy too.
        containers.append(sidecar(ns, pod, spec.service_account_or_default,
                                  _proxy_stats(dep, proxy_defaults)))
        labels[TLS_MODE_LABEL] = "istio"
        ready_ports.append(PROXY_READY_PORT)
        capture = CapturePlan()
    plan = PodPlan(
        namespace=ns,
        name=pod,
        labels=labels,
        containers=tuple(containers),
        volumes=volumes,
        hosts=hosts(ns),
        ready_ports=tuple(sorted(set(ready_ports))),
        capture=capture,
    )
    return PlannedPod(
        plan=plan,
        deployment=dep.name,
        service_account=spec.service_account_or_default,
        container_ports=ports,
        router=is_gateway,
        sidecar=inject,
    )


def _proxy_stats(dep: Deployment, proxy_defaults: Mapping[str, Any]) -> StatsInclusion:
    """The Envoy stats the pod's proxy keeps: Istio's rule (`model.stats_inclusion`) over
    the pod's annotations and meshConfig.defaultConfig. An unreadable annotation keeps the
    proxy from being created, as Istio's injector refuses the pod."""
    try:
        return stats_inclusion(dep.spec.template.metadata.annotations, proxy_defaults)
    except StatsInclusionError as exc:
        raise ContainerConfigError(f"annotation {exc.annotation}: {exc}",
                                   container="istio-proxy") from exc


def injection_wanted(snap: Snapshot, dep: Deployment) -> bool:
    """Whether the Deployment's pods get a sidecar: Istio's rule, `model.injection`."""
    meta, spec = dep.spec.template.metadata, dep.spec.template.spec
    ns = snap.get(Namespace, "", dep.namespace)
    injected, _ = injection(dep.namespace, ns.metadata.labels if ns is not None else {},
                            meta.labels, meta.annotations,
                            host_network=bool(spec.host_network))
    return injected


def _volumes(snap: Snapshot, dep: Deployment, pod: str, *, sidecar: bool) -> list[VolumePlan]:
    """The pod's volumes: every container's mounts, and with a sidecar the istio-proxy
    mounts of `sidecar.istio.io/userVolumeMount`. Containers of a pod share one mount
    table here, so a path mounted twice must be the same volume."""
    ns = dep.namespace
    spec = dep.spec.template.spec
    sources = {v.name: v for v in spec.volumes}
    tmpl_meta = dep.spec.template.metadata
    meta = PodMeta(ns, pod, {**tmpl_meta.labels, "pod-template-hash": pod.rsplit("-", 2)[-2]},
                   dict(tmpl_meta.annotations))
    wanted: list[tuple[str, VolumeMount]] = [
        (f"Deployment {ns}/{dep.name}: volumeMount {m.name!r}", m)
        for c in spec.containers for m in c.volume_mounts]
    if sidecar:
        try:
            extra, mounts = user_volumes(dep.spec.template)
        except UserVolumeError as exc:
            raise _MountError(f"Deployment {ns}/{dep.name}: annotation {exc.annotation}: "
                              f"{exc}") from exc
        sources.update({v.name: v for v in extra})
        wanted += [(f"Deployment {ns}/{dep.name}: {USER_VOLUME_MOUNT} {m.name!r}", m)
                   for m in mounts]
    out: list[VolumePlan] = []
    at_path: dict[str, tuple[str, str | None]] = {}
    for where, m in wanted:
        key = (m.name, m.sub_path)
        if m.mount_path in at_path:
            if at_path[m.mount_path] != key:
                raise _MountError(f"{where}: mountPath {m.mount_path!r} is already mounted from "
                                  f"volume {at_path[m.mount_path][0]!r}; the containers of a "
                                  "pod share their mounts here")
            continue
        at_path[m.mount_path] = key
        out.append(_volume(snap, ns, where, sources, m, meta))
    return out


def _volume(snap: Snapshot, ns: str, where: str, sources: Mapping[str, Volume],
            m: VolumeMount, meta: PodMeta) -> VolumePlan:
    vol = sources.get(m.name)
    if vol is None:
        raise _MountError(f"{where}: no volume named {m.name!r} in spec.template.spec.volumes")
    top = "/" + m.mount_path.strip("/").split("/", 1)[0]
    if top != "/" and not os.path.exists(top):
        # Pods share the host's root filesystem: a new top-level directory would have
        # to be created on the host itself, which a pod must never change.
        raise _MountError(f"{where}: mountPath {m.mount_path!r} needs a new top-level "
                          f"directory {top!r}; mount it under an existing one instead "
                          f"(e.g. /etc/{m.mount_path.strip('/')})")
    files, items, optional, mode = _volume_source(snap, ns, where, vol, meta)
    if items:
        missing = [i.key for i in items if i.key not in files]
        if missing and not optional:
            raise _MountError(f"{where}: key {missing[0]!r} not found in its source")
        # Kubernetes: with `optional: true` a missing key is left out, not an error.
        files = {i.path: files[i.key] for i in items if i.key in files}
    if m.sub_path:
        files = {m.sub_path: files.get(m.sub_path, b"")}
    return VolumePlan(mount_path=m.mount_path, files=files, read_only=bool(m.read_only),
                      mode=mode)


def _volume_source(snap: Snapshot, ns: str, where: str, vol: Volume, meta: PodMeta
                   ) -> tuple[dict[str, bytes], list[KeyToPath] | None, bool, int]:
    """(files, items, optional, default mode) of a ConfigMap, Secret, emptyDir, projected
    or downwardAPI volume (the last two: `meshd.volume_sources`).
    Kubernetes' `optional: true`: a missing ConfigMap or Secret mounts as an empty
    directory instead of keeping the pod from starting (Istio's curl and sleep samples
    mount their optional client-certificate Secret this way)."""
    src: ConfigMapVolumeSource | SecretVolumeSource
    if vol.config_map is not None:
        src, kind, name = vol.config_map, "configmap", vol.config_map.name
        cm = snap.get(ConfigMap, ns, name)
        files = cm.files() if cm is not None else None
    elif vol.secret is not None:
        src, kind, name = vol.secret, "secret", vol.secret.secret_name
        sec = snap.get(Secret, ns, name)
        files = sec.values() if sec is not None else None
    elif vol.projected is not None or vol.downward_api is not None:
        try:
            files = (projected_files(snap, vol.projected, meta) if vol.projected is not None
                     else downward_files(vol.downward_api.items, meta))  # type: ignore[union-attr]
        except VolumeSourceError as exc:
            raise _MountError(f"{where}: {exc}") from exc
        default = (vol.projected or vol.downward_api).default_mode  # type: ignore[union-attr]
        return files, None, False, default or 0o644
    else:
        return {}, None, False, 0o644
    if files is None and not src.optional:
        raise _MountError(f'{where}: {kind} "{name}" not found')
    return files or {}, src.items, bool(src.optional), src.default_mode or 0o644


def hosts_entries(
    snap: Snapshot, vips: Mapping[tuple[str, str], str], namespace: str,
    route_hosts: Sequence[str] = (),
) -> HostsRows:
    """Service names as a pod in `namespace` resolves them (the cluster DNS search path),
    and Route hosts at the router's internal Service."""
    rows = []
    for svc in snap.of_kind(Service):
        vip = vips.get((svc.namespace, svc.name))
        if vip is None:
            continue
        names = [f"{svc.name}.{svc.namespace}", f"{svc.name}.{svc.namespace}.svc",
                 f"{svc.name}.{svc.namespace}.{CLUSTER_DOMAIN}"]
        if svc.namespace == namespace:
            names.insert(0, svc.name)
        rows.append((vip, tuple(names)))
    router_vip = vips.get((ROUTER_NAMESPACE, ROUTER_SERVICE))
    if router_vip and route_hosts:
        rows.append((router_vip, tuple(route_hosts)))
    # The stand-ins for external hosts (sailmesh.io/external-hosts), see model.external_world.
    return tuple(sorted(rows)) + external_hosts_entries(snap, vips)


def service_rules(
    snap: Snapshot,
    vips: Mapping[tuple[str, str], str],
    ready_pods: Sequence[tuple[PlannedPod, str]],
) -> list[ServiceRule]:
    """kube-proxy's table: VIP:port → ready pod ip:targetPort, for every selector Service."""
    rules = []
    # Ready pods by (namespace, label, value): a Service looks at the pods carrying the
    # first label of its selector only (in the order given).
    by_label: dict[tuple[str, str, str], list[tuple[PlannedPod, str]]] = {}
    for pod, ip in ready_pods:
        for k, v in pod.plan.labels.items():
            by_label.setdefault((pod.plan.namespace, k, v), []).append((pod, ip))
    for svc in snap.of_kind(Service):
        vip = vips.get((svc.namespace, svc.name))
        if vip is None or not svc.spec.selector:
            continue
        first = min(svc.spec.selector.items())
        candidates = by_label.get((svc.namespace, *first), [])
        for port in svc.spec.ports:
            endpoints = []
            for pod, ip in candidates:
                if any(pod.plan.labels.get(k) != v for k, v in svc.spec.selector.items()):
                    continue
                target = port.target_port if port.target_port is not None else port.port
                if isinstance(target, str):
                    if target.isdigit():
                        target = int(target)
                    elif target in pod.container_ports:
                        target = pod.container_ports[target]
                    else:
                        continue
                endpoints.append((ip, int(target)))
            rules.append(
                ServiceRule(vip=vip, port=port.port, protocol=port.protocol,
                            endpoints=tuple(sorted(endpoints)))
            )
    return rules


def _suffix() -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' name suffix alphabet
    return "".join(secrets.choice(alphabet) for _ in range(5))
