"""Prometheus text exposition of the standard metrics, on the control plane's metrics port.

Owns: the `/metrics` endpoint (prometheus_client's HTTP server, on its own thread) and the
collector that renders a `MetricStore` as counter and histogram families. The store lives
on the daemon's event loop, so each scrape asks the loop to refresh it from the proxies and
for a copy, instead of reading across threads. Must not know: how entries become metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CollectorRegistry, CounterMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from sailmesh.telemetry.store import BUCKETS, COUNTERS, HELP, HISTOGRAMS, MetricStore

Refresh = Callable[[], Awaitable[object]]
# istiod's monitoring port, where a user's Prometheus already looks for the control plane.
DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 15014
METRICS_PATH = "/metrics"


@dataclass(frozen=True)
class Frozen:
    counters: dict[str, list[tuple[tuple[str, ...], float]]]
    histograms: dict[str, list[tuple[tuple[str, ...], list[float], float, float]]]


def freeze(store: MetricStore) -> Frozen:
    return Frozen(
        counters={name: list(values.items()) for name, values in store.counters.items()},
        histograms={name: [(s, list(h.buckets), h.total, h.count) for s, h in values.items()]
                    for name, values in store.histograms.items()})


def families(frozen: Frozen) -> Iterator[Any]:
    for name, names in COUNTERS.items():
        family = CounterMetricFamily(name, HELP[name], labels=names)
        for series, value in frozen.counters[name]:
            family.add_metric(list(series), value)
        yield family
    for name, names in HISTOGRAMS.items():
        histogram = HistogramMetricFamily(name, HELP[name], labels=names)
        for series, buckets, total, count in frozen.histograms[name]:
            cumulative: list[tuple[str, float]] = []
            running = 0.0
            for bound, n in zip(BUCKETS, buckets, strict=False):
                running += n
                cumulative.append((_bound(bound), running))
            cumulative.append(("+Inf", count))
            histogram.add_metric(list(series), cumulative, total)
        yield histogram


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class _LoopCollector(Collector):
    def __init__(self, store: MetricStore, loop: asyncio.AbstractEventLoop,
                 refresh: Refresh) -> None:
        self._store = store
        self._loop = loop
        self._refresh = refresh

    def collect(self) -> Iterator[Any]:
        async def copy() -> Frozen:
            await self._refresh()
            return freeze(self._store)
        frozen = asyncio.run_coroutine_threadsafe(copy(), self._loop).result(timeout=10)
        yield from families(frozen)


def serve_metrics(store: MetricStore, loop: asyncio.AbstractEventLoop, address: str,
                  port: int, refresh: Refresh) -> Any:
    """Start `/metrics` on address:port; returns the server (call `.shutdown()`).
    `refresh` runs on the loop before each scrape (it reads the proxies)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_LoopCollector(store, loop, refresh))
    server, _thread = start_http_server(port, addr=address, registry=registry)
    return server


__all__ = ["DEFAULT_ADDRESS", "DEFAULT_PORT", "METRICS_PATH", "Frozen", "families", "freeze",
           "serve_metrics"]
