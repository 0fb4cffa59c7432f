"""Supervision without namespaces: back-off, restart counting, log bounds, socket tables."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from sailmesh.runtime.listening import ListenProbe
from sailmesh.runtime.supervisor import (
    BACKOFF_MAX,
    LOG_LIMIT_BYTES,
    ContainerProcess,
    proc_start_ticks,
)


def test_crashing_container_backs_off_doubling_up_to_the_cap(tmp_path: Path) -> None:
    c = ContainerProcess("app", ["/bin/sh", "-c", "echo boom; exit 3"], tmp_path / "app.log")
    c.start()
    assert c.proc is not None
    c.proc.wait()
    delays = []
    for _ in range(7):
        now = time.monotonic()
        assert c.check(now)  # reaps the exit
        delays.append(round(c.restart_at - now, 3))
        assert not c.check(now)  # not due yet
        assert c.check(c.restart_at)  # due: restarted
        assert c.proc is not None
        c.proc.wait()
    assert delays == [0.2, 0.4, 0.8, 1.6, 3.2, BACKOFF_MAX, BACKOFF_MAX]
    assert c.restarts == 7
    log = (tmp_path / "app.log").read_text()
    assert log.count("boom") == 8 and "exited with code 3" in log


def test_log_is_truncated_with_one_previous_generation(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"x" * (LOG_LIMIT_BYTES + 1))
    ContainerProcess("app", ["/bin/true"], log).rotate_log()
    assert log.stat().st_size == 0
    assert (tmp_path / "app.log.1").stat().st_size == LOG_LIMIT_BYTES + 1


def test_listening_ports_come_from_sock_diag_in_the_namespace() -> None:
    probe = ListenProbe(f"/proc/{os.getpid()}/ns/net")
    try:
        with socket.socket() as s, socket.socket(socket.AF_INET6) as s6:
            s.bind(("127.0.0.1", 0))
            s.listen()
            s6.bind(("::1", 0))
            s6.listen()
            port = s.getsockname()[1]
            with socket.create_connection(s.getsockname()):  # an established socket: not listed
                ports = probe.ports()
            assert {port, s6.getsockname()[1]} <= ports
        assert port not in probe.ports()
    finally:
        probe.close()
    assert proc_start_ticks(os.getpid()) == proc_start_ticks(os.getpid()) is not None
