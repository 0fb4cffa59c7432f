"""What `sailctl up` installs, like `istioctl install` with the default profile plus the
egress gateway (the `demo` profile has both): the istio-system namespace, the ingress gateway
and the egress gateway (Service + Deployment + ServiceAccount each), and the control plane's
Deployment `istiod`; the namespaces every cluster has (default, kube-system, kube-public,
kube-node-lease); and, as on OpenShift, the default router in namespace openshift-ingress
(Deployment router-default and Service router-internal-default).

The control plane is the sailmesh daemon itself: Deployment istiod is how it appears to
kubectl (its one pod is the daemon's process, see `meshd.daemon`), so tutorials'
`rollout status`/`rollout restart`/`wait` on it work; no pod is planned for it.

These are ordinary resources in the store: the user sees them with `sailctl get`, and can
label or inspect them like any other.
"""

from __future__ import annotations

from collections.abc import Mapping

from sailmesh.model.injection import INJECT_LABEL
from sailmesh.resources.base import Resource
from sailmesh.resources.kinds import KINDS

ROOT_NAMESPACE = "istio-system"
INGRESS_NAME = "istio-ingressgateway"
INGRESS_LABELS = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
EGRESS_NAME = "istio-egressgateway"
EGRESS_LABELS = {"app": "istio-egressgateway", "istio": "egressgateway"}
PROXY_IMAGE = "docker.io/istio/proxyv2"
ISTIOD_NAME = "istiod"
ISTIOD_LABELS = {"app": "istiod", "istio": "pilot"}
ISTIOD_IMAGE = "docker.io/istio/pilot"
ISTIOD_CONTAINER = "discovery"
ROUTER_NAMESPACE = "openshift-ingress"
ROUTER_NAME = "router-default"
ROUTER_SERVICE = "router-internal-default"
ROUTER_IMAGE = "quay.io/openshift/origin-haproxy-router"
ROUTER_LABELS = {"ingresscontroller.operator.openshift.io/deployment-ingresscontroller": "default"}
ROUTER_PORTS = [("http", 80), ("https", 443), ("metrics", 1936)]


def _gateway(name: str, labels: dict[str, str], ports: list[tuple[str, int, int]],
             service_type: str = "ClusterIP") -> list[dict]:
    """ServiceAccount, Service (port → targetPort) and Deployment of one gateway.

    As Istio's charts before SDS did, the gateway mounts Secrets `<name>-certs` and
    `<name>-ca-certs` (both optional) at /etc/istio/<short>-certs and
    /etc/istio/<short>-ca-certs, for Gateway servers that name `serverCertificate`,
    `privateKey` and `caCertificates` files there."""
    short = name.removeprefix("istio-")
    mounts = [(f"{short}-certs", f"{name}-certs"), (f"{short}-ca-certs", f"{name}-ca-certs")]
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": f"{name}-service-account", "namespace": ROOT_NAMESPACE},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": ROOT_NAMESPACE, "labels": labels},
            "spec": {
                "type": service_type,
                "selector": labels,
                "ports": [{"name": n, "port": p, "targetPort": t} for n, p, t in ports],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": ROOT_NAMESPACE, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": {**labels, INJECT_LABEL: "false"}},
                    "spec": {
                        "serviceAccountName": f"{name}-service-account",
                        "containers": [
                            {
                                "name": "istio-proxy",
                                "image": PROXY_IMAGE,
                                "args": ["proxy", "router"],
                                "ports": [{"containerPort": t, "name": n} for n, _, t in ports],
                                "volumeMounts": [
                                    {"name": v, "mountPath": f"/etc/istio/{v}", "readOnly": True}
                                    for v, _ in mounts],
                            }
                        ],
                        "volumes": [{"name": v, "secret": {"secretName": s, "optional": True}}
                                    for v, s in mounts],
                    },
                },
            },
        },
    ]

def _openshift_router() -> list[dict]:
    """The ingress operator's default router: HAProxy pods and their internal Service."""
    meta = {"namespace": ROUTER_NAMESPACE, "labels": ROUTER_LABELS}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ROUTER_NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "router", "namespace": ROUTER_NAMESPACE}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": ROUTER_SERVICE, **meta},
         "spec": {"selector": ROUTER_LABELS,
                  "ports": [{"name": n, "port": p, "targetPort": n} for n, p in ROUTER_PORTS]}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": ROUTER_NAME, **meta},
         "spec": {"replicas": 1, "selector": {"matchLabels": ROUTER_LABELS},
                  "template": {"metadata": {"labels": ROUTER_LABELS}, "spec": {
                      "serviceAccountName": "router",
                      "containers": [{"name": "router", "image": ROUTER_IMAGE, "ports": [
                          {"name": n, "containerPort": p} for n, p in ROUTER_PORTS]}]}}}},
    ]


def _istiod() -> dict:
    """istiod's Deployment as Istio's chart names it (container `discovery`, image pilot)."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": ISTIOD_NAME, "namespace": ROOT_NAMESPACE, "labels": ISTIOD_LABELS},
        "spec": {"replicas": 1, "selector": {"matchLabels": ISTIOD_LABELS},
                 "template": {"metadata": {"labels": {**ISTIOD_LABELS, INJECT_LABEL: "false"}},
                              "spec": {"serviceAccountName": "istiod", "containers": [
                                  {"name": ISTIOD_CONTAINER, "image": ISTIOD_IMAGE,
                                   "args": ["discovery"],
                                   "ports": [{"containerPort": 8080}, {"containerPort": 15010},
                                             {"containerPort": 15017}]}]}}},
    }


def is_control_plane(image: str | None) -> bool:
    """istiod's container: the sailmesh daemon stands for it, no pod runs it."""
    return bool(image) and (image or "").split("@")[0].split(":")[0] == ISTIOD_IMAGE


_DOCS: list[dict] = [
    *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
      for ns in ("default", "kube-system", "kube-public", "kube-node-lease")),
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ROOT_NAMESPACE}},
    _istiod(),
    # The default profile's ingress gateway: status, HTTP and HTTPS (Service port → target port).
    *_gateway(INGRESS_NAME, INGRESS_LABELS,
              [("status-port", 15021, 15021), ("http2", 80, 8080), ("https", 443, 8443)],
              service_type="LoadBalancer"),
    # Istio's egress gateway: the same proxy, Service ports 80 → 8080 and 443 → 8443.
    *_gateway(EGRESS_NAME, EGRESS_LABELS, [("http2", 80, 8080), ("https", 443, 8443)]),
    *_openshift_router(),
]


def default_install() -> list[Resource]:
    return [KINDS[d["kind"]].model_validate(d) for d in _DOCS]


def is_openshift_router(image: str | None) -> bool:
    """A container that is OpenShift's HAProxy router."""
    return bool(image) and (image or "").split("@")[0].split(":")[0] == ROUTER_IMAGE


def binds_host_ports(labels: Mapping[str, str]) -> bool:
    """Whether a gateway's listeners are also bound on 127.0.0.1 of the host. Egress gateways
    serve the mesh only (and use the same target ports as the ingress gateway)."""
    return labels.get("istio") != EGRESS_LABELS["istio"]
