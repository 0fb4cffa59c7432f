"""Sidecar inbound: the `virtualInbound` listener (15006), the `inbound|<port>||` clusters
and `InboundPassthroughCluster`.

Owns: turning `model.inbound` (Istio's chains per port, protocol and PeerAuthentication
mode, and the passthrough chains for ports no Service declares) into Envoy filter chains:
HTTP connection managers or tcp_proxy, the mTLS server contexts of sidecars (meshMTLS),
the TLS and HTTP inspectors enabled per port as Istio enables them, and the local-app
clusters. Must not know: outbound traffic, which chain a rule picks (that is
`model.inbound`), certificate contents (SDS `default` / `ROOTCA` come from the CA side).

Istio facts: mesh mTLS is told apart from an application's own TLS by the ALPN the client
sidecar offers (`istio-peer-exchange`, `istio`, `istio-http/1.1`, …); Istio's
`istio.alpn`/metadata-exchange filters are absent from upstream Envoy, but matching on the
offered ALPN needs only the TLS inspector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, protocol_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.listener.http_inspector.v3 import http_inspector_pb2
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo
from envoy.type.matcher.v3 import string_pb2
from envoy.type.v3 import range_pb2
from google.protobuf import duration_pb2, wrappers_pb2

from sailmesh.model.inbound import (
    INBOUND_PASSTHROUGH_CLUSTER,
    SERVER_HTTP_ALPNS,
    SERVER_TCP_ALPNS,
    ChainOption,
    InboundPort,
    inbound_ports,
    inspectors,
)
from sailmesh.model.mesh import MeshModel
from sailmesh.model.workloads import Workload
from sailmesh.resources.operator import MeshConfig
from sailmesh.translate.access_log import access_logs
from sailmesh.translate.client_tls import H2_OPTIONS
from sailmesh.translate.clusters import BLACKHOLE, CONNECT_TIMEOUT
from sailmesh.translate.config_source import pack, sds
from sailmesh.translate.http_manager import HCM, hcm_filter, http_connection_manager
from sailmesh.translate.origination import HTTP_OPTIONS_KEY
from sailmesh.translate.sniffing import detection_timeout
from sailmesh.translate.tcp_routes import tcp_proxy_filter
from sailmesh.translate.tls_context import ROOT_CA, WORKLOAD_CERT
from sailmesh.translate.tracing import Tracing, hcm_tracing, trace_operation

Tls = common_pb2.TlsParameters.TlsProtocol
Predicate: TypeAlias = lc.ListenerFilterChainMatchPredicate
INBOUND_LISTENER = "virtualInbound"
INBOUND_PORT = 15006
# Istio binds inbound upstream connections to 127.0.0.6 so that istio-init's iptables
# rules (`-s 127.0.0.6/32 -o lo -j RETURN`) let them reach the app instead of looping.
INBOUND_SOURCE = "127.0.0.6"
# HTTP to the app in the protocol the client used (Istio's inbound passthrough and sniffed
# ports).
DOWNSTREAM_PROTOCOL = hpo.HttpProtocolOptions(
    use_downstream_protocol_config=hpo.HttpProtocolOptions.UseDownstreamHttpConfig(
        http_protocol_options=protocol_pb2.Http1ProtocolOptions(),
        http2_protocol_options=protocol_pb2.Http2ProtocolOptions()))
NEVER_S = 9_223_372_035  # the longest interval Istio gives (Go time.Duration)


def inbound_cluster_name(port: int) -> str:
    return f"inbound|{port}||"


@dataclass
class Inbound:
    listener: listener_pb2.Listener | None = None
    clusters: dict[str, cluster_pb2.Cluster] = field(default_factory=dict)


def sidecar_inbound(model: MeshModel, workload: Workload) -> Inbound:
    """The pod's inbound listener and clusters. They read the workload's namespace, labels
    and container ports, the Services selecting it, its PeerAuthentications and the mesh
    config, never a route or a DestinationRule: pods alike share them, and a push that
    changes only routing carries them over (`control.memo`). Contract: never mutated."""
    key = ("sidecar-inbound", workload.namespace, tuple(sorted(workload.labels.items())),
           tuple(sorted(workload.container_ports.items())))
    return model.shared(key, lambda: _inbound(model, workload))


def _inbound(model: MeshModel, workload: Workload) -> Inbound:
    out = Inbound()
    ports = inbound_ports(model, workload)
    logs = access_logs(model.mesh, "inbound")
    tcp_logs = access_logs(model.mesh, "inbound", tcp=True)
    tracing = hcm_tracing(model.mesh, workload.namespace, workload.labels)
    # Istio's first chain: traffic to 15006 itself would loop, it is dropped.
    chains = [lc.FilterChain(
        name="virtualInbound-blackhole", filters=[tcp_proxy_filter(BLACKHOLE, tcp_logs)],
        filter_chain_match=lc.FilterChainMatch(
            destination_port=wrappers_pb2.UInt32Value(value=INBOUND_PORT)))]
    for port in ports:
        chains += [_chain(port, option, model.mesh, logs, tcp_logs, tracing)
                   for option in port.options]
        if not port.passthrough:
            out.clusters[port.cluster] = _local_cluster(port)
    passthrough = out.clusters[INBOUND_PASSTHROUGH_CLUSTER] = cluster_pb2.Cluster(
        name=INBOUND_PASSTHROUGH_CLUSTER, type=cluster_pb2.Cluster.ORIGINAL_DST,
        lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED, connect_timeout=CONNECT_TIMEOUT,
        upstream_bind_config=_inbound_source())
    passthrough.typed_extension_protocol_options[HTTP_OPTIONS_KEY].Pack(DOWNSTREAM_PROTOCOL)
    out.listener = listener_pb2.Listener(
        name=INBOUND_LISTENER, address=socket_address("0.0.0.0", INBOUND_PORT),
        # No use_original_dst (as in Istio): handing the connection to the listener of its
        # original address would pick an outbound `0.0.0.0_<port>` listener when a Service
        # uses the same port, which connects back into the pod and loops. The original_dst
        # listener filter restores the address, and the chains match its port.
        traffic_direction=base_pb2.INBOUND,
        # Istio: meshConfig.protocolDetectionTimeout (0s: wait for the client's first
        # bytes), then on to the chain the inspectors' findings so far match.
        listener_filters_timeout=detection_timeout(model.mesh),
        continue_on_listener_filters_timeout=True,
        listener_filters=_listener_filters(ports), filter_chains=chains)
    return out


def _listener_filters(ports: list[InboundPort]) -> list[lc.ListenerFilter]:
    """original_dst, then the TLS inspector and the HTTP inspector (after it: it skips TLS),
    each switched off on the ports where no chain needs it (Istio)."""
    numbered = sorted({p.port for p in ports if p.port})
    tls_default, _ = inspectors(ports, 0)
    tls_differs = [p for p in numbered if inspectors(ports, p)[0] != tls_default]
    http_off = [p for p in numbered if not inspectors(ports, p)[1]]
    out = [lc.ListenerFilter(name="envoy.filters.listener.original_dst",
                             typed_config=pack(original_dst_pb2.OriginalDst()))]
    if tls_default or tls_differs:
        tls = lc.ListenerFilter(name="envoy.filters.listener.tls_inspector",
                                typed_config=pack(tls_inspector_pb2.TlsInspector()))
        if tls_differs:
            # On by default: off on the listed ports; off by default: on only there.
            listed = _ports_predicate(tls_differs)
            tls.filter_disabled.CopyFrom(listed if tls_default else Predicate(
                not_match=listed))
        out.append(tls)
    http = lc.ListenerFilter(name="envoy.filters.listener.http_inspector",
                             typed_config=pack(http_inspector_pb2.HttpInspector()))
    if http_off:
        http.filter_disabled.CopyFrom(_ports_predicate(http_off))
    out.append(http)
    return out


def _ports_predicate(ports: list[int]) -> Predicate:
    rules = [Predicate(destination_port_range=range_pb2.Int32Range(start=p, end=p + 1))
             for p in ports]
    return rules[0] if len(rules) == 1 else Predicate(or_match=Predicate.MatchSet(rules=rules))


def _chain(port: InboundPort, option: ChainOption, mesh: MeshConfig,
           logs: list[accesslog_pb2.AccessLog],
           tcp_logs: list[accesslog_pb2.AccessLog], tracing: Tracing | None) -> lc.FilterChain:
    match = lc.FilterChainMatch(transport_protocol=option.transport,
                                application_protocols=list(option.alpns))
    if port.port:
        match.destination_port.value = port.port
    if option.l7 == "HTTP":
        network = hcm_filter(_hcm(port, tls=option.mtls, logs=logs, tracing=tracing))
        name = "virtualInbound-catchall-http" if port.passthrough else f"0.0.0.0_{port.port}"
    else:
        network = tcp_proxy_filter(port.cluster, tcp_logs)
        name = INBOUND_LISTENER if port.passthrough else f"0.0.0.0_{port.port}"
    chain = lc.FilterChain(name=name, filter_chain_match=match, filters=[network])
    if option.mtls:
        chain.transport_socket.name = "envoy.transport_sockets.tls"
        chain.transport_socket.typed_config.Pack(
            inbound_tls_context(mesh, SERVER_HTTP_ALPNS if option.l7 == "HTTP"
                                else SERVER_TCP_ALPNS))
    return chain


def inbound_tls_context(mesh: MeshConfig, alpn: tuple[str, ...] = SERVER_HTTP_ALPNS,
                        ) -> tls_pb2.DownstreamTlsContext:
    """Sidecar mTLS server context: workload cert, peers validated against ROOTCA.

    Istio: any peer of the trust domain is accepted (SAN prefix `spiffe://<td>/`, plus
    trust domain aliases); TLS 1.2 to 1.3, min 1.3 with meshMTLS.minProtocolVersion TLSV1_3
    (meshMTLS affects only this server side).
    """
    ctx = tls_pb2.DownstreamTlsContext(require_client_certificate=wrappers_pb2.BoolValue(
        value=True))
    common = ctx.common_tls_context
    common.alpn_protocols.extend(alpn)
    common.tls_certificate_sds_secret_configs.append(sds(WORKLOAD_CERT))
    combined = common.combined_validation_context
    for domain in (mesh.trust_domain, *mesh.trust_domain_aliases):
        combined.default_validation_context.match_typed_subject_alt_names.append(
            common_pb2.SubjectAltNameMatcher(
                san_type=common_pb2.SubjectAltNameMatcher.SanType.URI,
                matcher=string_pb2.StringMatcher(prefix=f"spiffe://{domain}/")))
    combined.validation_context_sds_secret_config.CopyFrom(sds(ROOT_CA))
    minimum = Tls.TLSv1_3 if mesh.mesh_mtls.min_protocol_version == "TLSV1_3" else Tls.TLSv1_2
    common.tls_params.CopyFrom(common_pb2.TlsParameters(
        tls_minimum_protocol_version=minimum, tls_maximum_protocol_version=Tls.TLSv1_3,
        cipher_suites=mesh.mesh_mtls.cipher_suites, ecdh_curves=mesh.mesh_mtls.ecdh_curves))
    return ctx


def _hcm(port: InboundPort, *, tls: bool, logs: list[accesslog_pb2.AccessLog],
         tracing: Tracing | None) -> hcm_pb2.HttpConnectionManager:
    cluster = port.cluster
    name = "inbound|http|0" if port.passthrough else inbound_cluster_name(port.port)
    hcm = http_connection_manager(
        cluster if port.passthrough else f"inbound_0.0.0.0_{port.port}",
        route_config=route_pb2.RouteConfiguration(name=name, virtual_hosts=[
            rc.VirtualHost(name=f"inbound|http|{port.port}", domains=["*"], routes=[rc.Route(
                name="default", match=rc.RouteMatch(prefix="/"),
                route=rc.RouteAction(cluster=cluster),
                # Istio: `<service host>:<port>/*` (`:0/*` for passthrough).
                decorator=rc.Decorator(operation=trace_operation(port.service or "",
                                                                 port.port)))])]),
        access_log=logs, tracing=tracing)
    if tls:
        # Istio: the app sees the caller's identity in X-Forwarded-Client-Cert
        # (`By=…;Hash=…;Subject="";URI=spiffe://…`).
        hcm.forward_client_cert_details = HCM.APPEND_FORWARD
        details = hcm.set_current_client_cert_details
        details.subject.value = True
        details.uri = True
        details.dns = True
    else:
        # A plaintext peer proves no identity: strip any XFCC it sends rather than
        # forward a forgeable one to the app.
        hcm.forward_client_cert_details = HCM.SANITIZE
    return hcm


def _local_cluster(port: InboundPort) -> cluster_pb2.Cluster:
    """`inbound|<port>||`: to the app at the connection's original destination, the pod's
    own IP and port, from 127.0.0.6 (Istio ≥ 1.10). An app listening on 127.0.0.1 alone is
    therefore not reachable through the sidecar, as in Istio.

    HTTP to the app as Istio speaks it: HTTP/2 on ports declared HTTP/2 (`http2`, `grpc`,
    …, h2c in plaintext), the client's own protocol on sniffed ports, else HTTP/1.1."""
    cluster = cluster_pb2.Cluster(
        name=port.cluster, type=cluster_pb2.Cluster.ORIGINAL_DST,
        lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED, connect_timeout=CONNECT_TIMEOUT,
        # Istio: the one host (the pod itself) is never cleaned up.
        cleanup_interval=duration_pb2.Duration(seconds=NEVER_S),
        upstream_bind_config=_inbound_source())
    options = H2_OPTIONS if port.http2 else DOWNSTREAM_PROTOCOL if port.protocol == "AUTO" else None
    if options is not None:
        cluster.typed_extension_protocol_options[HTTP_OPTIONS_KEY].Pack(options)
    return cluster


def _inbound_source() -> address_pb2.BindConfig:
    return address_pb2.BindConfig(source_address=address_pb2.SocketAddress(
        address=INBOUND_SOURCE, port_value=0))


def socket_address(ip: str, port: int) -> address_pb2.Address:
    return address_pb2.Address(socket_address=address_pb2.SocketAddress(address=ip,
                                                                       port_value=port))
