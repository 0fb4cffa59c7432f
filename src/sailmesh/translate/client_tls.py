"""Client TLS of outbound service clusters, shared by sidecars and gateways.

Owns: `service_clusters` — one `outbound|<port>||<fqdn>` EDS cluster per service port, with
the transport socket `model.policy.effective_client_tls` decides for the client's namespace
(DISABLE / SIMPLE / MUTUAL / ISTIO_MUTUAL / auto mTLS), and endpoints labelled
`tlsMode: istio` for auto mTLS. Istio applies the same rules to gateways and sidecars,
so a gateway reaches a STRICT workload over mTLS without any DestinationRule.
Must not know: listeners, certificate contents (SDS `default` / `ROOTCA` come from the CA).
"""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import any_pb2, struct_pb2
from google.protobuf.message import Message

from sailmesh.model.mesh import MeshModel, MeshService, cluster_name
from sailmesh.model.policy import ClientTLS, effective_client_tls, effective_peer_auth
from sailmesh.resources.networking import ClientTLSSettings
from sailmesh.translate import diagnostics as codes
from sailmesh.translate.clusters import eds_cluster
from sailmesh.translate.config_source import sds
from sailmesh.translate.diagnostics import Diagnostic
from sailmesh.translate.tls_context import ROOT_CA, WORKLOAD_CERT

Tls = common_pb2.TlsParameters.TlsProtocol
# Istio's mTLS client ALPN (read by istio.alpn on Istio's Envoy; ours just sends it).
ISTIO_ALPN = ("istio-peer-exchange", "istio")
# Envoy's endpoint-metadata key for transport_socket_matches; Istio's label and value.
SOCKET_MATCH_KEY = "envoy.transport_socket_match"
TLS_MODE_LABEL = "security.istio.io/tlsMode"
# SIMPLE/MUTUAL without caCertificates: Istio verifies with the system roots.
SYSTEM_ROOTS = "/etc/ssl/certs/ca-certificates.crt"


def service_clusters(
    model: MeshModel, client_ns: str,
    assignments: dict[str, endpoint_pb2.ClusterLoadAssignment], diags: list[Diagnostic],
) -> tuple[dict[str, cluster_pb2.Cluster], dict[str, endpoint_pb2.ClusterLoadAssignment]]:
    """Every service port's cluster as a client in `client_ns` sees it. `assignments`: the
    mesh's endpoints (see `clusters.mesh_clusters`), re-labelled here for auto mTLS."""
    clusters: dict[str, cluster_pb2.Cluster] = {}
    endpoints: dict[str, endpoint_pb2.ClusterLoadAssignment] = {}
    for host in sorted(model.services):
        svc = model.services[host]
        for sp in svc.ports:
            name = cluster_name(sp.port, host)
            tls = effective_client_tls(model, client_ns, host, sp.port)
            cluster = eds_cluster(name)
            if not _apply_tls(cluster, tls, model, svc, sp.port, diags):
                continue  # fail closed: requests get 503, never unintended plaintext
            clusters[name] = cluster
            endpoints[name] = _labelled(model, assignments[name], host, sp.port)
    return clusters, endpoints


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


def pack(msg: Message) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(msg)
    return out
