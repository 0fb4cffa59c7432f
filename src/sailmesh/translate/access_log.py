"""Access logs: the user's (meshConfig.accessLogFile, as in Istio) and telemetry's.

Owns: Istio's default text format (the one `istioctl install --set
meshConfig.accessLogFile=/dev/stdout` gives), so that every request line carries the
response flags and `UPSTREAM_TRANSPORT_FAILURE_REASON` — the place where a refused
server certificate shows (`CERTIFICATE_VERIFY_FAILED`); and the gRPC access-log service
loggers that feed Istio's standard metrics (see `sailmesh.telemetry`). Must not know:
listeners, or what the control plane makes of the entries.

Why the access-log service: upstream Envoy has no Istio stats filter, and per-listener
stats carry no peer. An ALS entry is one request (HTTP) or one connection event (TCP) and
carries the downstream TLS facts (version, peer and local certificate SANs); custom tags
add what only a formatter knows (upstream certificate SANs, response flags). The control
plane knows every pod address, so it can name both ends.
"""

from __future__ import annotations

from typing import Literal

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import config_source_pb2, grpc_service_pb2
from envoy.config.core.v3 import substitution_format_string_pb2 as sfs
from envoy.data.accesslog.v3 import accesslog_pb2 as data_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.access_loggers.grpc.v3 import als_pb2
from envoy.extensions.access_loggers.stream.v3 import stream_pb2
from envoy.type.tracing.v3 import custom_tag_pb2
from google.protobuf import duration_pb2, wrappers_pb2

from sailmesh.resources.operator import MeshConfig
from sailmesh.translate.config_source import pack

# Istio's default access log format (EnvoyTextLogFormat).
ISTIO_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% "
    '%CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" '
    "%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "
    '"%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" '
    '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"
)


# The bootstrap's static cluster to the control plane's access-log service.
TELEMETRY_CLUSTER = "sailmesh-telemetry"
HTTP_GRPC = "envoy.access_loggers.http_grpc"
TCP_GRPC = "envoy.access_loggers.tcp_grpc"
# log_name of the ALS stream: which side of the proxy reported (Istio's `reporter`).
Direction = Literal["inbound", "outbound"]
# Facts only a formatter has, sent as custom tags of each entry (Envoy command operators);
# each side asks only for what its labels need (every tag is a formatter run per entry).
# At the destination the entry's own downstream TLS properties name both principals.
_RESPONSE_FLAGS = {"response_flags": "%RESPONSE_FLAGS%"}
_UPSTREAM_TLS = {
    "upstream_peer_uri_san": "%UPSTREAM_PEER_URI_SAN%",
    "upstream_local_uri_san": "%UPSTREAM_LOCAL_URI_SAN%",
    "upstream_tls_version": "%UPSTREAM_TLS_VERSION%",
}
TELEMETRY_TAGS: dict[tuple[str, bool], dict[str, str]] = {  # (direction, tcp)
    ("inbound", False): _RESPONSE_FLAGS,
    ("inbound", True): _RESPONSE_FLAGS,
    ("outbound", False): {**_UPSTREAM_TLS, **_RESPONSE_FLAGS},
    # The SNI of TLS the proxy passed through (no TLS of its own downstream).
    ("outbound", True): {**_UPSTREAM_TLS, **_RESPONSE_FLAGS,
                         "requested_server_name": "%REQUESTED_SERVER_NAME%"},
}
# Headers an HTTP entry carries besides Envoy's standard fields: `grpc` requests, and
# Istio's grpc_response_status (a trailer, or a header of a trailers-only response).
REQUEST_HEADERS = ("content-type",)
RESPONSE_HEADERS = ("grpc-status",)
# Entries are sent when the buffer fills or at this interval, whichever comes first (Envoy's
# defaults: 16 KiB, 1 s). A larger buffer means fewer, larger gRPC messages under load.
BUFFER_BYTES = 16 * 1024
FLUSH_INTERVAL = duration_pb2.Duration(seconds=1)
# Istio reports TCP byte counts while a connection lives, not only at its end.
TCP_FLUSH_INTERVAL = duration_pb2.Duration(seconds=5)
# The user's file log keeps one line per connection even though telemetry asks tcp_proxy
# for an entry when the upstream connects and periodically.
_TCP_EVENTS_FOR_TELEMETRY = (data_pb2.AccessLogType.TcpUpstreamConnected,
                             data_pb2.AccessLogType.TcpPeriodic)


def metrics_enabled(mesh: MeshConfig) -> bool:
    """Istio's standard metrics are on unless meshConfig.defaultProviders.metrics is set
    without `prometheus` (e.g. `[]`), as with Istio's Telemetry API defaults."""
    providers = (mesh.default_providers or {}).get("metrics")
    return providers is None or "prometheus" in providers


def access_logs(mesh: MeshConfig, direction: Direction = "outbound", *,
                tcp: bool = False) -> list[accesslog_pb2.AccessLog]:
    """Every access logger of an HTTP connection manager (or, `tcp`, of a tcp_proxy)."""
    logs = user_access_logs(mesh, tcp=tcp)
    if metrics_enabled(mesh):
        logs.append(telemetry_access_log(direction, tcp=tcp))
    return logs


def telemetry_access_log(direction: Direction, *, tcp: bool) -> accesslog_pb2.AccessLog:
    common = als_pb2.CommonGrpcAccessLogConfig(
        log_name=direction,
        transport_api_version=config_source_pb2.ApiVersion.V3,
        grpc_service=grpc_service_pb2.GrpcService(
            envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name=TELEMETRY_CLUSTER)),
        buffer_flush_interval=FLUSH_INTERVAL,
        buffer_size_bytes=wrappers_pb2.UInt32Value(value=BUFFER_BYTES),
        custom_tags=[custom_tag_pb2.CustomTag(tag=k, value=v)
                     for k, v in TELEMETRY_TAGS[(direction, tcp)].items()])
    if tcp:
        return accesslog_pb2.AccessLog(name=TCP_GRPC, typed_config=pack(
            als_pb2.TcpGrpcAccessLogConfig(common_config=common)))
    return accesslog_pb2.AccessLog(name=HTTP_GRPC, typed_config=pack(als_pb2.HttpGrpcAccessLogConfig(
        common_config=common, additional_request_headers_to_log=REQUEST_HEADERS,
        additional_response_headers_to_log=RESPONSE_HEADERS,
        additional_response_trailers_to_log=RESPONSE_HEADERS)))


def user_access_logs(mesh: MeshConfig, *, tcp: bool = False) -> list[accesslog_pb2.AccessLog]:
    """The access loggers of a listener filter; none unless accessLogFile is set.

    `/dev/stdout` and `/dev/stderr` use Envoy's stream loggers, which write to the
    process's own descriptors: a proxy running as uid 1337 may not be allowed to open the
    log file its stdout points to (Istio's containers have a writable /dev/stdout).
    """
    path = mesh.access_log_file
    if not path:
        return []
    log_format = _format(mesh)
    if path == "/dev/stdout":
        name, config = "envoy.access_loggers.stdout", stream_pb2.StdoutAccessLog(
            log_format=log_format)
    elif path == "/dev/stderr":
        name, config = "envoy.access_loggers.stderr", stream_pb2.StderrAccessLog(
            log_format=log_format)
    else:
        name, config = "envoy.access_loggers.file", file_pb2.FileAccessLog(
            path=path, log_format=log_format)
    log = accesslog_pb2.AccessLog(name=name, typed_config=pack(config))
    if tcp and metrics_enabled(mesh):
        log.filter.log_type_filter.types.extend(_TCP_EVENTS_FOR_TELEMETRY)
        log.filter.log_type_filter.exclude = True
    return [log]


def _format(mesh: MeshConfig) -> sfs.SubstitutionFormatString:
    if (mesh.access_log_encoding or "TEXT").upper() == "JSON":
        out = sfs.SubstitutionFormatString()
        out.json_format.update({
            "start_time": "%START_TIME%", "method": "%REQ(:METHOD)%",
            "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "response_code": "%RESPONSE_CODE%",
            "response_flags": "%RESPONSE_FLAGS%",
            "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
            "authority": "%REQ(:AUTHORITY)%", "upstream_host": "%UPSTREAM_HOST%",
            "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
            "requested_server_name": "%REQUESTED_SERVER_NAME%", "route_name": "%ROUTE_NAME%"})
        return out
    return sfs.SubstitutionFormatString(text_format_source={"inline_string": ISTIO_FORMAT})


__all__ = ["HTTP_GRPC", "ISTIO_FORMAT", "TCP_FLUSH_INTERVAL", "TCP_GRPC", "TELEMETRY_CLUSTER",
           "access_logs", "metrics_enabled", "telemetry_access_log", "user_access_logs"]
