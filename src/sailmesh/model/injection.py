"""Sidecar injection: whether a pod gets an istio-proxy container, decided in one place for
the running mesh (`meshd.planner`) and for `analyze` / `x tls-check` (`analysis.workloads`).

Owns: Istio's injection rule and the labels it reads or sets (`istio-injection`,
`istio.io/rev`, `sidecar.istio.io/inject`, the `security.istio.io/tlsMode` label auto mTLS
keys on), and which containers are gateway proxies (they run Envoy themselves and are never
injected). Must not know: how pods are started, Envoy.

Istio's rule has two stages, both reproduced here (with the default `autoInject: enabled`
policy, one control plane of revision `default`, no never/alwaysInjectSelector):
1. Admission (the four entries of the sidecar injector's MutatingWebhookConfiguration; a
   pod no entry selects is left alone):
   - `namespace.sidecar-injector`: namespace `istio-injection=enabled`, pod label
     `sidecar.istio.io/inject` not `"false"`;
   - `rev.namespace.sidecar-injector`: namespace `istio.io/rev=default` and no
     `istio-injection` label, pod label not `"false"`;
   - `object.sidecar-injector`: namespace without either label, pod label
     `sidecar.istio.io/inject: "true"` and no pod `istio.io/rev`;
   - `rev.object.sidecar-injector`: namespace without either label, pod label
     `istio.io/rev=default`, pod label not `"false"`.
   So `istio-injection=disabled` (or any other value) wins over every pod setting.
2. The injector itself (pkg/kube/inject `injectRequired`): never with hostNetwork or in the
   Kubernetes system namespaces; the pod's `sidecar.istio.io/inject` label, else its
   (older) annotation of the same name, decides: y/yes/true/on inject, empty means the
   policy default (inject), anything else does not — the label wins over the annotation.
"""

from __future__ import annotations

from collections.abc import Mapping

INJECTION_LABEL = "istio-injection"
REVISION_LABEL = "istio.io/rev"
INJECT_LABEL = "sidecar.istio.io/inject"  # also read as an annotation (older API)
TLS_MODE_LABEL = "security.istio.io/tlsMode"  # set on injected pods: auto mTLS keys on it
# Written by the injector (and `istioctl kube-inject`) on a pod it injected; the webhook
# leaves such a pod alone, and its istio-proxy container is already in the spec.
SIDECAR_STATUS_ANNOTATION = "sidecar.istio.io/status"
# The revision of sailmesh's only control plane, as a default `istioctl install` has it.
REVISION = "default"
# Istio's injector never touches these (pkg/kube/inject: IgnoredNamespaces).
IGNORED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease",
                                "local-path-storage"})
_YES = frozenset({"y", "yes", "true", "on"})


def is_router(image: str | None, args: list[str] | None) -> bool:
    """A container that is an Istio gateway proxy (`proxyv2` image with `proxy router`)."""
    return bool(image) and "proxyv2" in (image or "") and "router" in (args or [])


def is_injected_proxy(name: str, image: str | None, args: list[str] | None) -> bool:
    """The istio-proxy container `istioctl kube-inject` wrote into a pod template."""
    return name == "istio-proxy" and "proxyv2" in (image or "") and "sidecar" in (args or [])


def injection(namespace: str, namespace_labels: Mapping[str, str],
              pod_labels: Mapping[str, str], pod_annotations: Mapping[str, str], *,
              router: bool = False, host_network: bool = False) -> tuple[bool, str]:
    """(injected, why in one clause) by Istio's rule; see the module docstring."""
    if router:
        return False, "gateway proxy (runs Envoy itself)"
    if SIDECAR_STATUS_ANNOTATION in pod_annotations:
        return True, f"already injected (annotation {SIDECAR_STATUS_ANNOTATION}, istioctl kube-inject)"
    admitted = _admission(namespace_labels, pod_labels)
    if admitted is None:
        if namespace_labels.get(INJECTION_LABEL, "enabled") != "enabled":
            return False, (f"namespace label {INJECTION_LABEL}="
                           f"{namespace_labels[INJECTION_LABEL]}")
        if pod_labels.get(INJECT_LABEL) == "false":
            return False, f'pod template label {INJECT_LABEL}: "false"'
        if REVISION_LABEL in namespace_labels:
            return False, (f"namespace label {REVISION_LABEL}={namespace_labels[REVISION_LABEL]}"
                           f" names no control plane here (the only revision is {REVISION})")
        return False, f"namespace has no label {INJECTION_LABEL}=enabled"
    if host_network:
        return False, "pod uses hostNetwork"
    if namespace in IGNORED_NAMESPACES:
        return False, f"Istio never injects in namespace {namespace}"
    if INJECT_LABEL in pod_labels:
        value, where = pod_labels[INJECT_LABEL], "label"
    else:
        value, where = pod_annotations.get(INJECT_LABEL, ""), "annotation"
    if value and value.lower() not in _YES:
        return False, f"pod template {where} {INJECT_LABEL}: {value!r}"
    return True, admitted


def _admission(ns: Mapping[str, str], pod: Mapping[str, str]) -> str | None:
    """Which injector webhook entry admits the pod, as a reason; None when none does."""
    not_false = pod.get(INJECT_LABEL) != "false"
    if ns.get(INJECTION_LABEL) == "enabled" and not_false:
        return f"namespace label {INJECTION_LABEL}=enabled"
    if INJECTION_LABEL in ns:
        return None
    if ns.get(REVISION_LABEL) == REVISION and not_false:
        return f"namespace label {REVISION_LABEL}={REVISION}"
    if REVISION_LABEL in ns:
        return None
    if pod.get(INJECT_LABEL) == "true" and REVISION_LABEL not in pod:
        return f'pod template label {INJECT_LABEL}: "true"'
    if pod.get(REVISION_LABEL) == REVISION and not_false:
        return f"pod template label {REVISION_LABEL}={REVISION}"
    return None
