"""Istio's standard metric labels from the tags of one series a proxy counted.

Owns: the rules of Istio's standard labels (istio.io "Istio Standard Metrics"):
1. `reporter` is `destination` for a server sidecar's inbound entry and `source` for a
   client proxy's outbound entry (sidecars and gateways alike).
2. The reporting proxy names its own side from what the control plane knows of it; the
   other side is named by address: the peer pod's workload when that pod runs a proxy,
   else `unknown` (Istio knows a peer only through its proxy's metadata exchange).
3. Principals come from the certificates of the connection itself: at the destination the
   downstream peer and local certificate URI SANs; at the source the upstream ones.
   No certificate: `unknown`.
4. `connection_security_policy` is `mutual_tls` or `none` at the destination (a peer
   certificate was verified or not) and `unknown` at the source, as in Istio.
5. `destination_service` is the host the request was for: at the source the host of the
   `outbound|port|subset|host` cluster; at the destination the Host header's service when
   it selects the pod, else a service selecting the pod on that port.
6. `request_protocol` is `http`, `grpc` (content type application/grpc) or `tcp`.
The tags are those of `sailmesh.translate.telemetry_stats` (the proxy's facts: peer
address, certificate SANs, cluster, Host header, outcome); a missing fact is an empty tag.
Must not know: how the tags are read from the proxy, how metrics are stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sailmesh.telemetry.directory import CLUSTER_ID, UNKNOWN, Directory, Peer, ServiceName

# Label names in Istio's order (its Prometheus output lists them so).
PEER_LABELS = (
    "reporter", "source_workload", "source_canonical_service", "source_canonical_revision",
    "source_workload_namespace", "source_principal", "source_app", "source_version",
    "source_cluster", "destination_workload", "destination_workload_namespace",
    "destination_principal", "destination_app", "destination_version", "destination_service",
    "destination_canonical_service", "destination_canonical_revision",
    "destination_service_name", "destination_service_namespace", "destination_cluster",
    "request_protocol")
HTTP_LABELS = (*PEER_LABELS, "response_code", "grpc_response_status", "response_flags",
               "connection_security_policy")
TCP_LABELS = (*PEER_LABELS, "response_flags", "connection_security_policy")

REPORTER = {"inbound": "destination", "outbound": "source"}
# Clusters that are not a service host (Istio reports them as the service name).
SPECIAL_CLUSTERS = ("PassthroughCluster", "BlackHoleCluster", "InboundPassthroughCluster")
Tags = Mapping[str, str]


@dataclass(frozen=True)
class Ends:
    """Both ends of one series, and how the connection between them was secured."""

    source: Peer | None
    destination: Peer | None
    source_principal: str
    destination_principal: str
    security: str  # connection_security_policy
    service: ServiceName | None
    service_host: str
    # TLS an outbound proxy originated to a non-mesh peer (SIMPLE/MUTUAL), and the SNI of
    # TLS it passed through: for the dashboard's badges, not Istio labels.
    upstream_tls: str = ""
    passthrough_sni: str = ""
    cluster: str = ""


def _tag(tags: Tags, name: str) -> str:
    # Envoy renders a missing value as "" in a stats tag ("-" in some operators).
    value = tags.get(name, "")
    return "" if value == "-" else value


def ends(tags: Tags, direction: str, reporter: Peer, directory: Directory) -> Ends:
    authority = _tag(tags, "authority")
    peer_san = _tag(tags, "peer_san")
    if direction == "inbound":
        peer = directory.pods.get(_tag(tags, "peer_ip"))
        port = _tag(tags, "port")
        service = directory.service_of(reporter, authority, int(port) if port.isdigit() else None)
        return Ends(
            source=peer if peer is not None and peer.has_proxy else None,
            destination=reporter,
            source_principal=peer_san or UNKNOWN,
            destination_principal=_tag(tags, "local_san") or UNKNOWN,
            security="mutual_tls" if peer_san else "none",
            service=service,
            service_host=service.host if service else (_host(authority) or UNKNOWN))
    cluster = _tag(tags, "cluster")
    host = _cluster_host(cluster)
    service = directory.services.get(host)
    return Ends(
        source=reporter,
        destination=directory.pods.get(_tag(tags, "peer_ip")),
        source_principal=_tag(tags, "local_san") or UNKNOWN,
        destination_principal=peer_san or UNKNOWN,
        security=UNKNOWN,
        service=service,
        service_host=host if service else (_host(authority) or host or UNKNOWN),
        upstream_tls=_tag(tags, "tls"),
        passthrough_sni=_tag(tags, "sni"),
        cluster=cluster)


def peer_labels(direction: str, e: Ends, protocol: str) -> dict[str, str]:
    src, dst, svc = e.source, e.destination, e.service
    return {
        "reporter": REPORTER[direction],
        "source_workload": src.workload if src else UNKNOWN,
        "source_canonical_service": src.canonical_service if src else UNKNOWN,
        "source_canonical_revision": src.canonical_revision if src else "latest",
        "source_workload_namespace": src.namespace if src else UNKNOWN,
        "source_principal": e.source_principal,
        "source_app": src.app if src else UNKNOWN,
        "source_version": src.version if src else UNKNOWN,
        "source_cluster": CLUSTER_ID if src else UNKNOWN,
        "destination_workload": dst.workload if dst else UNKNOWN,
        "destination_workload_namespace": dst.namespace if dst else UNKNOWN,
        "destination_principal": e.destination_principal,
        "destination_app": dst.app if dst else UNKNOWN,
        "destination_version": dst.version if dst else UNKNOWN,
        "destination_service": e.service_host,
        "destination_canonical_service": dst.canonical_service if dst else UNKNOWN,
        "destination_canonical_revision": dst.canonical_revision if dst else "latest",
        "destination_service_name": svc.name if svc else _special(e.cluster),
        "destination_service_namespace": svc.namespace if svc else UNKNOWN,
        "destination_cluster": CLUSTER_ID if dst else UNKNOWN,
        "request_protocol": protocol,
    }


def http_labels(tags: Tags, direction: str, reporter: Peer,
                directory: Directory) -> tuple[dict[str, str], Ends]:
    e = ends(tags, direction, reporter, directory)
    grpc = _tag(tags, "content_type") == "application/grpc"
    labels = peer_labels(direction, e, "grpc" if grpc else "http")
    labels.update({
        "response_code": _tag(tags, "code") or "0",
        "grpc_response_status": _tag(tags, "grpc") if grpc else "",
        "response_flags": _tag(tags, "flags") or "-",
        "connection_security_policy": e.security,
    })
    return labels, e


def tcp_labels(tags: Tags, direction: str, reporter: Peer,
               directory: Directory) -> tuple[dict[str, str], Ends]:
    e = ends(tags, direction, reporter, directory)
    labels = peer_labels(direction, e, "tcp")
    labels.update({"response_flags": _tag(tags, "flags") or "-",
                   "connection_security_policy": e.security})
    return labels, e


def _cluster_host(cluster: str) -> str:
    # Istio's cluster names: outbound|<port>|<subset>|<host>.
    parts = cluster.split("|")
    return parts[3] if len(parts) == 4 else cluster


def _host(authority: str) -> str:
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def _special(host: str) -> str:
    return host if host in SPECIAL_CLUSTERS else UNKNOWN


def ordered(labels: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(labels[n] for n in names)


__all__ = ["HTTP_LABELS", "PEER_LABELS", "TCP_LABELS", "Ends", "Tags", "http_labels", "ordered",
           "tcp_labels"]
