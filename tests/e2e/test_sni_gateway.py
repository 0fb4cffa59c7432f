"""The seed's multi-host (SNI) gateway, end to end: `sailctl` + real Envoy + real clients.

Commands are the seed's, with `kubectl` replaced by `sailctl`; manifests are the seed's files
under examples/, unchanged.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator

import pytest
import yaml
from cryptography import x509

from tests.e2e.mesh import EXAMPLES, Mesh, peer_certificate

pytestmark = pytest.mark.e2e
SNI = EXAMPLES / "sni-gateway"


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("e1")
    try:
        m.seed_certificates()
        m.sailctl("create", "namespace", "test")
        m.sailctl("-n", "test", "apply", "-f", "-", input=(SNI / "httpbin.yaml").read_text())
        m.sailctl("-n", "test", "apply", "-f", "-", input=(SNI / "helloworld.yaml").read_text())
        m.sh("sailctl create -n istio-system secret tls httpbin-secret "
             "--key=example_certs1/httpbin.example.com.key --cert=example_certs1/httpbin.example.com.crt")
        m.sh("sailctl create -n istio-system secret tls helloworld-secret "
             "--key=example_certs1/helloworld.example.com.key --cert=example_certs1/helloworld.example.com.crt")
        m.sailctl("-n", "test", "apply", "-f", "-", input=(SNI / "gateway.yaml").read_text())
        m.sailctl("apply", "-n", "test", "-f", "-", input=(SNI / "virtualservices.yaml").read_text())
        m.wait_pods_ready("test", 2)
        yield m
    finally:
        m.stop()


def _cn(der: bytes) -> str:
    cert = x509.load_der_x509_certificate(der)
    return cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value


def test_seed_curl_http_httpbin(mesh: Mesh) -> None:
    # The seed's line, unchanged (its URL variables come from `sailctl env`).
    out = mesh.sh('eval "$(sailctl env)" && curl -s -o /dev/null -w "%{http_code}" --resolve '
                  '"httpbin.example.com:$INGRESS_PORT:$INGRESS_HOST" '
                  '"http://httpbin.example.com:$INGRESS_PORT/status/418"')
    assert out.stdout == "418"


def test_seed_curl_https_httpbin(mesh: Mesh) -> None:
    out = mesh.sh('eval "$(sailctl env)" && curl -s -w "\\n%{http_code}" --resolve '
                  '"httpbin.example.com:$SECURE_INGRESS_PORT:$INGRESS_HOST" --cacert '
                  'example_certs1/example.com.crt "https://httpbin.example.com:$SECURE_INGRESS_PORT/status/418"')
    body, code = out.stdout.rsplit("\n", 1)
    assert code == "418"
    assert "teapot" in body


def test_seed_curl_https_helloworld(mesh: Mesh) -> None:
    out = mesh.sh('eval "$(sailctl env)" && curl -s --resolve '
                  '"helloworld.example.com:$SECURE_INGRESS_PORT:$INGRESS_HOST" --cacert '
                  'example_certs1/example.com.crt  "https://helloworld.example.com:$SECURE_INGRESS_PORT/hello"')
    assert re.fullmatch(r"Hello version: v1, instance: helloworld-v1-[a-z0-9]+-[a-z0-9]{5}\n", out.stdout)


def test_unmatched_path_is_404(mesh: Mesh) -> None:
    code = mesh.status_code("--resolve", "helloworld.example.com:8443:127.0.0.1", "--cacert",
                            "example_certs1/example.com.crt", "https://helloworld.example.com:8443/other")
    assert code == "404"
    # helloworld.example.com is not on the HTTP server (hosts: httpbin.example.com only).
    code = mesh.status_code("--resolve", "helloworld.example.com:8080:127.0.0.1",
                            "http://helloworld.example.com:8080/hello")
    assert code == "404"


def test_each_host_presents_its_own_certificate(mesh: Mesh) -> None:
    ca = mesh.work / "example_certs1" / "example.com.crt"
    assert _cn(peer_certificate("127.0.0.1", 8443, "httpbin.example.com", ca)) == "httpbin.example.com"
    assert _cn(peer_certificate("127.0.0.1", 8443, "helloworld.example.com", ca)) == "helloworld.example.com"
    out = mesh.sh("openssl s_client -connect 127.0.0.1:8443 -servername helloworld.example.com "
                  "-CAfile example_certs1/example.com.crt </dev/null 2>&1")
    assert "subject=CN = helloworld.example.com" in out.stdout or \
        "subject=CN=helloworld.example.com" in out.stdout
    assert "Verify return code: 0 (ok)" in out.stdout


def test_unknown_sni_is_refused(mesh: Mesh) -> None:
    # No chain matches: the handshake fails instead of presenting some other host's certificate.
    with pytest.raises(OSError):
        peer_certificate("127.0.0.1", 8443, "other.example.com")


def test_proxy_config_listener_table(mesh: Mesh) -> None:
    pods = mesh.sailctl("-n", "istio-system", "get", "po", "-l", "istio=ingressgateway").stdout
    pod = pods.splitlines()[1].split()[0]
    by_pod = mesh.sailctl("proxy-config", "listener", "-n", "istio-system", pod).stdout
    by_deploy = mesh.sailctl("proxy-config", "listener", "deploy/istio-ingressgateway",
                             "-n", "istio-system").stdout
    assert by_pod == by_deploy
    rows = [re.split(r"\s{2,}", line.strip()) for line in by_pod.splitlines()]
    assert rows[0] == ["ADDRESSES", "PORT", "MATCH", "DESTINATION"]
    assert ["0.0.0.0", "8080", "ALL", "Route: http.8080"] in rows
    assert ["0.0.0.0", "8443", "SNI: httpbin.example.com",
            "Route: https.443.https-httpbin.sni-gateway.test"] in rows
    assert ["0.0.0.0", "8443", "SNI: helloworld.example.com",
            "Route: https.443.https-helloworld.sni-gateway.test"] in rows
    assert ["0.0.0.0", "15021", "ALL", "Inline Route: /healthz/ready*"] in rows
    assert ["0.0.0.0", "15090", "ALL", "Inline Route: /stats/prometheus*"] in rows


def test_get_commands(mesh: Mesh) -> None:
    gws = mesh.sailctl("get", "gateways", "-n", "test").stdout
    assert gws.split()[:3] == ["NAME", "AGE", "sni-gateway"]
    vss = mesh.sailctl("get", "virtualservices", "-A").stdout.splitlines()
    assert vss[0].split() == ["NAMESPACE", "NAME", "GATEWAYS", "HOSTS", "AGE"]
    assert any(line.split()[:2] == ["test", "helloworld"] for line in vss)
    doc = yaml.safe_load(mesh.sailctl("-n", "test", "get", "gateway", "sni-gateway", "-o", "yaml").stdout)
    assert doc["kind"] == "Gateway" and doc["spec"]["servers"][0]["tls"]["credentialName"] == "httpbin-secret"
    data = json.loads(mesh.sailctl("get", "vs", "-n", "test", "-o", "json").stdout)
    assert sorted(i["metadata"]["name"] for i in data["items"]) == ["helloworld", "httpbin"]
    assert mesh.sailctl("get", "pods", "-A").stdout.splitlines()[0].split() == [
        "NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    pods = mesh.sailctl("get", "pods", "-A", "-o", "wide").stdout.splitlines()
    assert pods[0].split()[:8] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert any(re.match(r"test\s+httpbin-\S+\s+1/1\s+Running\s+0\s+\S+\s+10\.244\.", p) for p in pods)


def test_pods_resolve_service_names_and_exec(mesh: Mesh) -> None:
    for name in ("httpbin", "httpbin.test", "httpbin.test.svc.cluster.local"):
        out = mesh.sailctl("exec", "deploy/helloworld-v1", "-n", "test", "--", "getent", "hosts", name).stdout
        assert out.startswith("10.96."), out
    # The app reaches another service by name through its ClusterIP.
    out = mesh.sailctl("exec", "-n", "test", "deploy/helloworld-v1", "--", "curl", "-s",
                       "http://httpbin.test/status/418", "-o", "/dev/null", "-w", "%{http_code}").stdout
    assert out == "418"


def test_logs(mesh: Mesh) -> None:
    mesh.curl("--resolve", "helloworld.example.com:8443:127.0.0.1", "-k", "https://helloworld.example.com:8443/hello")
    out = mesh.sailctl("logs", "deploy/httpbin", "-n", "test").stdout
    assert "Booting worker" in out or "Listening at" in out


def test_new_virtual_service_takes_effect_without_restart(mesh: Mesh) -> None:
    envoy_pid = _gateway_envoy_pid(mesh)
    vs = """
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: helloworld-headers
spec:
  hosts: ["helloworld.example.com"]
  gateways: ["sni-gateway"]
  http:
  - match:
    - uri: {exact: /headers}
    route:
    - destination: {host: httpbin.test.svc.cluster.local, port: {number: 80}}
"""
    t0 = time.monotonic()
    mesh.sailctl("-n", "test", "apply", "-f", "-", input=vs)
    code = mesh.status_code("--resolve", "helloworld.example.com:8443:127.0.0.1", "--cacert",
                            "example_certs1/example.com.crt", "https://helloworld.example.com:8443/headers")
    assert code == "200", f"new route not served {time.monotonic() - t0:.2f}s after apply"
    assert _gateway_envoy_pid(mesh) == envoy_pid
    mesh.sailctl("-n", "test", "delete", "vs", "helloworld-headers")
    code = mesh.status_code("--resolve", "helloworld.example.com:8443:127.0.0.1", "--cacert",
                            "example_certs1/example.com.crt", "https://helloworld.example.com:8443/headers")
    assert code == "404"


def test_secret_update_is_served_without_restart(mesh: Mesh) -> None:
    envoy_pid = _gateway_envoy_pid(mesh)
    mesh.sh("openssl x509 -req -sha256 -days 30 -CA example_certs1/example.com.crt -CAkey "
            "example_certs1/example.com.key -set_serial 4242 -in example_certs1/httpbin.example.com.csr "
            "-out example_certs1/httpbin-renewed.crt")
    mesh.sh("sailctl create -n istio-system secret tls httpbin-secret --key=example_certs1/httpbin.example.com.key "
            "--cert=example_certs1/httpbin-renewed.crt --dry-run=client -o yaml | sailctl apply -f -")
    deadline = time.monotonic() + 1.0
    serial = None
    while time.monotonic() < deadline:
        serial = x509.load_der_x509_certificate(
            peer_certificate("127.0.0.1", 8443, "httpbin.example.com")).serial_number
        if serial == 4242:
            break
        time.sleep(0.05)
    assert serial == 4242, "renewed certificate not served within 1 second"
    assert _gateway_envoy_pid(mesh) == envoy_pid
    # The other host was not disturbed.
    assert _cn(peer_certificate("127.0.0.1", 8443, "helloworld.example.com")) == "helloworld.example.com"


def test_missing_credential_does_not_break_other_hosts(mesh: Mesh) -> None:
    gw = """
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata:
  name: extra-gateway
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: 443, name: https-extra, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: no-such-secret}
    hosts: ["extra.example.com"]
"""
    out = mesh.sailctl("-n", "test", "apply", "-f", "-", input=gw)
    assert "no-such-secret" in out.stderr and "istio-system" in out.stderr
    status = mesh.sailctl("status").stdout
    assert "Secret istio-system/no-such-secret" in status
    assert mesh.status_code("--resolve", "httpbin.example.com:8443:127.0.0.1", "--cacert",
                            "example_certs1/example.com.crt", "https://httpbin.example.com:8443/status/418") == "418"
    mesh.sailctl("-n", "test", "delete", "gateway", "extra-gateway")


BAD_INPUTS = {
    "unknown field": ("apiVersion: networking.istio.io/v1beta1\nkind: Gateway\nmetadata: {name: bad}\n"
                      "spec:\n  selector: {istio: ingressgateway}\n  sever: []\n", "did you mean"),
    "enum typo": ("apiVersion: networking.istio.io/v1beta1\nkind: Gateway\nmetadata: {name: bad}\nspec:\n"
                  "  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 443, name: h, protocol: HTTPS}\n"
                  "    tls: {mode: SIMPEL, credentialName: x}\n    hosts: [a.example.com]\n", "SIMPLE"),
    "unknown kind": ("apiVersion: networking.istio.io/v1beta1\nkind: VirtualServce\nmetadata: {name: bad}\n",
                     "VirtualService"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_changes_nothing(mesh: Mesh, case: str) -> None:
    text, expected = BAD_INPUTS[case]
    good = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: innocent}\ndata: {a: b}\n---\n"
    before = mesh.sailctl("status", "-o", "json").stdout
    proc = mesh.sailctl("-n", "test", "apply", "-f", "-", input=good + text, check=False)
    assert proc.returncode != 0
    assert expected in proc.stderr
    assert re.search(r"STDIN:\d+: ", proc.stderr), proc.stderr
    assert json.loads(mesh.sailctl("status", "-o", "json").stdout)["version"] == json.loads(before)["version"]
    assert mesh.sailctl("get", "cm", "innocent", "-n", "test", check=False).returncode != 0
    assert mesh.status_code("--resolve", "httpbin.example.com:8080:127.0.0.1",
                            "http://httpbin.example.com:8080/status/418") == "418"


def test_seed01_wildcard_gateway_any_sni(mesh: Mesh) -> None:
    # Seed 01: `hosts: '*'`, SIMPLE, credentialName — any SNI and no SNI reach the service.
    mesh.sh("sailctl create -n istio-system secret tls httpbin-credential "
            "--key=example_certs1/httpbin.example.com.key --cert=example_certs1/httpbin.example.com.crt")
    gw = (EXAMPLES.parent / "tests" / "e2e" / "data" / "seed01-gateway.yaml")
    mesh.sailctl("apply", "-f", str(gw))
    for sni in ("anything.example.org", "bookinfo.local"):
        code = mesh.status_code("-k", "--resolve", f"{sni}:8443:127.0.0.1", f"https://{sni}:8443/status/418")
        assert code == "418", sni
    code = mesh.status_code("-k", "https://127.0.0.1:8443/status/418")  # an IP URL sends no SNI
    assert code == "418"
    # The specific hosts keep their own chains and certificates.
    assert _cn(peer_certificate("127.0.0.1", 8443, "helloworld.example.com")) == "helloworld.example.com"
    mesh.sailctl("delete", "-f", str(gw))


def _gateway_envoy_pid(mesh: Mesh) -> str:
    """The ingress gateway's Envoy (the egress gateway runs one too)."""
    status = json.loads(mesh.sailctl("status", "-o", "json").stdout)
    admin = next(p["admin"] for p in status["pods"]
                 if p["namespace"] == "istio-system" and p["name"].startswith("istio-ingressgateway-"))
    proxy_dir = admin.rsplit("/", 1)[0]
    out = subprocess.run(["pgrep", "-f", f"{proxy_dir}/envoy.json"], capture_output=True,
                         text=True).stdout.split()
    assert len(out) == 1, out
    return out[0]


def test_create_label_delete_like_kubectl(mesh: Mesh) -> None:
    (mesh.work / "app.properties").write_text("color=blue\n")
    mesh.sailctl("create", "configmap", "cfg", "--from-file=app.properties", "-n", "test")
    cm = yaml.safe_load(mesh.sailctl("get", "cm", "cfg", "-n", "test", "-o", "yaml").stdout)
    assert cm["data"] == {"app.properties": "color=blue\n"}
    mesh.sailctl("create", "secret", "generic", "gen", "--from-file=token=app.properties",
                 "--from-literal=user=admin", "-n", "test")
    sec = json.loads(mesh.sailctl("get", "secret", "gen", "-n", "test", "-o", "json").stdout)
    assert sorted(sec["data"]) == ["token", "user"] and sec["type"] == "Opaque"
    again = mesh.sailctl("create", "secret", "generic", "gen", "--from-literal=a=b", "-n", "test", check=False)
    assert again.returncode == 1 and "already exists" in again.stderr
    mesh.sailctl("label", "namespace", "test", "team=blue")
    ns = yaml.safe_load(mesh.sailctl("get", "ns", "test", "-o", "yaml").stdout)
    assert ns["metadata"]["labels"]["team"] == "blue"
    mesh.sailctl("label", "ns", "test", "team-")
    assert "team" not in yaml.safe_load(mesh.sailctl("get", "ns", "test", "-o", "yaml").stdout)["metadata"].get("labels", {})
    out = mesh.sailctl("delete", "secret", "gen", "-n", "test").stdout
    assert out.strip() == 'secret "gen" deleted'
    mesh.sailctl("delete", "configmap", "cfg", "-n", "test")
    assert mesh.sailctl("get", "secret", "gen", "-n", "test", check=False).returncode == 1


def test_unknown_image_is_explained(mesh: Mesh) -> None:
    dep = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: mystery}
spec:
  selector: {matchLabels: {app: mystery}}
  template:
    metadata: {labels: {app: mystery}}
    spec:
      containers: [{name: app, image: registry.example.com/mystery:1.0}]
"""
    proc = mesh.sailctl("-n", "test", "apply", "-f", "-", input=dep)
    assert "Deployment test/mystery" in proc.stderr and "registry.example.com/mystery:1.0" in proc.stderr
    pods = mesh.sailctl("get", "pods", "-n", "test").stdout
    assert re.search(r"mystery-\S+\s+0/1\s+ImagePullBackOff", pods), pods
    mesh.sailctl("-n", "test", "delete", "deployment", "mystery")


def test_down_cleans_up_and_up_restores(mesh: Mesh) -> None:
    mesh.sailctl("down")
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not re.search(rf"^{mesh.instance}-", netns, re.M), netns
    assert subprocess.run(["pgrep", "-f", str(mesh.home)], capture_output=True).returncode == 1
    routes = subprocess.run(["ip", "route", "show", "type", "unreachable"], capture_output=True, text=True).stdout
    assert "10.244.0.0/16" in routes and "10.96.0.0/16" in routes  # the safety net stays
    mesh.sailctl("up", "-d", timeout=90)
    mesh.wait_pods_ready("test", 2)
    out = mesh.sh('eval "$(sailctl env)" && curl -s --resolve '
                  '"helloworld.example.com:$SECURE_INGRESS_PORT:$INGRESS_HOST" --cacert '
                  'example_certs1/example.com.crt "https://helloworld.example.com:$SECURE_INGRESS_PORT/hello"')
    assert out.stdout.startswith("Hello version: v1")
