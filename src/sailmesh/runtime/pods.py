"""LocalNode: local pods (network namespace + processes) and ClusterIP services on one
machine, driven by plans (see plans.py).

It owns the lifecycle: `setup` (adopt what a daemon of the same instance that died left
running, or clean it up and build the node), `reconcile_pods` / `reconcile_services`
(converge on the plans), `teardown`. Addresses persist in the state dir; so do the pods
it runs (`run/processes.json`, runtime.adoption: namespace, address, spec hash and every
container's PID + start time). A later `setup` adopts those pods whose network namespace still exists: their
processes keep running untouched (same names, IPs, proxies), the supervisor watches them
through /proc and restarts any that exited; `reconcile_pods` keeps an adopted pod whose
plan has the same spec hash. What cannot be adopted is killed (after verifying PID + start
time) and removed.

One pod's own steps (create, adopt, update in place, stop, status) are in local_pod.py;
this module decides which pods exist. The runtime executes plans; it must not decide
policy and knows nothing of Istio.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sailmesh.runtime import containers
from sailmesh.runtime.adoption import ProcessRecord
from sailmesh.runtime.errors import PodRuntimeError
from sailmesh.runtime.ipam import LOAD_BALANCER_CIDR, AddressPool, IpamStore
from sailmesh.runtime.kubeproxy import KubeProxy
from sailmesh.runtime.local_pod import LocalPod, running_processes
from sailmesh.runtime.network import HostNetnsHandle, NodeNetwork, delete_netns
from sailmesh.runtime.plans import (
    CapturePlan,
    ContainerPlan,
    PodPlan,
    PodStatus,
    ServiceRule,
    VolumePlan,
)
from sailmesh.runtime.podfs import PodFiles, validate_names
from sailmesh.runtime.supervisor import Supervisor

__all__ = [
    "CapturePlan",
    "ContainerPlan",
    "LocalNode",
    "PodPlan",
    "PodStatus",
    "ServiceRule",
    "VolumePlan",
]

# Short enough that "<instance>v<hex id>" fits Linux's 15-character interface names.
_INSTANCE_RE = re.compile(r"^[a-z][a-z0-9]{0,5}$")
_LOG_ROTATE_EVERY = 5.0


class LocalNode:
    def __init__(
        self,
        instance: str,
        state_dir: Path,
        pod_cidr: str = "10.244.0.0/16",
        service_cidr: str = "10.96.0.0/16",
        trust_bundle: Path | None = None,
    ) -> None:
        if not _INSTANCE_RE.match(instance):
            raise PodRuntimeError(
                f"instance name {instance!r} must be 1-6 lowercase letters/digits starting"
                " with a letter (it prefixes interface names limited to 15 characters)"
            )
        self.instance = instance
        self.state_dir = Path(state_dir)
        # The system trust store every container sees (None: the host's own).
        self.trust_bundle = trust_bundle
        store = IpamStore(self.state_dir / "ipam.json")
        self._pod_ips = AddressPool(store, "pods", pod_cidr, first_offset=2)
        self._vips = AddressPool(store, "vips", service_cidr, first_offset=10)
        self._lb_ips = AddressPool(store, "load_balancers", LOAD_BALANCER_CIDR, first_offset=2)
        self._net = NodeNetwork(instance, pod_cidr, service_cidr)
        self._proxy = KubeProxy(self._net.node_netns)
        self._hostns = HostNetnsHandle(self.state_dir / "run" / "hostns")
        self._pods: dict[str, LocalPod] = {}
        self._lock = threading.RLock()  # guards _pods and what the supervisor touches
        self._reconcile_lock = threading.Lock()  # one reconcile/teardown at a time
        self._supervisor = Supervisor(self._tick)
        self._is_setup = False
        self._last_seen: dict[str, tuple[str, bool, str]] = {}
        self._recorded: set[tuple[int, int]] = set()
        self._last_rotate = 0.0
        self._adoptable: dict[str, dict[str, Any]] = {}
        self._records = ProcessRecord(self.state_dir / "run" / "processes.json")
        self.on_change: Callable[[], None] | None = None

    # -- paths ---------------------------------------------------------------------------
    @property
    def _pods_root(self) -> Path:
        return self.state_dir / "pods"

    def log_path(self, namespace: str, pod: str, container: str) -> Path:
        return PodFiles(self._pods_root, namespace, pod).log(container)

    def host_netns_path(self) -> str:
        return str(self._hostns.path)

    @property
    def node_netns(self) -> str:
        return self._net.node_netns

    # -- lifecycle -----------------------------------------------------------------------
    def setup(self) -> None:
        self._net.ensure_host_routes()
        if self._is_setup:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._adoptable = self._find_adoptable()
        if self._adoptable:
            # The node namespace, its service rules and the pods stay as they are.
            self._cleanup_leftovers(keep=self._adoptable)
        else:
            self._cleanup_leftovers()
            self._net.create_node()
            self._proxy.install()
        self._hostns.mount()
        self._is_setup = True
        self._supervisor.start()

    def teardown(self) -> None:
        self._supervisor.stop()
        with self._reconcile_lock:
            if not self._is_setup:
                # Another process's node (a daemon that died): adopt it only to stop it.
                self._adoptable = self._find_adoptable()
            self._adopt({})
            with self._lock:
                pods = list(self._pods.values())
            self._stop_pods(pods, forget=True)
            self._net.delete_node()
            # Whatever is left (processes of pods that could not be adopted, namespaces).
            self._cleanup_leftovers()
            self._is_setup = False

    def adoptable(self) -> list[tuple[str, str]]:
        """(namespace, name) of the pods left running by an earlier daemon, not yet
        claimed by a plan: a planner keeps their names so that they are adopted."""
        return [(r["namespace"], r["name"]) for r in self._adoptable.values()]

    def _find_adoptable(self) -> dict[str, dict[str, Any]]:
        """Recorded pods whose namespace still exists behind a node that still exists."""
        if self._net.node_netns not in self._net.instance_netns():
            return {}
        return self._records.pods_in(self._net.instance_netns())

    def _cleanup_leftovers(self, keep: dict[str, dict[str, Any]] | None = None) -> None:
        """Undo what a killed daemon of this instance left, except the pods in `keep`:
        its processes (only those whose start time still matches the record), namespaces
        (with anything still inside), the host-netns mount and the pods' scratch
        directories. Pod addresses are kept, so recreated pods get their old IPs back."""
        keep = keep or {}
        kept_pids = {c["pid"] for r in keep.values() for c in r["containers"]}
        kept_netns = {r["netns"] for r in keep.values()} | ({self._net.node_netns} if keep else set())
        kept_dirs = {f"{r['namespace']}_{r['name']}" for r in keep.values()}
        self._records.kill_processes(kept_pids)
        for netns in self._net.instance_netns():
            if netns not in kept_netns:
                delete_netns(netns)
        self._hostns.unmount()
        if self._pods_root.is_dir():
            for pod_dir in self._pods_root.iterdir():
                if pod_dir.name not in kept_dirs:
                    ns, _, name = pod_dir.name.partition("_")
                    PodFiles(self._pods_root, ns, name).remove()
        if not keep:
            self._record_processes(force=True)

    # -- pods ----------------------------------------------------------------------------
    def reconcile_pods(self, plans: Sequence[PodPlan]) -> None:
        self._require_setup()
        validate_names(plans)
        desired = {p.key: p for p in plans}
        with self._reconcile_lock:
            self._adopt(desired)
            with self._lock:
                current = dict(self._pods)
            doomed = [
                pod
                for key, pod in current.items()
                if key not in desired
                or pod.failure
                or pod.spec_hash != desired[key].spec_hash()
            ]
            # Pods that stay (recreated ones) keep their address; removed ones release it.
            self._stop_pods([p for p in doomed if p.plan.key not in desired], forget=True)
            self._stop_pods([p for p in doomed if p.plan.key in desired], forget=False)
            with self._lock:
                kept = dict(self._pods)
            for key, pod in kept.items():
                pod.update_in_place(desired[key])
            fresh = [plan for key, plan in desired.items() if key not in kept]
            with ThreadPoolExecutor(max_workers=8) as pool:
                created = list(pool.map(self._create_pod, fresh))
            with self._lock:
                for pod in created:
                    self._pods[pod.plan.key] = pod
            for key in self._pod_ips.allocated_keys():
                if key not in desired:  # left by a previous run of the daemon
                    self._pod_ips.release(key)
            self._record_processes()
        self._supervisor.wake()

    def _adopt(self, desired: dict[str, PodPlan]) -> None:
        """Take over the recorded pods whose plan is unchanged; stop the others."""
        adoptable, self._adoptable = self._adoptable, {}
        for key, record in adoptable.items():
            pod = LocalPod.adopt(record, desired.get(key), self._pods_root, self.trust_bundle)
            with self._lock:
                self._pods[key] = pod
        if adoptable:
            self._record_processes(force=True)

    def _create_pod(self, plan: PodPlan) -> LocalPod:
        ip = self._pod_ips.allocate(plan.key)
        short_id = format(self._pod_ips.offset(ip), "04x")
        return LocalPod.create(plan, ip, short_id, self._net, self._pods_root, self.trust_bundle)

    def _stop_pods(self, pods: Sequence[LocalPod], forget: bool) -> None:
        """Stop pods in parallel (each may wait out its grace period), delete their
        namespaces; with `forget`, also release addresses and remove their files."""
        if not pods:
            return
        with self._lock:
            for pod in pods:
                if pod.processes is not None:
                    pod.processes.stopping = True

        def stop(pod: LocalPod) -> None:
            pod.stop(self._net)
            if forget:
                self._pod_ips.release(pod.plan.key)
                pod.files.remove()

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(stop, pods))
        with self._lock:
            for pod in pods:
                if self._pods.get(pod.plan.key) is pod:
                    del self._pods[pod.plan.key]

    def statuses(self) -> list[PodStatus]:
        with self._lock:
            return [pod.status() for pod in self._pods.values()]

    def wait_ready(self, namespace: str, name: str, timeout: float = 30.0) -> PodStatus:
        """Block until the pod is Ready; raise PodRuntimeError naming its state if not."""
        deadline = time.monotonic() + timeout
        key = f"{namespace}/{name}"
        while True:
            with self._lock:
                pod = self._pods.get(key)
                status = pod.status() if pod else None
            if status is not None and status.ready:
                return status
            if time.monotonic() > deadline:
                log = self.log_path(namespace, name, "*")
                raise PodRuntimeError(
                    f"pod {key} not ready after {timeout:.0f}s ({status}); see logs in {log.parent}"
                )
            time.sleep(0.02)

    def exec_argv(self, namespace: str, pod: str, argv: Sequence[str],
                  container: str | None = None) -> list[str]:
        """The command line that runs `argv` in a pod: in a named container as that
        container (`kubectl exec -c`), else in the first running one; either way in its
        namespaces and with its credentials."""
        with self._lock:
            found = self._pods.get(f"{namespace}/{pod}")
            target = found.exec_target(container) if found else None
        if target is None:
            what = f"container {container} of pod" if container else "pod"
            raise PodRuntimeError(
                f"{what} {namespace}/{pod} has no running container to exec into;"
                " check its status and logs"
            )
        return containers.exec_argv(target[0], target[1], argv)

    def remove_pods(self, keys: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """Stop and forget pods (`kubectl delete pod`); the next reconcile replaces those a
        Deployment still wants, under new names. Returns the keys that existed."""
        with self._reconcile_lock:
            with self._lock:
                doomed = [self._pods[f"{ns}/{name}"] for ns, name in keys
                          if f"{ns}/{name}" in self._pods]
            self._stop_pods(doomed, forget=True)
            self._record_processes()
        return [(p.plan.namespace, p.plan.name) for p in doomed]

    # -- services ------------------------------------------------------------------------
    def reconcile_services(self, rules: Sequence[ServiceRule]) -> None:
        self._require_setup()
        self._proxy.apply(rules)

    def allocate_vip(self, namespace: str, name: str) -> str:
        return self._vips.allocate(f"{namespace}/{name}")

    def release_vip(self, namespace: str, name: str) -> None:
        self._vips.release(f"{namespace}/{name}")

    def allocate_load_balancer_ip(self, namespace: str, name: str) -> str:
        """A LoadBalancer Service's address on the host's loopback (`LOAD_BALANCER_CIDR`)."""
        return self._lb_ips.allocate(f"{namespace}/{name}")

    def release_load_balancer_ip(self, namespace: str, name: str) -> None:
        self._lb_ips.release(f"{namespace}/{name}")

    # -- supervision ---------------------------------------------------------------------
    def _tick(self) -> None:
        now = time.monotonic()
        with self._lock:
            for pod in self._pods.values():
                if pod.processes is not None:
                    pod.processes.tick(now)
            if now - self._last_rotate > _LOG_ROTATE_EVERY:
                self._last_rotate = now
                for pod in self._pods.values():
                    if pod.processes is not None:
                        pod.processes.rotate_logs()
            seen = {k: (p.phase(), p.status().ready, p.ip) for k, p in self._pods.items()}
            changed = seen != self._last_seen
            self._last_seen = seen
            self._record_processes()
        if changed and self.on_change is not None:
            self.on_change()

    def _record_processes(self, force: bool = False) -> None:
        """Persist (pid, start ticks) of every container process we run, for the
        leftover cleanup of a later daemon; written only when the set changes."""
        with self._lock:
            current = running_processes(list(self._pods.values()))
            if current == self._recorded and not force:
                return
            self._recorded = current
            records = [r for p in self._pods.values() if (r := p.record()) is not None]
            self._records.write(current, records)

    def _require_setup(self) -> None:
        if not self._is_setup:
            raise PodRuntimeError(f"node {self.instance} is not set up; call setup() first")

