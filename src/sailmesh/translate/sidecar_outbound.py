"""Sidecar outbound: `virtualOutbound` (15001), per-port HTTP listeners and routes, per-service
TCP listeners, and the outbound clusters (their client TLS comes from `client_tls`).

Owns: the passthrough listener and `PassthroughCluster`, `0.0.0.0_<port>` HTTP listeners and
`<vip>_<port>` TCP listeners (bind_to_port false: reached through original-dst redirection
from 15001), RDS `<port>` virtual hosts by Host (its port ignored, as Istio does) with the
routes of VirtualServices bound to `mesh`, SNI chains for TLS ports of hosts without an
address (ServiceEntry HTTPS/TLS ports: the application's TLS passes through untouched), and
meshConfig
`outboundTrafficPolicy`: ALLOW_ANY (unknown destinations pass through) or REGISTRY_ONLY
(they end in `BlackHoleCluster`, and unknown HTTP hosts get Istio's `block_all` 502).
Must not know: inbound traffic, certificate contents.
"""

from __future__ import annotations

import functools
import ipaddress
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from google.protobuf import wrappers_pb2

from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.hosts import fqdn
from sailmesh.model.mesh import MeshModel, mesh_match_fits
from sailmesh.model.proxy import Proxy
from sailmesh.model.services import MeshService, ServicePort, cluster_name
from sailmesh.resources.networking import L4MatchAttributes, TLSMatchAttributes
from sailmesh.translate.access_log import access_logs
from sailmesh.translate.client_tls import service_clusters
from sailmesh.translate.clusters import BLACKHOLE, CONNECT_TIMEOUT
from sailmesh.translate.config_source import pack
from sailmesh.translate.http_manager import hcm_filter, http_connection_manager
from sailmesh.translate.http_route import http_routes
from sailmesh.translate.origination import file_check
from sailmesh.translate.sidecar_inbound import socket_address
from sailmesh.translate.sniffing import (
    HTTP_INSPECTOR,
    NO_TIMEOUT,
    detection_timeout,
    sniffed_chains,
)
from sailmesh.translate.tcp_routes import route_target, tcp_proxy_filter
from sailmesh.translate.tracing import Tracing, hcm_tracing, trace_operation

OUTBOUND_LISTENER = "virtualOutbound"
OUTBOUND_PORT = 15001
PASSTHROUGH = "PassthroughCluster"
REGISTRY_ONLY = "REGISTRY_ONLY"
# Ports of the sidecar itself (Istio reserves them): admin, outbound, inbound, agent,
# health, Prometheus. Outbound wildcard listeners never use them.
PROXY_PORTS = frozenset({15000, 15001, 15004, 15006, 15020, 15021, 15090})


def outbound_policy(model: MeshModel) -> str:
    """meshConfig.outboundTrafficPolicy.mode; Istio's default is ALLOW_ANY."""
    policy = model.mesh.outbound_traffic_policy or {}
    return str(policy.get("mode") or "ALLOW_ANY").upper()


@dataclass
class Outbound:
    listeners: dict[str, listener_pb2.Listener] = field(default_factory=dict)
    routes: dict[str, route_pb2.RouteConfiguration] = field(default_factory=dict)
    clusters: dict[str, cluster_pb2.Cluster] = field(default_factory=dict)
    endpoints: dict[str, endpoint_pb2.ClusterLoadAssignment] = field(default_factory=dict)
    # The services' clusters and endpoints as the sidecar's view sees them: mappings that
    # the sidecars of one view share (`client_tls.service_clusters`), never mutated.
    service_clusters: Mapping[str, cluster_pb2.Cluster] = field(default_factory=dict)
    service_endpoints: Mapping[str, endpoint_pb2.ClusterLoadAssignment] = field(
        default_factory=dict)
    secrets: dict[str, secret_pb2.Secret] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def sidecar_outbound(model: MeshModel, proxy: Proxy,
                     endpoints: dict[str, endpoint_pb2.ClusterLoadAssignment], *,
                     now: datetime) -> Outbound:
    """`endpoints`: the mesh's assignments (see `clusters.mesh_clusters`), re-labelled here.

    Istio's protocol selection decides the listener: HTTP ports share one
    `0.0.0.0_<port>` listener routed by Host; TCP and TLS ports (names `tcp-*`, `https-*`,
    `tls-*`, or appProtocol) get a `<vip>_<port>` listener per service that proxies the
    bytes, so an app's own TLS (or any non-HTTP protocol) passes through untouched. A TLS
    port of a host without an address (a DNS ServiceEntry) is matched by SNI instead.
    """
    out = Outbound()
    blocked = outbound_policy(model) == REGISTRY_ONLY
    logs = access_logs(model.mesh)
    tcp_logs = access_logs(model.mesh, tcp=True)
    tracing = hcm_tracing(model.mesh, proxy.namespace, proxy.labels)
    # What is the same for every sidecar of the push is built once and shared (and then
    # packed once for all of them, see `xds.cache.Packer`).
    out.listeners[OUTBOUND_LISTENER] = model.shared(
        ("virtual-outbound", blocked), lambda: _virtual_outbound(blocked, tcp_logs))
    out.clusters[PASSTHROUGH] = model.shared(("passthrough-cluster",), lambda: cluster_pb2.Cluster(
        name=PASSTHROUGH, type=cluster_pb2.Cluster.ORIGINAL_DST,
        lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED, connect_timeout=CONNECT_TIMEOUT))
    out.service_clusters, out.service_endpoints = service_clusters(
        model, proxy.namespace, endpoints, out.diagnostics, client_labels=proxy.labels,
        sidecar=True, secrets=out.secrets, now=now, files=file_check(proxy),
        access=model.credential_access(proxy))
    visible = model.shared(("outbound-services", proxy.namespace),
                           functools.partial(_visible_services, model, proxy.namespace))
    http_by_port, sniffed_by_port = visible.http_by_port, visible.sniffed_by_port
    # Port → chains of hosts without an address: SNI chains (TLS) or one catch-all (TCP).
    sni_by_port: dict[int, list[lc.FilterChain]] = defaultdict(list)
    tcp_by_port: dict[int, list[lc.FilterChain]] = {}
    # Port → chains of hosts with CIDR addresses, matched by destination prefix.
    cidr_by_port: dict[int, list[lc.FilterChain]] = defaultdict(list)
    for svc, sp, protocol in visible.l4:
        singles = [a for a in (svc.vip, *svc.more_addresses) if a and "/" not in a]
        ranges = [a for a in svc.more_addresses if "/" in a]
        chains = _l4_chains(model, svc, sp.port, protocol, proxy, tcp_logs,
                            by_address=bool(singles or ranges))
        for address in singles:
            name = f"{address}_{sp.port}"
            out.listeners[name] = _outbound_listener(name, address, sp.port, chains)
        for chain in chains if ranges else ():
            # Istio: a range has no listener of its own; the port's wildcard listener
            # matches the destination prefix.
            ranged = lc.FilterChain()
            ranged.CopyFrom(chain)
            if not ranged.filter_chain_match.prefix_ranges:
                ranged.filter_chain_match.prefix_ranges.extend(_cidr(r) for r in ranges)
            cidr_by_port[sp.port].append(ranged)
        if singles or ranges:
            continue
        if protocol == "TLS":
            sni_by_port[sp.port] += chains
        else:
            # Istio: a TCP port of an entry without addresses takes the whole port
            # (first host wins), since nothing else tells its connections apart.
            tcp_by_port.setdefault(sp.port, chains)
    for port in sorted(set(http_by_port) | set(sni_by_port) | set(tcp_by_port)
                       | set(cidr_by_port)):
        if port in PROXY_PORTS:
            # Envoy refuses a second listener on the address of the proxy's own (15021
            # readiness, …), and the refusal would hold back the whole listener update.
            continue
        name = f"0.0.0.0_{port}"
        chains = _distinct([*cidr_by_port.get(port, []), *sni_by_port.get(port, [])])
        if port in http_by_port and not chains:
            # Routed by Host alone: the same for the namespace's sidecars of one tracing
            # (its tags name the pod's canonical service).
            out.routes[str(port)] = _shared_route(model, port, http_by_port[port],
                                                  proxy.namespace, blocked)
            traced = None if tracing is None else tracing.SerializeToString(deterministic=True)
            out.listeners[name] = model.shared(
                ("outbound-http-listener", port, proxy.namespace, blocked, traced),
                functools.partial(_http_listener, model, name, port,
                                  sniffed_by_port.get(port, []), [], logs, tracing))
            continue
        if port in http_by_port:
            out.routes[str(port)] = _shared_route(model, port, http_by_port[port],
                                                  proxy.namespace, blocked)
            out.listeners[name] = _http_listener(model, name, port,
                                                 sniffed_by_port.get(port, []), chains, logs,
                                                 tracing)
            continue
        if port in tcp_by_port:
            chains += tcp_by_port[port]
        else:  # SNI/prefix chains only: other traffic on this port passes through or not
            fallback = BLACKHOLE if blocked else PASSTHROUGH
            chains.append(lc.FilterChain(filters=[tcp_proxy_filter(fallback, tcp_logs)]))
        out.listeners[name] = _outbound_listener(name, "0.0.0.0", port, chains)
    return out


def _shared_route(model: MeshModel, port: int, services: list[MeshService], client_ns: str,
                  blocked: bool) -> route_pb2.RouteConfiguration:
    """The port's RDS route: the same for every sidecar of the namespace (whose services are
    `visible`), built once per push and shared."""
    route = str(port)
    return model.shared(("outbound-routes", route, port, client_ns, blocked),
                        functools.partial(_route_config, model, route, port, services,
                                          client_ns, blocked))


def _http_listener(model: MeshModel, name: str, port: int, sniffed: list[MeshService],
                   chains: list[lc.FilterChain], logs: list[accesslog_pb2.AccessLog],
                   tracing: Tracing | None) -> listener_pb2.Listener:
    """A port's `0.0.0.0_<port>` listener routed by Host (RDS `<port>`), after `chains`
    (SNI and prefix chains of hosts on the same port)."""
    route = str(port)
    chains = [*chains]
    for svc in sniffed:
        chains += sniffed_chains(svc, port, route, logs, tracing)
    chains.append(lc.FilterChain(filters=[hcm_filter(http_connection_manager(
        f"outbound_0.0.0.0_{port}", rds=route, access_log=logs, tracing=tracing))]))
    listener = _outbound_listener(name, "0.0.0.0", port, chains)
    if sniffed:
        # After the TLS inspector: it sees only what is not TLS.
        listener.listener_filters.append(HTTP_INSPECTOR)
        # Istio limits the wait only where the HTTP inspector runs.
        listener.listener_filters_timeout.CopyFrom(detection_timeout(model.mesh))
    return listener


@dataclass(frozen=True)
class _Visible:
    """The services a namespace's sidecars see, by what their outbound config does with
    them. Contract: shared by the sidecars of a push, never mutated."""

    http_by_port: dict[int, list[MeshService]]
    # Port → services whose port declares no protocol: sniffed per address (`sniffing`).
    sniffed_by_port: dict[int, list[MeshService]]
    # TCP and TLS service ports with an address or a host name, in host order.
    l4: list[tuple[MeshService, ServicePort, str]]


def _visible_services(model: MeshModel, namespace: str) -> _Visible:
    http_by_port: dict[int, list[MeshService]] = defaultdict(list)
    sniffed_by_port: dict[int, list[MeshService]] = defaultdict(list)
    out = _Visible(http_by_port, sniffed_by_port, [])
    for host in sorted(model.services):
        svc = model.services[host]
        if not svc.visible_to(namespace):
            continue
        for sp in svc.ports:
            protocol = sp.mesh_protocol
            if protocol == "HTTP":
                http_by_port[sp.port].append(svc)
                if sp.sniffed and svc.vip and svc.hostname is None:
                    sniffed_by_port[sp.port].append(svc)
            elif protocol in ("TCP", "TLS") and (svc.vip or svc.hostname):
                out.l4.append((svc, sp, protocol))
    return _Visible(dict(http_by_port), dict(sniffed_by_port), out.l4)


def _l4_chains(model: MeshModel, svc: MeshService, port: int, protocol: str, proxy: Proxy,
               logs: list[accesslog_pb2.AccessLog], *, by_address: bool,
               ) -> list[lc.FilterChain]:
    """The filter chains of a TLS or TCP service port, most specific first.

    Istio (sidecars): the oldest VirtualService bound to `mesh` for the host decides. TLS
    ports get one chain per `tls[].match` that fits this port and client (sniHosts → server
    names, destinationSubnets → prefix ranges); TCP ports take the first `tcp[]` route whose
    match fits. The service's own cluster serves whatever no route claims — for a host
    without an address (`by_address` false), connections with its name as SNI.
    """
    chains: list[lc.FilterChain] = []
    vs = model.mesh_virtual_service(svc.fqdn, proxy.namespace)
    routes = [] if vs is None else (vs.spec.tls if protocol == "TLS" else vs.spec.tcp)
    for route in routes:
        assert vs is not None
        fitting: list[TLSMatchAttributes | L4MatchAttributes | None] = [
            m for m in route.match if mesh_match_fits(m, port, proxy.labels, proxy.namespace)]
        matches = fitting or ([] if route.match else [None])
        target = route_target(model, vs, route.route) if matches else None
        if target is None:
            continue
        for m in matches:
            chain = lc.FilterChain(filters=[tcp_proxy_filter(target, logs)])
            if m is not None:
                for sni in getattr(m, "sni_hosts", []):
                    chain.filter_chain_match.server_names.append(fqdn(sni, vs.namespace))
                for subnet in m.destination_subnets:
                    chain.filter_chain_match.prefix_ranges.append(_cidr(subnet))
            chains.append(chain)
        if protocol == "TCP":
            break  # the first TCP route that fits takes the connection
    default = lc.FilterChain(filters=[tcp_proxy_filter(cluster_name(port, svc.fqdn), logs)])
    if protocol == "TLS" and not by_address:
        default.filter_chain_match.server_names.append(svc.fqdn)
    chains.append(default)
    return _distinct(chains)


def _cidr(subnet: str) -> address_pb2.CidrRange:
    net = ipaddress.ip_network(subnet, strict=False)
    return address_pb2.CidrRange(address_prefix=str(net.network_address),
                                 prefix_len=wrappers_pb2.UInt32Value(value=net.prefixlen))


def _distinct(chains: list[lc.FilterChain]) -> list[lc.FilterChain]:
    """Envoy refuses a listener with two chains of the same match; the first one wins, and
    a catch-all chain is kept only when it is the last."""
    seen: set[bytes] = set()
    out: list[lc.FilterChain] = []
    for chain in chains:
        key = chain.filter_chain_match.SerializeToString(deterministic=True)
        if key not in seen:
            seen.add(key)
            out.append(chain)
    return out


def _outbound_listener(name: str, address: str, port: int,
                       chains: list[lc.FilterChain]) -> listener_pb2.Listener:
    """An outbound listener reached from 15001 for its address and port; the TLS inspector
    only where a chain matches SNI. Istio: no limit on the inspectors' wait (unless the
    HTTP inspector runs), and on expiry the connection goes on rather than closing."""
    listener = listener_pb2.Listener(
        name=name, address=socket_address(address, port),
        bind_to_port=wrappers_pb2.BoolValue(value=False),
        traffic_direction=base_pb2.OUTBOUND, filter_chains=chains,
        listener_filters_timeout=NO_TIMEOUT, continue_on_listener_filters_timeout=True)
    if any(c.filter_chain_match.server_names for c in listener.filter_chains):
        listener.listener_filters.append(lc.ListenerFilter(
            name="envoy.filters.listener.tls_inspector",
            typed_config=pack(tls_inspector_pb2.TlsInspector())))
    return listener


def _virtual_outbound(blocked: bool,
                      logs: list[accesslog_pb2.AccessLog]) -> listener_pb2.Listener:
    """Istio: iptables sends all outbound TCP to 15001; use_original_dst hands it to the
    listener of its original address and port, else it passes through untouched
    (ALLOW_ANY) or is dropped into BlackHoleCluster (REGISTRY_ONLY)."""
    sink = BLACKHOLE if blocked else PASSTHROUGH
    name = "BlackHoleFilterChain" if blocked else "PassthroughFilterChain"
    return listener_pb2.Listener(
        name=OUTBOUND_LISTENER, address=socket_address("0.0.0.0", OUTBOUND_PORT),
        use_original_dst=wrappers_pb2.BoolValue(value=True),
        traffic_direction=base_pb2.OUTBOUND,
        default_filter_chain=lc.FilterChain(name=name, filters=[tcp_proxy_filter(sink, logs)]))


def _route_config(model: MeshModel, name: str, port: int, services: list[MeshService],
                  client_ns: str, blocked: bool) -> route_pb2.RouteConfiguration:
    vhosts = []
    for svc in services:
        if svc.hostname is not None:
            # A ServiceEntry host is reached by the name as written (wildcards included).
            names = [svc.hostname]
        else:
            # Istio: the short name only from the service's own namespace; `name.ns` and
            # `name.ns.svc` from anywhere.
            names = [svc.fqdn, f"{svc.name}.{svc.namespace}",
                     f"{svc.name}.{svc.namespace}.svc"]
            if svc.namespace == client_ns:
                names.append(svc.name)
        vhosts.append(rc.VirtualHost(name=f"{svc.fqdn}:{port}", domains=names,
                                     routes=_mesh_routes(model, svc, port, client_ns)))
    if port == 80:
        known = {svc.hostname or svc.fqdn for svc in services}
        vhosts += _port_80_vhosts(model, known, client_ns)
    if blocked:
        # Istio's REGISTRY_ONLY: a host that is not in the registry gets 502.
        vhosts.append(rc.VirtualHost(name="block_all", domains=["*"], routes=[rc.Route(
            name="block_all", match=rc.RouteMatch(prefix="/"),
            direct_response=rc.DirectResponseAction(status=502))]))
    else:
        # Istio's outboundTrafficPolicy ALLOW_ANY: unknown hosts pass through.
        vhosts.append(rc.VirtualHost(name="allow_any", domains=["*"], routes=[rc.Route(
            name="allow_any", match=rc.RouteMatch(prefix="/"),
            route=rc.RouteAction(cluster=PASSTHROUGH))]))
    # Istio (sidecars, pilot's SidecarIgnorePort): the port in Host is ignored when matching,
    # so each name is listed once instead of also as `name:<port>`. Envoy rebuilds the whole
    # table on every change of it, in time linear in its virtual hosts and their domains.
    return route_pb2.RouteConfiguration(name=name, virtual_hosts=vhosts,
                                        validate_clusters=wrappers_pb2.BoolValue(value=False),
                                        ignore_port_in_host_matching=True)


def _port_80_vhosts(model: MeshModel, known: set[str], client_ns: str) -> list[rc.VirtualHost]:
    """Istio's port-80 rule (pilot's BuildSidecarVirtualHostWrapper: "serviceByPort[80]"):
    a host of a VirtualService bound to `mesh` that has no HTTP port 80 in the registry — a
    Service with other ports only, or no Service at all — still gets a virtual host in the
    port-80 route, with the VirtualService's routes for port 80. So `curl http://my-nginx…`
    reaches a route that sends it to the egress gateway although my-nginx serves only 443."""
    out = []
    for host in sorted(model.indexes.mesh_services_by_host):
        if host in known or host == "*":
            continue
        vs = model.mesh_virtual_service(host, client_ns)
        if vs is None:
            continue
        routes: list[rc.Route] = []
        for i, http in enumerate(vs.spec.http):
            built, _ = http_routes(model, vs, i, http, gateways={"mesh"}, ports={80})
            routes += built
        if routes:
            out.append(rc.VirtualHost(name=f"{host}:80", domains=[host],
                                      routes=routes))
    return out


def _mesh_routes(model: MeshModel, svc: MeshService, port: int,
                 client_ns: str) -> list[rc.Route]:
    """Routes of the first VirtualService bound to `mesh` for this host, else the service.

    Istio (sidecars): VirtualServices are not merged; the oldest one naming the host wins,
    and its matches for other ports or gateways drop out (`isPortMatch`/`isGatewayMatch`).
    """
    vs = model.mesh_virtual_service(svc.fqdn, client_ns)
    if vs is not None:
        routes: list[rc.Route] = []
        for i, http in enumerate(vs.spec.http):
            built, _ = http_routes(model, vs, i, http, gateways={"mesh"}, ports={port})
            routes += built
        return routes
    return [rc.Route(name="default", match=rc.RouteMatch(prefix="/"),
                     route=rc.RouteAction(cluster=cluster_name(port, svc.fqdn)),
                     decorator=rc.Decorator(operation=trace_operation(svc.fqdn, port)))]


__all__ = ["Outbound", "outbound_policy", "sidecar_outbound"]
