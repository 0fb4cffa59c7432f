"""Keeps the control plane running: `sailctl up` starts this, and it starts meshd.

If meshd dies in any way but a clean shutdown (exit status 0 after `sailctl down`), the
keeper starts it again after RESTART_DELAY_S (doubling up to MAX_DELAY_S while it keeps
dying young). Pods and proxies do not depend on meshd for traffic and keep running; the
new meshd adopts them (runtime.pods.LocalNode.setup). The keeper is a child subreaper
(prctl PR_SET_CHILD_SUBREAPER): the container processes of a meshd that died are
reparented here, and reaped here when they exit, instead of lingering as zombies.

A keeper that starts while a meshd of the same mesh still runs (its own keeper died, and
systemd started a new one: meshd.unit) does not start a second meshd: it watches that one
(run/meshd.pid, beside its own pid file) and takes over when it ends. A meshd that was
killed leaves its pid file behind, so the keeper starts a new one, which adopts the pods; a
meshd that ended on its own (`sailctl down`) removed it, so the keeper exits 0.

SIGTERM/SIGINT are passed to meshd, which shuts the mesh down; the keeper then exits.
Its pid is in `run/keeper.pid`. Only the standard library: it must outlive any bug above.
Must not know: what meshd does.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

RESTART_DELAY_S = 0.2
MAX_DELAY_S = 1.0
# A meshd that ran this long before dying restarts at the initial delay again.
STABLE_AFTER_S = 10.0
_PR_SET_CHILD_SUBREAPER = 36


def _log(text: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} keeper: {text}", flush=True)


def _wait(pid: int) -> int:
    """Reap children until `pid` exits; its exit code (negative: killed by that signal)."""
    while True:
        try:
            reaped, status = os.wait()
        except InterruptedError:
            continue
        except ChildProcessError:
            return -1
        if reaped == pid:
            return os.waitstatus_to_exitcode(status)


def _orphaned_meshd(meshd_pid_file: Path) -> int | None:
    """The pid of a meshd of this mesh that runs without its keeper, if any."""
    try:
        pid = int(meshd_pid_file.read_text().strip() or 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if pid != os.getpid() and b"sailmesh.meshd" in cmdline else None


def _watch(pid: int) -> None:
    """Wait until `pid` (not a child of this process) exits."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while not poller.poll(1000):
            pass
    finally:
        os.close(fd)


def main() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    pid_file = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    if pid_file is not None:
        pid_file.write_text(f"{os.getpid()}\n")
    meshd_pid_file = (pid_file.parent if pid_file else Path.cwd()) / "meshd.pid"
    stopping = False
    child: subprocess.Popen[bytes] | None = None
    watched: int | None = None

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in (child.pid if child is not None else None, watched):
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    delay = RESTART_DELAY_S
    try:
        watched = _orphaned_meshd(meshd_pid_file)
        if watched is not None:
            _log(f"meshd {watched} runs without its keeper; watching it")
            _watch(watched)
            if stopping or not meshd_pid_file.exists():
                return 0  # it shut the mesh down (its pid file is gone)
            _log(f"meshd {watched} was killed; starting a new one")
            watched = None
        while True:
            started = time.monotonic()
            child = subprocess.Popen([sys.executable, "-P", "-m", "sailmesh.meshd"], cwd="/",
                                     stdin=subprocess.DEVNULL)
            code = _wait(child.pid)
            child.returncode = code  # reaped above; Popen must not wait for it again
            if stopping or code == 0:
                return 0 if code == 0 else code
            if time.monotonic() - started > STABLE_AFTER_S:
                delay = RESTART_DELAY_S
            _log(f"meshd {child.pid} exited with {code}; restarting in {delay:.1f}s")
            time.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)
    finally:
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
