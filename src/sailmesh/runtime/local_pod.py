"""One local pod: its network namespace, files and container processes — created from a
plan, taken over from a record of an earlier daemon, updated in place, stopped, reported.

Owns: the steps of one pod's life and their order (a sidecar's capture rules exist before
any container runs; a pod that cannot be created is Failed with the reason). Must not know:
which pods should run (runtime.pods.LocalNode decides), addresses (handed in), policy.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sailmesh.runtime import containers
from sailmesh.runtime.adoption import adopted_containers, pod_record
from sailmesh.runtime.capture import apply_capture, validate_capture
from sailmesh.runtime.errors import CommandError, PodRuntimeError
from sailmesh.runtime.network import NETNS_DIR, NodeNetwork
from sailmesh.runtime.plans import ContainerPlan, PodPhase, PodPlan, PodStatus
from sailmesh.runtime.podfs import PodFiles
from sailmesh.runtime.supervisor import ContainerProcess, PodProcesses


@dataclass
class LocalPod:
    plan: PodPlan
    spec_hash: str
    ip: str
    short_id: str
    netns: str
    files: PodFiles
    processes: PodProcesses | None
    started_at: float
    # The system trust store its containers see (None: the host's own).
    trust_bundle: Path | None = None
    failure: str = ""
    # (name, hosts rows, address) this process last wrote the hosts file for: a sync that
    # plans the same rows does not render and read the file again.
    hosts_written: tuple[object, ...] | None = None

    @classmethod
    def create(cls, plan: PodPlan, ip: str, short_id: str, net: NodeNetwork, pods_root: Path,
               trust_bundle: Path | None) -> LocalPod:
        """Files, network namespace, capture, then the containers: a pod that cannot be
        created is returned Failed, with the reason."""
        files = PodFiles(pods_root, plan.namespace, plan.name)
        pod = cls(plan=plan, spec_hash=plan.spec_hash(), ip=ip, short_id=short_id,
                  netns=net.pod_netns(short_id), files=files, processes=None,
                  started_at=time.time(), trust_bundle=trust_bundle)
        try:
            if plan.capture is not None:
                validate_capture(plan.capture)  # refuse before any namespace exists
            files.prepare(plan, ip)
            net.create_pod(short_id, ip)
            if plan.capture is not None:
                # Like istio-init: the rules are in place before any container runs, so
                # not even the app's first connection escapes the sidecar.
                apply_capture(pod.netns, plan.capture)
        except (OSError, PodRuntimeError) as exc:
            pod.failure = f"pod {plan.key} could not be created: {exc}"
            return pod
        processes = [ContainerProcess(c.name, pod.launch_argv(c), files.log(c.name))
                     for c in plan.containers]
        pod.processes = PodProcesses(processes, plan.ready_ports, str(NETNS_DIR / pod.netns))
        pod.processes.start()
        pod.started_at = time.time()
        return pod

    @classmethod
    def adopt(cls, record: dict[str, Any], plan: PodPlan | None, pods_root: Path,
              trust_bundle: Path | None) -> LocalPod:
        """A pod an earlier daemon recorded (runtime.adoption). With its `plan` unchanged,
        its processes are taken over; else (changed or gone) they are kept only to be
        stopped, and a changed pod is created again."""
        files = PodFiles(pods_root, record["namespace"], record["name"])
        pod = cls(plan=plan or PodPlan(record["namespace"], record["name"], {}, ()),
                  spec_hash=record["spec_hash"], ip=record["ip"], short_id=record["short_id"],
                  netns=record["netns"], files=files, processes=None,
                  started_at=record["started_at"], trust_bundle=trust_bundle)
        unchanged = plan if plan is not None and plan.spec_hash() == record["spec_hash"] else None
        pod.processes = PodProcesses(
            adopted_containers(record, unchanged, files, pod.launch_argv),
            unchanged.ready_ports if unchanged is not None else (), str(NETNS_DIR / pod.netns))
        return pod

    def launch_argv(self, container: ContainerPlan) -> list[str]:
        return containers.launch_argv(self.netns, self.plan, self.files, container,
                                      trust_bundle=self.trust_bundle)

    def update_in_place(self, plan: PodPlan) -> None:
        """What a running pod picks up without a restart: hosts file, labels, ready ports."""
        hosts = (plan.name, plan.hosts, self.ip)
        if self.hosts_written != hosts:
            self.files.update_hosts(plan, self.ip)
            self.hosts_written = hosts
        self.plan = plan
        if self.processes is not None:
            self.processes.ready_ports = set(plan.ready_ports)

    def stop(self, net: NodeNetwork) -> None:
        """Stop its processes (waiting out the grace period) and delete its namespace."""
        if self.processes is not None:
            self.processes.stop(self.plan.termination_grace_seconds)
        with contextlib.suppress(CommandError):
            net.delete_pod(self.short_id)

    def phase(self) -> PodPhase:
        if self.failure or self.processes is None:
            return "Failed"
        if self.processes.stopping:
            return "Terminating"
        return "Running" if self.processes.started else "Pending"

    def status(self) -> PodStatus:
        procs = self.processes
        return PodStatus(
            namespace=self.plan.namespace,
            name=self.plan.name,
            ip=self.ip,
            phase=self.phase(),
            ready=bool(procs and procs.ready and not procs.stopping),
            restarts=procs.restarts if procs else 0,
            started_at=self.started_at,
            netns=self.netns,
            message=self.failure or (procs.message if procs else ""),
        )

    def record(self) -> dict[str, Any] | None:
        """Its entry of the process record (runtime.adoption); None without processes."""
        if self.processes is None:
            return None
        return pod_record(self.plan, self.processes, spec_hash=self.spec_hash, ip=self.ip,
                          short_id=self.short_id, netns=self.netns, started_at=self.started_at)

    def exec_target(self, container: str | None) -> tuple[int, ContainerPlan] | None:
        """(PID, plan) of the container to exec into: the named one (`kubectl exec -c`),
        else the first running one; None when it does not run."""
        plans = {c.name: c for c in self.plan.containers}
        if container is not None and container not in plans:
            raise PodRuntimeError(f"container {container} is not valid for pod {self.plan.name}:"
                                  f" {', '.join(plans)}")
        running = [c for c in (self.processes.containers if self.processes else [])
                   if c.pid is not None and container in (None, c.name)]
        if not running or running[0].pid is None:
            return None
        return running[0].pid, plans[running[0].name]


def running_processes(pods: Sequence[LocalPod]) -> set[tuple[int, int]]:
    """(PID, start ticks) of every container process of `pods` still running."""
    return {(c.proc.pid, c.start_ticks)
            for pod in pods if pod.processes is not None
            for c in pod.processes.containers
            if c.proc is not None and c.start_ticks is not None and c.proc.returncode is None}
