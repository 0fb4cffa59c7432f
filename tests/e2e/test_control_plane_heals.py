"""The control plane heals: meshd is SIGKILLed while requests flow through the ingress
gateway and between two sidecars (each well over 100 req/s). Its keeper starts a new
meshd within 2 s, which adopts the running pods (same names, IPs and processes; proxies
reconnect to their channels), no request fails, and workload certificates keep being
renewed afterwards (a 6 s SECRET_TTL). A keeper that dies is replaced as systemd replaces
it (`sailctl unit`): the new keeper adopts the running meshd."""

from __future__ import annotations

import collections
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sailmesh.meshd.control import ControlError, call
from tests.e2e.mesh import Mesh, eventually
from tests.unit.test_systemd_unit import parse_unit, unit_words

pytestmark = pytest.mark.e2e
HTTPBIN = ["gunicorn", "-b", "0.0.0.0:8080", "httpbin:app", "-k", "gevent"]
LOAD_S = 8.0

MANIFESTS = """
apiVersion: v1
kind: Namespace
metadata: {name: app, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: httpbin, namespace: app}
spec:
  selector: {matchLabels: {app: httpbin}}
  template:
    metadata: {labels: {app: httpbin}}
    spec:
      containers:
      - name: httpbin
        image: docker.io/kong/httpbin
        command: HTTPBIN_COMMAND
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: app}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: sleep, namespace: app}
spec:
  selector: {matchLabels: {app: sleep}}
  template:
    metadata: {labels: {app: sleep}}
    spec:
      containers: [{name: sleep, image: curlimages/curl, command: [/bin/sleep, infinity]}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: heal, namespace: app}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["heal.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: heal, namespace: app}
spec:
  hosts: ["heal.example.com"]
  gateways: [heal]
  http:
  - route:
    - destination: {host: httpbin.app.svc.cluster.local, port: {number: 80}}
---
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: short-ttl, namespace: istio-system}
spec:
  meshConfig:
    defaultConfig:
      proxyMetadata: {SECRET_TTL: 6s}
""".replace("HTTPBIN_COMMAND", json.dumps(HTTPBIN))

# Requests from inside the sleep pod to the httpbin Service, through both sidecars.
IN_MESH = """
import http.client, threading, time
ok, bad, end = [0], [0], time.monotonic() + LOAD_S
def run():
    while time.monotonic() < end:
        try:
            c = http.client.HTTPConnection("httpbin.app", 80, timeout=5)
            c.request("GET", "/status/200"); s = c.getresponse().status; c.close()
            ok[0] += s == 200; bad[0] += s != 200
        except OSError:
            bad[0] += 1
threads = [threading.Thread(target=run) for _ in range(3)]
[t.start() for t in threads]; [t.join() for t in threads]
print(ok[0], bad[0])
""".replace("LOAD_S", str(LOAD_S))


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("e14")
    try:
        m.sailctl("apply", "-f", "-", input=MANIFESTS)
        m.wait_pods_ready("app", 2)
        yield m
    finally:
        m.stop()


def _status(m: Mesh) -> dict[str, Any]:
    return call(m.home / "run" / "meshd.sock", "status", timeout=5)


def _pods(m: Mesh) -> dict[str, tuple[str, float]]:
    return {f"{p['namespace']}/{p['name']}": (p["ip"], p["started_at"])
            for p in _status(m)["pods"]}


def _processes(m: Mesh) -> dict[str, set[int]]:
    """Host PIDs of every process in each pod's network namespace."""
    out: dict[str, set[int]] = {}
    for p in _status(m)["pods"]:
        inode = os.stat(f"/run/netns/{p['netns']}").st_ino
        out[p["name"]] = {int(pid) for pid in os.listdir("/proc")
                          if pid.isdigit() and _netns(pid) == inode}
    return out


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _netns(pid: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def _gateway_load(counts: dict[str, int]) -> None:
    end = time.monotonic() + LOAD_S

    def run() -> None:
        while time.monotonic() < end:
            try:
                c = http.client.HTTPConnection("127.0.0.1", 8080, timeout=5)
                c.request("GET", "/status/200", headers={"Host": "heal.example.com"})
                status = c.getresponse().status
                c.close()
                counts["ok" if status == 200 else "bad"] += 1
                if status != 200:
                    counts[f"status {status} at {time.monotonic() - end + LOAD_S:.2f}s"] += 1
            except OSError as exc:
                counts["bad"] += 1
                counts[f"{type(exc).__name__} at {time.monotonic() - end + LOAD_S:.2f}s"] += 1

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _serials(m: Mesh) -> dict[str, str]:
    return {i["pod"]: i["serial"] for i in _status(m)["ca"]["identities"]}


def _gateway_serves() -> None:
    c = http.client.HTTPConnection("127.0.0.1", 8080, timeout=5)
    c.request("GET", "/status/200", headers={"Host": "heal.example.com"})
    assert c.getresponse().status == 200
    c.close()


def test_meshd_killed_under_load_is_back_within_2s_and_adopts_everything(mesh: Mesh) -> None:
    eventually(_gateway_serves)  # the route is in effect before the load starts
    pods_before, procs_before = _pods(mesh), _processes(mesh)
    old_pid = _status(mesh)["pid"]
    counts: dict[str, int] = collections.defaultdict(int)
    gateway = threading.Thread(target=_gateway_load, args=(counts,))
    in_mesh: dict[str, str] = {}
    pod = next(n for n in pods_before if n.startswith("app/sleep-")).split("/")[1]

    def inside() -> None:
        proc = mesh.sailctl("-n", "app", "exec", pod, "--", sys.executable, "-c", IN_MESH,
                            timeout=60)
        in_mesh["out"] = proc.stdout

    client = threading.Thread(target=inside)
    gateway.start()
    client.start()
    time.sleep(2.5)
    os.kill(old_pid, signal.SIGKILL)
    killed = time.monotonic()
    new_pid = None
    while time.monotonic() - killed < 10:
        try:
            new_pid = call(mesh.home / "run" / "meshd.sock", "status", timeout=0.5)["pid"]
            if new_pid != old_pid:
                break
        except (ControlError, OSError, ValueError):
            pass
        time.sleep(0.05)
    back_after = time.monotonic() - killed
    gateway.join()
    client.join()
    assert new_pid not in (None, old_pid)
    assert back_after < 2.0, f"control plane back after {back_after:.2f}s"
    ok, bad = map(int, in_mesh["out"].split())
    assert counts["bad"] == 0 and bad == 0, (counts, in_mesh)
    assert counts["ok"] / LOAD_S >= 100 and ok / LOAD_S >= 100, (counts, ok)
    # Same pods: names, IPs, start times and the very same processes.
    assert _pods(mesh) == pods_before
    assert _processes(mesh) == procs_before
    # Proxies reconnected to the new control plane and certificates keep renewing.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        proxies = _status(mesh)["proxies"]
        if proxies and all(p["connected"] for p in proxies.values()):
            break
        time.sleep(0.2)
    assert all(p["connected"] for p in _status(mesh)["proxies"].values())
    first = _serials(mesh)
    time.sleep(5)
    renewed = _serials(mesh)
    server = next(n for n in first if n.startswith("httpbin-"))
    assert renewed[server] != first[server], "no renewal after the restart"
    assert _status(mesh)["pid"] == new_pid


def test_a_killed_sidecar_is_restarted_by_the_new_control_plane(mesh: Mesh) -> None:
    status = _status(mesh)
    pod = next(p for p in status["pods"] if p["name"].startswith("httpbin-"))
    restarts = pod["restarts"]
    envoy = next(pid for pid in _processes(mesh)[pod["name"]]
                 if _cmdline(pid).startswith(b"/usr/local/bin/envoy"))
    os.kill(envoy, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = next(p for p in _status(mesh)["pods"] if p["name"] == pod["name"])
        if now["restarts"] > restarts and now["ready"]:
            return
        time.sleep(0.1)
    raise AssertionError(f"not restarted: {now}")


def test_the_units_keeper_adopts_a_meshd_whose_keeper_died(mesh: Mesh) -> None:
    """systemd (`sailctl unit install`, KillMode=process) restarts only the keeper when the
    keeper dies; the new one, started from the unit's ExecStart and Environment as systemd
    would, watches the running meshd, starts none beside it, and replaces it when it is
    killed — with the same pods."""
    unit = parse_unit(mesh.sailctl("unit", "show").stdout)["Service"]
    env = dict(w.split("=", 1) for w in unit_words(unit["Environment"]))
    assert env["SAILMESH_HOME"] == str(mesh.home)
    keeper_file = mesh.home / "run" / "keeper.pid"
    old_keeper = int(keeper_file.read_text())
    pods_before, meshd = _pods(mesh), _status(mesh)["pid"]
    os.kill(old_keeper, signal.SIGKILL)
    # setsid -f: the keeper is nobody's child here, as under systemd.
    subprocess.run(["setsid", "-f", *unit_words(unit["ExecStart"])], env=env, check=True)
    eventually(lambda: _assert_new_keeper(keeper_file, old_keeper), timeout=5)
    log = mesh.home / "run" / "meshd.log"
    eventually(lambda: _assert_in(f"meshd {meshd} runs without its keeper; watching it",
                                  log.read_text()), timeout=5)
    time.sleep(1)
    assert _status(mesh)["pid"] == meshd  # no second meshd beside it
    os.kill(meshd, signal.SIGKILL)
    killed = time.monotonic()
    new_pid = None
    while time.monotonic() - killed < 10 and new_pid in (None, meshd):
        try:
            new_pid = call(mesh.home / "run" / "meshd.sock", "status", timeout=0.5)["pid"]
        except (ControlError, OSError, ValueError):
            time.sleep(0.05)
    assert new_pid not in (None, meshd)
    assert time.monotonic() - killed < 2.0
    # The new meshd answers at once and adopts the pods right after (as in the test above).
    eventually(lambda: _assert_equal(_pods(mesh), pods_before), timeout=10)
    eventually(_gateway_serves)


def _assert_new_keeper(keeper_file: Path, old: int) -> None:
    pid = int(keeper_file.read_text() or 0)
    assert pid != old and b"sailmesh.meshd.keeper" in _cmdline(pid)


def _assert_equal(got: object, want: object) -> None:
    assert got == want


def _assert_in(needle: str, text: str) -> None:
    assert needle in text
