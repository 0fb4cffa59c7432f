"""What a proxy's Envoy can read in its own pod: the files a DestinationRule names by path.

Owns: resolving a path as the istio-proxy container sees it — the pod's mounts in the
runtime's winning order (binds, host paths, pod volumes, image content, the private /tmp),
else the part of the host's filesystem a container's root holds (runtime.podroot: system
directories and a few /etc entries) — and whether the proxy's uid may read it.
Must not know: DestinationRules (translation asks), how mounts are made (runtime).
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Callable
from pathlib import PurePosixPath

from sailmesh.runtime.plans import ContainerPlan, PodPlan, VolumePlan
from sailmesh.runtime.podroot import ETC_ENTRIES, SYSTEM_DIRS

PROXY_CONTAINER = "istio-proxy"


def proxy_file_problem(plan: PodPlan) -> Callable[[str], str | None]:
    """`problem(path)`: None when the pod's istio-proxy can read `path`, else why not.
    The pod's mount table is worked out on the first question (most proxies get none:
    only DestinationRules that originate TLS name files)."""
    proxy = next((c for c in plan.containers if c.name == PROXY_CONTAINER), None)
    uid = proxy.run_as_uid if proxy is not None else None

    @functools.cache
    def mounts() -> list[tuple[PurePosixPath, VolumePlan | str | None]]:
        # Later mounts hide earlier ones (runtime.podfs.mounts); searched newest first.
        layers: list[tuple[PurePosixPath, VolumePlan | str | None]] = [
            (PurePosixPath("/tmp"), None)]  # the pod's own /tmp: not visible from here
        if proxy is not None:
            layers += [(PurePosixPath(v.mount_path), v) for v in proxy.image_volumes]
        layers += [(PurePosixPath(v.mount_path), v) for v in plan.volumes]
        if proxy is not None:
            layers += _host_layers(proxy)
        return layers

    def problem(path: str) -> str | None:
        p = PurePosixPath(path)
        if not p.is_absolute():
            return "not an absolute path"
        for mount, source in reversed(mounts()):
            if p != mount and mount not in p.parents:
                continue
            if source is None:
                return None  # in the pod's private /tmp; Envoy will say if it is missing
            if isinstance(source, str):
                # Inside a bind only the bound directory and below count, not its host parents.
                return _host_problem(os.path.join(source, str(p.relative_to(mount))), uid,
                                     top=source)
            return _volume_problem(source, p, mount, uid)
        if not _in_container_root(p):
            # The pod's root holds only system directories, its volumes and its own files.
            return "no such file in the proxy's filesystem"
        return _host_problem(path, uid)

    return problem


def _in_container_root(path: PurePosixPath) -> bool:
    shared = [PurePosixPath(d) for d in SYSTEM_DIRS]
    shared += [PurePosixPath("/etc") / e for e in ETC_ENTRIES]
    return any(path == d or d in path.parents for d in shared)


def _host_layers(proxy: ContainerPlan) -> list[tuple[PurePosixPath, VolumePlan | str | None]]:
    out: list[tuple[PurePosixPath, VolumePlan | str | None]] = [
        (PurePosixPath(p), p) for p in proxy.host_paths]
    out += [(PurePosixPath(dst), src) for src, dst in proxy.binds]
    return out


def _volume_problem(volume: VolumePlan, path: PurePosixPath, mount: PurePosixPath,
                    uid: int | None) -> str | None:
    if path == mount:
        return f"{mount} is a directory (a volume's mountPath), not a file"
    name = str(path.relative_to(mount))
    if name not in volume.files:
        keys = ", ".join(sorted(volume.files)) or "none"
        return f"no file {name} in the volume mounted at {mount} (it has: {keys})"
    if uid and not volume.mode & 0o004:
        return f"mode {volume.mode:04o} of the volume at {mount} keeps uid {uid} out"
    return None


def _host_problem(path: str, uid: int | None, top: str = "/") -> str | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "no such file in the proxy's filesystem"
    except OSError as exc:
        return exc.strerror or str(exc)
    if stat.S_ISDIR(st.st_mode):
        return "a directory, not a file"
    if not uid:
        return None
    if not _allowed(st, uid, 4):
        return f"not readable by the proxy's uid {uid}"
    parent, top = os.path.dirname(path), os.path.normpath(top)
    while parent not in ("", "/") and (top == "/" or parent == top
                                         or parent.startswith(top + "/")):
        if not _allowed(os.stat(parent), uid, 1):
            return f"directory {parent} is not searchable by the proxy's uid {uid}"
        parent = os.path.dirname(parent)
    return None


def _allowed(st: os.stat_result, uid: int, bit: int) -> bool:
    # The proxy runs as uid:gid with no supplementary groups (runtime.plans.ContainerPlan).
    if st.st_uid == uid:
        return bool(st.st_mode & (bit << 6))
    if st.st_gid == uid:
        return bool(st.st_mode & (bit << 3))
    return bool(st.st_mode & bit)


__all__ = ["proxy_file_problem"]
