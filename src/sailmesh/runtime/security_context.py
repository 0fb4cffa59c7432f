"""Kubernetes securityContext → how a container process runs, as the kubelet and
containerd apply it.

Owns: merging the pod's and the container's securityContext (the container's field wins),
runAsNonRoot (refused at start, with the kubelet's reason, when the container would run as
root), and the credential fields of a `ContainerPlan` (uid, gid, supplementary groups,
capabilities add/drop, privileged, no_new_privs, read-only root filesystem).
Images here carry no USER: a container without runAsUser runs as root, as the image
default of the mapped images (curl, nginx, httpbin) does.
Must not know: namespaces, processes, Istio.
"""

from __future__ import annotations

from dataclasses import dataclass

from sailmesh.resources.core import Container, PodSecurityContext, SecurityContext
from sailmesh.runtime.errors import ContainerConfigError


@dataclass(frozen=True)
class ProcessSecurity:
    """The ContainerPlan fields a securityContext sets."""

    run_as_uid: int | None = None
    run_as_gid: int | None = None
    supplemental_groups: tuple[int, ...] = ()
    capabilities_add: tuple[str, ...] = ()
    capabilities_drop: tuple[str, ...] = ()
    privileged: bool = False
    no_new_privs: bool = False
    read_only_root: bool = False


def process_security(container: Container, pod: PodSecurityContext | None,
                     where: str) -> ProcessSecurity:
    ctx = container.security_context or SecurityContext()
    pod = pod or PodSecurityContext()
    uid = ctx.run_as_user if ctx.run_as_user is not None else pod.run_as_user
    gid = ctx.run_as_group if ctx.run_as_group is not None else pod.run_as_group
    non_root = ctx.run_as_non_root if ctx.run_as_non_root is not None else pod.run_as_non_root
    if non_root and not uid:
        # kubelet (kuberuntime_container_linux verifyRunAsNonRoot), worded as it words it.
        reason = ("container's runAsUser breaks non-root policy" if uid == 0 else
                  "container has runAsNonRoot and image will run as root")
        raise ContainerConfigError(f"{where}: Error: {reason}; set runAsUser to a non-zero uid")
    caps = ctx.capabilities
    privileged = bool(ctx.privileged)
    # The kubelet sets no_new_privs exactly when allowPrivilegeEscalation is false.
    return ProcessSecurity(
        run_as_uid=uid or None,
        run_as_gid=gid if gid is not None else (0 if uid else None),
        supplemental_groups=tuple(pod.supplemental_groups),
        capabilities_add=tuple(caps.add) if caps else (),
        capabilities_drop=tuple(caps.drop) if caps else (),
        privileged=privileged,
        no_new_privs=ctx.allow_privilege_escalation is False and not privileged,
        read_only_root=bool(ctx.read_only_root_filesystem),
    )
