"""Istio's standard metrics as counters and histograms, and a store of recent samples.

Owns: the metric families (names, label sets, Istio's duration buckets), turning one
access-log entry into increments (one HTTP entry is one request; TCP entries are the
connection events of tcp_proxy), and recent increments in time buckets for the
dashboard, so that it needs no Prometheus. Must not know: gRPC, HTTP serving.
Not thread-safe: the daemon's event loop is the only writer and reader.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from envoy.data.accesslog.v3 import accesslog_pb2 as data_pb2

from sailmesh.telemetry.directory import Directory
from sailmesh.telemetry.labels import (
    HTTP_LABELS,
    TCP_LABELS,
    Ends,
    duration_ms,
    http_labels,
    ordered,
    tcp_labels,
)

REQUESTS = "istio_requests_total"
DURATION = "istio_request_duration_milliseconds"
TCP_SENT = "istio_tcp_sent_bytes_total"
TCP_RECEIVED = "istio_tcp_received_bytes_total"
TCP_OPENED = "istio_tcp_connections_opened_total"
TCP_CLOSED = "istio_tcp_connections_closed_total"
COUNTERS = {REQUESTS: HTTP_LABELS, TCP_SENT: TCP_LABELS, TCP_RECEIVED: TCP_LABELS,
            TCP_OPENED: TCP_LABELS, TCP_CLOSED: TCP_LABELS}
HELP = {
    REQUESTS: "Requests handled by an Istio proxy",
    DURATION: "Duration of requests (milliseconds)",
    TCP_SENT: "Bytes sent during response in a TCP connection",
    TCP_RECEIVED: "Bytes received during request in a TCP connection",
    TCP_OPENED: "TCP connections opened",
    TCP_CLOSED: "TCP connections closed",
}
# Istio's default buckets for istio_request_duration_milliseconds.
DURATION_BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
                    60000, 300000, 600000, 1800000, 3600000)
BUCKET_SECONDS = 5.0
KEEP_SECONDS = 3600.0
Series = tuple[str, ...]
_T = data_pb2.AccessLogType


@dataclass
class Histogram:
    buckets: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(DURATION_BUCKETS, value)
        if i < len(self.buckets):
            self.buckets[i] += 1
        self.total += value
        self.count += 1


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


@dataclass
class _Connection:
    sent: int = 0
    received: int = 0


class MetricStore:
    def __init__(self, keep_seconds: float = KEEP_SECONDS) -> None:
        self.counters: dict[str, dict[Series, float]] = {name: {} for name in COUNTERS}
        self.durations: dict[Series, Histogram] = {}
        self._recent: deque[_Bucket] = deque(maxlen=int(keep_seconds / BUCKET_SECONDS) + 1)
        # The facts behind each series, for the dashboard (the last seen per series).
        self.ends: dict[tuple[str, Series], Ends] = {}
        self._open: dict[tuple[str, str, int, int], _Connection] = {}

    # --- recording --------------------------------------------------------------------

    def record_http(self, entry: data_pb2.HTTPAccessLogEntry, direction: str, reporter_node: str,
                    directory: Directory, now: float) -> bool:
        reporter = directory.proxies.get(reporter_node)
        if reporter is None or entry.common_properties.intermediate_log_entry:
            return False
        labels, e = http_labels(entry, direction, reporter, directory)
        series = ordered(labels, HTTP_LABELS)
        self._add(REQUESTS, series, 1, e, now)
        self.durations.setdefault(series, Histogram()).observe(
            duration_ms(entry.common_properties))
        return True

    def record_tcp(self, entry: data_pb2.TCPAccessLogEntry, direction: str, reporter_node: str,
                   directory: Directory, now: float) -> bool:
        reporter = directory.proxies.get(reporter_node)
        if reporter is None:
            return False
        common = entry.common_properties
        labels, e = tcp_labels(entry, direction, reporter, directory)
        series = ordered(labels, TCP_LABELS)
        remote = common.downstream_remote_address.socket_address
        key = (reporter_node, remote.address, remote.port_value,
               common.start_time.ToNanoseconds())
        kind = common.access_log_type
        known = self._open.get(key)
        if known is None:
            known = self._open[key] = _Connection()
            # Istio counts a connection opened once, whether or not its upstream connected.
            self._add(TCP_OPENED, series, 1, e, now)
        props = entry.connection_properties
        # Periodic and final entries carry the connection's totals so far.
        self._add(TCP_SENT, series, max(0, props.sent_bytes - known.sent), e, now)
        self._add(TCP_RECEIVED, series, max(0, props.received_bytes - known.received), e, now)
        known.sent, known.received = max(known.sent, props.sent_bytes), max(
            known.received, props.received_bytes)
        if kind in (_T.TcpConnectionEnd, _T.NotSet):
            self._open.pop(key, None)
            self._add(TCP_CLOSED, series, 1, e, now)
        return True

    def _add(self, metric: str, series: Series, value: float, e: Ends, now: float) -> None:
        values = self.counters[metric]
        values[series] = values.get(series, 0) + value
        self.ends[(metric, series)] = e
        bucket = self._bucket(now)
        key = (metric, series)
        bucket.increments[key] = bucket.increments.get(key, 0) + value

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


__all__ = ["COUNTERS", "DURATION", "DURATION_BUCKETS", "HELP", "REQUESTS", "TCP_CLOSED",
           "TCP_OPENED", "TCP_RECEIVED", "TCP_SENT", "Histogram", "MetricStore", "Sample"]
