"""What the runtime is asked to run: immutable plans for pods, containers, volumes and
ClusterIP service rules, plus the status it reports back.

Plans are produced by callers that know Kubernetes and Istio semantics; this module (and
the whole runtime) only executes them. It must not know where a plan came from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

PodPhase = Literal["Pending", "Running", "Failed", "Terminating"]


@dataclass(frozen=True)
class VolumePlan:
    """A directory materialised from `files` (relative path → content) and bind-mounted at
    `mount_path` inside the pod. Relative paths may contain `/` (sub-directories)."""

    mount_path: str
    files: Mapping[str, bytes]
    read_only: bool = True
    mode: int = 0o644

    def fingerprint(self) -> dict[str, object]:
        return {
            "mount_path": self.mount_path,
            "read_only": self.read_only,
            "mode": self.mode,
            "files": {k: hashlib.sha256(v).hexdigest() for k, v in sorted(self.files.items())},
        }


@dataclass(frozen=True)
class ContainerPlan:
    """One process tree of a pod. `argv[0]` should be absolute (images.py resolves it).

    `image_volumes` stand for content the image itself ships (e.g. nginx's /etc/nginx);
    they are mounted before the pod's volumes so that a pod volume at the same or a deeper
    path wins, as a Kubernetes volume mount hides the image's files."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    workdir: str | None = None
    image_volumes: tuple[VolumePlan, ...] = ()
    # Host directories the process needs at the same path (a proxy's sockets and bootstrap
    # in the state dir), kept visible even under the pod's private /tmp.
    host_paths: tuple[str, ...] = ()
    # Run as this uid instead of root (gid `run_as_gid`, else the same as the uid, as
    # Istio's istio-proxy container runs as 1337:1337; capture exempts that uid).
    run_as_uid: int | None = None
    # Host files or directories bound at another path inside the pod: (host path, pod path).
    binds: tuple[tuple[str, str], ...] = ()
    run_as_gid: int | None = None
    supplemental_groups: tuple[int, ...] = ()
    # Capabilities on top of / taken from the container default set (podcreds), as
    # securityContext.capabilities; `privileged` gives all of them.
    capabilities_add: tuple[str, ...] = ()
    capabilities_drop: tuple[str, ...] = ()
    privileged: bool = False
    no_new_privs: bool = False
    read_only_root: bool = False
    # Capabilities a non-root process of sailmesh's own keeps across exec (podcreds).
    ambient_capabilities: tuple[str, ...] = ()

    def fingerprint(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "name": self.name,
            "argv": list(self.argv),
            "env": dict(sorted(self.env.items())),
            "workdir": self.workdir,
            "image_volumes": [v.fingerprint() for v in self.image_volumes],
            "host_paths": list(self.host_paths),
        }
        if self.run_as_uid is not None:  # absent when unset: existing hashes stay the same
            doc["run_as_uid"] = self.run_as_uid
        if self.binds:
            doc["binds"] = [list(b) for b in self.binds]
        security = {"run_as_gid": self.run_as_gid,
                    "supplemental_groups": list(self.supplemental_groups),
                    "capabilities_add": list(self.capabilities_add),
                    "capabilities_drop": list(self.capabilities_drop),
                    "privileged": self.privileged, "no_new_privs": self.no_new_privs,
                    "read_only_root": self.read_only_root,
                    "ambient_capabilities": list(self.ambient_capabilities)}
        doc.update({k: v for k, v in security.items() if v})  # unset: hashes stay the same
        return doc


@dataclass(frozen=True)
class CapturePlan:
    """Transparent TCP capture in the pod's network namespace, as istio-init sets it up
    (`istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -b '*'
    -d 15090,15021,15020`). capture.py renders it into iptables rules.

    `include_inbound_ports=None` captures every inbound port but the excluded ones
    (istio-iptables `-b '*'`); a tuple captures only those ports, and `()` no inbound
    traffic at all (`-b ''`). `exclude_outbound_cidrs` are IPv4 CIDRs reached directly
    (`-x`, the `traffic.sidecar.istio.io/excludeOutboundIPRanges` annotation)."""

    proxy_uid: int = 1337
    inbound_port: int = 15006
    outbound_port: int = 15001
    exclude_inbound_ports: tuple[int, ...] = (15090, 15021, 15020)
    include_inbound_ports: tuple[int, ...] | None = None
    exclude_outbound_cidrs: tuple[str, ...] = ()

    def fingerprint(self) -> dict[str, object]:
        return {
            "proxy_uid": self.proxy_uid,
            "inbound_port": self.inbound_port,
            "outbound_port": self.outbound_port,
            "exclude_inbound_ports": list(self.exclude_inbound_ports),
            "include_inbound_ports": (
                None if self.include_inbound_ports is None else list(self.include_inbound_ports)
            ),
            "exclude_outbound_cidrs": list(self.exclude_outbound_cidrs),
        }


@dataclass(frozen=True)
class PodPlan:
    namespace: str
    name: str
    labels: Mapping[str, str]
    containers: tuple[ContainerPlan, ...]
    volumes: tuple[VolumePlan, ...] = ()
    # Extra /etc/hosts lines: (ip, (name, alias, ...)). Updated in place, never a restart.
    hosts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    ready_ports: tuple[int, ...] = ()  # TCP ports that must accept connections for Ready
    termination_grace_seconds: float = field(default=3.0, compare=False)
    # Sidecar traffic capture, installed in the pod's namespace before any container starts.
    capture: CapturePlan | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def spec_hash(self) -> str:
        """Hash of what a running process cannot pick up live: containers, volumes and
        capture rules. Hosts, labels and ready ports are left out because they are
        applied in place."""
        doc: dict[str, object] = {
            "containers": [c.fingerprint() for c in self.containers],
            "volumes": [v.fingerprint() for v in self.volumes],
        }
        if self.capture is not None:  # absent when unset: existing hashes stay the same
            doc["capture"] = self.capture.fingerprint()
        blob = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class PodStatus:
    namespace: str
    name: str
    ip: str
    phase: PodPhase
    ready: bool
    restarts: int
    started_at: float
    netns: str
    message: str = ""


@dataclass(frozen=True)
class ServiceRule:
    """A ClusterIP: traffic to vip:port/protocol is spread over `endpoints` (ip, port)."""

    vip: str
    port: int
    protocol: str
    endpoints: tuple[tuple[str, int], ...]
