"""Which Sidecar resource applies to a proxy, and what its egress hosts import.

Owns: `applying_sidecar` (the one choice, used by the running mesh and the analyzers),
the `SidecarScope` value a sidecar's outbound configuration depends on (hashable: proxies
with equal scopes see the same services), and `import_registry`, the services and
VirtualServices a scope lets through. Must not know: Envoy, IO, how MeshModel is built.

Istio facts (pilot/pkg/model push_context.go `getSidecarScope`, sidecar.go
`convertToSidecarScope`, `selectServices`, `collectImportedServices`, 1.31):
- A proxy takes the oldest Sidecar of its namespace whose workloadSelector matches its
  labels; else its namespace's oldest Sidecar without selector; else the root namespace's
  (meshConfig.rootNamespace, `istio-system`) oldest Sidecar without selector; else none,
  which imports everything (`*/*`). Sidecars apply to sidecars only, never to gateways.
- An egress host `ns/dnsName` imports the services defined in namespace `ns` (`.`: the
  proxy's own namespace, also for a root-namespace Sidecar; `*`: any; `~`: none) whose
  host name overlaps `dnsName` (wildcards either side), and the VirtualServices of that
  namespace bound to the mesh with a host overlapping it.
- The destinations of imported VirtualServices are imported too (only their ports named
  by the routes, when every destination names one), so routing rules keep working.
- DestinationRules follow their hosts: the rules of an imported service apply as before,
  a service not imported has no cluster for a rule to shape.
- outboundTrafficPolicy of the Sidecar replaces meshConfig's for its proxies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sailmesh.model.hosts import fqdn, intersect
from sailmesh.model.services import MeshService
from sailmesh.model.workloads import selector_matches
from sailmesh.resources.networking import VirtualService
from sailmesh.resources.sidecar import (
    ANY_NAMESPACE,
    CURRENT_NAMESPACE,
    Sidecar,
    split_egress_host,
)

EVERYTHING = ((ANY_NAMESPACE, "*"),)


@dataclass(frozen=True)
class SidecarScope:
    """What a sidecar's outbound configuration depends on beyond the model: its
    namespace, the Sidecar applying (`Sidecar ns/name`, None: Istio's default), the
    imported `(namespace, dnsName)` pairs (`.` resolved) and the Sidecar's
    outboundTrafficPolicy mode (None: meshConfig's)."""

    namespace: str
    sidecar: str | None = None
    imports: tuple[tuple[str, str], ...] = EVERYTHING
    outbound_policy: str | None = None

    @property
    def is_default(self) -> bool:
        """Imports everything under the mesh's policy: the configuration of no Sidecar."""
        return self.imports == EVERYTHING and self.outbound_policy is None

    def imports_host(self, namespace: str, host: str) -> bool:
        """Whether a definition of `host` in `namespace` is imported."""
        return any(ns in (namespace, ANY_NAMESPACE) and intersect(host, name) is not None
                   for ns, name in self.imports)


def applying_sidecar(sidecars: Iterable[Sidecar], namespace: str, labels: Mapping[str, str],
                     root_namespace: str) -> Sidecar | None:
    """The Sidecar that configures a sidecar proxy in `namespace` with `labels`.
    `sidecars`: every Sidecar, oldest first."""
    own = [sc for sc in sidecars if sc.namespace == namespace]
    selecting = next((sc for sc in own if not sc.is_default
                      and selector_matches(sc.spec.workload_selector.labels, labels)  # type: ignore[union-attr]
                      ), None)
    if selecting is not None:
        return selecting
    default = next((sc for sc in own if sc.is_default), None)
    if default is not None or namespace == root_namespace:
        return default
    return next((sc for sc in sidecars if sc.namespace == root_namespace and sc.is_default),
                None)


def scope_of(sidecar: Sidecar | None, namespace: str) -> SidecarScope:
    """The scope `sidecar` gives a proxy in `namespace` (a root-namespace Sidecar's `.`
    means the proxy's namespace)."""
    if sidecar is None:
        return SidecarScope(namespace)
    imports: list[tuple[str, str]] = []
    for egress in sidecar.spec.egress:
        for host in egress.hosts:
            ns, name = split_egress_host(host)
            imports.append((namespace if ns == CURRENT_NAMESPACE else ns, name.lower()))
    policy = sidecar.spec.outbound_traffic_policy
    return SidecarScope(namespace, sidecar.ref, tuple(dict.fromkeys(imports)) or EVERYTHING,
                        policy.mode if policy is not None else None)


def imports_virtual_service(scope: SidecarScope, vs: VirtualService) -> bool:
    return any(scope.imports_host(vs.namespace, fqdn(h, vs.namespace)) for h in vs.spec.hosts)


def import_registry(scope: SidecarScope, services: Mapping[str, MeshService],
                    mesh_vs_by_host: Mapping[str, Sequence[VirtualService]],
                    resolve: Callable[[str, str], str]
                    ) -> tuple[dict[str, MeshService], dict[str, list[VirtualService]]]:
    """The services (by FQDN) and mesh VirtualServices (by host) `scope` imports.
    `resolve(host, namespace)`: a destination host as written → FQDN."""
    virtual_services: dict[str, list[VirtualService]] = {}
    for host, listed in mesh_vs_by_host.items():
        kept = [vs for vs in listed if imports_virtual_service(scope, vs)]
        if kept:
            virtual_services[host] = kept
    imported = {h: svc for h, svc in services.items()
                if scope.imports_host(svc.namespace, svc.hostname or svc.fqdn)}
    every_port: set[str] = set()
    ports: dict[str, set[int]] = {}
    distinct = {id(vs): vs for listed in virtual_services.values() for vs in listed}
    for vs in distinct.values():
        for host, port in destinations(vs):
            name = resolve(host, vs.namespace)
            if port is None:
                every_port.add(name)
            else:
                ports.setdefault(name, set()).add(port)
    for name in sorted(every_port | set(ports)):
        svc = services.get(name)
        if svc is None or name in imported or not svc.visible_to(scope.namespace):
            continue
        if name in every_port:
            imported[name] = svc
        elif named := tuple(p for p in svc.ports if p.port in ports[name]):
            imported[name] = dataclasses.replace(svc, ports=named)
    return dict(sorted(imported.items())), virtual_services


def destinations(vs: VirtualService) -> list[tuple[str, int | None]]:
    """(host as written, port or None) of every route destination of a VirtualService."""
    out: list[tuple[str, int | None]] = []
    for http in vs.spec.http:
        dests = [d.destination for d in http.route]
        if http.mirror is not None:
            dests.append(http.mirror)
        out += [(d.host, d.port.number if d.port else None) for d in dests]
    layer4 = [d.destination for r in vs.spec.tls for d in r.route]
    layer4 += [d.destination for r in vs.spec.tcp for d in r.route]
    return out + [(d.host, d.port.number if d.port else None) for d in layer4]


__all__ = ["SidecarScope", "applying_sidecar", "destinations", "import_registry",
           "imports_virtual_service", "scope_of"]
