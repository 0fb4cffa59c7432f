"""Translation: (mesh model, proxy) → the Envoy v3 resources that proxy should run.

Owns: `translate_proxy` and the `ProxyConfig` it returns (typed protobuf messages keyed by
resource name, plus diagnostics). Pure: no IO, no clock (`now` is an argument), no env
vars, no globals; a problem becomes a `Diagnostic` and the affected piece is left out, so
that the rest keeps serving. Must not know: how resources reach Envoy (see `xds`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from google.protobuf.message import Message

from sailmesh.model import diagnostics as codes
from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.gateway_merge import GatewayServer
from sailmesh.model.indexes import bound_gateways
from sailmesh.model.mesh import MeshModel
from sailmesh.model.proxy import Proxy
from sailmesh.resources.networking import VirtualService
from sailmesh.translate import type_urls
from sailmesh.translate.client_tls import service_clusters
from sailmesh.translate.clusters import BLACKHOLE, mesh_clusters
from sailmesh.translate.listeners import gateway_listeners
from sailmesh.translate.origination import file_check
from sailmesh.translate.sidecar import sidecar_resources
from sailmesh.translate.sniffing import gateway_mesh_http_alpn


@dataclass(frozen=True)
class ProxyConfig:
    """Everything one proxy should run. Contract: callers must not mutate the messages."""

    listeners: Mapping[str, listener_pb2.Listener] = field(default_factory=dict)
    routes: Mapping[str, route_pb2.RouteConfiguration] = field(default_factory=dict)
    clusters: Mapping[str, cluster_pb2.Cluster] = field(default_factory=dict)
    endpoints: Mapping[str, endpoint_pb2.ClusterLoadAssignment] = field(default_factory=dict)
    secrets: Mapping[str, secret_pb2.Secret] = field(default_factory=dict)
    diagnostics: tuple[Diagnostic, ...] = ()

    def by_type_url(self) -> dict[str, Mapping[str, Message]]:
        """The resources by type: the mappings handed through as they are (layers shared
        by the proxies of a view stay the same objects, see `sidecar_resources`)."""
        return {
            type_urls.LISTENER: self.listeners,
            type_urls.ROUTE: self.routes,
            type_urls.CLUSTER: self.clusters,
            type_urls.ENDPOINT: self.endpoints,
            type_urls.SECRET: self.secrets,
        }


def translate_proxy(model: MeshModel, proxy: Proxy, *, now: datetime) -> ProxyConfig:
    if proxy.kind == "sidecar":
        listeners, routes, sidecar_clusters, sidecar_endpoints, secrets, diags = (
            sidecar_resources(model, proxy, now=now))
        return ProxyConfig(listeners=listeners, routes=routes, clusters=sidecar_clusters,
                           endpoints=sidecar_endpoints, secrets=secrets,
                           diagnostics=tuple(diags))
    model = model.for_namespace(proxy.namespace)
    clusters, endpoints = mesh_clusters(model)
    if proxy.kind != "router":
        return ProxyConfig(clusters=clusters, endpoints=endpoints, diagnostics=(Diagnostic(
            "info", f"Pod {proxy.namespace}/{proxy.name}", None,
            "sidecar listeners are not translated yet; only clusters are served",
            codes.SIDECAR_NOT_TRANSLATED),))
    merge = model.gateways_for(proxy)
    built = gateway_listeners(model, proxy, merge.servers, now=now)
    # Gateways pick their upstream TLS as sidecars do: DestinationRules, else auto mTLS.
    tls_diags: list[Diagnostic] = []
    secrets = dict(built.secrets)  # plus the credentials of TLS origination (egress)
    services, labelled = service_clusters(model, proxy.namespace, endpoints, tls_diags,
                                          client_labels=proxy.labels, secrets=secrets,
                                          now=now, files=file_check(proxy))
    listeners, routes = gateway_mesh_http_alpn(built.listeners, built.routes, services)
    return ProxyConfig(
        listeners=listeners, routes=routes,
        clusters={BLACKHOLE: clusters[BLACKHOLE], **services},
        endpoints=labelled, secrets=secrets,
        diagnostics=tuple(dict.fromkeys(
            [*merge.diagnostics, *_model_diagnostics(model, merge.servers), *built.diagnostics,
             *tls_diags])),
    )


def _model_diagnostics(model: MeshModel,
                       servers: Sequence[GatewayServer]) -> list[Diagnostic]:
    """Model diagnostics about VirtualServices bound to this proxy's Gateways."""
    keys = {gs.gateway_key for gs in servers}
    refs = {vs.ref for vs in model.snapshot.of_kind(VirtualService)
            if keys & set(bound_gateways(vs))}
    return [d for d in model.diagnostics if d.ref in refs]


__all__ = ["Diagnostic", "ProxyConfig", "translate_proxy"]
