"""OpenShift's service CA on a real mesh, the way OpenShift's documentation has users do it:
`oc annotate service … service.beta.openshift.io/serving-cert-secret-name=…` makes a TLS
Secret that nginx serves; `oc annotate configmap … inject-cabundle=true` gives a client
the CA to trust it by the name `<svc>.<ns>.svc`; a reencrypt Route without
destinationCACertificate reaches nginx through the real HAProxy router (service CA and
name check), and a Route to a Service whose name the certificate lacks gets 503."""

from __future__ import annotations

import stat
from collections.abc import Iterator

import pytest
import yaml
from cryptography import x509

from tests.e2e.mesh import Mesh, eventually

pytestmark = pytest.mark.e2e
DOMAIN = "apps.sailmesh.test"
OC = 'eval "$(sailctl env --aliases)"; '
NS = "web"

# nginx serving HTTPS on 8443 with the files of the Secret the service CA issues.
NGINX = "---".join(f"""
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {NS}}}
spec:
  selector: {{app: secure-web}}
  ports:
  - {{name: https, port: 8443, targetPort: 8443}}
""" for name in ("secure-web", "other-web")) + f"""
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: nginx-conf, namespace: {NS}}}
data:
  default.conf: |
    server {{
      listen 8443 ssl;
      ssl_certificate /etc/nginx/certs/tls.crt;
      ssl_certificate_key /etc/nginx/certs/tls.key;
      location / {{ root /usr/share/nginx/html; index index.html; }}
    }}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: secure-web, namespace: {NS}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: secure-web}}}}
  template:
    metadata: {{labels: {{app: secure-web}}}}
    spec:
      containers:
      - name: nginx
        image: nginx
        ports: [{{containerPort: 8443}}]
        volumeMounts:
        - {{name: certs, mountPath: /etc/nginx/certs, readOnly: true}}
        - {{name: conf, mountPath: /etc/nginx/conf.d, readOnly: true}}
      volumes:
      - name: certs
        secret: {{secretName: secure-web-tls}}
      - name: conf
        configMap: {{name: nginx-conf}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: client, namespace: {NS}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: client}}}}
  template:
    metadata: {{labels: {{app: client}}}}
    spec:
      containers:
      - name: client
        image: curlimages/curl
        command: [sleep, infinity]
        volumeMounts:
        - {{name: service-ca, mountPath: /etc/service-ca, readOnly: true}}
      volumes:
      - name: service-ca
        configMap: {{name: service-ca}}
"""


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("sca")
    try:
        m.sh("sailctl router ca > router-ca.crt")
        # OpenShift's documented steps: create the objects, then annotate them.
        m.sh(OC + f"oc create namespace {NS}")
        m.sh(OC + f"oc create configmap service-ca -n {NS}")
        m.sailctl("apply", "-f", "-", input=NGINX)
        m.sh(OC + f"oc annotate service secure-web -n {NS} "
             "service.beta.openshift.io/serving-cert-secret-name=secure-web-tls")
        m.sh(OC + f"oc annotate configmap service-ca -n {NS} "
             "service.beta.openshift.io/inject-cabundle=true")
        m.wait_pods_ready(NS, 2, timeout=60)
        yield m
    finally:
        m.stop()


def _from_client(mesh: Mesh, *curl: str) -> str:
    proc = mesh.sailctl("exec", "-n", NS, "deploy/client", "--", "curl", "-sS", "-m", "10",
                        *curl, timeout=40, check=False)
    return proc.stdout + proc.stderr


def test_service_ca_issues_the_serving_secret(mesh: Mesh) -> None:
    secret = yaml.safe_load(mesh.sh(OC + f"oc get secret secure-web-tls -n {NS} -o yaml").stdout)
    svc = yaml.safe_load(mesh.sh(OC + f"oc get service secure-web -n {NS} -o yaml").stdout)
    uid = svc["metadata"]["uid"]
    assert secret["type"] == "kubernetes.io/tls" and set(secret["data"]) == {"tls.crt", "tls.key"}
    ann = secret["metadata"]["annotations"]
    assert ann["service.beta.openshift.io/originating-service-name"] == "secure-web"
    assert ann["service.beta.openshift.io/originating-service-uid"] == uid
    assert ann["service.beta.openshift.io/expiry"] == ann["service.alpha.openshift.io/expiry"]
    assert secret["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Service", "name": "secure-web", "uid": uid}]
    signer = svc["metadata"]["annotations"]["service.beta.openshift.io/serving-cert-signed-by"]
    assert signer.startswith("openshift-service-serving-signer@")
    # nginx presents it: the names are the Service's, the issuer is the service CA.
    shown = mesh.sailctl("exec", "-n", NS, "deploy/client", "--", "openssl", "s_client",
                         "-connect", "secure-web.web.svc:8443", "-servername",
                         "secure-web.web.svc", input="", timeout=30, check=False).stdout
    pem = shown.split("-----BEGIN CERTIFICATE-----", 1)[1].split("-----END CERTIFICATE-----")[0]
    cert = x509.load_pem_x509_certificate(
        f"-----BEGIN CERTIFICATE-----{pem}-----END CERTIFICATE-----\n".encode())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["secure-web.web.svc",
                                                        "secure-web.web.svc.cluster.local"]
    assert cert.issuer.rfc4514_string() == f"CN={signer}"
    # The key lives in the state dir readable by its owner only.
    stored = next(mesh.home.glob(f"**/resources/Secret/{NS}/secure-web-tls.yaml"))
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    service_ca_key = next(mesh.home.glob("**/router/service-ca.key"))
    assert stat.S_IMODE(service_ca_key.stat().st_mode) == 0o600


def test_injected_bundle_lets_a_client_verify_the_service(mesh: Mesh) -> None:
    cm = yaml.safe_load(mesh.sh(OC + f"oc get configmap service-ca -n {NS} -o yaml").stdout)
    assert list(cm["data"]) == ["service-ca.crt"]
    (bundle,) = x509.load_pem_x509_certificates(cm["data"]["service-ca.crt"].encode())
    assert bundle.subject == bundle.issuer
    assert bundle.subject.rfc4514_string().startswith("CN=openshift-service-serving-signer@")
    ca = "/etc/service-ca/service-ca.crt"
    for url in ("https://secure-web.web.svc:8443/", "https://secure-web.web.svc.cluster.local:8443/"):
        assert "Welcome to nginx" in _from_client(mesh, "--cacert", ca, url), url
    # The certificate does not name other-web: a client that checks names refuses it.
    refused = _from_client(mesh, "--cacert", ca, "https://other-web.web.svc:8443/")
    assert "Welcome to nginx" not in refused and "certificate" in refused.lower()
    # Without the bundle the service CA is unknown to the client.
    assert "Welcome to nginx" not in _from_client(mesh, "https://secure-web.web.svc:8443/")


def test_reencrypt_without_destination_ca_trusts_the_service_ca(mesh: Mesh) -> None:
    mesh.sh(OC + f"oc create route reencrypt secure-web -n {NS} --service=secure-web")
    mesh.sh(OC + f"oc create route reencrypt other-web -n {NS} --service=other-web")
    host = f"secure-web-{NS}.{DOMAIN}"
    other = f"other-web-{NS}.{DOMAIN}"

    def code(h: str) -> str:
        return mesh.status_code("--resolve", f"{h}:443:127.0.0.1", "--cacert", "router-ca.crt",
                                f"https://{h}/")

    def served() -> None:
        assert code(host) == "200"
        # verifyhost other-web.web.svc: the certificate is for secure-web only → 503.
        assert code(other) == "503"

    eventually(served)
    page = mesh.curl("--resolve", f"{host}:443:127.0.0.1", "--cacert", "router-ca.crt",
                     f"https://{host}/").stdout
    assert "Welcome to nginx" in page


def test_deleted_secret_is_issued_again_and_served(mesh: Mesh) -> None:
    before = yaml.safe_load(mesh.sh(OC + f"oc get secret secure-web-tls -n {NS} -o yaml").stdout)
    mesh.sh(OC + f"oc delete secret secure-web-tls -n {NS}")

    def reissued() -> None:
        got = mesh.sh(OC + f"oc get secret secure-web-tls -n {NS} -o yaml", check=False)
        assert got.returncode == 0, got.stderr
        assert yaml.safe_load(got.stdout)["data"]["tls.key"] != before["data"]["tls.key"]

    eventually(reissued)
    host = f"secure-web-{NS}.{DOMAIN}"
    eventually(lambda: _assert_page(mesh, host), timeout=40)


def _assert_page(mesh: Mesh, host: str) -> None:
    page = mesh.curl("--resolve", f"{host}:443:127.0.0.1", "--cacert", "router-ca.crt",
                     f"https://{host}/").stdout
    assert "Welcome to nginx" in page
