"""The shape of one outbound cluster by where its endpoints come from, and subset clusters.

Owns: cluster type per registry entry (Istio's ServiceEntry mapping: Kubernetes Services
and STATIC entries → EDS; DNS → STRICT_DNS; DNS_ROUND_ROBIN → LOGICAL_DNS; NONE →
ORIGINAL_DST), DNS endpoints inline in the cluster (Envoy resolves them in the proxy's
pod, so /etc/hosts entries count), and the endpoint filter of a DestinationRule subset.
Must not know: TLS (see `client_tls`, `origination`), listeners, routes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2

from sailmesh.model import diagnostics as codes
from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.mesh import MeshModel
from sailmesh.model.services import Endpoint, MeshService
from sailmesh.model.workloads import selector_matches
from sailmesh.translate.clusters import CONNECT_TIMEOUT, eds_cluster, load_assignment

Cluster: TypeAlias = cluster_pb2.Cluster


def service_cluster(model: MeshModel, svc: MeshService, port: int, name: str,
                    assignment: endpoint_pb2.ClusterLoadAssignment | None,
                    subset_labels: Mapping[str, str] | None,
                    diags: list[Diagnostic],
                    ) -> tuple[Cluster, endpoint_pb2.ClusterLoadAssignment | None]:
    """The cluster for `svc:port` (named `name`) and its EDS assignment, if it uses EDS."""
    if svc.resolution in ("EDS", "STATIC"):
        cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
        if assignment is not None:
            cla.CopyFrom(assignment)
            cla.cluster_name = name
        if subset_labels:
            _keep_subset(model, svc, port, cla, subset_labels)
        return eds_cluster(name), cla
    if svc.resolution == "NONE":
        # Istio: the application's own destination address is used as is.
        return Cluster(name=name, type=Cluster.ORIGINAL_DST, connect_timeout=CONNECT_TIMEOUT,
                       lb_policy=Cluster.CLUSTER_PROVIDED), None
    endpoints = model.endpoints.get((svc.fqdn, port), ())
    kind = Cluster.STRICT_DNS if svc.resolution == "DNS" else Cluster.LOGICAL_DNS
    if kind == Cluster.LOGICAL_DNS and len(endpoints) > 1:
        # Envoy: a LOGICAL_DNS cluster has exactly one endpoint.
        diags.append(Diagnostic(
            "warning", svc.source or svc.fqdn, "spec.endpoints",
            f"resolution DNS_ROUND_ROBIN takes one endpoint; {len(endpoints)} are given, "
            f"only {endpoints[0].ip} is used for {svc.fqdn}:{port}",
            codes.DNS_ROUND_ROBIN_ENDPOINTS))
        endpoints = endpoints[:1]
    # Envoy's default refresh (5 s) is kept: the refresh-rate fields of Cluster are
    # deprecated in the Envoy we run, and a short refresh picks up hosts-file changes.
    cluster = Cluster(name=name, type=kind, connect_timeout=CONNECT_TIMEOUT,
                      lb_policy=Cluster.ROUND_ROBIN, dns_lookup_family=Cluster.V4_ONLY)
    cluster.load_assignment.CopyFrom(load_assignment(name, endpoints))
    _record_pod_addresses(model, cluster, endpoints)
    return cluster, None


def _record_pod_addresses(model: MeshModel, cluster: Cluster,
                          endpoints: tuple[Endpoint, ...]) -> None:
    """Put what the pods' hosts files say for each endpoint name into the cluster.

    After a failed lookup Envoy backs off up to ten refresh periods (50 s) before asking
    again, so a name whose stand-in is applied after its ServiceEntry would stay `503 UH`
    that long. A cluster whose configuration changes is rebuilt and resolved at once: with
    the address in its metadata, the cluster changes exactly when the name starts (or
    stops) resolving, and the order of applying no longer matters."""
    seen = {ep.ip: model.pod_hosts.get(ep.ip.lower()) for ep in endpoints
            if ep.ip.lower() in model.pod_hosts}
    if seen:
        cluster.metadata.filter_metadata["sailmesh"].update(
            {"pod_hosts": {name: addr or "" for name, addr in sorted(seen.items())}})


def _keep_subset(model: MeshModel, svc: MeshService, port: int,
                 cla: endpoint_pb2.ClusterLoadAssignment,
                 wanted: Mapping[str, str]) -> None:
    """Drop endpoints whose labels (pod labels, or a ServiceEntry endpoint's) do not match."""
    pods = {f"{w.namespace}/{w.name}": w.labels for w in model.workloads}
    labels = {(ep.ip, ep.port): (dict(ep.labels) or pods.get(ep.workload, {}))
              for ep in model.endpoints.get((svc.fqdn, port), ())}
    for locality in cla.endpoints:
        keep = [lb for lb in locality.lb_endpoints
                if selector_matches(wanted, labels.get(
                    (lb.endpoint.address.socket_address.address,
                     lb.endpoint.address.socket_address.port_value), {}))]
        del locality.lb_endpoints[:]
        locality.lb_endpoints.extend(keep)


__all__ = ["service_cluster"]
