"""The daemon's control-socket operations (`sailctl` → meshd): the write commands (apply,
create, replace, delete, label, annotate), sync, status, exec, telemetry, pod deletion and
shutdown, each answering one JSON request.

A mixin of `MeshDaemon`: the operations read its state (pods, proxies, xDS status, store
snapshot) and call its `sync`; they hold none of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any

from sailmesh.meshd.identity import MeshIdentity
from sailmesh.meshd.machine_inputs import PodState, pod_state
from sailmesh.meshd.openshift_router import OpenShiftRouter
from sailmesh.meshd.paths import Home
from sailmesh.meshd.planner import BlockedPod, PlannedPod
from sailmesh.meshd.proxy_containers import ADMIN_SOCKET
from sailmesh.meshd.rotation import CertificateRotation
from sailmesh.model.install import ISTIOD_CONTAINER, ISTIOD_NAME, ROOT_NAMESPACE
from sailmesh.model.proxy import Proxy
from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.core import Deployment
from sailmesh.runtime.pods import LocalNode, PodStatus
from sailmesh.store import Store, commands
from sailmesh.store.applying import confirm
from sailmesh.telemetry import MetricStore
from sailmesh.telemetry.collector import Collector
from sailmesh.xds import NodeStatus, TypeStatus, XdsServer

log = logging.getLogger("sailmesh.meshd")


class ControlOps:
    """Handlers named in `MeshDaemon.run`'s control-socket table."""

    # The daemon's state the operations read (set by MeshDaemon).
    home: Home
    node: LocalNode
    pods: dict[tuple[str, str], PlannedPod]
    blocked: dict[tuple[str, str], BlockedPod]
    proxies: dict[str, Proxy]
    xds: XdsServer
    versions: dict[str, str]
    started: float
    snapshot: Snapshot
    diagnostics: list[dict[str, Any]]
    vips: dict[tuple[str, str], str]
    identity: MeshIdentity
    rotation: CertificateRotation
    metrics_address: tuple[str, int] | None
    openshift_router: OpenShiftRouter
    served_load_balancers: dict[str, str]
    telemetry: Collector
    metrics: MetricStore
    store: Store
    _stop: asyncio.Event
    _sync_lock: asyncio.Lock
    sync: Callable[[], Awaitable[dict[str, Any]]]
    sync_locked: Callable[[], Awaitable[dict[str, Any]]]
    # Syncs and pod re-pushes under way or waiting for the lock, and the pods as the last
    # published push saw them (`PodState`): until both settle the proxies are not SYNCED.
    pushes_under_way: int = 0
    pushed_pods: Mapping[tuple[str, str], PodState] = MappingProxyType({})

    @contextlib.asynccontextmanager
    async def push_under_way(self) -> AsyncIterator[None]:
        """Marks a sync or pod re-push from before it waits for the lock until it ends."""
        self.pushes_under_way += 1
        try:
            yield
        finally:
            self.pushes_under_way -= 1

    def unsettled(self, statuses: Mapping[tuple[str, str], PodStatus]) -> str:
        """Why the proxies' configuration is about to change, or "" when the last push
        saw every pod as it is now and none is under way. A pod that became ready is an
        endpoint every proxy has yet to get: `status` shows no proxy SYNCED before that."""
        if self.pushes_under_way:
            return "a configuration push is under way"
        now = {key: pod_state(st) for key, st in statuses.items()}
        changed = sorted(k for k in now.keys() | self.pushed_pods.keys()
                         if now.get(k) != self.pushed_pods.get(k))
        if not changed:
            return ""
        named = ", ".join(f"{ns}/{name}" for ns, name in changed[:3])
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        return f"pods changed since the last push ({named}{more}); a push follows"

    async def _op_sync(self, _req: dict[str, Any]) -> dict[str, Any]:
        return await self.sync()

    async def _op_write(self, req: dict[str, Any]) -> dict[str, Any]:
        """A write command (the request's op: `apply|create|replace|delete -f`,
        `delete KIND NAME`, `create <kind>`, `label`, `annotate`), as kubectl's request to
        the API server: its arguments in (the manifests' text, `-n`, `-l`, `--dry-run=server`,
        ...; `store.commands.run`); what the command prints and its exit code out
        (`store.applying.Report`). Validating and storing run in a worker thread under the
        sync lock, followed by the sync, so that writes and syncs never interleave; a
        request with an error, or a dry run, changes nothing and there is no sync."""
        op, dry_run = req["op"], req.get("dry_run") or "none"
        if dry_run not in ("none", "server"):
            raise ValueError(f"dry run {dry_run!r}: the daemon answers server dry runs only")
        async with self.push_under_way(), self._sync_lock:
            report = await asyncio.to_thread(commands.run, self.store, op, req)
            if report.written:
                confirm(report, await self.sync_locked())
        inputs = f" of {len(req['sources'])} input(s)" if "sources" in req else ""
        log.info("%s%s%s: %s, exit %d", op, " (server dry run)" if dry_run == "server" else "",
                 inputs, ", ".join(report.refs) or "nothing stored", report.code)
        return report.as_json()

    def write_ops(self) -> dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]]:
        """The control-socket table's entries of the write commands: one flow, the op
        names it."""
        return dict.fromkeys(commands.OPS, self._op_write)

    async def _op_status(self, _req: dict[str, Any]) -> dict[str, Any]:
        pods = []
        statuses = {(s.namespace, s.name): s for s in self.node.statuses()}
        for key, pod in sorted(self.pods.items()):
            st = statuses.get(key)
            pods.append(
                {
                    "namespace": key[0],
                    "name": key[1],
                    "deployment": pod.deployment,
                    "containers": len(pod.plan.containers),
                    "labels": dict(pod.plan.labels),
                    "ip": st.ip if st else "",
                    "phase": st.phase if st else "Pending",
                    "ready": bool(st and st.ready),
                    "restarts": st.restarts if st else 0,
                    "started_at": st.started_at if st else 0,
                    "message": st.message if st else "",
                    "netns": st.netns if st else "",
                    "router": pod.router,
                    "sidecar": pod.sidecar,
                    "admin": (str(self.home.proxy_dir(*key) / ADMIN_SOCKET)
                              if pod.router or pod.sidecar else ""),
                    "logs": {
                        c.name: str(self.node.log_path(key[0], key[1], c.name))
                        for c in pod.plan.containers
                    },
                }
            )
        for (ns, name), why in sorted(self.blocked.items()):
            pods.append({"namespace": ns, "name": name, "deployment": why.deployment,
                         "phase": "Pending", "ready": False, "restarts": 0, "ip": "",
                         "message": why.message, "reason": why.reason,
                         "waiting": why.container, "events": [list(e) for e in why.events()],
                         "containers": len(why.containers), "container_names": list(why.containers),
                         "labels": dict(why.labels), "started_at": 0, "router": False, "netns": "",
                         "admin": "", "logs": {}})
        proxies = {}
        connected = set(self.xds.connected())
        unsettled = self.unsettled(statuses)
        for node_id, proxy in self.proxies.items():
            st = self.xds.status(node_id)
            state, detail = st.sync_state()
            if state == "SYNCED" and unsettled:
                state, detail = "STALE", unsettled
            proxies[node_id] = {
                "namespace": proxy.namespace,
                "pod": proxy.name,
                "kind": proxy.kind,
                "connected": node_id in connected,
                "version": self.versions.get(node_id, ""),
                "state": state,
                "detail": detail,
                "status": status_dict(st),
            }
        return {
            "pid": os.getpid(),
            "started": self.started,
            "home": str(self.home.root),
            "instance": self.home.instance,
            "version": self.snapshot.version,
            "pods": pods,
            "proxies": proxies,
            "unsettled": unsettled,
            "diagnostics": self.diagnostics,
            "vips": {f"{ns}/{name}": vip for (ns, name), vip in self.vips.items()},
            "ca": self.identity.status(),
            "renewal_failures": self.rotation.status(),
            "metrics": (f"http://{self.metrics_address[0]}:{self.metrics_address[1]}/metrics"
                        if self.metrics_address else ""),
            "router": self.openshift_router.info(),
            "routes": self.openshift_router.statuses(self.snapshot),
            "load_balancers": dict(self.served_load_balancers),
            "control_plane": self._control_plane_pod(),
        }

    async def _op_exec_argv(self, req: dict[str, Any]) -> dict[str, Any]:
        argv = self.node.exec_argv(req["namespace"], req["pod"], req["argv"], req.get("container"))
        return {"argv": argv}

    async def _op_delete_pods(self, req: dict[str, Any]) -> dict[str, Any]:
        """`kubectl delete pod`: the pods stop and their Deployments get new ones."""
        keys = [(ns, name) for ns, name in req["pods"]]
        deleted = await asyncio.to_thread(self.node.remove_pods, keys)
        await self.sync()
        return {"deleted": [list(k) for k in deleted]}

    async def _op_telemetry(self, req: dict[str, Any]) -> dict[str, Any]:
        """Recent samples of the standard metrics (the dashboard's store, no Prometheus)."""
        await self.telemetry.refresh()
        now = time.time()
        window = float(req.get("window", 600))
        return {"now": now, "window": window,
                "samples": [s.as_dict() for s in self.metrics.recent(since=now - window)],
                "gateways": [[ns, pod.deployment] for (ns, _), pod in self.pods.items()
                             if pod.router]}

    async def _op_shutdown(self, _req: dict[str, Any]) -> dict[str, Any]:
        self._stop.set()
        return {"stopping": os.getpid()}



    def _control_plane_pod(self) -> dict[str, Any] | None:
        """This daemon as the pod of Deployment istio-system/istiod (model.install): named
        from the Deployment's pod template, so `rollout restart` gives it a new name, and
        its log is the daemon's log (`kubectl logs deploy/istiod -n istio-system`)."""
        dep = self.snapshot.get(Deployment, ROOT_NAMESPACE, ISTIOD_NAME)
        if dep is None:
            return None
        digest = hashlib.sha256(f"{os.getpid()}-{self.started}".encode()).digest()
        suffix = "".join("bcdfghjklmnpqrstvwxz2456789"[b % 27] for b in digest[:5])
        pod_hash = dep.template_hash()
        return {"namespace": ROOT_NAMESPACE, "name": f"{ISTIOD_NAME}-{pod_hash}-{suffix}",
                 "deployment": ISTIOD_NAME, "containers": 1, "container_names": [ISTIOD_CONTAINER],
                 "labels": {**dep.spec.template.metadata.labels, "pod-template-hash": pod_hash},
                 "ip": "127.0.0.1", "phase": "Running", "ready": True, "restarts": 0,
                 "started_at": self.started, "message": "", "router": False, "sidecar": False,
                 "admin": "", "control_plane": True,
                 "logs": {ISTIOD_CONTAINER: str(self.home.log_file)}}


def status_dict(st: NodeStatus) -> dict[str, Any]:
    """A node's xDS status as JSON. Per type, `subscribed` is how many names the proxy
    subscribes to (the names themselves are thousands per proxy at 1000 Services)."""
    return {
        "node_id": st.node_id,
        "snapshot_version": st.snapshot_version,
        "connected_since": None if st.connected_since is None else str(st.connected_since),
        "types": {url: _type_dict(t) for url, t in st.types.items()},
        "problems": list(st.problems),
    }


def _type_dict(t: TypeStatus) -> dict[str, Any]:
    body = {f.name: getattr(t, f.name) for f in dataclasses.fields(t)}
    body["subscribed"] = len(t.subscribed)
    body["last_nack"] = None if t.last_nack is None else dataclasses.asdict(t.last_nack)
    return body
