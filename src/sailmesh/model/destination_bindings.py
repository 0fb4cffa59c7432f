"""Cross-resource checks of VirtualService bindings, made while the model is built.

Owns: the diagnostics for a VirtualService's `gateways` that do not exist and for route
destinations whose host or port the registry (as the VirtualService's namespace sees it)
does not know. Must not know: Envoy, IO, clocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from sailmesh.model import diagnostics as codes
from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.indexes import bound_gateways
from sailmesh.model.services import MeshService
from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.networking import Destination, Gateway, VirtualService


class Lookups(Protocol):
    """What the checks read (a `MeshModel`)."""

    @property
    def snapshot(self) -> Snapshot: ...
    @property
    def services(self) -> Mapping[str, MeshService]: ...
    def resolve_host(self, host: str, namespace: str) -> str: ...
    def service(self, host: str, client_ns: str) -> MeshService | None: ...


def binding_diagnostics(model: Lookups) -> list[Diagnostic]:
    """What every VirtualService binds to: its Gateways exist, its destinations are known
    hosts with the port it names (as the registry looks from its namespace)."""
    out: list[Diagnostic] = []
    gateways = {f"{g.namespace}/{g.name}" for g in model.snapshot.of_kind(Gateway)}
    for vs in model.snapshot.of_kind(VirtualService):
        for i, gw in enumerate(bound_gateways(vs)):
            if gw not in gateways:
                out.append(Diagnostic(
                    "warning", vs.ref, f"spec.gateways[{i}]",
                    f"gateway {gw} does not exist; this VirtualService is not applied there",
                    codes.VS_GATEWAY_NOT_FOUND))
        dests: list[tuple[str, Destination]] = []
        for i, h in enumerate(vs.spec.http):
            dests += [(f"spec.http[{i}].route[{j}].destination", r.destination)
                      for j, r in enumerate(h.route)]
        l4 = (("tls", [t.route for t in vs.spec.tls]), ("tcp", [t.route for t in vs.spec.tcp]))
        for kind, routes in l4:
            for i, route in enumerate(routes):
                dests += [(f"spec.{kind}[{i}].route[{j}].destination", r.destination)
                          for j, r in enumerate(route)]
        for path, dest in dests:
            out.extend(_destination_diagnostics(model, vs, path, dest))
    return out


def _destination_diagnostics(model: Lookups, vs: VirtualService, path: str,
                             dest: Destination) -> list[Diagnostic]:
    host = model.resolve_host(dest.host, vs.namespace)
    # The definition the VirtualService's own namespace sees; a host hidden from it keeps
    # the registry's first definition (its port and existence are still worth checking).
    svc = model.service(host, vs.namespace) or model.services.get(host)
    if svc is None:
        if dest.port is None:
            return [Diagnostic("error", vs.ref, f"{path}.host",
                               f"host {dest.host} ({host}) is not a known service and no port "
                               "is given; the route is dropped", codes.VS_UNKNOWN_DESTINATION)]
        return [Diagnostic("warning", vs.ref, f"{path}.host",
                           f"host {dest.host} ({host}) is not a known service; requests "
                           "routed there fail with 503", codes.VS_UNKNOWN_DESTINATION)]
    if dest.port is None and len(svc.ports) != 1:
        return [Diagnostic("error", vs.ref, f"{path}.port",
                           f"service {host} has {len(svc.ports)} ports; the destination must "
                           "name one (route dropped)", codes.VS_DESTINATION_PORT_AMBIGUOUS)]
    if dest.port is not None and svc.port(dest.port.number) is None:
        known = ", ".join(str(p.port) for p in svc.ports)
        return [Diagnostic("warning", vs.ref, f"{path}.port.number",
                           f"service {host} has no port {dest.port.number} (ports: {known}); "
                           "requests routed there fail with 503",
                           codes.VS_DESTINATION_PORT_UNKNOWN)]
    return []
