"""A pod's readiness is an endpoint matter: when a Service's pod becomes ready, the proxies'
ClusterLoadAssignments change and their Clusters do not.

Istio's secure naming pins a service's mTLS peers to the service accounts of its endpoints,
ready or not (a Kubernetes EndpointSlice lists a not-ready pod with `ready: false`, and
istiod takes the service accounts of every endpoint it lists). Were the Cluster's SANs taken
from the ready endpoints only, every client's Cluster of every Service of a starting pod
would be sent twice (without, then with the pod's identity), and each Envoy would rebuild and
warm it again: at 1000 Services x 100 pods, 103,000 Clusters re-sent while the mesh starts.
"""

from __future__ import annotations

from tests.control.test_push import NOW, RealCaIdentities

from sailmesh.control import ProxyPod, plan_push
from sailmesh.model.mesh import build_model
from sailmesh.model.proxy import Proxy
from sailmesh.model.snapshot import Snapshot
from sailmesh.model.workloads import Workload
from sailmesh.resources.loader import load_text
from sailmesh.translate import type_urls
from sailmesh.xds.cache import Snapshot as XdsSnapshot

MTLS = {"security.istio.io/tlsMode": "istio"}
SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec:
  selector: {app: api}
  ports: [{name: http, port: 80, targetPort: http-api}]
"""
WEB = "outbound|80||web.default.svc.cluster.local"
API = "outbound|80||api.default.svc.cluster.local"


def _push(web_ready: bool, api_ready: bool):  # type: ignore[no-untyped-def]
    workloads = [
        Workload("default", "client-0", {"app": "client", **MTLS}, "10.88.0.2", "client", True),
        Workload("default", "web-0", {"app": "web", **MTLS}, "10.88.0.3", "web-sa", web_ready),
        Workload("default", "api-0", {"app": "api", **MTLS}, "10.88.0.4", "api-sa", api_ready,
                 {"http-api": 9090}),
    ]
    pods = [ProxyPod(f"sidecar~{w.name}.default", Proxy("sidecar", "default", w.name, w.labels,
                                                        w.ip), w.service_account)
            for w in workloads]
    snap = Snapshot.of(load_text(SERVICES, "input.yaml").resources)
    push = plan_push(build_model(snap, workloads), pods, RealCaIdentities(), now=NOW)
    return push.nodes["sidecar~client-0.default"].resources


def _sans(cluster) -> list[str]:  # type: ignore[no-untyped-def]
    from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

    ctx = tls_pb2.UpstreamTlsContext()
    cluster.transport_socket_matches[0].transport_socket.typed_config.Unpack(ctx)
    validation = ctx.common_tls_context.combined_validation_context.default_validation_context
    return [m.matcher.exact for m in validation.match_typed_subject_alt_names]


def test_a_not_ready_pod_names_its_identity_in_the_cluster_and_has_no_endpoint() -> None:
    starting = _push(web_ready=False, api_ready=False)
    clusters = starting[type_urls.CLUSTER]
    assert _sans(clusters[WEB]) == ["spiffe://cluster.local/ns/default/sa/web-sa"]
    # A named targetPort resolves through the pod's container ports, ready or not.
    assert _sans(clusters[API]) == ["spiffe://cluster.local/ns/default/sa/api-sa"]
    assignment = starting[type_urls.ENDPOINT][WEB]
    assert [e for locality in assignment.endpoints for e in locality.lb_endpoints] == []


def test_a_pod_becoming_ready_changes_endpoints_not_clusters() -> None:
    starting, ready = _push(False, False), _push(True, True)
    before = XdsSnapshot.build(starting)
    after = XdsSnapshot.build(ready)
    assert after.of(type_urls.CLUSTER).versions == before.of(type_urls.CLUSTER).versions
    changed = {name for name, version in after.of(type_urls.ENDPOINT).versions.items()
               if before.of(type_urls.ENDPOINT).versions.get(name) != version}
    assert changed == {WEB, API}
    assert [e.endpoint.address.socket_address.port_value
            for locality in ready[type_urls.ENDPOINT][API].endpoints
            for e in locality.lb_endpoints] == [9090]

