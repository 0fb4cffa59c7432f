"""Sidecar traffic capture (what istio-init does): the rendered iptables rules (pure, golden
text) and, end to end on node instance `rt3`, where real connections land.

The end-to-end part runs a fake proxy as uid 1337 in a captured pod. It listens on the
inbound (15006) and outbound (15001) capture ports and on the excluded port 15021, and
answers every connection with the port it was accepted on and the connection's original
destination (SO_ORIGINAL_DST), so each test can say exactly which rule a connection hit.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from sailmesh.runtime.capture import render_capture
from sailmesh.runtime.errors import PodRuntimeError
from sailmesh.runtime.plans import CapturePlan
from sailmesh.runtime.podinit import Credentials, build_spec
from sailmesh.runtime.pods import ContainerPlan, LocalNode, PodPlan, PodStatus, VolumePlan

NS = "test"
PROXY_UID = 1337
# The system interpreter: the venv's lives under /root, which uid 1337 may not enter.
PYTHON = "/usr/bin/python3"
PROBE_DIR = "/opt/sailmesh-probe"
PROBE = f"{PROBE_DIR}/probe.py"

# The fake proxy / app / client, mounted into both pods as a volume. Standard library only.
PROBE_SOURCE = b'''"""probe.py serve NAME PORT... | probe.py call HOST PORT [UID]"""
import json, os, socket, struct, sys, threading

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h


def original_dst(conn):
    try:
        raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    except OSError:
        return None  # no conntrack entry: the connection was not NATed
    port, addr = struct.unpack_from("!2xH4s", raw)
    return f"{socket.inet_ntoa(addr)}:{port}"


def serve(name, port):
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("0.0.0.0", port))
    lsock.listen(64)
    while True:
        conn, peer = lsock.accept()
        with conn:
            reply = {"name": name, "port": conn.getsockname()[1], "orig": original_dst(conn),
                     "peer": peer[0], "uid": os.getuid()}
            conn.sendall(json.dumps(reply).encode() + b"\\n")


def main(argv):
    if argv[0] == "serve":
        for port in argv[2:]:
            threading.Thread(target=serve, args=(argv[1], int(port)), daemon=True).start()
        threading.Event().wait()
    host, port = argv[1], int(argv[2])
    if len(argv) > 3:
        os.setgroups([]); os.setgid(int(argv[3])); os.setuid(int(argv[3]))
    with socket.create_connection((host, port), timeout=3) as s:
        print(s.makefile().readline().strip())


main(sys.argv[1:])
'''

# istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -b '*' -d 15090,15021,15020
# as an injected pod shows it (`iptables -t nat -S`), minus the HBONE port 15008.
GOLDEN_DEFAULT = """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:ISTIO_INBOUND - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
:ISTIO_REDIRECT - [0:0]
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
"""


# -- pure: rendering ---------------------------------------------------------------------
def test_default_plan_renders_istio_init_rules() -> None:
    assert render_capture(CapturePlan()) == GOLDEN_DEFAULT


def _rules(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("-A ")]


@pytest.mark.parametrize(
    ("plan", "present", "absent"),
    [
        pytest.param(
            CapturePlan(include_inbound_ports=(8080, 9080)),
            [
                "-A ISTIO_INBOUND -p tcp --dport 8080 -j ISTIO_IN_REDIRECT",
                "-A ISTIO_INBOUND -p tcp --dport 9080 -j ISTIO_IN_REDIRECT",
            ],
            # istio-iptables -b <list>: exclusions and the catch-all are not written.
            [
                "-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN",
                "-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT",
            ],
            id="include-ports",
        ),
        pytest.param(
            CapturePlan(include_inbound_ports=()),
            ["-A OUTPUT -p tcp -j ISTIO_OUTPUT"],
            # istio-iptables -b '': no inbound capture at all.
            ["-A PREROUTING -p tcp -j ISTIO_INBOUND", "-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT"],
            id="no-inbound",
        ),
        pytest.param(
            CapturePlan(proxy_uid=2000, inbound_port=16006, outbound_port=16001, exclude_inbound_ports=()),
            [
                "-A ISTIO_OUTPUT -m owner --uid-owner 2000 -j RETURN",
                "-A ISTIO_OUTPUT -m owner --gid-owner 2000 -j RETURN",
                "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006",
                "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 16001",
            ],
            ["-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN"],
            id="custom-ids-and-ports",
        ),
    ],
)
def test_plan_variants(plan: CapturePlan, present: list[str], absent: list[str]) -> None:
    rules = _rules(render_capture(plan))
    for rule in present:
        assert rule in rules
    for rule in absent:
        assert rule not in rules


def test_excluded_cidrs_return_after_localhost_and_before_the_redirect() -> None:
    rules = _rules(render_capture(CapturePlan(exclude_outbound_cidrs=("10.96.0.0/16", "192.0.2.7"))))
    tail = rules[rules.index("-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN") :]
    assert tail[1:4] == [
        "-A ISTIO_OUTPUT -d 10.96.0.0/16 -j RETURN",
        "-A ISTIO_OUTPUT -d 192.0.2.7/32 -j RETURN",
        "-A ISTIO_OUTPUT -j ISTIO_REDIRECT",
    ]


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (CapturePlan(proxy_uid=0), "capture proxy_uid 0 must be a positive uid"),
        (CapturePlan(inbound_port=0), "capture inbound_port 0 is not a TCP port; use 1-65535"),
        (CapturePlan(exclude_inbound_ports=(70000,)), "capture exclude_inbound_ports entry 70000"),
        (CapturePlan(exclude_outbound_cidrs=("fd00::/8",)), "'fd00::/8' is not an IPv4 CIDR"),
        (CapturePlan(exclude_outbound_cidrs=("10.0.0.0/33",)), "'10.0.0.0/33' is not an IPv4 CIDR"),
    ],
)
def test_invalid_plans_are_refused_with_the_field_named(plan: CapturePlan, message: str) -> None:
    with pytest.raises(PodRuntimeError, match=message.replace("(", r"\(")):
        render_capture(plan)


def test_capture_and_uid_change_the_spec_hash_only_when_set() -> None:
    app = ContainerPlan("app", (PYTHON,), {})
    plain = PodPlan(NS, "p", {}, (app,))
    assert PodPlan(NS, "p", {}, (app,), capture=None).spec_hash() == plain.spec_hash()
    captured = PodPlan(NS, "p", {}, (app,), capture=CapturePlan())
    assert captured.spec_hash() != plain.spec_hash()
    other_port = PodPlan(NS, "p", {}, (app,), capture=CapturePlan(inbound_port=16006))
    assert other_port.spec_hash() != captured.spec_hash()
    as_proxy = PodPlan(NS, "p", {}, (ContainerPlan("app", (PYTHON,), {}, run_as_uid=PROXY_UID),))
    assert as_proxy.spec_hash() != plain.spec_hash()
    assert "run_as_uid" not in app.fingerprint()
    spec = build_spec(["x"], {}, None, [], root="/r", hostname="p",
                      credentials=Credentials(uid=PROXY_UID, gid=PROXY_UID))
    assert json.loads(spec)["credentials"]["uid"] == PROXY_UID
    dropped = ContainerPlan("app", (PYTHON,), {}, capabilities_drop=("ALL",))
    assert PodPlan(NS, "p", {}, (dropped,)).spec_hash() != plain.spec_hash()


# -- end to end --------------------------------------------------------------------------
e2e = pytest.mark.e2e
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: pods are network namespaces")


def _probe_container(name: str, *ports: int, uid: int | None = None) -> ContainerPlan:
    return ContainerPlan(name, (PYTHON, "-u", PROBE, "serve", name, *map(str, ports)), {}, run_as_uid=uid)


class Pods:
    def __init__(self, node: LocalNode, captured: PodStatus, other: PodStatus) -> None:
        self.node = node
        self.captured = captured
        self.other = other

    def call(self, pod: str, host: str, port: int, uid: int | None = None) -> dict[str, object]:
        """Connect from inside `pod` (as root, or as `uid`) and return the server's reply."""
        argv = [PYTHON, PROBE, "call", host, str(port), *([str(uid)] if uid is not None else [])]
        done = subprocess.run(self.node.exec_argv(NS, pod, argv), capture_output=True, text=True, timeout=10)
        assert done.returncode == 0, f"call {host}:{port} from {pod} failed: {done.stderr}"
        reply: dict[str, object] = json.loads(done.stdout)
        return reply


@pytest.fixture(scope="module")
def pods(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pods]:
    node = LocalNode("rt3", tmp_path_factory.mktemp("rt3-state"))
    probe = VolumePlan(PROBE_DIR, {"probe.py": PROBE_SOURCE})
    try:
        node.setup()
        node.reconcile_pods(
            [
                PodPlan(
                    NS,
                    "captured",
                    {"app": "captured"},
                    (
                        # First container: `exec_argv` enters its namespaces and runs
                        # with its credentials (root, so calls may switch to uid 1337).
                        _probe_container("app", 8080),
                        _probe_container("proxy", 15001, 15006, 15021, uid=PROXY_UID),
                    ),
                    volumes=(probe,),
                    ready_ports=(8080, 15001, 15006, 15021),
                    capture=CapturePlan(),
                ),
                PodPlan(
                    NS,
                    "bad-capture",
                    {"app": "bad"},
                    (_probe_container("app", 8080),),
                    volumes=(probe,),
                    capture=CapturePlan(proxy_uid=0),
                ),
                PodPlan(
                    NS,
                    "other",
                    {"app": "other"},
                    (_probe_container("server", 80),),
                    volumes=(probe,),
                    ready_ports=(80,),
                ),
            ]
        )
        captured = node.wait_ready(NS, "captured", timeout=15)
        other = node.wait_ready(NS, "other", timeout=15)
        yield Pods(node, captured, other)
    finally:
        node.teardown()


@e2e
@needs_root
def test_rules_are_installed_in_the_pod_namespace_only(pods: Pods) -> None:
    def nat(netns: str) -> str:
        return subprocess.run(
            ["ip", "netns", "exec", netns, "iptables-save", "-t", "nat"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    assert "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001" in nat(pods.captured.netns)
    assert "ISTIO" not in nat(pods.other.netns)


@e2e
@needs_root
def test_inbound_to_an_app_port_lands_on_15006_with_the_original_destination(pods: Pods) -> None:
    ip = pods.captured.ip
    reply = pods.call("other", ip, 8080)
    # The app listens on 8080 too: only the capture can make the proxy answer.
    assert reply == {
        "name": "proxy",
        "port": 15006,
        "orig": f"{ip}:8080",
        "peer": pods.other.ip,
        "uid": PROXY_UID,
    }


@e2e
@needs_root
def test_excluded_inbound_port_is_not_captured(pods: Pods) -> None:
    ip = pods.captured.ip
    reply = pods.call("other", ip, 15021)
    assert (reply["name"], reply["port"], reply["orig"]) == ("proxy", 15021, f"{ip}:15021")


@e2e
@needs_root
def test_app_outbound_lands_on_15001_with_the_original_destination(pods: Pods) -> None:
    reply = pods.call("captured", pods.other.ip, 80)
    assert (reply["name"], reply["port"], reply["orig"]) == ("proxy", 15001, f"{pods.other.ip}:80")


@e2e
@needs_root
def test_app_to_localhost_is_not_captured(pods: Pods) -> None:
    reply = pods.call("captured", "127.0.0.1", 8080)
    assert (reply["name"], reply["port"]) == ("app", 8080)


@e2e
@needs_root
def test_app_to_its_own_pod_ip_is_not_captured(pods: Pods) -> None:
    # istio-init: `-o lo -m owner ! --uid-owner 1337 -j RETURN` (the app calling itself).
    reply = pods.call("captured", pods.captured.ip, 8080)
    assert (reply["name"], reply["port"]) == ("app", 8080)


@e2e
@needs_root
def test_proxy_uid_outbound_reaches_the_real_server(pods: Pods) -> None:
    reply = pods.call("captured", pods.other.ip, 80, uid=PROXY_UID)
    assert (reply["name"], reply["port"], reply["peer"]) == ("server", 80, pods.captured.ip)


@e2e
@needs_root
def test_proxy_calling_its_own_pod_ip_goes_through_inbound_capture(pods: Pods) -> None:
    # istio-init: `! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT`
    # (a proxy that routed a service VIP back to its own pod hands it to inbound).
    ip = pods.captured.ip
    reply = pods.call("captured", ip, 8080, uid=PROXY_UID)
    assert (reply["name"], reply["port"], reply["orig"]) == ("proxy", 15006, f"{ip}:8080")


@e2e
@needs_root
def test_proxy_container_runs_as_its_uid_and_gid(pods: Pods) -> None:
    reply = pods.call("other", pods.captured.ip, 15021)
    assert reply["uid"] == PROXY_UID
    # The proxy is the second container: find its PID 1 among the pod's processes.
    netns = os.stat(f"/run/netns/{pods.captured.netns}").st_ino
    pid = next(p for p in os.listdir("/proc") if p.isdigit() and _in_netns(p, netns)
               and _uid(p) == PROXY_UID and "serve\0proxy" in _cmdline(p))
    with open(f"/proc/{pid}/status") as f:
        ids = {
            line.split(":")[0]: line.split()[1:] for line in f if line.startswith(("Uid", "Gid", "Groups"))
        }
    assert ids == {"Uid": [str(PROXY_UID)] * 4, "Gid": [str(PROXY_UID)] * 4, "Groups": []}


def _in_netns(pid: str, inode: int) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == inode
    except OSError:
        return False


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read()
    except OSError:
        return ""


def _uid(pid: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


@e2e
@needs_root
def test_a_pod_with_an_invalid_capture_plan_fails_without_a_namespace(pods: Pods) -> None:
    status = next(s for s in pods.node.statuses() if s.name == "bad-capture")
    assert status.phase == "Failed"
    assert "capture proxy_uid 0 must be a positive uid" in status.message
    assert not os.path.exists(f"/run/netns/{status.netns}")
