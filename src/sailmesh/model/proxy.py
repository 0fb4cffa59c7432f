"""The Envoy a translation is for.

Owns: the `Proxy` record and its Istio-style node id. Must not know: how Envoy is
launched or reached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Proxy:
    kind: Literal["router", "sidecar"]
    namespace: str
    name: str  # pod name
    labels: Mapping[str, str]
    ip: str
    # When set, gateway listeners also bind 127.0.0.1:<port> inside this network namespace
    # file (Envoy `additional_addresses` + `network_namespace_filepath`), so the host can
    # reach a gateway that runs in a pod's netns.
    host_bind_netns: str | None = None

    @property
    def node_id(self) -> str:
        # Istio's node id layout: type~ip~pod.namespace~namespace.svc.cluster.local
        return f"{self.kind}~{self.ip}~{self.name}.{self.namespace}~{self.namespace}.svc.cluster.local"
