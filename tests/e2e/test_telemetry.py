"""Istio's standard metrics end to end: real Envoys stream access-log entries to the control
plane, which serves Prometheus text at http://127.0.0.1:15014/metrics.

Every case sends N requests (or connections) and asserts that exactly the series Istio
would report grew by exactly N: sidecar to sidecar over mTLS, an uninjected caller in
plaintext (`unknown` with `none`), the ingress gateway as a source, and TCP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.mesh import Mesh, deployment
from tests.e2e.telemetry_scrape import matching, scrape, settle, total

pytestmark = pytest.mark.e2e

HTTPBIN = ["gunicorn", "-b", "0.0.0.0:8080", "httpbin:app", "-k", "gevent"]
SLEEP_ID = "spiffe://cluster.local/ns/mesh/sa/sleep"
HTTPBIN_ID = "spiffe://cluster.local/ns/srv/sa/httpbin"
GATEWAY_ID = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
REQUESTS = "istio_requests_total"


def _manifests() -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "mesh", "labels": {"istio-injection": "enabled"}}},
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "srv", "labels": {"istio-injection": "enabled"}}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "legacy"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sleep", "namespace": "mesh"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "httpbin", "namespace": "srv"}},
        deployment("mesh", "sleep", "sleep", ["/bin/sleep", "infinity"], "curlimages/curl"),
        deployment("legacy", "sleep", None, ["/bin/sleep", "infinity"], "curlimages/curl"),
        deployment("srv", "httpbin", "httpbin", HTTPBIN, "docker.io/kong/httpbin", 8080,
                   labels={"app": "httpbin", "version": "v1"}),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "httpbin", "namespace": "srv"},
         "spec": {"selector": {"app": "httpbin"},
                  "ports": [{"name": "http", "port": 8000, "targetPort": 8080},
                            {"name": "tcp", "port": 9000, "targetPort": 8080}]}},
        {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
         "metadata": {"name": "httpbin", "namespace": "srv"},
         "spec": {"selector": {"istio": "ingressgateway"},
                  "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"},
                               "hosts": ["httpbin.example.com"]}]}},
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
         "metadata": {"name": "httpbin", "namespace": "srv"},
         "spec": {"hosts": ["httpbin.example.com"], "gateways": ["httpbin"],
                  "http": [{"route": [{"destination": {"host": "httpbin", "port": {"number": 8000}}}]}]}},
    ]


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("tm")
    try:
        m.sailctl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                         "items": _manifests()}))
        m.wait_pods_ready("srv", 1)
        m.wait_pods_ready("mesh", 1)
        m.wait_pods_ready("legacy", 1)
        yield m
    finally:
        m.stop()


def _curl(m: Mesh, ns: str, n: int, url: str) -> None:
    """n requests from the namespace's sleep pod, one curl process (keep-alive)."""
    proc = m.sailctl("-n", ns, "exec", "deploy/sleep", "--", "curl", "-sS", "-m", "8",
                     "-w", "%{http_code}\n", *(["-o", "/dev/null", url] * n), timeout=60)
    assert proc.stdout.split() == ["200"] * n, proc.stdout + proc.stderr


def _grows_by(m: Mesh, n: int, send: Any, name: str = REQUESTS, **match: str) -> None:
    before = total(scrape(), name, **match)
    send()
    after = settle(lambda: total(scrape(), name, **match), before + n)
    assert after - before == n, (
        f"{name}{match}: {before} → {after}, expected +{n}\n"
        + "\n".join(map(str, matching(scrape(), name, {"reporter": match.get("reporter", "")}))))


def test_sidecar_to_sidecar_over_mtls_counts_each_request_on_both_sides(mesh: Mesh) -> None:
    destination = dict(
        reporter="destination", source_workload="sleep", source_workload_namespace="mesh",
        source_principal=SLEEP_ID, source_app="sleep", destination_workload="httpbin",
        destination_workload_namespace="srv", destination_principal=HTTPBIN_ID,
        destination_app="httpbin", destination_version="v1",
        destination_service="httpbin.srv.svc.cluster.local", destination_service_name="httpbin",
        destination_service_namespace="srv", request_protocol="http", response_code="200",
        response_flags="-", connection_security_policy="mutual_tls")
    source = {**destination, "reporter": "source", "connection_security_policy": "unknown"}
    # One burst, both reporters: 7 requests each.
    before = (total(scrape(), REQUESTS, **destination), total(scrape(), REQUESTS, **source))
    _curl(mesh, "mesh", 7, "http://httpbin.srv:8000/get")
    after_dst = settle(lambda: total(scrape(), REQUESTS, **destination), before[0] + 7)
    after_src = settle(lambda: total(scrape(), REQUESTS, **source), before[1] + 7)
    assert (after_dst - before[0], after_src - before[1]) == (7, 7), matching(
        scrape(), REQUESTS, {"destination_workload": "httpbin"})
    # The duration histogram counts the same requests.
    count = total(scrape(), "istio_request_duration_milliseconds_count", **destination)
    assert count == after_dst


def test_caller_without_sidecar_is_unknown_and_plaintext(mesh: Mesh) -> None:
    _grows_by(mesh, 5, lambda: _curl(mesh, "legacy", 5, "http://httpbin.srv:8000/status/200"),
              reporter="destination", source_workload="unknown",
              source_workload_namespace="unknown", source_principal="unknown",
              destination_workload="httpbin", destination_principal="unknown",
              destination_service_name="httpbin", response_code="200",
              connection_security_policy="none")


def test_error_responses_carry_their_code(mesh: Mesh) -> None:
    proc = mesh.sailctl("-n", "mesh", "exec", "deploy/sleep", "--", "curl", "-s", "-w", "%{http_code}\n",
                        *(["-o", "/dev/null", "http://httpbin.srv:8000/status/503"] * 3),
                        check=False, timeout=60)
    assert proc.stdout.split() == ["503"] * 3, proc.stdout
    samples = scrape()
    got = settle(lambda: total(scrape(), REQUESTS, reporter="destination", response_code="503",
                               source_workload="sleep"), 3)
    assert got == 3, matching(samples, REQUESTS, {"response_code": "503"})


def test_ingress_gateway_reports_as_source(mesh: Mesh) -> None:
    def send() -> None:
        for _ in range(4):
            assert mesh.status_code("-H", "Host: httpbin.example.com",
                                    "http://127.0.0.1:8080/get") == "200"
    gateway = dict(source_workload="istio-ingressgateway",
                   source_workload_namespace="istio-system", destination_workload="httpbin",
                   destination_service="httpbin.srv.svc.cluster.local", response_code="200")
    before = (total(scrape(), REQUESTS, reporter="source", **gateway),
              total(scrape(), REQUESTS, reporter="destination", **gateway))
    send()
    src = settle(lambda: total(scrape(), REQUESTS, reporter="source", **gateway), before[0] + 4)
    dst = settle(lambda: total(scrape(), REQUESTS, reporter="destination",
                               source_principal=GATEWAY_ID,
                               connection_security_policy="mutual_tls", **gateway), 4)
    assert src - before[0] == 4
    assert dst == 4


def test_tcp_connections_and_bytes(mesh: Mesh) -> None:
    match = dict(reporter="source", source_workload="sleep", destination_workload="httpbin",
                 destination_service="httpbin.srv.svc.cluster.local",
                 destination_service_name="httpbin", request_protocol="tcp")
    before = {name: total(scrape(), name, **match) for name in (
        "istio_tcp_connections_opened_total", "istio_tcp_connections_closed_total",
        "istio_tcp_received_bytes_total", "istio_tcp_sent_bytes_total")}
    # Three connections through the TCP port; curl's request and the whole response are the
    # bytes the client sidecar proxies.
    proc = mesh.sailctl("-n", "mesh", "exec", "deploy/sleep", "--", "sh", "-c",
                        "for i in 1 2 3; do curl -sS -o /dev/null -w '%{http_code} %{size_request} "
                        "%{size_download} %{size_header}\\n' http://httpbin.srv:9000/bytes/1000; done",
                        timeout=60)
    rows = [list(map(int, line.split())) for line in proc.stdout.split("\n") if line.strip()]
    assert [r[0] for r in rows] == [200, 200, 200], proc.stdout + proc.stderr
    closed = settle(lambda: total(scrape(), "istio_tcp_connections_closed_total", **match),
                    before["istio_tcp_connections_closed_total"] + 3)
    samples = scrape()
    assert closed - before["istio_tcp_connections_closed_total"] == 3
    assert total(samples, "istio_tcp_connections_opened_total", **match) - before[
        "istio_tcp_connections_opened_total"] == 3
    assert total(samples, "istio_tcp_received_bytes_total", **match) - before[
        "istio_tcp_received_bytes_total"] == sum(r[1] for r in rows)
    assert total(samples, "istio_tcp_sent_bytes_total", **match) - before[
        "istio_tcp_sent_bytes_total"] == sum(r[2] + r[3] for r in rows)
    # The source proxy's own certificate and the server's: the TCP hop was mutual TLS.
    labels = matching(samples, "istio_tcp_connections_closed_total", match)
    assert {(x["source_principal"], x["destination_principal"]) for x in labels} == {
        (SLEEP_ID, HTTPBIN_ID)}
