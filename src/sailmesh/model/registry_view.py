"""The service registry as a client namespace sees it: which definition of a host a proxy
in that namespace uses, for the running mesh and the analyzers alike.

Owns: `Registry` (every definition of every host with its endpoints: a Kubernetes Service
and ServiceEntries, at most one per namespace, see `model.service_entries`), the choice
among a host's definitions, and the per-namespace view that translation reads
(`MeshModel.for_namespace`).
Must not know: Envoy, IO, clocks, how the definitions were built.

Istio facts (pilot/pkg/model push_context.go `initServiceRegistry` and
`servicesExportedToNamespace`, sidecar.go `appendSidecarServices`, 1.31):
- Services are taken oldest first (creationTimestamp, then name, then namespace; a
  ServiceEntry's service is named by its host, so equal times fall back to the namespace).
- A namespace sees first the services exported to it by name (exportTo `.` in their own
  namespace, or its name), then those exported everywhere (`*` or no exportTo); `~` hides
  a service from everyone.
- The first one seen wins, except that a Kubernetes Service replaces a ServiceEntry's
  definition of its host (no "domain squatting" on a Service's name).
- Definitions of different namespaces are never merged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sailmesh.model.services import EVERYWHERE, Endpoint, MeshService


def visible_definition(definitions: Sequence[MeshService], client_ns: str
                       ) -> MeshService | None:
    """Which of a host's definitions a client in `client_ns` uses (None: none is exported
    to it)."""
    def order(svc: MeshService) -> tuple[bool, bool, str, str]:
        public = not svc.export_to or EVERYWHERE in svc.export_to
        return (svc.source is not None, public, svc.created, svc.namespace)
    seen = [d for d in definitions if d.visible_to(client_ns)]
    return min(seen, key=order, default=None)


@dataclass(frozen=True)
class Registry:
    """`services`: the first definition of each host, `endpoints` theirs by (host, port);
    `other_services`: the definitions in other namespaces by (host, namespace), their
    endpoints by (namespace, host, port)."""

    services: Mapping[str, MeshService]
    endpoints: Mapping[tuple[str, int], tuple[Endpoint, ...]]
    other_services: Mapping[tuple[str, str], MeshService]
    other_endpoints: Mapping[tuple[str, str, int], tuple[Endpoint, ...]]

    def definitions(self, host: str) -> list[MeshService]:
        """Every definition of `host`, the first one first."""
        first = self.services.get(host)
        if first is None:
            return []
        return [first, *(svc for (h, _), svc in self.other_services.items() if h == host)]

    def service(self, host: str, client_ns: str) -> MeshService | None:
        """The definition of `host` a proxy in `client_ns` uses, or None when none is
        exported to it (or the host is unknown)."""
        return visible_definition(self.definitions(host), client_ns)

    def endpoints_of(self, svc: MeshService, port: int) -> tuple[Endpoint, ...]:
        """The endpoints of one definition's port."""
        if self.services.get(svc.fqdn) is svc:
            return self.endpoints.get((svc.fqdn, port), ())
        return self.other_endpoints.get((svc.namespace, svc.fqdn, port), ())

    def seen_from(self, namespace: str) -> Registry:
        """One definition per host: for each host defined in several namespaces, the one a
        proxy in `namespace` uses (the first one stays where none is exported to it;
        translation leaves such hosts out by their exportTo). `self` when nothing differs."""
        services = dict(self.services)
        endpoints = dict(self.endpoints)
        for host in sorted({host for host, _ in self.other_services}):
            first = self.services[host]
            chosen = self.service(host, namespace)
            if chosen is None or chosen is first:
                continue
            services[host] = chosen
            for p in first.ports:
                endpoints.pop((host, p.port), None)
            for p in chosen.ports:
                endpoints[(host, p.port)] = self.endpoints_of(chosen, p.port)
        if services == self.services:
            return self
        return Registry(services, endpoints, {}, {})
