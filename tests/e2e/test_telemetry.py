"""Istio's standard metrics end to end: real Envoys count them in their stats access loggers,
the control plane reads every proxy and serves Prometheus text at
http://127.0.0.1:15014/metrics.

Every case sends N requests (or connections) and asserts that exactly the series Istio
would report grew by exactly N: sidecar to sidecar over mTLS, an uninjected caller in
plaintext (`unknown` with `none`), the ingress gateway as a source, TCP, the request and
response size histograms, and counts that survive the proxy's restart.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
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


def _buckets(samples: list[tuple[str, dict[str, str], float]], name: str,
             match: dict[str, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for n, labels, v in samples:
        if n == f"{name}_bucket" and all(labels.get(k) == w for k, w in match.items()):
            out[labels["le"]] = out.get(labels["le"], 0) + v
    return out


def test_request_and_response_sizes(mesh: Mesh) -> None:
    """istio_request_bytes / istio_response_bytes: what crossed the destination proxy's
    downstream wire for each request (Istio: headers and body). A caller without a sidecar
    talks HTTP/1.1 straight to it, so curl's own counts are those bytes."""
    match = dict(reporter="destination", source_workload="unknown",
                 destination_workload="httpbin", response_code="200",
                 connection_security_policy="none")
    names = ("istio_request_bytes", "istio_response_bytes")
    before = {n: _buckets(scrape(), n, match) for n in names}
    counts = {n: total(scrape(), f"{n}_count", **match) for n in names}
    proc = mesh.sailctl("-n", "legacy", "exec", "deploy/sleep", "--", "sh", "-c",
                        "for i in 1 2 3; do curl -sS -o /dev/null -d @/etc/passwd -w "
                        "'%{http_code} %{size_request} %{size_header} %{size_download}\\n' "
                        "http://httpbin.srv:8000/anything?x=$i; done",
                        timeout=60)
    rows = [list(map(int, line.split())) for line in proc.stdout.split("\n") if line.strip()]
    assert [r[0] for r in rows] == [200, 200, 200], proc.stdout + proc.stderr
    # curl's size_request is the whole request it sent, headers and body.
    sizes = {"istio_request_bytes": [r[1] for r in rows],
             "istio_response_bytes": [r[2] + r[3] for r in rows]}
    for n in names:
        settle(lambda n=n: total(scrape(), f"{n}_count", **match), counts[n] + 3)
    samples = scrape()
    for n in names:
        assert total(samples, f"{n}_count", **match) - counts[n] == 3
        after = _buckets(samples, n, match)
        grown = {le: after[le] - before[n].get(le, 0) for le in after}
        want = {le: sum(1 for v in sizes[n] if le == "+Inf" or v < float(le)) for le in after}
        assert grown == want, (n, sizes[n], grown)


def _envoy_pid(m: Mesh, namespace: str) -> int:
    """The Envoy process of the namespace's one pod: the envoy in that pod's network namespace."""
    status = json.loads(m.sailctl("get", "pods", "-n", namespace, "-o", "json").stdout)
    [pod] = [p["metadata"]["name"] for p in status["items"]]
    netns = os.stat(Path("/run/netns") / m.netns(namespace, pod)).st_ino
    for proc in Path("/proc").iterdir():
        try:
            if (proc / "comm").read_text().strip() == "envoy" and (
                    os.stat(proc / "ns" / "net").st_ino == netns):
                return int(proc.name)
        except (OSError, ValueError):
            continue
    raise AssertionError(f"no envoy in {namespace}/{pod}")


def test_counts_survive_a_proxy_restart_and_a_config_change(mesh: Mesh) -> None:
    """A restarted Envoy starts its counters from zero, and a changed listener may drop its
    series; the control plane's series keep growing by exactly what was sent (it adds only
    increments), as a Prometheus counter must."""
    match = dict(reporter="destination", source_workload="sleep", destination_workload="httpbin",
                 response_code="200", connection_security_policy="mutual_tls")
    _curl(mesh, "mesh", 2, "http://httpbin.srv:8000/get")
    before = settle(lambda: total(scrape(), REQUESTS, **match), 2)
    old = _envoy_pid(mesh, "srv")
    os.kill(old, signal.SIGKILL)  # the mesh's own istio-proxy: the pod restarts it
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if _envoy_pid(mesh, "srv") != old:
                break
        except AssertionError:
            pass
        time.sleep(0.2)
    mesh.wait_pods_ready("srv", 1)
    assert total(scrape(), REQUESTS, **match) == before
    _grows_by(mesh, 3, lambda: _curl(mesh, "mesh", 3, "http://httpbin.srv:8000/get"), **match)
    # A config change that replaces the destination's inbound listener chains.
    strict = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
              "metadata": {"name": "default", "namespace": "srv"},
              "spec": {"mtls": {"mode": "STRICT"}}}
    mesh.sailctl("apply", "-f", "-", input=json.dumps(strict))
    try:
        time.sleep(1)
        _grows_by(mesh, 4, lambda: _curl(mesh, "mesh", 4, "http://httpbin.srv:8000/get"), **match)
    finally:
        mesh.sailctl("-n", "srv", "delete", "peerauthentication", "default")
