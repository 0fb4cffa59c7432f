"""Sidecar outbound: `virtualOutbound` (15001), per-port HTTP listeners and routes, and the
client TLS of every outbound cluster.

Owns: the passthrough listener and `PassthroughCluster`, `0.0.0.0_<port>` listeners
(bind_to_port false: reached through original-dst redirection from 15001), RDS `<port>`
virtual hosts by Host, and each `outbound|<port>||<fqdn>` cluster's transport socket as
`model.policy.effective_client_tls` decides (DISABLE / SIMPLE / MUTUAL / ISTIO_MUTUAL /
auto mTLS). Must not know: inbound traffic, certificate contents.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import struct_pb2, wrappers_pb2

from sailmesh.model.mesh import MeshModel, MeshService, cluster_name
from sailmesh.model.policy import ClientTLS, effective_client_tls, effective_peer_auth
from sailmesh.model.proxy import Proxy
from sailmesh.resources.networking import ClientTLSSettings
from sailmesh.translate import diagnostics as codes
from sailmesh.translate.clusters import CONNECT_TIMEOUT, eds_cluster
from sailmesh.translate.config_source import ads, sds
from sailmesh.translate.diagnostics import Diagnostic
from sailmesh.translate.sidecar_inbound import pack, socket_address
from sailmesh.translate.tls_context import ROOT_CA, WORKLOAD_CERT

HCM = hcm_pb2.HttpConnectionManager
Tls = common_pb2.TlsParameters.TlsProtocol
OUTBOUND_LISTENER = "virtualOutbound"
OUTBOUND_PORT = 15001
PASSTHROUGH = "PassthroughCluster"
# Istio's mTLS client ALPN (read by istio.alpn on Istio's Envoy; ours just sends it).
ISTIO_ALPN = ("istio-peer-exchange", "istio")
# Envoy's endpoint-metadata key for transport_socket_matches; Istio's label and value.
SOCKET_MATCH_KEY = "envoy.transport_socket_match"
TLS_MODE_LABEL = "security.istio.io/tlsMode"
# SIMPLE/MUTUAL without caCertificates: Istio verifies with the system roots.
SYSTEM_ROOTS = "/etc/ssl/certs/ca-certificates.crt"


@dataclass
class Outbound:
    listeners: dict[str, listener_pb2.Listener] = field(default_factory=dict)
    routes: dict[str, route_pb2.RouteConfiguration] = field(default_factory=dict)
    clusters: dict[str, cluster_pb2.Cluster] = field(default_factory=dict)
    endpoints: dict[str, endpoint_pb2.ClusterLoadAssignment] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def sidecar_outbound(model: MeshModel, proxy: Proxy,
                     endpoints: dict[str, endpoint_pb2.ClusterLoadAssignment]) -> Outbound:
    """`endpoints`: the mesh's assignments (see `clusters.mesh_clusters`), re-labelled here."""
    out = Outbound()
    out.listeners[OUTBOUND_LISTENER] = _virtual_outbound()
    out.clusters[PASSTHROUGH] = cluster_pb2.Cluster(
        name=PASSTHROUGH, type=cluster_pb2.Cluster.ORIGINAL_DST,
        lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED, connect_timeout=CONNECT_TIMEOUT)
    by_port: dict[int, list[MeshService]] = defaultdict(list)
    for host in sorted(model.services):
        svc = model.services[host]
        for sp in svc.ports:
            by_port[sp.port].append(svc)
            name = cluster_name(sp.port, host)
            tls = effective_client_tls(model, proxy.namespace, host, sp.port)
            cluster = eds_cluster(name)
            if not _apply_tls(cluster, tls, model, svc, sp.port, out.diagnostics):
                continue  # fail closed: requests get 503, never unintended plaintext
            out.clusters[name] = cluster
            out.endpoints[name] = _labelled(model, endpoints[name], host, sp.port)
    for port in sorted(by_port):
        route = str(port)
        out.routes[route] = _route_config(route, port, by_port[port], proxy.namespace)
        out.listeners[f"0.0.0.0_{port}"] = listener_pb2.Listener(
            name=f"0.0.0.0_{port}", address=socket_address("0.0.0.0", port),
            bind_to_port=wrappers_pb2.BoolValue(value=False),
            traffic_direction=base_pb2.OUTBOUND,
            filter_chains=[lc.FilterChain(filters=[lc.Filter(
                name="envoy.filters.network.http_connection_manager",
                typed_config=pack(_hcm(port, route)))])])
    return out


def _virtual_outbound() -> listener_pb2.Listener:
    """Istio: iptables sends all outbound TCP to 15001; use_original_dst hands it to the
    `0.0.0.0_<port>` listener of its original port, else it passes through untouched."""
    tcp = tcp_proxy_pb2.TcpProxy(stat_prefix=PASSTHROUGH, cluster=PASSTHROUGH)
    return listener_pb2.Listener(
        name=OUTBOUND_LISTENER, address=socket_address("0.0.0.0", OUTBOUND_PORT),
        use_original_dst=wrappers_pb2.BoolValue(value=True),
        traffic_direction=base_pb2.OUTBOUND,
        default_filter_chain=lc.FilterChain(name="PassthroughFilterChain", filters=[
            lc.Filter(name="envoy.filters.network.tcp_proxy", typed_config=pack(tcp))]))


def _hcm(port: int, route: str) -> hcm_pb2.HttpConnectionManager:
    return HCM(
        stat_prefix=f"outbound_0.0.0.0_{port}", codec_type=HCM.AUTO,
        rds=hcm_pb2.Rds(config_source=ads(), route_config_name=route),
        http_filters=[hcm_pb2.HttpFilter(name="envoy.filters.http.router",
                                         typed_config=pack(router_pb2.Router()))])


def _route_config(name: str, port: int, services: list[MeshService],
                  client_ns: str) -> route_pb2.RouteConfiguration:
    vhosts = []
    for svc in services:
        # Istio: the short name only from the service's own namespace; `name.ns` and
        # `name.ns.svc` from anywhere; each also with `:<port>`.
        names = [svc.fqdn, f"{svc.name}.{svc.namespace}",
                 f"{svc.name}.{svc.namespace}.svc"]
        if svc.namespace == client_ns:
            names.append(svc.name)
        domains = [d for n in names for d in (n, f"{n}:{port}")]
        vhosts.append(rc.VirtualHost(
            name=f"{svc.fqdn}:{port}", domains=domains, routes=[rc.Route(
                name="default", match=rc.RouteMatch(prefix="/"),
                route=rc.RouteAction(cluster=cluster_name(port, svc.fqdn)))]))
    # Istio's outboundTrafficPolicy ALLOW_ANY: unknown hosts pass through.
    vhosts.append(rc.VirtualHost(name="allow_any", domains=["*"], routes=[rc.Route(
        name="allow_any", match=rc.RouteMatch(prefix="/"),
        route=rc.RouteAction(cluster=PASSTHROUGH))]))
    return route_pb2.RouteConfiguration(name=name, virtual_hosts=vhosts,
                                        validate_clusters=wrappers_pb2.BoolValue(value=False))


# --- client TLS ------------------------------------------------------------------------------


def _apply_tls(cluster: cluster_pb2.Cluster, tls: ClientTLS, model: MeshModel,
               svc: MeshService, port: int, diags: list[Diagnostic]) -> bool:
    """Set the cluster's client TLS; False when it cannot be built (leave the cluster out)."""
    if tls.mode == "DISABLE":
        return True
    if tls.mode == "AUTO":
        # Istio auto mTLS: endpoints labelled tlsMode=istio get ISTIO_MUTUAL, others plaintext.
        mtls = _istio_mutual(model, svc, port, None)
        cluster.transport_socket_matches.extend([
            cluster_pb2.Cluster.TransportSocketMatch(
                name="tlsMode-istio", match=_struct({"tlsMode": "istio"}),
                transport_socket=_socket(mtls)),
            cluster_pb2.Cluster.TransportSocketMatch(
                name="tlsMode-disabled", match=struct_pb2.Struct(),
                transport_socket=base_pb2.TransportSocket(
                    name="envoy.transport_sockets.raw_buffer",
                    typed_config=pack(raw_buffer_pb2.RawBuffer())))])
        return True
    assert tls.settings is not None
    if tls.mode == "ISTIO_MUTUAL":
        ctx = _istio_mutual(model, svc, port, tls.settings)
    else:
        ctx = _simple_or_mutual(tls, diags)
        if ctx is None:
            return False
    cluster.transport_socket.CopyFrom(_socket(ctx))
    return True


def _istio_mutual(model: MeshModel, svc: MeshService, port: int,
                  settings: ClientTLSSettings | None) -> tls_pb2.UpstreamTlsContext:
    """Istio ISTIO_MUTUAL: SDS `default` + `ROOTCA`, SNI `outbound_.<port>_.<subset>_.<fqdn>`,
    peers verified by the SPIFFE ids of the service's endpoints (or DR subjectAltNames)."""
    sni = (settings.sni if settings and settings.sni else f"outbound_.{port}_._.{svc.fqdn}")
    ctx = tls_pb2.UpstreamTlsContext(sni=sni)
    common = ctx.common_tls_context
    common.alpn_protocols.extend(ISTIO_ALPN)
    common.tls_certificate_sds_secret_configs.append(sds(WORKLOAD_CERT))
    sans = list(settings.subject_alt_names) if settings else []
    if not sans:
        sans = sorted({f"spiffe://{model.mesh.trust_domain}/ns/{svc.namespace}/sa/"
                       f"{ep.service_account}"
                       for ep in model.endpoints.get((svc.fqdn, port), ())})
    combined = common.combined_validation_context
    for san in sans:
        combined.default_validation_context.match_typed_subject_alt_names.append(
            common_pb2.SubjectAltNameMatcher(
                san_type=common_pb2.SubjectAltNameMatcher.SanType.URI,
                matcher=string_pb2.StringMatcher(exact=san)))
    combined.validation_context_sds_secret_config.CopyFrom(sds(ROOT_CA))
    common.tls_params.CopyFrom(common_pb2.TlsParameters(
        tls_minimum_protocol_version=Tls.TLSv1_2, tls_maximum_protocol_version=Tls.TLSv1_3))
    return ctx


def _simple_or_mutual(tls: ClientTLS,
                      diags: list[Diagnostic]) -> tls_pb2.UpstreamTlsContext | None:
    s = tls.settings
    assert s is not None
    if s.credential_name:
        diags.append(Diagnostic(
            "warning", tls.source, "trafficPolicy.tls.credentialName",
            f"credentialName is not supported for sidecar {s.mode} yet; the cluster "
            "is left out, so requests to it fail with 503", codes.UNSUPPORTED_TLS_MODE))
        return None
    ctx = tls_pb2.UpstreamTlsContext(sni=s.sni or "")
    common = ctx.common_tls_context
    if not s.insecure_skip_verify:
        vc = common.validation_context
        vc.trusted_ca.filename = s.ca_certificates or SYSTEM_ROOTS
        if s.ca_crl:
            vc.crl.filename = s.ca_crl
        for san in s.subject_alt_names:
            vc.match_typed_subject_alt_names.append(common_pb2.SubjectAltNameMatcher(
                san_type=common_pb2.SubjectAltNameMatcher.SanType.DNS,
                matcher=string_pb2.StringMatcher(exact=san)))
    if s.mode == "MUTUAL":
        common.tls_certificates.append(common_pb2.TlsCertificate(
            certificate_chain=base_pb2.DataSource(filename=s.client_certificate or ""),
            private_key=base_pb2.DataSource(filename=s.private_key or "")))
    return ctx


def _socket(ctx: tls_pb2.UpstreamTlsContext) -> base_pb2.TransportSocket:
    return base_pb2.TransportSocket(name="envoy.transport_sockets.tls", typed_config=pack(ctx))


def _labelled(model: MeshModel, cla: endpoint_pb2.ClusterLoadAssignment, host: str,
              port: int) -> endpoint_pb2.ClusterLoadAssignment:
    """Mark endpoints of injected pods `tlsMode: istio` for auto mTLS.

    Istio: the label `security.istio.io/tlsMode: istio`, unless the pod's own
    PeerAuthentication for that port is DISABLE (then it could not accept mTLS).
    """
    out = endpoint_pb2.ClusterLoadAssignment()
    out.CopyFrom(cla)
    pods = {f"{w.namespace}/{w.name}": w for w in model.workloads}
    by_addr = {(ep.ip, ep.port): pods.get(ep.workload)
               for ep in model.endpoints.get((host, port), ())}
    for locality in out.endpoints:
        for lb in locality.lb_endpoints:
            sa = lb.endpoint.address.socket_address
            pod = by_addr.get((sa.address, sa.port_value))
            if pod is None or pod.labels.get(TLS_MODE_LABEL) != "istio":
                continue
            peer = effective_peer_auth(model, pod, sa.port_value, model.mesh.root_namespace)
            if peer.mode != "DISABLE":
                lb.metadata.filter_metadata[SOCKET_MATCH_KEY].CopyFrom(
                    _struct({"tlsMode": "istio"}))
    return out


def _struct(values: dict[str, str]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(values)
    return s


__all__ = ["Outbound", "sidecar_outbound"]
