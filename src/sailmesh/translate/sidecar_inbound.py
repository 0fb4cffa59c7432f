"""Sidecar inbound: the `virtualInbound` listener (15006) and `inbound|<port>||` clusters.

Owns: one filter chain pair per container port of the proxy's pod, chosen by the
PeerAuthentication mode of that port (see `model.policy`), the mTLS server context of
sidecars (meshMTLS), and the local-app clusters. Must not know: outbound traffic,
certificate contents (SDS `default` / `ROOTCA` are served by the CA side).

Caveat (upstream Envoy): Istio's `istio.alpn` filter is absent, so chains are matched by
`transport_protocol` only, never by ALPN (clients send `istio-peer-exchange, istio`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2 as ec
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import wrappers_pb2

from sailmesh.model.mesh import MeshModel
from sailmesh.model.policy import effective_peer_auth
from sailmesh.model.workloads import Workload, selector_matches
from sailmesh.resources.operator import MeshConfig
from sailmesh.translate.clusters import CONNECT_TIMEOUT
from sailmesh.translate.config_source import pack, sds
from sailmesh.translate.http_manager import HCM, hcm_filter, http_connection_manager
from sailmesh.translate.tls_context import ROOT_CA, WORKLOAD_CERT

Tls = common_pb2.TlsParameters.TlsProtocol
INBOUND_LISTENER = "virtualInbound"
INBOUND_PORT = 15006
# Istio binds inbound upstream connections to 127.0.0.6 so that istio-init's iptables
# rules (`-s 127.0.0.6/32 -o lo -j RETURN`) let them reach the app instead of looping.
INBOUND_SOURCE = "127.0.0.6"
# Istio's inbound chains advertise HTTP/2 and HTTP/1.1 to mTLS clients.
INBOUND_ALPN = ("h2", "http/1.1")


def inbound_cluster_name(port: int) -> str:
    return f"inbound|{port}||"


@dataclass
class Inbound:
    listener: listener_pb2.Listener | None = None
    clusters: dict[str, cluster_pb2.Cluster] = field(default_factory=dict)


def sidecar_inbound(model: MeshModel, workload: Workload) -> Inbound:
    out = Inbound()
    chains: list[lc.FilterChain] = []
    for port in inbound_ports(model, workload):
        mode = effective_peer_auth(model, workload, port, model.mesh.root_namespace).mode
        if mode in ("STRICT", "PERMISSIVE"):
            chains.append(_chain(port, tls=True, mesh=model.mesh))
        if mode in ("PERMISSIVE", "DISABLE"):
            chains.append(_chain(port, tls=False, mesh=model.mesh))
        out.clusters[inbound_cluster_name(port)] = _local_cluster(port)
    if not chains:
        return out  # Envoy rejects a listener without chains
    out.listener = listener_pb2.Listener(
        name=INBOUND_LISTENER, address=socket_address("0.0.0.0", INBOUND_PORT),
        # No use_original_dst (as in Istio): handing the connection to the listener of its
        # original address would pick an outbound `0.0.0.0_<port>` listener when a Service
        # uses the same port, which connects back into the pod and loops. The original_dst
        # listener filter restores the address, and the chains match its port.
        traffic_direction=base_pb2.INBOUND,
        listener_filters=[
            lc.ListenerFilter(name="envoy.filters.listener.original_dst",
                              typed_config=pack(original_dst_pb2.OriginalDst())),
            lc.ListenerFilter(name="envoy.filters.listener.tls_inspector",
                              typed_config=pack(tls_inspector_pb2.TlsInspector())),
        ],
        filter_chains=chains)
    return out


def inbound_ports(model: MeshModel, workload: Workload) -> list[int]:
    """Container ports of the pod, plus numeric target ports of Services selecting it."""
    ports = set(workload.container_ports.values())
    for svc in model.services.values():
        if svc.namespace != workload.namespace or not svc.selector:
            continue
        if not selector_matches(svc.selector, workload.labels):
            continue
        for p in svc.ports:
            target = p.target_port
            if target is None:
                ports.add(p.port)
            elif isinstance(target, int) or target.isdigit():
                ports.add(int(target))
    return sorted(ports)


def _chain(port: int, *, tls: bool, mesh: MeshConfig) -> lc.FilterChain:
    # tls_inspector sets transport_protocol to "tls" or "raw_buffer" for every connection.
    match = lc.FilterChainMatch(destination_port=wrappers_pb2.UInt32Value(value=port),
                                transport_protocol="tls" if tls else "raw_buffer")
    chain = lc.FilterChain(
        name=f"inbound_0.0.0.0_{port}_{'mtls' if tls else 'plaintext'}",
        filter_chain_match=match, filters=[hcm_filter(_hcm(port, tls=tls))])
    if tls:
        chain.transport_socket.name = "envoy.transport_sockets.tls"
        chain.transport_socket.typed_config.Pack(inbound_tls_context(mesh))
    return chain


def inbound_tls_context(mesh: MeshConfig) -> tls_pb2.DownstreamTlsContext:
    """Sidecar mTLS server context: workload cert, peers validated against ROOTCA.

    Istio: any peer of the trust domain is accepted (SAN prefix `spiffe://<td>/`, plus
    trust domain aliases); TLS 1.2 to 1.3, min 1.3 with meshMTLS.minProtocolVersion TLSV1_3
    (meshMTLS affects only this server side).
    """
    ctx = tls_pb2.DownstreamTlsContext(require_client_certificate=wrappers_pb2.BoolValue(
        value=True))
    common = ctx.common_tls_context
    common.alpn_protocols.extend(INBOUND_ALPN)
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


def _hcm(port: int, *, tls: bool) -> hcm_pb2.HttpConnectionManager:
    cluster = inbound_cluster_name(port)
    hcm = http_connection_manager(
        f"inbound_0.0.0.0_{port}",
        route_config=route_pb2.RouteConfiguration(name=cluster, virtual_hosts=[
            rc.VirtualHost(name=f"inbound|http|{port}", domains=["*"], routes=[rc.Route(
                name="default", match=rc.RouteMatch(prefix="/"),
                route=rc.RouteAction(cluster=cluster))])]))
    if tls:
        # Istio: the app sees the caller's SPIFFE id in X-Forwarded-Client-Cert.
        hcm.forward_client_cert_details = HCM.APPEND_FORWARD
        hcm.set_current_client_cert_details.uri = True
    else:
        # A plaintext peer proves no identity: strip any XFCC it sends rather than
        # forward a forgeable one to the app.
        hcm.forward_client_cert_details = HCM.SANITIZE
    return hcm


def _local_cluster(port: int) -> cluster_pb2.Cluster:
    name = inbound_cluster_name(port)
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    cla.endpoints.add().lb_endpoints.append(ec.LbEndpoint(endpoint=ec.Endpoint(
        address=socket_address("127.0.0.1", port))))
    return cluster_pb2.Cluster(
        name=name, type=cluster_pb2.Cluster.STATIC, connect_timeout=CONNECT_TIMEOUT,
        load_assignment=cla,
        upstream_bind_config=address_pb2.BindConfig(source_address=address_pb2.SocketAddress(
            address=INBOUND_SOURCE, port_value=0)))


def socket_address(ip: str, port: int) -> address_pb2.Address:
    return address_pb2.Address(socket_address=address_pb2.SocketAddress(address=ip,
                                                                       port_value=port))
