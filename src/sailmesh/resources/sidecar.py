"""Istio's Sidecar kind (networking.istio.io v1alpha3, v1beta1, v1) and its webhook rules.

Owns: the typed Sidecar (workloadSelector, egress, ingress, outboundTrafficPolicy,
inboundConnectionPool) and every check Istio's ValidateSidecar makes of one Sidecar, plus
sailmesh's refusals of the fields it does not carry out (named, never silently ignored).
Must not know: other resources (which Sidecar applies to a proxy is `model.sidecar_scope`;
two defaults in one namespace is an analyzer finding, as in Istio), files, Envoy.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from sailmesh.resources import names
from sailmesh.resources.base import Resource, Spec
from sailmesh.resources.errors import Findings
from sailmesh.resources.networking import NETWORKING_VERSIONS

# Namespace parts of an egress host that are not namespace names: this Sidecar's
# namespace, every namespace, no namespace (Istio: `~/*` imports nothing).
CURRENT_NAMESPACE = "."
ANY_NAMESPACE = "*"
NO_NAMESPACE = "~"


class SidecarWorkloadSelector(Spec):
    labels: dict[str, str] = Field(default_factory=dict)


class SidecarPort(Spec):
    number: int = 0
    protocol: str | None = None
    name: str | None = None
    target_port: int | None = None


class IstioEgressListener(Spec):
    port: SidecarPort | None = None
    bind: str | None = None
    capture_mode: Literal["DEFAULT", "IPTABLES", "NONE"] | None = None
    hosts: list[str] = Field(default_factory=list)


class EgressProxy(Spec):
    host: str | None = None
    subset: str | None = None
    port: dict[str, Any] | None = None


class OutboundTrafficPolicy(Spec):
    mode: Literal["REGISTRY_ONLY", "ALLOW_ANY"] = "ALLOW_ANY"
    egress_proxy: EgressProxy | None = None


class SidecarSpec(Spec):
    workload_selector: SidecarWorkloadSelector | None = None
    ingress: list[dict[str, Any]] = Field(default_factory=list)
    egress: list[IstioEgressListener] = Field(default_factory=list)
    outbound_traffic_policy: OutboundTrafficPolicy | None = None
    inbound_connection_pool: dict[str, Any] | None = None


class Sidecar(Resource):
    KIND: ClassVar[str] = "Sidecar"
    API_VERSIONS: ClassVar[tuple[str, ...]] = NETWORKING_VERSIONS
    NAMES: ClassVar[tuple[str, ...]] = ("sidecars", "sidecar")
    spec: SidecarSpec = Field(default_factory=SidecarSpec)

    @property
    def is_default(self) -> bool:
        """No workload selector labels: the Sidecar of every pod of its namespace that no
        selecting Sidecar picks (Istio: empty labels too, with a warning)."""
        selector = self.spec.workload_selector
        return selector is None or not selector.labels


def split_egress_host(host: str) -> tuple[str, str]:
    """`namespace/dnsName` → its two parts (validation guarantees the slash)."""
    namespace, _, name = host.partition("/")
    return namespace, name


# --- rules (istio pkg/config/validation ValidateSidecar) -----------------------------------

_NOT_SUPPORTED = "is not supported by sailmesh"


def check_sidecar(sc: Sidecar, f: Findings) -> None:
    spec = sc.spec
    selector = spec.workload_selector
    if selector is not None:
        for key, value in selector.labels.items():
            at = f"spec.workloadSelector.labels[{key}]"
            if not key:
                f.error(at, f'empty key is not supported in selector: "{key}={value}"')
            if "*" in key or "*" in value:
                f.error(at, f'wildcard is not supported in selector: "{key}={value}"')
        if not selector.labels:
            f.warning("spec.workloadSelector", "sidecar: workload selector specified without "
                      "labels, will be applied to all services in namespace")
    if not (spec.egress or spec.ingress or spec.outbound_traffic_policy
            or spec.inbound_connection_pool):
        f.error("spec", "sidecar: empty configuration provided",
                "give egress hosts, ingress listeners or outboundTrafficPolicy")
        return
    for i, _ in enumerate(spec.ingress):
        f.error(f"spec.ingress[{i}]", f"ingress listeners {_NOT_SUPPORTED}",
                "inbound traffic follows the pod's Service ports; remove spec.ingress")
    if spec.inbound_connection_pool is not None:
        f.error("spec.inboundConnectionPool", f"inboundConnectionPool {_NOT_SUPPORTED}")
    for i, egress in enumerate(spec.egress):
        _egress_listener(sc, egress, i, last=i == len(spec.egress) - 1, f=f)
    policy = spec.outbound_traffic_policy
    if policy is not None and policy.egress_proxy is not None:
        at = "spec.outboundTrafficPolicy.egressProxy"
        if policy.mode != "ALLOW_ANY":
            f.error(at, "sidecar: egress_proxy must be set only with ALLOW_ANY "
                    "outbound_traffic_policy mode")
        else:
            f.error(at, f"egressProxy {_NOT_SUPPORTED}",
                    "route unknown hosts with a ServiceEntry and VirtualService instead")


def _egress_listener(sc: Sidecar, egress: IstioEgressListener, i: int, *, last: bool,
                     f: Findings) -> None:
    at = f"spec.egress[{i}]"
    if egress.port is None:
        if not last:
            f.error(at, "sidecar: the egress listener with empty port should be the last "
                    "listener in the list")
    else:
        if egress.port.target_port:
            f.error(f"{at}.port.targetPort", "targetPort has no impact on Sidecars")
        f.error(f"{at}.port", f"egress listeners on a port {_NOT_SUPPORTED}",
                "give one egress listener without port; its hosts apply to every port")
    for field in ("bind", "capture_mode"):
        if getattr(egress, field) is not None:
            camel = "captureMode" if field == "capture_mode" else field
            f.error(f"{at}.{camel}", f"{camel} {_NOT_SUPPORTED}")
    if not egress.hosts:
        f.error(f"{at}.hosts", "sidecar: egress listener must contain at least one host")
        return
    imported: dict[str, set[str]] = {}
    for j, host in enumerate(egress.hosts):
        if problem := _egress_host(host):
            f.error(f"{at}.hosts[{j}]", problem)
            continue
        ns, name = split_egress_host(host)
        ns = sc.namespace if ns == CURRENT_NAMESPACE else ns
        seen = imported.setdefault(ns, set())
        if (name in seen or "*" in seen) if name != "*" else seen:
            f.warning(f"{at}.hosts[{j}]", f"duplicated egress host: {host}")
        seen.add(name)
    if "*" in imported.get(ANY_NAMESPACE, ()) and len(imported) != 1:
        f.warning(f"{at}.hosts", "`*/*` host select all resources, no other hosts can be added")


def _egress_host(host: str) -> str | None:
    """Istio ValidateNamespaceSlashWildcardHostname for sidecars."""
    if host.count("/") != 1:
        return f'invalid host "{host}": host must be of form namespace/dnsName'
    ns, name = split_egress_host(host)
    if not ns or not name:
        return f'invalid host "{host}": config namespace and dnsName in host entry cannot be empty'
    if ns not in (CURRENT_NAMESPACE, ANY_NAMESPACE, NO_NAMESPACE) and names.dns1123_label(ns):
        return f'invalid namespace value "{ns}" in sidecar'
    if name != "*" and "." not in name:
        return f'invalid host "{host}": short names (non FQDN) are not allowed'
    return names.wildcard_host(name)


__all__ = ["Sidecar", "check_sidecar", "split_egress_host"]
