"""Every gateway TLS mode from the seed (MUTUAL, PASSTHROUGH) and Istio's `tls` settings,
end to end with real clients: curl, openssl s_client, Python ssl, sslyze."""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from cryptography import x509

from tests.e2e.certs import make_ca, make_leaf
from tests.e2e.mesh import EXAMPLES, Mesh, peer_certificate

pytestmark = pytest.mark.e2e
CA = "example_certs1/example.com.crt"


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("e2")
    try:
        m.seed_certificates()
        m.sailctl("create", "namespace", "test")
        m.sailctl("-n", "test", "apply", "-f", str(EXAMPLES / "sni-gateway" / "httpbin.yaml"))
        m.wait_pods_ready("test", 1)
        yield m
    finally:
        m.stop()


def _https(mesh: Mesh, host: str, path: str = "/status/418", *extra: str) -> subprocess.CompletedProcess[str]:
    return mesh.curl("-o", "/dev/null", "-w", "%{http_code}", "--resolve", f"{host}:8443:127.0.0.1",
                     "--cacert", CA, *extra, f"https://{host}:8443{path}")


def _gateway(name: str, host: str, tls: str, port_name: str = "https") -> str:
    return f"""
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata: {{name: {name}}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 443, name: {port_name}, protocol: HTTPS}}
    tls: {tls}
    hosts: ["{host}"]
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {{name: {name}}}
spec:
  hosts: ["{host}"]
  gateways: [{name}]
  http:
  - route:
    - destination: {{host: httpbin, port: {{number: 80}}}}
"""


class TestMutual:
    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def setup(cls, mesh: Mesh) -> Iterator[None]:
        # The seed's commands (双向网关), unchanged.
        mesh.sh("sailctl create -n istio-system secret generic httpbin-mutual-secret "
                "--from-file=tls.key=example_certs1/httpbin.example.com.key "
                "--from-file=tls.crt=example_certs1/httpbin.example.com.crt "
                "--from-file=ca.crt=example_certs1/example.com.crt")
        mesh.sailctl("-n", "test", "apply", "-f", str(EXAMPLES / "mutual-gateway" / "gateway.yaml"))
        mesh.sailctl("-n", "test", "apply", "-f", str(EXAMPLES / "mutual-gateway" / "virtualservice.yaml"))
        work = mesh.work / "example_certs1"
        make_leaf(work / "expired-client", "expired.example.com", work / "example.com.crt",
                  work / "example.com.key", expired=True)
        other_crt, other_key = make_ca(work / "other-ca", "other CA")
        make_leaf(work / "other-client", "client.example.com", other_crt, other_key)
        yield
        mesh.sailctl("-n", "test", "delete", "-f", str(EXAMPLES / "mutual-gateway" / "gateway.yaml"))
        mesh.sailctl("-n", "test", "delete", "-f", str(EXAMPLES / "mutual-gateway" / "virtualservice.yaml"))

    def test_seed_curl_with_client_certificate(self, mesh: Mesh) -> None:
        out = mesh.sh('eval "$(sailctl env)" && curl -s -o /dev/null -w "%{http_code}" '
                      '--resolve "httpbin.example.com:$SECURE_INGRESS_PORT:$INGRESS_HOST" '
                      "--cacert example_certs1/example.com.crt --cert example_certs1/client.example.com.crt "
                      "--key example_certs1/client.example.com.key "
                      '"https://httpbin.example.com:$SECURE_INGRESS_PORT/status/418"')
        assert out.stdout == "418"

    @pytest.mark.parametrize("client", [None, "other-client", "expired-client"])
    def test_refused(self, mesh: Mesh, client: str | None) -> None:
        extra = [] if client is None else ["--cert", f"example_certs1/{client}.crt",
                                            "--key", f"example_certs1/{client}.key"]
        proc = _https(mesh, "httpbin.example.com", "/status/418", *extra)
        assert proc.stdout in ("000", ""), f"{client} was accepted: {proc.stdout}"
        assert proc.returncode != 0

    def test_python_ssl_client_cert(self, mesh: Mesh) -> None:
        ctx = ssl.create_default_context(cafile=str(mesh.work / CA))
        ctx.load_cert_chain(mesh.work / "example_certs1/client.example.com.crt",
                            mesh.work / "example_certs1/client.example.com.key")
        import http.client

        conn = http.client.HTTPSConnection("127.0.0.1", 8443, context=ctx)
        conn.sock = ctx.wrap_socket(__import__("socket").create_connection(("127.0.0.1", 8443)),
                                    server_hostname="httpbin.example.com")
        conn.request("GET", "/headers", headers={"Host": "httpbin.example.com"})
        resp = conn.getresponse()
        body = resp.read().decode()
        assert resp.status == 200
        # Istio's gateway forwards the client certificate's details (SANITIZE_SET).
        assert "X-Forwarded-Client-Cert" in body and "client.example.com" in body

    def test_replacing_the_ca(self, mesh: Mesh) -> None:
        work = mesh.work / "example_certs1"
        new_ca, new_key = make_ca(work / "new-ca", "new CA")
        make_leaf(work / "new-client", "client.example.com", new_ca, new_key)
        mesh.sh("sailctl create -n istio-system secret generic httpbin-mutual-secret "
                "--from-file=tls.key=example_certs1/httpbin.example.com.key "
                "--from-file=tls.crt=example_certs1/httpbin.example.com.crt "
                "--from-file=ca.crt=example_certs1/new-ca.crt --dry-run=client -o yaml | sailctl apply -f -")
        time.sleep(0.3)
        old = _https(mesh, "httpbin.example.com", "/status/418", "--cert", "example_certs1/client.example.com.crt",
                     "--key", "example_certs1/client.example.com.key")
        new = _https(mesh, "httpbin.example.com", "/status/418", "--cert", "example_certs1/new-client.crt",
                     "--key", "example_certs1/new-client.key")
        assert old.stdout in ("000", "") and new.stdout == "418"


def test_optional_mutual(mesh: Mesh) -> None:
    mesh.sh("sailctl create -n istio-system secret generic optional-cred "
            "--from-file=cert=example_certs1/httpbin.example.com.crt "
            "--from-file=key=example_certs1/httpbin.example.com.key "
            "--from-file=cacert=example_certs1/example.com.crt")
    mesh.sailctl("-n", "test", "apply", "-f", "-", input=_gateway(
        "optional", "optional.example.com", "{mode: OPTIONAL_MUTUAL, credentialName: optional-cred}"))
    with_cert = ["--cert", "example_certs1/client.example.com.crt", "--key", "example_certs1/client.example.com.key"]
    # A certificate is verified when presented, and not required.
    assert _https(mesh, "optional.example.com", "/status/418", "-k").stdout == "418"
    assert _https(mesh, "optional.example.com", "/status/418", "-k", *with_cert).stdout == "418"
    make_ca(mesh.work / "example_certs1" / "opt-other-ca", "x")
    make_leaf(mesh.work / "example_certs1" / "opt-other", "c", mesh.work / "example_certs1/opt-other-ca.crt",
              mesh.work / "example_certs1/opt-other-ca.key")
    bad = _https(mesh, "optional.example.com", "/status/418", "-k", "--cert", "example_certs1/opt-other.crt",
                 "--key", "example_certs1/opt-other.key")
    assert bad.stdout in ("000", "")


def test_tls_versions_and_ciphers(mesh: Mesh) -> None:
    mesh.sh("sailctl create -n istio-system secret tls v-cred --key=example_certs1/httpbin.example.com.key "
            "--cert=example_certs1/httpbin.example.com.crt")
    mesh.sailctl("-n", "test", "apply", "-f", "-", input=_gateway(
        "v13", "v13.example.com", "{mode: SIMPLE, credentialName: v-cred, minProtocolVersion: TLSV1_3}"))
    mesh.sailctl("-n", "test", "apply", "-f", "-", input=_gateway(
        "cipher", "cipher.example.com",
        "{mode: SIMPLE, credentialName: v-cred, maxProtocolVersion: TLSV1_2, cipherSuites: [ECDHE-RSA-AES256-GCM-SHA384]}"))

    def handshake(host: str, *flags: str) -> str:
        return mesh.sh(f"openssl s_client -connect 127.0.0.1:8443 -servername {host} {' '.join(flags)} "
                       "</dev/null 2>&1", check=False).stdout

    assert "Protocol  : TLSv1.3" in handshake("v13.example.com", "-tls1_3") or \
        "TLSv1.3" in handshake("v13.example.com", "-tls1_3")
    assert re.search(r"alert|handshake failure|no protocols available|Cipher is \(NONE\)",
                     handshake("v13.example.com", "-tls1_2"))
    ok = handshake("cipher.example.com", "-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384")
    assert "ECDHE-RSA-AES256-GCM-SHA384" in ok
    refused = handshake("cipher.example.com", "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    assert re.search(r"alert|handshake failure|Cipher is \(NONE\)", refused)
    assert "TLSv1.3" not in handshake("cipher.example.com")


def test_https_redirect(mesh: Mesh) -> None:
    gw = """
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata: {name: redirect}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    tls: {httpsRedirect: true}
    hosts: ["redirect.example.com"]
"""
    mesh.sailctl("-n", "test", "apply", "-f", "-", input=gw)
    out = mesh.curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "--resolve",
                    "redirect.example.com:8080:127.0.0.1", "http://redirect.example.com:8080/x").stdout
    assert out.startswith("301 https://redirect.example.com")


def test_validation_errors_and_warnings(mesh: Mesh) -> None:
    bad = _gateway("nocred", "nocred.example.com", "{mode: SIMPLE}")
    proc = mesh.sailctl("-n", "test", "apply", "-f", "-", input=bad, check=False)
    assert proc.returncode == 1 and "credentialName" in proc.stderr
    warn = _gateway("oldtls", "oldtls.example.com", "{mode: SIMPLE, credentialName: v-cred, minProtocolVersion: TLSV1_0}")
    proc = mesh.sailctl("-n", "test", "apply", "-f", "-", input=warn)
    assert "warning" in proc.stderr and "cipherSuites" in proc.stderr


def test_overlapping_hosts_first_gateway_wins(mesh: Mesh) -> None:
    mesh.sailctl("-n", "test", "apply", "-f", "-", input=_gateway(
        "first", "overlap.example.com", "{mode: SIMPLE, credentialName: v-cred}"))
    time.sleep(0.05)  # creation order is what decides
    proc = mesh.sailctl("-n", "test", "apply", "-f", "-", input=_gateway(
        "second", "overlap.example.com", "{mode: SIMPLE, credentialName: missing-cred}", port_name="https-2"))
    assert "Gateway test/first" in proc.stderr and "Gateway test/second" in proc.stderr
    # The older Gateway's server still serves the host.
    assert _https(mesh, "overlap.example.com", "/status/418", "-k").stdout == "418"
    for name in ("first", "second"):
        mesh.sailctl("-n", "test", "delete", "gateway", name)
        mesh.sailctl("-n", "test", "delete", "virtualservice", name)


def test_proxy_config_tables(mesh: Mesh) -> None:
    pc = ["proxy-config", "-n", "istio-system"]
    routes = mesh.sailctl(*pc, "route", "deploy/istio-ingressgateway", "--name",
                          "https.443.https.v13.test").stdout.splitlines()
    assert routes[0].split() == ["NAME", "VHOST", "NAME", "DOMAINS", "MATCH", "VIRTUAL", "SERVICE"]
    assert re.search(r"https.443.https.v13.test\s+v13.example.com:443\s+v13.example.com \+ 1 more...\s+/\*\s+v13.test",
                     "\n".join(routes)), routes
    clusters = mesh.sailctl(*pc, "cluster", "deploy/istio-ingressgateway", "--fqdn",
                            "httpbin.test.svc.cluster.local").stdout
    assert re.search(r"httpbin.test.svc.cluster.local\s+80\s+-\s+outbound\s+EDS", clusters), clusters
    eps = mesh.sailctl(*pc, "endpoint", "deploy/istio-ingressgateway", "--cluster",
                       "outbound|80||httpbin.test.svc.cluster.local").stdout
    assert re.search(r"10\.244\.\d+\.\d+:8080\s+HEALTHY\s+OK\s+outbound\|80\|\|httpbin", eps), eps
    dumped = json.loads(mesh.sailctl(*pc, "listener", "deploy/istio-ingressgateway", "-o", "json").stdout)
    assert any(lst["name"] == "0.0.0.0_8443" for lst in dumped)


def test_install_istio_operator(mesh: Mesh) -> None:
    out = mesh.sailctl("install", "-f", str(EXAMPLES / "tls-version" / "istio-operator.yaml"))
    assert "sidecar" in out.stdout and "gateways" in out.stdout
    got = mesh.sailctl("get", "istiooperators", "-n", "istio-system", "-o", "yaml").stdout
    assert "TLSV1_3" in got
    # meshMTLS does not apply to gateways: TLS 1.2 still works at the gateway (Istio's rule).
    out = mesh.sh("openssl s_client -connect 127.0.0.1:8443 -servername cipher.example.com "
                  "-tls1_2 </dev/null 2>&1", check=False).stdout
    assert "Protocol  : TLSv1.2" in out or "New, TLSv1.2" in out, out


def test_proxy_config_secret_table(mesh: Mesh) -> None:
    out = mesh.sailctl("proxy-config", "secret", "deploy/istio-ingressgateway", "-n", "istio-system").stdout
    rows = out.splitlines()
    assert rows[0].split()[:3] == ["RESOURCE", "NAME", "TYPE"]
    assert any(r.startswith("kubernetes://v-cred") and "ACTIVE" in r and "true" in r for r in rows)


def test_rotation_under_load(mesh: Mesh) -> None:
    """5 rotations while clients keep making new HTTPS connections: 0 failures."""
    work = mesh.work / "example_certs1"
    failures: list[str] = []
    serials: set[int] = set()
    stop = threading.Event()
    ctx = ssl.create_default_context(cafile=str(mesh.work / CA))
    # The first certificate of v-cred names httpbin.example.com; the chain is still verified.
    ctx.check_hostname = False

    def client() -> None:
        import http.client
        import socket

        while not stop.is_set():
            try:
                raw = socket.create_connection(("127.0.0.1", 8443), timeout=5)
                tls = ctx.wrap_socket(raw, server_hostname="v13.example.com")
                serials.add(x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number)
                conn = http.client.HTTPSConnection("127.0.0.1", 8443, context=ctx)
                conn.sock = tls
                conn.request("GET", "/status/200", headers={"Host": "v13.example.com"})
                if conn.getresponse().status != 200:
                    failures.append("status")
                conn.close()
            except Exception as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(5):
            crt, key = make_leaf(work / f"rot-{i}", "v13.example.com", work / "example.com.crt",
                                 work / "example.com.key", serial=9000 + i)
            mesh.sh(f"sailctl create -n istio-system secret tls v-cred --key={key} --cert={crt} "
                    "--dry-run=client -o yaml | sailctl apply -f -")
            deadline = time.monotonic() + 1.0
            while 9000 + i not in serials and time.monotonic() < deadline:
                time.sleep(0.02)
            assert 9000 + i in serials, f"rotation {i} not served within 1 s"
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []


@pytest.mark.timeout(240)
def test_sslyze_scan(mesh: Mesh) -> None:
    from sslyze import ScanCommand, Scanner, ServerNetworkLocation, ServerScanRequest
    from sslyze.server_setting import ServerNetworkConfiguration

    loc = ServerNetworkLocation("v13.example.com", 8443, ip_address="127.0.0.1")
    req = ServerScanRequest(server_location=loc,
                            network_configuration=ServerNetworkConfiguration("v13.example.com"),
                            scan_commands={ScanCommand.SSL_2_0_CIPHER_SUITES, ScanCommand.SSL_3_0_CIPHER_SUITES,
                                           ScanCommand.TLS_1_0_CIPHER_SUITES, ScanCommand.TLS_1_1_CIPHER_SUITES,
                                           ScanCommand.TLS_1_2_CIPHER_SUITES, ScanCommand.TLS_1_3_CIPHER_SUITES})
    scanner = Scanner()
    scanner.queue_scans([req])
    result = next(iter(scanner.get_results())).scan_result
    assert result is not None
    accepted = {
        name: [c.cipher_suite.name for c in getattr(result, name).result.accepted_cipher_suites]
        for name in ("ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites", "tls_1_0_cipher_suites",
                     "tls_1_1_cipher_suites", "tls_1_2_cipher_suites", "tls_1_3_cipher_suites")
    }
    # minProtocolVersion TLSV1_3 on this server: only TLS 1.3, only AEAD suites.
    assert {k for k, v in accepted.items() if v} == {"tls_1_3_cipher_suites"}
    weak = [c for c in accepted["tls_1_3_cipher_suites"] if re.search(r"NULL|RC4|DES|MD5|EXPORT|CBC", c)]
    assert weak == []


def test_passthrough(mesh: Mesh) -> None:
    """The seed's 透传网关: nginx terminates TLS; the gateway only routes by SNI."""
    for name in ("v13", "cipher", "optional"):
        mesh.sailctl("-n", "test", "delete", "gateway", name)
    pt = EXAMPLES / "passthrough-gateway"
    mesh.sh("sailctl -n test create configmap nginx-tls-config "
            "--from-file=tls.crt=example_certs1/httpbin.example.com.crt "
            "--from-file=tls.key=example_certs1/httpbin.example.com.key")
    for f in ("nginx-deployment.yaml", "nginx-config.yaml", "nginx-service.yaml", "gateway.yaml",
              "virtualservice.yaml"):
        mesh.sailctl("-n", "test", "apply", "-f", "-", input=(pt / f).read_text())
    mesh.wait_pods_ready("test", 2)
    http = mesh.sh('eval "$(sailctl env)" && curl -s --resolve "httpbin.example.com:$INGRESS_PORT:$INGRESS_HOST" '
                   '"http://httpbin.example.com:$INGRESS_PORT"').stdout
    assert "Welcome to nginx" in http
    https = mesh.sh('eval "$(sailctl env)" && curl -s --resolve "httpbin.example.com:$SECURE_INGRESS_PORT:$INGRESS_HOST" '
                    '--cacert example_certs1/example.com.crt "https://httpbin.example.com:$SECURE_INGRESS_PORT"').stdout
    assert "Welcome to nginx" in https
    # The certificate is nginx's (serial 0 from the seed), and the gateway holds no secret for it.
    der = peer_certificate("127.0.0.1", 8443, "httpbin.example.com", mesh.work / CA)
    assert x509.load_der_x509_certificate(der).serial_number == 0
    listeners = mesh.sailctl("pc", "listener", "deploy/istio-ingressgateway", "-n", "istio-system").stdout
    assert re.search(r"8443\s+SNI: httpbin.example.com\s+Cluster: outbound\|443\|\|nginx-service.test.svc.cluster.local",
                     listeners)

