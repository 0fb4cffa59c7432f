"""Gateway route configurations: servers + bound VirtualServices → RouteConfiguration.

Owns: route config names, virtual hosts (VirtualService host ∩ server host, named
`<host>:<port>`), their domains, merging of several VirtualServices on one host, the
httpsRedirect vhost flag and the `blackhole` vhost. Must not know: listeners, clusters,
how one http route is translated (see `http_route`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2

from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.gateway_merge import GatewayServer
from sailmesh.model.hosts import fqdn, intersect
from sailmesh.model.indexes import bound_gateways
from sailmesh.model.mesh import MeshModel
from sailmesh.resources.networking import VirtualService
from sailmesh.translate.http_route import http_routes, is_catch_all


def http_route_name(target_port: int) -> str:
    """Plaintext HTTP servers of one listener share `http.<listener port>`."""
    return f"http.{target_port}"


def https_route_name(gs: GatewayServer) -> str:
    """Istio: `https.<port number>.<port name>.<gateway name>.<gateway namespace>`."""
    return (f"https.{gs.server.port.number}.{gs.port_name}.{gs.gateway.name}."
            f"{gs.gateway.namespace}")


def vhost_domains(host: str, port: int) -> list[str]:
    """Istio `buildGatewayVirtualHostDomains`.

    `host:*` lets the Host header carry any port (behind a load balancer, a NodePort or our
    127.0.0.1:8443 host binding). Envoy allows one wildcard per domain, so a wildcard host
    keeps the server port instead; `*` alone already matches everything.
    """
    if host == "*":
        return ["*"]
    if host.startswith("*"):
        return [host, f"{host}:{port}"]
    return [host, f"{host}:*"]


@dataclass
class _VHost:
    port: int
    require_tls: bool = False
    # VirtualService (by key) → the gateways and server port numbers it reached this host by.
    sources: dict[tuple[str, str, str], tuple[VirtualService, set[str], set[int]]] = field(
        default_factory=dict)

    def add(self, vs: VirtualService, gs: GatewayServer) -> None:
        _, gateways, ports = self.sources.setdefault(vs.key, (vs, set(), set()))
        gateways.add(gs.gateway_key)
        ports.add(gs.server.port.number)


def gateway_route_config(model: MeshModel, name: str, servers: Sequence[GatewayServer],
                         ) -> tuple[route_pb2.RouteConfiguration, list[Diagnostic]]:
    vhosts: dict[str, _VHost] = {}
    for vs in model.snapshot.of_kind(VirtualService):  # oldest first: Istio merge order
        bound = set(bound_gateways(vs))
        for gs in servers:
            if gs.gateway_key not in bound:
                continue
            for host in _intersections(vs, gs):
                vhosts.setdefault(host, _VHost(gs.server.port.number)).add(vs, gs)
                if _redirects(gs):
                    vhosts[host].require_tls = True
    for gs in servers:
        if _redirects(gs):
            # Istio: an httpsRedirect server redirects even hosts no VirtualService serves.
            for _, host in gs.hosts:
                vhosts.setdefault(host, _VHost(gs.server.port.number)).require_tls = True
    diags: list[Diagnostic] = []
    out = route_pb2.RouteConfiguration(name=name)
    # Istio sets validate_clusters false: a route to a not-yet-known cluster must not
    # reject the whole route table (it answers 503 for that route instead).
    out.validate_clusters.value = False
    for host in sorted(vhosts, key=lambda h: f"{h}:{vhosts[h].port}"):
        acc = vhosts[host]
        routes: list[rc.Route] = []
        for vs, gateways, ports in acc.sources.values():
            for i, http in enumerate(vs.spec.http):
                built, d = http_routes(model, vs, i, http, gateways=gateways, ports=ports)
                routes += built
                diags += d
        vh = rc.VirtualHost(name=f"{host}:{acc.port}", domains=vhost_domains(host, acc.port),
                            routes=sort_catch_all_last(routes))
        if acc.require_tls:
            vh.require_tls = rc.VirtualHost.ALL
        out.virtual_hosts.append(vh)
    if not out.virtual_hosts:
        port = servers[0].server.port.number if servers else 0
        out.virtual_hosts.append(blackhole_vhost(port))
    return out, list(dict.fromkeys(diags))


def blackhole_vhost(port: int) -> rc.VirtualHost:
    """Istio's vhost for a route config nothing binds to: every request gets 404."""
    return rc.VirtualHost(
        name=f"blackhole:{port}", domains=["*"],
        routes=[rc.Route(name="default", match=rc.RouteMatch(prefix="/"),
                         direct_response=rc.DirectResponseAction(status=404))])


def sort_catch_all_last(routes: Sequence[rc.Route]) -> list[rc.Route]:
    """Istio `SortVHostRoutes`: catch-all routes move to the end, order otherwise kept,
    so a catch-all of an older VirtualService cannot shadow a newer one's routes."""
    return ([r for r in routes if not is_catch_all(r)]
            + [r for r in routes if is_catch_all(r)])


def _intersections(vs: VirtualService, gs: GatewayServer) -> list[str]:
    """VirtualService hosts ∩ server hosts (the more specific name of each overlapping
    pair), honouring the server host's namespace filter (`ns/host`)."""
    out: list[str] = []
    for vs_host in vs.spec.hosts:
        resolved = fqdn(vs_host, vs.namespace)
        for ns, server_host in gs.hosts:
            if ns not in ("*", vs.namespace):
                continue
            hit = intersect(resolved, server_host)
            if hit is not None and hit not in out:
                out.append(hit)
    return out


def _redirects(gs: GatewayServer) -> bool:
    return gs.server.tls is not None and gs.server.tls.https_redirect
