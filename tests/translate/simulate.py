"""A tiny request simulation over a ProxyConfig, in the spirit of Istio's pilot simulation
tests: listener port + SNI + Host + path → the chain, route and cluster Envoy would pick.

It implements only what the gateway translation emits: SNI (exact and `*.` wildcard)
chain selection, vhost domain selection (exact, `*.suffix`, `host:*`, `*`) and route
matching on path / prefix / regex without header conditions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from sailmesh.translate import ProxyConfig


@dataclass(frozen=True)
class Outcome:
    route_config: str | None = None
    cluster: str | None = None
    status: int | None = None  # direct response / redirect / 404 (no route)
    error: str | None = None  # no listener, no chain: the connection is refused or reset


def simulate(config: ProxyConfig, port: int, *, sni: str | None, host: str,
             path: str) -> Outcome:
    listener = config.listeners.get(f"0.0.0.0_{port}")
    if listener is None:
        return Outcome(error="no listener")
    chain = _chain(list(listener.filter_chains), sni)
    if chain is None:
        return Outcome(error="no filter chain")
    f = chain.filters[0]
    if f.typed_config.Is(tcp_proxy_pb2.TcpProxy.DESCRIPTOR):
        tcp = tcp_proxy_pb2.TcpProxy()
        f.typed_config.Unpack(tcp)
        return Outcome(cluster=tcp.cluster)
    hcm = hcm_pb2.HttpConnectionManager()
    f.typed_config.Unpack(hcm)
    name = hcm.rds.route_config_name
    vhost = _vhost(list(config.routes[name].virtual_hosts), host)
    if vhost is None:
        return Outcome(route_config=name, status=404)
    if vhost.require_tls == rc.VirtualHost.ALL:
        return Outcome(route_config=name, status=301)
    for route in vhost.routes:
        if _matches(route.match, path):
            if route.HasField("direct_response"):
                return Outcome(route_config=name, status=route.direct_response.status)
            if route.HasField("redirect"):
                return Outcome(route_config=name, status=301)
            return Outcome(route_config=name, cluster=route.route.cluster or None)
    return Outcome(route_config=name, status=404)


def _chain(chains: list[lc.FilterChain], sni: str | None) -> lc.FilterChain | None:
    if sni is not None:
        exact = [c for c in chains if sni in c.filter_chain_match.server_names]
        if exact:
            return exact[0]
        wild = [c for c in chains for n in c.filter_chain_match.server_names
                if n.startswith("*.") and sni.endswith(n[1:])]
        if wild:
            return wild[0]
    catch_all = [c for c in chains if not c.filter_chain_match.server_names]
    return catch_all[0] if catch_all else None


def _vhost(vhosts: list[rc.VirtualHost], host: str) -> rc.VirtualHost | None:
    def hit(domain: str) -> bool:
        if domain == "*":
            return True
        if domain.endswith(":*"):
            return host.rpartition(":")[0] == domain[:-2] if ":" in host else False
        if domain.startswith("*"):
            return host.endswith(domain[1:])
        return host == domain

    for rank in (lambda d: "*" not in d, lambda d: d != "*", lambda d: True):
        for vh in vhosts:
            if any(rank(d) and hit(d) for d in vh.domains):
                return vh
    return None


def _matches(m: rc.RouteMatch, path: str) -> bool:
    if m.headers or m.query_parameters:
        return False  # not simulated
    kind = m.WhichOneof("path_specifier")
    if kind == "prefix":
        return path.startswith(m.prefix)
    if kind == "path":
        return path == m.path
    if kind == "safe_regex":
        return re.fullmatch(m.safe_regex.regex, path) is not None
    return False
