"""Where a Route's traffic goes: the endpoints (pod address and port) of each Service it
names, with the share of its weight each endpoint carries.

Owns: `port.targetPort` resolution as OpenShift's router does it on the Service's
endpoints (a name is the Service port's name; a number is the endpoint's port; no port
means the Service's first port), and per-endpoint weights. Must not know: HAProxy syntax,
Istio, how pods run.

OpenShift facts: the router sends to pod endpoints directly, never to the ClusterIP.
A weight (0..256, default 100) belongs to a Service and is split between its endpoints;
a Service with weight 0 gets no new traffic; a Route whose Services all have weight 0 or
no ready endpoints answers 503.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sailmesh.model.service_ca import service_hostname
from sailmesh.resources.core import Service, ServicePort
from sailmesh.resources.openshift import Route


@dataclass(frozen=True)
class PodEndpoint:
    """A ready pod as a Service's endpoints list it."""

    namespace: str
    name: str
    ip: str
    labels: Mapping[str, str]
    container_ports: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Server:
    name: str  # HAProxy server name, OpenShift style: pod:<pod>:<service>:<port>:<ip>:<port>
    ip: str
    port: int
    weight: int


@dataclass(frozen=True)
class ServiceUnit:
    namespace: str
    service: str
    weight: int
    servers: tuple[Server, ...]

    @property
    def hostname(self) -> str:
        """The name a reencrypt Route checks without a destination CA: `svc.ns.svc`."""
        return service_hostname(self.service, self.namespace)


def service_units(route: Route, services: Mapping[tuple[str, str], Service],
                  pods: Sequence[PodEndpoint]) -> list[ServiceUnit]:
    units = []
    for ref in route.backends():
        svc = services.get((route.namespace, ref.name))
        endpoints: list[tuple[PodEndpoint, str, int]] = []
        if svc is not None and svc.spec.selector:
            port = service_port_of(svc, route)
            for pod in pods:
                if pod.namespace != route.namespace or any(
                        pod.labels.get(k) != v for k, v in svc.spec.selector.items()):
                    continue
                number = endpoint_port(port, pod.container_ports) if port is not None else None
                if number is not None and _wanted(route, port, number):
                    endpoints.append((pod, port.name or "", number))  # type: ignore[union-attr]
        weight = ref.effective_weight
        share = 0 if weight == 0 or not endpoints else max(1, round(weight / len(endpoints)))
        servers = tuple(
            Server(f"pod:{pod.name}:{ref.name}:{pname or number}:{pod.ip}:{number}",
                   pod.ip, number, share)
            for pod, pname, number in sorted(endpoints, key=lambda e: (e[0].ip, e[2])))
        units.append(ServiceUnit(route.namespace, ref.name, weight, servers))
    return units


def service_port_of(svc: Service, route: Route) -> ServicePort | None:
    """The Service port a Route's `port.targetPort` designates (no port: the first)."""
    ports = svc.spec.ports
    if not ports:
        return None
    if route.spec.port is None:
        return ports[0]
    target = route.spec.port.target_port
    if isinstance(target, str) and not target.isdigit():
        return next((p for p in ports if p.name == target), None)
    number = int(target)
    # A number names the endpoint port: the Service port whose targetPort is that number
    # (or, with no targetPort, whose port is).
    for p in ports:
        tp = p.target_port if p.target_port is not None else p.port
        if isinstance(tp, int) and tp == number:
            return p
        if isinstance(tp, str) and tp.isdigit() and int(tp) == number:
            return p
    # A named targetPort resolves per pod; keep the first such port and check each pod.
    return next((p for p in ports if isinstance(p.target_port, str)), None)


def _wanted(route: Route, port: ServicePort | None, number: int) -> bool:
    target = route.spec.port.target_port if route.spec.port else None
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return number == int(target)
    return True


def endpoint_port(port: ServicePort, container_ports: Mapping[str, int]) -> int | None:
    """The pod port a Service port sends to (a named targetPort is the pod's port name)."""
    target = port.target_port if port.target_port is not None else port.port
    if isinstance(target, int):
        return target
    if target.isdigit():
        return int(target)
    return container_ports.get(target)


__all__ = ["PodEndpoint", "Server", "ServiceUnit", "endpoint_port", "service_port_of",
           "service_units"]
