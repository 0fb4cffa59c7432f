"""Seed 04 end to end ("Launch Kiali, go to the Graph, select Display → Security, confirm
your traffic is secure"): Istio's Bookinfo sample unchanged, destination-rule-all-mtls.yaml,
traffic through the ingress gateway, and the dashboard in a real headless Chromium showing
every Bookinfo edge locked at 100% mTLS with the bookinfo-… principals; a plaintext caller
from a namespace without injection shows as an unlocked edge from `unknown`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e import browser
from tests.e2e.mesh import Mesh

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).parent / "data" / "istio" / "samples"
BOOKINFO = SAMPLES / "bookinfo"
PRINCIPAL = re.compile(r"spiffe://cluster\.local/ns/default/sa/bookinfo-(productpage|details|reviews|ratings)")
GATEWAY_ID = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("s4g")
    try:
        m.sailctl("label", "namespace", "default", "istio-injection=enabled", "--overwrite")
        m.sailctl("apply", "-f", str(BOOKINFO / "platform" / "kube" / "bookinfo.yaml"))
        m.sailctl("create", "namespace", "legacy")
        m.sailctl("apply", "-n", "legacy", "-f", str(SAMPLES / "sleep" / "sleep.yaml"))
        m.wait_pods_ready("default", 6, timeout=120)
        m.wait_pods_ready("legacy", 1)
        m.sailctl("apply", "-f", str(BOOKINFO / "networking" / "bookinfo-gateway.yaml"))
        m.sailctl("apply", "-f", str(BOOKINFO / "networking" / "destination-rule-all-mtls.yaml"))
        for _ in range(12):
            assert m.status_code("http://127.0.0.1:8080/productpage") == "200"
        for _ in range(3):
            m.sailctl("exec", "-n", "legacy", "deploy/sleep", "--", "curl", "-sS", "-o", "/dev/null",
                      "http://productpage.default:9080/productpage", timeout=40)
        yield m
    finally:
        m.stop()


def test_every_bookinfo_edge_is_locked_and_the_plaintext_caller_is_not(mesh: Mesh) -> None:
    with mesh.dashboard() as dashboard, browser.chromium() as driver:
        driver.get(dashboard + "?window=600")
        want = {("istio-system/istio-ingressgateway", "default/productpage-v1"),
                ("default/productpage-v1", "default/details-v1"),
                ("default/productpage-v1", "default/reviews-v1"),
                ("default/productpage-v1", "default/reviews-v2"),
                ("default/productpage-v1", "default/reviews-v3"),
                ("default/reviews-v2", "default/ratings-v1"),
                ("default/reviews-v3", "default/ratings-v1"),
                ("unknown", "default/productpage-v1")}
        try:
            WebDriverWait(driver, 30).until(
                lambda d: want <= {(r["source"], r["destination"]) for r in browser.edge_rows(d)})
        except TimeoutException:
            raise AssertionError(f"edges seen: {browser.edge_rows(driver)}") from None
        rows = {(r["source"], r["destination"]): r for r in browser.edge_rows(driver)}
        for (src, _dst), row in rows.items():
            if src == "unknown":
                assert (row["security"], row["mtls"]) == ("plaintext", "0"), row
                continue
            assert (row["security"], row["mtls"]) == ("mtls", "100"), row
            ids = set(re.findall(r"spiffe://\S+", row["principals"]))
            assert ids and all(PRINCIPAL.fullmatch(i) or i == GATEWAY_ID for i in ids), row
        assert GATEWAY_ID in rows[("istio-system/istio-ingressgateway", "default/productpage-v1")]["principals"]
        labels = driver.execute_script(
            "return window.sailmesh.cy.edges().map(e => [e.source().id(), e.data('text')])")
        assert all(t.startswith("\u2718 plaintext") for s, t in labels if s == "unknown"), labels
        # productpage's service → workload hop carries both callers: partly mTLS.
        shared = "svc:productpage.default.svc.cluster.local"
        assert all(t.startswith("\u25D0 partly mTLS") for s, t in labels if s == shared), labels
        assert all(t.startswith("\u2714 mTLS") for s, t in labels if s not in ("unknown", shared)), labels
        assert "mTLS: " in driver.find_element(By.ID, "mtls-summary").text
        browser.screenshot(driver, "seed04-bookinfo-security.png")
        assert browser.console_errors(driver) == []
