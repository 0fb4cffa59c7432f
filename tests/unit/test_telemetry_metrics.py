"""Istio's standard labels and counts from access-log entries (pure; no Envoy)."""

from __future__ import annotations

from envoy.data.accesslog.v3 import accesslog_pb2 as data_pb2

from sailmesh.telemetry.directory import Directory, Peer, ServiceName
from sailmesh.telemetry.exposition import families, freeze
from sailmesh.telemetry.store import MetricStore

T = data_pb2.AccessLogType


def _peer(ns: str, workload: str, sa: str, proxy: bool = True) -> Peer:
    return Peer(workload=workload, namespace=ns, labels={"app": workload, "version": "v1"},
                service_account=sa, trust_domain="cluster.local", has_proxy=proxy)


SLEEP = _peer("mesh", "sleep", "sleep")
HTTPBIN = _peer("srv", "httpbin", "httpbin")
LEGACY = _peer("legacy", "curl", "default", proxy=False)
DIRECTORY = Directory(
    pods={"10.0.0.1": SLEEP, "10.0.0.2": HTTPBIN, "10.0.0.3": LEGACY},
    proxies={"sidecar~sleep-1.mesh": SLEEP, "sidecar~httpbin-1.srv": HTTPBIN},
    services={"httpbin.srv.svc.cluster.local": ServiceName(
        "httpbin.srv.svc.cluster.local", "httpbin", "srv", {"app": "httpbin"}, {8000: 8080})})


def _http(src_ip: str, *, peer_san: str = "", cluster: str = "", upstream: str = "",
          code: int = 200, tags: dict[str, str] | None = None) -> data_pb2.HTTPAccessLogEntry:
    e = data_pb2.HTTPAccessLogEntry()
    c = e.common_properties
    c.downstream_remote_address.socket_address.address = src_ip
    c.downstream_local_address.socket_address.port_value = 8080
    if peer_san:
        c.tls_properties.peer_certificate_properties.subject_alt_name.add().uri = peer_san
        c.tls_properties.local_certificate_properties.subject_alt_name.add().uri = (
            "spiffe://cluster.local/ns/srv/sa/httpbin")
    c.upstream_cluster = cluster
    if upstream:
        c.upstream_remote_address.socket_address.address = upstream
    c.custom_tags.update(tags or {"response_flags": "-"})
    c.duration.FromMilliseconds(7)
    e.request.authority = "httpbin.srv:8000"
    e.response.response_code.value = code
    return e


def _series(store: MetricStore, metric: str) -> list[dict[str, str]]:
    return [labels for labels, _ in store.series(metric)]


def test_destination_report_of_an_mtls_request() -> None:
    store = MetricStore()
    assert store.record_http(_http("10.0.0.1", peer_san="spiffe://cluster.local/ns/mesh/sa/sleep"),
                             "inbound", "sidecar~httpbin-1.srv", DIRECTORY, now=100.0)
    [labels] = _series(store, "istio_requests_total")
    assert labels["reporter"] == "destination"
    assert (labels["source_workload"], labels["source_workload_namespace"]) == ("sleep", "mesh")
    assert labels["source_principal"] == "spiffe://cluster.local/ns/mesh/sa/sleep"
    assert labels["destination_principal"] == "spiffe://cluster.local/ns/srv/sa/httpbin"
    assert labels["destination_service"] == "httpbin.srv.svc.cluster.local"
    assert labels["connection_security_policy"] == "mutual_tls"
    assert labels["response_flags"] == "-"


def test_a_caller_without_proxy_is_unknown_and_none() -> None:
    store = MetricStore()
    for _ in range(3):
        store.record_http(_http("10.0.0.3"), "inbound", "sidecar~httpbin-1.srv", DIRECTORY, 100.0)
    [(labels, value)] = list(store.series("istio_requests_total"))
    assert value == 3
    assert (labels["source_workload"], labels["source_principal"],
            labels["connection_security_policy"]) == ("unknown", "unknown", "none")


def test_source_report_names_the_service_from_the_cluster() -> None:
    store = MetricStore()
    entry = _http("127.0.0.1", cluster="outbound|8000||httpbin.srv.svc.cluster.local",
                  upstream="10.0.0.2", code=503,
                  tags={"response_flags": "UF", "upstream_peer_uri_san": "-"})
    store.record_http(entry, "outbound", "sidecar~sleep-1.mesh", DIRECTORY, 100.0)
    [labels] = _series(store, "istio_requests_total")
    assert labels["reporter"] == "source"
    assert labels["destination_workload"] == "httpbin"
    assert labels["destination_principal"] == "unknown"
    assert labels["connection_security_policy"] == "unknown"
    assert (labels["response_code"], labels["response_flags"]) == ("503", "UF")


def test_grpc_requests_carry_their_status() -> None:
    # The entry's logged headers: content-type names the protocol, the grpc-status trailer
    # (or the header of a trailers-only response) Istio's grpc_response_status.
    store = MetricStore()
    ok = _http("10.0.0.1", peer_san="spiffe://cluster.local/ns/mesh/sa/sleep")
    ok.request.request_headers["content-type"] = "application/grpc+proto"
    ok.response.response_trailers["grpc-status"] = "0"
    failed = _http("10.0.0.1", peer_san="spiffe://cluster.local/ns/mesh/sa/sleep")
    failed.request.request_headers["content-type"] = "application/grpc"
    failed.response.response_headers["grpc-status"] = "14"
    plain = _http("10.0.0.1", peer_san="spiffe://cluster.local/ns/mesh/sa/sleep")
    for entry in (ok, failed, plain):
        store.record_http(entry, "inbound", "sidecar~httpbin-1.srv", DIRECTORY, 100.0)
    got = {(s["request_protocol"], s["grpc_response_status"]) for s in _series(store, "istio_requests_total")}
    assert got == {("grpc", "0"), ("grpc", "14"), ("http", "")}


def test_an_unknown_reporter_is_ignored() -> None:
    store = MetricStore()
    assert not store.record_http(_http("10.0.0.1"), "inbound", "sidecar~gone.x", DIRECTORY, 1.0)
    assert _series(store, "istio_requests_total") == []


def _tcp(kind: int, received: int, sent: int) -> data_pb2.TCPAccessLogEntry:
    e = data_pb2.TCPAccessLogEntry()
    c = e.common_properties
    c.access_log_type = kind
    c.downstream_remote_address.socket_address.address = "127.0.0.1"
    c.downstream_remote_address.socket_address.port_value = 40000
    c.start_time.FromSeconds(50)
    c.upstream_cluster = "outbound|9000||httpbin.srv.svc.cluster.local"
    e.connection_properties.received_bytes = received
    e.connection_properties.sent_bytes = sent
    return e


def test_tcp_connection_events_count_once_and_bytes_as_deltas() -> None:
    store = MetricStore()
    for kind, rx, tx in ((T.TcpUpstreamConnected, 0, 0), (T.TcpPeriodic, 100, 40),
                         (T.TcpPeriodic, 150, 40), (T.TcpConnectionEnd, 160, 90)):
        store.record_tcp(_tcp(kind, rx, tx), "outbound", "sidecar~sleep-1.mesh", DIRECTORY, 10.0)
    values = {metric: sum(v for _, v in store.series(metric)) for metric in (
        "istio_tcp_connections_opened_total", "istio_tcp_connections_closed_total",
        "istio_tcp_received_bytes_total", "istio_tcp_sent_bytes_total")}
    assert values == {"istio_tcp_connections_opened_total": 1,
                      "istio_tcp_connections_closed_total": 1,
                      "istio_tcp_received_bytes_total": 160, "istio_tcp_sent_bytes_total": 90}


def test_recent_samples_cover_only_the_window() -> None:
    store = MetricStore()
    store.record_http(_http("10.0.0.3"), "inbound", "sidecar~httpbin-1.srv", DIRECTORY, 100.0)
    store.record_http(_http("10.0.0.3"), "inbound", "sidecar~httpbin-1.srv", DIRECTORY, 200.0)
    assert sum(s.value for s in store.recent(since=150.0)) == 1
    assert sum(s.value for s in store.recent(since=0.0)) == 2


def test_exposition_has_istio_names_and_cumulative_buckets() -> None:
    store = MetricStore()
    store.record_http(_http("10.0.0.3"), "inbound", "sidecar~httpbin-1.srv", DIRECTORY, 100.0)
    by_name = {f.name: f for f in families(freeze(store))}
    assert {"istio_requests", "istio_request_duration_milliseconds",
            "istio_tcp_sent_bytes", "istio_tcp_connections_opened"} <= set(by_name)
    buckets = {s.labels["le"]: s.value for s in by_name["istio_request_duration_milliseconds"].samples
               if s.name.endswith("_bucket")}
    assert (buckets["5"], buckets["10"], buckets["+Inf"]) == (0, 1, 1)
