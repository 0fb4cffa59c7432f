"""Analyzers of VirtualServices as gateways see them.

Owns: checks of pitfall #16 (terminating server with only `tls:` routes; PASSTHROUGH server
with only `http:` routes), #25 (several VirtualServices for one host on a gateway are merged
in creation order), a `gateways:` entry naming no Gateway and a destination host that is no
known service (Istio IST0101 for both), mesh VirtualServices sharing a host (IST0109) and a
VirtualService host that its Gateway does not carry (IST0132). Must not know: output, clocks, the CLI.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from sailmesh.analysis.context import AnalysisContext
from sailmesh.analysis.messages import Finding
from sailmesh.model.hosts import intersect, matches, split_server_host
from sailmesh.model.mesh import bound_gateways
from sailmesh.resources.networking import Destination, Gateway, ServiceEntry, VirtualService

PASSTHROUGH_MODES = frozenset({"PASSTHROUGH", "AUTO_PASSTHROUGH"})


def _vs_reaches(vs: VirtualService, gw: Gateway, hosts: list[str]) -> bool:
    """Does a VS bound to `gw` have a host inside one of a server's `ns/host` entries?"""
    return any(_host_reaches(h, vs.namespace, gw, hosts) for h in vs.spec.hosts)


def _host_reaches(host: str, vs_namespace: str, gw: Gateway, server_hosts: list[str]) -> bool:
    """Is a VS host (of a VS in `vs_namespace`) inside one of a server's `ns/host` entries?"""
    for entry in server_hosts:
        ns, server_host = split_server_host(entry, gw.namespace)
        if ns in ("*", vs_namespace) and intersect(host, server_host):
            return True
    return False


def route_kind_mismatch(ctx: AnalysisContext) -> Iterator[Finding]:
    """#16: terminating servers use `http:` routes, passthrough servers `tls:` routes."""
    for gw in ctx.snapshot.of_kind(Gateway):
        key = f"{gw.namespace}/{gw.name}"
        for i, server in enumerate(gw.spec.servers):
            tls = server.tls
            if tls is None or server.port.protocol.upper() not in ("HTTPS", "TLS"):
                continue
            passthrough = tls.mode in PASSTHROUGH_MODES
            if not passthrough and server.port.protocol.upper() != "HTTPS":
                continue  # TLS termination to TCP routes: neither kind is wrong here
            what = f"Gateway {key} server {i} (port {server.port.number}, mode {tls.mode})"
            for vs in ctx.model.virtual_services_for(key):
                if not _vs_reaches(vs, gw, server.hosts):
                    continue
                if passthrough and vs.spec.http and not (vs.spec.tls or vs.spec.tcp):
                    yield Finding(vs.ref, "spec.http",
                                  f"only http routes, but {what} passes TLS through without "
                                  "decrypting it, so http routes never match there.")
                elif not passthrough and vs.spec.tls and not vs.spec.http:
                    yield Finding(vs.ref, "spec.tls",
                                  f"only tls routes, but {what} terminates TLS and routes with "
                                  "http routes only; requests get 404.")


def merged_virtual_services(ctx: AnalysisContext) -> Iterator[Finding]:
    """#25: gateways merge VirtualServices of one host in creation order (oldest first)."""
    for gw in ctx.snapshot.of_kind(Gateway):
        key = f"{gw.namespace}/{gw.name}"
        by_host: dict[str, list[VirtualService]] = defaultdict(list)
        for vs in ctx.model.virtual_services_for(key):  # oldest first
            for host in dict.fromkeys(vs.spec.hosts):
                by_host[host].append(vs)
        for host, services in by_host.items():
            if len(services) < 2:
                continue
            order = ", then ".join(vs.ref for vs in services)
            for vs in services:
                yield Finding(vs.ref, "spec.hosts",
                              f"host {host} on Gateway {key} is defined by "
                              f"{len(services)} VirtualServices, merged in creation order: "
                              f"{order}; the first matching route wins.")


def gateway_not_found(ctx: AnalysisContext) -> Iterator[Finding]:
    """Istio IST0101: a `gateways:` entry naming no Gateway; the VS is not applied there."""
    known = {f"{g.namespace}/{g.name}" for g in ctx.snapshot.of_kind(Gateway)}
    for vs in ctx.snapshot.of_kind(VirtualService):
        for i, gw in enumerate(bound_gateways(vs)):
            if gw not in known:
                yield Finding(vs.ref, f"spec.gateways[{i}]",
                              f"Gateway {gw} does not exist; this VirtualService is not "
                              "applied there.")


def _destinations(vs: VirtualService) -> Iterator[tuple[str, Destination]]:
    for i, h in enumerate(vs.spec.http):
        for j, r in enumerate(h.route):
            yield f"spec.http[{i}].route[{j}].destination.host", r.destination
    for kind, routes in (("tls", vs.spec.tls), ("tcp", vs.spec.tcp)):
        for i, t in enumerate(routes):
            for j, r in enumerate(t.route):
                yield f"spec.{kind}[{i}].route[{j}].destination.host", r.destination


def unknown_destination(ctx: AnalysisContext) -> Iterator[Finding]:
    """Istio IST0101: a destination that is neither a Service nor a ServiceEntry host."""
    entries = [h for se in ctx.snapshot.of_kind(ServiceEntry) for h in se.spec.hosts]
    for vs in ctx.snapshot.of_kind(VirtualService):
        for field, dest in _destinations(vs):
            host = ctx.model.resolve_host(dest.host, vs.namespace)
            if host in ctx.model.services or any(matches(host, e) or matches(dest.host, e)
                                                 for e in entries):
                continue
            yield Finding(vs.ref, field,
                          f"destination host {dest.host} ({host}) is not a known Service or "
                          "ServiceEntry host; requests routed there fail with 503.")


def conflicting_mesh_hosts(ctx: AnalysisContext) -> Iterator[Finding]:
    """Istio IST0109: sidecars do not merge VirtualServices; only one of them is used."""
    by_host: dict[str, list[VirtualService]] = defaultdict(list)
    for vs in ctx.snapshot.of_kind(VirtualService):
        if vs.spec.gateways and "mesh" not in vs.spec.gateways:
            continue
        for host in dict.fromkeys(ctx.model.resolve_host(h, vs.namespace) for h in vs.spec.hosts):
            by_host[host].append(vs)
    for host, services in by_host.items():
        if len(services) < 2:
            continue
        names = ",".join(f"{vs.namespace}/{vs.name}" for vs in services)
        for vs in services:
            yield Finding(vs.ref, "spec.hosts",
                          f"The VirtualServices {names} associated with mesh gateway define the "
                          f"same host {host} which can lead to undefined behavior; sidecars use "
                          f"only the oldest ({services[0].namespace}/{services[0].name}).")


def host_not_in_gateway(ctx: AnalysisContext) -> Iterator[Finding]:
    """Istio IST0132: a VirtualService host that no server of a bound Gateway carries."""
    gateways = {f"{g.namespace}/{g.name}": g for g in ctx.snapshot.of_kind(Gateway)}
    for vs in ctx.snapshot.of_kind(VirtualService):
        for key in bound_gateways(vs):
            gw = gateways.get(key)
            if gw is None:
                continue  # IST0101 (gateway not found) reports it
            missing = [h for h in vs.spec.hosts if not any(
                _host_reaches(h, vs.namespace, gw, s.hosts) for s in gw.spec.servers)]
            if missing:
                yield Finding(vs.ref, "spec.hosts",
                              f"one or more host [{', '.join(missing)}] defined in "
                              f"VirtualService {vs.namespace}/{vs.name} not found in Gateway "
                              f"{key}; requests for it are not routed there.")
