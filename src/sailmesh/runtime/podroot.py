"""A container's root filesystem and its switch into it, done by podinit inside the
container's own mount namespace. Only the standard library: it runs at every start.

The root is a fresh tmpfs (the pod's `root/` directory is only its mount point) holding:
    /usr /bin /sbin /lib*   the host's system directories, read-only (or their symlinks)
    /etc                    a tmpfs with only the host entries a program needs to run
                            (`ETC_ENTRIES`: loader cache, passwd/group, TLS roots, ...),
                            read-only; never shadow, sudoers or ssh keys
    /dev                    null zero full random urandom tty, /dev/shm, fd links
    /proc                   a new procfs of the container's own PID namespace, with
                            /proc/sys and /proc/sysrq-trigger read-only (as runc does)
    /sys                    sysfs of the pod's network namespace, read-only
    + the container's mounts (hosts file, /tmp, volumes, sockets) by `podinit.apply_mounts`
Then pivot_root makes it `/` and the host's tree is detached: no state dir, no other
pod's files, no host process roots. Every mount is nosuid and nodev (device nodes keep
dev), so a setuid file in a volume or in /usr grants nothing.

Must not know: plans, Kubernetes, Istio.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

# The host's /etc entries a container gets (read-only). Anything else under /etc stays out.
ETC_ENTRIES = (
    "alternatives", "ca-certificates", "ca-certificates.conf", "debian_version", "gai.conf",
    "group", "host.conf", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime",
    "mime.types", "networks", "nsswitch.conf", "os-release", "passwd", "pki", "protocols",
    "resolv.conf", "services", "ssl", "timezone",
)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")

_libc = ctypes.CDLL(None, use_errno=True)


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    rc = _libc.mount(
        source.encode() if source else None,
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    """unshare(2) (os.unshare needs Python 3.12)."""
    if _libc.unshare(ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")


def bind(source: str, target: str, *, read_only: bool, device: bool = False) -> None:
    """Bind `source` at `target` (which must exist), then set its flags: a bind mount
    takes nosuid/nodev/ro only on a remount."""
    mount(source, target, None, MS_BIND | MS_REC)
    flags = MS_BIND | MS_REMOUNT | MS_NOSUID | (0 if device else MS_NODEV)
    mount(None, target, None, flags | (MS_RDONLY if read_only else 0))


def _make_target(path: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(path, exist_ok=True)
    elif not os.path.lexists(path):
        open(path, "w").close()


def _copy_entry(host: str, inside: str, read_only: bool = True) -> None:
    """Mirror one host path at `inside`: a symlink as a symlink, else a bind."""
    if os.path.islink(host):
        os.symlink(os.readlink(host), inside)
    elif os.path.exists(host):
        _make_target(inside, os.path.isdir(host))
        bind(host, inside, read_only=read_only)


def build_root(root: str, hostname: str) -> None:
    """Fill `root` (an existing empty directory) with the container's base filesystem."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
    for path in SYSTEM_DIRS:
        _copy_entry(path, root + path)
    etc = root + "/etc"
    os.mkdir(etc)
    for entry in ETC_ENTRIES:
        _copy_entry(f"/etc/{entry}", f"{etc}/{entry}")
    with open(f"{etc}/hostname", "w") as f:
        f.write(hostname + "\n")
    _dev(root + "/dev")
    for sub in ("proc", "sys", "tmp", "run", "var/tmp", ".oldroot"):
        os.makedirs(f"{root}/{sub}", exist_ok=True)
    os.chmod(f"{root}/var/tmp", 0o1777)
    os.chmod(f"{root}/run", 0o755)


def _dev(dev: str) -> None:
    os.mkdir(dev)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            _make_target(f"{dev}/{name}", False)
            bind(f"/dev/{name}", f"{dev}/{name}", read_only=False, device=True)
    os.mkdir(f"{dev}/shm")
    mount("tmpfs", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")


def enter_root(root: str, read_only: bool) -> None:
    """pivot_root into `root`, detach the host's tree, mount /proc and /sys."""
    old = root + "/.oldroot"
    if _libc.syscall(_SYS_PIVOT_ROOT, root.encode(), old.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"pivot_root {root}: {os.strerror(err)}")
    os.chdir("/")
    if _libc.umount2(b"/.oldroot", MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"detach the host root: {os.strerror(err)}")
    os.rmdir("/.oldroot")
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for path in ("/proc/sys", "/proc/sysrq-trigger"):
        if os.path.exists(path):
            bind(path, path, read_only=True)
    # Not every kernel lets a fresh sysfs be mounted here; /sys then stays empty.
    with contextlib.suppress(OSError):
        mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)
    if read_only:
        mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


# asm-generic/unistd.h and arch/x86/entry/syscalls: pivot_root has no libc wrapper.
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine, 155)
