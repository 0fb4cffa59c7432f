"""Edges from telemetry samples and Kiali's namespace mTLS status (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from sailmesh.analysis.edges import edges_from_samples, graph, mtls_share
from sailmesh.analysis.mtls_status import mesh_status, namespace_status
from sailmesh.model.mesh import build_model
from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.loader import load_text

BASE = {"source_workload_namespace": "shop", "source_workload": "sleep",
        "destination_service": "httpbin.shop.svc.cluster.local", "destination_service_name": "httpbin",
        "destination_service_namespace": "shop", "destination_workload_namespace": "shop",
        "destination_workload": "httpbin", "request_protocol": "http", "response_code": "200",
        "source_principal": "spiffe://cluster.local/ns/shop/sa/sleep",
        "destination_principal": "spiffe://cluster.local/ns/shop/sa/httpbin"}


def _sample(value: float, metric: str = "istio_requests_total", **labels: str) -> dict[str, Any]:
    merged = {**BASE, "reporter": "destination", "connection_security_policy": "mutual_tls", **labels}
    return {"metric": metric, "labels": merged, "value": value}


def test_destination_report_wins_over_the_source_report() -> None:
    edges = edges_from_samples([
        _sample(10), _sample(10, reporter="source", connection_security_policy="unknown")])
    [edge] = edges
    assert (edge.reporter, edge.requests, edge.security, edge.mtls_percent) == ("destination", 10, "mtls", 100)


def test_partly_mtls_and_errors() -> None:
    [edge] = edges_from_samples([
        _sample(3), _sample(1, connection_security_policy="none", source_principal="unknown"),
        _sample(1, response_code="503")])
    assert edge.security == "partial"
    assert edge.mtls_percent == 80.0
    assert edge.as_dict(60)["error_rate"] == 20.0


def test_unknown_caller_is_a_plaintext_edge_from_the_unknown_node() -> None:
    edges = edges_from_samples([_sample(2, source_workload="unknown", source_workload_namespace="unknown",
                                        source_principal="unknown", connection_security_policy="none")])
    g = graph(edges, 60)
    assert {n["id"]: n["kind"] for n in g["nodes"]} == {
        "unknown": "unknown", "svc:httpbin.shop.svc.cluster.local": "service",
        "wl:shop/httpbin": "workload"}
    assert {e["security"] for e in g["edges"]} == {"plaintext"}
    assert mtls_share(edges) == 0.0


def test_one_caller_of_a_service_with_three_workloads() -> None:
    # productpage → reviews → reviews-v1/v2/v3: one source → service edge summing all three,
    # three service → workload edges, and three traffic rows.
    edges = edges_from_samples([
        _sample(4, destination_workload="reviews-v1"), _sample(3, destination_workload="reviews-v2"),
        _sample(2, destination_workload="reviews-v3"), _sample(1, destination_workload="reviews-v3",
                                                               response_code="503")])
    g = graph(edges, 10)
    out = [e for e in g["edges"] if e["from"] == "wl:shop/sleep"]
    assert len(out) == 1
    assert (out[0]["requests"], out[0]["error_rate"], out[0]["mtls_percent"]) == (10, 10.0, 100.0)
    assert out[0]["destination"]["workload"] == "reviews-v1, reviews-v2, reviews-v3"
    assert sorted(e["to"] for e in g["edges"] if e["from"].startswith("svc:")) == [
        "wl:shop/reviews-v1", "wl:shop/reviews-v2", "wl:shop/reviews-v3"]
    assert [(t["destination"]["workload"], t["requests"]) for t in g["traffic"]] == [
        ("reviews-v1", 4), ("reviews-v2", 3), ("reviews-v3", 3)]


def test_mixed_callers_weigh_the_mtls_share_by_their_traffic() -> None:
    edges = edges_from_samples([
        _sample(3), _sample(1, source_workload="legacy", connection_security_policy="none",
                            source_principal="unknown")])
    [shared] = [e for e in graph(edges, 10)["edges"] if e["from"].startswith("svc:")]
    assert (shared["requests"], shared["mtls_percent"], shared["security"]) == (4, 75.0, "partial")


def test_source_only_edges_to_external_hosts() -> None:
    external = dict(reporter="source", connection_security_policy="unknown",
                    destination_workload="unknown", destination_workload_namespace="unknown",
                    destination_service="api.example.com", destination_service_name="api.example.com",
                    destination_principal="unknown")
    originated = {**_sample(4, **external), "upstream_tls": "TLSv1.3"}
    passthrough = {**_sample(1, "istio_tcp_connections_opened_total", request_protocol="tcp", **external),
                   "sni": "api.example.com"}
    edges = {e.protocol: e for e in edges_from_samples([originated, passthrough])}
    assert edges["http"].security == "tls-originated"
    assert edges["tcp"].security == "passthrough"
    kinds = {n["id"]: n["kind"] for n in graph(list(edges.values()), 60)["nodes"]}
    assert kinds["svc:api.example.com"] == "external"


def test_tcp_edges_are_judged_by_their_connections() -> None:
    [edge] = edges_from_samples([
        _sample(2, "istio_tcp_connections_opened_total", request_protocol="tcp"),
        _sample(300, "istio_tcp_sent_bytes_total", request_protocol="tcp")])
    assert (edge.connections, edge.bytes, edge.security) == (2, 300, "mtls")


def _model(yaml: str, auto: bool = True) -> Any:
    resources = load_text(yaml, "test.yaml").resources if yaml else ()
    mesh = build_model(Snapshot.of(resources), []).mesh.model_copy(update={"enable_auto_mtls": auto})
    return build_model(Snapshot.of(resources), [], mesh)


PA = """apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: {ns}}}
spec: {{mtls: {{mode: {mode}}}}}
"""
DR = """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: all, namespace: {ns}}}
spec: {{host: "*.{ns}.svc.cluster.local", trafficPolicy: {{tls: {{mode: {mode}}}}}}}
"""


# Kiali business/tls.go, auto mTLS on: (PeerAuthentication, DestinationRule) → status.
@pytest.mark.parametrize(("pa", "dr", "want"), [
    ("", "", "MTLS_NOT_ENABLED"),
    ("STRICT", "", "MTLS_ENABLED"),
    ("PERMISSIVE", "", "MTLS_ENABLED"),
    ("PERMISSIVE", "DISABLE", "MTLS_DISABLED"),
    ("STRICT", "SIMPLE", "MTLS_DISABLED"),
    ("DISABLE", "", "MTLS_PARTIALLY_ENABLED"),
    ("DISABLE", "ISTIO_MUTUAL", "MTLS_PARTIALLY_ENABLED"),
    ("DISABLE", "DISABLE", "MTLS_DISABLED"),
    ("", "ISTIO_MUTUAL", "MTLS_PARTIALLY_ENABLED"),
])
def test_namespace_status_with_auto_mtls(pa: str, dr: str, want: str) -> None:
    docs = [PA.format(ns="shop", mode=pa)] if pa else []
    docs += [DR.format(ns="shop", mode=dr)] if dr else []
    model = _model("---\n".join(docs))
    assert namespace_status(model, "shop").status == want


def test_mesh_wide_strict_makes_an_unconfigured_namespace_enabled() -> None:
    model = _model(PA.format(ns="istio-system", mode="STRICT"))
    assert mesh_status(model) == "MTLS_ENABLED"
    status = namespace_status(model, "shop")
    assert (status.status, status.effective) == ("MTLS_NOT_ENABLED", "MTLS_ENABLED")


def test_auto_mtls_off_needs_strict_and_istio_mutual() -> None:
    docs = "---\n".join([PA.format(ns="shop", mode="STRICT"), DR.format(ns="shop", mode="ISTIO_MUTUAL")])
    assert namespace_status(_model(docs, auto=False), "shop").status == "MTLS_ENABLED"
    assert namespace_status(_model(PA.format(ns="shop", mode="STRICT"), auto=False), "shop").status == \
        "MTLS_PARTIALLY_ENABLED"
