"""Tracing as Istio configures it when no tracing provider is set: operation names on routes
and a `tracing` block in every HTTP connection manager, with no tracer to send spans to.

Owns: the decorator operation of a route (Istio's `<host>:<port>/*` for a service's default
route, `<host>:<port><path>` or `<VirtualService>:<port><path>` for a VirtualService's) and
the HCM tracing settings (sampling, Istio's custom tags). Must not know: listeners.

Why it matters without a tracer: with tracing on, Envoy on an outbound listener (sidecar
outbound and gateways, traffic_direction OUTBOUND) sends the route's operation upstream as
`x-envoy-decorator-operation` — the `"X-Envoy-Decorator-Operation": "httpbin.org:80/*"` of
istio.io's egress pages — and on an inbound listener takes that header off the request (the
app never sees it) and answers a caller without one with the inbound route's operation.
No provider is configured, so Envoy's tracer is the null tracer: no span leaves the proxy.

Istio (pilot networking/core tracing.go, legacy mesh-config path taken when no Telemetry
resource sets tracing): meshConfig.enableTracing (default true) turns it on; client and
overall sampling 100%, random sampling `defaultConfig.tracing.sampling` or else
PILOT_TRACE_SAMPLING (1%); custom tags: the proxy's canonical service and revision, mesh
id, namespace and cluster id as literals, and the RBAC filter's dry-run results.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.type.metadata.v3 import metadata_pb2
from envoy.type.tracing.v3 import custom_tag_pb2
from envoy.type.v3 import percent_pb2

from sailmesh.model.services import parse_cluster_name
from sailmesh.model.workloads import CLUSTER_ID, canonical_revision, canonical_service
from sailmesh.resources.operator import MeshConfig

Tracing: TypeAlias = hcm_pb2.HttpConnectionManager.Tracing
DEFAULT_SAMPLING = 1.0  # percent: Istio's PILOT_TRACE_SAMPLING default
RBAC_FILTER = "envoy.filters.http.rbac"
# The RBAC filter's shadow (dry-run) results in the request's dynamic metadata.
_DRY_RUN_TAGS = {
    "istio.authorization.dry_run.allow_policy.name": "istio_dry_run_allow_shadow_effective_policy_id",
    "istio.authorization.dry_run.allow_policy.result": "istio_dry_run_allow_shadow_engine_result",
    "istio.authorization.dry_run.deny_policy.name": "istio_dry_run_deny_shadow_effective_policy_id",
    "istio.authorization.dry_run.deny_policy.result": "istio_dry_run_deny_shadow_engine_result",
}


def trace_operation(host: str, port: int) -> str:
    """A service's default route (outbound) or a port's inbound route: `<host>:<port>/*`."""
    return f"{host}:{port}/*"


def route_operation(route: rc.Route, virtual_service: str, port: int) -> str:
    """A VirtualService route's operation: the path it matches (`/*` for none, a prefix with
    `*`, an exact path, a regex as written) after the host and port of its one destination
    cluster, or after the VirtualService's name and the listener port when there is no single
    service cluster (weighted destinations, redirects, direct responses)."""
    match = route.match
    kind = match.WhichOneof("path_specifier")
    path = {"prefix": f"{match.prefix}*", "path": match.path,
            "safe_regex": match.safe_regex.regex}.get(kind or "", "/*")
    parsed = parse_cluster_name(route.route.cluster) if route.HasField("route") else None
    if parsed is not None:
        _, cluster_port, _, host = parsed
        return f"{host}:{cluster_port}{path}"
    return f"{virtual_service}:{port}{path}"


def hcm_tracing(mesh: MeshConfig, namespace: str, labels: Mapping[str, str]) -> Tracing | None:
    """The `tracing` of every HTTP connection manager of the proxy of a pod (its namespace
    and labels); None when meshConfig.enableTracing is false."""
    if mesh.enable_tracing is False:
        return None
    tracing = Tracing(client_sampling=percent_pb2.Percent(value=100.0),
                      random_sampling=percent_pb2.Percent(value=_sampling(mesh)),
                      overall_sampling=percent_pb2.Percent(value=100.0))
    literals = {
        "istio.canonical_service": canonical_service(labels, "unknown"),
        "istio.canonical_revision": canonical_revision(labels),
        "istio.mesh_id": mesh.trust_domain,  # ISTIO_META_MESH_ID: meshID, else trust domain
        "istio.namespace": namespace,
        "istio.cluster_id": CLUSTER_ID,
    }
    tags = [custom_tag_pb2.CustomTag(tag=k, literal=custom_tag_pb2.CustomTag.Literal(value=v))
            for k, v in literals.items()]
    for tag, key in _DRY_RUN_TAGS.items():
        metadata = custom_tag_pb2.CustomTag.Metadata(
            kind=metadata_pb2.MetadataKind(request=metadata_pb2.MetadataKind.Request()),
            metadata_key=metadata_pb2.MetadataKey(
                key=RBAC_FILTER, path=[metadata_pb2.MetadataKey.PathSegment(key=key)]))
        tags.append(custom_tag_pb2.CustomTag(tag=tag, metadata=metadata))
    tracing.custom_tags.extend(sorted(tags, key=lambda t: t.tag))
    return tracing


def _sampling(mesh: MeshConfig) -> float:
    """meshConfig.defaultConfig.tracing.sampling when set (non-zero; above 100 means 1),
    else Istio's default of 1%."""
    value = float((((mesh.default_config or {}).get("tracing") or {}).get("sampling")) or 0.0)
    if value == 0.0:
        return DEFAULT_SAMPLING
    return 1.0 if value > 100.0 else value


__all__ = ["Tracing", "hcm_tracing", "route_operation", "trace_operation"]
