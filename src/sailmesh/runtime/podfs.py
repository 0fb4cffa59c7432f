"""The files a pod sees: its directory in the state dir, its hosts file, materialised
volumes, and the list of bind mounts podinit performs for each container.

Layout of `<state>/pods/<namespace>_<pod>/`:
    hosts            bind-mounted over /etc/hosts; rewritten in place (same inode) so that
                     running processes see new services without a restart
(and, from the mesh's state dir, the system trust store: bind-mounted read-only over
/etc/ssl/certs/ca-certificates.crt, the host's roots plus the offline internet's root)
    tmp/             bind-mounted over /tmp (mode 1777); tmp/home is $HOME (gunicorn keeps
                     a control socket under $HOME/.gunicorn)
    volumes/<n>/     one directory per VolumePlan, files with the plan's mode
    logs/<c>.log     stdout+stderr of container <c>; kept when the pod is recreated

Must not know about namespaces, processes or Kubernetes objects.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from sailmesh.runtime.errors import PodRuntimeError
from sailmesh.runtime.plans import ContainerPlan, PodPlan, VolumePlan
from sailmesh.runtime.podinit import MountSpec
from sailmesh.translate.origination import SYSTEM_ROOTS

POD_HOME = "/tmp/home"


def render_hosts(plan: PodPlan, ip: str) -> str:
    lines = [
        "# Kubernetes-managed hosts file (sailmesh).",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"{ip}\t{plan.name}",
    ]
    lines += [f"{addr}\t{' '.join(names)}" for addr, names in plan.hosts if names]
    return "\n".join(lines) + "\n"


def _safe_relative(mount_path: str, name: str) -> PurePosixPath:
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise PodRuntimeError(
            f"volume at {mount_path}: file name {name!r} must be a relative path without '..'"
        )
    return rel


def materialise_volume(volume: VolumePlan, directory: Path) -> None:
    if not PurePosixPath(volume.mount_path).is_absolute():
        raise PodRuntimeError(f"volume mountPath {volume.mount_path!r} must be absolute")
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    for name, content in sorted(volume.files.items()):
        target = directory / _safe_relative(volume.mount_path, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, volume.mode)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.chmod(target, volume.mode)  # O_CREAT's mode is filtered by the umask


class PodFiles:
    """The on-disk side of one pod."""

    def __init__(self, pods_root: Path, namespace: str, name: str) -> None:
        # Namespace and pod names are DNS labels (no "_"), so the join is unambiguous.
        self.root = pods_root / f"{namespace}_{name}"

    @property
    def hosts(self) -> Path:
        return self.root / "hosts"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def rootfs(self) -> Path:
        """Empty directory each container's root filesystem (a tmpfs) is mounted on."""
        return self.root / "rootfs"

    def log(self, container: str) -> Path:
        return self.root / "logs" / f"{container}.log"

    def _volume_dir(self, label: str) -> Path:
        return self.root / "volumes" / label

    def prepare(self, plan: PodPlan, ip: str) -> None:
        """Fresh tmp and volumes (a recreated container starts from its image again);
        logs survive so that earlier runs can still be read."""
        for sub in ("tmp", "volumes"):
            shutil.rmtree(self.root / sub, ignore_errors=True)
        (self.tmp / "home").mkdir(parents=True)
        self.rootfs.mkdir(exist_ok=True)
        os.chmod(self.root, 0o700)
        os.chmod(self.tmp, 0o1777)
        (self.root / "logs").mkdir(exist_ok=True)
        self.hosts.write_text(render_hosts(plan, ip))
        os.chmod(self.hosts, 0o644)
        for i, volume in enumerate(plan.volumes):
            materialise_volume(volume, self._volume_dir(f"pod-{i}"))
        for c in plan.containers:
            for j, volume in enumerate(c.image_volumes):
                materialise_volume(volume, self._volume_dir(f"image-{c.name}-{j}"))

    def update_hosts(self, plan: PodPlan, ip: str) -> bool:
        """Rewrite the hosts file in place if its content changed; True if it did.
        Never replace the file: the bind mounts in running pods point at this inode."""
        content = render_hosts(plan, ip).encode()
        with open(self.hosts, "r+b") as f:
            if f.read() == content:
                return False
            f.seek(0)
            f.write(content)
            f.truncate()
        return True

    def mounts(
        self, plan: PodPlan, container: ContainerPlan, host_paths: Sequence[str] = (),
        trust_bundle: Path | None = None,
    ) -> list[MountSpec]:
        """Mounts in winning order: image content before the pod's volumes, so a ConfigMap
        at /etc/nginx/conf.d hides the image's default.conf. `host_paths` are bound at the
        same path (a proxy's sockets); nothing else of the host is in the container.
        `trust_bundle` becomes the system trust store (curl, openssl, Python and Envoy read
        SYSTEM_ROOTS)."""
        out = [
            MountSpec(str(self.hosts), "/etc/hosts", False),
            MountSpec(str(self.tmp), "/tmp", False, private=True),
        ]
        if trust_bundle is not None:
            out.append(MountSpec(str(trust_bundle), SYSTEM_ROOTS, True))
        for j, volume in enumerate(container.image_volumes):
            src = self._volume_dir(f"image-{container.name}-{j}")
            out.append(MountSpec(str(src), volume.mount_path, volume.read_only, private=True))
        for i, volume in enumerate(plan.volumes):
            src = self._volume_dir(f"pod-{i}")
            out.append(MountSpec(str(src), volume.mount_path, volume.read_only, private=True))
        out += [MountSpec(p, p, False) for p in host_paths]
        out += [MountSpec(src, dst, False) for src, dst in container.binds]
        return out

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def validate_names(plans: Sequence[PodPlan]) -> None:
    seen: set[str] = set()
    for plan in plans:
        if plan.key in seen:
            raise PodRuntimeError(f"pod {plan.key} is planned twice; pod names must be unique")
        seen.add(plan.key)
        if not plan.containers:
            raise PodRuntimeError(f"pod {plan.key} has no containers; give at least one")
