"""OpenShift Routes: the API server's validation (cases from openshift/api's route CRD
tests), the router's admission and status, endpoint resolution, and the HAProxy
configuration — checked by HAProxy itself (`haproxy -c`)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sailmesh.model.route_admission import admit
from sailmesh.model.route_backends import PodEndpoint, service_units
from sailmesh.resources.core import Service
from sailmesh.resources.kinds import KINDS
from sailmesh.resources.openshift import Route
from sailmesh.resources.validation import validate
from sailmesh.router.haproxy import RouterSettings, render
from sailmesh.router.pki import ensure_pki

DOMAIN = "apps.example.test"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _route(spec: dict[str, Any], name: str = "r", namespace: str = "ns",
           created: str = "2026-01-01T00:00:00Z") -> Route:
    doc = {"apiVersion": "route.openshift.io/v1", "kind": "Route",
           "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
           "spec": {"to": {"kind": "Service", "name": "foo"}, **spec}}
    return Route.model_validate(doc)


def _problems(spec: dict[str, Any]) -> list[str]:
    return [f"{p.field}: {p.message}" for p in validate(_route(spec))]


@pytest.mark.parametrize(("spec", "expected"), [
    ({}, None),
    ({"host": "my-app.example.com"}, None),
    ({"host": "-invalid.example.com"}, "spec.host"),
    ({"host": "invalid_host.example.com"}, "spec.host"),
    ({"path": "/api/v1", "host": "example.com"}, None),
    ({"path": "api/v1"}, "spec.path: Invalid value: \"api/v1\": path must begin with /"),
    ({"to": {"kind": "Deployment", "name": "d"}}, "spec.to.kind: Unsupported value"),
    ({"to": {"kind": "", "name": "svc"}}, None),
    ({"to": {"kind": "Service", "name": ""}}, "spec.to.name: Required value"),
    ({"alternateBackends": [{"kind": "Service", "name": f"b{i}"} for i in range(4)]},
     "spec.alternateBackends: Too many: 4: must have at most 3 items"),
    ({"tls": {"termination": "passthrough", "insecureEdgeTerminationPolicy": "Allow"}},
     "cannot have both spec.tls.termination: passthrough and "
     "spec.tls.insecureEdgeTerminationPolicy: Allow"),
    ({"tls": {"termination": "passthrough", "insecureEdgeTerminationPolicy": "Redirect"}}, None),
    ({"tls": {"termination": "passthrough"}, "path": "/x"},
     "passthrough termination does not support paths"),
    ({"tls": {"termination": "edge", "destinationCACertificate": "x"}},
     "edge termination does not support destination certificates"),
    ({"port": {"targetPort": "https"}}, None),
    ({"port": {"targetPort": 8443}}, None),
])
def test_route_validation(spec: dict[str, Any], expected: str | None) -> None:
    found = _problems(spec)
    if expected is None:
        assert found == []
    else:
        assert any(expected in f for f in found), found


@pytest.mark.parametrize("bad", [
    {"to": {"kind": "Service", "name": "foo", "weight": 257}},
    {"tls": {"termination": "invalid"}},
    {"wildcardPolicy": "Invalid"},
    {"tls": {"termination": "edge", "insecureEdgeTerminationPolicy": "Invalid"}},
])
def test_route_schema_refuses(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _route(bad)


def test_route_is_a_known_kind() -> None:
    assert KINDS["Route"] is Route
    assert _route({}).spec.to.effective_weight == 100  # openshift/api default


# --- admission ---------------------------------------------------------------------------


def _pair(cn: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(NOW).not_valid_after(NOW + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


def test_default_host_and_admitted_status() -> None:
    route = _route({}, name="istio-ingressgateway-secure", namespace="istio-system")
    adm = admit([route], DOMAIN)
    assert [a.host for a in adm.admitted] == [f"istio-ingressgateway-secure-istio-system.{DOMAIN}"]
    (ingress,) = adm.status(route, DOMAIN, "t")["ingress"]
    assert ingress["routerName"] == "default" and ingress["wildcardPolicy"] == "None"
    assert ingress["conditions"] == [{"type": "Admitted", "status": "True",
                                      "lastTransitionTime": "t"}]


def test_host_claims_oldest_wins() -> None:
    old = _route({"host": "a.example.com"}, name="old", namespace="one")
    other_ns = _route({"host": "a.example.com", "path": "/x"}, name="new", namespace="two")
    same_path = _route({"host": "a.example.com"}, name="dup", namespace="one")
    other_path = _route({"host": "a.example.com", "path": "/api"}, name="api", namespace="one")
    adm = admit([old, other_ns, same_path, other_path], DOMAIN)
    assert [a.route.name for a in adm.admitted] == ["old", "api"]
    assert adm.rejected[("two", "new")].reason == "HostAlreadyClaimed"
    assert "route old already exposes a.example.com and is older" in (
        adm.rejected[("two", "new")].message)
    assert adm.rejected[("one", "dup")].reason == "HostAlreadyClaimed"
    cond = adm.status(other_ns, DOMAIN, "t")["ingress"][0]["conditions"][0]
    assert cond["status"] == "False" and cond["reason"] == "HostAlreadyClaimed"


def test_extended_validation_of_certificates() -> None:
    cert, key = _pair("a.example.com")
    _, other_key = _pair("b.example.com")
    good = _route({"tls": {"termination": "edge", "certificate": cert, "key": key}}, name="good")
    mismatch = _route({"tls": {"termination": "edge", "certificate": cert, "key": other_key}},
                      name="mismatch")
    garbage = _route({"tls": {"termination": "reencrypt",
                              "destinationCACertificate": "not a certificate"}}, name="garbage")
    adm = admit([good, mismatch, garbage], DOMAIN)
    assert [a.route.name for a in adm.admitted] == ["good"]
    assert adm.rejected[("ns", "mismatch")].reason == "ExtendedValidationFailed"
    assert "spec.tls.key" in adm.rejected[("ns", "mismatch")].message
    assert "redacted" in adm.rejected[("ns", "garbage")].message
    assert "not a certificate" not in adm.rejected[("ns", "garbage")].message


# --- endpoints ---------------------------------------------------------------------------

GATEWAY_SVC = Service.model_validate({
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
    "spec": {"selector": {"app": "gw"}, "ports": [
        {"name": "http2", "port": 80, "targetPort": 8080},
        {"name": "https", "port": 443, "targetPort": 8443}]}})
GATEWAY_POD = PodEndpoint("istio-system", "gw-1", "10.1.0.7", {"app": "gw"})


@pytest.mark.parametrize(("target", "port"), [("https", 8443), (8443, 8443), ("http2", 8080),
                                              (None, 8080), (443, None), ("nope", None)])
def test_target_port(target: str | int | None, port: int | None) -> None:
    spec: dict[str, Any] = {"to": {"kind": "Service", "name": "istio-ingressgateway"}}
    if target is not None:
        spec["port"] = {"targetPort": target}
    route = _route(spec, namespace="istio-system")
    (unit,) = service_units(route, {("istio-system", "istio-ingressgateway"): GATEWAY_SVC},
                            [GATEWAY_POD])
    assert [s.port for s in unit.servers] == ([port] if port else [])
    assert unit.hostname == "istio-ingressgateway.istio-system.svc"


def test_weights_split_between_endpoints() -> None:
    route = _route({"to": {"kind": "Service", "name": "istio-ingressgateway", "weight": 60},
                    "alternateBackends": [{"kind": "Service", "name": "missing", "weight": 40}]},
                   namespace="istio-system")
    pods = [GATEWAY_POD, PodEndpoint("istio-system", "gw-2", "10.1.0.8", {"app": "gw"})]
    units = service_units(route, {("istio-system", "istio-ingressgateway"): GATEWAY_SVC}, pods)
    assert [s.weight for s in units[0].servers] == [30, 30]
    assert units[1].servers == ()


# --- HAProxy configuration ---------------------------------------------------------------


def _rendered(tmp_path: Path, routes: list[Route]) -> dict[str, str]:
    pki = ensure_pki(tmp_path / "pki", DOMAIN, NOW)
    adm = admit(routes, DOMAIN)
    services = {("istio-system", "istio-ingressgateway"): GATEWAY_SVC}
    units = {(a.route.namespace, a.route.name): service_units(a.route, services, [GATEWAY_POD])
             for a in adm.admitted}
    root = tmp_path / "haproxy"
    settings = RouterSettings(root=str(root), default_certificate=str(pki.default_certificate),
                              service_ca=str(pki.service_ca))
    files = render(adm.admitted, units, settings)
    for path, f in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(f.content)
    (root / "run").mkdir()
    if shutil.which("haproxy"):
        check = subprocess.run(["haproxy", "-c", "-f", str(root / "conf/haproxy.config")],
                               capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stderr
    return {p: f.content.decode() for p, f in files.items()}


def _server_line(config: str, backend: str) -> str:
    section = config.split(f"backend {backend}\n", 1)[1].split("\n\n", 1)[0]
    return next(line for line in section.splitlines() if line.strip().startswith("server "))


def test_reencrypt_sends_no_sni_and_checks_chain_only(tmp_path: Path) -> None:
    ca, _ = _pair("example.com")
    with_ca = _route({"to": {"kind": "Service", "name": "istio-ingressgateway"},
                      "port": {"targetPort": "https"},
                      "tls": {"termination": "reencrypt", "destinationCACertificate": ca}},
                     name="secure", namespace="istio-system")
    service_ca = _route({"to": {"kind": "Service", "name": "istio-ingressgateway"},
                         "port": {"targetPort": "https"}, "host": "svc-ca.example.com",
                         "tls": {"termination": "reencrypt"}},
                        name="svcca", namespace="istio-system")
    files = _rendered(tmp_path, [with_ca, service_ca])
    config = files["conf/haproxy.config"]
    line = _server_line(config, "be_secure:istio-system:secure")
    assert " 10.1.0.7:8443 " in line and " ssl " in line
    assert "verify required ca-file" in line and "router/cacerts/istio-system:secure.pem" in line
    assert "verifyhost" not in line and " sni " not in line
    line = _server_line(config, "be_secure:istio-system:svcca")
    assert "verifyhost istio-ingressgateway.istio-system.svc" in line
    assert "service-ca.crt" in line and " sni " not in line
    assert files["router/cacerts/istio-system:secure.pem"].strip() == ca.strip()
    edge_map = files["conf/os_edge_reencrypt_be.map"]
    assert "be_secure:istio-system:secure" in edge_map
    # insecure policy None: not reachable over plain HTTP.
    assert files["conf/os_http_be.map"] == ""


def test_insecure_policies_and_passthrough(tmp_path: Path) -> None:
    base = {"to": {"kind": "Service", "name": "istio-ingressgateway"}}
    routes = [
        _route({**base, "tls": {"termination": "edge", "insecureEdgeTerminationPolicy": "Allow"}},
               name="allow", namespace="istio-system"),
        _route({**base, "tls": {"termination": "edge",
                                "insecureEdgeTerminationPolicy": "Redirect"}},
               name="redirect", namespace="istio-system"),
        _route({**base, "host": "pt.example.com", "port": {"targetPort": "https"},
                "tls": {"termination": "passthrough"}}, name="pt", namespace="istio-system"),
        _route({**base, "path": "/api"}, name="plain", namespace="istio-system"),
    ]
    files = _rendered(tmp_path, routes)
    assert "be_edge_http:istio-system:allow" in files["conf/os_http_be.map"]
    assert "be_http:istio-system:plain" in files["conf/os_http_be.map"]
    assert "redirect-istio-system" in files["conf/os_route_http_redirect.map"]
    assert files["conf/os_sni_passthrough.map"] == "^pt\\.example\\.com$ 1\n"
    assert files["conf/os_tcp_be.map"] == "^pt\\.example\\.com$ be_tcp:istio-system:pt\n"
    line = _server_line(files["conf/haproxy.config"], "be_tcp:istio-system:pt")
    assert line.strip().endswith("10.1.0.7:8443 weight 100")


def test_route_certificate_goes_to_crt_list(tmp_path: Path) -> None:
    cert, key = _pair("www.example.com")
    route = _route({"host": "www.example.com", "tls": {"termination": "edge",
                                                        "certificate": cert, "key": key}})
    files = _rendered(tmp_path, [route])
    assert files["conf/cert_config.map"].endswith(" www.example.com\n")
    assert key.strip() in files["router/certs/ns:r.pem"]
