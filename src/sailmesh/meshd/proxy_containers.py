"""The containers meshd adds to a pod for its proxy: Istio's injected istio-proxy sidecar,
the ingress gateway's Envoy, and the OpenShift router's HAProxy; each Envoy's bootstrap is
written to the pod's proxy directory here.

Must not know: how pods run (runtime/) or what the proxies are sent (xds/, translate/).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sailmesh.meshd.openshift_router import OpenShiftRouter
from sailmesh.meshd.paths import Home
from sailmesh.model.proxy import ProxyKind
from sailmesh.model.proxy import node_id as node_id_of
from sailmesh.model.stats_inclusion import StatsInclusion
from sailmesh.runtime.pods import ContainerPlan, LocalNode
from sailmesh.xds.bootstrap import envoy_argv, envoy_bootstrap, envoy_executable

# The injected istio-proxy container: Istio's uid, and where its files appear in the pod
# (Istio keeps the proxy's bootstrap and sockets under /etc/istio/proxy too).
PROXY_UID = 1337
POD_PROXY_DIR = "/etc/istio/proxy"
# Each proxy's own xDS channel, in its proxy directory (Istio: the per-pod SDS socket).
CHANNEL_SOCKET = "xds.sock"
ADMIN_SOCKET = "admin.sock"  # its admin endpoint, beside it
POD_ENVOY = "/usr/local/bin/envoy"


class ProxyContainers:
    """Plans a pod's proxy container (the planner calls these for every pod it plans)."""

    def __init__(self, home: Home, node: LocalNode, openshift_router: OpenShiftRouter) -> None:
        self.home = home
        self.node = node
        self.openshift_router = openshift_router
        # Bootstraps written, by proxy directory: every sync plans every pod again.
        self._written: dict[Path, tuple[dict[str, Any], int]] = {}

    def _write_bootstrap(self, namespace: str, pod: str, bootstrap: dict[str, Any],
                         uid: int = 0) -> Path:
        """The proxy's directory (owned by `uid`) with its bootstrap; the file is written
        only when its content changes, since every sync plans every pod again. A bootstrap
        this object wrote as it is, to a file still there, is not looked at again."""
        d = self.home.proxy_dir(namespace, pod)
        config = d / "envoy.json"
        if self._written.get(d) == (bootstrap, uid) and config.exists():
            return d
        d.mkdir(parents=True, exist_ok=True)
        text = json.dumps(bootstrap, indent=1)
        if not config.exists() or config.read_text() != text:
            config.write_text(text)
        if uid:
            os.chown(d, uid, uid)
            os.chmod(d, 0o750)
            os.chown(config, uid, uid)
        self._written[d] = (bootstrap, uid)
        return d

    def keep_only(self, pods: set[tuple[str, str]]) -> None:
        """Forget the bootstraps of pods other than these (namespace, name)."""
        keep = {self.home.proxy_dir(ns, name) for ns, name in pods}
        self._written = {d: v for d, v in self._written.items() if d in keep}

    def _envoy(self, kind: ProxyKind, namespace: str, pod: str, metadata: dict[str, str],
               stats: StatsInclusion) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
        """The command line and binds of a pod's Envoy (uid 1337): its bootstrap written to
        the pod's proxy directory, which the pod sees at POD_PROXY_DIR with its own xDS
        channel and admin socket, and the Envoy binary at POD_ENVOY."""
        bootstrap = envoy_bootstrap(
            node_id=node_id_of(kind, namespace, pod),
            cluster=f"{pod.rsplit('-', 2)[0]}.{namespace}",
            xds_socket=Path(POD_PROXY_DIR) / CHANNEL_SOCKET,
            admin_socket=Path(POD_PROXY_DIR) / ADMIN_SOCKET,
            metadata={"NAMESPACE": namespace, "POD_NAME": pod, **metadata},
            stats=stats,
        )
        d = self._write_bootstrap(namespace, pod, bootstrap, PROXY_UID)
        argv = envoy_argv(Path(POD_PROXY_DIR) / "envoy.json")
        return ((POD_ENVOY, *argv[1:]),
                ((str(d), POD_PROXY_DIR), (str(envoy_executable()), POD_ENVOY)))

    def sidecar_container(self, namespace: str, pod: str, service_account: str,
                          stats: StatsInclusion) -> ContainerPlan:
        """Istio's injected istio-proxy: Envoy as uid 1337 with its bootstrap, admin socket
        and its own xDS channel in a directory of its own; `stats`: the Envoy stats it
        keeps (`model.stats_inclusion`)."""
        argv, binds = self._envoy("sidecar", namespace, pod,
                                  {"SERVICE_ACCOUNT": service_account}, stats)
        return ContainerPlan(
            name="istio-proxy",
            argv=argv,
            env={},
            # Istio's injected istio-proxy securityContext: runAsUser/runAsGroup 1337,
            # capabilities drop ALL, allowPrivilegeEscalation false, readOnlyRootFilesystem.
            run_as_uid=PROXY_UID,
            run_as_gid=PROXY_UID,
            capabilities_drop=("ALL",),
            no_new_privs=True,
            read_only_root=True,
            binds=binds,
        )

    def router_container(self, namespace: str, pod: str, stats: StatsInclusion) -> ContainerPlan:
        """The ingress gateway as Istio runs it: Envoy as uid 1337 reading only what is
        in its pod (bootstrap, its own xDS channel and admin socket). It keeps two ambient
        capabilities: NET_BIND_SERVICE (Istio's gateway gets the same effect from the
        ip_unprivileged_port_start sysctl) and SYS_ADMIN, which setns needs to open the
        host-facing listeners in the host's network namespace."""
        argv, binds = self._envoy("router", namespace, pod, {}, stats)
        return ContainerPlan(
            name="istio-proxy",
            argv=argv,
            env={},
            host_paths=(self.node.host_netns_path(),),
            run_as_uid=PROXY_UID,
            run_as_gid=PROXY_UID,
            capabilities_drop=("ALL",),
            ambient_capabilities=("NET_BIND_SERVICE", "SYS_ADMIN"),
            binds=binds,
        )

    def openshift_router_container(self, _namespace: str, _pod: str) -> ContainerPlan:
        return self.openshift_router.container()
