"""The planned pods and their statuses as the push, the model, telemetry and the xDS channels
see them (meshd/pod_views.py): one set of pods in, the exact view of each out."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_load_balancers import SERVICES as LOAD_BALANCED

from sailmesh.control import ProxyPod
from sailmesh.meshd import pod_views
from sailmesh.meshd.planner import BlockedPod, PlannedPod
from sailmesh.model import diagnostics as codes
from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.proxy import Proxy
from sailmesh.model.services import LoadBalancerBinding
from sailmesh.model.workloads import Workload
from sailmesh.resources.core import Service
from sailmesh.resources.loader import load_text
from sailmesh.runtime.plans import PodPhase, PodPlan, PodStatus
from sailmesh.telemetry import PodFacts

HOST_NETNS = "/mesh/run/hostns"

# istio-ingressgateway (LoadBalancer), `internal` (ClusterIP) and `other` (a LoadBalancer
# selecting no pod here), and the egress gateway's LoadBalancer Service.
SERVICES = LOAD_BALANCED + """
---
apiVersion: v1
kind: Service
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  type: LoadBalancer
  selector: {istio: egressgateway}
  ports: [{port: 443, targetPort: 8443}]
"""
LOAD_BALANCER_IPS = {("istio-system", "istio-ingressgateway"): "127.0.0.2",
                     ("istio-system", "istio-egressgateway"): "127.0.0.3",
                     ("istio-system", "other"): "127.0.0.4"}

INGRESS = {"istio": "ingressgateway"}
EGRESS = {"istio": "egressgateway"}


def _pod(ns: str, name: str, labels: dict[str, str], *, router: bool = False,
         sidecar: bool = False, sa: str = "default") -> tuple[tuple[str, str], PlannedPod]:
    return (ns, name), PlannedPod(PodPlan(ns, name, labels, ()), deployment=name.rsplit("-", 1)[0],
                                  service_account=sa, container_ports={"https": 8443},
                                  router=router, sidecar=sidecar)


def _status(ns: str, name: str, ip: str, phase: PodPhase = "Running",
            ready: bool = True) -> tuple[tuple[str, str], PodStatus]:
    return (ns, name), PodStatus(ns, name, ip, phase, ready, restarts=0, started_at=0.0,
                                 netns=f"netns-{name}")


# The ingress and egress gateways, a sidecar pod still starting (Running, not Ready), a pod
# without a proxy, a sidecar pod being deleted, one whose network is not there yet (no
# address) and one the runtime does not report at all.
PODS = dict([
    _pod("istio-system", "istio-ingressgateway-0", INGRESS, router=True,
         sa="istio-ingressgateway-service-account"),
    _pod("istio-system", "istio-egressgateway-0", EGRESS, router=True),
    _pod("test", "httpbin-0", {"app": "httpbin"}, sidecar=True, sa="httpbin"),
    _pod("test", "sleep-0", {"app": "sleep"}, sa="sleep"),
    _pod("test", "old-0", {"app": "old"}, sidecar=True),
    _pod("test", "starting-0", {"app": "starting"}, sidecar=True),
    _pod("test", "unknown-0", {"app": "unknown"}, sidecar=True),
])
STATUSES = dict([
    _status("istio-system", "istio-ingressgateway-0", "10.244.0.2"),
    _status("istio-system", "istio-egressgateway-0", "10.244.0.3"),
    _status("test", "httpbin-0", "10.244.0.4", ready=False),
    _status("test", "sleep-0", "10.244.0.5"),
    _status("test", "old-0", "10.244.0.6", phase="Terminating"),
    _status("test", "starting-0", "", phase="Pending", ready=False),
])


def _services() -> list[Service]:
    return [r for r in load_text(SERVICES, "s.yaml", None).resources if isinstance(r, Service)]


def test_proxy_pods_are_the_addressed_gateways_and_sidecars() -> None:
    got = pod_views.proxy_pods(PODS, STATUSES, _services(), LOAD_BALANCER_IPS, HOST_NETNS)
    assert got.pods == [
        # Only the ingress gateway binds the host: its LoadBalancer Service's address too.
        ProxyPod("router~istio-ingressgateway-0.istio-system", Proxy(
            "router", "istio-system", "istio-ingressgateway-0", INGRESS, "10.244.0.2",
            host_bind_netns=HOST_NETNS,
            load_balancers=(LoadBalancerBinding("127.0.0.2", 80, 8080),
                            LoadBalancerBinding("127.0.0.2", 443, 8443))),
            "istio-ingressgateway-service-account"),
        # An egress gateway serves the mesh only.
        ProxyPod("router~istio-egressgateway-0.istio-system", Proxy(
            "router", "istio-system", "istio-egressgateway-0", EGRESS, "10.244.0.3"),
            "default"),
        # A sidecar gets its config before its pod is Ready (the proxy makes it Ready).
        ProxyPod("sidecar~httpbin-0.test", Proxy(
            "sidecar", "test", "httpbin-0", {"app": "httpbin"}, "10.244.0.4"), "httpbin"),
        ProxyPod("sidecar~old-0.test", Proxy(
            "sidecar", "test", "old-0", {"app": "old"}, "10.244.0.6"), "default"),
    ]
    # Each proxy can be asked which files its Envoy can read.
    assert all(callable(p.proxy.file_problem) for p in got.pods)
    # EXTERNAL-IP shows only for the Service a gateway answers on.
    assert got.served_load_balancers == {"istio-system/istio-ingressgateway": "127.0.0.2"}


def test_no_load_balancer_is_served_without_a_gateway() -> None:
    pods = {k: p for k, p in PODS.items() if k[1] != "istio-ingressgateway-0"}
    got = pod_views.proxy_pods(pods, STATUSES, _services(), LOAD_BALANCER_IPS, HOST_NETNS)
    assert got.served_load_balancers == {}
    assert [p.node_id for p in got.pods] == ["router~istio-egressgateway-0.istio-system",
                                             "sidecar~httpbin-0.test", "sidecar~old-0.test"]


def test_workloads_are_the_addressed_pods_and_endpoints_the_ready_running_ones() -> None:
    workloads, ready = pod_views.workloads(PODS, STATUSES)
    assert workloads == [
        Workload("istio-system", "istio-ingressgateway-0", INGRESS, "10.244.0.2",
                 "istio-ingressgateway-service-account", True, {"https": 8443}),
        Workload("istio-system", "istio-egressgateway-0", EGRESS, "10.244.0.3", "default", True,
                 {"https": 8443}),
        Workload("test", "httpbin-0", {"app": "httpbin"}, "10.244.0.4", "httpbin", False,
                 {"https": 8443}),
        Workload("test", "sleep-0", {"app": "sleep"}, "10.244.0.5", "sleep", True,
                 {"https": 8443}),
        # Ready as its processes last answered, but being deleted: no endpoint.
        Workload("test", "old-0", {"app": "old"}, "10.244.0.6", "default", False,
                 {"https": 8443}),
    ]
    assert [(pod.plan.name, ip) for pod, ip in ready] == [
        ("istio-ingressgateway-0", "10.244.0.2"), ("istio-egressgateway-0", "10.244.0.3"),
        ("sleep-0", "10.244.0.5")]


def test_pod_facts_name_each_addressed_pod_and_its_proxy() -> None:
    assert pod_views.pod_facts(PODS, STATUSES) == [
        PodFacts("istio-system", "istio-ingressgateway", "10.244.0.2", INGRESS,
                 "istio-ingressgateway-service-account",
                 "router~istio-ingressgateway-0.istio-system", gateway=True),
        PodFacts("istio-system", "istio-egressgateway", "10.244.0.3", EGRESS, "default",
                 "router~istio-egressgateway-0.istio-system", gateway=True),
        PodFacts("test", "httpbin", "10.244.0.4", {"app": "httpbin"}, "httpbin",
                 "sidecar~httpbin-0.test"),
        PodFacts("test", "sleep", "10.244.0.5", {"app": "sleep"}, "sleep", None),
        PodFacts("test", "old", "10.244.0.6", {"app": "old"}, "default", "sidecar~old-0.test"),
    ]


def test_proxy_sockets_of_every_planned_proxy_running_or_not() -> None:
    # Channels open before a pod has its network, so that its proxy finds one at start-up.
    got = pod_views.proxy_sockets(PODS, lambda ns, name: Path("/mesh/proxies") / f"{ns}_{name}",
                                  "admin.sock")
    assert got == {
        "router~istio-ingressgateway-0.istio-system":
            Path("/mesh/proxies/istio-system_istio-ingressgateway-0/admin.sock"),
        "router~istio-egressgateway-0.istio-system":
            Path("/mesh/proxies/istio-system_istio-egressgateway-0/admin.sock"),
        "sidecar~httpbin-0.test": Path("/mesh/proxies/test_httpbin-0/admin.sock"),
        "sidecar~old-0.test": Path("/mesh/proxies/test_old-0/admin.sock"),
        "sidecar~starting-0.test": Path("/mesh/proxies/test_starting-0/admin.sock"),
        "sidecar~unknown-0.test": Path("/mesh/proxies/test_unknown-0/admin.sock"),
    }


def test_a_blocked_pod_is_a_problem_of_its_deployment() -> None:
    blocked = {
        ("test", "web-1"): BlockedPod("web", {"app": "web"}, ("web",), "web", "RunContainerError",
                                      "command 'web' was not found"),
        ("test", "api-1"): BlockedPod("api", {"app": "api"}, ("api",), "api", "ImagePullBackOff",
                                      "no local equivalent", image="example/api:1"),
    }
    assert pod_views.blocked_diagnostics(blocked) == [
        # A missing image is a warning: Kubernetes accepts the Deployment and keeps pulling.
        Diagnostic("warning", "Deployment test/api", None,
                   "pod api-1 cannot start: no local equivalent", codes.POD_CANNOT_START),
        Diagnostic("error", "Deployment test/web", None,
                   "pod web-1 cannot start: command 'web' was not found", codes.POD_CANNOT_START),
    ]
