"""A container process's credentials: uid, gid, supplementary groups, Linux capabilities
and no_new_privs, set by podinit just before the exec. Only the standard library.

Capabilities follow the container runtimes Kubernetes uses (containerd, CRI-O):
- the bounding set is the container's set (`DEFAULT_CAPABILITIES` + add - drop, or all
  of them when privileged); what is not in it is gone for good, for every process;
- a root container starts with that set effective and permitted;
- a non-root container starts with none (the execve rules clear them), which is also what
  Kubernetes gives a non-root container whatever `capabilities.add` says.
A non-root process sailmesh itself runs (the ingress gateway's Envoy) may keep named
capabilities as *ambient* ones, which survive the exec; applications never get any.
no_new_privs is set when `allowPrivilegeEscalation: false` (as the kubelet does), so
setuid files and file capabilities grant nothing afterwards.

Must not know: Kubernetes objects, plans, Istio.
"""

from __future__ import annotations

import ctypes
import os

# include/uapi/linux/capability.h
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",
    "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE",
    "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
    "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
    "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
# containerd's and CRI-O's default set (oci/spec_opts.go defaultUnixCaps).
DEFAULT_CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)

_PR_SET_PDEATHSIG = 1
_PR_SET_KEEPCAPS = 8
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_RAISE = 2
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_CAP_VERSION_3 = 0x20080522
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(os.uname().machine, 126)

_libc = ctypes.CDLL(None, use_errno=True)


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def capability_set(add: tuple[str, ...], drop: tuple[str, ...], privileged: bool) -> set[int]:
    """Numbers of the container's capabilities; names as Kubernetes writes them (with or
    without `CAP_`, `ALL` in add or drop)."""
    def norm(names: tuple[str, ...]) -> set[str]:
        return {n.upper().removeprefix("CAP_") for n in names}

    added, dropped = norm(add), norm(drop)
    if privileged or "ALL" in added:
        names = set(CAPABILITIES)
    else:
        names = set(DEFAULT_CAPABILITIES) | (added & set(CAPABILITIES))
    names = set() if "ALL" in dropped else names - dropped
    if privileged:
        names = set(CAPABILITIES)
    return {CAPABILITIES.index(n) for n in names}


def set_parent_death_signal(signal_number: int) -> None:
    _check(_libc.prctl(_PR_SET_PDEATHSIG, signal_number, 0, 0, 0), "prctl(PDEATHSIG)")


def apply_credentials(uid: int, gid: int, groups: tuple[int, ...], caps: set[int],
                      no_new_privs: bool, ambient: frozenset[int] | set[int] = frozenset()) -> None:
    """Bound the capabilities, switch uid/gid, then set the effective ones (root), or
    raise the `ambient` ones (non-root)."""
    last = _last_cap()
    for cap in range(last + 1):
        if cap not in caps and cap not in ambient:
            _check(_libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap}")
    if uid != 0 and ambient:
        _check(_libc.prctl(_PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl(KEEPCAPS)")
    # setgroups before setgid before setuid: each step needs the privilege the next drops.
    os.setgroups(list(groups))
    os.setgid(gid)
    os.setuid(uid)
    if uid == 0:
        _capset(caps, inheritable=frozenset())
    elif ambient:
        _capset(ambient, inheritable=ambient)  # ambient ⊆ permitted ∩ inheritable
        for cap in sorted(ambient):
            _check(_libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_RAISE, cap, 0, 0),
                   f"raise ambient capability {cap}")
    if no_new_privs:
        _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")


def _capset(caps: frozenset[int] | set[int], inheritable: frozenset[int] | set[int]) -> None:
    mask = sum(1 << c for c in caps)
    inh = sum(1 << c for c in inheritable)
    header = _Header(_CAP_VERSION_3, 0)
    data = (_Data * 2)()
    for word in range(2):
        bits, ibits = ((m >> (32 * word)) & 0xFFFFFFFF for m in (mask, inh))
        data[word] = _Data(bits, bits, ibits)
    _check(_libc.syscall(_SYS_CAPSET, ctypes.byref(header), data), "capset")


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(CAPABILITIES) - 1
