"""Analyzers of VirtualService destinations: do the hosts, ports and subsets they name exist
where the VirtualService is used?

Owns: Istio's destination-host checks (IST0101 for a route or mirror host that no Service or
ServiceEntry visible to the VirtualService provides, a port that host does not have, or a
subset no DestinationRule defines;
IST0112 for a destination without port to a host with several) and IST0140 (a gateway route
without subset to a host whose mesh VirtualService routes by subset: the subset routing does
not happen at the gateway). Must not know: output, clocks, the CLI.

Istio facts (istioctl's DestinationHostAnalyzer): a destination is looked up in the
namespaces the VirtualService is exported to (its own when exportTo is empty, `.` meaning its
own), and in hosts exported to every namespace; a Service's exportTo is its
`networking.istio.io/exportTo` annotation; a wildcard ServiceEntry host (`*.example.com`)
covers destinations under it when it is visible in the VirtualService's namespace or
everywhere. Short names are completed in the VirtualService's namespace.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sailmesh.analysis.context import AnalysisContext
from sailmesh.analysis.messages import Finding
from sailmesh.model.hosts import fqdn, matches
from sailmesh.model.services import EVERYWHERE, exported_to
from sailmesh.resources.networking import (
    Destination,
    DestinationRule,
    ServiceEntry,
    VirtualService,
)


@dataclass(frozen=True)
class _Provider:
    """A host some Service or ServiceEntry provides, with where it is visible."""

    host: str
    namespace: str
    export_to: tuple[str, ...]
    ports: tuple[int, ...]

    def visible_in(self, scope: str) -> bool:
        """`scope` is a namespace, or EVERYWHERE for "exported to every namespace"."""
        if scope == EVERYWHERE:
            return not self.export_to or EVERYWHERE in self.export_to
        return exported_to(self.export_to, self.namespace, scope)


def _providers(ctx: AnalysisContext) -> list[_Provider]:
    out = [_Provider(host, svc.namespace, svc.export_to, tuple(p.port for p in svc.ports))
           for host, svc in ctx.model.services.items() if svc.source is None]
    for se in ctx.snapshot.of_kind(ServiceEntry):
        ports = tuple(p.number for p in se.spec.ports)
        out += [_Provider(fqdn(h, se.namespace), se.namespace, tuple(se.spec.export_to), ports)
                for h in se.spec.hosts]
    return out


def _scopes(vs: VirtualService) -> list[str]:
    """Where the VirtualService is used: its exportTo (`.` → its namespace), else its own."""
    return [vs.namespace if e == "." else e for e in vs.spec.export_to] or [vs.namespace]


def find_provider(providers: Sequence[_Provider], vs: VirtualService,
                  host: str) -> _Provider | None:
    """The Service or ServiceEntry a destination host of `vs` names, as Istio looks it up."""
    name = fqdn(host, vs.namespace)
    scopes = [EVERYWHERE, *_scopes(vs)]
    for scope in scopes:
        for p in providers:
            if p.host == name and p.visible_in(scope):
                return p
    for p in providers:  # wildcard entries last, visible here or everywhere
        if p.host.startswith("*") and (p.visible_in(EVERYWHERE) or p.visible_in(vs.namespace)) \
                and matches(name, p.host):
            return p
    return None


def destinations(vs: VirtualService) -> Iterator[tuple[str, Destination]]:
    """(field, destination) of every route and mirror of a VirtualService."""
    for i, h in enumerate(vs.spec.http):
        for j, r in enumerate(h.route):
            yield f"spec.http[{i}].route[{j}].destination", r.destination
        if h.mirror is not None:
            yield f"spec.http[{i}].mirror", h.mirror
        for j, m in enumerate(h.mirrors or []):
            raw = m.get("destination") if isinstance(m, dict) else None
            if isinstance(raw, dict) and isinstance(raw.get("host"), str):
                yield f"spec.http[{i}].mirrors[{j}].destination", Destination.model_validate(raw)
    for kind, routes in (("tls", vs.spec.tls), ("tcp", vs.spec.tcp)):
        for i, t in enumerate(routes):
            for j, r in enumerate(t.route):
                yield f"spec.{kind}[{i}].route[{j}].destination", r.destination


def unknown_destination(ctx: AnalysisContext) -> Iterator[Finding]:
    """Istio IST0101: a destination host no visible Service or ServiceEntry provides, or a
    port it does not have."""
    providers = _providers(ctx)
    for vs in ctx.snapshot.of_kind(VirtualService):
        for field, dest in destinations(vs):
            what = "mirror host" if ".mirror" in field else "destination host"
            found = find_provider(providers, vs, dest.host)
            if found is None:
                where = ", ".join(_scopes(vs))
                yield Finding(vs.ref, f"{field}.host",
                              f"{what} {dest.host} ({fqdn(dest.host, vs.namespace)}) is not a "
                              f"Service or ServiceEntry host visible in namespace {where} "
                              "(exportTo counts); requests routed there fail with 503.")
            elif dest.port is not None and dest.port.number not in found.ports:
                known = ", ".join(str(p) for p in found.ports)
                yield Finding(vs.ref, f"{field}.port.number",
                              f"{what} {dest.host} has no port {dest.port.number} (ports: "
                              f"{known}); requests routed there fail with 503.")


def port_required(ctx: AnalysisContext) -> Iterator[Finding]:
    """Istio IST0112: no port, and the host has several: the route cannot pick one."""
    providers = _providers(ctx)
    for vs in ctx.snapshot.of_kind(VirtualService):
        for field, dest in destinations(vs):
            found = find_provider(providers, vs, dest.host)
            if found is not None and dest.port is None and len(found.ports) > 1:
                known = ", ".join(str(p) for p in found.ports)
                yield Finding(vs.ref, field,
                              f"{dest.host} has ports {known}, and this destination names "
                              "none; the route is dropped.")


def ingress_route_without_subset(ctx: AnalysisContext) -> Iterator[Finding]:
    """Istio IST0140: a gateway's route to a host without subset, while a VirtualService for
    that host routes it by subset: gateways do not apply the host's VirtualService, so its
    subset rules have no effect on traffic that enters here."""
    by_subset: dict[str, list[VirtualService]] = {}
    for vs in ctx.snapshot.of_kind(VirtualService):
        for h in vs.spec.http:
            for r in h.route:
                if r.destination.subset and r.destination.host in vs.spec.hosts:
                    by_subset.setdefault(r.destination.host, []).append(vs)
    for vs in ctx.snapshot.of_kind(VirtualService):
        if not vs.spec.gateways:
            continue
        for i, h in enumerate(vs.spec.http):
            for j, r in enumerate(h.route):
                if r.destination.subset:
                    continue
                for other in by_subset.get(r.destination.host, []):
                    yield Finding(vs.ref, f"spec.http[{i}].route[{j}].destination.host",
                                  f"the route rules of {other.ref} for {r.destination.host} "
                                  f"(subsets) have no effect on traffic through this "
                                  f"VirtualService's gateways; give this destination a subset "
                                  "to route it likewise.")


def subset_not_found(ctx: AnalysisContext) -> Iterator[Finding]:
    """Istio IST0101: a route or mirror names a subset that no DestinationRule for its host
    defines; Envoy has no such cluster and the requests fail with 503."""
    defined = {(fqdn(dr.spec.host, dr.namespace), s.name)
               for dr in ctx.snapshot.of_kind(DestinationRule) for s in dr.spec.subsets}
    for vs in ctx.snapshot.of_kind(VirtualService):
        for field, dest in destinations(vs):
            host = fqdn(dest.host, vs.namespace)
            if dest.subset and (host, dest.subset) not in defined:
                yield Finding(vs.ref, f"{field}.subset",
                              f"subset {dest.subset} of {dest.host} is defined by no "
                              f"DestinationRule for {host}; requests routed there fail with "
                              "503.")
