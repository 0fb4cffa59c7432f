"""Linux network plumbing for one node: the node namespace, per-pod namespaces and veth
pairs, host safety-net routes, and the host-namespace handle for in-pod proxies.

Topology (one instance):

    host netns:  unreachable <pod CIDR>, unreachable <service CIDR>   (never removed)
    <inst>-node: ip_forward=1, proxy_arp, 169.254.1.1/32 on lo,
                 <pod ip>/32 dev <inst>v<id>  (one per pod), kube-proxy NAT chains
    <inst>-<id>: eth0 = <pod ip>/32, 169.254.1.1 dev eth0 scope link,
                 <pod CIDR> and <service CIDR> via 169.254.1.1 — and no default route,
                 so a pod can reach pods and services but nothing beyond the machine.

169.254.1.1 lives on the node's lo rather than on each veth: with the default
arp_ignore=0 Linux answers ARP for any local address on any interface, so every pod
resolves its gateway to its own veth peer, and the node has a source address for ARP
probes towards pods and for MASQUERADE.

Must not know about pods' processes, plans or services beyond addresses.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from sailmesh.runtime.errors import CommandError

NODE_GATEWAY = "169.254.1.1"
NETNS_DIR = Path("/run/netns")


def run_command(argv: Sequence[str], stdin: str | None = None) -> str:
    """Run a plumbing command; raise CommandError carrying its stderr if it fails."""
    try:
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CommandError(f"could not run {' '.join(argv)}: {exc}") from exc
    if done.returncode != 0:
        shown = " ".join(argv) + (f" <<< {stdin.strip()!r}" if stdin else "")
        raise CommandError(
            f"{shown} failed (exit {done.returncode}): {done.stderr.strip()};"
            " sailmesh needs root, iproute2 and iptables"
        )
    return done.stdout


def ip_batch(netns: str | None, lines: Sequence[str]) -> None:
    """Run several `ip` commands in one process (each spawn costs milliseconds)."""
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    run_command([*prefix, "-batch", "-"], stdin="\n".join(lines) + "\n")


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def pids_in_netns(name: str) -> list[int]:
    """PIDs of processes whose network namespace is the named one (like `ip netns pids`)."""
    try:
        ref = os.stat(NETNS_DIR / name)
    except FileNotFoundError:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue  # exited meanwhile, or a kernel thread
        if (st.st_ino, st.st_dev) == (ref.st_ino, ref.st_dev):
            pids.append(int(entry))
    return pids


def kill_netns_processes(name: str, timeout: float = 3.0) -> None:
    """SIGKILL everything left in a namespace and wait until it is gone, so that deleting
    the namespace really frees it (a namespace lives while a process is inside)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = pids_in_netns(name)
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def delete_netns(name: str) -> None:
    if netns_exists(name):
        kill_netns_processes(name)
        run_command(["ip", "netns", "del", name])


def is_mount_point(path: Path) -> bool:
    target = str(path)
    with open("/proc/self/mountinfo") as f:
        # Field 5 is the mount point; spaces are escaped as \040 in mountinfo.
        return any(line.split()[4].replace("\\040", " ") == target for line in f)


class NodeNetwork:
    """Creates and deletes the namespaces and links of one instance."""

    def __init__(self, instance: str, pod_cidr: str, service_cidr: str) -> None:
        self.instance = instance
        self.pod_cidr = pod_cidr
        self.service_cidr = service_cidr
        self.node_netns = f"{instance}-node"

    # -- names -------------------------------------------------------------------------
    def pod_netns(self, short_id: str) -> str:
        return f"{self.instance}-{short_id}"

    def pod_veth(self, short_id: str) -> str:
        return f"{self.instance}v{short_id}"

    def instance_netns(self) -> list[str]:
        """Every namespace of this instance still present (node and pods)."""
        if not NETNS_DIR.is_dir():
            return []
        prefix = f"{self.instance}-"
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))

    # -- host --------------------------------------------------------------------------
    def ensure_host_routes(self) -> None:
        """Safety net: pod and service addresses never follow the host's default route out
        of the machine. `replace` keeps this idempotent; the routes stay after teardown."""
        ip_batch(None, [f"route replace unreachable {c}" for c in (self.pod_cidr, self.service_cidr)])

    # -- node --------------------------------------------------------------------------
    def create_node(self) -> None:
        run_command(["ip", "netns", "add", self.node_netns])
        ip_batch(
            self.node_netns,
            [
                "link set lo up",
                f"addr add {NODE_GATEWAY}/32 dev lo",
                # Addresses of deleted pods / unknown VIPs fail fast with ICMP unreachable.
                f"route add unreachable {self.pod_cidr}",
                f"route add unreachable {self.service_cidr}",
            ],
        )
        # Sysctls of a namespace can only be written from inside it; forwarding is turned
        # on in the node namespace only, never on the host.
        settings = {
            "net/ipv4/ip_forward": "1",
            "net/ipv4/conf/all/proxy_arp": "1",
            "net/ipv4/conf/default/proxy_arp": "1",
        }
        script = "; ".join(f"echo {v} > /proc/sys/{k}" for k, v in settings.items())
        run_command(["ip", "netns", "exec", self.node_netns, "sh", "-c", script])

    def delete_node(self) -> None:
        delete_netns(self.node_netns)

    # -- pods --------------------------------------------------------------------------
    def create_pod(self, short_id: str, ip: str) -> str:
        """Create the pod's namespace and veth; return the namespace name."""
        netns = self.pod_netns(short_id)
        veth = self.pod_veth(short_id)
        if netns_exists(netns):
            delete_netns(netns)  # leftover of a pod that died half-way; start clean
        run_command(["ip", "netns", "add", netns])
        try:
            ip_batch(
                self.node_netns,
                [
                    f"link add {veth} type veth peer name eth0 netns {netns}",
                    f"link set {veth} up",
                    f"route add {ip}/32 dev {veth}",
                ],
            )
            ip_batch(
                netns,
                [
                    "link set lo up",
                    f"addr add {ip}/32 dev eth0",
                    "link set eth0 up",
                    f"route add {NODE_GATEWAY} dev eth0 scope link",
                    f"route add {self.pod_cidr} via {NODE_GATEWAY} dev eth0",
                    f"route add {self.service_cidr} via {NODE_GATEWAY} dev eth0",
                ],
            )
        except CommandError:
            self.delete_pod(short_id)
            raise
        return netns

    def delete_pod(self, short_id: str) -> None:
        # Deleting the pod namespace destroys eth0, which destroys its veth peer and the
        # node's route through it.
        delete_netns(self.pod_netns(short_id))
        veth = self.pod_veth(short_id)
        if netns_exists(self.node_netns):
            with contextlib.suppress(CommandError):
                if run_command(["ip", "-n", self.node_netns, "-o", "link", "show", veth]):
                    run_command(["ip", "-n", self.node_netns, "link", "del", veth])

    def node_links(self) -> list[str]:
        if not netns_exists(self.node_netns):
            return []
        out = run_command(["ip", "-n", self.node_netns, "-o", "link", "show"])
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


class HostNetnsHandle:
    """A file bind-mounted to the host's network namespace. An Envoy inside a pod names it
    in SocketAddress.network_namespace_filepath to bind a listener on the host's
    127.0.0.1 (the ingress gateway's published ports)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mount(self) -> None:
        self.unmount()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)
        run_command(["mount", "--bind", f"/proc/{os.getpid()}/ns/net", str(self.path)])

    def unmount(self) -> None:
        while self.path.exists() and is_mount_point(self.path):
            run_command(["umount", str(self.path)])
