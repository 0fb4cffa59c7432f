"""Names one xDS resource asks the proxy to fetch over ADS.

Owns: reading Listener and Cluster messages for the RDS, EDS and SDS names they reference
through an ``ads`` config source, so the cache can check a snapshot is complete before a
proxy warms forever waiting for a name that will never come (go-control-plane's
``Consistent()``). Must not build or change resources; a reference through any other config
source (a file, a static secret) is not ours to satisfy and is ignored.
"""

from collections.abc import Iterable, Iterator
from typing import TypeVar

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2, config_source_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from google.protobuf import any_pb2
from google.protobuf.message import Message

_M = TypeVar("_M", bound=Message)


def _from_ads(source: config_source_pb2.ConfigSource) -> bool:
    return source.WhichOneof("config_source_specifier") == "ads"


def _unpack(packed: any_pb2.Any, kind: type[_M]) -> _M | None:
    if not packed.Is(kind.DESCRIPTOR):
        return None
    message = kind()
    packed.Unpack(message)
    return message


def _sds_names(common: tls_pb2.CommonTlsContext) -> Iterator[str]:
    configs = [
        *common.tls_certificate_sds_secret_configs,
        common.validation_context_sds_secret_config,
        common.combined_validation_context.validation_context_sds_secret_config,
    ]
    for config in configs:
        if config.name and _from_ads(config.sds_config):
            yield config.name


def _socket_sds_names(socket: base_pb2.TransportSocket) -> Iterator[str]:
    if not socket.HasField("typed_config"):
        return
    downstream = _unpack(socket.typed_config, tls_pb2.DownstreamTlsContext)
    if downstream is not None:
        yield from _sds_names(downstream.common_tls_context)
    upstream = _unpack(socket.typed_config, tls_pb2.UpstreamTlsContext)
    if upstream is not None:
        yield from _sds_names(upstream.common_tls_context)


def _filter_chains(
    listener: listener_pb2.Listener,
) -> Iterable[listener_components_pb2.FilterChain]:
    chains = list(listener.filter_chains)
    if listener.HasField("default_filter_chain"):
        chains.append(listener.default_filter_chain)
    return chains


def listener_route_names(listener: listener_pb2.Listener) -> set[str]:
    """RouteConfiguration names the listener's HTTP connection managers fetch over ADS."""
    names: set[str] = set()
    for chain in _filter_chains(listener):
        for network_filter in chain.filters:
            hcm = _unpack(network_filter.typed_config, hcm_pb2.HttpConnectionManager)
            if hcm is not None and hcm.HasField("rds") and _from_ads(hcm.rds.config_source):
                names.add(hcm.rds.route_config_name)
    return names


def listener_secret_names(listener: listener_pb2.Listener) -> set[str]:
    """Secret names the listener's TLS contexts fetch over ADS."""
    names: set[str] = set()
    for chain in _filter_chains(listener):
        if chain.HasField("transport_socket"):
            names.update(_socket_sds_names(chain.transport_socket))
    return names


def cluster_endpoint_name(cluster: cluster_pb2.Cluster) -> str | None:
    """The ClusterLoadAssignment name an EDS cluster fetches over ADS, else None."""
    if cluster.type != cluster_pb2.Cluster.EDS:
        return None
    config = cluster.eds_cluster_config
    # An unset eds_config falls back to the CDS source, which is ADS for our proxies.
    if config.HasField("eds_config") and not _from_ads(config.eds_config):
        return None
    # Envoy cluster.proto: service_name "defaults to the cluster name" when empty.
    return config.service_name or cluster.name


def cluster_secret_names(cluster: cluster_pb2.Cluster) -> set[str]:
    """Secret names the cluster's upstream TLS contexts fetch over ADS."""
    names: set[str] = set()
    if cluster.HasField("transport_socket"):
        names.update(_socket_sds_names(cluster.transport_socket))
    for match in cluster.transport_socket_matches:
        names.update(_socket_sds_names(match.transport_socket))
    return names
