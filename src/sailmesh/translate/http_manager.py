"""The one HTTP connection manager builder, shared by gateways and sidecars.

Owns: the HCM skeleton (stat prefix, codec, routes by RDS or inline, access logs, tracing)
and the order of its HTTP filters, described as data: named slots filled in a fixed order,
the router always last. Features plug into a slot (AuthorizationPolicy → `authz`, telemetry
→ `stats`) without touching the listener code. Role-specific settings (XFCC handling,
`use_remote_address`, path normalisation) stay with the caller that knows the role.
Must not know: which listener or filter chain the manager goes into.

Istio (pilot networking/core, the HTTP filter chain of a listener): authentication filters
first, then authorization (RBAC), then the stats/telemetry filters, and the router last —
Envoy's router is terminal and ignores anything after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from sailmesh.translate.config_source import ads, pack

HCM = hcm_pb2.HttpConnectionManager
HttpFilter: TypeAlias = hcm_pb2.HttpFilter
HCM_FILTER_NAME = "envoy.filters.network.http_connection_manager"
ROUTER_FILTER_NAME = "envoy.filters.http.router"


@dataclass(frozen=True)
class HttpFilterSlots:
    """The HTTP filters of one connection manager, by slot; each slot keeps its order."""

    authn: tuple[HttpFilter, ...] = ()
    authz: tuple[HttpFilter, ...] = ()
    stats: tuple[HttpFilter, ...] = ()
    # Filters that shape the upstream connection (Istio's istio.alpn: the ALPN a client
    # sidecar offers for HTTP it proxies over mesh mTLS).
    upstream: tuple[HttpFilter, ...] = ()

    def chain(self) -> list[HttpFilter]:
        """authn, authz, stats, upstream, then the router (terminal: it must come last)."""
        return [*self.authn, *self.authz, *self.stats, *self.upstream, HttpFilter(
            name=ROUTER_FILTER_NAME, typed_config=pack(router_pb2.Router()))]


NO_FILTERS = HttpFilterSlots()


def http_connection_manager(
    stat_prefix: str,
    *,
    rds: str | None = None,
    route_config: route_pb2.RouteConfiguration | None = None,
    access_log: Sequence[accesslog_pb2.AccessLog] = (),
    filters: HttpFilterSlots = NO_FILTERS,
    tracing: hcm_pb2.HttpConnectionManager.Tracing | None = None,
) -> hcm_pb2.HttpConnectionManager:
    """An HCM whose routes come over ADS (`rds` = route configuration name) or inline;
    `tracing` as translate.tracing.hcm_tracing gives it (None: off)."""
    if (rds is None) == (route_config is None):
        raise ValueError("give exactly one of rds (a route configuration name) or route_config")
    hcm = HCM(stat_prefix=stat_prefix, codec_type=HCM.AUTO, access_log=list(access_log),
              http_filters=filters.chain())
    if rds is not None:
        hcm.rds.CopyFrom(hcm_pb2.Rds(config_source=ads(), route_config_name=rds))
    else:
        hcm.route_config.CopyFrom(route_config)
    if tracing is not None:
        hcm.tracing.CopyFrom(tracing)
    return hcm


def hcm_filter(hcm: hcm_pb2.HttpConnectionManager) -> lc.Filter:
    """The network filter that carries `hcm` in a filter chain."""
    return lc.Filter(name=HCM_FILTER_NAME, typed_config=pack(hcm))
