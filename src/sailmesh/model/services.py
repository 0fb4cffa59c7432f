"""Services as the mesh sees them: the records every later stage shares.

Owns: `MeshService` (a Kubernetes Service or a ServiceEntry host), its ports with Istio's
protocol selection, `Endpoint`, Istio's outbound cluster name, and the exportTo rule.
Must not know: Envoy, IO, how the registry is built (see `model.mesh`,
`model.service_entries`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sailmesh.model.hosts import DOMAIN_SUFFIX
from sailmesh.resources.core import Service

# Istio's HTTP protocol names (port name prefix or appProtocol); anything else that is not
# TCP/TLS is sniffed.
HTTP_PROTOCOL_NAMES = frozenset({"http", "http2", "grpc", "grpc-web", "h2c",
                                 "kubernetes.io/h2c", "kubernetes.io/ws"})
HTTP2_PROTOCOL_NAMES = frozenset({"http2", "grpc", "grpc-web", "h2c", "kubernetes.io/h2c"})


@dataclass(frozen=True)
class ServicePort:
    name: str | None
    port: int
    target_port: int | str | None
    protocol: str
    app_protocol: str | None = None

    @functools.cached_property
    def mesh_protocol(self) -> str:
        """Istio's protocol selection: `appProtocol`, else the port name's prefix before
        `-` (`http`, `http2`, `grpc` → HTTP; `https`, `tls` → TLS; `tcp`, `mongo`, … →
        TCP). An unnamed or unknown port is treated as HTTP, where Istio sniffs."""
        if self.protocol != "TCP":
            return "UDP"
        raw = self._declared
        if raw in ("https", "tls"):
            return "TLS"
        if raw in ("tcp", "mongo", "mysql", "redis", "opaque"):
            return "TCP"
        return "HTTP"

    @functools.cached_property
    def sniffed(self) -> bool:
        """No HTTP protocol in the name or appProtocol (an unnamed or unknown port): Istio
        sniffs its connections, HTTP when it sees HTTP, else TCP."""
        return self.mesh_protocol == "HTTP" and self._declared not in HTTP_PROTOCOL_NAMES

    @functools.cached_property
    def http2(self) -> bool:
        """Declared HTTP/2 (`http2`, `grpc`, `grpc-web`, h2c): Istio's clients speak HTTP/2
        to it (a gateway's `http2` port, for one)."""
        return self.mesh_protocol == "HTTP" and self._declared in HTTP2_PROTOCOL_NAMES

    @functools.cached_property
    def _declared(self) -> str:
        return (self.app_protocol or (self.name or "").split("-", 1)[0]).lower()


@dataclass(frozen=True)
class MeshService:
    namespace: str
    name: str
    selector: Mapping[str, str] | None
    ports: tuple[ServicePort, ...]
    vip: str | None = None  # the ClusterIP, when the runtime has allocated one
    # ServiceEntry hosts (see `model.service_entries`): the host as written is the name,
    # `resolution` picks the cluster type; a Kubernetes Service is "EDS", in-mesh, exported
    # everywhere.
    hostname: str | None = None
    resolution: str = "EDS"
    location: str = "MESH_INTERNAL"
    source: str | None = None  # "ServiceEntry ns/name" for ServiceEntry hosts
    export_to: tuple[str, ...] = ()
    # ServiceEntry `addresses` after `vip`: more single addresses (`a.b.c.d`) and CIDR
    # ranges (`10.0.0.0/16`), which a sidecar matches by destination prefix.
    more_addresses: tuple[str, ...] = ()
    created: str = ""  # creationTimestamp of the Service or ServiceEntry (RFC 3339)

    @functools.cached_property
    def fqdn(self) -> str:
        if self.hostname is not None:
            return self.hostname
        return f"{self.name}.{self.namespace}.{DOMAIN_SUFFIX}"

    def visible_to(self, namespace: str) -> bool:
        return exported_to(self.export_to, self.namespace, namespace)

    def port(self, number: int) -> ServicePort | None:
        return next((p for p in self.ports if p.port == number), None)


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    workload: str  # "ns/name"
    service_account: str
    # Labels of a ServiceEntry endpoint (pods' labels come from their Workload).
    labels: tuple[tuple[str, str], ...] = ()


def cluster_name(port: int, host: str, subset: str = "") -> str:
    """Istio's outbound cluster name: `outbound|<port>|<subset>|<fqdn>`."""
    return f"outbound|{port}|{subset}|{host}"


def parse_cluster_name(name: str) -> tuple[str, int, str, str] | None:
    """(direction, port, subset, host) of an Istio cluster name; None for any other name
    (PassthroughCluster, BlackHoleCluster, …)."""
    parts = name.split("|")
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1]), parts[2], parts[3]


EVERYWHERE = "*"  # exportTo: every namespace


def exported_to(export_to: Sequence[str], owner_ns: str, client_ns: str) -> bool:
    """Istio's exportTo, for Services, ServiceEntries, VirtualServices and DestinationRules:
    empty or `*` = everywhere, `.` = the owner's namespace, `~` = nowhere, else the
    namespaces listed."""
    if not export_to or EVERYWHERE in export_to:
        return True
    if "~" in export_to:
        return False
    return client_ns in export_to or ("." in export_to and owner_ns == client_ns)


def exports_meet(export_a: Sequence[str], owner_a: str, export_b: Sequence[str],
                 owner_b: str) -> bool:
    """Is some namespace one that both of two exportTo lists export to?"""
    if not export_a or EVERYWHERE in export_a:
        return "~" not in export_b
    if not export_b or EVERYWHERE in export_b:
        return "~" not in export_a
    seen_a = {owner_a if e == "." else e for e in export_a} - {"~"}
    return bool(seen_a & {owner_b if e == "." else e for e in export_b})


EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo"


def service_export_to(svc: Service) -> tuple[str, ...]:
    """A Kubernetes Service's exportTo: Istio reads the annotation
    `networking.istio.io/exportTo` (comma-separated, `.` for the Service's namespace)."""
    value = svc.metadata.annotations.get(EXPORT_TO_ANNOTATION, "")
    return tuple(ns.strip() for ns in value.split(",") if ns.strip())


@dataclass(frozen=True)
class LoadBalancerBinding:
    """Where a LoadBalancer Service's address serves: `address:port` reaches the pod's
    `target_port` (a cloud load balancer in front of the Service's pods)."""

    address: str
    port: int
    target_port: int


def load_balancer_bindings(services: Sequence[Service], addresses: Mapping[tuple[str, str], str],
                           namespace: str, labels: Mapping[str, str],
                           container_ports: Mapping[str, int]) -> tuple[LoadBalancerBinding, ...]:
    """The LoadBalancer addresses and ports that reach a pod: every Service of type
    LoadBalancer in its namespace selecting it, each of its ports (a named targetPort
    resolves through the pod's container ports)."""
    out = []
    for svc in services:
        sel = svc.spec.selector
        address = addresses.get((svc.namespace, svc.name))
        if (svc.spec.type != "LoadBalancer" or svc.namespace != namespace or not sel
                or address is None or any(labels.get(k) != v for k, v in sel.items())):
            continue
        for p in svc.spec.ports:
            if p.protocol != "TCP":
                continue
            target = p.target_port if p.target_port is not None else p.port
            if isinstance(target, str):
                target = int(target) if target.isdigit() else container_ports.get(target, 0)
            if target:
                out.append(LoadBalancerBinding(address, p.port, target))
    return tuple(sorted(set(out), key=lambda b: (b.address, b.port)))
