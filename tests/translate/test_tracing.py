"""Istio's tracing settings without a provider: route operations (pilot's GetRouteOperation
and TraceOperation) and the HCM `tracing` block (sampling from mesh config, custom tags)."""

from __future__ import annotations

import pytest
from envoy.config.route.v3 import route_components_pb2 as rc

from sailmesh.resources.operator import MeshConfig
from sailmesh.translate.tracing import hcm_tracing, route_operation, trace_operation

CLUSTER = "outbound|8000|v1|httpbin.test.svc.cluster.local"


def test_a_service_default_route_is_named_host_port_star() -> None:
    assert trace_operation("httpbin.org", 80) == "httpbin.org:80/*"


@pytest.mark.parametrize(("match", "operation"), [
    (rc.RouteMatch(prefix="/"), "httpbin.test.svc.cluster.local:8000/*"),
    (rc.RouteMatch(prefix="/status"), "httpbin.test.svc.cluster.local:8000/status*"),
    (rc.RouteMatch(path="/headers"), "httpbin.test.svc.cluster.local:8000/headers"),
    (rc.RouteMatch(safe_regex={"regex": "^/v[0-9]+$"}),
     "httpbin.test.svc.cluster.local:8000^/v[0-9]+$"),
    (rc.RouteMatch(), "httpbin.test.svc.cluster.local:8000/*"),
])
def test_a_route_to_one_service_is_named_by_its_cluster_and_path(
        match: rc.RouteMatch, operation: str) -> None:
    # The cluster's port, not the listener's: the destination names the operation.
    route = rc.Route(match=match, route=rc.RouteAction(cluster=CLUSTER))
    assert route_operation(route, "httpbin", 80) == operation


def test_other_routes_are_named_by_the_virtual_service_and_listener_port() -> None:
    weighted = rc.Route(match=rc.RouteMatch(prefix="/api"))
    weighted.route.weighted_clusters.clusters.add(name=CLUSTER).weight.value = 50
    redirect = rc.Route(match=rc.RouteMatch(path="/old"),
                        redirect=rc.RedirectAction(path_redirect="/new"))
    passthrough = rc.Route(match=rc.RouteMatch(prefix="/"),
                           route=rc.RouteAction(cluster="PassthroughCluster"))
    assert route_operation(weighted, "reviews", 9080) == "reviews:9080/api*"
    assert route_operation(redirect, "reviews", 9080) == "reviews:9080/old"
    assert route_operation(passthrough, "reviews", 9080) == "reviews:9080/*"


def test_tracing_samples_one_percent_and_tags_the_proxy() -> None:
    tracing = hcm_tracing(MeshConfig(), "shop", {"app": "web", "version": "v2"})
    assert tracing is not None
    assert (tracing.client_sampling.value, tracing.random_sampling.value,
            tracing.overall_sampling.value) == (100.0, 1.0, 100.0)
    literals = {t.tag: t.literal.value for t in tracing.custom_tags if t.HasField("literal")}
    assert literals == {"istio.canonical_service": "web", "istio.canonical_revision": "v2",
                        "istio.mesh_id": "cluster.local", "istio.namespace": "shop",
                        "istio.cluster_id": "Kubernetes"}
    dry_run = [t.tag for t in tracing.custom_tags if t.HasField("metadata")]
    assert len(dry_run) == 4 and all(t.startswith("istio.authorization.dry_run.") for t in dry_run)
    assert [t.tag for t in tracing.custom_tags] == sorted(t.tag for t in tracing.custom_tags)


@pytest.mark.parametrize(("sampling", "expected"), [(25.5, 25.5), (0, 1.0), (150, 1.0)])
def test_sampling_follows_default_config(sampling: float, expected: float) -> None:
    mesh = MeshConfig(default_config={"tracing": {"sampling": sampling}})
    tracing = hcm_tracing(mesh, "shop", {})
    assert tracing is not None and tracing.random_sampling.value == expected


def test_enable_tracing_false_turns_it_off() -> None:
    assert hcm_tracing(MeshConfig(enable_tracing=False), "shop", {}) is None
