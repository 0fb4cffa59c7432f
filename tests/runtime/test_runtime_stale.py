"""End-to-end: a daemon killed with its pods running leaves namespaces and processes;
the next `setup()` of the same instance (`rt2`) adopts them (same processes, addresses),
a changed plan replaces an adopted pod (same address), and `teardown()` leaves nothing but
the host's safety-net routes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sailmesh.runtime.network import NETNS_DIR, pids_in_netns
from sailmesh.runtime.pods import ContainerPlan, LocalNode, PodPlan

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: pods are network namespaces"),
]

INSTANCE = "rt2"
PLAN = PodPlan("test", "sleeper", {}, (ContainerPlan("app", ("/bin/sleep", "infinity"), {}),))

DAEMON = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from sailmesh.runtime.pods import ContainerPlan, LocalNode, PodPlan
    node = LocalNode("rt2", Path(sys.argv[1]))
    node.setup()
    plan = PodPlan("test", "sleeper", {}, (ContainerPlan("app", ("/bin/sleep", "infinity"), {}),))
    node.reconcile_pods([plan])
    status = node.wait_ready("test", "sleeper", timeout=10)
    pid = int(node.exec_argv("test", "sleeper", [])[2])
    print(json.dumps({"ip": status.ip, "netns": status.netns, "pid": pid}), flush=True)
    time.sleep(3600)
    """
)


def running(pid: int) -> bool:
    """True if the process exists and is not a zombie (an orphan's zombie lingers until
    PID 1 reaps it, which some inits do late)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def instance_netns() -> list[str]:
    return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(f"{INSTANCE}-")) if NETNS_DIR.is_dir() else []


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    # Whatever happened in the test, leave no namespace or process of this instance.
    node = LocalNode(INSTANCE, tmp_path)
    node.setup()
    node.teardown()


def test_setup_adopts_the_pods_of_a_killed_daemon(state_dir: Path) -> None:
    daemon = subprocess.Popen(
        [sys.executable, "-c", DAEMON, str(state_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert daemon.stdout is not None
        before = json.loads(daemon.stdout.readline())
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
    # The crash left the pod running.
    assert before["netns"] in instance_netns()
    assert before["pid"] in pids_in_netns(before["netns"])

    processes = set(pids_in_netns(before["netns"]))
    node = LocalNode(INSTANCE, state_dir)
    node.setup()
    try:
        assert node.adoptable() == [("test", "sleeper")]
        assert running(before["pid"]) and before["netns"] in instance_netns()
        node.reconcile_pods([PLAN])
        after = node.wait_ready("test", "sleeper", timeout=10)
        assert (after.ip, after.netns) == (before["ip"], before["netns"])
        # Untouched: every process of the crashed daemon's pod still runs. (The pod's init
        # may have started its app after `processes` was read, so the set can only grow.)
        now = set(pids_in_netns(after.netns))
        assert processes <= now
        processes = now
        # The adopted process is supervised: killed, it is started again.
        for pid in processes:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while node.statuses()[0].restarts < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        restarted = node.wait_ready("test", "sleeper", timeout=10)
        assert restarted.restarts >= 1
        assert not set(pids_in_netns(after.netns)) & processes
        # A changed plan replaces the pod; its address stays.
        changed = PodPlan("test", "sleeper", {}, (ContainerPlan("app", ("/bin/sleep", "7d"), {}),))
        node.reconcile_pods([changed])
        assert node.wait_ready("test", "sleeper", timeout=10).ip == before["ip"]
    finally:
        node.teardown()

    assert instance_netns() == []
    hostns = Path(node.host_netns_path())
    assert os.stat(hostns).st_ino != os.stat("/proc/self/ns/net").st_ino  # unmounted
    routes = subprocess.run(["ip", "route", "show", "type", "unreachable"], capture_output=True, text=True)
    assert "10.244.0.0/16" in routes.stdout and "10.96.0.0/16" in routes.stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"{INSTANCE}v" not in links


def test_teardown_of_a_running_node_deletes_its_pods(state_dir: Path) -> None:
    node = LocalNode(INSTANCE, state_dir)
    node.setup()
    node.setup()  # idempotent
    try:
        node.reconcile_pods([PLAN])
        status = node.wait_ready("test", "sleeper", timeout=10)
        assert sorted(node._net.node_links()) == ["lo", f"{INSTANCE}v{status.netns.split('-')[1]}"]
    finally:
        node.teardown()
    assert instance_netns() == []
    assert node.statuses() == []
