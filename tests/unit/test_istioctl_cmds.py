"""istioctl's kube-inject and install --set, as pure functions over manifests."""

from __future__ import annotations

import copy

from sailmesh.cli.istioctl_cmds import kube_inject_docs, set_path
from sailmesh.model.injection import SIDECAR_STATUS_ANNOTATION, injection, is_injected_proxy

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "sleep"},
    "spec": {"selector": {"matchLabels": {"app": "sleep"}},
             "template": {"metadata": {"labels": {"app": "sleep"}},
                          "spec": {"containers": [{"name": "sleep", "image": "curlimages/curl"}]}}},
}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "sleep"},
           "spec": {"ports": [{"port": 80}]}}


def test_kube_inject_adds_istios_sidecar_and_leaves_other_objects() -> None:
    svc, dep = kube_inject_docs([SERVICE, DEPLOYMENT])
    assert svc == SERVICE
    tmpl = dep["spec"]["template"]
    proxy = tmpl["spec"]["containers"][1]
    assert proxy["name"] == "istio-proxy" and proxy["args"][:2] == ["proxy", "sidecar"]
    assert proxy["securityContext"]["runAsUser"] == 1337
    assert is_injected_proxy(proxy["name"], proxy["image"], proxy["args"])
    assert tmpl["spec"]["initContainers"][0]["name"] == "istio-init"
    assert tmpl["metadata"]["labels"]["service.istio.io/canonical-name"] == "sleep"
    assert tmpl["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] == "sleep"
    # The injector's mark: such a pod has its sidecar whatever its namespace says.
    assert injection("legacy", {}, tmpl["metadata"]["labels"], tmpl["metadata"]["annotations"])[0]
    assert DEPLOYMENT["spec"]["template"]["spec"]["containers"] == [
        {"name": "sleep", "image": "curlimages/curl"}]  # input untouched


def test_kube_inject_is_idempotent_and_honours_opt_out() -> None:
    once = kube_inject_docs([DEPLOYMENT])
    assert kube_inject_docs(once) == once
    opted = copy.deepcopy(DEPLOYMENT)
    opted["spec"]["template"]["metadata"]["labels"]["sidecar.istio.io/inject"] = "false"
    (out,) = kube_inject_docs([opted])
    assert SIDECAR_STATUS_ANNOTATION not in out["spec"]["template"]["metadata"].get("annotations", {})
    assert len(out["spec"]["template"]["spec"]["containers"]) == 1


def test_install_set_paths() -> None:
    spec: dict = {}
    set_path(spec, "profile=demo")
    set_path(spec, "meshConfig.accessLogFile=/dev/stdout")
    set_path(spec, "meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY")
    set_path(spec, "values.pilot.env.PILOT_ENABLE_CONFIG_DISTRIBUTION_TRACKING=true")
    assert spec == {"profile": "demo",
                    "meshConfig": {"accessLogFile": "/dev/stdout",
                                   "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}},
                    "values": {"pilot": {"env": {"PILOT_ENABLE_CONFIG_DISTRIBUTION_TRACKING": True}}}}
