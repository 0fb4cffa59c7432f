"""OpenShift Routes on the real HAProxy router in front of Istio's Bookinfo sample, end to
end with curl: edge (with each insecure-traffic policy), passthrough and reencrypt to the
Istio ingress gateway (seed 04's "Enable SSL for traffic coming in to your cluster", its
commands as printed, ending on Bookinfo's product page), a wrong
destination CA, the gateway-hosts pitfall of reencrypt (no SNI), Route status, and
reloads under load without a failed request."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e import wire
from tests.e2e.certs import make_ca
from tests.e2e.mesh import Mesh, eventually

pytestmark = pytest.mark.e2e
DOMAIN = "apps.sailmesh.test"

# The seed's certificate commands (section "Create certs for Router to Ingress Gateway").
SEED_04_CERTS = [
    "openssl req -x509 -sha256 -nodes -days 365 -newkey rsa:2048 -subj '/O=example Inc./CN=istio-system.svc' -keyout example.com.key -out example.com.crt",
    'openssl req -out ingGW.csr -newkey rsa:2048 -nodes -keyout ingGW.key -subj "/CN=istio-ingressgateway.istio-system.svc"',
    "openssl x509 -req -days 365 -CA example.com.crt -CAkey example.com.key -set_serial 0 -in ingGW.csr -out ./ingGW.crt",
]

SAMPLES = Path(__file__).parent / "data" / "istio" / "samples"
BOOKINFO = SAMPLES / "bookinfo"
TITLE = "<title>Simple Bookstore App</title>"


def _file_gateway(hosts: str = '"*"') -> str:
    """Bookinfo's gateway (samples/bookinfo/networking/bookinfo-gateway.yaml) with the
    HTTPS server of that Istio era added: its certificate and key are files of the Secret
    istio-ingressgateway-certs mounted in the gateway pod. The sample's VirtualService
    `bookinfo` binds to this gateway, so /productpage is served on both ports."""
    return f"""
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata: {{name: bookinfo-gateway, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: ["*"]
  - port: {{number: 443, name: https, protocol: HTTPS}}
    tls:
      mode: SIMPLE
      serverCertificate: /etc/istio/ingressgateway-certs/tls.crt
      privateKey: /etc/istio/ingressgateway-certs/tls.key
    hosts: [{hosts}]
"""


def _route(name: str, namespace: str, service: str, tls: dict | None = None,
           port: str | int | None = None, host: str | None = None) -> str:
    spec: dict = {"to": {"kind": "Service", "name": service}}
    if port is not None:
        spec["port"] = {"targetPort": port}
    if tls:
        spec["tls"] = tls
    if host:
        spec["host"] = host
    return yaml.safe_dump({"apiVersion": "route.openshift.io/v1", "kind": "Route",
                           "metadata": {"name": name, "namespace": namespace}, "spec": spec})


OC = 'eval "$(sailctl env --aliases)"; '


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("or")
    try:
        for cmd in SEED_04_CERTS:
            m.sh(cmd)
        m.sh("sailctl router ca > router-ca.crt")
        # Bookinfo in the mesh, as the lab has it, with the sample's gateway and routes.
        m.sailctl("label", "namespace", "default", "istio-injection=enabled", "--overwrite")
        m.sailctl("apply", "-f", str(BOOKINFO / "platform" / "kube" / "bookinfo.yaml"))
        m.sailctl("apply", "-f", str(BOOKINFO / "networking" / "bookinfo-gateway.yaml"))
        m.sailctl("apply", "-f", str(SAMPLES / "httpbin" / "httpbin.yaml"))
        applied = m.sailctl("apply", "-f", "-", input=_file_gateway())
        # Before the Secret exists the gateway has no such file: the server is left out (the
        # rest of the listener stays), and both apply and analyze say why.
        assert "cannot read /etc/istio/ingressgateway-certs/tls.crt" in applied.stderr
        assert "server https is left out of its listener" in applied.stderr
        assert "[SM0146] (Gateway default/bookinfo-gateway)" in m.sailctl(
            "analyze", "-A", check=False).stdout
        # The seed's steps 3 and 4, as written.
        m.sh(OC + "oc create -n istio-system secret tls istio-ingressgateway-certs "
             "--key ingGW.key --cert ingGW.crt")
        m.sh(OC + "oc delete pod -l app=istio-ingressgateway -n istio-system")
        m.wait_pods_ready("default", 7, timeout=120)
        m.wait_pods_ready("istio-system", 3)
        m.wait_pods_ready("openshift-ingress", 1)
        yield m
    finally:
        m.stop()


def _code(mesh: Mesh, url: str, *extra: str) -> str:
    host = url.split("/")[2]
    port = "443" if url.startswith("https") else "80"
    return mesh.status_code("--resolve", f"{host}:{port}:127.0.0.1", "--cacert", "router-ca.crt",
                            *extra, url)


def test_env_prints_router_settings(mesh: Mesh) -> None:
    env = mesh.sailctl("env").stdout
    assert f"export APPS_DOMAIN={DOMAIN}" in env
    assert "export ROUTER_HTTPS_PORT=443" in env and "export ROUTER_HTTP_PORT=80" in env
    assert "BEGIN CERTIFICATE" in (mesh.work / "router-ca.crt").read_text()


def test_edge_insecure_policies(mesh: Mesh) -> None:
    docs = [_route(f"pp-{p.lower()}", "default", "productpage", port="http",
                   tls={"termination": "edge", "insecureEdgeTerminationPolicy": p})
            for p in ("None", "Allow", "Redirect")]
    mesh.sailctl("apply", "-f", "-", input="---\n".join(docs))

    def served() -> None:
        for policy in ("none", "allow", "redirect"):
            host = f"pp-{policy}-default.{DOMAIN}"
            assert _code(mesh, f"https://{host}/productpage") == "200", policy
        assert _code(mesh, f"http://pp-allow-default.{DOMAIN}/productpage") == "200"
        # None: plain HTTP is not routed — the router's default backend answers 503.
        assert _code(mesh, f"http://pp-none-default.{DOMAIN}/productpage") == "503"

    eventually(served)
    host = f"pp-redirect-default.{DOMAIN}"
    out = mesh.curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                    "--resolve", f"{host}:80:127.0.0.1", f"http://{host}/productpage").stdout
    assert out == f"302 https://{host}/productpage"
    # The default certificate is the router CA's wildcard for the apps domain; curl -L
    # follows the redirect to Bookinfo's page.
    page = mesh.curl("-L", "--resolve", f"{host}:80:127.0.0.1", "--resolve",
                     f"{host}:443:127.0.0.1", "--cacert", "router-ca.crt",
                     f"http://{host}/productpage").stdout
    _assert_product_page(page)


def _assert_product_page(page: str) -> None:
    """Bookinfo's product page, with the details and reviews it fetched in the mesh."""
    assert TITLE in page, page[:300]
    assert "The Comedy of Errors" in page
    assert "<dt>ISBN-10:</dt>1234567890" in page
    assert "An extremely entertaining play by Shakespeare" in page


SECURE_HOST = f"istio-ingressgateway-secure-istio-system.{DOMAIN}"


def test_seed_secure_route_reencrypts_to_the_gateway(mesh: Mesh) -> None:
    """The seed's secure Route (console steps as `oc create route reencrypt`): Service
    istio-ingressgateway, target port 443->8443, Re-encrypt, insecure traffic None,
    destination CA example.com.crt; then the browser's visit to /productpage."""
    mesh.sh(OC + "oc create route reencrypt istio-ingressgateway-secure -n istio-system "
            "--service=istio-ingressgateway --port=https --insecure-policy=None "
            "--dest-ca-cert=example.com.crt")
    url = f"https://{SECURE_HOST}/productpage"
    eventually(lambda: _assert_code(mesh, url, "200"))
    page = mesh.curl("--cacert", "router-ca.crt", "--resolve", f"{SECURE_HOST}:443:127.0.0.1",
                     url).stdout
    _assert_product_page(page)
    # Insecure traffic None: plain HTTP is not served.
    assert _code(mesh, f"http://{SECURE_HOST}/productpage") == "503"
    status = yaml.safe_load(mesh.sailctl("get", "route", "istio-ingressgateway-secure",
                                         "-n", "istio-system", "-o", "yaml").stdout)["status"]
    (ingress,) = status["ingress"]
    assert ingress["host"] == SECURE_HOST and ingress["conditions"][0]["status"] == "True"
    table = mesh.sh(OC + "oc get routes -n istio-system").stdout.splitlines()
    assert table[0].split() == ["NAME", "HOST/PORT", "PATH", "SERVICES", "PORT", "TERMINATION",
                                "WILDCARD"]
    assert table[1].split() == ["istio-ingressgateway-secure", SECURE_HOST,
                                "istio-ingressgateway", "https", "reencrypt/None", "None"]


def test_router_to_gateway_hop_on_the_wire(mesh: Mesh) -> None:
    """Captured in the gateway pod: the router's connection is TLS, its ClientHello has no
    server_name, the gateway answers; the certificate the gateway gives a ClientHello
    without SNI is ingGW.crt (what the router verified against example.com.crt)."""
    eventually(lambda: _assert_code(mesh, f"https://{SECURE_HOST}/productpage", "200"))
    pod = mesh.sailctl("get", "pods", "-n", "istio-system", "-l", "app=istio-ingressgateway",
                       "-o", "jsonpath={.items[0].metadata.name}").stdout.strip()
    sniffer = subprocess.Popen(
        ["ip", "netns", "exec", mesh.netns("istio-system", pod), sys.executable, "-c",
         wire.SNIFFER, "4", "8443"], env=mesh.env, cwd=mesh.work, stdout=subprocess.PIPE,
        text=True)
    try:
        assert sniffer.stdout is not None and sniffer.stdout.readline().strip() == "ready"
        assert _code(mesh, f"https://{SECURE_HOST}/productpage") == "200"
        captured, _ = sniffer.communicate(timeout=20)
    finally:
        sniffer.kill()
    segs = wire.segments(captured)
    hellos = [(s, h) for s in segs if s.dport == 8443 and (h := wire.client_hello(s.payload))]
    assert hellos, f"no ClientHello to :8443 in {len(segs)} segments"
    router_ip = hellos[0][0].src
    for _, hello in hellos:
        assert hello.server_name is None  # OpenShift's router sends no SNI
        assert hello.alpn == ("h2", "http/1.1")
    assert any(s.sport == 8443 and s.dst == router_ip and wire.is_server_hello(s.payload)
               for s in segs)
    # Nothing in clear text on that hop.
    assert not any(b"productpage" in s.payload or b"Bookstore" in s.payload for s in segs)
    router = mesh.sailctl("get", "pods", "-n", "openshift-ingress", "-o",
                          "jsonpath={.items[0].metadata.name}").stdout.strip()
    gw_ip = hellos[0][0].dst
    shown = mesh.sailctl("exec", "-n", "openshift-ingress", router, "--", "openssl", "s_client",
                         "-connect", f"{gw_ip}:8443", "-noservername", "-showcerts",
                         input="", timeout=20, check=False).stdout
    first = shown.split("-----BEGIN CERTIFICATE-----", 1)[1].split("-----END CERTIFICATE-----")[0]
    assert first.split() == (mesh.work / "ingGW.crt").read_text().split(
        "-----BEGIN CERTIFICATE-----", 1)[1].split("-----END CERTIFICATE-----")[0].split()


def test_gateway_with_specific_hosts_gets_no_match(mesh: Mesh) -> None:
    """The pitfall, exactly as on OpenShift: a Gateway server that lists its hosts matches
    by SNI, the router sends none, so no filter chain matches and the router answers 503.
    With hosts "*" the same Route works again."""
    url = f"https://{SECURE_HOST}/productpage"
    check = ("x", "tls-check", "route/istio-ingressgateway-secure", "-n", "istio-system")
    mesh.sailctl("apply", "-f", "-", input=_file_gateway('"bookinfo.example.com"'))
    try:
        eventually(lambda: _assert_code(mesh, url, "503"))
        explained = mesh.sailctl(*check).stdout
        assert "TLS without SNI (ALPN h2,http/1.1)" in explained
        assert "OpenShift's router sends no SNI" in explained and "Verdict: fails" in explained
        found = mesh.sailctl("analyze", "-A", check=False).stdout
        assert "[SM0145] (Route istio-system/istio-ingressgateway-secure)" in found
    finally:
        mesh.sailctl("apply", "-f", "-", input=_file_gateway())
    eventually(lambda: _assert_code(mesh, url, "200"))
    explained = mesh.sailctl(*check).stdout
    assert "Verdict: works" in explained and "signed by the destinationCACertificate" in explained
    assert "SM0145" not in mesh.sailctl("analyze", "-A", check=False).stdout


def test_route_headers_and_annotations(mesh: Mesh) -> None:
    """spec.httpHeaders and the router annotations a Route owner sets, on a real request:
    response headers set and deleted, HSTS, and an allowlist that refuses the client
    until its address is added."""
    route = yaml.safe_load(_route("pp-headers", "default", "productpage", port="http",
                                  tls={"termination": "edge"}))
    route["spec"]["httpHeaders"] = {"actions": {"response": [
        {"name": "X-Frame-Options", "action": {"type": "Set", "set": {"value": "DENY"}}},
        {"name": "Server", "action": {"type": "Delete"}}]}}
    route["metadata"]["annotations"] = {
        "haproxy.router.openshift.io/hsts_header": "max-age=31536000;includeSubDomains",
        "haproxy.router.openshift.io/ip_allowlist": "10.0.0.0/8"}
    bare = _route("pp-bare", "default", "productpage", port="http", tls={"termination": "edge"})
    mesh.sailctl("apply", "-f", "-", input=yaml.safe_dump(route) + "---\n" + bare)
    host = f"pp-headers-default.{DOMAIN}"
    url = f"https://{host}/productpage"
    # 127.0.0.1 is not in the allowlist: the router closes the connection unanswered.
    eventually(lambda: _assert_code(mesh, url, "000"))
    mesh.sh(OC + "oc annotate route pp-headers -n default --overwrite "
            "haproxy.router.openshift.io/ip_allowlist='10.0.0.0/8 127.0.0.1'")
    eventually(lambda: _assert_code(mesh, url, "200"))
    head = mesh.curl("-sS", "-D", "-", "-o", "/dev/null", "--resolve", f"{host}:443:127.0.0.1",
                     "--cacert", "router-ca.crt", url).stdout.lower()
    assert "x-frame-options: deny" in head
    assert "strict-transport-security: max-age=31536000;includesubdomains" in head
    assert "\nserver:" not in head
    # Without the Route's delete action the application's Server header comes through.
    plain = mesh.curl("-sS", "-D", "-", "-o", "/dev/null", "--resolve",
                      f"pp-bare-default.{DOMAIN}:443:127.0.0.1", "--cacert", "router-ca.crt",
                      f"https://pp-bare-default.{DOMAIN}/productpage").stdout.lower()
    assert "\nserver:" in plain and "x-frame-options" not in plain


def test_route_request_headers_reach_the_app(mesh: Mesh) -> None:
    """Request header actions, as Istio's httpbin sample sees them at /headers: a static
    value (with a quote), a value from HAProxy's %[req.hdr(host),lower], and a delete;
    then the rewrite-target annotation on a path Route of the same host."""
    route = yaml.safe_load(_route("hb", "default", "httpbin", port="http",
                                  tls={"termination": "edge"}))
    route["spec"]["httpHeaders"] = {"actions": {"request": [
        {"name": "X-Route", "action": {"type": "Set", "set": {"value": "it's the router"}}},
        {"name": "X-Route-Host",
         "action": {"type": "Set", "set": {"value": "%[req.hdr(host),lower]"}}},
        {"name": "X-Debug", "action": {"type": "Delete"}}]}}
    mesh.sailctl("apply", "-f", "-", input=yaml.safe_dump(route))
    host = f"hb-default.{DOMAIN}"
    url = f"https://{host}/headers"
    eventually(lambda: _assert_code(mesh, url, "200"))
    echoed = json.loads(mesh.curl("-H", "X-Debug: secret", "-H", "X-Route: from the client",
                                  "--resolve", f"{host}:443:127.0.0.1", "--cacert",
                                  "router-ca.crt", url).stdout)["headers"]
    seen = {k.lower(): v if isinstance(v, str) else ",".join(v) for k, v in echoed.items()}
    assert seen["x-route"] == "it's the router"
    assert seen["x-route-host"] == host
    assert "x-debug" not in seen
    # rewrite-target: /api/... on this host reaches httpbin as /...
    api = yaml.safe_load(_route("hb-api", "default", "httpbin", port="http", host=host,
                                tls={"termination": "edge"}))
    api["spec"]["path"] = "/api"
    api["metadata"]["annotations"] = {"haproxy.router.openshift.io/rewrite-target": "/"}
    mesh.sailctl("apply", "-f", "-", input=yaml.safe_dump(api))
    eventually(lambda: _assert_code(mesh, f"https://{host}/api/anything/x", "200"))
    got = json.loads(mesh.curl("--resolve", f"{host}:443:127.0.0.1", "--cacert",
                               "router-ca.crt", f"https://{host}/api/anything/x").stdout)
    assert got["url"].endswith("/anything/x") and "/api" not in got["url"]


def test_wrong_destination_ca_is_503(mesh: Mesh) -> None:
    other, _ = make_ca(mesh.work / "other-ca", "other CA")
    mesh.sailctl("apply", "-f", "-", input=_route(
        "wrong-ca", "istio-system", "istio-ingressgateway", port="https",
        tls={"termination": "reencrypt", "destinationCACertificate": other.read_text()}))
    eventually(lambda: _assert_code(mesh, f"https://wrong-ca-istio-system.{DOMAIN}/productpage",
                                     "503"))


def test_passthrough_keeps_the_backend_certificate(mesh: Mesh) -> None:
    host = f"pt.{DOMAIN}"
    mesh.sailctl("apply", "-f", "-", input=_route(
        "pt", "istio-system", "istio-ingressgateway", port=8443, host=host,
        tls={"termination": "passthrough"}))

    def through() -> None:
        # The gateway's own certificate (signed by example.com.crt) reaches the client.
        assert mesh.status_code("--resolve", f"{host}:443:127.0.0.1", "--cacert",
                                "example.com.crt", "-k", f"https://{host}/productpage") == "200"
        peer = _peer_subject(host)
        assert "istio-ingressgateway.istio-system.svc" in peer

    eventually(through)


def _peer_subject(server_name: str) -> str:
    ctx = ssl._create_unverified_context()
    with socket.create_connection(("127.0.0.1", 443), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=server_name) as tls:
        der = tls.getpeercert(binary_form=True)
    from cryptography import x509

    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


def _assert_code(mesh: Mesh, url: str, code: str) -> None:
    got = _code(mesh, url)
    assert got == code, f"{url}: {got}"


def test_route_changes_under_load_drop_nothing(mesh: Mesh) -> None:
    """Clients keep sending (new connections and keep-alive ones) while Routes are added
    and removed, each change reloading HAProxy: no request fails."""
    mesh.sailctl("apply", "-f", "-", input=_route("load", "default", "productpage", port="http"))
    host = f"load-default.{DOMAIN}"
    eventually(lambda: _assert_code(mesh, f"http://{host}/health", "200"))
    stop = threading.Event()
    results: list[str] = []

    def client(keep_alive: bool) -> None:
        conn = None
        while not stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", 80, timeout=10)
                conn.request("GET", "/health", headers={"Host": host})
                resp = conn.getresponse()
                resp.read()
                results.append(str(resp.status))
                if not keep_alive or resp.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                results.append(f"error: {exc!r}")
                conn = None

    threads = [threading.Thread(target=client, args=(k,)) for k in (True, False, False)]
    for t in threads:
        t.start()
    try:
        for i in range(6):
            mesh.sailctl("apply", "-f", "-", input=_route(f"churn-{i}", "default", "productpage"))
            time.sleep(0.5)
            if i % 2:
                mesh.sailctl("delete", "route", f"churn-{i - 1}")
            time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    reloads = _log(mesh).count("Reloading HAProxy")
    failures = [r for r in results if r != "200"]
    assert len(results) > 100 and reloads >= 6
    assert failures == [], failures[:5]


def _log(mesh: Mesh) -> str:
    logs = list(Path(mesh.home, "pods").glob("openshift-ingress_router-default-*/logs/router.log"))
    return "".join(p.read_text() for p in logs)
