"""Outbound protocol sniffing for Service ports that declare no protocol.

Owns: the filter chains of a sniffed port on a sidecar's `0.0.0.0_<port>` listener — per
service address, HTTP (the HTTP inspector saw `http/1.1` or `h2c`) to the port's routes
and anything else as bytes to the service's cluster — and the ALPN override that makes
the HTTP path offer `istio-http/1.1, istio` on mesh mTLS while bytes offer the cluster's
`istio-peer-exchange, istio` (what Istio's istio.alpn filter does, with upstream Envoy's
set_filter_state and the `envoy.network.application_protocols` filter-state object).
On gateways the same override is enabled per route (`gateway_mesh_http_alpn`). Must not
know: which services are sniffed (`ServicePort.sniffed`), other listeners.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.core.v3 import substitution_format_string_pb2 as sfs
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.common.set_filter_state.v3 import value_pb2
from envoy.extensions.filters.http.set_filter_state.v3 import set_filter_state_pb2
from envoy.extensions.filters.listener.http_inspector.v3 import http_inspector_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from google.protobuf import duration_pb2, wrappers_pb2

from sailmesh.model.inbound import PLAINTEXT_HTTP_ALPNS, mesh_client_alpn
from sailmesh.model.mesh import MeshService, cluster_name
from sailmesh.resources.operator import MeshConfig
from sailmesh.translate.config_source import pack
from sailmesh.translate.http_manager import (
    HCM_FILTER_NAME,
    HttpFilter,
    HttpFilterSlots,
    hcm_filter,
    http_connection_manager,
)
from sailmesh.translate.http_route import parse_duration
from sailmesh.translate.tcp_routes import tcp_proxy_filter
from sailmesh.translate.tracing import Tracing

HTTP_INSPECTOR = lc.ListenerFilter(name="envoy.filters.listener.http_inspector",
                                   typed_config=pack(http_inspector_pb2.HttpInspector()))
ALPN_KEY = "envoy.network.application_protocols"
NO_TIMEOUT = duration_pb2.Duration(seconds=0)


def detection_timeout(mesh: MeshConfig) -> duration_pb2.Duration:
    """A sidecar listener's `listener_filters_timeout` where Istio sniffs:
    meshConfig.protocolDetectionTimeout, 0s (no limit) by default. On expiry Istio's
    listeners go on (`continue_on_listener_filters_timeout`) with what the inspectors saw:
    a client-first protocol whose first write is shorter than a TLS record header then
    reaches the plain TCP chain instead of waiting."""
    return parse_duration(mesh.protocol_detection_timeout)


ALPN_FILTER = "envoy.filters.http.set_filter_state"


_ALPN_CONFIG = pack(set_filter_state_pb2.Config(on_request_headers=[value_pb2.FilterStateValue(
    object_key=ALPN_KEY, shared_with_upstream=value_pb2.FilterStateValue.ONCE,
    format_string=sfs.SubstitutionFormatString(text_format_source=base_pb2.DataSource(
        inline_string=",".join(mesh_client_alpn(True)))))]))


def mesh_http_alpn_filter(*, disabled: bool = False) -> HttpFilter:
    """Upstream TLS of this request offers the mesh's HTTP ALPN (Istio's istio.alpn);
    `disabled`: only on routes that enable it."""
    return HttpFilter(name=ALPN_FILTER, disabled=disabled, typed_config=_ALPN_CONFIG)


def gateway_mesh_http_alpn(
    listeners: Mapping[str, listener_pb2.Listener],
    routes: Mapping[str, route_pb2.RouteConfiguration],
    clusters: Mapping[str, cluster_pb2.Cluster],
) -> tuple[dict[str, listener_pb2.Listener], dict[str, route_pb2.RouteConfiguration]]:
    """A gateway's HTTP to a sniffed port over mesh mTLS offers `istio-http/1.1, istio`, so
    it lands on the server sidecar's HTTP chain (XFCC at the app), as Istio's gateways do
    (their istio.alpn filter overrides the ALPN by the routed cluster). The override is
    enabled on each route whose every cluster offers the mesh's bytes ALPN (a sniffed
    port's mesh mTLS) and sits disabled in the connection managers of those routes; routes
    to anything else (TLS origination with its own ALPN, plaintext) are untouched."""
    new_routes = dict(routes)
    enabled: set[str] = set()
    for name, config in routes.items():
        copy = route_pb2.RouteConfiguration()
        copy.CopyFrom(config)
        for vhost in copy.virtual_hosts:
            for route in vhost.routes:
                if route.HasField("route") and _all_sniffed_mesh(route.route, clusters):
                    route.typed_per_filter_config[ALPN_FILTER].Pack(rc.FilterConfig(
                        config=_ALPN_CONFIG))
                    enabled.add(name)
        if name in enabled:
            new_routes[name] = copy
    new_listeners = dict(listeners)
    for name, listener in listeners.items():
        copy = listener_pb2.Listener()
        copy.CopyFrom(listener)
        changed = False
        for chain in copy.filter_chains:
            for f in chain.filters:
                if f.name != HCM_FILTER_NAME:
                    continue
                hcm = hcm_pb2.HttpConnectionManager()
                f.typed_config.Unpack(hcm)
                if hcm.rds.route_config_name in enabled:
                    hcm.http_filters.insert(len(hcm.http_filters) - 1,
                                            mesh_http_alpn_filter(disabled=True))
                    f.typed_config.Pack(hcm)
                    changed = True
        if changed:
            new_listeners[name] = copy
    return new_listeners, new_routes


def _all_sniffed_mesh(action: rc.RouteAction,
                      clusters: Mapping[str, cluster_pb2.Cluster]) -> bool:
    names = ([action.cluster] if action.cluster
             else [w.name for w in action.weighted_clusters.clusters])
    return bool(names) and all(n in clusters and _offers_mesh_bytes_alpn(clusters[n])
                               for n in names)


def _offers_mesh_bytes_alpn(cluster: cluster_pb2.Cluster) -> bool:
    """Mesh mTLS offering `istio-peer-exchange, istio` (with auto mTLS: to the mesh's
    endpoints)."""
    sockets = [cluster.transport_socket, *(m.transport_socket
                                           for m in cluster.transport_socket_matches)]
    for socket in sockets:
        ctx = tls_pb2.UpstreamTlsContext()
        if socket.typed_config.Unpack(ctx) and (
                tuple(ctx.common_tls_context.alpn_protocols) == mesh_client_alpn(False)):
            return True
    return False


def sniffed_chains(svc: MeshService, port: int, route: str,
                   logs: Sequence[accesslog_pb2.AccessLog],
                   tracing: Tracing | None) -> list[lc.FilterChain]:
    """Istio's outbound chains of a sniffed port for one service address: HTTP to the
    port's routes (with the mesh HTTP ALPN), then plaintext bytes and TLS to the cluster."""
    assert svc.vip is not None
    prefix = address_pb2.CidrRange(address_prefix=svc.vip,
                                   prefix_len=wrappers_pb2.UInt32Value(value=32))
    http = http_connection_manager(
        f"outbound_{svc.vip}_{port}", rds=route, access_log=logs,
        filters=HttpFilterSlots(upstream=(mesh_http_alpn_filter(),)), tracing=tracing)
    bytes_ = tcp_proxy_filter(cluster_name(port, svc.fqdn), logs)
    return [
        lc.FilterChain(filter_chain_match=lc.FilterChainMatch(
            prefix_ranges=[prefix], transport_protocol="raw_buffer",
            application_protocols=list(PLAINTEXT_HTTP_ALPNS)), filters=[hcm_filter(http)]),
        lc.FilterChain(filter_chain_match=lc.FilterChainMatch(
            prefix_ranges=[prefix], transport_protocol="raw_buffer"), filters=[bytes_]),
        lc.FilterChain(filter_chain_match=lc.FilterChainMatch(
            prefix_ranges=[prefix], transport_protocol="tls"), filters=[bytes_]),
    ]


__all__ = ["HTTP_INSPECTOR", "gateway_mesh_http_alpn", "mesh_http_alpn_filter",
           "sniffed_chains"]
