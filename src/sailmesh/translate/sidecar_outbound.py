"""Sidecar outbound: `virtualOutbound` (15001), per-port HTTP listeners and routes, per-service
TCP listeners, and the outbound clusters (their client TLS comes from `client_tls`).

Owns: the passthrough listener and `PassthroughCluster`, `0.0.0.0_<port>` HTTP listeners and
`<vip>_<port>` TCP listeners (bind_to_port false: reached through original-dst redirection
from 15001), RDS `<port>` virtual hosts by Host. Must not know: inbound traffic,
certificate contents.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf import wrappers_pb2

from sailmesh.model.mesh import MeshModel, MeshService, cluster_name
from sailmesh.model.proxy import Proxy
from sailmesh.translate.client_tls import service_clusters
from sailmesh.translate.clusters import CONNECT_TIMEOUT
from sailmesh.translate.config_source import ads
from sailmesh.translate.diagnostics import Diagnostic
from sailmesh.translate.sidecar_inbound import pack, socket_address

HCM = hcm_pb2.HttpConnectionManager
OUTBOUND_LISTENER = "virtualOutbound"
OUTBOUND_PORT = 15001
PASSTHROUGH = "PassthroughCluster"


@dataclass
class Outbound:
    listeners: dict[str, listener_pb2.Listener] = field(default_factory=dict)
    routes: dict[str, route_pb2.RouteConfiguration] = field(default_factory=dict)
    clusters: dict[str, cluster_pb2.Cluster] = field(default_factory=dict)
    endpoints: dict[str, endpoint_pb2.ClusterLoadAssignment] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def sidecar_outbound(model: MeshModel, proxy: Proxy,
                     endpoints: dict[str, endpoint_pb2.ClusterLoadAssignment]) -> Outbound:
    """`endpoints`: the mesh's assignments (see `clusters.mesh_clusters`), re-labelled here.

    Istio's protocol selection decides the listener: HTTP ports share one
    `0.0.0.0_<port>` listener routed by Host; TCP and TLS ports (names `tcp-*`, `https-*`,
    `tls-*`, or appProtocol) get a `<vip>_<port>` listener per service that proxies the
    bytes, so an app's own TLS (or any non-HTTP protocol) passes through untouched.
    """
    out = Outbound()
    out.listeners[OUTBOUND_LISTENER] = _virtual_outbound()
    out.clusters[PASSTHROUGH] = cluster_pb2.Cluster(
        name=PASSTHROUGH, type=cluster_pb2.Cluster.ORIGINAL_DST,
        lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED, connect_timeout=CONNECT_TIMEOUT)
    clusters, labelled = service_clusters(model, proxy.namespace, endpoints, out.diagnostics)
    out.clusters.update(clusters)
    out.endpoints.update(labelled)
    http_by_port: dict[int, list[MeshService]] = defaultdict(list)
    for host in sorted(model.services):
        svc = model.services[host]
        for sp in svc.ports:
            protocol = sp.mesh_protocol
            if protocol == "HTTP":
                http_by_port[sp.port].append(svc)
            elif protocol in ("TCP", "TLS") and svc.vip:
                name = f"{svc.vip}_{sp.port}"
                out.listeners[name] = _tcp_listener(name, svc.vip, sp.port,
                                                    cluster_name(sp.port, host))
    for port in sorted(http_by_port):
        route = str(port)
        out.routes[route] = _route_config(route, port, http_by_port[port], proxy.namespace)
        out.listeners[f"0.0.0.0_{port}"] = listener_pb2.Listener(
            name=f"0.0.0.0_{port}", address=socket_address("0.0.0.0", port),
            bind_to_port=wrappers_pb2.BoolValue(value=False),
            traffic_direction=base_pb2.OUTBOUND,
            filter_chains=[lc.FilterChain(filters=[lc.Filter(
                name="envoy.filters.network.http_connection_manager",
                typed_config=pack(_hcm(port, route)))])])
    return out


def _tcp_listener(name: str, vip: str, port: int, cluster: str) -> listener_pb2.Listener:
    """A TCP service's outbound listener: reached from 15001 for exactly its VIP and port."""
    tcp = tcp_proxy_pb2.TcpProxy(stat_prefix=cluster, cluster=cluster)
    return listener_pb2.Listener(
        name=name, address=socket_address(vip, port),
        bind_to_port=wrappers_pb2.BoolValue(value=False),
        traffic_direction=base_pb2.OUTBOUND,
        filter_chains=[lc.FilterChain(filters=[lc.Filter(
            name="envoy.filters.network.tcp_proxy", typed_config=pack(tcp))])])


def _virtual_outbound() -> listener_pb2.Listener:
    """Istio: iptables sends all outbound TCP to 15001; use_original_dst hands it to the
    `0.0.0.0_<port>` listener of its original port, else it passes through untouched."""
    tcp = tcp_proxy_pb2.TcpProxy(stat_prefix=PASSTHROUGH, cluster=PASSTHROUGH)
    return listener_pb2.Listener(
        name=OUTBOUND_LISTENER, address=socket_address("0.0.0.0", OUTBOUND_PORT),
        use_original_dst=wrappers_pb2.BoolValue(value=True),
        traffic_direction=base_pb2.OUTBOUND,
        default_filter_chain=lc.FilterChain(name="PassthroughFilterChain", filters=[
            lc.Filter(name="envoy.filters.network.tcp_proxy", typed_config=pack(tcp))]))


def _hcm(port: int, route: str) -> hcm_pb2.HttpConnectionManager:
    return HCM(
        stat_prefix=f"outbound_0.0.0.0_{port}", codec_type=HCM.AUTO,
        rds=hcm_pb2.Rds(config_source=ads(), route_config_name=route),
        http_filters=[hcm_pb2.HttpFilter(name="envoy.filters.http.router",
                                         typed_config=pack(router_pb2.Router()))])


def _route_config(name: str, port: int, services: list[MeshService],
                  client_ns: str) -> route_pb2.RouteConfiguration:
    vhosts = []
    for svc in services:
        # Istio: the short name only from the service's own namespace; `name.ns` and
        # `name.ns.svc` from anywhere; each also with `:<port>`.
        names = [svc.fqdn, f"{svc.name}.{svc.namespace}",
                 f"{svc.name}.{svc.namespace}.svc"]
        if svc.namespace == client_ns:
            names.append(svc.name)
        domains = [d for n in names for d in (n, f"{n}:{port}")]
        vhosts.append(rc.VirtualHost(
            name=f"{svc.fqdn}:{port}", domains=domains, routes=[rc.Route(
                name="default", match=rc.RouteMatch(prefix="/"),
                route=rc.RouteAction(cluster=cluster_name(port, svc.fqdn)))]))
    # Istio's outboundTrafficPolicy ALLOW_ANY: unknown hosts pass through.
    vhosts.append(rc.VirtualHost(name="allow_any", domains=["*"], routes=[rc.Route(
        name="allow_any", match=rc.RouteMatch(prefix="/"),
        route=rc.RouteAction(cluster=PASSTHROUGH))]))
    return route_pb2.RouteConfiguration(name=name, virtual_hosts=vhosts,
                                        validate_clusters=wrappers_pb2.BoolValue(value=False))


__all__ = ["Outbound", "sidecar_outbound"]
