"""What a sidecar's Sidecar resource does to one hop: the outbound view the client proxy
really has (`MeshModel.scoped`), and the client side of a host that view leaves out.

Owns: explaining a host that the client's Sidecar does not import, as the running mesh
treats it (`translate.sidecar_outbound`): with outboundTrafficPolicy ALLOW_ANY the
connection passes through untouched (no DestinationRule, no mesh mTLS: the application's
own bytes reach the server); with REGISTRY_ONLY it ends in the `block_all` virtual host
(HTTP 502) or `BlackHoleCluster` (TCP reset). Must not know: Envoy, IO, output.
"""

from __future__ import annotations

from sailmesh.analysis.context import AnalysisContext
from sailmesh.analysis.hop import ClientSide, Destination, Source
from sailmesh.model.mesh import MeshModel
from sailmesh.model.proxy import Proxy
from sailmesh.model.sidecar_scope import SidecarScope

REGISTRY_ONLY = "REGISTRY_ONLY"


def client_scope(ctx: AnalysisContext, source: Source) -> SidecarScope:
    """The scope of the Sidecar resource that applies to the source's proxy."""
    labels = dict(source.workload.labels) if source.workload else {}
    name = source.workload.name if source.workload else ""
    return ctx.model.sidecar_scope(Proxy("sidecar", source.namespace, name, labels, ""))


def outbound_view(ctx: AnalysisContext, source: Source) -> MeshModel:
    """The model as the source's proxy sees it outbound (the whole model for gateways and
    clients without a sidecar)."""
    if source.kind != "sidecar":
        return ctx.model
    return ctx.model.scoped(client_scope(ctx, source))


def not_imported(ctx: AnalysisContext, source: Source, dest: Destination, app_tls: bool,
                 http: bool) -> ClientSide | None:
    """The client side when the source's Sidecar does not import `dest`, else None."""
    if source.kind != "sidecar" or dest.definition is None:
        return None
    scope = client_scope(ctx, source)
    view = ctx.model.scoped(scope)
    if scope.is_default or dest.definition.fqdn in view.services:
        return None
    policy = str((view.mesh.outbound_traffic_policy or {}).get("mode") or "ALLOW_ANY").upper()
    where = (f"{scope.sidecar} (egress hosts "
             + ", ".join(f"{ns}/{host}" for ns, host in scope.imports)
             + f") does not import {dest.host}")
    app = "TLS" if app_tls else "plaintext"
    if policy == REGISTRY_ONLY:
        why = f"{where}, and outboundTrafficPolicy is REGISTRY_ONLY: the sidecar blocks it"
        return ClientSide(True, "NONE", "blocked (REGISTRY_ONLY)", app_tls, http=http,
                          reasons=[why], left_out=why,
                          left_out_error="502 (route block_all: host not in the sidecar's "
                          "registry)" if http else "connection reset (BlackHoleCluster)")
    return ClientSide(True, "NONE", "passthrough (ALLOW_ANY)", app_tls, http=http, reasons=[
        f"{where}: with outboundTrafficPolicy ALLOW_ANY the sidecar passes the connection "
        f"through to its original address (PassthroughCluster) without DestinationRule or "
        f"mesh mTLS: the application's {app} goes out unchanged"])
