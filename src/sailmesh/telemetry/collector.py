"""Collecting every proxy's telemetry stats into the metric store.

Owns: when proxies are read — every COLLECT_SECONDS for the dashboard's recent samples,
and before each Prometheus scrape or dashboard query unless a reading is fresher than
FRESH_SECONDS — and reading them one at a time, never while the mesh is changing. A proxy
that cannot be read (starting, restarting) is skipped and read again next time: what it
counted meanwhile is in its cumulative values. Must not know: Envoy's stat names, Istio's
labels. IO only; loop-thread only.

Why one at a time, and not during a change: Envoy walks all its stats to answer, used or
not. Keeping every stat, a sidecar at 1,000 Services held ~130,000 and one reading cost it
~27 ms of CPU; with Istio's inclusion list (model.stats_inclusion) it keeps ~220 and a
reading costs ~2 ms, but a pod may widen the list. Thirty full proxies read at once kept
both cores of the machine busy for ~0.55 s every COLLECT_SECONDS, and a change (`sailctl
apply`, meshd's push, the proxies applying it) that came meanwhile took 0.3-0.7 s longer
(bench/control_plane.py, 1000x30). Each reading waits for `quiet`, the lock meshd holds
while it applies a change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from sailmesh.telemetry.directory import Directory
from sailmesh.telemetry.proxy_stats import ProxyStats, read_admin
from sailmesh.telemetry.store import MetricStore

_log = logging.getLogger(__name__)

COLLECT_SECONDS = 5.0
FRESH_SECONDS = 0.5
# node id → the proxy's admin socket.
Targets = Callable[[], Mapping[str, Path]]


class Collector:
    def __init__(self, store: MetricStore, targets: Targets,
                 directory: Callable[[], Directory], quiet: asyncio.Lock | None = None) -> None:
        self.store = store
        self._quiet = quiet or asyncio.Lock()
        self._targets = targets
        self._directory = directory
        self._stats = ProxyStats()
        self._lock = asyncio.Lock()
        self._read_at = 0.0  # monotonic time of the last complete reading

    async def refresh(self) -> None:
        """Read every proxy, unless the last reading is fresh enough."""
        async with self._lock:
            if time.monotonic() - self._read_at < FRESH_SECONDS:
                return
            targets = dict(self._targets())
            for gone in self._stats.nodes() - set(targets):
                self._stats.forget(gone)
            for node_id, path in targets.items():
                async with self._quiet:
                    pass  # a change being applied goes first
                try:
                    text = await read_admin(path)
                except Exception as exc:
                    _log.debug("telemetry of %s not read: %s", node_id, exc)
                    continue
                self._stats.ingest(node_id, text, self._directory(), self.store, time.time())
            self._read_at = time.monotonic()

    async def run_forever(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # one bad reading never stops telemetry
                _log.exception("telemetry collection failed")
            await asyncio.sleep(COLLECT_SECONDS)


__all__ = ["COLLECT_SECONDS", "Collector", "Targets"]
