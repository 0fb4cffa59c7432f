"""Telemetry's stats access loggers: Istio's standard metrics counted inside each Envoy.

Owns: the `envoy.access_loggers.stats` loggers of every HTTP connection manager and
tcp_proxy, their stat names and the tags (access-log command operators) the control plane
needs to name both ends as Istio's labels do.
Must not know: listeners, or how the control plane reads the stats. The histograms keep
Envoy's default buckets, which are Istio's.

Why counting in Envoy: a stats logger adds to a counter or histogram per request, like
Istio's own stats filter; no message per request leaves the proxy. The control plane reads
each proxy's stats (its admin endpoint, in the pod's proxy directory) when it needs them.
Tags carry only what the control plane cannot know itself: the peer's address and the
verified certificate SANs of the connection, the service asked for, the outcome.
"""

from __future__ import annotations

import functools
from typing import Literal

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.data.accesslog.v3 import accesslog_pb2 as data_pb2
from google.protobuf import struct_pb2
from xds.type.v3 import typed_struct_pb2

from sailmesh.translate.config_source import pack

STATS_LOGGER = "envoy.access_loggers.stats"
_CONFIG_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.stats.v3.Config"
# The scope of every telemetry stat: `/stats/prometheus` shows them as sailmesh_telemetry_*.
SCOPE = "sailmesh_telemetry"
Direction = Literal["inbound", "outbound"]

# Stat names (in SCOPE) and the access-log value each records.
REQUESTS = "requests"
DURATION = "request_duration_milliseconds"
REQUEST_BYTES = "request_bytes"
RESPONSE_BYTES = "response_bytes"
TCP_OPENED = "tcp_connections_opened"
TCP_CLOSED = "tcp_connections_closed"
TCP_SENT = "tcp_sent_bytes"
TCP_RECEIVED = "tcp_received_bytes"

# Tags: what only the proxy knows. Envoy renders a missing value as an empty tag.
_PEER_DOWNSTREAM = {
    "peer_ip": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
    "peer_san": "%DOWNSTREAM_PEER_URI_SAN%",
    "local_san": "%DOWNSTREAM_LOCAL_URI_SAN%",
    "port": "%DOWNSTREAM_LOCAL_PORT%",
}
_PEER_UPSTREAM = {
    "peer_ip": "%UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
    "cluster": "%UPSTREAM_CLUSTER_RAW%",
    "peer_san": "%UPSTREAM_PEER_URI_SAN%",
    "local_san": "%UPSTREAM_LOCAL_URI_SAN%",
    "tls": "%UPSTREAM_TLS_VERSION%",
}
_HTTP = {
    # The Host header, cut short: a client chooses it, and every value is a new series.
    "authority": "%REQ(:AUTHORITY):100%",
    "code": "%RESPONSE_CODE%",
    "flags": "%RESPONSE_FLAGS%",
    # `application/grpc` is 16 characters: enough to tell gRPC, and few values.
    "content_type": "%REQ(CONTENT-TYPE):16%",
    "grpc": "%GRPC_STATUS_NUMBER%",
}
TAGS: dict[tuple[Direction, bool], dict[str, str]] = {  # (direction, tcp)
    ("inbound", False): {**_PEER_DOWNSTREAM, **_HTTP},
    ("outbound", False): {**_PEER_UPSTREAM, **_HTTP},
    ("inbound", True): {**_PEER_DOWNSTREAM, "flags": "%RESPONSE_FLAGS%"},
    # The SNI of TLS the proxy passed through (no TLS of its own downstream).
    ("outbound", True): {**_PEER_UPSTREAM, "flags": "%RESPONSE_FLAGS%",
                         "sni": "%REQUESTED_SERVER_NAME%"},
}
_T = data_pb2.AccessLogType


# TCP connections whose upstream never connected (no TcpUpstreamConnected entry) count as
# opened when they end, as Istio counts every connection opened once.
_NOT_CONNECTED_FLAGS = ("UF", "UH", "UO", "NR", "URX")


def _stat(name: str, direction: Direction, tcp: bool) -> dict[str, object]:
    tags = [{"name": k, "value_format": v} for k, v in TAGS[(direction, tcp)].items()]
    return {"name": f"{direction}_{name}", "tags": tags}


def _logger(config: dict[str, object]) -> accesslog_pb2.AccessLog:
    # The stats logger's `stats_scope` is newer than the generated protos we have: the
    # config goes as a TypedStruct, which Envoy reads as JSON of its own message.
    value = struct_pb2.Struct()
    value.update({"stats_scope": {"prefix": SCOPE}, **config})
    return accesslog_pb2.AccessLog(name=STATS_LOGGER, typed_config=pack(
        typed_struct_pb2.TypedStruct(type_url=_CONFIG_TYPE, value=value)))


def stats_access_logs(direction: Direction, *, tcp: bool) -> list[accesslog_pb2.AccessLog]:
    """The telemetry loggers of an HTTP connection manager, or (`tcp`) of a tcp_proxy.

    HTTP: each request counts once, with its duration and its request and response sizes
    as Istio measures them (bytes of the stream on the downstream wire: headers and body).
    TCP: opened when the upstream connects (tcp_proxy's flush_access_log_on_connected),
    closed with the connection's bytes when it ends.
    Contract: callers must not mutate the messages (a field set to them copies them)."""
    return list(_loggers(direction, tcp))


@functools.cache
def _loggers(direction: Direction, tcp: bool) -> tuple[accesslog_pb2.AccessLog, ...]:
    # The same few messages for every listener of every proxy: built once (building the
    # Struct of their config costs more than the rest of a sidecar's listeners).
    if not tcp:
        return (_logger({
            "counters": [{"stat": _stat(REQUESTS, direction, False), "value_fixed": 1}],
            "histograms": [
                {"stat": _stat(DURATION, direction, False), "unit": "Milliseconds",
                 "value_format": "%DURATION%"},
                {"stat": _stat(REQUEST_BYTES, direction, False), "unit": "Bytes",
                 "value_format": "%DOWNSTREAM_WIRE_BYTES_RECEIVED%"},
                {"stat": _stat(RESPONSE_BYTES, direction, False), "unit": "Bytes",
                 "value_format": "%DOWNSTREAM_WIRE_BYTES_SENT%"},
            ]}),)
    opened = _logger({"counters": [
        {"stat": _stat(TCP_OPENED, direction, True), "value_fixed": 1}]})
    opened.filter.log_type_filter.types.append(_T.TcpUpstreamConnected)
    closed = _logger({"counters": [
        {"stat": _stat(TCP_CLOSED, direction, True), "value_fixed": 1},
        {"stat": _stat(TCP_SENT, direction, True), "value_format": "%BYTES_SENT%"},
        {"stat": _stat(TCP_RECEIVED, direction, True), "value_format": "%BYTES_RECEIVED%"},
    ]})
    closed.filter.log_type_filter.types.append(_T.TcpConnectionEnd)
    never_connected = _logger({"counters": [
        {"stat": _stat(TCP_OPENED, direction, True), "value_fixed": 1}]})
    both = never_connected.filter.and_filter.filters
    both.add().log_type_filter.types.append(_T.TcpConnectionEnd)
    both.add().response_flag_filter.flags.extend(_NOT_CONNECTED_FLAGS)
    return opened, closed, never_connected
