"""Istio's standard series from what proxies count (pure; Envoy's Prometheus text as input)."""

from __future__ import annotations

from sailmesh.telemetry.directory import Directory, Peer, ServiceName
from sailmesh.telemetry.exposition import families, freeze
from sailmesh.telemetry.proxy_stats import ProxyStats
from sailmesh.telemetry.store import BUCKETS, MetricStore


def _peer(ns: str, workload: str, sa: str, proxy: bool = True) -> Peer:
    return Peer(workload=workload, namespace=ns, labels={"app": workload, "version": "v1"},
                service_account=sa, trust_domain="cluster.local", has_proxy=proxy)


SLEEP = _peer("mesh", "sleep", "sleep")
HTTPBIN = _peer("srv", "httpbin", "httpbin")
LEGACY = _peer("legacy", "curl", "default", proxy=False)
SERVER, CLIENT = "sidecar~httpbin-1.srv", "sidecar~sleep-1.mesh"
DIRECTORY = Directory(
    pods={"10.0.0.1": SLEEP, "10.0.0.2": HTTPBIN, "10.0.0.3": LEGACY},
    proxies={CLIENT: SLEEP, SERVER: HTTPBIN},
    services={"httpbin.srv.svc.cluster.local": ServiceName(
        "httpbin.srv.svc.cluster.local", "httpbin", "srv", {"app": "httpbin"}, {8000: 8080})})
SLEEP_ID = "spiffe://cluster.local/ns/mesh/sa/sleep"
HTTPBIN_ID = "spiffe://cluster.local/ns/srv/sa/httpbin"
INBOUND = {"peer_ip": "10.0.0.1", "peer_san": SLEEP_ID, "local_san": HTTPBIN_ID,
           "port": "8080", "authority": "httpbin.srv:8000", "code": "200", "flags": "-",
           "content_type": "", "grpc": ""}
OUTBOUND = {"peer_ip": "10.0.0.2", "cluster": "outbound|8000||httpbin.srv.svc.cluster.local",
            "peer_san": HTTPBIN_ID, "local_san": SLEEP_ID, "tls": "TLSv1.3",
            "authority": "httpbin.srv:8000", "code": "200", "flags": "-", "content_type": "",
            "grpc": ""}


def _labels(tags: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in tags.items())


def counter(name: str, tags: dict[str, str], value: float) -> str:
    """One counter as Envoy's /stats/prometheus renders it."""
    full = f"envoy_sailmesh_telemetry_{name}"
    return f"# TYPE {full} counter\n{full}{{{_labels(tags)}}} {value}\n"


def histogram(name: str, tags: dict[str, str], values: list[float]) -> str:
    full = f"envoy_sailmesh_telemetry_{name}"
    lines = [f"# TYPE {full} histogram"]
    for bound in (*BUCKETS, "+Inf"):
        n = sum(1 for v in values if bound == "+Inf" or v <= float(bound))
        lines.append(f'{full}_bucket{{{_labels(tags)},le="{bound}"}} {n}')
    lines.append(f"{full}_sum{{{_labels(tags)}}} {sum(values)}")
    lines.append(f"{full}_count{{{_labels(tags)}}} {len(values)}")
    return "\n".join(lines) + "\n"


def uptime(seconds: float) -> str:
    return f"# TYPE envoy_server_uptime gauge\nenvoy_server_uptime{{}} {seconds}\n"


def _only(store: MetricStore, metric: str) -> tuple[dict[str, str], float]:
    [(labels, value)] = list(store.series(metric))
    return dict(labels), value


def test_destination_report_of_an_mtls_request() -> None:
    store = MetricStore()
    ProxyStats().ingest(SERVER, counter("inbound_requests", INBOUND, 7), DIRECTORY, store, 100.0)
    labels, value = _only(store, "istio_requests_total")
    assert value == 7
    assert labels["reporter"] == "destination"
    assert (labels["source_workload"], labels["source_workload_namespace"]) == ("sleep", "mesh")
    assert labels["source_principal"] == SLEEP_ID
    assert labels["destination_principal"] == HTTPBIN_ID
    assert labels["destination_service"] == "httpbin.srv.svc.cluster.local"
    assert labels["connection_security_policy"] == "mutual_tls"
    assert (labels["response_code"], labels["response_flags"]) == ("200", "-")


def test_a_caller_without_proxy_is_unknown_and_none() -> None:
    store = MetricStore()
    tags = {**INBOUND, "peer_ip": "10.0.0.3", "peer_san": "", "local_san": ""}
    ProxyStats().ingest(SERVER, counter("inbound_requests", tags, 3), DIRECTORY, store, 100.0)
    labels, value = _only(store, "istio_requests_total")
    assert value == 3
    assert (labels["source_workload"], labels["source_principal"],
            labels["connection_security_policy"]) == ("unknown", "unknown", "none")


def test_source_report_names_the_service_from_the_cluster() -> None:
    store = MetricStore()
    tags = {**OUTBOUND, "peer_san": "", "code": "503", "flags": "UF"}
    ProxyStats().ingest(CLIENT, counter("outbound_requests", tags, 1), DIRECTORY, store, 100.0)
    labels, _ = _only(store, "istio_requests_total")
    assert labels["reporter"] == "source"
    assert labels["source_principal"] == SLEEP_ID
    assert labels["destination_workload"] == "httpbin"
    assert labels["destination_service_name"] == "httpbin"
    assert labels["destination_principal"] == "unknown"
    assert labels["connection_security_policy"] == "unknown"
    assert (labels["response_code"], labels["response_flags"]) == ("503", "UF")


def test_grpc_requests_carry_their_status() -> None:
    # Only a gRPC request (content type application/grpc…) has a grpc_response_status.
    store = MetricStore()
    text = (counter("inbound_requests", {**INBOUND, "content_type": "application/grpc",
                                         "grpc": "14"}, 1)
            + counter("inbound_requests", {**INBOUND, "grpc": "2"}, 1))
    ProxyStats().ingest(SERVER, text, DIRECTORY, store, 100.0)
    got = {(s["request_protocol"], s["grpc_response_status"])
           for s, _ in store.series("istio_requests_total")}
    assert got == {("grpc", "14"), ("http", "")}


def test_an_unknown_reporter_is_ignored() -> None:
    store = MetricStore()
    ProxyStats().ingest("sidecar~gone.x", counter("inbound_requests", INBOUND, 1), DIRECTORY,
                        store, 1.0)
    assert list(store.series("istio_requests_total")) == []


def test_increments_are_differences_and_survive_a_restart() -> None:
    """The control plane's counters only grow: a proxy's counter that goes back (a restart,
    or a series Envoy dropped) starts again from zero, as Prometheus treats a reset."""
    store, stats = MetricStore(), ProxyStats()
    for up, value in ((10, 4), (11, 9), (12, 9), (1, 2), (2, 5)):
        stats.ingest(SERVER, uptime(up) + counter("inbound_requests", INBOUND, value),
                     DIRECTORY, store, 100.0)
    assert _only(store, "istio_requests_total")[1] == 9 + 5
    # A series that disappears and comes back counts in full.
    stats.ingest(SERVER, uptime(3), DIRECTORY, store, 100.0)
    stats.ingest(SERVER, uptime(4) + counter("inbound_requests", INBOUND, 6), DIRECTORY, store,
                 100.0)
    assert _only(store, "istio_requests_total")[1] == 9 + 5 + 6


def test_tcp_counts_and_bytes() -> None:
    store, stats = MetricStore(), ProxyStats()
    tags = {k: OUTBOUND[k] for k in ("peer_ip", "cluster", "peer_san", "local_san", "tls")}
    tags.update(flags="-", sni="")
    stats.ingest(CLIENT, counter("outbound_tcp_connections_opened", tags, 2), DIRECTORY, store, 1)
    stats.ingest(CLIENT, counter("outbound_tcp_connections_opened", tags, 2)
                 + counter("outbound_tcp_connections_closed", tags, 2)
                 + counter("outbound_tcp_sent_bytes", tags, 90)
                 + counter("outbound_tcp_received_bytes", tags, 160), DIRECTORY, store, 2)
    values = {metric: sum(v for _, v in store.series(metric)) for metric in (
        "istio_tcp_connections_opened_total", "istio_tcp_connections_closed_total",
        "istio_tcp_received_bytes_total", "istio_tcp_sent_bytes_total")}
    assert values == {"istio_tcp_connections_opened_total": 2,
                      "istio_tcp_connections_closed_total": 2,
                      "istio_tcp_received_bytes_total": 160, "istio_tcp_sent_bytes_total": 90}
    labels, _ = _only(store, "istio_tcp_sent_bytes_total")
    assert (labels["request_protocol"], labels["destination_workload"]) == ("tcp", "httpbin")


def test_histograms_add_bucket_differences() -> None:
    store, stats = MetricStore(), ProxyStats()
    stats.ingest(SERVER, histogram("inbound_request_bytes", INBOUND, [300, 3000]), DIRECTORY,
                 store, 1)
    stats.ingest(SERVER, histogram("inbound_request_bytes", INBOUND, [300, 3000, 3000, 40000]),
                 DIRECTORY, store, 2)
    by_name = {f.name: f for f in families(freeze(store))}
    samples = [s for s in by_name["istio_request_bytes"].samples]
    buckets = {s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")}
    assert (buckets["250"], buckets["500"], buckets["2500"], buckets["5000"],
            buckets["30000"], buckets["60000"], buckets["+Inf"]) == (0, 1, 1, 3, 3, 4, 4)
    [count] = [s.value for s in samples if s.name.endswith("_count")]
    [total] = [s.value for s in samples if s.name.endswith("_sum")]
    assert (count, total) == (4, 46300)
    assert samples[0].labels["source_workload"] == "sleep"


def test_recent_samples_cover_only_the_window() -> None:
    store, stats = MetricStore(), ProxyStats()
    stats.ingest(SERVER, counter("inbound_requests", INBOUND, 1), DIRECTORY, store, 100.0)
    stats.ingest(SERVER, counter("inbound_requests", INBOUND, 2), DIRECTORY, store, 200.0)
    assert sum(s.value for s in store.recent(since=150.0)) == 1
    assert sum(s.value for s in store.recent(since=0.0)) == 2


def test_exposition_has_istio_names_and_cumulative_buckets() -> None:
    store = MetricStore()
    ProxyStats().ingest(SERVER, histogram("inbound_request_duration_milliseconds", INBOUND, [7]),
                        DIRECTORY, store, 100.0)
    by_name = {f.name: f for f in families(freeze(store))}
    assert {"istio_requests", "istio_request_duration_milliseconds", "istio_request_bytes",
            "istio_response_bytes", "istio_tcp_sent_bytes",
            "istio_tcp_connections_opened"} <= set(by_name)
    buckets = {s.labels["le"]: s.value for s in by_name["istio_request_duration_milliseconds"].samples
               if s.name.endswith("_bucket")}
    assert (buckets["5"], buckets["10"], buckets["+Inf"]) == (0, 1, 1)
