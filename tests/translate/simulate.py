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
    routes = config.routes[name]
    if routes.ignore_port_in_host_matching:
        host = host.rpartition(":")[0] if re.fullmatch(r".*:\d+", host) else host
    vhost = _vhost(list(routes.virtual_hosts), host)
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


# --- sidecar inbound --------------------------------------------------------------------------


@dataclass(frozen=True)
class InboundOutcome:
    chain: str | None = None  # None: no chain matches, Envoy closes the connection
    l7: str | None = None  # "HTTP" (connection manager) or "TCP" (tcp_proxy)
    mtls: bool = False  # the chain terminates TLS (mesh mTLS, a client certificate required)
    cluster: str | None = None


def simulate_inbound(config: ProxyConfig, port: int, *, tls: bool, alpn: tuple[str, ...] = (),
                     http: bool = False) -> InboundOutcome:
    """Envoy's choice on `virtualInbound` for a connection to `port`: listener filters (TLS
    inspector, then HTTP inspector, each skipped where `filter_disabled` matches the
    port), then FilterChainMatch level by level — destination port, transport protocol,
    application protocols — most specific first and without backtracking."""
    listener = config.listeners["virtualInbound"]
    transport, protocols = "raw_buffer", ()
    for f in listener.listener_filters:
        if f.HasField("filter_disabled") and _predicate(f.filter_disabled, port):
            continue
        if f.name.endswith("tls_inspector") and tls:
            transport, protocols = "tls", alpn
        elif f.name.endswith("http_inspector") and transport != "tls" and http and not tls:
            protocols = ("http/1.1",)
    chains = list(listener.filter_chains)
    by_port = [c for c in chains if c.filter_chain_match.HasField("destination_port")
               and c.filter_chain_match.destination_port.value == port]
    chains = by_port or [c for c in chains
                         if not c.filter_chain_match.HasField("destination_port")]
    chains = ([c for c in chains if c.filter_chain_match.transport_protocol == transport]
              or [c for c in chains if not c.filter_chain_match.transport_protocol])
    chains = ([c for c in chains if set(c.filter_chain_match.application_protocols)
               & set(protocols)]
              or [c for c in chains if not c.filter_chain_match.application_protocols])
    if not chains:
        return InboundOutcome()
    chain = chains[0]
    f = chain.filters[-1]
    mtls = chain.transport_socket.name == "envoy.transport_sockets.tls"
    if f.typed_config.Is(tcp_proxy_pb2.TcpProxy.DESCRIPTOR):
        tcp = tcp_proxy_pb2.TcpProxy()
        f.typed_config.Unpack(tcp)
        return InboundOutcome(chain.name, "TCP", mtls, tcp.cluster)
    hcm = hcm_pb2.HttpConnectionManager()
    f.typed_config.Unpack(hcm)
    route = hcm.route_config.virtual_hosts[0].routes[0].route
    return InboundOutcome(chain.name, "HTTP", mtls, route.cluster)


def _predicate(p: lc.ListenerFilterChainMatchPredicate, port: int) -> bool:
    kind = p.WhichOneof("rule")
    if kind == "destination_port_range":
        return p.destination_port_range.start <= port < p.destination_port_range.end
    if kind == "or_match":
        return any(_predicate(r, port) for r in p.or_match.rules)
    if kind == "and_match":
        return all(_predicate(r, port) for r in p.and_match.rules)
    if kind == "not_match":
        return not _predicate(p.not_match, port)
    return kind == "any_match"
