"""Keeps the control plane running: `sailctl up` starts this, and it starts meshd.

If meshd dies in any way but a clean shutdown (exit status 0 after `sailctl down`), the
keeper starts it again after RESTART_DELAY_S (doubling up to MAX_DELAY_S while it keeps
dying young). Pods and proxies do not depend on meshd for traffic and keep running; the
new meshd adopts them (runtime.pods.LocalNode.setup). The keeper is a child subreaper
(prctl PR_SET_CHILD_SUBREAPER): the container processes of a meshd that died are
reparented here, and reaped here when they exit, instead of lingering as zombies.

SIGTERM/SIGINT are passed to meshd, which shuts the mesh down; the keeper then exits.
Its pid is in `run/keeper.pid`. Only the standard library: it must outlive any bug above.
Must not know: what meshd does.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
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


def main() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    pid_file = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    if pid_file is not None:
        pid_file.write_text(f"{os.getpid()}\n")
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    delay = RESTART_DELAY_S
    try:
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
