"""The Envoy a translation is for.

Owns: the `Proxy` record and the node id scheme (`node_id`): the one name by which a
proxy's bootstrap, the xDS server and the daemon know it. Must not know: how Envoy is
launched or reached.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from sailmesh.model.services import LoadBalancerBinding

ProxyKind = Literal["router", "sidecar"]


def node_id(kind: ProxyKind, namespace: str, pod: str) -> str:
    """`sidecar~web-1.test`: Istio's `type~…~pod.namespace` without the IP, which is not
    known when the bootstrap is written (before the pod's network exists)."""
    return f"{kind}~{pod}.{namespace}"


@dataclass(frozen=True)
class Proxy:
    kind: ProxyKind
    namespace: str
    name: str  # pod name
    labels: Mapping[str, str]
    ip: str
    # When set, gateway listeners also bind 127.0.0.1:<port> inside this network namespace
    # file (Envoy `additional_addresses` + `network_namespace_filepath`), so the host can
    # reach a gateway that runs in a pod's netns.
    host_bind_netns: str | None = None
    # With `host_bind_netns`: the LoadBalancer Services' addresses that reach this gateway;
    # a listener on a binding's target port also binds its address and Service port.
    load_balancers: tuple[LoadBalancerBinding, ...] = ()
    # Whether this proxy's Envoy can read a file of its own filesystem (DestinationRule
    # `caCertificates`, `clientCertificate` …): None when it can, else why not. Envoy
    # rejects a whole cluster update over one unreadable file, so translation checks first.
    # None (golden tests): not checked.
    file_problem: Callable[[str], str | None] | None = field(default=None, compare=False)

    @property
    def ref(self) -> str:
        """How messages name this proxy: `Pod ns/name (sidecar)`."""
        return f"Pod {self.namespace}/{self.name} ({'gateway' if self.kind == 'router' else 'sidecar'})"

    @property
    def node_id(self) -> str:
        return node_id(self.kind, self.namespace, self.name)
