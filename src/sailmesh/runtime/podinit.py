"""First process of every container: give the container a world of its own, then exec
the application.

Launched as `ip netns exec <pod netns> <python> -m sailmesh.runtime.podinit <json>`.
`ip netns exec` has already entered the pod's network namespace and unshared a private
mount namespace. podinit then:
1. unshares PID, UTS and IPC namespaces and forks: the child is PID 1 of the container,
   sees only its own processes in a /proc of its own, and has the pod's hostname; the
   parent stays outside, forwards stop signals to it and exits with its status (the
   supervisor watches the parent; if the parent is killed, the kernel kills the child).
   The parent's waiting is done by a few lines of Perl it execs (perl-base is essential
   on Debian): ~2 MB of RSS per container, where this Python process cost ~12.7 MB;
   a Python waiter remains the fallback when no perl is found;
2. (child) builds the root filesystem (podroot: read-only system directories, a
   filtered /etc, /dev, the container's mounts — hosts file, /tmp, volumes, sockets) and
   pivot_roots into it, so nothing of the host's tree stays reachable;
3. (child) sets credentials (podcreds: capability bounding set, uid/gid, capabilities,
   no_new_privs) and execs the application.

Mount points that do not exist in the new root are created on its tmpfs; below a
read-only host directory (e.g. /usr/local/bin), that directory is *shadowed* by a tmpfs
holding bind mounts of every original entry plus the new, empty mount point. The host's
directories are never written to.

Only the standard library is imported: this runs before every container start.
Must not know about plans, images or Kubernetes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sailmesh.runtime import podcreds, podroot
from sailmesh.runtime.podroot import MS_NODEV, MS_NOSUID, bind, mount

_CLONE_NEWUTS = 0x04000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWPID = 0x20000000
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
              signal.SIGUSR2)


class MountSpec(NamedTuple):
    source: str
    target: str
    read_only: bool
    # The source is the pod's own directory: missing mount points below it may be
    # created in it directly instead of shadowing it with a tmpfs.
    private: bool = False


class Credentials(NamedTuple):
    """Who the application runs as (see podcreds)."""

    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = ()
    capabilities_add: tuple[str, ...] = ()
    capabilities_drop: tuple[str, ...] = ()
    privileged: bool = False
    no_new_privs: bool = False
    read_only_root: bool = False
    ambient: tuple[str, ...] = ()


def exec_prefix(creds: Credentials) -> list[str]:
    """`setpriv` arguments that give a command run in the container (`kubectl exec`) the
    container's own uid, gid, groups, capability bounding set and no_new_privs."""
    caps = podcreds.capability_set(creds.capabilities_add, creds.capabilities_drop,
                                   creds.privileged)
    caps |= {podcreds.CAPABILITIES.index(c) for c in creds.ambient}

    def names(numbers: Sequence[int] | set[int]) -> str:
        return ",".join(["-all", *(f"+{podcreds.CAPABILITIES[c].lower()}" for c in sorted(numbers))])

    ambient = {podcreds.CAPABILITIES.index(c) for c in creds.ambient}
    groups = ([f"--groups={','.join(map(str, creds.groups))}"] if creds.groups
              else ["--clear-groups"])
    return ["setpriv", f"--reuid={creds.uid}", f"--regid={creds.gid}", *groups,
            f"--inh-caps={names(ambient)}", f"--bounding-set={names(caps)}",
            *([f"--ambient-caps={names(ambient)}"] if ambient else []),
            *(["--no-new-privs"] if creds.no_new_privs else []), "--"]


def build_spec(
    argv: Sequence[str],
    env: Mapping[str, str],
    workdir: str | None,
    mounts: Sequence[MountSpec],
    *,
    root: str,
    hostname: str,
    credentials: Credentials = Credentials(),
) -> str:
    """The JSON argument of podinit. `mounts` are listed in the order they should win:
    a later mount at the same path hides an earlier one. `root` is an empty directory the
    container's root filesystem is mounted on."""
    spec: dict[str, object] = {
        "argv": list(argv),
        "env": dict(env),
        "workdir": workdir,
        "mounts": [m._asdict() for m in mounts],
        "root": root,
        "hostname": hostname,
        "credentials": credentials._asdict(),
    }
    return json.dumps(spec)


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
            mount("tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
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
                    mount(src, dst, None, podroot.MS_BIND | podroot.MS_REC)
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

    def mark_ours(self, *directories: str) -> None:
        self._ours.update(directories)

    def bind(self, source: str, target: str, read_only: bool, private: bool) -> None:
        self.ensure_mount_point(target, os.path.isdir(source))
        bind(source, target, read_only=read_only)
        if private and not read_only:
            self._ours.add(target)


def apply_mounts(mounts: Sequence[Mapping[str, object]], root: str) -> list[int]:
    """Bind every mount under `root`, parents before children; returns the fds to close
    afterwards."""
    # Open every source first: a mount over /tmp must not hide sources that live under
    # /tmp (a state dir there is common), so binds read from /proc/self/fd/N.
    opened = []
    for m in mounts:
        fd = os.open(str(m["source"]), os.O_PATH)
        opened.append((fd, m))
    planner = MountPlanner()
    planner.mark_ours(root, *(f"{root}/{d}" for d in ("etc", "run", "var", "tmp", "dev")))
    # Stable sort: at equal depth the caller's order decides which mount wins.
    depth = lambda item: os.path.normpath(str(item[1]["target"])).count("/")  # noqa: E731
    for fd, m in sorted(opened, key=depth):
        target = root + os.path.normpath(str(m["target"]))
        planner.bind(f"/proc/self/fd/{fd}", target, bool(m["read_only"]), bool(m.get("private")))
    return [fd for fd, _ in opened]


def main(args: Sequence[str]) -> int:
    if len(args) != 1:
        print("usage: python -m sailmesh.runtime.podinit '<json spec>'", file=sys.stderr)
        return 2
    spec = json.loads(args[0])
    try:
        podroot.unshare(_CLONE_NEWPID | _CLONE_NEWUTS | _CLONE_NEWIPC)
    except OSError as exc:
        print(f"podinit: cannot create the container's namespaces: {exc}", file=sys.stderr)
        return 126
    # Stop signals that arrive before the child exists are held, then forwarded.
    signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED)
    child = os.fork()
    if child == 0:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)
        os._exit(_container(spec))
    _exec_waiter(child)
    return _wait_forwarding(child)


# The parent's whole job in Perl: forward stop signals, exit with the child's status
# (128 + signal when killed, as runtimes report). waitpid is retried after a forwarded
# signal interrupts it, and gives up on ECHILD (10).
_WAITER = ("my $c = shift; $SIG{$_} = sub { kill $_[0], $c } for qw(TERM INT HUP QUIT USR1 USR2);"
           " 1 until waitpid($c, 0) == $c or $! == 10;"
           " exit($? & 127 ? 128 + ($? & 127) : $? >> 8)")


def _exec_waiter(child: int) -> None:
    """Replace this interpreter by the Perl waiter (the child stays its child). Signals
    ignored across the exec stay ignored until Perl installs its handlers: one sent in
    that window to this process alone is lost (the supervisor signals the whole process
    group, which reaches the child itself)."""
    perl = shutil.which("perl")
    if perl is None:
        return
    for signum in _FORWARDED:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)
    with contextlib.suppress(OSError):
        os.execv(perl, ["perl", "-e", _WAITER, str(child)])
    signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED)
    for signum in _FORWARDED:
        signal.signal(signum, signal.SIG_DFL)


def _wait_forwarding(child: int) -> int:
    """The parent's whole job: pass stop signals on, return the child's exit status."""
    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)
    while True:
        try:
            _, status = os.waitpid(child, 0)
        except InterruptedError:
            continue
        code = os.waitstatus_to_exitcode(status)
        return code if code >= 0 else 128 - code  # killed by a signal: 128 + its number


def _container(spec: dict[str, Any]) -> int:
    """PID 1 of the container: root filesystem, credentials, exec."""
    podcreds.set_parent_death_signal(signal.SIGKILL)
    creds = Credentials(**{k: tuple(v) if isinstance(v, list) else v
                           for k, v in spec["credentials"].items()})
    root = spec["root"]
    try:
        socket.sethostname(spec["hostname"][:63].rstrip("-."))
        podroot.build_root(root, spec["hostname"])
        for fd in apply_mounts(spec["mounts"], root):
            os.close(fd)
        podroot.enter_root(root, creds.read_only_root)
        os.chdir(spec.get("workdir") or "/")
    except OSError as exc:
        print(f"podinit: cannot prepare the container filesystem: {exc}", file=sys.stderr)
        return 126
    try:
        caps = podcreds.capability_set(creds.capabilities_add, creds.capabilities_drop,
                                       creds.privileged)
        ambient = {podcreds.CAPABILITIES.index(c) for c in creds.ambient}
        podcreds.apply_credentials(creds.uid, creds.gid, creds.groups, caps, creds.no_new_privs,
                                   ambient)
    except OSError as exc:
        print(f"podinit: cannot switch to uid {creds.uid}: {exc}", file=sys.stderr)
        return 126
    sys.stdout.flush()
    argv: list[str] = spec["argv"]
    try:
        os.execvpe(argv[0], argv, spec["env"])
    except OSError as exc:
        print(f"podinit: cannot run {argv[0]}: {exc}", file=sys.stderr)
        return 127
    return 0  # not reached: execvpe replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
