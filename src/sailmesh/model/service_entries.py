"""ServiceEntry → entries of the service registry, as Istio's ServiceEntry controller adds them.

Owns: one `MeshService` per ServiceEntry host (the host as written is its name), its ports
(`protocol` → Istio's protocol selection, `targetPort` → the endpoint port), its address
(`addresses`), and its endpoints by `resolution`:
- STATIC: `endpoints[]` addresses (or, with `workloadSelector`, the selected pods);
- DNS / DNS_ROUND_ROBIN: `endpoints[]` addresses if given, else the host itself — Envoy
  resolves them (STRICT_DNS / LOGICAL_DNS), so a name only has to resolve in the pod;
- NONE: no endpoints; connections go to the address the application dialled.
Endpoint port: the endpoint's `ports[<port name>]`, else the port's `targetPort`, else its
number (istio/api ServicePort.targetPort). Istio keeps one definition of a host per
namespace: entries of one namespace for one host merge when Istio merges them (same
resolution, selector and exportTo: ports added, endpoints pooled); otherwise the oldest
definition of that namespace wins (a Kubernetes Service always does) and the loser is
reported. A definition in another namespace is kept beside the first one (`others`); which
of them a client sees is `registry_view.visible_definition`.
Must not know: Envoy, IO, clocks.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from sailmesh.model import diagnostics as codes
from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.services import Endpoint, MeshService, ServicePort
from sailmesh.model.snapshot import Snapshot
from sailmesh.model.workloads import Workload, selector_matches
from sailmesh.resources.networking import ServiceEntry, ServiceEntryPort

# istio/api protocol names → the `appProtocol` spelling `ServicePort.mesh_protocol` reads.
_APP_PROTOCOL = {
    "HTTP": "http", "HTTP2": "http2", "GRPC": "grpc", "GRPC-WEB": "http",
    "HTTPS": "https", "TLS": "tls", "TCP": "tcp", "MONGO": "mongo",
}


@dataclass
class OtherDefinitions:
    """Definitions of hosts already defined in another namespace: by (host, namespace), and
    their endpoints by (namespace, host, port)."""

    services: dict[tuple[str, str], MeshService] = dataclasses.field(default_factory=dict)
    endpoints: dict[tuple[str, str, int], tuple[Endpoint, ...]] = dataclasses.field(
        default_factory=dict)


def add_service_entries(snapshot: Snapshot, workloads: Sequence[Workload],
                        services: dict[str, MeshService],
                        endpoints: dict[tuple[str, int], tuple[Endpoint, ...]],
                        others: OtherDefinitions) -> list[Diagnostic]:
    """Add every ServiceEntry host to `services` / `endpoints` (oldest entry first); a host
    first defined in another namespace goes to `others`."""
    diags: list[Diagnostic] = []
    for se in snapshot.of_kind(ServiceEntry):
        spec = se.spec
        ports = tuple(_port(p) for p in spec.ports)
        selector = _selector(se)
        for j, host in enumerate(spec.hosts):
            first = services.get(host)
            if first is not None and first.namespace != se.namespace:
                diags += _add_other(se, j, host, ports, workloads, others)
                continue
            owner = first
            if owner is not None and _mergeable(owner, se, selector):
                services[host] = dataclasses.replace(owner, ports=owner.ports + tuple(
                    p for p in ports if owner.port(p.port) is None))
                for sp, raw in zip(ports, spec.ports, strict=True):
                    known = endpoints.get((host, sp.port), ())
                    endpoints[(host, sp.port)] = tuple(dict.fromkeys(
                        known + _endpoints(se, host, sp, raw, workloads)))
                continue
            if owner is not None:
                diags.append(_conflict(se, j, host, owner))
                continue
            services[host] = _definition(se, host, ports)
            for sp, raw in zip(ports, spec.ports, strict=True):
                endpoints[(host, sp.port)] = _endpoints(se, host, sp, raw, workloads)
    return diags


def _add_other(se: ServiceEntry, j: int, host: str, ports: tuple[ServicePort, ...],
               workloads: Sequence[Workload], others: OtherDefinitions) -> list[Diagnostic]:
    """The entry's definition of a host first defined in another namespace: Istio keeps
    one per namespace, merged or refused there as in the first namespace."""
    key = (host, se.namespace)
    owner = others.services.get(key)
    if owner is not None and not _mergeable(owner, se, _selector(se)):
        return [_conflict(se, j, host, owner)]
    if owner is None:
        others.services[key] = _definition(se, host, ports)
    else:
        others.services[key] = dataclasses.replace(owner, ports=owner.ports + tuple(
            p for p in ports if owner.port(p.port) is None))
    for sp, raw in zip(ports, se.spec.ports, strict=True):
        known = others.endpoints.get((se.namespace, host, sp.port), ())
        others.endpoints[(se.namespace, host, sp.port)] = tuple(dict.fromkeys(
            known + _endpoints(se, host, sp, raw, workloads)))
    return []


def _conflict(se: ServiceEntry, j: int, host: str, owner: MeshService) -> Diagnostic:
    first = owner.source or f"Service {owner.namespace}/{owner.name}"
    return Diagnostic(
        "warning", se.ref, f"spec.hosts[{j}]",
        f"host {host} is already defined by {first}; this entry's host is "
        "ignored (the oldest definition wins)",
        codes.SERVICE_ENTRY_HOST_CONFLICT)


def _definition(se: ServiceEntry, host: str, ports: tuple[ServicePort, ...]) -> MeshService:
    spec = se.spec
    addresses = _addresses(spec.addresses)
    single = bool(addresses) and "/" not in addresses[0]
    return MeshService(
        namespace=se.namespace, name=host, selector=_selector(se), ports=ports,
        vip=addresses[0] if single else None,
        more_addresses=addresses[1:] if single else addresses,
        hostname=host, resolution=spec.resolution, location=spec.location, source=se.ref,
        export_to=tuple(spec.export_to), created=se.metadata.creation_timestamp or "")


def _mergeable(owner: MeshService, se: ServiceEntry, selector: dict[str, str] | None) -> bool:
    """Istio (sidecar scope, canMergeServices): entries for one host merge — ports added,
    endpoints pooled — when they share namespace, resolution, workload selector and exportTo.
    Otherwise the oldest definition wins."""
    return (owner.source is not None and owner.source.startswith("ServiceEntry ")
            and owner.namespace == se.namespace and owner.resolution == se.spec.resolution
            and (owner.selector or None) == selector
            and set(owner.export_to) == set(se.spec.export_to))


def endpoint_port(port: ServicePort, named: dict[str, int] | None = None) -> int:
    if named and port.name and port.name in named:
        return named[port.name]
    target = port.target_port
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    return port.port


def _port(p: ServiceEntryPort) -> ServicePort:
    protocol = (p.protocol or "").upper()
    # UDP is carried as the Kubernetes protocol so that mesh_protocol leaves it alone.
    return ServicePort(p.name, p.number, p.target_port, "UDP" if protocol == "UDP" else "TCP",
                       _APP_PROTOCOL.get(protocol))


def _selector(se: ServiceEntry) -> dict[str, str] | None:
    ws = se.spec.workload_selector
    if not ws:
        return None
    labels = ws.get("labels") or ws.get("matchLabels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def _addresses(addresses: Sequence[str]) -> tuple[str, ...]:
    """`addresses` normalised, single addresses first (in order): `a.b.c.d` for one
    address (also written a.b.c.d/32), `net/len` for a range. Validation has refused
    anything else."""
    singles: list[str] = []
    ranges: list[str] = []
    for address in addresses:
        try:
            net = ipaddress.ip_network(address, strict=False)
        except ValueError:
            continue
        if net.num_addresses == 1:
            singles.append(str(net.network_address))
        else:
            ranges.append(str(net))
    return tuple(dict.fromkeys([*singles, *ranges]))


def _endpoints(se: ServiceEntry, host: str, port: ServicePort, raw: ServiceEntryPort,
               workloads: Sequence[Workload]) -> tuple[Endpoint, ...]:
    spec = se.spec
    key = f"{se.namespace}/{se.name}"
    if spec.resolution == "NONE":
        return ()
    selector = _selector(se)
    if selector is not None:
        # Istio: a selector entry's endpoints are the selected pods of its own namespace.
        return tuple(
            Endpoint(w.ip, w.container_ports.get(port.name or "", endpoint_port(port)),
                     f"{w.namespace}/{w.name}", w.service_account)
            for w in workloads
            if w.namespace == se.namespace and w.ready and selector_matches(selector, w.labels))
    if spec.endpoints:
        return tuple(
            Endpoint(ep.address or "", endpoint_port(port, ep.ports), key,
                     ep.service_account or "default", tuple(sorted(ep.labels.items())))
            for ep in spec.endpoints if ep.address)
    if spec.resolution in ("DNS", "DNS_ROUND_ROBIN"):
        return (Endpoint(host, endpoint_port(port), key, "default"),)
    return ()


__all__ = ["OtherDefinitions", "add_service_entries", "endpoint_port"]
