"""Services as the mesh sees them: the records every later stage shares.

Owns: `MeshService` (a Kubernetes Service or a ServiceEntry host), its ports with Istio's
protocol selection, `Endpoint`, Istio's outbound cluster name, and the exportTo rule.
Must not know: Envoy, IO, how the registry is built (see `model.mesh`,
`model.service_entries`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sailmesh.model.hosts import DOMAIN_SUFFIX


@dataclass(frozen=True)
class ServicePort:
    name: str | None
    port: int
    target_port: int | str | None
    protocol: str
    app_protocol: str | None = None

    @property
    def mesh_protocol(self) -> str:
        """Istio's protocol selection: `appProtocol`, else the port name's prefix before
        `-` (`http`, `http2`, `grpc` → HTTP; `https`, `tls` → TLS; `tcp`, `mongo`, … →
        TCP). An unnamed or unknown port is treated as HTTP, where Istio sniffs."""
        if self.protocol != "TCP":
            return "UDP"
        raw = (self.app_protocol or (self.name or "").split("-", 1)[0]).lower()
        if raw in ("https", "tls"):
            return "TLS"
        if raw in ("tcp", "mongo", "mysql", "redis", "opaque"):
            return "TCP"
        return "HTTP"


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

    @property
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


def exported_to(export_to: Sequence[str], owner_ns: str, client_ns: str) -> bool:
    """Istio's exportTo, for Services, ServiceEntries, VirtualServices and DestinationRules:
    empty or `*` = everywhere, `.` = the owner's namespace, `~` = nowhere, else the
    namespaces listed."""
    if not export_to or "*" in export_to:
        return True
    if "~" in export_to:
        return False
    return client_ns in export_to or ("." in export_to and owner_ns == client_ns)
