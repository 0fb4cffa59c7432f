"""The record of the pods a daemon runs (`run/processes.json`), from which a later daemon of
the same instance adopts them or cleans up after them (runtime.pods.LocalNode.setup).

The record holds every container process as (PID, start time in clock ticks) and, per pod,
its namespace, name, spec hash, address, network namespace and containers. A PID counts as
the recorded process only while its start time still matches: a PID the kernel handed to
someone else is never signalled. The runtime executes plans; it must not decide policy.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from sailmesh.runtime.plans import ContainerPlan, PodPlan
from sailmesh.runtime.podfs import PodFiles
from sailmesh.runtime.supervisor import ContainerProcess, PodProcesses, proc_start_ticks


class ProcessRecord:
    """`run/processes.json` of one node."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(self.path.read_text())
            if isinstance(data, dict):
                return data
        return {}

    def pods_in(self, present_netns: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Recorded pods (by key) whose network namespace is among `present_netns`."""
        present = set(present_netns)
        return {r["key"]: r for r in self.read().get("pods", []) if r.get("netns") in present}

    def write(self, processes: set[tuple[int, int]], pods: Sequence[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"processes": sorted(processes), "pods": list(pods)}))
        os.replace(tmp, self.path)

    def kill_processes(self, keep_pids: set[int]) -> None:
        """SIGKILL every recorded process (its whole process group when it leads one) that
        still runs and is not in `keep_pids`."""
        with contextlib.suppress(OSError, ValueError):
            for pid, ticks in self.read().get("processes", []):
                if pid in keep_pids or proc_start_ticks(pid) != ticks:
                    continue  # exited, and the PID may now belong to someone else
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    # Containers lead their own process group: take the whole tree.
                    if os.getpgid(pid) == pid:
                        os.killpg(pid, signal.SIGKILL)
                    else:
                        os.kill(pid, signal.SIGKILL)


def pod_record(plan: PodPlan, processes: PodProcesses, *, spec_hash: str, ip: str,
               short_id: str, netns: str, started_at: float) -> dict[str, Any]:
    """One pod's entry of the record: its running containers' PIDs and start times."""
    containers = [{"name": c.name, "pid": c.proc.pid, "ticks": c.start_ticks,
                   "restarts": c.restarts}
                  for c in processes.containers
                  if c.proc is not None and c.start_ticks is not None and c.proc.returncode is None]
    return {"key": plan.key, "namespace": plan.namespace, "name": plan.name,
            "spec_hash": spec_hash, "ip": ip, "short_id": short_id,
            "netns": netns, "started_at": started_at, "containers": containers}


def adopted_containers(record: dict[str, Any], plan: PodPlan | None, files: PodFiles,
                       launch_argv: Callable[[ContainerPlan], list[str]]
                       ) -> list[ContainerProcess]:
    """The container processes of a recorded pod. With its `plan` (unchanged): the plan's
    containers, each taking over its recorded process (one that exited is restarted by the
    supervisor). Without (changed or gone): the recorded processes only, to be stopped."""
    by_name = {c["name"]: c for c in record["containers"]}
    if plan is None:
        return [_adopted(c, files) for c in record["containers"]]
    out = []
    for c in plan.containers:
        process = ContainerProcess(c.name, launch_argv(c), files.log(c.name))
        if c.name in by_name:
            found = by_name[c.name]
            process.adopt(found["pid"], found["ticks"], found.get("restarts", 0))
        out.append(process)
    return out


def _adopted(record: dict[str, Any], files: PodFiles) -> ContainerProcess:
    process = ContainerProcess(record["name"], [], files.log(record["name"]))
    process.adopt(record["pid"], record["ticks"], record.get("restarts", 0))
    return process
