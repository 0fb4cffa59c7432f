"""Outbound protocol sniffing for Service ports that declare no protocol.

Owns: the filter chains of a sniffed port on a sidecar's `0.0.0.0_<port>` listener — per
service address, HTTP (the HTTP inspector saw `http/1.1` or `h2c`) to the port's routes
and anything else as bytes to the service's cluster — and the ALPN override that makes
the HTTP path offer `istio-http/1.1, istio` on mesh mTLS while bytes offer the cluster's
`istio-peer-exchange, istio` (what Istio's istio.alpn filter does, with upstream Envoy's
set_filter_state and the `envoy.network.application_protocols` filter-state object).
Must not know: which services are sniffed (`ServicePort.sniffed`), other listeners.
"""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.core.v3 import substitution_format_string_pb2 as sfs
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.extensions.filters.common.set_filter_state.v3 import value_pb2
from envoy.extensions.filters.http.set_filter_state.v3 import set_filter_state_pb2
from envoy.extensions.filters.listener.http_inspector.v3 import http_inspector_pb2
from google.protobuf import wrappers_pb2

from sailmesh.model.inbound import PLAINTEXT_HTTP_ALPNS, mesh_client_alpn
from sailmesh.model.mesh import MeshService, cluster_name
from sailmesh.translate.config_source import pack
from sailmesh.translate.http_manager import (
    HttpFilter,
    HttpFilterSlots,
    hcm_filter,
    http_connection_manager,
)
from sailmesh.translate.tcp_routes import tcp_proxy_filter

HTTP_INSPECTOR = lc.ListenerFilter(name="envoy.filters.listener.http_inspector",
                                   typed_config=pack(http_inspector_pb2.HttpInspector()))
ALPN_KEY = "envoy.network.application_protocols"


def mesh_http_alpn_filter() -> HttpFilter:
    """Upstream TLS of this request offers the mesh's HTTP ALPN (Istio's istio.alpn)."""
    value = value_pb2.FilterStateValue(
        object_key=ALPN_KEY, shared_with_upstream=value_pb2.FilterStateValue.ONCE,
        format_string=sfs.SubstitutionFormatString(text_format_source=base_pb2.DataSource(
            inline_string=",".join(mesh_client_alpn(True)))))
    return HttpFilter(name="envoy.filters.http.set_filter_state",
                      typed_config=pack(set_filter_state_pb2.Config(
                          on_request_headers=[value])))


def sniffed_chains(svc: MeshService, port: int, route: str,
                   logs: Sequence[accesslog_pb2.AccessLog]) -> list[lc.FilterChain]:
    """Istio's outbound chains of a sniffed port for one service address: HTTP to the
    port's routes (with the mesh HTTP ALPN), then plaintext bytes and TLS to the cluster."""
    assert svc.vip is not None
    prefix = address_pb2.CidrRange(address_prefix=svc.vip,
                                   prefix_len=wrappers_pb2.UInt32Value(value=32))
    http = http_connection_manager(
        f"outbound_{svc.vip}_{port}", rds=route, access_log=logs,
        filters=HttpFilterSlots(upstream=(mesh_http_alpn_filter(),)))
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


__all__ = ["HTTP_INSPECTOR", "mesh_http_alpn_filter", "sniffed_chains"]
