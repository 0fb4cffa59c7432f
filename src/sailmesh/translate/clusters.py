"""Clusters and endpoints: every service port of the mesh as an EDS cluster.

Owns: Istio's outbound cluster shape (`outbound|<port>||<fqdn>`, EDS over ADS, 10 s
connect timeout, round robin), `BlackHoleCluster`, and ClusterLoadAssignments of READY
workloads. Must not know: routes or listeners (which clusters they name is their business).
"""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2 as ec
from envoy.config.endpoint.v3 import endpoint_pb2
from google.protobuf import duration_pb2

from sailmesh.model.mesh import MeshModel
from sailmesh.model.services import Endpoint, cluster_name
from sailmesh.translate.config_source import ads

BLACKHOLE = "BlackHoleCluster"
# Istio's default connectTimeout (meshConfig.connectTimeout).
CONNECT_TIMEOUT = duration_pb2.Duration(seconds=10)


def mesh_clusters(model: MeshModel) -> tuple[dict[str, cluster_pb2.Cluster],
                                              dict[str, endpoint_pb2.ClusterLoadAssignment]]:
    """Built once per model and shared by its proxies. Contract: callers must not mutate
    the dictionaries or the messages."""
    return model.shared(("mesh-clusters",), lambda: _mesh_clusters(model))


def _mesh_clusters(model: MeshModel) -> tuple[dict[str, cluster_pb2.Cluster],
                                              dict[str, endpoint_pb2.ClusterLoadAssignment]]:
    clusters: dict[str, cluster_pb2.Cluster] = {}
    assignments: dict[str, endpoint_pb2.ClusterLoadAssignment] = {}
    for host in sorted(model.services):
        for port in model.services[host].ports:
            name = cluster_name(port.port, host)
            clusters[name] = eds_cluster(name)
            assignments[name] = load_assignment(name, model.endpoints.get((host, port.port), ()))
    clusters[BLACKHOLE] = blackhole_cluster()
    return clusters, assignments


def eds_cluster(name: str) -> cluster_pb2.Cluster:
    return cluster_pb2.Cluster(
        name=name, type=cluster_pb2.Cluster.EDS,
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=ads(),
                                                                service_name=name),
        connect_timeout=CONNECT_TIMEOUT, lb_policy=cluster_pb2.Cluster.ROUND_ROBIN)


def blackhole_cluster() -> cluster_pb2.Cluster:
    """Istio's sink: a STATIC cluster with no endpoints (connections to it fail)."""
    return cluster_pb2.Cluster(name=BLACKHOLE, type=cluster_pb2.Cluster.STATIC,
                               connect_timeout=CONNECT_TIMEOUT)


def load_assignment(name: str,
                    endpoints: tuple[Endpoint, ...]) -> endpoint_pb2.ClusterLoadAssignment:
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    if endpoints:
        locality = cla.endpoints.add()
        for ep in sorted(endpoints, key=lambda e: (e.ip, e.port)):
            locality.lb_endpoints.append(ec.LbEndpoint(endpoint=ec.Endpoint(
                address=address_pb2.Address(socket_address=address_pb2.SocketAddress(
                    address=ep.ip, port_value=ep.port)))))
    return cla
