"""`sailctl status`: a proxy is SYNCED only when the mesh has settled — it ACKed the last
push, that push saw every pod as it is now, and no other push is under way.

At 1000 Services x 100 pods the last pods turn ready while a push is being planned: every
proxy had ACKed the push before, so `status` called them SYNCED although their endpoints
were about to change for every ready pod (and `up`, and the benchmark waiting for SYNCED,
took the mesh for settled while ~1,000 ClusterLoadAssignments per proxy were still coming).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sailmesh.meshd.ops import ControlOps, pod_state
from sailmesh.model.proxy import Proxy
from sailmesh.model.snapshot import Snapshot
from sailmesh.runtime.plans import PodStatus
from sailmesh.xds import NodeStatus, TypeStatus, type_urls
from sailmesh.xds.stream import Nack

NODE = "sidecar~web-0.default"


def _pod(name: str, ready: bool) -> PodStatus:
    return PodStatus("default", name, f"10.88.0.{len(name)}", "Running", ready, 0, 0.0, "")


class _Xds:
    def __init__(self, nack: bool = False) -> None:
        self.nack = nack

    def connected(self) -> list[str]:
        return [NODE]

    def status(self, node_id: str) -> NodeStatus:
        acked = {t: TypeStatus(t, requested=True, sent_version="v", sent_nonce="1",
                               acked_version="v", acked_nonce="1")
                 for t in type_urls.ADS_ORDER}
        if self.nack:
            listeners = type_urls.LISTENER
            acked[listeners] = TypeStatus(
                listeners, requested=True, sent_version="v", sent_nonce="2",
                acked_version="u", acked_nonce="1",
                last_nack=Nack(listeners, "v", "2", "duplicate listener", 13))
        return NodeStatus(node_id, "v", datetime(2026, 1, 1, tzinfo=UTC), acked)


class _Daemon(ControlOps):
    """The state `ControlOps._op_status` reads, with one sidecar pod and one app pod."""

    def __init__(self, pods: list[PodStatus], xds: _Xds | None = None) -> None:
        self.live = pods
        self.home = SimpleNamespace(root="/state", instance="t",  # type: ignore[assignment]
                                    proxy_dir=lambda ns, name: f"/state/{ns}/{name}")
        self.node = SimpleNamespace(statuses=lambda: self.live,  # type: ignore[assignment]
                                    log_path=lambda ns, name, c: f"/logs/{name}/{c}")
        self.pods = {}
        self.blocked = {}
        self.proxies = {NODE: Proxy("sidecar", "default", "web-0", {}, "10.88.0.5")}
        self.xds = xds or _Xds()  # type: ignore[assignment]
        self.versions, self.started, self.snapshot = {}, 0.0, Snapshot()
        self.diagnostics, self.vips, self.served_load_balancers = [], {}, {}
        self.identity = SimpleNamespace(status=lambda: {})  # type: ignore[assignment]
        self.rotation = SimpleNamespace(status=lambda: [])  # type: ignore[assignment]
        self.metrics_address = None
        self.openshift_router = SimpleNamespace(  # type: ignore[assignment]
            info=lambda: {}, statuses=lambda snapshot: [])

    def pushed(self) -> None:
        """As `MeshDaemon._push` records when it publishes."""
        self.pushed_pods = {(p.namespace, p.name): pod_state(p) for p in self.live}

    def status(self) -> dict[str, Any]:
        return asyncio.run(self._op_status({}))


def test_synced_when_the_last_push_saw_every_pod_as_it_is() -> None:
    daemon = _Daemon([_pod("web-0", True), _pod("app-0", True)])
    daemon.pushed()
    st = daemon.status()
    assert (st["proxies"][NODE]["state"], st["unsettled"]) == ("SYNCED", "")


def test_a_pod_that_turned_ready_after_the_last_push_leaves_every_proxy_stale() -> None:
    daemon = _Daemon([_pod("web-0", True), _pod("app-0", False)])
    daemon.pushed()
    daemon.live = [_pod("web-0", True), _pod("app-0", True)]  # its endpoint is not out yet
    st = daemon.status()
    proxy = st["proxies"][NODE]
    assert proxy["state"] == "STALE"
    assert proxy["detail"] == st["unsettled"] == (
        "pods changed since the last push (default/app-0); a push follows")
    daemon.pushed()
    assert daemon.status()["proxies"][NODE]["state"] == "SYNCED"


def test_a_new_or_gone_pod_counts_and_a_long_list_is_cut() -> None:
    daemon = _Daemon([_pod("web-0", True)])
    daemon.pushed()
    daemon.live = [_pod("web-0", True), *(_pod(f"app-{i}", False) for i in range(5))]
    assert daemon.status()["unsettled"] == (
        "pods changed since the last push (default/app-0, default/app-1, default/app-2 and "
        "2 more); a push follows")
    daemon.pushed()
    daemon.live = []
    assert daemon.status()["unsettled"].startswith("pods changed since the last push")


def test_a_push_under_way_leaves_every_proxy_stale_until_it_ends() -> None:
    daemon = _Daemon([_pod("web-0", True)])
    daemon.pushed()
    seen: list[str] = []

    async def push() -> None:
        async with daemon.push_under_way():
            seen.append((await daemon._op_status({}))["proxies"][NODE]["state"])
        seen.append((await daemon._op_status({}))["proxies"][NODE]["state"])

    asyncio.run(push())
    assert seen == ["STALE", "SYNCED"]


def test_a_rejected_config_stays_a_nack_whatever_is_under_way() -> None:
    daemon = _Daemon([_pod("web-0", True)], _Xds(nack=True))
    daemon.pushed()
    daemon.live = [_pod("web-0", False)]
    proxy = daemon.status()["proxies"][NODE]
    assert proxy["state"] == "NACK" and "duplicate listener" in proxy["detail"]
