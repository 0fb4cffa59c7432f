"""Reading what each proxy counted, and turning it into increments of Istio's series.

Owns: the request to a proxy's admin endpoint (a Unix socket in its pod's proxy
directory; only the control plane and the pod reach it), the names of the stats the
telemetry loggers keep (`sailmesh.translate.telemetry_stats`), and the arithmetic from a
proxy's cumulative values to increments: the difference from the last reading of the same
series; a value below it, or a proxy whose uptime went back (a restart, a series Envoy
dropped with its listener), starts again from zero, as Prometheus's rate() treats a reset.
Must not know: Istio's label rules (`labels`), how the store keeps metrics.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from sailmesh.telemetry import store as m
from sailmesh.telemetry.directory import Directory
from sailmesh.telemetry.labels import HTTP_LABELS, TCP_LABELS, http_labels, ordered, tcp_labels
from sailmesh.translate import telemetry_stats as stats

_log = logging.getLogger(__name__)

# Envoy's Prometheus names: envoy_<scope>_<direction>_<stat>.
_PREFIX = f"envoy_{stats.SCOPE}_"
ISTIO_NAME = {
    stats.REQUESTS: m.REQUESTS, stats.DURATION: m.DURATION,
    stats.REQUEST_BYTES: m.REQUEST_BYTES, stats.RESPONSE_BYTES: m.RESPONSE_BYTES,
    stats.TCP_OPENED: m.TCP_OPENED, stats.TCP_CLOSED: m.TCP_CLOSED,
    stats.TCP_SENT: m.TCP_SENT, stats.TCP_RECEIVED: m.TCP_RECEIVED,
}
# Only the telemetry stats, and the uptime that tells a restarted proxy.
STATS_PATH = f"/stats/prometheus?usedonly&filter=^({stats.SCOPE}\\.|server\\.uptime$)"
_UPTIME = "envoy_server_uptime"
_READ_TIMEOUT_S = 5.0
Key = tuple[str, tuple[tuple[str, str], ...]]  # (Envoy name, its tags)


@dataclass(frozen=True)
class Reading:
    """One series of one proxy: a counter's value, or a histogram's cumulative buckets."""

    name: str  # without the scope: <direction>_<stat>
    tags: tuple[tuple[str, str], ...]
    value: float = 0.0
    buckets: tuple[float, ...] = ()  # cumulative, by Envoy's `le` order; the last is +Inf
    total: float = 0.0


def parse(text: str) -> tuple[float | None, list[Reading]]:
    """The proxy's uptime and its telemetry series from Envoy's Prometheus text."""
    uptime: float | None = None
    out: list[Reading] = []
    for family in text_string_to_metric_families(text):
        if family.name == _UPTIME:
            uptime = family.samples[0].value if family.samples else None
            continue
        if not family.name.startswith(_PREFIX):
            continue
        name = family.name[len(_PREFIX):]
        if family.type == "counter":
            out += [Reading(name, tuple(sorted(s.labels.items())), s.value)
                    for s in family.samples]
            continue
        buckets: dict[tuple[tuple[str, str], ...], list[float]] = {}
        sums: dict[tuple[tuple[str, str], ...], float] = {}
        counts: dict[tuple[tuple[str, str], ...], float] = {}
        for s in family.samples:
            tags = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            if s.name.endswith("_bucket"):
                buckets.setdefault(tags, []).append(s.value)
            elif s.name.endswith("_sum"):
                sums[tags] = s.value
            elif s.name.endswith("_count"):
                counts[tags] = s.value
        out += [Reading(name, tags, counts.get(tags, 0.0), tuple(b), sums.get(tags, 0.0))
                for tags, b in buckets.items()]
    return uptime, out


@dataclass
class _Proxy:
    uptime: float = -1.0
    last: dict[Key, Reading] = field(default_factory=dict)


class ProxyStats:
    """The last reading of every proxy, and the increments each new reading brings."""

    def __init__(self) -> None:
        self._proxies: dict[str, _Proxy] = {}

    def nodes(self) -> set[str]:
        return set(self._proxies)

    def forget(self, node_id: str) -> None:
        self._proxies.pop(node_id, None)

    def ingest(self, node_id: str, text: str, directory: Directory, store: m.MetricStore,
               now: float) -> int:
        """Add what the proxy counted since its last reading; returns the series read."""
        reporter = directory.proxies.get(node_id)
        uptime, readings = parse(text)
        proxy = self._proxies.setdefault(node_id, _Proxy())
        if uptime is not None and uptime < proxy.uptime:
            proxy.last.clear()  # the proxy restarted: every value counts from zero
        proxy.uptime = uptime if uptime is not None else proxy.uptime
        seen: dict[Key, Reading] = {}
        for r in readings:
            key = (r.name, r.tags)
            seen[key] = r
            before = proxy.last.get(key)
            if reporter is not None:
                self._record(r, before, reporter_node=node_id, directory=directory,
                             store=store, now=now)
        # A series missing from this reading was dropped by Envoy: it starts from zero.
        proxy.last = seen
        return len(readings)

    def _record(self, r: Reading, before: Reading | None, *, reporter_node: str,
                directory: Directory, store: m.MetricStore, now: float) -> None:
        direction, _, stat = r.name.partition("_")
        metric = ISTIO_NAME.get(stat)
        reporter = directory.proxies[reporter_node]
        if metric is None or direction not in ("inbound", "outbound"):
            return
        tags = dict(r.tags)
        if metric in m.HISTOGRAMS:
            labels, _ends = http_labels(tags, direction, reporter, directory)
            if before is not None and (r.value < before.value
                                       or len(before.buckets) != len(r.buckets)):
                before = None  # reset
            base = before or Reading(r.name, r.tags, buckets=(0.0,) * len(r.buckets))
            cumulative = [b - a for a, b in zip(base.buckets, r.buckets, strict=True)]
            counts = [b - a for a, b in zip([0.0, *cumulative], cumulative, strict=False)]
            store.observe(metric, ordered(labels, HTTP_LABELS), counts,
                          r.total - base.total, r.value - base.value)
            return
        http = metric == m.REQUESTS
        labels, e = (http_labels if http else tcp_labels)(tags, direction, reporter, directory)
        increment = r.value if before is None or r.value < before.value else r.value - before.value
        store.add(metric, ordered(labels, HTTP_LABELS if http else TCP_LABELS), increment, e, now)


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP to a server on a Unix socket (Envoy's admin endpoint)."""

    def __init__(self, path: str, timeout: float = 10) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _get(socket_path: Path, path: str) -> str:
    conn = UnixHTTPConnection(str(socket_path), _READ_TIMEOUT_S)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise OSError(f"admin {path}: HTTP {resp.status}")
    return body.decode()


async def read_admin(socket_path: Path, path: str = STATS_PATH) -> str:
    """GET `path` from an Envoy admin endpoint on a Unix socket (in a worker thread)."""
    return await asyncio.to_thread(_get, socket_path, path)


__all__ = ["ISTIO_NAME", "STATS_PATH", "ProxyStats", "Reading", "UnixHTTPConnection", "parse",
           "read_admin"]
