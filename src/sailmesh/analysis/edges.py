"""Edges of the mesh from recent telemetry: who talked to whom, how much, and how securely.

Owns: grouping recent samples of Istio's standard metrics into edges (source workload →
destination service → destination workload, per protocol), their rates, error rates and
security, and the graph (nodes and edges) the dashboard draws. Kiali's rules, where Kiali
has them:
1. An edge's traffic is what the destination reported (`reporter="destination"`); an
   edge that only its source reported (a destination without a sidecar, an external host)
   uses the source's report instead. Never both: each request counts once.
2. The mTLS percentage is the share of destination-reported traffic with
   `connection_security_policy="mutual_tls"` (Kiali's Security display); TCP edges are
   judged the same way (Kiali badges only HTTP).
3. A source-reported edge is secured when the upstream presented a SPIFFE certificate
   (mTLS), `tls-originated` when the proxy opened TLS to a non-mesh peer, `passthrough`
   when it forwarded the application's own TLS (SNI seen), else plaintext.
4. Errors: HTTP 4xx/5xx and requests with no response (code 0), as Kiali counts them.
Must not know: where samples come from, HTTP serving, rendering.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

REQUESTS = "istio_requests_total"
TCP_METRICS = ("istio_tcp_sent_bytes_total", "istio_tcp_received_bytes_total")
TCP_OPENED = "istio_tcp_connections_opened_total"
UNKNOWN = "unknown"
Security = str  # "mtls" | "partial" | "plaintext" | "tls-originated" | "passthrough"


@dataclass
class Edge:
    source_namespace: str
    source_workload: str
    service: str  # destination_service (host)
    service_name: str
    service_namespace: str
    destination_namespace: str
    destination_workload: str
    protocol: str  # http, grpc, tcp
    reporter: str
    source_gateway: bool = False
    requests: float = 0.0
    errors: float = 0.0
    mtls_requests: float = 0.0  # or TCP connections
    connections: float = 0.0
    bytes: float = 0.0
    source_principals: set[str] = field(default_factory=set)
    destination_principals: set[str] = field(default_factory=set)
    upstream_tls: set[str] = field(default_factory=set)
    sni: set[str] = field(default_factory=set)
    ports: set[int] = field(default_factory=set)

    @property
    def key(self) -> tuple[str, ...]:
        return (self.source_namespace, self.source_workload, self.service,
                self.destination_namespace, self.destination_workload, self.protocol)

    @property
    def source_id(self) -> str:
        if self.source_workload == UNKNOWN:
            return "unknown"
        return f"wl:{self.source_namespace}/{self.source_workload}"

    @property
    def service_id(self) -> str:
        return f"svc:{self.service}"

    @property
    def destination_id(self) -> str | None:
        if self.destination_workload == UNKNOWN:
            return None
        return f"wl:{self.destination_namespace}/{self.destination_workload}"

    @property
    def volume(self) -> float:
        return self.connections if self.protocol == "tcp" else self.requests

    @property
    def mtls_percent(self) -> float | None:
        if self.reporter != "destination" or not self.volume:
            return None
        return round(100.0 * self.mtls_requests / self.volume, 1)

    @property
    def security(self) -> Security:
        if self.reporter == "destination":
            pct = self.mtls_percent
            if pct is None or pct == 0:
                return "plaintext"
            return "mtls" if pct == 100 else "partial"
        if any(p.startswith("spiffe://") for p in self.destination_principals):
            return "mtls"
        if self.upstream_tls:
            return "tls-originated"
        if self.sni:
            return "passthrough"
        return "plaintext"

    @property
    def secured(self) -> bool:
        return self.security in ("mtls", "tls-originated", "passthrough")

    def as_dict(self, window: float) -> dict[str, Any]:
        rate = self.volume / window if window else 0.0
        return {
            "source": {"namespace": self.source_namespace, "workload": self.source_workload,
                       "gateway": self.source_gateway},
            "service": {"host": self.service, "name": self.service_name,
                        "namespace": self.service_namespace},
            "destination": {"namespace": self.destination_namespace,
                            "workload": self.destination_workload},
            "protocol": self.protocol, "reporter": self.reporter,
            "requests": self.requests, "errors": self.errors, "connections": self.connections,
            "bytes": self.bytes,
            "rate": round(rate, 3),
            "error_rate": round(100.0 * self.errors / self.requests, 1) if self.requests else 0.0,
            "mtls_percent": self.mtls_percent, "security": self.security,
            "secured": self.secured,
            "source_principals": sorted(self.source_principals - {UNKNOWN}),
            "destination_principals": sorted(self.destination_principals - {UNKNOWN}),
            "upstream_tls": sorted(self.upstream_tls), "sni": sorted(self.sni),
            "ports": sorted(self.ports),
        }


def edges_from_samples(samples: Iterable[Mapping[str, Any]],
                       gateways: Iterable[tuple[str, str]] = ()) -> list[Edge]:
    """`samples`: dicts with metric, labels, value and the entry facts (see meshd's
    `telemetry` operation). `gateways`: (namespace, workload) of gateway proxies."""
    gateway_set = set(gateways)
    by_reporter: dict[str, dict[tuple[str, ...], Edge]] = {"destination": {}, "source": {}}
    for s in samples:
        metric, labels, value = s["metric"], s["labels"], float(s["value"])
        if metric not in (REQUESTS, TCP_OPENED, *TCP_METRICS) or labels["reporter"] not in by_reporter:
            continue
        edge = _edge_for(by_reporter[labels["reporter"]], labels)
        edge.source_gateway = (labels["source_workload_namespace"],
                               labels["source_workload"]) in gateway_set
        if metric == REQUESTS:
            edge.requests += value
            code = labels.get("response_code", "0")
            if not code.isdigit() or int(code) >= 400 or code == "0":
                edge.errors += value
        elif metric == TCP_OPENED:
            edge.connections += value
        else:
            edge.bytes += value
        if metric in (REQUESTS, TCP_OPENED) and labels["connection_security_policy"] == "mutual_tls":
            edge.mtls_requests += value
        edge.source_principals.add(labels["source_principal"])
        edge.destination_principals.add(labels["destination_principal"])
        if s.get("upstream_tls"):
            edge.upstream_tls.add(s["upstream_tls"])
        if s.get("sni"):
            edge.sni.add(s["sni"])
        if s.get("port"):
            edge.ports.add(int(s["port"]))
    edges = dict(by_reporter["destination"])
    for key, edge in by_reporter["source"].items():
        # Rule 1: the destination's report wins; the source's only where there is none.
        if key not in edges and not _reported_by_destination(edge, edges):
            edges[key] = edge
    return sorted(edges.values(), key=lambda e: e.key)


def _reported_by_destination(edge: Edge, edges: Mapping[tuple[str, ...], Edge]) -> bool:
    # A source report names the destination workload from the pod address even when the
    # destination has no sidecar; if the destination reported anything for this source
    # and service, that report stands for the edge.
    return any(e.reporter == "destination" and e.source_workload == edge.source_workload
               and e.source_namespace == edge.source_namespace and e.service == edge.service
               and e.protocol == edge.protocol for e in edges.values())


def _edge_for(edges: dict[tuple[str, ...], Edge], labels: Mapping[str, str]) -> Edge:
    edge = Edge(
        source_namespace=labels["source_workload_namespace"],
        source_workload=labels["source_workload"],
        service=labels["destination_service"],
        service_name=labels["destination_service_name"],
        service_namespace=labels["destination_service_namespace"],
        destination_namespace=labels["destination_workload_namespace"],
        destination_workload=labels["destination_workload"],
        protocol=labels["request_protocol"], reporter=labels["reporter"])
    return edges.setdefault(edge.key, edge)


def in_namespaces(edge: Edge, namespaces: Sequence[str]) -> bool:
    """An edge belongs to the chosen namespaces when either end or its service does."""
    if not namespaces:
        return True
    return bool({edge.source_namespace, edge.destination_namespace,
                 edge.service_namespace} & set(namespaces))


def graph(edges: Sequence[Edge], window: float) -> dict[str, Any]:
    """Cytoscape elements: workload, service, gateway, unknown and external-host nodes;
    two edges per traffic edge (source → service → destination workload), as Kiali's
    workload graph with service nodes. `traffic` keeps every traffic edge on its own (the
    graph's source → service edge sums a service's workloads, e.g. reviews v1, v2, v3)."""
    nodes: dict[str, dict[str, Any]] = {}
    out_edges: list[dict[str, Any]] = []
    for e in edges:
        if e.source_workload == UNKNOWN:
            nodes.setdefault("unknown", {"id": "unknown", "kind": "unknown", "label": "unknown",
                                         "namespace": ""})
        else:
            nodes.setdefault(e.source_id, {
                "id": e.source_id, "kind": "gateway" if e.source_gateway else "workload",
                "label": e.source_workload, "namespace": e.source_namespace})
        external = e.destination_workload == UNKNOWN and e.service_namespace != UNKNOWN \
            and "." in e.service and not e.service.endswith(".svc.cluster.local")
        nodes.setdefault(e.service_id, {
            "id": e.service_id, "kind": "external" if external else "service",
            "label": e.service_name if e.service_name != UNKNOWN else e.service,
            "namespace": e.service_namespace, "host": e.service})
        data = e.as_dict(window)
        hops = [(e.source_id, e.service_id)]
        if e.destination_id is not None:
            nodes.setdefault(e.destination_id, {
                "id": e.destination_id, "kind": "workload", "label": e.destination_workload,
                "namespace": e.destination_namespace})
            hops.append((e.service_id, e.destination_id))
        for i, (a, b) in enumerate(hops):
            out_edges.append({**data, "id": f"{a}>{b}>{e.protocol}>{i}", "from": a, "to": b})
    return {"nodes": sorted(nodes.values(), key=lambda n: n["id"]), "edges": _merge(out_edges),
            "traffic": [e.as_dict(window) for e in edges]}


def _merge(edges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Two callers of one service share its service → workload edge, and one caller's
    # source → service edge covers all the service's workloads: sum them.
    merged: dict[str, dict[str, Any]] = {}
    for e in edges:
        seen = merged.get(e["id"])
        if seen is None:
            merged[e["id"]] = dict(e)
            continue
        weights = [(s["mtls_percent"], s["requests"] or s["connections"]) for s in (seen, e)]
        for k in ("requests", "errors", "connections", "bytes", "rate"):
            seen[k] = round(seen[k] + e[k], 3)
        seen["error_rate"] = round(100.0 * seen["errors"] / seen["requests"], 1) if seen["requests"] else 0.0
        for k in ("source_principals", "destination_principals", "upstream_tls", "sni", "ports"):
            seen[k] = sorted(set(seen[k]) | set(e[k]))
        workloads = seen["destination"]["workload"].split(", ")
        if e["destination"]["workload"] not in workloads:
            workloads.append(e["destination"]["workload"])
            seen["destination"] = {**seen["destination"], "workload": ", ".join(sorted(workloads))}
        if all(p is not None for p, _ in weights):
            total = sum(w for _, w in weights) or 1
            seen["mtls_percent"] = round(sum(p * w for p, w in weights) / total, 1)
            seen["security"] = ("mtls" if seen["mtls_percent"] == 100 else
                                "plaintext" if seen["mtls_percent"] == 0 else "partial")
            seen["secured"] = seen["security"] == "mtls"
    return list(merged.values())


def mtls_share(edges: Sequence[Edge]) -> float | None:
    """Kiali's overall figure: mTLS share of destination-reported traffic."""
    reported = [e for e in edges if e.reporter == "destination" and e.volume]
    total = sum(e.volume for e in reported)
    return round(100.0 * sum(e.mtls_requests for e in reported) / total, 1) if total else None


__all__ = ["Edge", "edges_from_samples", "graph", "in_namespaces", "mtls_share"]
