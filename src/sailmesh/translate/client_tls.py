"""Client TLS of outbound service clusters, shared by sidecars and gateways.

Owns: `service_clusters` — one `outbound|<port>||<fqdn>` EDS cluster per service port, with
the transport socket `model.policy.effective_client_tls` decides for the client's namespace
(DISABLE / SIMPLE / MUTUAL / ISTIO_MUTUAL / auto mTLS), and endpoints labelled
`tlsMode: istio` for auto mTLS. Istio applies the same rules to gateways and sidecars,
so a gateway reaches a STRICT workload over mTLS without any DestinationRule.
Must not know: listeners, certificate contents (SDS `default` / `ROOTCA` come from the CA).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2, protocol_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import struct_pb2

from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.inbound import mesh_client_alpn
from sailmesh.model.injection import TLS_MODE_LABEL
from sailmesh.model.mesh import MeshModel
from sailmesh.model.policy import (
    ClientTLS,
    client_label_key,
    client_tls_of,
    destination_rule_sources,
    effective_peer_auth,
    merged_rule,
)
from sailmesh.model.rbac import Access
from sailmesh.model.services import MeshService, ServicePort, cluster_name
from sailmesh.resources.networking import ClientTLSSettings, DestinationRule, Subset
from sailmesh.translate.config_source import pack, sds
from sailmesh.translate.egress_clusters import service_cluster
from sailmesh.translate.origination import (
    HTTP_OPTIONS_KEY,
    FileCheck,
    OriginationInput,
    originate,
)
from sailmesh.translate.tls_context import ROOT_CA, WORKLOAD_CERT

Tls = common_pb2.TlsParameters.TlsProtocol
H2_OPTIONS = hpo.HttpProtocolOptions(explicit_http_config=hpo.HttpProtocolOptions.ExplicitHttpConfig(
    http2_protocol_options=protocol_pb2.Http2ProtocolOptions()))
# Envoy's endpoint-metadata key for transport_socket_matches; Istio's label and value.
SOCKET_MATCH_KEY = "envoy.transport_socket_match"


def service_clusters(
    model: MeshModel, client_ns: str,
    assignments: dict[str, endpoint_pb2.ClusterLoadAssignment], diags: list[Diagnostic],
    *, client_labels: Mapping[str, str] | None = None, sidecar: bool = False,
    now: datetime, secrets: dict[str, secret_pb2.Secret] | None = None,
    files: FileCheck | None = None, access: Access | None = None,
) -> tuple[Mapping[str, cluster_pb2.Cluster], Mapping[str, endpoint_pb2.ClusterLoadAssignment]]:
    """Every visible service port's cluster (and DestinationRule subset cluster) as a client
    in `client_ns` with `client_labels` sees it. `assignments`: the mesh's endpoints (see
    `clusters.mesh_clusters`), re-labelled here for auto mTLS. SDS secrets that
    origination names (`credentialName`) are added to `secrets`. `files` checks the
    certificate files origination names, in the client proxy's own filesystem. `access`:
    whether the client is served credentialName keys (`MeshModel.credential_access`).
    Contract: callers must not mutate the mappings returned (they may be shared)."""
    # Clients in one namespace that the same DestinationRules apply to see the same
    # clusters: the view is built once per push and shared.
    view = model.shared(
        ("cluster-view", client_ns, sidecar, client_label_key(model, client_ns, client_labels),
         access),
        functools.partial(_view, model, client_ns, client_labels, sidecar, assignments, now,
                          access))
    if files is None or not view.file_hosts:
        diags.extend(view.diagnostics)
        if secrets is not None:
            secrets.update(view.secrets)
        return view.clusters, view.endpoints
    # Origination checks files in this proxy's own filesystem: those hosts are its own.
    clusters: dict[str, cluster_pb2.Cluster] = {}
    endpoints: dict[str, endpoint_pb2.ClusterLoadAssignment] = {}
    for svc, dr, built in view.hosts:
        if svc.fqdn in view.file_hosts:
            built = _host_clusters(model, svc, client_ns, sidecar, dr, assignments, now, files,
                                   access)
        clusters.update(built.clusters)
        endpoints.update(built.endpoints)
        diags.extend(built.diagnostics)
        if secrets is not None:
            secrets.update(built.secrets)
    return clusters, endpoints


@dataclass(frozen=True)
class _HostClusters:
    """One host's clusters for one view. Contract: shared between proxies, never mutated."""

    clusters: dict[str, cluster_pb2.Cluster]
    endpoints: dict[str, endpoint_pb2.ClusterLoadAssignment]
    diagnostics: list[Diagnostic]
    secrets: dict[str, secret_pb2.Secret]


@dataclass(frozen=True)
class _View:
    """Every visible host's clusters as one namespace's clients see them (built without
    file checks), merged; `file_hosts`: the hosts whose origination reads files."""

    hosts: list[tuple[MeshService, DestinationRule | None, _HostClusters]]
    file_hosts: frozenset[str]
    clusters: dict[str, cluster_pb2.Cluster]
    endpoints: dict[str, endpoint_pb2.ClusterLoadAssignment]
    diagnostics: list[Diagnostic]
    secrets: dict[str, secret_pb2.Secret]


def _view(model: MeshModel, client_ns: str, client_labels: Mapping[str, str] | None,
          sidecar: bool, assignments: dict[str, endpoint_pb2.ClusterLoadAssignment],
          now: datetime, access: Access | None) -> _View:
    view = _View([], frozenset(), {}, {}, [], {})
    file_hosts = []
    for host in sorted(model.services):
        svc = model.services[host]
        if not svc.visible_to(client_ns):
            continue
        sources = destination_rule_sources(model, client_ns, host, client_labels)
        dr = merged_rule(sources)
        # One host's clusters depend on the host, the client's namespace and the rules that
        # apply (named in the key; `control.memo` carries them to the next push only while
        # those rules, the PeerAuthentications and the model's context stay the same). The
        # assignments come from the model alone (`clusters.mesh_clusters`).
        built = model.shared(
            ("service-clusters", host, client_ns, sidecar, tuple(d.ref for d in sources),
             access),
            functools.partial(_host_clusters, model, svc, client_ns, sidecar, dr,
                              assignments, now, None, access))
        view.hosts.append((svc, dr, built))
        if _reads_files(model, svc, dr):
            file_hosts.append(host)
        view.clusters.update(built.clusters)
        view.endpoints.update(built.endpoints)
        view.diagnostics.extend(built.diagnostics)
        view.secrets.update(built.secrets)
    return dataclasses.replace(view, file_hosts=frozenset(file_hosts))


def _host_clusters(model: MeshModel, svc: MeshService, client_ns: str, sidecar: bool,
                   dr: DestinationRule | None,
                   assignments: dict[str, endpoint_pb2.ClusterLoadAssignment], now: datetime,
                   files: FileCheck | None, access: Access | None) -> _HostClusters:
    out = _HostClusters({}, {}, [], {})
    host = svc.fqdn
    subsets: list[Subset | None] = [None, *(dr.spec.subsets if dr else [])]
    for sp in svc.ports:
        if sp.mesh_protocol == "UDP":
            continue
        for subset in subsets:
            sub = subset.name if subset else None
            name = cluster_name(sp.port, host, sub or "")
            tls = client_tls_of(model, dr, sp.port, sub)
            cluster, cla = service_cluster(model, svc, sp.port, name,
                                           assignments.get(cluster_name(sp.port, host)),
                                           subset.labels if subset else None, out.diagnostics)
            context = _Context(svc, sp, client_ns, sidecar, dr, out.secrets, now, files,
                               access)
            if not _apply_tls(cluster, tls, model, context, out.diagnostics):
                continue  # fail closed: requests get 503, never unintended plaintext
            if sp.http2 and HTTP_OPTIONS_KEY not in cluster.typed_extension_protocol_options:
                # Istio: HTTP/2 upstream on ports declared HTTP/2 (h2c in plaintext).
                cluster.typed_extension_protocol_options[HTTP_OPTIONS_KEY].Pack(H2_OPTIONS)
            out.clusters[name] = cluster
            if cla is not None:
                out.endpoints[name] = _labelled(model, cla, host, sp.port)
    return out


def _reads_files(model: MeshModel, svc: MeshService, dr: DestinationRule | None) -> bool:
    """Whether some cluster of `svc` originates TLS (SIMPLE / MUTUAL), whose certificate
    files must be readable by the proxy itself."""
    if dr is None:
        return False
    subsets = [None, *(s.name for s in dr.spec.subsets)]
    return any(client_tls_of(model, dr, sp.port, sub).mode in ("SIMPLE", "MUTUAL")
               for sp in svc.ports for sub in subsets)


@dataclass(frozen=True)
class _Context:
    svc: MeshService
    port: ServicePort
    client_ns: str
    sidecar: bool
    rule: DestinationRule | None
    secrets: dict[str, secret_pb2.Secret]
    now: datetime
    files: FileCheck | None
    access: Access | None


def _apply_tls(cluster: cluster_pb2.Cluster, tls: ClientTLS, model: MeshModel,
               context: _Context, diags: list[Diagnostic]) -> bool:
    """Set the cluster's client TLS; False when it cannot be built (leave the cluster out)."""
    svc = context.svc
    if tls.mode == "DISABLE":
        return True
    if tls.mode == "AUTO":
        if svc.location == "MESH_EXTERNAL":
            return True  # Istio: no auto mTLS towards hosts outside the mesh
        # Istio auto mTLS: endpoints labelled tlsMode=istio get ISTIO_MUTUAL, others plaintext.
        mtls = _istio_mutual(model, svc, context.port, None)
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
        cluster.transport_socket.CopyFrom(_socket(_istio_mutual(model, svc, context.port,
                                                                 tls.settings)))
        return True
    rule = context.rule
    dns_host = (svc.hostname if svc.hostname and not svc.hostname.startswith("*")
                and svc.resolution in ("DNS", "DNS_ROUND_ROBIN") else None)
    built = originate(OriginationInput(
        tls=tls, namespace=context.client_ns, http=context.port.mesh_protocol == "HTTP",
        default_sni=dns_host, sidecar=context.sidecar,
        selector=bool(rule is not None and rule.spec.workload_selector),
        field="spec.trafficPolicy.tls", cluster=cluster.name, files=context.files,
        access=context.access),
        model.secret, context.now, diags)
    if built is None:
        return False
    cluster.transport_socket.CopyFrom(_socket(built.context))
    if built.http_options is not None:
        cluster.typed_extension_protocol_options[HTTP_OPTIONS_KEY].Pack(built.http_options)
    if context.secrets is not None:
        context.secrets.update(built.secrets)
    return True


def _istio_mutual(model: MeshModel, svc: MeshService, sp: ServicePort,
                  settings: ClientTLSSettings | None) -> tls_pb2.UpstreamTlsContext:
    """Istio ISTIO_MUTUAL: SDS `default` + `ROOTCA`, SNI `outbound_.<port>_.<subset>_.<fqdn>`,
    peers verified by the SPIFFE ids of the service's endpoints (or DR subjectAltNames),
    and the mesh's ALPN (`model.inbound.mesh_client_alpn`): HTTP ports are proxied as
    HTTP/1.1, everything else as bytes."""
    port = sp.port
    sni = (settings.sni if settings and settings.sni else f"outbound_.{port}_._.{svc.fqdn}")
    ctx = tls_pb2.UpstreamTlsContext(sni=sni)
    common = ctx.common_tls_context
    # A sniffed port's cluster also carries bytes: it offers theirs, and its HTTP path
    # overrides it (`sniffing.mesh_http_alpn_filter`).
    common.alpn_protocols.extend(mesh_client_alpn(sp.mesh_protocol == "HTTP" and not sp.sniffed,
                                                  http2=sp.http2))
    common.tls_certificate_sds_secret_configs.append(sds(WORKLOAD_CERT))
    sans = list(settings.subject_alt_names) if settings else []
    if not sans:
        sans = [f"spiffe://{model.mesh.trust_domain}/ns/{svc.namespace}/sa/{account}"
                for account in _identities(model, svc, port)]
    combined = common.combined_validation_context
    # Required by Envoy even when empty (a service without endpoints has no identities to
    # pin yet; the peer is still verified against ROOTCA).
    combined.default_validation_context.SetInParent()
    for san in sans:
        combined.default_validation_context.match_typed_subject_alt_names.append(
            common_pb2.SubjectAltNameMatcher(
                san_type=common_pb2.SubjectAltNameMatcher.SanType.URI,
                matcher=string_pb2.StringMatcher(exact=san)))
    combined.validation_context_sds_secret_config.CopyFrom(sds(ROOT_CA))
    common.tls_params.CopyFrom(common_pb2.TlsParameters(
        tls_minimum_protocol_version=Tls.TLSv1_2, tls_maximum_protocol_version=Tls.TLSv1_3))
    return ctx


def _identities(model: MeshModel, svc: MeshService, port: int) -> list[str]:
    """The service accounts a client of the port expects to meet: a Kubernetes Service's
    pods', ready or not (`MeshModel.identities`), else the definition's endpoints'."""
    if svc.source is None and (svc.fqdn, port) in model.identities:
        return list(model.identities[(svc.fqdn, port)])
    return sorted({ep.service_account for ep in model.endpoints.get((svc.fqdn, port), ())})


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
