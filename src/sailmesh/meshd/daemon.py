"""The local mesh daemon: store → pods and services on this machine, and model → translate →
xDS for every proxy. The single place where all the pure parts meet IO.

Runs one asyncio loop: the xDS server, the control socket and the push logic live on it;
the runtime's blocking work (creating namespaces, starting processes) runs in a worker
thread, and the runtime's supervisor thread reports pod changes back through the loop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sailmesh.ca import KEY_TYPES, KeyType
from sailmesh.control import TranslationMemo, plan_push
from sailmesh.meshd import control, pod_views
from sailmesh.meshd.gc_pauses import CollectorPauses
from sailmesh.meshd.identity import MeshIdentity
from sailmesh.meshd.machine_inputs import PodState, machine_sync_reason, pod_state
from sailmesh.meshd.openshift_router import OpenShiftRouter, RouterConfig
from sailmesh.meshd.ops import ControlOps
from sailmesh.meshd.paths import Home
from sailmesh.meshd.planner import BlockedPod, PlannedPod, plan_pods, service_rules
from sailmesh.meshd.proxy_containers import ADMIN_SOCKET, CHANNEL_SOCKET, PROXY_UID, ProxyContainers
from sailmesh.meshd.rotation import CertificateRotation
from sailmesh.meshd.stand_in_certs import StandInCertificates
from sailmesh.model import diagnostics as codes
from sailmesh.model.diagnostics import Diagnostic
from sailmesh.model.install import default_install
from sailmesh.model.mesh import build_model, mesh_config
from sailmesh.model.proxy import Proxy
from sailmesh.model.route_backends import PodEndpoint
from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.core import Service
from sailmesh.runtime.pods import LocalNode
from sailmesh.store import Store
from sailmesh.telemetry import Directory, MetricStore, build_directory
from sailmesh.telemetry.collector import Collector
from sailmesh.telemetry.exposition import DEFAULT_ADDRESS, DEFAULT_PORT, serve_metrics
from sailmesh.xds.server import NodeStatus, XdsServer

log = logging.getLogger("sailmesh.meshd")

APPLY_TIMEOUT_S = 5.0
CA_KEY_TYPE_ENV = "SAILMESH_CA_KEY_TYPE"
# host:port of the Prometheus endpoint (`/metrics`); "off" serves none.
METRICS_ADDRESS_ENV = "SAILMESH_METRICS_ADDRESS"


class MeshDaemon(ControlOps):
    def __init__(self, home: Home) -> None:
        self.home = home
        self.store = Store(home.root)
        self.stand_ins = StandInCertificates(home.root, datetime.now(UTC))
        self.node = LocalNode(home.instance, home.root,
                              trust_bundle=self.stand_ins.trust_bundle)
        self.xds = XdsServer(home.xds_socket)
        self.snapshot = Snapshot()
        self.pods: dict[tuple[str, str], PlannedPod] = {}
        self.blocked: dict[tuple[str, str], BlockedPod] = {}
        self.proxies: dict[str, Proxy] = {}
        self.diagnostics: list[dict[str, Any]] = []
        self.versions: dict[str, str] = {}
        self.started = time.time()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()
        self._push_pending = False
        self._sync_lock = asyncio.Lock()
        self._sync_started: float | None = None  # monotonic start of the running sync
        # Where the running sync's time goes: (phase, monotonic end), logged with the push.
        self._phases: list[tuple[str, float]] = []
        # The snapshot and pod states of the last push that brought the machine (pods,
        # kube-proxy, router) in line: a sync that changes neither leaves it (machine_inputs).
        self._machine_synced: tuple[Snapshot, dict[tuple[str, str], PodState]] | None = None
        # ClusterIPs of the Services of the last sync: (namespace, name) → VIP.
        self.vips: dict[tuple[str, str], str] = {}
        # LoadBalancer Services' addresses (host loopback) and those a gateway serves.
        self.load_balancer_ips: dict[tuple[str, str], str] = {}
        self.served_load_balancers: dict[str, str] = {}
        self.identity = MeshIdentity(home.root, _ca_key_type())
        self.identity_problems: list[Diagnostic] = []
        # Last push's translations: a change re-translates only the proxies it reaches.
        self._translations = TranslationMemo()
        # The last resources given to each proxy, so that a renewal re-sends only secrets.
        self.resources: dict[str, Mapping[str, Mapping[str, Any]]] = {}
        self.rotation = CertificateRotation(self.identity, self._sync_lock, lambda: self.pods,
                                            self.resources, self._publish_renewed)
        self.metrics = MetricStore()
        self.directory = Directory()
        self.telemetry = Collector(self.metrics, self._admin_sockets, lambda: self.directory,
                                   quiet=self._sync_lock)
        self.metrics_address = _metrics_address()
        self.openshift_router = OpenShiftRouter(home, RouterConfig.from_env(),
                                                self.node.host_netns_path())
        self.containers = ProxyContainers(home, self.node, self.openshift_router)
        self.gc_pauses = CollectorPauses()

    # --- lifecycle -----------------------------------------------------------------------

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.home.run.mkdir(parents=True, exist_ok=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self._stop.set)
        # Like `istioctl install`: the built-in parts exist before any user config.
        self.store.apply(
            r for r in default_install() if self.store.get(r.kind, r.namespace, r.name) is None
        )
        await asyncio.to_thread(self.node.setup)
        self.node.on_change = self._on_pod_change
        self._prepare_xds_dir()
        await self.xds.start()
        # The shared socket serves any node: root only. Proxies use their pod's channel.
        os.chmod(self.home.xds_socket, 0o600)
        metrics_server = self._serve_metrics()
        rotation = asyncio.ensure_future(self.rotation.run_forever())
        collection = asyncio.ensure_future(self.telemetry.run_forever())
        full_gc = asyncio.ensure_future(self.gc_pauses.run_forever(self._sync_lock))
        server = await control.serve(
            self.home.control_socket,
            {
                "sync": self._op_sync,
                "status": self._op_status,
                "shutdown": self._op_shutdown,
                "exec_argv": self._op_exec_argv,
                "telemetry": self._op_telemetry,
                "delete_pods": self._op_delete_pods,
                **self.write_ops(),
            },
        )
        self.home.pid_file.write_text(f"{os.getpid()}\n")
        log.info("meshd %s started (state %s)", os.getpid(), self.home.root)
        try:
            await self.sync()
            await self._stop.wait()
        finally:
            rotation.cancel()
            collection.cancel()
            full_gc.cancel()
            server.close()
            self.node.on_change = None
            if self._stop.is_set():
                log.info("shutting down")
                await asyncio.to_thread(self.node.teardown)
            else:
                # A crash: the pods keep serving, and the next daemon adopts them.
                log.error("stopping without a shutdown request; pods are left running")
            if metrics_server is not None:
                metrics_server.shutdown()
            await self.xds.stop()
            self.home.control_socket.unlink(missing_ok=True)
            self.home.pid_file.unlink(missing_ok=True)

    # --- reconcile -----------------------------------------------------------------------

    async def sync(self) -> dict[str, Any]:
        """Read the store and make the machine and every proxy match it."""
        async with self.push_under_way(), self._sync_lock:
            return await self.sync_locked()

    async def sync_locked(self) -> dict[str, Any]:
        """`sync` for a caller that holds the sync lock (`apply` writes the store under it)."""
        self._sync_started = time.monotonic()
        self._phases = [("", self._sync_started)]
        snap = await asyncio.to_thread(self._identity_snapshot)
        self.snapshot = snap
        self._phase("store")
        statuses = {(s.namespace, s.name): pod_state(s) for s in self.node.statuses()}
        why = machine_sync_reason(self._machine_synced, snap, set(self.pods), statuses,
                                  blocked=bool(self.blocked), adoptable=bool(self.node.adoptable()))
        if not why:  # only the proxies' configuration changed: the machine stays as it is
            return await self._push(self.vips, machine=False)
        vips = await asyncio.to_thread(self._vips, snap)
        # Pods a daemon that died left running keep their names: they are adopted.
        existing = [(s.namespace, s.name) for s in self.node.statuses()]
        existing += self.node.adoptable()
        # Planning writes each proxy's bootstrap (when it changed): off the loop too.
        plan = await asyncio.to_thread(
            plan_pods, snap, vips, existing, self.containers.router_container,
            self.containers.sidecar_container, self.containers.openshift_router_container,
            self.openshift_router.hosts(snap))
        self.pods = {(p.plan.namespace, p.plan.name): p for p in plan.pods}
        self.containers.keep_only(set(self.pods))
        self.blocked = plan.blocked
        self._phase("pods planned")
        await self._open_channels()
        await asyncio.to_thread(self.node.reconcile_pods, [p.plan for p in plan.pods])
        self._phase("pods reconciled")
        return await self._push(vips)

    def _identity_snapshot(self) -> Snapshot:
        """The store's snapshot after the CA has been chosen for it and every namespace has
        the current root in ConfigMap `istio-ca-root-cert` (written to the store, so that
        `get configmap` shows it and pods can mount it, as in Istio), and every stand-in
        that asks for one has its public certificate Secret (stand_in_certs.py)."""
        snap = self.store.snapshot()
        mesh = mesh_config(snap)
        problems = self.identity.configure(snap, mesh, datetime.now(UTC))
        self.identity_problems = [Diagnostic("error", p.ref, p.field, p.message,
                                             codes.CA_NOT_CONFIGURED) for p in problems]
        namespaces = {"default", mesh.root_namespace} | {r.namespace for r in snap.resources
                                                         if r.namespace}
        stale = self.identity.root_configmaps(snap, namespaces)
        site_secrets, taken = self.stand_ins.secrets(snap, datetime.now(UTC))
        stale += site_secrets
        self.identity_problems += [Diagnostic("error", p.ref, p.field, p.message,
                                              codes.STAND_IN_SECRET_TAKEN) for p in taken]
        if stale:
            self.store.apply(stale)
            snap = self.store.snapshot()
        # OpenShift's service CA: serving certificates and CA bundles, written like the
        # operator writes them (its writes bring one more change, read here at once).
        served = self.openshift_router.service_ca_changes(snap)
        if served.apply or served.delete:
            self.store.apply(served.apply)
            self.store.delete(served.delete, ignore_missing=True)
            snap = self.store.snapshot()
        return snap

    def _vips(self, snap: Snapshot) -> dict[tuple[str, str], str]:
        wanted = {(s.namespace, s.name) for s in snap.of_kind(Service)}
        for ns, name in set(self.vips) - wanted:
            self.node.release_vip(ns, name)
        self.vips = {key: self.node.allocate_vip(*key) for key in sorted(wanted)}
        balanced = {(s.namespace, s.name) for s in snap.of_kind(Service)
                    if s.spec.type == "LoadBalancer"}
        for ns, name in set(self.load_balancer_ips) - balanced:
            self.node.release_load_balancer_ip(ns, name)
        self.load_balancer_ips = {key: self.node.allocate_load_balancer_ip(*key)
                                  for key in sorted(balanced)}
        return self.vips

    def _on_pod_change(self) -> None:
        # Called from the runtime's supervisor thread.
        if self._loop is not None and not self._push_pending:
            self._push_pending = True
            self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._repush()))

    async def _repush(self) -> None:
        await asyncio.sleep(0.02)  # coalesce a burst of pod changes into one push
        async with self.push_under_way(), self._sync_lock:
            # Pending until it starts: pod changes while a push runs (100 pods starting)
            # make one more push, not one queued push each.
            self._push_pending = False
            await self._push(self.vips)

    async def _push(self, vips: dict[tuple[str, str], str], *,
                    machine: bool = True) -> dict[str, Any]:
        """Publish the current snapshot and pods to every proxy; first, with `machine`,
        bring kube-proxy's rules and the OpenShift router in line with them."""
        snap = self.snapshot
        if self._sync_started is None:  # a re-push for pod changes: no store read
            self._phases = [("", time.monotonic())]
        statuses = {(s.namespace, s.name): s for s in self.node.statuses()}
        workloads, ready = pod_views.workloads(self.pods, statuses)
        if machine:
            await asyncio.to_thread(
                lambda: self.node.reconcile_services(service_rules(snap, vips, ready)))
            await asyncio.to_thread(self.openshift_router.update, snap, [
                PodEndpoint(p.plan.namespace, p.plan.name, ip, dict(p.plan.labels),
                            dict(p.container_ports)) for p, ip in ready])
            self._machine_synced = (snap, {key: pod_state(st) for key, st in statuses.items()})
        proxy_pods = pod_views.proxy_pods(self.pods, statuses, snap.of_kind(Service),
                                          self.load_balancer_ips, self.node.host_netns_path())
        self.served_load_balancers = proxy_pods.served_load_balancers
        self._phase("services")
        now = datetime.now(UTC)
        started, sync_started = time.monotonic(), self._sync_started
        self._sync_started = None
        # Translation is CPU work: off the event loop, so ACKs and `status` keep flowing.
        model = await asyncio.to_thread(build_model, snap, workloads, mesh_config(snap), vips)
        self._phase("model")
        push = await asyncio.to_thread(plan_push, model, proxy_pods.pods, self.identity, now=now,
                                       memo=self._translations)
        self._phase("translate")
        # A proxy whose translation failed (`kept`) keeps serving its last good config.
        fresh = {node_id: node.resources for node_id, node in push.nodes.items()
                 if node.state != "kept"}
        # Packing and hashing are CPU work too; publishing is all or nothing, on the loop.
        built = await asyncio.to_thread(self.xds.build, fresh)
        self._phase("snapshots")
        waits = self.xds.publish(built)
        self.pushed_pods = {key: pod_state(st) for key, st in statuses.items()}
        self._phase("publish")
        self.resources.update(fresh)
        self.versions.update(waits)
        proxies = {node_id: node.proxy for node_id, node in push.nodes.items()}
        self.identity.keep_only({(p.namespace, p.name) for p in proxies.values()})
        self.directory = build_directory(model, pod_views.pod_facts(self.pods, statuses))
        self.rotation.wake()
        for gone in set(self.proxies) - set(proxies):
            self.xds.remove_node(gone)
            self.resources.pop(gone, None)
        self.proxies = proxies
        self.diagnostics = [d.as_dict() for d in dict.fromkeys(
            [*self.identity_problems, *push.diagnostics,
             *pod_views.blocked_diagnostics(self.blocked), *self.openshift_router.diagnostics()])]
        planned = self._phase("status")
        connected = self.xds.connected()
        waiting = [n for n in waits if n in connected]
        applied = await asyncio.gather(*(self.xds.wait_applied(n, waits[n], APPLY_TIMEOUT_S)
                                         for n in waiting))
        acked: dict[str, Any] = {n: True if ok else _not_confirmed(self.xds.status(n))
                                 for n, ok in zip(waiting, applied, strict=True)}
        # Where a change's time goes: the control plane's part, then the proxies' (bench/).
        log.info("push %s: control plane %.3f s (store and pods %.3f s, %d proxies planned and "
                 "published %.3f s), %d of %d proxies confirmed in %.3f s (%s)", snap.version,
                 planned - (sync_started or started), started - (sync_started or started),
                 len(push.nodes), planned - started, sum(applied), len(waiting),
                 time.monotonic() - planned, self._phase_times())
        self.gc_pauses.settle()  # what the push left is long-lived: no full collection of it
        return {"version": snap.version, "diagnostics": self.diagnostics, "proxies": acked}

    def _phase(self, name: str) -> float:
        """Marks the end of a phase of the running sync or push; returns the time."""
        now = time.monotonic()
        self._phases.append((name, now))
        return now

    def _phase_times(self) -> str:
        marks = self._phases
        return ", ".join(f"{name} {end - start:.3f}"
                         for (_, start), (name, end) in itertools.pairwise(marks))

    def _admin_sockets(self) -> dict[str, Path]:
        """Every proxy's admin socket by node id: telemetry reads the proxies' stats there."""
        return pod_views.proxy_sockets(self.pods, self.home.proxy_dir, ADMIN_SOCKET)

    def _publish_renewed(self, node_id: str, resources: Mapping[str, Mapping[str, Any]]) -> None:
        """A proxy's resources with a renewed certificate (rotation.py): over SDS only."""
        self.resources[node_id] = resources
        self.versions[node_id] = self.xds.set_resources(node_id, resources)

    def _serve_metrics(self) -> Any:
        if self.metrics_address is None:
            return None
        host, port = self.metrics_address
        try:
            server = serve_metrics(self.metrics, asyncio.get_running_loop(), host, port,
                                   self.telemetry.refresh)
        except OSError as exc:  # the mesh runs on; only the scrape endpoint is missing
            log.error("cannot serve metrics on %s:%d: %s", host, port, exc)
            self.metrics_address = None
            return None
        log.info("Istio standard metrics at http://%s:%d/metrics", host, port)
        return server

    def _prepare_xds_dir(self) -> None:
        d = self.home.xds_dir
        d.mkdir(parents=True, exist_ok=True)
        os.chown(d, 0, 0)
        os.chmod(d, 0o700)

    async def _open_channels(self) -> None:
        """One xDS channel per proxy pod, in the pod's proxy directory (bound into the pod
        at POD_PROXY_DIR), serving that pod's node only."""
        wanted = pod_views.proxy_sockets(self.pods, self.home.proxy_dir, CHANNEL_SOCKET)
        for node_id in set(self.xds.channels()) - set(wanted):
            await self.xds.close_channel(node_id)
        for node_id, path in wanted.items():
            await self.xds.open_channel(node_id, path, PROXY_UID)

def _metrics_address() -> tuple[str, int] | None:
    value = os.environ.get(METRICS_ADDRESS_ENV, f"{DEFAULT_ADDRESS}:{DEFAULT_PORT}")
    if value == "off":
        return None
    host, _, port = value.rpartition(":")
    if not port.isdigit():
        raise SystemExit(f"{METRICS_ADDRESS_ENV}={value!r}: use host:port or off")
    return host or DEFAULT_ADDRESS, int(port)


def _ca_key_type() -> KeyType:
    value = os.environ.get(CA_KEY_TYPE_ENV, "ecdsa-p256")
    if value not in KEY_TYPES:
        raise SystemExit(f"{CA_KEY_TYPE_ENV}={value!r}: use one of {', '.join(KEY_TYPES)}")
    return cast(KeyType, value)


def _not_confirmed(st: NodeStatus) -> str:
    """Why a push was not confirmed: Envoy's own rejection message, or that it is late."""
    state, detail = st.sync_state()
    if state == "NACK":
        return detail
    return f"not confirmed within {APPLY_TIMEOUT_S:.0f}s ({detail or state})"


def main() -> None:
    home = Home.from_env()
    home.run.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(MeshDaemon(home).run())


if __name__ == "__main__":
    main()
