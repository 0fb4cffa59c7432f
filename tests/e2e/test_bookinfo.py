"""Istio's Bookinfo sample, from Istio's repository unchanged (tests/e2e/data/istio), on a
real local mesh: the pages and APIs the tutorials read, request routing by version and by
the signed-in user, and seed 04's ISTIO_MUTUAL DestinationRules over mTLS."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.mesh import Mesh

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).parent / "data" / "istio" / "samples"
BOOKINFO = SAMPLES / "bookinfo"
TITLE = "<title>Simple Bookstore App</title>"


# Istio's default stats matcher keeps neither listener nor cluster stats; the tests count
# TLS handshakes (listener.*.ssl.handshake) and EDS updates (cluster.outbound|*.update_attempt)
# in the pods' Envoys, so the mesh keeps those, as Istio's users do with proxyStatsMatcher.
STATS_MATCHER = """
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: stats, namespace: istio-system}
spec:
  meshConfig:
    defaultConfig:
      proxyStatsMatcher: {inclusionPrefixes: [listener, cluster.outbound]}
"""


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("bk")
    try:
        m.sailctl("label", "namespace", "default", "istio-injection=enabled", "--overwrite")
        m.sailctl("apply", "-f", "-", input=STATS_MATCHER)
        m.sailctl("apply", "-f", str(BOOKINFO / "platform" / "kube" / "bookinfo.yaml"))
        m.sailctl("apply", "-f", str(SAMPLES / "sleep" / "sleep.yaml"))
        m.wait_pods_ready("default", 7, timeout=120)
        m.sailctl("apply", "-f", str(BOOKINFO / "networking" / "bookinfo-gateway.yaml"))
        yield m
    finally:
        m.stop()


def _from_sleep(m: Mesh, *curl_args: str) -> str:
    return m.sailctl("exec", "deploy/sleep", "-c", "sleep", "--", "curl", "-sS", "-m", "10",
                     *curl_args, timeout=40).stdout


def _page(m: Mesh, *extra: str) -> str:
    proc = m.curl(*extra, "http://127.0.0.1:8080/productpage")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _stars(page: str) -> str:
    """What the reviews part shows: 'none', or the stars' colour."""
    colors = set(re.findall(r'<font color="(\w+)">', page))
    assert len(colors) <= 1, colors
    return colors.pop() if colors else "none"


def test_productpage_inside_the_mesh_as_the_getting_started_page_shows(mesh: Mesh) -> None:
    # istio.io getting-started: `… exec "$(kubectl get pod -l app=ratings …)" -c ratings --
    # curl -sS productpage:9080/productpage | grep -o "<title>.*</title>"`
    page = _from_sleep(mesh, "productpage:9080/productpage")
    assert re.findall(r"<title>.*</title>", page) == [TITLE]
    assert "The Comedy of Errors" in page
    assert "<dt>ISBN-10:</dt>1234567890" in page
    assert "An extremely entertaining play by Shakespeare" in page


def test_ingress_gateway_serves_productpage_and_the_api(mesh: Mesh) -> None:
    assert TITLE in _page(mesh)
    products = json.loads(mesh.curl("http://127.0.0.1:8080/api/v1/products").stdout)
    assert products[0]["title"] == "The Comedy of Errors"
    details = json.loads(mesh.curl("http://127.0.0.1:8080/api/v1/products/0").stdout)
    assert details["author"] == "William Shakespeare" and details["ISBN-13"] == "123-1234567890"
    reviews = json.loads(mesh.curl("http://127.0.0.1:8080/api/v1/products/0/reviews").stdout)
    assert [r["reviewer"] for r in reviews["reviews"]] == ["Reviewer1", "Reviewer2"]
    ratings = json.loads(mesh.curl("http://127.0.0.1:8080/api/v1/products/0/ratings").stdout)
    assert ratings["ratings"] == {"Reviewer1": 5, "Reviewer2": 4}
    # Not routed by bookinfo-gateway's VirtualService.
    assert mesh.status_code("http://127.0.0.1:8080/health") == "404"


def test_without_routes_reviews_round_robins_over_v1_v2_v3(mesh: Mesh) -> None:
    seen = {_stars(_page(mesh)) for _ in range(24)}
    assert seen == {"none", "black", "red"}


RATINGS_MTLS = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings-mtls, namespace: default}
spec:
  host: ratings
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
"""
CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"


def _eds_updates(m: Mesh, pod: dict[str, Any]) -> dict[str, int]:
    """Per EDS cluster of the pod's Envoy, how many endpoint updates it has received."""
    out = m.sh(f"curl -s --unix-socket {pod['admin']} 'http://admin/stats?filter=update_attempt$'")
    return {line.split(".update_attempt")[0].removeprefix("cluster."): int(line.rsplit(":", 1)[1])
            for line in out.stdout.splitlines() if line.startswith("cluster.outbound|")}


def test_a_rule_for_one_service_sends_only_its_clusters(mesh: Mesh) -> None:
    """Incremental xDS: a DestinationRule for ratings changes only ratings' clusters, and
    only they (with their endpoints, which a replaced cluster needs again) reach the
    productpage sidecar. A state-of-the-world push would resend every cluster and every
    cluster's endpoints."""
    status = _status(mesh)
    pod = next(p for p in status["pods"]
               if p["namespace"] == "default" and p["name"].startswith("productpage-"))
    node = next(n for n, p in status["proxies"].items() if p["pod"] == pod["name"])
    before = _eds_updates(mesh, pod)
    assert len([c for c in before if "ratings" not in c]) >= 4, before
    sent = status["proxies"][node]["status"]["types"][CDS]["sent_resources"]
    mesh.sailctl("apply", "-f", "-", input=RATINGS_MTLS)  # returns once every proxy ACKed
    after = _eds_updates(mesh, pod)
    moved = sorted(c for c in after if after[c] != before.get(c))
    assert moved == ["outbound|9080||ratings.default.svc.cluster.local"], (before, after)
    cds = _status(mesh)["proxies"][node]["status"]["types"][CDS]
    assert cds["sent_resources"] - sent == 1, cds
    mesh.sailctl("delete", "destinationrule", "ratings-mtls")


def test_request_routing_all_v1_then_jason_gets_v2(mesh: Mesh) -> None:
    net = BOOKINFO / "networking"
    mesh.sailctl("apply", "-f", str(net / "destination-rule-all.yaml"))
    mesh.sailctl("apply", "-f", str(net / "virtual-service-all-v1.yaml"))
    assert {_stars(_page(mesh)) for _ in range(10)} == {"none"}

    mesh.sailctl("apply", "-f", str(net / "virtual-service-reviews-test-v2.yaml"))
    # As Istio's doc tests sign in: POST /login, keep the cookie, send it back.
    login = mesh.curl("-c", "jar.txt", "-o", "/dev/null", "-w", "%{http_code}",
                      "--data", "username=jason&passwd=password", "http://127.0.0.1:8080/login")
    assert login.stdout == "302"
    for _ in range(6):
        page = _page(mesh, "-b", "jar.txt")
        assert "jason" in page and _stars(page) == "black"
        assert page.count("glyphicon glyphicon-star\"") == 9  # 5 + 4 full stars
    assert {_stars(_page(mesh)) for _ in range(6)} == {"none"}
    # Signing out drops the session.
    mesh.curl("-b", "jar.txt", "-c", "jar.txt", "http://127.0.0.1:8080/logout")
    assert _stars(_page(mesh, "-b", "jar.txt")) == "none"
    # reviews-test-v2 replaced all-v1's `reviews`: deleting all-v1 removes every route.
    mesh.sailctl("delete", "-f", str(net / "virtual-service-all-v1.yaml"))


def _status(m: Mesh) -> dict[str, Any]:
    return json.loads(m.sailctl("status", "-o", "json").stdout)


def _handshakes(m: Mesh, app: str) -> int:
    pod = next(p for p in _status(m)["pods"]
               if p["namespace"] == "default" and p["name"].startswith(f"{app}-"))
    out = m.sh(f"curl -s --unix-socket {pod['admin']} 'http://admin/stats?filter=ssl.handshake$'").stdout
    return sum(int(line.rsplit(":", 1)[1]) for line in out.splitlines()
               if line.startswith("listener.") and "ssl.handshake" in line)


def test_seed04_replace_with_istio_mutual_rules_keeps_every_hop_on_mtls(mesh: Mesh) -> None:
    net = BOOKINFO / "networking"
    mesh.sailctl("apply", "-f", str(net / "destination-rule-all.yaml"))
    mesh.sailctl("replace", "-f", str(net / "destination-rule-all-mtls.yaml"))
    rules = json.loads(mesh.sailctl("get", "destinationrule", "reviews", "-o", "json").stdout)
    assert rules["spec"]["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL"
    apps = ("productpage", "details", "ratings")
    before = {app: _handshakes(mesh, app) for app in apps}
    pages = [_page(mesh) for _ in range(12)]
    assert all(TITLE in p and "Book Details" in p and "Book Reviews" in p for p in pages)
    # Ratings are called by reviews v2/v3 only; 12 round-robin pages reach them.
    assert {_stars(p) for p in pages} >= {"black", "red"}
    after = {app: _handshakes(mesh, app) for app in apps}
    assert all(after[a] > before[a] for a in apps), (before, after)


SEED01_GATEWAY = Path(__file__).parents[1] / "unit" / "seed_manifests" / "01-gateway-bookinfo-gateway-https.yaml"
ALIASES = 'eval "$(sailctl env --aliases)"; '
ADD_HTTPS_GATEWAY = '[{"op": "add", "path": "/spec/gateways/-", "value": "bookinfo-gateway-https"}]'


def test_seed01_https_gateway_serves_the_product_page(mesh: Mesh) -> None:
    """Seed 01 with Istio's Bookinfo: the seed's Gateway `bookinfo-gateway-https` as
    published (SIMPLE, `credentialName: httpbin-credential`, hosts '*'), Istio's `bookinfo`
    VirtualService bound to it as well, and the product page over HTTPS at the address and
    port Istio's pages compute from the ingress gateway's Service."""
    certs = mesh.seed_certificates()
    mesh.sailctl("create", "-n", "istio-system", "secret", "tls", "httpbin-credential",
                 f"--key={certs}/httpbin.example.com.key", f"--cert={certs}/httpbin.example.com.crt")
    mesh.sailctl("apply", "-f", str(SEED01_GATEWAY))
    mesh.sailctl("patch", "virtualservice", "bookinfo", "--type", "json", "-p", ADD_HTTPS_GATEWAY)
    try:
        out = mesh.sh(
            ALIASES + "export INGRESS_HOST=$(kubectl -n istio-system get service "
            "istio-ingressgateway -o jsonpath='{.status.loadBalancer.ingress[0].ip}'); "
            "export SECURE_INGRESS_PORT=$(kubectl -n istio-system get service istio-ingressgateway"
            " -o jsonpath='{.spec.ports[?(@.name==\"https\")].port}'); "
            'curl -sS --resolve "httpbin.example.com:$SECURE_INGRESS_PORT:$INGRESS_HOST" '
            "--cacert example_certs1/example.com.crt "
            '"https://httpbin.example.com:$SECURE_INGRESS_PORT/productpage" '
            '| grep -o "<title>.*</title>"', timeout=60).stdout
        assert out == TITLE + "\n"
        # Any SNI (hosts '*'), as the seed's browser screenshots show.
        page = mesh.curl("-k", "--resolve", "bookinfo.local:8443:127.0.0.1",
                         "https://bookinfo.local:8443/productpage").stdout
        assert TITLE in page
    finally:
        mesh.sailctl("patch", "virtualservice", "bookinfo", "--type", "json", "-p",
                     '[{"op": "remove", "path": "/spec/gateways/1"}]')
        mesh.sailctl("delete", "-f", str(SEED01_GATEWAY))
