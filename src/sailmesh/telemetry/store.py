"""Istio's standard metrics as counters and histograms, and a store of recent samples.

Owns: the metric families (names, label sets, Istio's buckets), the control plane's own
cumulative values (increments only: a proxy that restarts never makes a series go back),
and recent increments in time buckets for the dashboard, so that it needs no Prometheus.
Must not know: Envoy, HTTP serving.
Not thread-safe: the daemon's event loop is the only writer and reader.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from sailmesh.telemetry.labels import HTTP_LABELS, TCP_LABELS, Ends

REQUESTS = "istio_requests_total"
DURATION = "istio_request_duration_milliseconds"
REQUEST_BYTES = "istio_request_bytes"
RESPONSE_BYTES = "istio_response_bytes"
TCP_SENT = "istio_tcp_sent_bytes_total"
TCP_RECEIVED = "istio_tcp_received_bytes_total"
TCP_OPENED = "istio_tcp_connections_opened_total"
TCP_CLOSED = "istio_tcp_connections_closed_total"
COUNTERS = {REQUESTS: HTTP_LABELS, TCP_SENT: TCP_LABELS, TCP_RECEIVED: TCP_LABELS,
            TCP_OPENED: TCP_LABELS, TCP_CLOSED: TCP_LABELS}
HISTOGRAMS = {DURATION: HTTP_LABELS, REQUEST_BYTES: HTTP_LABELS, RESPONSE_BYTES: HTTP_LABELS}
HELP = {
    REQUESTS: "Requests handled by an Istio proxy",
    DURATION: "Duration of requests (milliseconds)",
    REQUEST_BYTES: "Size of requests (bytes on the wire: headers and body)",
    RESPONSE_BYTES: "Size of responses (bytes on the wire: headers and body)",
    TCP_SENT: "Bytes sent during response in a TCP connection",
    TCP_RECEIVED: "Bytes received during request in a TCP connection",
    TCP_OPENED: "TCP connections opened",
    TCP_CLOSED: "TCP connections closed",
}
# Istio's buckets for all three histograms: Envoy's default histogram buckets (Istio's
# proxy configures none of its own).
BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
           300000, 600000, 1800000, 3600000)
BUCKET_SECONDS = 5.0
KEEP_SECONDS = 3600.0
Series = tuple[str, ...]


@dataclass
class Histogram:
    """Counts per bucket (not cumulative; the last bucket is above the highest bound)."""

    buckets: list[float] = field(default_factory=lambda: [0.0] * (len(BUCKETS) + 1))
    total: float = 0.0
    count: float = 0.0

    def add(self, buckets: Sequence[float], total: float, count: float) -> None:
        for i, n in enumerate(buckets):
            self.buckets[i] += n
        self.total += total
        self.count += count


@dataclass(frozen=True)
class Sample:
    """One increment of a series, with what the dashboard needs beyond Istio's labels."""

    metric: str
    labels: Mapping[str, str]
    value: float
    ends: Ends

    def as_dict(self) -> dict[str, object]:
        """JSON for the dashboard: Istio's labels plus the entry's own TLS facts."""
        parts = self.ends.cluster.split("|")
        port = int(parts[1]) if len(parts) == 4 and parts[0] == "outbound" and parts[1].isdigit() \
            else None
        return {"metric": self.metric, "labels": dict(self.labels), "value": self.value,
                "upstream_tls": self.ends.upstream_tls, "sni": self.ends.passthrough_sni,
                "port": port}


@dataclass
class _Bucket:
    start: float
    increments: dict[tuple[str, Series], float] = field(default_factory=dict)


class MetricStore:
    def __init__(self, keep_seconds: float = KEEP_SECONDS) -> None:
        self.counters: dict[str, dict[Series, float]] = {name: {} for name in COUNTERS}
        self.histograms: dict[str, dict[Series, Histogram]] = {name: {} for name in HISTOGRAMS}
        self._recent: deque[_Bucket] = deque(maxlen=int(keep_seconds / BUCKET_SECONDS) + 1)
        # The facts behind each series, for the dashboard (the last seen per series).
        self.ends: dict[tuple[str, Series], Ends] = {}

    # --- recording --------------------------------------------------------------------

    def add(self, metric: str, series: Series, value: float, e: Ends, now: float) -> None:
        """Add `value` to a counter's series."""
        if value <= 0:
            return
        values = self.counters[metric]
        values[series] = values.get(series, 0) + value
        self.ends[(metric, series)] = e
        bucket = self._bucket(now)
        key = (metric, series)
        bucket.increments[key] = bucket.increments.get(key, 0) + value

    def observe(self, metric: str, series: Series, buckets: Sequence[float], total: float,
                count: float) -> None:
        """Add observations to a histogram's series: counts per bucket, their sum and number."""
        if count > 0:
            self.histograms[metric].setdefault(series, Histogram()).add(buckets, total, count)

    def _bucket(self, now: float) -> _Bucket:
        start = now - now % BUCKET_SECONDS
        if not self._recent or self._recent[-1].start != start:
            self._recent.append(_Bucket(start))
        return self._recent[-1]

    # --- reading ----------------------------------------------------------------------

    def recent(self, since: float) -> Iterator[Sample]:
        """Increments summed per series over the buckets that start at or after `since`."""
        totals: dict[tuple[str, Series], float] = {}
        for bucket in self._recent:
            if bucket.start + BUCKET_SECONDS <= since:
                continue
            for key, value in bucket.increments.items():
                totals[key] = totals.get(key, 0) + value
        for (metric, series), value in totals.items():
            names = COUNTERS[metric]
            yield Sample(metric, dict(zip(names, series, strict=True)), value,
                         self.ends[(metric, series)])

    def series(self, metric: str) -> Iterable[tuple[Mapping[str, str], float]]:
        names = COUNTERS[metric]
        for series, value in self.counters[metric].items():
            yield dict(zip(names, series, strict=True)), value


__all__ = ["BUCKETS", "COUNTERS", "DURATION", "HELP", "HISTOGRAMS", "REQUESTS", "REQUEST_BYTES",
           "RESPONSE_BYTES", "TCP_CLOSED", "TCP_OPENED", "TCP_RECEIVED", "TCP_SENT", "Histogram",
           "MetricStore", "Sample", "Series"]
