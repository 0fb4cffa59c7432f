"""What `sailctl up` installs, like `istioctl install` with the default profile: the
istio-system namespace and the ingress gateway (Service + Deployment + ServiceAccount).

These are ordinary resources in the store: the user sees them with `sailctl get`, and can
label or inspect them like any other.
"""

from __future__ import annotations

from sailmesh.resources.base import Resource
from sailmesh.resources.kinds import KINDS

ROOT_NAMESPACE = "istio-system"
INGRESS_NAME = "istio-ingressgateway"
INGRESS_LABELS = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
PROXY_IMAGE = "docker.io/istio/proxyv2"

_DOCS: list[dict] = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ROOT_NAMESPACE}},
    {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": f"{INGRESS_NAME}-service-account", "namespace": ROOT_NAMESPACE},
    },
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": INGRESS_NAME, "namespace": ROOT_NAMESPACE, "labels": INGRESS_LABELS},
        "spec": {
            "type": "LoadBalancer",
            "selector": INGRESS_LABELS,
            # The default profile's ports: status, HTTP and HTTPS (Service port → target port).
            "ports": [
                {"name": "status-port", "port": 15021, "targetPort": 15021},
                {"name": "http2", "port": 80, "targetPort": 8080},
                {"name": "https", "port": 443, "targetPort": 8443},
            ],
        },
    },
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": INGRESS_NAME, "namespace": ROOT_NAMESPACE, "labels": INGRESS_LABELS},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": INGRESS_LABELS},
            "template": {
                "metadata": {"labels": {**INGRESS_LABELS, "sidecar.istio.io/inject": "false"}},
                "spec": {
                    "serviceAccountName": f"{INGRESS_NAME}-service-account",
                    "containers": [
                        {
                            "name": "istio-proxy",
                            "image": PROXY_IMAGE,
                            "args": ["proxy", "router"],
                            "ports": [
                                {"containerPort": 15021, "name": "status-port"},
                                {"containerPort": 8080, "name": "http2"},
                                {"containerPort": 8443, "name": "https"},
                            ],
                        }
                    ],
                },
            },
        },
    },
]


def default_install() -> list[Resource]:
    return [KINDS[d["kind"]].model_validate(d) for d in _DOCS]


def is_router(image: str | None, args: list[str] | None) -> bool:
    """A container that is an Istio gateway proxy (`proxyv2` image with `proxy router`)."""
    return bool(image) and "proxyv2" in (image or "") and "router" in (args or [])
