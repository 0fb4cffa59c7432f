"""The security graph end to end: real traffic through real Envoys, the dashboard in a real
headless Chromium, `sailctl x edges`, and a real Prometheus scraping the control plane and
answering Kiali's security query.

Traffic: the ingress gateway, a sidecar client (DestinationRule ISTIO_MUTUAL, as Istio's
destination-rule-all-mtls.yaml) and a TCP port are mutual TLS; a client in a namespace
without injection is plaintext and shows as `unknown`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e import browser
from tests.e2e.mesh import Mesh, deployment, port_in_use

pytestmark = pytest.mark.e2e

HTTPBIN = ["gunicorn", "-b", "0.0.0.0:8080", "httpbin:app", "-k", "gevent"]
HTTPBIN_ID = "spiffe://cluster.local/ns/shop/sa/httpbin"
SLEEP_ID = "spiffe://cluster.local/ns/shop/sa/sleep"
GATEWAY = "istio-system/istio-ingressgateway"
KIALI_SECURITY_QUERY = (
    'sum(rate(istio_requests_total{reporter="destination"}[1m])) by (source_workload_namespace,'
    " source_workload, destination_service_namespace, destination_service_name,"
    " destination_workload_namespace, destination_workload, connection_security_policy)")


def _manifests() -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "shop", "labels": {"istio-injection": "enabled"}}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "legacy"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sleep", "namespace": "shop"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "httpbin", "namespace": "shop"}},
        deployment("shop", "sleep", "sleep", ["/bin/sleep", "infinity"], "curlimages/curl"),
        deployment("legacy", "sleep", None, ["/bin/sleep", "infinity"], "curlimages/curl"),
        deployment("shop", "httpbin", "httpbin", HTTPBIN, "docker.io/kong/httpbin", 8080,
                   labels={"app": "httpbin", "version": "v1"}),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "httpbin", "namespace": "shop"},
         "spec": {"selector": {"app": "httpbin"},
                  "ports": [{"name": "http", "port": 8000, "targetPort": 8080}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "httpbin-tcp", "namespace": "shop"},
         "spec": {"selector": {"app": "httpbin"},
                  "ports": [{"name": "tcp", "port": 9000, "targetPort": 8080}]}},
        {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
         "metadata": {"name": "default", "namespace": "shop"},
         "spec": {"mtls": {"mode": "PERMISSIVE"}}},
        {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
         "metadata": {"name": "httpbin", "namespace": "shop"},
         "spec": {"host": "httpbin", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}},
        {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
         "metadata": {"name": "shop", "namespace": "shop"},
         "spec": {"selector": {"istio": "ingressgateway"},
                  "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"},
                               "hosts": ["shop.example.com"]}]}},
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
         "metadata": {"name": "shop", "namespace": "shop"},
         "spec": {"hosts": ["shop.example.com"], "gateways": ["shop"],
                  "http": [{"route": [{"destination": {"host": "httpbin", "port": {"number": 8000}}}]}]}},
    ]


def _traffic(m: Mesh) -> None:
    for _ in range(3):
        assert m.status_code("-H", "Host: shop.example.com", "http://127.0.0.1:8080/get") == "200"
    for ns in ("shop", "legacy"):
        proc = m.sailctl("-n", ns, "exec", "deploy/sleep", "--", "curl", "-sS", "-w", "%{http_code}\n",
                         *(["-o", "/dev/null", "http://httpbin.shop:8000/get"] * 3), timeout=60)
        assert proc.stdout.split() == ["200"] * 3, proc.stdout + proc.stderr
    m.sailctl("-n", "shop", "exec", "deploy/sleep", "--", "curl", "-sS", "-o", "/dev/null",
              "http://httpbin-tcp.shop:9000/get", timeout=60)


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("sg")
    try:
        m.sailctl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                         "items": _manifests()}))
        m.wait_pods_ready("shop", 2)
        m.wait_pods_ready("legacy", 1)
        _traffic(m)
        time.sleep(1.5)  # the proxies' access-log flush
        yield m
    finally:
        m.stop()


@pytest.fixture(scope="module")
def dashboard(mesh: Mesh) -> Iterator[str]:
    with mesh.dashboard() as url:
        yield url


def _wait_page(driver: Any, script: str, timeout: float = 20) -> None:
    try:
        WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script))
    except TimeoutException:
        raise AssertionError(
            f"page never satisfied {script!r}; status: "
            f"{driver.find_element(By.ID, 'status').text!r}; panel: "
            f"{driver.find_element(By.ID, 'panel').text!r}; console: {driver.get_log('browser')}"
        ) from None


def _type(driver: Any, element_id: str, text: str) -> None:
    """Replace an input's text as a user would (Selenium's clear() fires no input event)."""
    box = driver.find_element(By.ID, element_id)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACKSPACE)
    if text:
        box.send_keys(text)


def test_graph_security_display_in_a_real_browser(mesh: Mesh, dashboard: str) -> None:
    with browser.chromium() as driver:
        driver.get(dashboard + "?window=600")
        _wait_page(driver, "return window.sailmesh && window.sailmesh.state.generation > 0")
        rows = {(r["source"], r["service"], r["protocol"]): r for r in browser.edge_rows(driver)}
        http = "httpbin.shop.svc.cluster.local"
        assert rows[(GATEWAY, http, "http")]["security"] == "mtls"
        assert rows[("shop/sleep", http, "http")]["mtls"] == "100"
        assert rows[("unknown", http, "http")]["security"] == "plaintext"
        assert rows[("unknown", http, "http")]["mtls"] == "0"
        assert rows[("shop/sleep", "httpbin-tcp.shop.svc.cluster.local", "tcp")]["security"] == "mtls"
        # The graph the page drew: nodes by kind, and the edges with their badges.
        nodes = dict(driver.execute_script(
            "return window.sailmesh.cy.nodes().map(n => [n.id(), n.data('kind')])"))
        assert nodes["wl:istio-system/istio-ingressgateway"] == "gateway"
        assert nodes["svc:" + http] == "service"
        assert nodes["wl:shop/httpbin"] == "workload"
        assert nodes["unknown"] == "unknown"
        labels = driver.execute_script(
            "return window.sailmesh.cy.edges().map(e => [e.source().id(), e.target().id(), e.data('text')])")
        from_unknown = [t for s, _, t in labels if s == "unknown"]
        assert from_unknown and all(t.startswith("\u2718 plaintext") for t in from_unknown), labels
        locked = [t for s, _, t in labels if s == "wl:shop/sleep"]
        assert locked and all(t.startswith("\u2714 mTLS") for t in locked), labels
        assert "mTLS: " in driver.find_element(By.ID, "mtls-summary").text
        # Find and hide by mTLS, as in Kiali's find/hide box.
        _type(driver, "hide", "!mtls")
        hidden = {r["source"] for r in browser.edge_rows(driver) if r["hidden"]}
        assert hidden == {"unknown"}
        assert driver.execute_script(
            "return window.sailmesh.cy.getElementById('unknown').style('display')") == "none"
        _type(driver, "hide", "")
        assert not any(r["hidden"] for r in browser.edge_rows(driver))
        _type(driver, "find", "mtls")
        found = {r["source"] for r in browser.edge_rows(driver) if r["found"]}
        assert found == {GATEWAY, "shop/sleep"}
        _type(driver, "find", "")
        # The side panel: principals and the rule that decided, from x tls-check.
        driver.execute_script(
            "document.querySelector('#edges tbody tr[data-source=\"shop/sleep\"]"
            "[data-service=\"httpbin.shop.svc.cluster.local\"]').click()")
        _wait_page(driver, "return document.getElementById('panel').innerText.includes('DestinationRule shop/httpbin')")
        panel = driver.find_element(By.ID, "panel").text
        assert SLEEP_ID in panel and HTTPBIN_ID in panel
        assert "sailctl x tls-check" in panel
        browser.screenshot(driver, "dashboard-security-graph.png")
        # Namespaces page: Kiali's status (namespace PERMISSIVE + auto mTLS: enabled).
        driver.get(dashboard + "#namespaces")
        _wait_page(driver, "return document.querySelectorAll('#namespaces tbody tr').length > 0")
        status = dict(driver.execute_script(
            "return [...document.querySelectorAll('#namespaces tbody tr')].map(r => [r.dataset.namespace, r.dataset.status])"))
        assert status["shop"] == "MTLS_ENABLED"
        assert status["legacy"] == "MTLS_NOT_ENABLED"
        # Certificates page: every identity with its serial, expiry and renewal.
        driver.get(dashboard + "#certificates")
        _wait_page(driver, "return document.querySelectorAll('#identities tbody tr').length > 0")
        ids = driver.execute_script(
            "return [...document.querySelectorAll('#identities tbody tr')].map(r => r.dataset.identity)")
        assert HTTPBIN_ID in ids and SLEEP_ID in ids
        assert "self-signed" in driver.find_element(By.ID, "ca-root").text
        errors = browser.console_errors(driver)
        assert errors == [], errors


def test_x_edges_table(mesh: Mesh) -> None:
    out = mesh.sailctl("x", "edges", "-n", "shop").stdout
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["SRC", "DST", "SRC_NS", "DST_NS", "PROTOCOL", "SECURED"]
    sleep = next(line for line in lines if line.startswith("sleep ") and " http " in line)
    assert "yes (mTLS)" in sleep and SLEEP_ID in sleep and HTTPBIN_ID in sleep
    unknown = next(line for line in lines if line.startswith("unknown "))
    assert "no (plaintext)" in unknown and "the client has no sidecar" in unknown
    rows = json.loads(mesh.sailctl("x", "edges", "-n", "shop", "-o", "json").stdout)
    assert {(r["source"]["workload"], r["security"]) for r in rows if r["protocol"] == "http"} == {
        ("istio-ingressgateway", "mtls"), ("sleep", "mtls"), ("unknown", "plaintext")}


@pytest.fixture(scope="module")
def prometheus(mesh: Mesh) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing (scripts/install.sh installs Debian's package)")
    port = next(p for p in range(19090, 19190) if not port_in_use(p))
    work = Path(tempfile.mkdtemp(prefix="sm-prometheus-"))
    (work / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n- job_name: sailmesh\n  static_configs: [{targets: ['127.0.0.1:15014']}]\n")
    proc = subprocess.Popen([binary, f"--config.file={work / 'prometheus.yml'}",
                             f"--storage.tsdb.path={work / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=(work / "log").open("w"))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)


def _query(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def _wait(check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if value:
                return value
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.5)


def test_prometheus_scrapes_and_answers_kialis_security_query(mesh: Mesh, prometheus: str) -> None:
    up = _wait(lambda: [r for r in _query(prometheus, 'up{job="sailmesh"}') if r["value"][1] == "1"])
    assert up
    _wait(lambda: _query(prometheus, "istio_requests_total"))
    _traffic(mesh)  # increases after the first scrape, so rate() sees them
    time.sleep(3)

    def secured() -> dict[tuple[str, str], float]:
        return {(r["metric"]["source_workload"], r["metric"]["connection_security_policy"]):
                float(r["value"][1]) for r in _query(prometheus, KIALI_SECURITY_QUERY)
                if r["metric"].get("destination_workload") == "httpbin"}
    got = _wait(lambda: (lambda s: s if ("sleep", "mutual_tls") in s and ("unknown", "none") in s
                         and ("istio-ingressgateway", "mutual_tls") in s else None)(secured()))
    assert got[("sleep", "mutual_tls")] > 0 and got[("unknown", "none")] > 0
    assert ("sleep", "none") not in got and ("unknown", "mutual_tls") not in got
