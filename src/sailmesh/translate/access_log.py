"""Access logs: the user's (meshConfig.accessLogFile, as in Istio) and telemetry's.

Owns: Istio's default text format (the one `istioctl install --set
meshConfig.accessLogFile=/dev/stdout` gives), so that every request line carries the
response flags and `UPSTREAM_TRANSPORT_FAILURE_REASON` — the place where a refused
server certificate shows (`CERTIFICATE_VERIFY_FAILED`); whether the telemetry loggers of
`telemetry_stats` are on (Istio's default metrics provider). Must not know: listeners.
"""

from __future__ import annotations

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import substitution_format_string_pb2 as sfs
from envoy.data.accesslog.v3 import accesslog_pb2 as data_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.access_loggers.stream.v3 import stream_pb2

from sailmesh.resources.operator import MeshConfig
from sailmesh.translate.config_source import pack
from sailmesh.translate.telemetry_stats import Direction, stats_access_logs

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


# The user's file log keeps one line per connection even though telemetry asks tcp_proxy
# for an entry when the upstream connects.
_TCP_EVENTS_FOR_TELEMETRY = (data_pb2.AccessLogType.TcpUpstreamConnected,)


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
        logs += stats_access_logs(direction, tcp=tcp)
    return logs


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


__all__ = ["ISTIO_FORMAT", "access_logs", "metrics_enabled", "user_access_logs"]
