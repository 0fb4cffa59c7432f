"""Attacks from inside ordinary application containers (curlimages/curl without a
securityContext, so root, and the same image with runAsUser 1000), as Istio's threat model
assumes a compromised app: each must fail. The app containers have sidecars; a victim pod
holds a Secret volume; the mesh's state dir holds the CA key and every applied Secret.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from sailmesh.model.proxy import node_id
from tests.e2e.mesh import Mesh

pytestmark = pytest.mark.e2e

# containerd's default capability set as a CapEff mask: no NET_ADMIN (12), SYS_PTRACE (19),
# SYS_ADMIN (21).
DEFAULT_CAPS = 0xA80425FB
ATTACKERS = ("root", "user")


def _deployment(name: str, security: dict[str, Any] | None = None,
                secret: str | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "curlimages/curl",
                                 "command": ["/bin/sleep", "infinity"]}
    spec: dict[str, Any] = {"containers": [container]}
    if security:
        container["securityContext"] = security
    if secret:
        container["volumeMounts"] = [{"name": "s", "mountPath": "/etc/victim"}]
        spec["volumes"] = [{"name": "s", "secret": {"secretName": secret}}]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "foo"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


def _manifests() -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "foo", "labels": {"istio-injection": "enabled"}}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "victim", "namespace": "foo"},
         "stringData": {"token": "victim-secret-value"}},
        _deployment("root"),
        _deployment("user", {"runAsUser": 1000, "runAsNonRoot": True}),
        _deployment("victim", secret="victim"),
    ]


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("e13")
    try:
        m.sailctl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                         "items": _manifests()}))
        m.wait_pods_ready("foo", 3)
        yield m
    finally:
        m.stop()


def _status(m: Mesh, app: str) -> dict[str, Any]:
    pods = json.loads(m.sailctl("status", "-o", "json").stdout)["pods"]
    return next(p for p in pods if p["namespace"] == "foo" and p["name"].startswith(f"{app}-"))


def _pod(m: Mesh, app: str) -> str:
    return str(_status(m, app)["name"])


def _in(m: Mesh, app: str, script: str) -> tuple[int, str]:
    """Run `script` in the app container of `app` (its uid, capabilities, namespaces)."""
    proc = m.sailctl("exec", "-n", "foo", _pod(m, app), "--", "sh", "-c", script, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("app", ATTACKERS)
def test_identity_and_capabilities(mesh: Mesh, app: str) -> None:
    _, out = _in(mesh, app, "id -u; grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status")
    uid, caps = out.split()[0], int(re.search(r"CapEff:\s+(\w+)", out).group(1), 16)
    if app == "root":
        assert uid == "0" and caps == DEFAULT_CAPS
    else:
        assert uid == "1000" and caps == 0
    for bit in (12, 19, 21):  # NET_ADMIN, SYS_PTRACE, SYS_ADMIN
        assert not caps & (1 << bit)


@pytest.mark.parametrize("app", ATTACKERS)
def test_state_dir_and_host_files_are_out_of_reach(mesh: Mesh, app: str) -> None:
    home = mesh.home
    paths = [home / "ca", home / "resources" / "Secret", home / "pods", home / "run",
             "/etc/shadow", "/etc/sudoers", "/root/.ssh"]
    for path in paths:
        code, out = _in(mesh, app, f"ls {path}")
        assert code != 0, f"{path} is visible from {app}: {out}"
    # The CA key and the victim's Secret by content: nothing under / holds them.
    key_line = (home / "ca" / "root-key.pem").read_text().splitlines()[1]
    _, out = _in(mesh, app, f"grep -rlF -e victim-secret-value -e '{key_line}' / "
                            "--exclude-dir=proc --exclude-dir=sys 2>/dev/null | head")
    assert out.strip() == "", out


@pytest.mark.parametrize("app", ATTACKERS)
def test_only_its_own_processes_are_visible(mesh: Mesh, app: str) -> None:
    _, out = _in(mesh, app, "ls /proc | grep -E '^[0-9]+$'")
    pids = [int(p) for p in out.split()]
    assert 1 in pids and len(pids) <= 4, out  # sleep (PID 1), sh, ls, grep
    meshd = int((mesh.home / "run" / "meshd.pid").read_text().split()[0])
    _code, out = _in(mesh, app, f"cat /proc/{meshd}/cmdline")
    assert "meshd" not in out
    # No other pod's (the victim's Secret volume) or the host's process root to walk into.
    _, out = _in(mesh, app, "cat /proc/*/root/etc/victim/token 2>&1")
    assert "victim-secret-value" not in out


@pytest.mark.parametrize("app", ATTACKERS)
def test_no_control_plane_or_proxy_socket_is_reachable(mesh: Mesh, app: str) -> None:
    _, out = _in(mesh, app, "find / -xdev -type s 2>/dev/null; find /tmp /run /etc /var "
                            "-type s 2>/dev/null")
    assert "xds" not in out and "admin" not in out and "meshd" not in out, out


@pytest.mark.parametrize("app", ATTACKERS)
def test_capture_cannot_be_flushed_and_host_cannot_be_entered(mesh: Mesh, app: str) -> None:
    for attack in ("iptables -t nat -F", "nsenter -t 1 -n -m true", "mount -t tmpfs x /tmp",
                   "echo x > /proc/sys/kernel/core_pattern"):
        code, out = _in(mesh, app, attack)
        assert code != 0, f"{attack} worked in {app}: {out}"
    # The capture rules are all still there, seen from the host.
    netns = _status(mesh, app)["netns"]
    rules = mesh.sh(f"ip netns exec {netns} iptables-save -t nat").stdout
    assert "ISTIO_OUTPUT" in rules and "REDIRECT" in rules


@pytest.mark.parametrize("app", ATTACKERS)
def test_volumes_and_system_dirs_are_nosuid(mesh: Mesh, app: str) -> None:
    _, out = _in(mesh, app, "cat /proc/self/mounts")
    assert " /tmp " in out
    for line in out.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[1] in ("/", "/usr", "/tmp", "/etc/hosts"):
            assert "nosuid" in fields[3], line
    code, out = _in(mesh, app, "touch /usr/x")
    assert code != 0


def test_setuid_volume_modes_are_refused(mesh: Mesh) -> None:
    doc = _deployment("setuid")
    doc["spec"]["template"]["spec"]["volumes"] = [
        {"name": "v", "configMap": {"name": "x", "defaultMode": 0o6777}}]
    proc = mesh.sailctl("apply", "-f", "-", input=json.dumps(doc), check=False)
    assert proc.returncode != 0 and "defaultMode" in proc.stderr + proc.stdout


def test_run_as_non_root_with_root_user_is_blocked(mesh: Mesh) -> None:
    doc = _deployment("wants-root", {"runAsNonRoot": True})
    mesh.sailctl("apply", "-f", "-", input=json.dumps(doc))
    out = mesh.sailctl("get", "pods", "-n", "foo").stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("wants-root-"))
    assert "Running" not in line
    assert "runAsNonRoot" in _status(mesh, "wants-root")["message"]
    mesh.sailctl("delete", "deployment", "-n", "foo", "wants-root")


def _ask(socket: str, node_id: str) -> grpc.StatusCode | int:
    """One ADS request for clusters as `node_id` on `socket`: the status code of a
    refusal, or the number of clusters served."""
    async def ask() -> grpc.StatusCode | int:
        async with grpc.aio.insecure_channel(f"unix:{socket}") as channel:
            call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).DeltaAggregatedResources()
            request = discovery_pb2.DeltaDiscoveryRequest(
                type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster")
            request.node.CopyFrom(base_pb2.Node(id=node_id))
            await call.write(request)
            try:
                response = await asyncio.wait_for(call.read(), 5)
            except grpc.aio.AioRpcError as exc:
                return exc.code()
            return len(response.resources)

    return asyncio.run(ask())


def test_a_pods_channel_serves_only_its_own_node(mesh: Mesh) -> None:
    pods = json.loads(mesh.sailctl("status", "-o", "json").stdout)["pods"]
    root, victim = (next(p for p in pods if p["name"].startswith(f"{a}-")) for a in ("root", "victim"))
    channel = str(Path(root["admin"]).parent / "xds.sock")
    own, other = (node_id("sidecar", "foo", p["name"]) for p in (root, victim))
    assert isinstance(_ask(channel, own), int)
    assert _ask(channel, other) == grpc.StatusCode.PERMISSION_DENIED
    log = (mesh.home / "run" / "meshd.log").read_text()
    assert f"refused node id {other}" in log


def test_the_gateway_runs_as_1337_with_only_its_own_files(mesh: Mesh) -> None:
    pods = json.loads(mesh.sailctl("status", "-o", "json").stdout)["pods"]
    gateway = next(p for p in pods if p["router"] and "ingressgateway" in p["name"])
    proc = mesh.sailctl("exec", "-n", gateway["namespace"], gateway["name"], "--", "sh", "-c",
                        "grep -E '^(Uid|CapEff)' /proc/1/status; ls /etc; ls "
                        f"{mesh.home}/ca 2>&1", check=False)
    uids = re.search(r"Uid:\s+(\d+)", proc.stdout)
    assert uids is not None and uids.group(1) == "1337", proc.stdout
    assert "shadow" not in proc.stdout and "root-key" not in proc.stdout
