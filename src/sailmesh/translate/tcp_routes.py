"""Where a TCP connection goes: the tcp_proxy filter and the cluster(s) of a VirtualService
`tls` / `tcp` route, shared by gateway passthrough servers and sidecar outbound listeners.

Owns: route destinations → one cluster or Envoy `weighted_clusters`; Istio's stat prefix
(the cluster name). Must not know: listeners, filter chain matching.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from sailmesh.model.mesh import MeshModel
from sailmesh.resources.networking import RouteDestination, VirtualService
from sailmesh.translate.config_source import pack
from sailmesh.translate.telemetry_stats import STATS_LOGGER

Weighted: TypeAlias = tcp_proxy_pb2.TcpProxy.WeightedCluster
TcpTarget: TypeAlias = str | Weighted


def route_target(model: MeshModel, vs: VirtualService,
                 route: Sequence[RouteDestination]) -> TcpTarget | None:
    """The cluster (or weighted clusters) of a `tls[]`/`tcp[]` route; None when a
    destination cannot be resolved (the model reports it) or there is none."""
    names = [(model.destination_cluster(d.destination, vs.namespace), d.weight or 0)
             for d in route]
    if not names or any(n is None for n, _ in names):
        return None
    if len(names) == 1:
        return names[0][0]
    weighted = Weighted()
    for n, w in names:
        if w > 0:
            weighted.clusters.append(Weighted.ClusterWeight(name=n, weight=w))
    return weighted


def tcp_proxy_filter(target: TcpTarget,
                     logs: Sequence[accesslog_pb2.AccessLog] = ()) -> lc.Filter:
    proxy = tcp_proxy_pb2.TcpProxy(access_log=list(logs))
    if any(log.name == STATS_LOGGER for log in logs):
        # Telemetry counts a connection as opened when its upstream connects (Istio's
        # istio_tcp_connections_opened_total), not only when it ends.
        proxy.access_log_options.flush_access_log_on_connected = True
    if isinstance(target, str):
        proxy.stat_prefix = target  # Istio: the stat prefix is the cluster name
        proxy.cluster = target
    else:
        proxy.stat_prefix = target.clusters[0].name if target.clusters else "tcp"
        proxy.weighted_clusters.CopyFrom(target)
    return lc.Filter(name="envoy.filters.network.tcp_proxy", typed_config=pack(proxy))


__all__ = ["TcpTarget", "route_target", "tcp_proxy_filter"]
