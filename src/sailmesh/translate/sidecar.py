"""Sidecar translation: (mesh model, sidecar proxy) → its listeners, routes and clusters.

Owns: putting inbound (`sidecar_inbound`) and outbound (`sidecar_outbound`) together for
one pod. Must not know: gateways, how resources reach Envoy, certificate contents (SDS
`default` / `ROOTCA` come from the CA side).
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping, MutableMapping
from datetime import datetime
from typing import cast

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.mesh import MeshModel
from sailmesh.model.proxy import Proxy
from sailmesh.model.workloads import Workload
from sailmesh.translate.clusters import BLACKHOLE, mesh_clusters
from sailmesh.translate.sidecar_inbound import sidecar_inbound
from sailmesh.translate.sidecar_outbound import sidecar_outbound


def sidecar_resources(model: MeshModel, proxy: Proxy, *, now: datetime) -> tuple[
        dict[str, listener_pb2.Listener], dict[str, route_pb2.RouteConfiguration],
        Mapping[str, cluster_pb2.Cluster], Mapping[str, endpoint_pb2.ClusterLoadAssignment],
        dict[str, secret_pb2.Secret], list[Diagnostic]]:
    """`model`: the whole mesh (not a namespace's view of it).

    Listeners, routes, clusters, endpoints, the SDS secrets that outbound TLS
    origination names (`credentialName`; the identity `default`/`ROOTCA` come from the CA
    side) and diagnostics.

    Clusters and endpoints are two layers (a `ChainMap`, the proxy's own first): the
    services' as its view sees them, the very mappings every sidecar of that view gets,
    so that publishing handles them once for all of them (`xds.cache`)."""
    # Outbound sees what the proxy's Sidecar resource imports (from every definition of a
    # host); inbound serves the pod's own Services whatever it imports (Istio: the
    # scope's egress hosts are outbound only).
    scoped = model.scoped(model.sidecar_scope(proxy))
    model = model.for_namespace(proxy.namespace)
    mesh, assignments = mesh_clusters(scoped)
    outbound = sidecar_outbound(scoped, proxy, assignments, now=now)
    # Service clusters come only from `outbound`: a cluster it leaves out (client TLS it
    # cannot build) must not come back as a plaintext mesh cluster.
    clusters = {BLACKHOLE: mesh[BLACKHOLE], **outbound.clusters}
    endpoints = dict(outbound.endpoints)
    listeners = dict(outbound.listeners)
    pod = next((w for w in model.workloads
                if (w.namespace, w.name) == (proxy.namespace, proxy.name)), None)
    # A proxy not (yet) reported as a workload still gets outbound; inbound needs its ports.
    workload = pod or Workload(proxy.namespace, proxy.name, proxy.labels, proxy.ip,
                               "default", ready=True)
    inbound = sidecar_inbound(model, workload)
    clusters.update(inbound.clusters)
    if inbound.listener is not None:
        listeners[inbound.listener.name] = inbound.listener
    # ChainMap's type asks for mutable layers; nothing writes to a ChainMap's shared layer.
    services = cast("MutableMapping[str, cluster_pb2.Cluster]", outbound.service_clusters)
    assigned = cast("MutableMapping[str, endpoint_pb2.ClusterLoadAssignment]",
                    outbound.service_endpoints)
    return (listeners, outbound.routes, ChainMap(clusters, services),
            ChainMap(endpoints, assigned), outbound.secrets, outbound.diagnostics)
