"""Process supervision for local pods: start containers, restart them with back-off,
keep their logs bounded, and compute readiness from the kernel's socket tables.

A container is one process group (started with setsid) whose leader is the application
itself: `ip netns exec` and podinit both exec, so the PID we spawn is the app's PID.
Readiness needs no exec into the pod: the kernel lists the listening sockets of the pod's
network namespace (sock_diag, see `listening`), and a LISTEN socket on a declared port
means the port accepts connections (what a kubelet tcpSocket probe checks).

Must not know about namespaces' plumbing, plans' origin or Istio.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sailmesh.runtime.listening import ListenProbe

LOG_LIMIT_BYTES = 5 * 1024 * 1024
BACKOFF_INITIAL = 0.2
BACKOFF_MAX = 5.0
# A container that ran this long before exiting restarts at the initial back-off again.
BACKOFF_RESET_AFTER = 10.0
READY_RECHECK_NOT_READY = 0.2
READY_RECHECK_READY = 1.0


def proc_start_ticks(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat);
    with the PID it identifies a process across PID reuse."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def netns_identity(path: str) -> tuple[int, int] | None:
    """(inode, device) of a namespace file: equal identities mean the same namespace."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_dev)


class AdoptedProcess:
    """A container process started by an earlier daemon (not our child): the part of
    subprocess.Popen the supervisor uses, from /proc. Its exit status cannot be known."""

    def __init__(self, pid: int, start_ticks: int) -> None:
        self.pid = pid
        self.start_ticks = start_ticks
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not _same_live_process(self.pid, self.start_ticks):
            self.returncode = -1
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode


def _same_live_process(pid: int, start_ticks: int) -> bool:
    """Whether `pid` still is the process that started at `start_ticks` and has not exited
    (a zombie, not yet reaped by its new parent, counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0] not in ("Z", "X") and int(fields[19]) == start_ticks


class ContainerProcess:
    """One container: its launch command, current process, restart bookkeeping."""

    def __init__(self, name: str, launch_argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.launch_argv = list(launch_argv)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | AdoptedProcess | None = None
        self.start_ticks: int | None = None
        self.restarts = 0
        self.ever_started = False
        self.backoff = BACKOFF_INITIAL
        self.restart_at = 0.0
        self.started_mono = 0.0
        self.last_error = ""
        self._exit_handled = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    def adopt(self, pid: int, start_ticks: int, restarts: int) -> None:
        """Take over a process an earlier daemon started (see LocalNode.setup)."""
        self.proc = AdoptedProcess(pid, start_ticks)
        self.start_ticks = start_ticks
        self.restarts = restarts
        self.ever_started = True
        self.started_mono = time.monotonic()
        self._exit_handled = False

    def note(self, text: str) -> None:
        """Append a runtime line to the container log, where `logs` readers look."""
        with contextlib.suppress(OSError), open(self.log_path, "ab") as log:
            log.write(f"[sailmesh] {time.strftime('%H:%M:%S')} {text}\n".encode())

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    self.launch_argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # own process group: stop signals the tree
                    close_fds=True,
                )
        except OSError as exc:
            self.proc = None
            self.last_error = f"cannot start container {self.name}: {exc}"
            self.note(self.last_error)
            self._schedule_restart(time.monotonic())
            return
        self._exit_handled = False
        self.start_ticks = proc_start_ticks(self.proc.pid)
        self.started_mono = time.monotonic()
        self.ever_started = True
        self.last_error = ""

    def _schedule_restart(self, now: float) -> None:
        self.restart_at = now + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)

    def check(self, now: float) -> bool:
        """Reap an exited process or restart a due one; True if the process changed."""
        if self.proc is not None and not self._exit_handled:
            code = self.proc.poll()
            if code is None:
                return False
            if now - self.started_mono >= BACKOFF_RESET_AFTER:
                self.backoff = BACKOFF_INITIAL
            self._exit_handled = True
            self.restarts += 1
            self._schedule_restart(now)
            self.last_error = f"container {self.name} exited with code {code}"
            self.note(f"{self.last_error}; restarting in {self.restart_at - now:.1f}s")
            return True
        if now >= self.restart_at:
            self.start()
            return True
        return False

    def rotate_log(self) -> None:
        """Keep the previous 5 MB in `<log>.1` and truncate: the process's fd has
        O_APPEND, so its next write lands at the new end of file."""
        with contextlib.suppress(OSError):
            if self.log_path.stat().st_size > LOG_LIMIT_BYTES:
                shutil.copyfile(self.log_path, self.log_path.with_name(self.log_path.name + ".1"))
                os.truncate(self.log_path, 0)

    def signal_group(self, sig: int) -> None:
        # Only while the leader is unreaped: until then its PID (= the group id) cannot
        # have been reused by an unrelated process.
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)


class PodProcesses:
    """The containers of one pod and the pod-level readiness derived from them."""

    def __init__(
        self,
        containers: Sequence[ContainerProcess],
        ready_ports: Sequence[int],
        netns_path: str,
    ) -> None:
        self.containers = list(containers)
        self.netns_path = netns_path
        self.ready_ports = set(ready_ports)
        self.ready = False
        self.stopping = False
        self._next_ready_check = 0.0
        self._probe: ListenProbe | None = None

    def start(self) -> None:
        for c in self.containers:
            c.start()

    @property
    def started(self) -> bool:
        return all(c.ever_started for c in self.containers)

    @property
    def restarts(self) -> int:
        return sum(c.restarts for c in self.containers)

    @property
    def message(self) -> str:
        return next((c.last_error for c in self.containers if c.last_error), "")

    def first_pid(self) -> int | None:
        return next((c.pid for c in self.containers if c.pid is not None), None)

    def tick(self, now: float) -> None:
        if self.stopping:
            return
        for c in self.containers:
            if c.check(now):
                self._next_ready_check = 0.0
        pids = [c.pid for c in self.containers]
        if any(p is None for p in pids):
            self.ready = False
            return
        if now < self._next_ready_check:
            return
        self.ready = self.ready_ports <= self._listening()
        wait = READY_RECHECK_READY if self.ready else READY_RECHECK_NOT_READY
        self._next_ready_check = now + wait

    def _listening(self) -> set[int]:
        """Listening ports of the pod's own namespace (never the host's)."""
        if not self.ready_ports:
            return set()
        try:
            if self._probe is None:
                self._probe = ListenProbe(self.netns_path)
            return self._probe.ports()
        except OSError:
            self._close_probe()  # the namespace went away or is not there yet
            return set()

    def _close_probe(self) -> None:
        if self._probe is not None:
            self._probe.close()
            self._probe = None

    def rotate_logs(self) -> None:
        for c in self.containers:
            c.rotate_log()

    def stop(self, grace: float) -> None:
        """SIGTERM every container's group, wait up to `grace`, then SIGKILL."""
        self.stopping = True
        self.ready = False
        self._close_probe()
        for c in self.containers:
            c.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if all(c.proc is None or c.proc.poll() is not None for c in self.containers):
                break
            time.sleep(0.02)
        for c in self.containers:
            c.signal_group(signal.SIGKILL)
            if c.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    c.proc.wait(timeout=2)


class Supervisor:
    """A daemon thread calling `tick()` every `interval` seconds until stopped.
    `wake()` runs the next tick at once (after a reconcile, for a quick first status)."""

    def __init__(self, tick: Callable[[], None], interval: float = 0.1) -> None:
        self._tick = tick
        self._interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sailmesh-supervisor", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception as exc:  # the supervisor must outlive one bad tick
                print(f"sailmesh supervisor: tick failed: {exc!r}", flush=True)
            self._wake.wait(self._interval)
            self._wake.clear()
