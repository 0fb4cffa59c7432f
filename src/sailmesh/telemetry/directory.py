"""Who is who, for telemetry: pod addresses, proxies and services as Istio's labels name them.

Owns: the `Directory` a push hands to telemetry — each pod's workload (Istio names a pod by
its Deployment), app and version labels and SPIFFE principal; which proxy reported (by its
node id); the mesh's services by host. Must not know: Envoy messages, metrics.
Pure: built from the model and the daemon's pod list; never changes after it is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sailmesh.ca.spiffe import spiffe_id
from sailmesh.model.mesh import MeshModel
from sailmesh.model.workloads import (
    CLUSTER_ID,
    canonical_revision,
    canonical_service,
    selector_matches,
)

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Peer:
    """One pod as Istio's labels name it."""

    workload: str
    namespace: str
    labels: Mapping[str, str]
    service_account: str
    trust_domain: str
    # True when the pod runs a proxy (sidecar or gateway): only such a peer is known to the
    # other side (Istio learns it by metadata exchange; a pod without a proxy is `unknown`).
    has_proxy: bool
    gateway: bool = False

    @property
    def principal(self) -> str:
        return spiffe_id(self.trust_domain, self.namespace, self.service_account)

    @property
    def app(self) -> str:
        return self.labels.get("app", UNKNOWN)

    @property
    def version(self) -> str:
        return self.labels.get("version", UNKNOWN)

    @property
    def canonical_service(self) -> str:
        return canonical_service(self.labels, self.workload)

    @property
    def canonical_revision(self) -> str:
        return canonical_revision(self.labels)


@dataclass(frozen=True)
class ServiceName:
    """A mesh host: a Kubernetes Service or a ServiceEntry host."""

    host: str
    name: str
    namespace: str
    selector: Mapping[str, str] | None = None
    # Service port → target port (a number, or a container port name).
    target_ports: Mapping[int, int | str] = field(default_factory=dict)
    external: bool = False  # a ServiceEntry host outside the mesh

    def selects(self, peer: Peer) -> bool:
        return (not self.external and bool(self.selector) and self.namespace == peer.namespace
                and selector_matches(self.selector or {}, peer.labels))


@dataclass(frozen=True)
class PodFacts:
    """What the daemon knows of a running pod."""

    namespace: str
    workload: str
    ip: str
    labels: Mapping[str, str]
    service_account: str
    node_id: str | None  # its proxy's node id; None without a proxy
    gateway: bool = False


@dataclass(frozen=True)
class Directory:
    pods: Mapping[str, Peer] = field(default_factory=dict)  # by IP
    proxies: Mapping[str, Peer] = field(default_factory=dict)  # by node id
    services: Mapping[str, ServiceName] = field(default_factory=dict)  # by host

    def service_of(self, peer: Peer, authority: str, port: int | None) -> ServiceName | None:
        """The service a request to `peer` was for: the Host header's service when it selects
        the pod (short names resolve in the pod's namespace), else the first service that
        selects the pod on that target port."""
        host = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
        for candidate in _expansions(host.lower(), peer.namespace):
            svc = self.services.get(candidate)
            if svc is not None and svc.selects(peer):
                return svc
        for svc in self.services.values():
            if svc.selects(peer) and (port is None or port in _targets(svc, peer)):
                return svc
        return None


def _expansions(host: str, namespace: str) -> list[str]:
    if not host:
        return []
    parts = host.split(".")
    if len(parts) == 1:
        return [f"{host}.{namespace}.svc.cluster.local"]
    if len(parts) == 2:
        return [f"{host}.svc.cluster.local", host]
    return [host, f"{host}.cluster.local"]


def _targets(svc: ServiceName, peer: Peer) -> set[int]:
    out = set()
    for port, target in svc.target_ports.items():
        if isinstance(target, int):
            out.add(target)
        elif target.isdigit():
            out.add(int(target))
        else:
            out.add(port)  # a named port: the container's number is not known here
    return out


def build_directory(model: MeshModel, pods: Iterable[PodFacts]) -> Directory:
    trust_domain = model.mesh.trust_domain
    by_ip: dict[str, Peer] = {}
    by_node: dict[str, Peer] = {}
    for pod in pods:
        peer = Peer(workload=pod.workload, namespace=pod.namespace, labels=dict(pod.labels),
                    service_account=pod.service_account or "default",
                    trust_domain=trust_domain, has_proxy=pod.node_id is not None,
                    gateway=pod.gateway)
        if pod.ip:
            by_ip[pod.ip] = peer
        if pod.node_id:
            by_node[pod.node_id] = peer
    services: dict[str, ServiceName] = {}
    for host, svc in model.services.items():
        external = svc.location == "MESH_EXTERNAL" or (svc.source is not None and not svc.selector)
        services[host] = ServiceName(
            host=host, name=svc.hostname or svc.name, namespace=svc.namespace,
            selector=dict(svc.selector) if svc.selector else None,
            target_ports={p.port: (p.target_port if p.target_port is not None else p.port)
                          for p in svc.ports},
            external=external)
    return Directory(pods=MappingProxyType(by_ip), proxies=MappingProxyType(by_node),
                     services=MappingProxyType(services))


__all__ = ["CLUSTER_ID", "UNKNOWN", "Directory", "Peer", "PodFacts", "ServiceName",
           "build_directory"]
