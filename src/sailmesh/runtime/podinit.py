"""First process of every container: arrange the container's view of the filesystem,
then exec the application.

Launched as `ip netns exec <pod netns> <python> -m sailmesh.runtime.podinit <json>`.
`ip netns exec` has already entered the pod's network namespace, unshared a private
mount namespace and made `/` a slave mount, so nothing mounted here is seen by the host
or by other pods. The JSON spec (see `build_spec`) lists bind mounts (source on the
host → target in the container), the environment, argv and working directory, and
optionally a uid to run as.

With a uid, privileges are dropped after the mounts (which need root) and just before
the exec: supplementary groups cleared, then gid, then uid — in that order, because once
the uid is no longer 0 the process may not change its groups any more. The gid equals
the uid, as Istio's istio-proxy runs as 1337:1337 (runAsUser/runAsGroup), and the
capture rules exempt both (`--uid-owner` and `--gid-owner`).

Mount points that do not exist (e.g. /etc/nginx/certs) are not created on the host's
disk: the nearest existing ancestor is *shadowed* by a tmpfs that holds bind mounts of
every original entry plus the new, empty mount point. The host's directory is never
written to, and the container still sees the original files beside the new mount.

Only the standard library is imported: this runs before every container start.
Must not know about plans, images or Kubernetes.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NamedTuple

MS_RDONLY = 0x1
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000

_libc = ctypes.CDLL(None, use_errno=True)


class MountSpec(NamedTuple):
    source: str
    target: str
    read_only: bool
    # The source is the pod's own directory: missing mount points below it may be
    # created in it directly instead of shadowing it with a tmpfs.
    private: bool = False


def build_spec(
    argv: Sequence[str],
    env: Mapping[str, str],
    workdir: str | None,
    mounts: Sequence[MountSpec],
    run_as_uid: int | None = None,
) -> str:
    """The JSON argument of podinit. `mounts` are listed in the order they should win:
    a later mount at the same path hides an earlier one. `run_as_uid` (and the same gid)
    replaces root for the application when given."""
    spec: dict[str, object] = {
        "argv": list(argv),
        "env": dict(env),
        "workdir": workdir,
        "mounts": [m._asdict() for m in mounts],
    }
    if run_as_uid is not None:
        spec["run_as_uid"] = run_as_uid
    return json.dumps(spec)


def drop_privileges(uid: int) -> None:
    """Become uid:uid with no supplementary groups (setgroups before setgid before setuid:
    each step needs the privilege the next one gives up)."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    rc = _libc.mount(
        source.encode(),
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


class MountPlanner:
    """Performs bind mounts, creating missing mount points on shadow tmpfs layers."""

    def __init__(self) -> None:
        self._ours: set[str] = set()  # directories on a tmpfs of ours: safe to mkdir in

    def _shadow(self, directory: str) -> None:
        # Keep a handle on the original directory: once the tmpfs covers it, its entries
        # stay reachable through /proc/self/fd/N (with anything mounted on them).
        fd = os.open(directory, os.O_PATH | os.O_DIRECTORY)
        try:
            original = f"/proc/self/fd/{fd}"
            _mount("tmpfs", directory, "tmpfs", 0, "mode=0755")
            self._ours.add(directory)
            for entry in os.listdir(original):
                src, dst = f"{original}/{entry}", os.path.join(directory, entry)
                if os.path.islink(src):
                    os.symlink(os.readlink(src), dst)
                    continue
                if os.path.isdir(src):
                    os.mkdir(dst)
                else:
                    open(dst, "w").close()
                try:
                    _mount(src, dst, None, MS_BIND | MS_REC, None)
                except OSError as exc:  # e.g. a socket or device we may not bind
                    print(f"podinit: skipped {dst} while shadowing: {exc}", file=sys.stderr)
        finally:
            os.close(fd)

    def ensure_mount_point(self, target: str, is_dir: bool) -> None:
        if os.path.lexists(target):
            return
        missing = [target]
        parent = os.path.dirname(target)
        while not os.path.exists(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        if parent not in self._ours:
            self._shadow(parent)
        for path in reversed(missing):
            if path == target and not is_dir:
                open(path, "w").close()
            else:
                os.mkdir(path, 0o755)
            self._ours.add(path)

    def bind(self, source: str, target: str, read_only: bool, private: bool) -> None:
        self.ensure_mount_point(target, os.path.isdir(source))
        _mount(source, target, None, MS_BIND | MS_REC, None)
        if read_only:
            _mount("none", target, None, MS_BIND | MS_REMOUNT | MS_RDONLY, None)
        elif private:
            self._ours.add(target)


def apply_mounts(mounts: Sequence[Mapping[str, object]]) -> list[int]:
    """Bind every mount, parents before children; returns the fds to close afterwards."""
    # Open every source first: a mount over /tmp must not hide sources that live under
    # /tmp (a state dir there is common), so binds read from /proc/self/fd/N.
    opened = []
    for m in mounts:
        fd = os.open(str(m["source"]), os.O_PATH)
        opened.append((fd, m))
    planner = MountPlanner()
    # Stable sort: at equal depth the caller's order decides which mount wins.
    depth = lambda item: os.path.normpath(str(item[1]["target"])).count("/")  # noqa: E731
    for fd, m in sorted(opened, key=depth):
        target = str(m["target"])
        planner.bind(f"/proc/self/fd/{fd}", target, bool(m["read_only"]), bool(m.get("private")))
    return [fd for fd, _ in opened]


def main(args: Sequence[str]) -> int:
    if len(args) != 1:
        print("usage: python -m sailmesh.runtime.podinit '<json spec>'", file=sys.stderr)
        return 2
    spec = json.loads(args[0])
    argv: list[str] = spec["argv"]
    try:
        for fd in apply_mounts(spec["mounts"]):
            os.close(fd)
        os.chdir(spec.get("workdir") or "/")
    except OSError as exc:
        print(f"podinit: cannot prepare the container filesystem: {exc}", file=sys.stderr)
        return 126
    uid = spec.get("run_as_uid")
    if uid is not None:
        try:
            drop_privileges(int(uid))
        except OSError as exc:
            print(f"podinit: cannot switch to uid {uid}: {exc}", file=sys.stderr)
            return 126
    sys.stdout.flush()
    try:
        os.execvpe(argv[0], argv, spec["env"])
    except OSError as exc:
        print(f"podinit: cannot run {argv[0]}: {exc}", file=sys.stderr)
        return 127
    return 0  # not reached: execvpe replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
