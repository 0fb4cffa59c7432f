"""Analyzers of OpenShift Routes in front of the Istio ingress gateway (SM0145) and of
gateway certificate files from Secret volumes (SM0146), each firing and quiet, plus the
router-hop explanation they share with `x tls-check route/NAME`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from sailmesh.router.pki import ServiceCA
from tests.analysis.manifests import BASE, gateway, pem, secret, server
from tests.analysis.test_analyzers import base_with, check_case

ROUTER_CODES = {"SM0145", "SM0146", "SM0147"}
from tests.analysis.test_analyzers import NOW  # noqa: E402


def _route(termination: str = "reencrypt", dest_ca: str | None = "example.com.crt",
           port: str = "https", host: str | None = None) -> dict[str, Any]:
    tls: dict[str, Any] = {"termination": termination}
    if dest_ca:
        tls["destinationCACertificate"] = pem(dest_ca)
    spec: dict[str, Any] = {"to": {"kind": "Service", "name": "istio-ingressgateway"},
                            "port": {"targetPort": port}, "tls": tls}
    if host:
        spec["host"] = host
    return {"apiVersion": "route.openshift.io/v1", "kind": "Route",
            "metadata": {"name": "secure", "namespace": "istio-system"}, "spec": spec}


SPECIFIC = gateway("gw", server(hosts=["httpbin.example.com"], mode="SIMPLE",
                                credentialName="httpbin-cred"))
FILES = gateway("gw", server(hosts=["*"], mode="SIMPLE",
                             serverCertificate="/etc/istio/ingressgateway-certs/tls.crt",
                             privateKey="/etc/istio/ingressgateway-certs/tls.key"))
FILE_SECRET = secret("istio-ingressgateway-certs", **{
    "tls.crt": pem("httpbin.example.com.crt"), "tls.key": pem("httpbin.example.com.key")})
ROUTE = "Route istio-system/secure"


def _service_ca_secret(*names: str) -> dict[str, Any]:
    """istio-ingressgateway-certs as the service CA issues it (certificate, then CA)."""
    with tempfile.TemporaryDirectory() as pki:
        issued = ServiceCA(Path(pki), NOW).issue(names, "u1", NOW)
    return secret("istio-ingressgateway-certs", **{"tls.crt": issued.chain_pem.decode(),
                                                   "tls.key": issued.key_pem.decode()})


SERVICE_CA_OK = _service_ca_secret("istio-ingressgateway.istio-system.svc",
                                   "istio-ingressgateway.istio-system.svc.cluster.local")
SERVICE_CA_OTHER = _service_ca_secret("other.istio-system.svc")

def _annotated(annotations: dict[str, str]) -> dict[str, Any]:
    """An edge Route with router annotations (names after haproxy.router.openshift.io/)."""
    route = _route("edge", dest_ca=None, port="http")
    route["metadata"]["annotations"] = {f"haproxy.router.openshift.io/{k}": v
                                        for k, v in annotations.items()}
    return route


CASES = [
    ("annotations-as-the-router-reads-them",
     [*BASE, _annotated({"balance": "leastconn", "timeout": "2m", "timeout-tunnel": "1h",
                         "ip_allowlist": "10.0.0.0/8 ::1", "hsts_header": "max-age=31536000",
                         "rewrite-target": "/"})], "SM0147", [], ""),
    ("allowlist-with-a-leading-space",
     [*BASE, _annotated({"ip_allowlist": " 10.0.0.0/8"})], "SM0147", [ROUTE],
     "the router ignores it and every client is allowed"),
    ("allowlist-with-bad-entries",
     [*BASE, _annotated({"ip_whitelist": "10.0.0.0/8 10.0.0.300"})], "SM0147", [ROUTE],
     "10.0.0.300: not addresses or CIDRs, dropped"),
    ("timeout-not-a-time", [*BASE, _annotated({"timeout": "5 s"})], "SM0147", [ROUTE],
     "the router's default timeout applies"),
    ("timeout-clipped", [*BASE, _annotated({"timeout-tunnel": "99999999999s"})], "SM0147", [ROUTE],
     "clipped to 2147483647ms"),
    ("balance-unknown", [*BASE, _annotated({"balance": "fastest"})], "SM0147", [ROUTE],
     "is not one of roundrobin, leastconn, source, random"),
    ("hsts-malformed", [*BASE, _annotated({"hsts_header": "max-age=forever"})], "SM0147",
     [ROUTE], "no Strict-Transport-Security is sent"),

    ("reencrypt-specific-hosts", base_with(SPECIFIC, _route()), "SM0145", [ROUTE],
     "OpenShift's router sends no SNI"),
    ("reencrypt-catch-all", [*BASE, _route()], "SM0145", [], ""),
    ("reencrypt-without-destination-ca", [*BASE, _route(dest_ca=None)], "SM0145", [ROUTE],
     "trusts only the service CA"),
    ("reencrypt-service-ca-issued", base_with(FILES, SERVICE_CA_OK, _route(dest_ca=None)),
     "SM0145", [], ""),
    ("reencrypt-service-ca-other-name", base_with(FILES, SERVICE_CA_OTHER, _route(dest_ca=None)),
     "SM0145", [ROUTE], "not istio-ingressgateway.istio-system.svc"),
    ("reencrypt-wrong-destination-ca", [*BASE, _route(dest_ca="client.example.com.crt")],
     "SM0145", [ROUTE], "destinationCACertificate does not contain"),
    ("edge-to-tls-port", [*BASE, _route("edge", dest_ca=None)], "SM0145", [ROUTE],
     "plain HTTP to a TLS server"),
    ("passthrough-matching-sni",
     base_with(SPECIFIC, _route("passthrough", dest_ca=None, host="httpbin.example.com")),
     "SM0145", [], ""),
    ("file-certificate-secret-missing", base_with(FILES), "SM0146", ["Gateway test/gw"],
     "Secret istio-system/istio-ingressgateway-certs, which does not exist"),
    ("file-certificate-secret-present", base_with(FILES, FILE_SECRET), "SM0146", [], ""),
    ("file-certificate-reencrypt-works", base_with(FILES, FILE_SECRET, _route()), "SM0145", [],
     ""),
]


@pytest.mark.parametrize(("manifests", "code", "refs", "fragment"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_router_analyzer(manifests: list[dict[str, Any]], code: str, refs: list[str],
                         fragment: str) -> None:
    check_case(manifests, code, refs, fragment, NOW)


def test_every_router_code_has_a_firing_and_a_quiet_case() -> None:
    assert {c[2] for c in CASES if c[3]} == ROUTER_CODES == {c[2] for c in CASES if not c[3]}
