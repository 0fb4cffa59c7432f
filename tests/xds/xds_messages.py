"""Envoy resources for the xds tests, built as typed messages the way translate/ will.

Owns small, valid builders (listener → RDS route → EDS cluster → endpoints, TLS secrets).
Test-only: the xds package itself never builds resources.
"""

from collections.abc import Sequence

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message

from sailmesh.xds import Resources, type_urls


def _ads() -> config_source_pb2.ConfigSource:
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
    )


def _any(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _socket(host: str, port: int) -> address_pb2.Address:
    return address_pb2.Address(socket_address=address_pb2.SocketAddress(address=host, port_value=port))


def listener(
    name: str, *, port: int, route: str, secret: str | None = None, host: str = "127.0.0.1"
) -> listener_pb2.Listener:
    """An HTTP (or, with ``secret``, HTTPS) listener whose routes come from RDS ``route``."""
    manager = hcm_pb2.HttpConnectionManager(
        stat_prefix=name,
        rds=hcm_pb2.Rds(config_source=_ads(), route_config_name=route),
        http_filters=[
            hcm_pb2.HttpFilter(name="envoy.filters.http.router", typed_config=_any(router_pb2.Router()))
        ],
    )
    chain = listener_components_pb2.FilterChain(
        filters=[
            listener_components_pb2.Filter(
                name="envoy.filters.network.http_connection_manager", typed_config=_any(manager)
            )
        ]
    )
    if secret is not None:
        tls = tls_pb2.DownstreamTlsContext(
            common_tls_context=tls_pb2.CommonTlsContext(
                tls_certificate_sds_secret_configs=[
                    secret_pb2.SdsSecretConfig(name=secret, sds_config=_ads())
                ]
            )
        )
        chain.transport_socket.CopyFrom(
            base_pb2.TransportSocket(name="envoy.transport_sockets.tls", typed_config=_any(tls))
        )
    return listener_pb2.Listener(name=name, address=_socket(host, port), filter_chains=[chain])


def route(name: str, *, cluster: str, header: str = "") -> route_pb2.RouteConfiguration:
    """Everything to ``cluster``; ``header`` (if set) is added to responses as x-route."""
    action = route_components_pb2.Route(
        match=route_components_pb2.RouteMatch(prefix="/"),
        route=route_components_pb2.RouteAction(cluster=cluster),
    )
    if header:
        action.response_headers_to_add.add().header.CopyFrom(
            base_pb2.HeaderValue(key="x-route", value=header)
        )
    host = route_components_pb2.VirtualHost(name="all", domains=["*"], routes=[action])
    return route_pb2.RouteConfiguration(name=name, virtual_hosts=[host])


def cluster(name: str, *, connect_timeout_ms: int = 1000) -> cluster_pb2.Cluster:
    """An EDS cluster whose endpoints come over ADS under the cluster's own name."""
    return cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.EDS,
        connect_timeout=duration_pb2.Duration(
            seconds=connect_timeout_ms // 1000, nanos=connect_timeout_ms % 1000 * 1_000_000
        ),
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=_ads()),
    )


def endpoints(name: str, *, port: int, host: str = "127.0.0.1") -> endpoint_pb2.ClusterLoadAssignment:
    return endpoint_pb2.ClusterLoadAssignment(
        cluster_name=name,
        endpoints=[
            endpoint_components_pb2.LocalityLbEndpoints(
                lb_endpoints=[
                    endpoint_components_pb2.LbEndpoint(
                        endpoint=endpoint_components_pb2.Endpoint(address=_socket(host, port))
                    )
                ]
            )
        ],
    )


def secret(name: str, *, cert_pem: bytes, key_pem: bytes) -> secret_pb2.Secret:
    return secret_pb2.Secret(
        name=name,
        tls_certificate=common_pb2.TlsCertificate(
            certificate_chain=base_pb2.DataSource(inline_bytes=cert_pem),
            private_key=base_pb2.DataSource(inline_bytes=key_pem),
        ),
    )


def resources(
    listeners: Sequence[listener_pb2.Listener] = (),
    routes: Sequence[route_pb2.RouteConfiguration] = (),
    clusters: Sequence[cluster_pb2.Cluster] = (),
    assignments: Sequence[endpoint_pb2.ClusterLoadAssignment] = (),
    secrets: Sequence[secret_pb2.Secret] = (),
) -> Resources:
    """File each message under its type URL and own name."""
    return {
        type_urls.LISTENER: {m.name: m for m in listeners},
        type_urls.ROUTE: {m.name: m for m in routes},
        type_urls.CLUSTER: {m.name: m for m in clusters},
        type_urls.ENDPOINT: {m.cluster_name: m for m in assignments},
        type_urls.SECRET: {m.name: m for m in secrets},
    }
