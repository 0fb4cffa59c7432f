"""What a container is started with, and how a command enters it: the podinit argv for
a container of a pod (its argv, environment, mounts, root and credentials), the
credentials a ContainerPlan asks for, and the `nsenter` + `setpriv` prefix of an exec.

Must not know about supervision, addresses or Istio (see pods.py, supervisor.py).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sailmesh.runtime.plans import ContainerPlan, PodPlan
from sailmesh.runtime.podfs import POD_HOME, PodFiles
from sailmesh.runtime.podinit import Credentials, MountSpec, build_spec, exec_prefix

BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def launch_argv(netns: str, plan: PodPlan, files: PodFiles, container: ContainerPlan, *,
                trust_bundle: Path | None) -> list[str]:
    """How the supervisor starts `container` of the pod `plan` (network namespace `netns`,
    files in `files`): podinit with the container's argv, environment, mounts, root and
    credentials."""
    venv_bin = os.path.dirname(sys.executable)
    env = {
        "PATH": f"{venv_bin}:{BASE_PATH}",
        "HOME": POD_HOME,
        "HOSTNAME": plan.name,
        "LANG": "C.UTF-8",
        # Logs show up as they are written, not when a buffer fills.
        "PYTHONUNBUFFERED": "1",
        **container.env,
    }
    mounts = files.mounts(plan, container, host_paths=container.host_paths,
                          trust_bundle=trust_bundle)
    # Read-only at their own path, after the pod's /tmp (a checkout under /tmp).
    mounts += [MountSpec(p, p, True) for p in code_paths()]
    spec = build_spec(container.argv, env, container.workdir, mounts,
                      root=str(files.rootfs), hostname=plan.name,
                      credentials=credentials(container))
    # -P: the daemon's working directory must not shadow packages.
    podinit = [sys.executable, "-P", "-m", "sailmesh.runtime.podinit", spec]
    return ["ip", "netns", "exec", netns, *podinit]


def exec_argv(podinit_pid: int, container: ContainerPlan, argv: Sequence[str]) -> list[str]:
    """`argv` run in the container whose podinit is `podinit_pid`."""
    # The container's namespaces (its PID 1 is podinit's only child): the command sees
    # the container's root, /etc/hosts, /tmp, volumes and processes, and runs with the
    # container's credentials (uid, groups, capabilities), like `kubectl exec`.
    return ["nsenter", "-t", str(container_init(podinit_pid)), "-n", "-m", "-p", "-u", "-i",
            "--", *exec_prefix(credentials(container)), *argv]


def credentials(container: ContainerPlan) -> Credentials:
    uid = container.run_as_uid or 0
    return Credentials(
        uid=uid, gid=container.run_as_gid if container.run_as_gid is not None else uid,
        groups=container.supplemental_groups, capabilities_add=container.capabilities_add,
        capabilities_drop=container.capabilities_drop, privileged=container.privileged,
        no_new_privs=container.no_new_privs, read_only_root=container.read_only_root,
        ambient=container.ambient_capabilities)


def container_init(podinit_pid: int) -> int:
    """PID (host view) of the container's PID 1: podinit's child."""
    path = f"/proc/{podinit_pid}/task/{podinit_pid}/children"
    with contextlib.suppress(OSError, ValueError, IndexError), open(path) as f:
        return int(f.read().split()[0])
    return podinit_pid


def code_paths() -> list[str]:
    """The interpreter, the venv and sailmesh's own source: containers run programs from
    there (gunicorn, the sample apps, podinit itself), bound read-only."""
    import sailmesh

    candidates = {sys.base_prefix, sys.prefix, str(Path(sailmesh.__file__).resolve().parents[1])}
    return sorted(str(Path(p).resolve()) for p in candidates)
