"""Where a local mesh keeps its state: one directory (`SAILMESH_HOME`, default ~/.sailmesh).

    resources/   applied configuration (the store)
    run/         live files of a running mesh: control and xDS sockets, pid, logs, proxies
    ca/          the mesh's self-signed root (key 0600), unless a `cacerts` Secret plugs one in
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Home:
    root: Path
    # Prefix of every network namespace, interface and iptables chain of this mesh, so
    # that two meshes (a user's and a test's) on one machine never touch each other.
    instance: str = "sm"

    @classmethod
    def from_env(cls, root: str | None = None) -> Home:
        base = root or os.environ.get("SAILMESH_HOME") or str(Path.home() / ".sailmesh")
        return cls(Path(base).resolve(), os.environ.get("SAILMESH_INSTANCE", "sm"))

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def control_socket(self) -> Path:
        return self.run / "meshd.sock"

    @property
    def xds_dir(self) -> Path:
        # The shared socket, root only: proxies reach the control plane through their
        # own pod's channel (proxy_dir/xds.sock) instead.
        return self.run / "xds"

    @property
    def xds_socket(self) -> Path:
        return self.xds_dir / "xds.sock"


    @property
    def pid_file(self) -> Path:
        return self.run / "meshd.pid"

    @property
    def keeper_pid_file(self) -> Path:
        return self.run / "keeper.pid"

    @property
    def log_file(self) -> Path:
        return self.run / "meshd.log"

    def proxy_dir(self, namespace: str, pod: str) -> Path:
        # Short, fixed-length directory names: Unix socket paths are limited to 107 bytes.
        digest = hashlib.sha256(f"{namespace}/{pod}".encode()).hexdigest()[:10]
        return self.run / "px" / digest
