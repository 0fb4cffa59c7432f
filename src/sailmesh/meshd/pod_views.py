"""The planned pods and their runtime statuses, seen by each part of the mesh: the proxies
the push planner translates for, the workloads of the model, the pods telemetry names, the
proxies' sockets, and the diagnostics of pods that cannot start.

Owns: which pods count where. A pod counts once it has an address (the runtime created
its network); it is a workload endpoint only when Ready and Running, as Kubernetes
readiness decides endpoint membership; it has a proxy when it is a gateway (`router`) or
has an injected sidecar. Must not know: how pods run, how the views are used. Pure: no IO
(a proxy's `file_problem` looks at the filesystem only when translation asks).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sailmesh.control import ProxyPod
from sailmesh.meshd.planner import BlockedPod, PlannedPod
from sailmesh.meshd.proxy_files import proxy_file_problem
from sailmesh.model import diagnostics as codes
from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.install import binds_host_ports
from sailmesh.model.proxy import Proxy, ProxyKind, node_id
from sailmesh.model.services import load_balancer_bindings
from sailmesh.model.workloads import Workload
from sailmesh.resources.core import Service
from sailmesh.runtime.plans import PodStatus
from sailmesh.telemetry import PodFacts

PodKey = tuple[str, str]  # (namespace, pod name)
Pods = Mapping[PodKey, PlannedPod]
Statuses = Mapping[PodKey, PodStatus]


@dataclass(frozen=True)
class ProxyPods:
    """The proxies to translate for, and the LoadBalancer Services a gateway serves."""

    pods: list[ProxyPod]
    # "namespace/name" → address of every LoadBalancer Service that reaches a gateway's
    # host ports. `status.loadBalancer` shows an address only once a gateway answers on it
    # (until then kubectl shows EXTERNAL-IP <pending>, as on a cluster).
    served_load_balancers: dict[str, str]


def proxy_kind(pod: PlannedPod) -> ProxyKind:
    return "router" if pod.router else "sidecar"


def proxy_node_id(key: PodKey, pod: PlannedPod) -> str:
    return node_id(proxy_kind(pod), *key)


def _addressed(pods: Pods, statuses: Statuses) -> list[tuple[PodKey, PlannedPod, PodStatus]]:
    """The planned pods the runtime has given an address, with their status."""
    out = []
    for key, pod in pods.items():
        st = statuses.get(key)
        if st is not None and st.ip:
            out.append((key, pod, st))
    return out


def proxy_pods(pods: Pods, statuses: Statuses, services: Sequence[Service],
               load_balancer_ips: Mapping[PodKey, str], host_netns: str) -> ProxyPods:
    """Every running pod with a proxy. A gateway that binds host ports (`host_netns`, the
    host's network namespace file) also listens on the LoadBalancer Services selecting it."""
    out = []
    served: dict[str, str] = {}
    for key, pod, st in _addressed(pods, statuses):
        if not (pod.router or pod.sidecar):
            continue
        bind_netns = host_netns if pod.router and binds_host_ports(pod.plan.labels) else None
        balancers = load_balancer_bindings(services, load_balancer_ips, key[0], pod.plan.labels,
                                           pod.container_ports) if bind_netns else ()
        served.update({f"{ns}/{name}": ip for (ns, name), ip in load_balancer_ips.items()
                       if any(b.address == ip for b in balancers)})
        proxy = Proxy(
            kind=proxy_kind(pod),
            namespace=key[0],
            name=key[1],
            labels=dict(pod.plan.labels),
            ip=st.ip,
            host_bind_netns=bind_netns,
            load_balancers=balancers,
            # Kept for this push only: a path named by many clusters (the system CA
            # bundle) is looked at once, and a changed file is seen on the next push.
            file_problem=functools.cache(proxy_file_problem(pod.plan)),
        )
        out.append(ProxyPod(proxy.node_id, proxy, pod.service_account))
    return ProxyPods(out, served)


def workloads(pods: Pods,
              statuses: Statuses) -> tuple[list[Workload], list[tuple[PlannedPod, str]]]:
    """The model's workloads (every pod with an address), and the Ready and Running pods
    with their address: the Services' endpoints."""
    out, ready = [], []
    for key, pod, st in _addressed(pods, statuses):
        is_ready = st.ready and st.phase == "Running"
        out.append(Workload(
            namespace=key[0],
            name=key[1],
            labels=dict(pod.plan.labels),
            ip=st.ip,
            service_account=pod.service_account,
            ready=is_ready,
            container_ports=dict(pod.container_ports),
        ))
        if is_ready:
            ready.append((pod, st.ip))
    return out, ready


def pod_facts(pods: Pods, statuses: Statuses) -> list[PodFacts]:
    """What telemetry names a pod by: every pod with an address, its proxy's node id."""
    return [PodFacts(namespace=key[0], workload=pod.deployment, ip=st.ip,
                     labels=dict(pod.plan.labels), service_account=pod.service_account,
                     node_id=proxy_node_id(key, pod) if pod.router or pod.sidecar else None,
                     gateway=pod.router)
            for key, pod, st in _addressed(pods, statuses)]


def proxy_sockets(pods: Pods, proxy_dir: Callable[[str, str], Path],
                  socket: str) -> dict[str, Path]:
    """A socket of every planned proxy (its admin socket, its xDS channel) by node id:
    `socket` in the pod's proxy directory."""
    return {proxy_node_id(key, pod): proxy_dir(*key) / socket
            for key, pod in pods.items() if pod.router or pod.sidecar}


def blocked_diagnostics(blocked: Mapping[PodKey, BlockedPod]) -> list[Diagnostic]:
    """A pod that cannot start (unknown image, missing ConfigMap) is a problem of its
    Deployment: `apply` and `status` say so, as `kubectl describe` events would.
    Kubernetes accepts a Deployment whose image cannot be pulled: a warning, and the pod
    waits in ImagePullBackOff."""
    return [Diagnostic("warning" if why.reason == "ImagePullBackOff" else "error",
                       f"Deployment {ns}/{why.deployment}", None,
                       f"pod {pod} cannot start: {why.message}", codes.POD_CANNOT_START)
            for (ns, pod), why in sorted(blocked.items())]
