"""Sidecar mutual TLS end to end: injected pods, the mesh CA, PeerAuthentication,
DestinationRule TLS modes and auto mTLS, with real Envoy sidecars, real curl and real
certificates.

The matrix runs every client {with sidecar, without} against every server
PeerAuthentication {STRICT, PERMISSIVE, DISABLE} and DestinationRule {none, ISTIO_MUTUAL,
DISABLE, SIMPLE}. Each cell asserts the outcome the user sees, whether the bytes between
the pods were TLS — read from the server sidecar's own downstream handshake counter, not
from our config — and which identity the server saw (httpbin echoes
X-Forwarded-Client-Cert).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from sailmesh.ca import CertificateAuthority, issue_workload_cert, load_or_create_root
from tests.e2e.mesh import Mesh
from tests.e2e.mesh import deployment as _deployment

pytestmark = pytest.mark.e2e

MODES = ("STRICT", "PERMISSIVE", "DISABLE")
RULES = ("none", "ISTIO_MUTUAL", "DISABLE", "SIMPLE")
CLIENT_ID = "spiffe://cluster.local/ns/mesh/sa/sleep"
GATEWAY_ID = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
HTTPBIN = ["gunicorn", "-b", "0.0.0.0:8080", "httpbin:app", "-k", "gevent"]


def _service(name: str, app: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "srv"},
            "spec": {"selector": {"app": app},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}


def _manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "mesh", "labels": {"istio-injection": "enabled"}}},
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "srv", "labels": {"istio-injection": "enabled"}}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "legacy"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sleep", "namespace": "mesh"}},
        _deployment("mesh", "sleep", "sleep", ["/bin/sleep", "infinity"], "curlimages/curl"),
    ]
    # An app listening on the same port as its Service (nginx on 80).
    docs.append(_deployment("srv", "web", None, None, "nginx", 80))
    docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "srv"},
                 "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}})
    for mode in MODES:
        app = mode.lower()
        docs.append(_deployment("srv", app, None, HTTPBIN, "docker.io/kong/httpbin", 8080))
        docs.append({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                     "metadata": {"name": app, "namespace": "srv"},
                     "spec": {"selector": {"matchLabels": {"app": app}}, "mtls": {"mode": mode}}})
        for rule in RULES:
            name = f"{app}-{rule.lower().replace('_', '-')}"
            docs.append(_service(name, app))
            if rule != "none":
                docs.append({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                             "metadata": {"name": name, "namespace": "srv"},
                             "spec": {"host": f"{name}.srv.svc.cluster.local",
                                      "trafficPolicy": {"tls": {"mode": rule}}}})
    for doc in docs:
        if doc["kind"] == "Deployment" and doc["metadata"]["namespace"] == "srv":
            # Istio's default stats matcher keeps no listener stats; the tests count the
            # servers' TLS handshakes (listener.<address>.ssl.handshake), as a user would.
            doc["spec"]["template"]["metadata"]["annotations"] = {
                "sidecar.istio.io/statsInclusionPrefixes": "listener"}
    return docs


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("e4")
    try:
        m.sailctl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                         "items": _manifests()}))
        _legacy_client(m)
        m.wait_pods_ready("srv", 4)
        m.wait_pods_ready("mesh", 1)
        m.wait_pods_ready("legacy", 1)
        yield m
    finally:
        m.stop()


def _legacy_client(m: Mesh) -> None:
    """A client outside the mesh holding two client certificates with the mesh client's
    SPIFFE id: one signed by the mesh CA, one by a CA the mesh does not trust."""
    now = datetime.now(UTC)
    mesh_ca = load_or_create_root(m.home, "cluster.local", "ecdsa-p256", now)
    other_ca = CertificateAuthority.self_signed("cluster.local", "ecdsa-p256", now)
    certs = m.work / "client-certs"
    certs.mkdir()
    for label, ca in (("mesh", mesh_ca), ("other", other_ca)):
        issued = issue_workload_cert(ca, spiffe_id=CLIENT_ID, now=now)
        (certs / f"{label}.crt").write_bytes(issued.cert_chain_pem)
        (certs / f"{label}.key").write_bytes(issued.key_pem)
    (certs / "root.crt").write_bytes(mesh_ca.root_pem)
    m.sailctl("-n", "legacy", "create", "secret", "generic", "client-certs",
              *(f"--from-file={p.name}={p}" for p in sorted(certs.iterdir())))
    doc = _deployment("legacy", "sleep", None, ["/bin/sleep", "infinity"], "curlimages/curl",
                      volumes={"client-certs": "/etc/client-certs"})
    m.sailctl("apply", "-f", "-", input=json.dumps(doc))


def _status(m: Mesh) -> dict[str, Any]:
    return json.loads(m.sailctl("status", "-o", "json").stdout)


def _pod(m: Mesh, ns: str, app: str) -> dict[str, Any]:
    return next(p for p in _status(m)["pods"]
                if p["namespace"] == ns and p["name"].startswith(f"{app}-") and p.get("ip"))


def _handshakes(m: Mesh, admin: str) -> int:
    """Downstream TLS handshakes the server sidecar completed (Envoy's own counter)."""
    out = m.sh(f"curl -s --unix-socket {admin} 'http://admin/stats?filter=ssl.handshake$'").stdout
    return sum(int(line.rsplit(":", 1)[1]) for line in out.splitlines()
               if line.startswith("listener.") and "ssl.handshake" in line)


def _curl_from(m: Mesh, ns: str, url: str, *extra: str) -> tuple[int, str, str]:
    """(curl exit status, HTTP status, body) of a request from the namespace's sleep pod."""
    proc = m.sailctl("-n", ns, "exec", "deploy/sleep", "--", "curl", "-sS", "-m", "8",
                     "-w", "\n%{http_code}", *extra, url, check=False, timeout=30)
    body, _, code = proc.stdout.rpartition("\n")
    return proc.returncode, code.strip(), body + proc.stderr


def _xfcc(body: str) -> str | None:
    try:
        return json.loads(body)["headers"].get("X-Forwarded-Client-Cert")
    except (ValueError, KeyError):
        return None


# What Istio does in each cell: (HTTP status, TLS between the pods, client identity seen).
# A client without a sidecar sends what the app sends (plaintext): the rule cannot matter.
def _expected(client: str, mode: str, rule: str) -> tuple[str, bool | None, str | None]:
    if client == "legacy":
        return ("000", None, None) if mode == "STRICT" else ("200", False, None)
    send_tls = {"none": mode != "DISABLE", "ISTIO_MUTUAL": True, "DISABLE": False,
                "SIMPLE": True}[rule]
    if rule == "SIMPLE":
        # SIMPLE verifies the server against the system roots and presents no client
        # certificate: the mesh certificate fails verification, so the sidecar answers 503.
        return ("503", None, None)
    if send_tls:
        return ("503", None, None) if mode == "DISABLE" else ("200", True, CLIENT_ID)
    return ("503", None, None) if mode == "STRICT" else ("200", False, None)


CELLS = [(c, mode, rule) for c in ("sidecar", "legacy") for mode in MODES for rule in RULES]


@pytest.mark.parametrize(("client", "mode", "rule"), CELLS,
                         ids=[f"{c}-{m}-{r}" for c, m, r in CELLS])
def test_matrix(mesh: Mesh, client: str, mode: str, rule: str) -> None:
    server = _pod(mesh, "srv", mode.lower())
    host = f"{mode.lower()}-{rule.lower().replace('_', '-')}.srv"
    before = _handshakes(mesh, server["admin"])
    rc, code, body = _curl_from(mesh, "mesh" if client == "sidecar" else "legacy",
                                f"http://{host}/headers")
    after = _handshakes(mesh, server["admin"])
    want_code, want_tls, want_id = _expected(client, mode, rule)
    assert code == want_code, f"{client}→{host}: curl {rc} HTTP {code}\n{body}"
    if want_code == "503":
        # The client sidecar's own answer, with the reason, never the app's.
        assert "upstream connect error or disconnect/reset before headers" in body, body
    if want_code == "000":
        assert rc != 0, body  # the server sidecar closed the plaintext connection
    if want_tls is not None:
        assert (after > before) is want_tls, f"handshakes {before}→{after}, expected TLS={want_tls}"
    if want_code == "200":
        xfcc = _xfcc(body)
        if want_id is None:
            assert xfcc is None, f"plaintext request carried an identity: {xfcc}"
        else:
            assert xfcc is not None and f"URI={want_id}" in xfcc, xfcc


def test_app_port_equal_to_a_service_port_does_not_loop(mesh: Mesh) -> None:
    """Inbound traffic to port 80 must reach the app, not the outbound listener of port 80."""
    server = _pod(mesh, "srv", "web")
    before = _handshakes(mesh, server["admin"])
    rc, code, body = _curl_from(mesh, "mesh", "http://web.srv/")
    assert code == "200" and "nginx" in body, f"curl {rc} HTTP {code}\n{body}"
    assert _handshakes(mesh, server["admin"]) == before + 1
    assert _curl_from(mesh, "legacy", "http://web.srv/")[1] == "200"  # PERMISSIVE by default


def test_strict_refuses_a_client_certificate_from_another_ca(mesh: Mesh) -> None:
    server = _pod(mesh, "srv", "strict")
    url = f"https://{server['ip']}:8080/headers"
    common = ("--cacert", "/etc/client-certs/root.crt", "-k")
    rc, code, body = _curl_from(mesh, "legacy", url, *common, "--cert", "/etc/client-certs/other.crt",
                                "--key", "/etc/client-certs/other.key")
    assert rc != 0 and code == "000", body
    # The same identity signed by the mesh CA is accepted: the CA made the difference.
    rc, code, body = _curl_from(mesh, "legacy", url, *common, "--cert", "/etc/client-certs/mesh.crt",
                                "--key", "/etc/client-certs/mesh.key")
    assert code == "200", body
    assert f"URI={CLIENT_ID}" in (_xfcc(body) or "")


def test_workload_certificate_is_the_service_account_identity(mesh: Mesh) -> None:
    server = _pod(mesh, "srv", "strict")
    # What the server sidecar presents on the wire, read by openssl from outside the mesh.
    proc = mesh.sailctl("-n", "legacy", "exec", "deploy/sleep", "--", "sh", "-c",
                        f"echo | openssl s_client -connect {server['ip']}:8080 "
                        "-cert /etc/client-certs/mesh.crt -key /etc/client-certs/mesh.key "
                        "2>/dev/null | openssl x509 -noout -ext subjectAltName")
    assert "URI:spiffe://cluster.local/ns/srv/sa/default" in proc.stdout, proc.stdout
    ids = {(i["namespace"], i["spiffeId"]) for i in _status(mesh)["ca"]["identities"]}
    assert ("mesh", CLIENT_ID) in ids
    assert ("istio-system", GATEWAY_ID) in ids


def test_root_published_in_every_namespace(mesh: Mesh) -> None:
    root = (mesh.home / "ca" / "root-cert.pem").read_text()
    for ns in ("default", "mesh", "srv", "legacy", "istio-system"):
        cm = json.loads(mesh.sailctl("-n", ns, "get", "configmap", "istio-ca-root-cert",
                                     "-o", "json").stdout)
        assert cm["data"]["root-cert.pem"] == root
    key = mesh.home / "ca" / "root-key.pem"
    assert key.stat().st_mode & 0o777 == 0o600


def test_gateway_reaches_a_strict_service_over_mtls(mesh: Mesh) -> None:
    mesh.sailctl("apply", "-f", "-", input="""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: plain, namespace: srv}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["strict.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: strict, namespace: srv}
spec:
  hosts: ["strict.example.com"]
  gateways: [plain]
  http:
  - route:
    - destination: {host: strict-none, port: {number: 80}}
""")
    server = _pod(mesh, "srv", "strict")
    before = _handshakes(mesh, server["admin"])
    res = mesh.curl("-H", "Host: strict.example.com", "http://127.0.0.1:8080/headers")
    assert res.returncode == 0, res.stderr
    assert f"URI={GATEWAY_ID}" in (_xfcc(res.stdout) or ""), res.stdout
    assert _handshakes(mesh, server["admin"]) > before


def test_gateway_istio_mutual_server_requires_a_mesh_certificate(mesh: Mesh) -> None:
    mesh.sailctl("apply", "-f", "-", input="""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mesh-only, namespace: srv}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["permissive.example.com"]
    tls: {mode: ISTIO_MUTUAL}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mesh-only, namespace: srv}
spec:
  hosts: ["permissive.example.com"]
  gateways: [mesh-only]
  http:
  - route:
    - destination: {host: permissive-none, port: {number: 80}}
""")
    certs = mesh.work / "client-certs"
    base = ("--resolve", "permissive.example.com:8443:127.0.0.1", "--cacert", str(certs / "root.crt"),
            "-k", "https://permissive.example.com:8443/headers")
    deadline = time.monotonic() + 10
    while True:
        ok = mesh.curl("--cert", str(certs / "mesh.crt"), "--key", str(certs / "mesh.key"), *base)
        if ok.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert ok.returncode == 0, ok.stderr
    assert f"URI={GATEWAY_ID}" in (_xfcc(ok.stdout) or ""), ok.stdout
    assert mesh.curl(*base).returncode != 0  # no client certificate
    other = mesh.curl("--cert", str(certs / "other.crt"), "--key", str(certs / "other.key"), *base)
    assert other.returncode != 0, other.stdout


def test_seed04_istio_mutual_rules_with_subsets_keep_traffic_working(mesh: Mesh) -> None:
    """Seed 04: `oc replace -f destination-rule-all-mtls.yaml` — DestinationRules with
    subsets and ISTIO_MUTUAL replace plain ones, and traffic through subsets keeps working."""
    rules = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: permissive-none, namespace: srv}
spec:
  host: permissive-none
  subsets:
  - name: v1
    labels: {app: permissive}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: permissive-none, namespace: srv}
spec:
  hosts: [permissive-none]
  http:
  - route:
    - destination: {host: permissive-none, subset: v1}
"""
    mesh.sailctl("apply", "-f", "-", input=rules)
    server = _pod(mesh, "srv", "permissive")
    before = _handshakes(mesh, server["admin"])
    assert _curl_from(mesh, "mesh", "http://permissive-none.srv/get")[1] == "200"
    assert _handshakes(mesh, server["admin"]) > before  # auto mTLS through the subset
    mesh.sailctl("replace", "-f", "-", input=rules.replace(
        "  subsets:", "  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n  subsets:"))
    before = _handshakes(mesh, server["admin"])
    _, code, body = _curl_from(mesh, "mesh", "http://permissive-none.srv/headers")
    assert code == "200", body
    assert f"URI={CLIENT_ID}" in (_xfcc(body) or "")
    assert _handshakes(mesh, server["admin"]) > before
    gone = mesh.sailctl("replace", "-f", "-", check=False, input=rules.replace(
        "name: permissive-none, namespace", "name: no-such-rule, namespace"))
    assert gone.returncode == 1 and "NotFound" in gone.stderr, gone.stderr
    pc = mesh.sailctl("-n", "mesh", "proxy-config", "cluster", "deploy/sleep", "-o", "json").stdout
    assert "outbound|80|v1|permissive-none.srv.svc.cluster.local" in pc


def test_rotation_under_load_loses_no_request(mesh: Mesh) -> None:
    """A 4 s certificate TTL: certificates renew every ~2 s while requests flow."""
    mesh.sailctl("apply", "-f", "-", input="""
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: short-ttl, namespace: istio-system}
spec:
  meshConfig:
    defaultConfig:
      proxyMetadata: {SECRET_TTL: 4s}
""")
    def serials() -> dict[str, str]:
        return {i["pod"]: i["serial"] for i in _status(mesh)["ca"]["identities"]}

    first = serials()
    loop = ('ok=0; bad=0; end=$(( $(date +%s) + 10 )); while [ $(date +%s) -lt $end ]; do '
            'c=$(curl -s -m 3 -o /dev/null -w "%{http_code}" http://strict-none.srv/get); '
            'if [ "$c" = 200 ]; then ok=$((ok+1)); else bad=$((bad+1)); fi; done; echo $ok $bad')
    proc = mesh.sailctl("-n", "mesh", "exec", "deploy/sleep", "--", "sh", "-c", loop, timeout=60)
    ok, bad = map(int, proc.stdout.split())
    after = serials()
    assert bad == 0 and ok > 100, proc.stdout
    server = _pod(mesh, "srv", "strict")["name"]
    assert after[server] != first[server], "the server's certificate was not renewed"
    cert = _status(mesh)["ca"]["identities"]
    lifetimes = [datetime.fromisoformat(i["notAfter"]) - datetime.fromisoformat(i["issued"])
                 for i in cert]
    assert all(lt.total_seconds() <= 4 for lt in lifetimes), lifetimes


def test_sailctl_ca_shows_root_and_identities(mesh: Mesh) -> None:
    out = mesh.sailctl("ca").stdout
    root = x509.load_pem_x509_certificate((mesh.home / "ca" / "root-cert.pem").read_bytes())
    assert "O=cluster.local" in out and root.not_valid_after_utc.strftime("%Y-%m-%d") in out
    assert CLIENT_ID in out
    doc = json.loads(mesh.sailctl("ca", "-o", "json").stdout)
    assert doc["keyType"] == "ecdsa-p256" and doc["source"].startswith("self-signed")
    assert Path(mesh.home / "ca" / "root-cert.pem").exists()


def test_mesh_mtls_minimum_tls13_is_enforced_on_sidecar_inbound(mesh: Mesh) -> None:
    mesh.sailctl("apply", "-f", "-", input="""
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: tls13, namespace: istio-system}
spec:
  meshConfig:
    meshMTLS: {minProtocolVersion: TLSV1_3}
    defaultConfig:
      proxyMetadata: {SECRET_TTL: 4s}
""")
    server = _pod(mesh, "srv", "strict")
    url = f"https://{server['ip']}:8080/get"
    client = ("-k", "--cert", "/etc/client-certs/mesh.crt", "--key", "/etc/client-certs/mesh.key")
    rc, code, body = _curl_from(mesh, "legacy", url, *client, "--tlsv1.2", "--tls-max", "1.2")
    assert rc != 0 and code == "000", body
    rc, code, body = _curl_from(mesh, "legacy", url, *client, "--tlsv1.3")
    assert code == "200", body
    # Sidecar to sidecar still works: the mesh's clients speak TLS 1.3.
    assert _curl_from(mesh, "mesh", "http://strict-none.srv/get")[1] == "200"
