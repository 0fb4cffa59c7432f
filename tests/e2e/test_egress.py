"""Egress end to end: ServiceEntry, TLS origination at the sidecar and through the egress
gateway, HTTPS passthrough, ALLOW_ANY / REGISTRY_ONLY.

The "external" servers are `sailmesh.apps.external_https` pods in a namespace without
injection, behind Services annotated `sailmesh.io/external-hosts` (docs/egress.md), with
certificates from a CA of their own. Each answers with what it received — TLS version,
SNI, client certificate, peer address, the request — so every check is made on the
receiving end, not on our configuration.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sailmesh.translate.origination import SYSTEM_ROOTS
from tests.e2e.certs import make_ca, make_leaf
from tests.e2e.mesh import Mesh

pytestmark = pytest.mark.e2e

SERVER = ["python", "-P", "-m", "sailmesh.apps.external_https", "--cert", "/etc/server-certs/tls.crt",
          "--key", "/etc/server-certs/tls.key", "--port", "8443", "--plain-port", "8080"]


def _secret(ns: str, name: str, files: dict[str, Path]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
            "type": "Opaque", "stringData": {k: p.read_text() for k, p in files.items()}}


def _external(name: str, hosts: str, secret: str, *extra: str) -> list[dict[str, Any]]:
    """An external server: Deployment (no sidecar) + stand-in Service for `hosts`."""
    labels = {"app": name}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": name, "namespace": "external"},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
             "metadata": {"labels": labels},
             "spec": {"containers": [{
                 "name": "server", "image": "python:3.12-slim",
                 "command": [*SERVER, "--name", name, *extra],
                 "ports": [{"containerPort": 8443}, {"containerPort": 8080}],
                 "volumeMounts": [{"name": "certs", "mountPath": "/etc/server-certs", "readOnly": True}]}],
                 "volumes": [{"name": "certs", "secret": {"secretName": secret}}]}}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": name, "namespace": "external",
                      "annotations": {"sailmesh.io/external-hosts": hosts}},
         "spec": {"selector": labels, "ports": [
             {"name": "https", "port": 443, "targetPort": 8443},
             {"name": "http", "port": 80, "targetPort": 8080}]}},
    ]


def _mesh_config(mode: str) -> dict[str, Any]:
    return {"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator",
            "metadata": {"name": "egress", "namespace": "istio-system"},
            "spec": {"meshConfig": {"accessLogFile": "/dev/stdout",
                                    "outboundTrafficPolicy": {"mode": mode}}}}


def _origination(host: str, tls: dict[str, Any], *, selector: bool = True) -> list[dict]:
    """Istio's recommended form: port 80/HTTP with targetPort 443, DR on port 80."""
    name = host.replace(".", "-")
    dr: dict[str, Any] = {"host": host, "trafficPolicy": {"portLevelSettings": [
        {"port": {"number": 80}, "tls": tls}]}}
    if selector:
        dr["workloadSelector"] = {"matchLabels": {"app": "sleep"}}
    return [
        {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
         "metadata": {"name": name, "namespace": "app"},
         "spec": {"hosts": [host], "location": "MESH_EXTERNAL", "resolution": "DNS",
                  "ports": [{"number": 80, "name": "http", "protocol": "HTTP", "targetPort": 443},
                            {"number": 443, "name": "https", "protocol": "HTTPS"}]}},
        {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
         "metadata": {"name": name, "namespace": "app"}, "spec": dr},
    ]


def _egress_gateway(key: str, host: str, gateway: str,
                    origination: dict[str, Any]) -> list[dict[str, Any]]:
    """Istio's "egress gateway with (mutual) TLS origination" task for `host`: the sidecar
    sends plain HTTP over mesh mTLS (ISTIO_MUTUAL, `sni` = host, subset `key`) to the gateway
    (Gateway `gateway`, port 80), which opens `origination` TLS to host:443. The gateway reads
    credentialName from its own namespace (no selector needed)."""
    gw = "istio-egressgateway.istio-system.svc.cluster.local"
    return [
        {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
         "metadata": {"name": key, "namespace": "app"},
         "spec": {"hosts": [host], "resolution": "DNS",
                  "ports": [{"number": 80, "name": "http", "protocol": "HTTP"},
                            {"number": 443, "name": "https", "protocol": "HTTPS"}]}},
        {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
         "metadata": {"name": gateway, "namespace": "app"},
         "spec": {"selector": {"istio": "egressgateway"}, "servers": [{
             "port": {"number": 80, "name": "https-port-for-tls-origination",
                      "protocol": "HTTPS"},
             "hosts": [host], "tls": {"mode": "ISTIO_MUTUAL"}}]}},
        {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
         "metadata": {"name": f"egressgateway-for-{key}", "namespace": "app"},
         "spec": {"host": gw, "subsets": [{"name": key, "trafficPolicy": {
             "portLevelSettings": [{"port": {"number": 80},
                                    "tls": {"mode": "ISTIO_MUTUAL", "sni": host}}]}}]}},
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
         "metadata": {"name": f"direct-{key}-through-egress-gateway", "namespace": "app"},
         "spec": {"hosts": [host], "gateways": [gateway, "mesh"],
                  "http": [
                      {"match": [{"gateways": ["mesh"], "port": 80}],
                       "route": [{"destination": {"host": gw, "subset": key,
                                                  "port": {"number": 80}}, "weight": 100}]},
                      {"match": [{"gateways": [gateway], "port": 80}],
                       "route": [{"destination": {"host": host,
                                                  "port": {"number": 443}}, "weight": 100}]}]}},
        {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
         "metadata": {"name": f"originate-tls-for-{key}", "namespace": "app"},
         "spec": {"host": host, "trafficPolicy": {"portLevelSettings": [
             {"port": {"number": 443}, "tls": origination}]}}},
    ]


def _egress_gateway_passthrough() -> list[dict[str, Any]]:
    """Istio's "egress gateway for HTTPS traffic" task, for api.example.net: the app's own
    TLS is routed by SNI (a `tls` route bound to mesh) to the egress gateway, which passes it
    through to the external host."""
    gw = "istio-egressgateway.istio-system.svc.cluster.local"
    sni_match = {"port": 443, "sniHosts": ["api.example.net"]}
    return [
        {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
         "metadata": {"name": "api", "namespace": "app"},
         "spec": {"hosts": ["api.example.net"], "resolution": "DNS",
                  "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}]}},
        {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
         "metadata": {"name": "egress-api", "namespace": "app"},
         "spec": {"selector": {"istio": "egressgateway"}, "servers": [{
             "port": {"number": 443, "name": "tls", "protocol": "TLS"},
             "hosts": ["api.example.net"], "tls": {"mode": "PASSTHROUGH"}}]}},
        {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
         "metadata": {"name": "egressgateway-for-api", "namespace": "app"},
         "spec": {"host": gw, "subsets": [{"name": "api"}]}},
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
         "metadata": {"name": "direct-api-through-egress-gateway", "namespace": "app"},
         "spec": {"hosts": ["api.example.net"], "gateways": ["mesh", "egress-api"], "tls": [
             {"match": [{**sni_match, "gateways": ["mesh"]}],
              "route": [{"destination": {"host": gw, "subset": "api",
                                         "port": {"number": 443}}}]},
             {"match": [{**sni_match, "gateways": ["egress-api"]}],
              "route": [{"destination": {"host": "api.example.net", "port": {"number": 443}},
                         "weight": 100}]}]}},
    ]


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("e5")
    try:
        setup(m)
        yield m
    finally:
        m.stop()


def setup(m: Mesh) -> None:
    """The external servers, the meshed client and every egress resource of this module."""
    if True:
        certs = m.work / "certs"
        certs.mkdir()
        ca, ca_key = make_ca(certs / "external-ca", "Outside World Root CA")
        other, _ = make_ca(certs / "other-ca", "Some Other CA")
        wiki = make_leaf(certs / "wikipedia", "wikipedia.org", ca, ca_key)
        cnn = make_leaf(certs / "cnn", "edition.cnn.com", ca, ca_key)
        secure = make_leaf(certs / "secure", "secure.example.org", ca, ca_key)
        client = make_leaf(certs / "client", "client.app.example", ca, ca_key)
        api = make_leaf(certs / "api", "api.example.net", ca, ca_key)
        docs: list[dict[str, Any]] = [
            _mesh_config("ALLOW_ANY"),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "external"}},
            {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": "app", "labels": {"istio-injection": "enabled"}}},
            _secret("external", "wikipedia-tls", {"tls.crt": wiki[0], "tls.key": wiki[1]}),
            _secret("external", "cnn-tls", {"tls.crt": cnn[0], "tls.key": cnn[1]}),
            _secret("external", "api-tls", {"tls.crt": api[0], "tls.key": api[1]}),
            *_external("api", "api.example.net", "api-tls"),
            _secret("external", "secure-tls", {"tls.crt": secure[0], "tls.key": secure[1],
                                               "ca.crt": ca}),
            *_external("wikipedia", "wikipedia.org,wrongca.example,mismatch.example,"
                       "insecure.example,unlisted.example,tcp-a.example,sanpin.example,"
                       "sanwrong.example,sysroots.example", "wikipedia-tls"),
            *_external("cnn", "edition.cnn.com,tcp-b.example", "cnn-tls"),
            *_external("secure", "secure.example.org,nocert.example,filecert.example,"
                       "missingfile.example,gw-mtls.example", "secure-tls",
                       "--client-ca", "/etc/server-certs/ca.crt"),
            _secret("app", "external-ca", {"ca.crt": ca}),
            _secret("app", "other-ca", {"ca.crt": other}),
            _secret("app", "client-credential", {"tls.crt": client[0], "tls.key": client[1],
                                                 "ca.crt": ca}),
            # Istio serves the sidecar the client key of a credentialName only when its
            # service account may list Secrets in its namespace.
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "read-credentials", "namespace": "app"},
             "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "read-credentials", "namespace": "app"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                         "name": "read-credentials"},
             "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "app"}]},
            _secret("istio-system", "cnn-ca", {"ca.crt": ca}),
            # The egress gateway's client credential (its own namespace).
            _secret("istio-system", "gateway-client", {"tls.crt": client[0],
                                                       "tls.key": client[1], "ca.crt": ca}),
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "sleep", "namespace": "app"},
             "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "sleep"}}, "template": {
                 # Istio's way to give the sidecar files for DestinationRule paths.
                 "metadata": {"labels": {"app": "sleep"}, "annotations": {
                     "sidecar.istio.io/userVolume": json.dumps(
                         [{"name": "client-certs",
                           "secret": {"secretName": "client-credential"}}]),
                     "sidecar.istio.io/userVolumeMount": json.dumps(
                         [{"name": "client-certs", "mountPath": "/etc/client-certs",
                           "readonly": True}])}},
                 "spec": {"containers": [{
                     "name": "sleep", "image": "curlimages/curl",
                     "command": ["/bin/sleep", "infinity"],
                     "volumeMounts": [{"name": "external-ca", "mountPath": "/etc/external-ca",
                                       "readOnly": True}]}],
                     "volumes": [{"name": "external-ca",
                                  "secret": {"secretName": "external-ca"}}]}}}},
            *_origination("wikipedia.org", {"mode": "SIMPLE", "credentialName": "external-ca"}),
            *_origination("wrongca.example", {"mode": "SIMPLE", "credentialName": "other-ca"}),
            *_origination("mismatch.example", {"mode": "SIMPLE",
                                               "credentialName": "external-ca"}),
            *_origination("secure.example.org", {"mode": "MUTUAL",
                                                 "credentialName": "client-credential"}),
            *_origination("nocert.example", {"mode": "SIMPLE", "credentialName": "external-ca",
                                             "sni": "secure.example.org"}),
            *_egress_gateway("cnn", "edition.cnn.com", "istio-egressgateway",
                             {"mode": "SIMPLE", "credentialName": "cnn-ca"}),
            *_egress_gateway_passthrough(),
            # Istio's mutual TLS origination task: the gateway's own client credential.
            *_egress_gateway("gw-mtls", "gw-mtls.example", "egress-mtls",
                             {"mode": "MUTUAL", "credentialName": "gateway-client",
                              "sni": "secure.example.org"}),
        ]
        m.sailctl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                       "items": docs}), timeout=60)
        m.wait_pods_ready("external", 4)
        m.wait_pods_ready("app", 1)
        m.wait_pods_ready("istio-system", 3)
        _wait_for(m, "http://wikipedia.org/", "200")


def _curl(m: Mesh, url: str, *extra: str) -> tuple[int, str, str]:
    """(curl exit status, HTTP status, body) of a request from the app's sleep pod."""
    proc = m.sailctl("-n", "app", "exec", "deploy/sleep", "--", "curl", "-sS", "-m", "8",
                     "-w", "\n%{http_code}", *extra, url, check=False, timeout=30)
    body, _, code = proc.stdout.rpartition("\n")
    return proc.returncode, code.strip(), body + proc.stderr


def _wait_for(m: Mesh, url: str, status: str, timeout: float = 20) -> tuple[int, str, str]:
    deadline = time.monotonic() + timeout
    result = _curl(m, url)
    while result[1] != status and time.monotonic() < deadline:
        time.sleep(0.5)
        result = _curl(m, url)
    return result


def _pods(m: Mesh) -> list[dict[str, Any]]:
    return json.loads(m.sailctl("status", "-o", "json").stdout)["pods"]


def _pod(m: Mesh, ns: str, prefix: str) -> dict[str, Any]:
    return next(p for p in _pods(m) if p["namespace"] == ns and p["name"].startswith(prefix)
                and p.get("ip"))


def _log(m: Mesh, ns: str, prefix: str, container: str) -> str:
    return Path(_pod(m, ns, prefix)["logs"][container]).read_text(errors="replace")


def _server_events(m: Mesh, server: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _log(m, "external", server, "server").splitlines()
            if line.startswith("{")]


def _access_log_line(m: Mesh, authority: str, timeout: float = 8) -> str:
    """The sleep sidecar's newest access-log line for a request to `authority`."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in _log(m, "app", "sleep", "istio-proxy").splitlines()
                 if f'"{authority}"' in line]
        if lines or time.monotonic() > deadline:
            return lines[-1] if lines else ""
        time.sleep(0.3)


# --- TLS origination at the sidecar ---------------------------------------------------------


def test_plain_http_is_originated_as_verified_tls(mesh: Mesh) -> None:
    rc, status, body = _curl(mesh, "http://wikipedia.org/wiki/Istio?x=1", "-X", "POST",
                             "-H", "X-Test: kept", "-d", "payload=intact")
    assert (rc, status) == (0, "200"), body
    seen = json.loads(body)
    assert seen["server"] == "wikipedia"
    assert seen["tls"] is True and seen["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert seen["sni"] == "wikipedia.org"  # auto SNI from the Host header
    assert seen["client_cert"] is None
    assert (seen["method"], seen["path"], seen["body"]) == ("POST", "/wiki/Istio?x=1",
                                                            "payload=intact")
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["host"] == "wikipedia.org" and headers["x-test"] == "kept"


def test_wrong_ca_fails_with_503(mesh: Mesh) -> None:
    _rc, status, body = _curl(mesh, "http://wrongca.example/")
    assert status == "503" and "upstream connect error" in body, body
    # The proxy refused the server's certificate: the server got the alert.
    failures = [e for e in _server_events(mesh, "wikipedia") if e["event"] == "handshake_failed"]
    assert any(e["reason"] == "TLSV1_ALERT_UNKNOWN_CA" for e in failures), failures
    # The sidecar's access log says why, as Istio's does (flags UF, the transport reason).
    line = _access_log_line(mesh, "wrongca.example")
    assert '" 503 UF ' in line and "CERTIFICATE_VERIFY_FAILED" in line, line
    assert "unable_to_get_local_issuer_certificate" in line, line


def test_san_mismatch_fails_with_503(mesh: Mesh) -> None:
    # The server's certificate says wikipedia.org; the request was for mismatch.example.
    _rc, status, body = _curl(mesh, "http://mismatch.example/")
    assert status == "503" and "upstream connect error" in body, body
    failures = [e for e in _server_events(mesh, "wikipedia") if e["event"] == "handshake_failed"]
    assert any(e["reason"] == "SSLV3_ALERT_CERTIFICATE_UNKNOWN" for e in failures), failures
    line = _access_log_line(mesh, "mismatch.example")
    assert '" 503 UF ' in line and "CERTIFICATE_VERIFY_FAILED" in line, line
    assert "expected_SANs:_[mismatch.example],_certificate_SANs:_[wikipedia.org]" in line, line


def test_subject_alt_names_and_the_system_roots(mesh: Mesh) -> None:
    ca = {"mode": "SIMPLE", "credentialName": "external-ca"}
    docs = [*_origination("sanpin.example", {**ca, "subjectAltNames": ["wikipedia.org"]}),
            *_origination("sanwrong.example", {**ca, "subjectAltNames": ["other.example"]}),
            *_origination("sysroots.example", {"mode": "SIMPLE"})]
    out = mesh.sailctl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                             "items": docs}))
    # subjectAltNames replace the host as the name the certificate must carry.
    _rc, status, body = _wait_for(mesh, "http://sanpin.example/", "200")
    assert status == "200" and json.loads(body)["sni"] == "sanpin.example", body
    _rc, status, body = _curl(mesh, "http://sanwrong.example/")
    assert status == "503", body
    line = _access_log_line(mesh, "sanwrong.example")
    assert "CERTIFICATE_VERIFY_FAILED" in line, line
    # No CA given: the system roots, which do not know the outside world's private CA.
    _rc, status, body = _curl(mesh, "http://sysroots.example/")
    assert status == "503", body
    if Path(SYSTEM_ROOTS).exists():
        line = _access_log_line(mesh, "sysroots.example")
        assert "unable_to_get_local_issuer_certificate" in line, line
    else:  # a machine without ca-certificates: the cluster is held back, and apply says why
        assert "the system CA bundle is missing" in out.stderr, out.stderr


def test_mutual_origination_presents_the_credential(mesh: Mesh) -> None:
    rc, status, body = _curl(mesh, "http://secure.example.org/account")
    assert (rc, status) == (0, "200"), body
    seen = json.loads(body)
    assert seen["sni"] == "secure.example.org"
    assert seen["client_cert"]["subject"] == {"commonName": "client.app.example"}
    assert seen["client_cert"]["issuer"] == {"commonName": "Outside World Root CA"}


def test_missing_client_certificate_is_refused_by_the_server(mesh: Mesh) -> None:
    _rc, status, body = _curl(mesh, "http://nocert.example/")
    assert status == "503", body
    failures = [e for e in _server_events(mesh, "secure") if e["event"] == "handshake_failed"]
    assert failures and "CERTIFICATE" in failures[-1]["reason"].upper()


def _file_origination(host: str, cert: str) -> list[dict[str, Any]]:
    """MUTUAL from files in the sidecar, without a workloadSelector (Istio needs none for
    paths); the server behind `host` is secure.example.org's."""
    return _origination(host, {
        "mode": "MUTUAL", "clientCertificate": f"/etc/client-certs/{cert}",
        "privateKey": "/etc/client-certs/tls.key", "caCertificates": "/etc/client-certs/ca.crt",
        "sni": "secure.example.org"}, selector=False)


def test_mutual_origination_from_files_mounted_into_the_sidecar(mesh: Mesh) -> None:
    out = mesh.sailctl("apply", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": _file_origination("filecert.example",
                                                                        "tls.crt")}))
    _rc, status, body = _wait_for(mesh, "http://filecert.example/files", "200")
    assert status == "200", body
    seen = json.loads(body)
    assert seen["sni"] == "secure.example.org" and seen["path"] == "/files"
    assert seen["client_cert"]["subject"] == {"commonName": "client.app.example"}
    # The gateways see this DestinationRule too but have no such files: each keeps the rest
    # of its configuration (no rejected update), and apply says which proxy lacks what.
    assert "has not applied" not in out.stderr, out.stderr
    for gateway in ("istio-ingressgateway", "istio-egressgateway"):
        (line,) = [line for line in out.stderr.splitlines() if gateway in line]
        assert ("cannot read /etc/client-certs/ca.crt, /etc/client-certs/tls.crt, "
                "/etc/client-certs/tls.key (no such file in the proxy's filesystem)") in line
        assert "a workloadSelector limits" in line, line
    assert "sleep" not in out.stderr, out.stderr


def test_origination_file_missing_in_the_sidecar_fails_closed_with_the_reason(mesh: Mesh) -> None:
    out = mesh.sailctl("apply", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": _file_origination("missingfile.example",
                                                                        "nope.crt")}))
    sidecar = next(line for line in out.stderr.splitlines() if "Pod app/sleep-" in line)
    assert "spec.trafficPolicy.tls.clientCertificate" in sidecar, sidecar
    assert ("cannot read /etc/client-certs/nope.crt (no file nope.crt in the volume mounted at "
            "/etc/client-certs (it has: ca.crt, tls.crt, tls.key))") in sidecar, sidecar
    assert "has not applied" not in out.stderr, out.stderr
    _rc, status, body = _curl(mesh, "http://missingfile.example/")
    assert status == "503", body
    # Everything else this sidecar serves still works.
    assert _curl(mesh, "http://wikipedia.org/")[1] == "200"


def test_insecure_skip_verify_works_and_apply_warns(mesh: Mesh) -> None:
    docs = _origination("insecure.example", {"mode": "SIMPLE", "insecureSkipVerify": True})
    out = mesh.sailctl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                             "items": docs}))
    assert "insecureSkipVerify" in out.stdout + out.stderr
    assert "not verified" in out.stdout + out.stderr
    _rc, status, body = _wait_for(mesh, "http://insecure.example/", "200")
    assert status == "200", body
    assert json.loads(body)["sni"] == "insecure.example"


def test_https_to_an_https_port_passes_through(mesh: Mesh) -> None:
    rc, status, body = _curl(mesh, "https://wikipedia.org/direct", "--cacert",
                             "/etc/external-ca/ca.crt")
    assert (rc, status) == (0, "200"), body
    seen = json.loads(body)
    # The application's own TLS reached the server: curl's SNI and ALPN, no proxy cert.
    assert seen["sni"] == "wikipedia.org" and seen["path"] == "/direct"
    assert seen["client_cert"] is None


def test_allow_any_passes_unknown_hosts_through(mesh: Mesh) -> None:
    rc, status, body = _curl(mesh, "http://unlisted.example/open")
    assert (rc, status) == (0, "200"), body
    assert json.loads(body)["tls"] is False


# --- egress gateway, REGISTRY_ONLY --------------------------------------------------------------


def test_egress_gateway_originates_tls(mesh: Mesh) -> None:
    rc, status, body = _wait_for(mesh, "http://edition.cnn.com/politics", "200")
    assert (rc, status) == (0, "200"), body
    seen = json.loads(body)
    gateway = _pod(mesh, "istio-system", "istio-egressgateway")
    assert seen["peer"] == gateway["ip"]  # it came from the egress gateway, not the pod
    assert seen["sni"] == "edition.cnn.com" and seen["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert seen["path"] == "/politics"
    assert {k.lower(): v for k, v in seen["headers"].items()}["host"] == "edition.cnn.com"


def test_tls_check_follows_the_route_to_the_egress_gateway(mesh: Mesh) -> None:
    """`x tls-check` on Istio's egress task: the hop it judges is the one traffic takes
    (sidecar → gateway subset over mesh mTLS), and the live client config agrees."""
    report = json.loads(mesh.sailctl("-n", "app", "x", "tls-check", "deploy/sleep",
                                     "edition.cnn.com:80", "-o", "json").stdout)
    assert report["verdict"] == "works", report
    assert report["destination"]["subset"] == "cnn" and report["route"], report
    assert report["client"]["mode"] == "ISTIO_MUTUAL" and report["client"]["sni"] == (
        "edition.cnn.com")
    assert report["live"]["client"]["agrees"] is True, report["live"]
    [server] = report["servers"]
    assert "sailctl x tls-check egress edition.cnn.com:443" in server["next_hop"]
    onward = json.loads(mesh.sailctl("-n", "app", "x", "tls-check", "egress",
                                     "edition.cnn.com:443", "-o", "json").stdout)
    assert onward["verdict"] == "works" and onward["client"]["mode"] == "SIMPLE", onward
    assert onward["live"]["client"]["agrees"] is True, onward["live"]


def test_egress_gateway_originates_mutual_tls(mesh: Mesh) -> None:
    rc, status, body = _wait_for(mesh, "http://gw-mtls.example/orders", "200")
    assert (rc, status) == (0, "200"), body
    seen = json.loads(body)
    assert seen["peer"] == _pod(mesh, "istio-system", "istio-egressgateway")["ip"]
    assert seen["sni"] == "secure.example.org" and seen["path"] == "/orders"
    # The gateway's credential, read from its own namespace, reached the server.
    assert seen["client_cert"]["subject"] == {"commonName": "client.app.example"}


def test_egress_gateway_passes_the_apps_own_tls_through(mesh: Mesh) -> None:
    rc, status, body = _curl(mesh, "https://api.example.net/v1/items", "--cacert",
                             "/etc/external-ca/ca.crt")
    assert (rc, status) == (0, "200"), body
    seen = json.loads(body)
    # The app's TLS reached the server unopened (its SNI, no proxy certificate), by way of
    # the egress gateway rather than straight from the pod.
    assert seen["server"] == "api" and seen["sni"] == "api.example.net"
    assert seen["client_cert"] is None and seen["path"] == "/v1/items"
    assert seen["peer"] == _pod(mesh, "istio-system", "istio-egressgateway")["ip"]


def test_a_tcp_route_bound_to_mesh_redirects_the_connection(mesh: Mesh) -> None:
    def entry(host: str) -> dict[str, Any]:
        return {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
                "metadata": {"name": host.replace(".", "-"), "namespace": "app"},
                "spec": {"hosts": [host], "resolution": "DNS", "location": "MESH_EXTERNAL",
                         "ports": [{"number": 8080, "name": "tcp", "protocol": "TCP",
                                    "targetPort": 80}]}}
    docs = [entry("tcp-a.example"), entry("tcp-b.example")]
    mesh.sailctl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                       "items": docs}))
    rc, status, body = _wait_for(mesh, "http://tcp-a.example:8080/", "200")
    assert json.loads(body)["server"] == "wikipedia", body  # tcp-a's own server
    route = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
             "metadata": {"name": "tcp-a", "namespace": "app"},
             "spec": {"hosts": ["tcp-a.example"], "tcp": [{
                 "match": [{"port": 8080}],
                 "route": [{"destination": {"host": "tcp-b.example",
                                            "port": {"number": 8080}}}]}]}}
    mesh.sailctl("apply", "-f", "-", input=json.dumps(route))
    deadline = time.monotonic() + 10
    while True:
        rc, status, body = _curl(mesh, "http://tcp-a.example:8080/")
        if (status == "200" and json.loads(body)["server"] == "cnn") or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert (rc, status) == (0, "200"), body
    seen = json.loads(body)
    assert seen["server"] == "cnn" and seen["tls"] is False  # the bytes went where routed
    assert {k.lower(): v for k, v in seen["headers"].items()}["host"] == "tcp-a.example:8080"


def test_a_service_entry_address_range_is_matched_by_destination_prefix(mesh: Mesh) -> None:
    # An unallocated part of sailmesh's own VIP range: covered by the unreachable safety
    # route, so nothing could leave the machine even if the sidecar did not take it.
    wikipedia = json.loads(mesh.sailctl("status", "-o", "json").stdout)["vips"][
        "external/wikipedia"]
    fleet = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
             "metadata": {"name": "fleet", "namespace": "app"},
             "spec": {"hosts": ["fleet.internal.example"], "addresses": ["10.96.250.0/24"],
                      "location": "MESH_EXTERNAL", "resolution": "STATIC",
                      "endpoints": [{"address": wikipedia}],
                      "ports": [{"number": 8081, "name": "tcp", "protocol": "TCP",
                                 "targetPort": 80}]}}
    mesh.sailctl("apply", "-f", "-", input=json.dumps(fleet))
    rc, status, body = _wait_for(mesh, "http://10.96.250.7:8081/any", "200")
    assert (rc, status) == (0, "200"), body
    seen = json.loads(body)
    assert seen["server"] == "wikipedia" and seen["path"] == "/any"
    assert {k.lower(): v for k, v in seen["headers"].items()}["host"] == "10.96.250.7:8081"
    # Outside the range nothing matches: it passes through to an address nobody has.
    rc, status, _ = _curl(mesh, "http://10.96.251.7:8081/", "-m", "3")
    assert status == "000" and rc != 0


def test_registry_only_refuses_unknown_hosts_but_not_the_gateway(mesh: Mesh) -> None:
    mesh.sailctl("apply", "-f", "-", input=json.dumps(_mesh_config("REGISTRY_ONLY")))
    rc, status, body = _wait_for(mesh, "http://unlisted.example/", "502")
    assert status == "502", body
    rc, status, body = _curl(mesh, "https://unlisted.example/", "-k")
    assert rc != 0 and status == "000", body
    rc, status, body = _curl(mesh, "http://edition.cnn.com/")
    assert status == "200", body
    assert json.loads(body)["peer"] == _pod(mesh, "istio-system", "istio-egressgateway")["ip"]
    rc, status, body = _curl(mesh, "http://wikipedia.org/")
    assert status == "200", body
    rc, status, body = _curl(mesh, "https://api.example.net/", "--cacert",
                             "/etc/external-ca/ca.crt")
    assert status == "200", body
