"""Mesh, egress and Istio-equivalent analyzers (SM0117 on), each on a minimal failing and a
minimal passing manifest set: exact code, exact resources, a fragment of the text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sailmesh.analysis.catalogue import BY_CODE
from tests.analysis.manifests import (
    BASE,
    MESH,
    SIMPLE,
    deployment,
    dest_rule,
    gateway,
    namespace,
    peer_auth,
    secret,
    server,
    service,
    service_entry,
    tls_secret,
    vs,
)
from tests.analysis.test_analyzers import CUSTOM_GW, NOW, Raw, base_with, check_case, run

HTTPBIN = "httpbin.test.svc.cluster.local"
DR = "DestinationRule test/httpbin"
STRICT = peer_auth("default")
HTTPS_SE = service_entry("api", ["api.example.com"],
                         [{"number": 443, "name": "https", "protocol": "HTTPS"}])
ORIGINATE_SE = service_entry("api", ["api.example.com"],
                             [{"number": 80, "name": "http", "protocol": "HTTP",
                               "targetPort": 443}])
CA_FILE = "/etc/ssl/certs/ca-certificates.crt"
ALIAS_VS = {**vs("alias", ["api.internal.example"], [], http_to="api.example.com")}
ALIAS_VS["spec"]["http"][0]["route"][0]["destination"]["port"] = {"number": 80}
EXPIRES = datetime(2124, 1, 1, tzinfo=UTC)


TWO_PORTS = ((8000, 8080, "http"), (9000, 9090, "http-admin"))
PORTED_VS = vs("two", ["two"], [], http_to="two")
PORTED_VS["spec"]["http"][0]["route"][0]["destination"]["port"] = {"number": 9000}
SUBSET_ROUTING = (  # a mesh VirtualService routes httpbin by subset
    {**vs("by-subset", ["httpbin"], [], http_to="httpbin")},
    {**dest_rule("httpbin", "httpbin")})
SUBSET_ROUTING[1]["spec"]["subsets"] = [{"name": "v1", "labels": {"version": "v1"}}]
SUBSET_ROUTING[0]["spec"]["http"][0]["route"][0]["destination"]["subset"] = "v1"
GATEWAY_SUBSET_VS = vs("httpbin", ["httpbin.example.com"], ["gw"])
GATEWAY_SUBSET_VS["spec"]["http"][0]["route"][0]["destination"]["subset"] = "v1"


def mesh(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    """MESH with documents of the same kind/name replaced, others added."""
    new = {(d["kind"], d["metadata"]["name"]): d for d in extra}
    out = [new.pop((d["kind"], d["metadata"]["name"]), d) for d in MESH]
    return out + list(new.values())


def _egress_task(subset_tls: bool) -> list[dict[str, Any]]:
    """Istio's egress-gateway TLS origination task in namespace test; without `subset_tls`
    the gateway's subset has no ISTIO_MUTUAL, so auto mTLS sends the gateway plaintext."""
    from tests.e2e.test_egress import _egress_gateway
    docs = [{**d, "metadata": {**d["metadata"], "namespace": "test"}} for d in _egress_gateway(
        "cnn", "edition.cnn.com", "istio-egressgateway",
        {"mode": "SIMPLE", "caCertificates": "/etc/ssl/certs/ca-certificates.crt"})]
    if not subset_tls:
        for d in docs:
            if d["metadata"]["name"] == "egressgateway-for-cnn":
                d["spec"] = {**d["spec"], "subsets": [{"name": "cnn"}]}
    return mesh(*docs)


# (id, manifests, code, resources the code must name (empty: must not fire), text, now)
CASES: list[tuple[str, list[dict[str, Any]], str, list[str], str, datetime]] = [
    ("disable-to-strict", mesh(STRICT, dest_rule("httpbin", "httpbin", mode="DISABLE")),
     "SM0117", [DR], "Deployment test/httpbin accepts only mesh mTLS on container port 8080 "
     "(PeerAuthentication test/default sets STRICT)", NOW),
    ("istio-mutual-to-strict", mesh(STRICT, dest_rule("httpbin", "httpbin", mode="ISTIO_MUTUAL")),
     "SM0117", [], "", NOW),
    ("disable-to-permissive", mesh(dest_rule("httpbin", "httpbin", mode="DISABLE")),
     "SM0117", [], "", NOW),
    ("istio-mutual-no-sidecar",
     mesh(deployment("httpbin", inject=False), dest_rule("httpbin", "httpbin",
                                                          mode="ISTIO_MUTUAL")),
     "SM0118", [DR], "Deployment test/httpbin has no sidecar", NOW),
    ("istio-mutual-no-sidecar-namespace",
     mesh(namespace("test", injected=False), dest_rule("httpbin", "httpbin",
                                                       mode="ISTIO_MUTUAL"),
          namespace("client"), deployment("sleep2", ns="client")),
     "SM0118", [DR], "clients in namespace client, istio-system, test get", NOW),
    ("istio-mutual-with-sidecar", mesh(dest_rule("httpbin", "httpbin", mode="ISTIO_MUTUAL")),
     "SM0118", [], "", NOW),
    ("auto-mtls-no-sidecar", mesh(deployment("httpbin", inject=False)), "SM0118", [], "", NOW),
    ("dr-in-empty-namespace",
     mesh(namespace("other"), dest_rule("httpbin", HTTPBIN, ns="other", mode="ISTIO_MUTUAL")),
     "SM0119", ["DestinationRule other/httpbin"], "no workload runs in other", NOW),
    ("dr-shadowed-same-namespace",
     mesh(dest_rule("a-first", "httpbin", mode="ISTIO_MUTUAL"),
          dest_rule("b-second", "httpbin", mode="DISABLE")),
     "SM0119", ["DestinationRule test/b-second"],
     "DestinationRule test/a-first in the same namespace wins", NOW),
    # Istio merges rules of one namespace for the same host: a later one adding a subset
    # applies (through the first), so it is not reported.
    ("dr-merged-same-namespace",
     mesh(dest_rule("a-first", "httpbin", mode="ISTIO_MUTUAL"),
          {**dest_rule("b-second", "httpbin"),
           "spec": {"host": "httpbin", "subsets": [{"name": "v1", "labels": {"v": "1"}}]}}),
     "SM0119", [], "", NOW),
    ("dr-in-service-namespace", mesh(dest_rule("httpbin", "httpbin", mode="ISTIO_MUTUAL")),
     "SM0119", [], "", NOW),
    ("istio-mutual-to-disable",
     mesh(peer_auth("httpbin", mode="DISABLE", selector={"app": "httpbin"}),
          dest_rule("httpbin", "httpbin", mode="ISTIO_MUTUAL")),
     "SM0120", [DR], "(PeerAuthentication test/httpbin sets DISABLE)", NOW),
    ("auto-mtls-to-disable", mesh(peer_auth("httpbin", mode="DISABLE",
                                            selector={"app": "httpbin"})),
     "SM0120", [], "", NOW),
    ("port-level-service-port",
     mesh(peer_auth("httpbin", selector={"app": "httpbin"}, ports={8000: "DISABLE"})),
     "SM0121", ["PeerAuthentication test/httpbin"],
     "Service test/httpbin, which sends it to container port 8080", NOW),
    ("port-level-unknown-port",
     mesh(peer_auth("httpbin", selector={"app": "httpbin"}, ports={9999: "DISABLE"})),
     "SM0121", ["PeerAuthentication test/httpbin"], "container ports: 8080", NOW),
    ("port-level-container-port",
     mesh(peer_auth("httpbin", selector={"app": "httpbin"}, ports={8080: "DISABLE"})),
     "SM0121", [], "", NOW),
    ("port-level-without-selector",
     mesh(Raw(peer_auth("default", ports={8080: "DISABLE"}))),
     "SM0122", ["PeerAuthentication test/default"], "without a workload selector", NOW),
    ("port-level-with-selector",
     mesh(peer_auth("httpbin", selector={"app": "httpbin"}, ports={8080: "DISABLE"})),
     "SM0122", [], "", NOW),
    ("https-port-declared-http",
     [namespace("test"), service_entry("api", ["api.example.com"],
                                       [{"number": 443, "name": "http", "protocol": "HTTP"}])],
     "SM0123", ["ServiceEntry test/api"], "is declared HTTP", NOW),
    ("https-port-declared-https", [namespace("test"), HTTPS_SE], "SM0123", [], "", NOW),
    ("double-tls", [namespace("test"), HTTPS_SE,
                    dest_rule("api", "api.example.com", mode="SIMPLE", caCertificates=CA_FILE)],
     "SM0124", ["DestinationRule test/api"], "carries the application's own TLS", NOW),
    ("origination-http-port", [namespace("test"), ORIGINATE_SE,
                               dest_rule("api", "api.example.com", mode="SIMPLE",
                                         caCertificates=CA_FILE)],
     "SM0124", [], "", NOW),
    ("origination-without-sni",
     [namespace("test"), ORIGINATE_SE, ALIAS_VS,
      dest_rule("api", "api.example.com", mode="SIMPLE", caCertificates=CA_FILE)],
     "SM0125", ["DestinationRule test/api"], "SNI is taken from the Host header", NOW),
    ("origination-with-sni",
     [namespace("test"), ORIGINATE_SE, ALIAS_VS,
      dest_rule("api", "api.example.com", mode="SIMPLE", caCertificates=CA_FILE,
                sni="api.example.com")],
     "SM0125", [], "", NOW),
    ("dr-credential-missing",
     [namespace("test"), ORIGINATE_SE, tls_secret("api-cred", "test"),
      dest_rule("api", "api.example.com", mode="SIMPLE", credentialName="api-cred")],
     "SM0126", ["DestinationRule test/api"],
     "Secret test/api-cred exists in the rule's namespace", NOW),
    ("dr-credential-without-ca",
     [namespace("test"), ORIGINATE_SE, tls_secret("api-cred"),
      dest_rule("api", "api.example.com", mode="SIMPLE", credentialName="api-cred")],
     "SM0126", ["DestinationRule test/api"], "holds a CA", NOW),
    ("dr-credential-sound",
     [namespace("test"), ORIGINATE_SE, secret("api-cred", **{"ca.crt": "x"}),
      dest_rule("api", "api.example.com", mode="SIMPLE", credentialName="api-cred")],
     "SM0126", [], "", NOW),
    ("entries-share-port",
     [namespace("test"), HTTPS_SE,
      service_entry("web", ["web.example.com"],
                    [{"number": 443, "name": "http", "protocol": "HTTP"}])],
     "SM0127", ["ServiceEntry test/api", "ServiceEntry test/web"], "different protocols", NOW),
    ("entries-with-addresses",
     [namespace("test"), HTTPS_SE,
      service_entry("web", ["web.example.com"],
                    [{"number": 443, "name": "http", "protocol": "HTTP"}],
                    addresses=["192.0.2.10"])],
     "SM0127", [], "", NOW),
    ("certificate-expires-soon", BASE, "SM0128", ["Gateway test/gw"], "in 9 days",
     datetime(2123, 12, 22, 12, tzinfo=UTC)),
    ("certificate-far-from-expiry", BASE, "SM0128", [], "", NOW),
    ("no-ca", [namespace("test"), ORIGINATE_SE, dest_rule("api", "api.example.com",
                                                          mode="SIMPLE")],
     "SM0129", ["DestinationRule test/api"], "no caCertificates are set", NOW),
    ("with-ca", [namespace("test"), ORIGINATE_SE,
                 dest_rule("api", "api.example.com", mode="SIMPLE", caCertificates=CA_FILE)],
     "SM0129", [], "", NOW),
    ("no-ca-port-level", [namespace("test"), ORIGINATE_SE,
                          dest_rule("api", "api.example.com", mode="SIMPLE", port=80)],
     "SM0130", ["DestinationRule test/api"], "at port number:80", NOW),
    ("with-ca-port-level", [namespace("test"), ORIGINATE_SE,
                            dest_rule("api", "api.example.com", mode="SIMPLE", port=80,
                                      caCertificates=CA_FILE)],
     "SM0130", [], "", NOW),
    ("two-mesh-vs-one-host",
     mesh(vs("a", ["httpbin"], []), vs("b", [HTTPBIN], ["mesh"])),
     "SM0131", ["VirtualService test/a", "VirtualService test/b"],
     f"define the same host {HTTPBIN}", NOW),
    ("one-mesh-vs-and-a-gateway-vs",
     mesh(vs("a", ["httpbin"], []), vs("b", [HTTPBIN], ["gw"])), "SM0131", [], "", NOW),
    ("entries-conflict",
     [namespace("test"), HTTPS_SE,
      service_entry("api-http", ["api.example.com"],
                    [{"number": 443, "name": "http", "protocol": "HTTP"}])],
     "SM0132", ["ServiceEntry test/api", "ServiceEntry test/api-http"],
     "conflicting protocols (HTTP, HTTPS)", NOW),
    ("entries-agree",
     [namespace("test"), HTTPS_SE,
      service_entry("api-2", ["api.example.com"],
                    [{"number": 443, "name": "https", "protocol": "HTTPS"}])],
     "SM0132", [], "", NOW),
    ("vs-host-not-in-gateway",
     base_with(gateway("gw", server(hosts=["other.example.com"], mode="SIMPLE",
                                    credentialName="httpbin-cred"))),
     "SM0133", ["VirtualService test/httpbin"], "host [httpbin.example.com]", NOW),
    ("vs-host-in-gateway", BASE, "SM0133", [], "", NOW),
    ("gateway-port-not-on-service",
     base_with(gateway("gw", SIMPLE, server(port=8004, protocol="HTTP"))),
     "SM0134", ["Gateway test/gw"], "(port 8004)", NOW),
    ("gateway-target-port", base_with(gateway("gw", server(port=8443, hosts=["*"], mode="SIMPLE",
                                                           credentialName="httpbin-cred"))),
     "SM0134", [], "", NOW),
    ("custom-gateway-without-service",
     base_with(CUSTOM_GW, gateway("gw", SIMPLE, selector={"app": "my-gw"})),
     "SM0134", ["Gateway test/gw"], "no Service selects them", NOW),
    ("custom-gateway-with-service",
     base_with(CUSTOM_GW, gateway("gw", SIMPLE, selector={"app": "my-gw"}),
               service("my-gw", ports=((443, 8443, "https"),))),
     "SM0134", [], "", NOW),
    ("mesh-route-to-gateway-without-istio-mutual", _egress_task(subset_tls=False),
     "SM0135", ["VirtualService test/direct-cnn-through-egress-gateway"],
     "cannot take it: no Gateway server on listener port 8080 matches a connection without "
     "SNI", NOW),
    ("mesh-route-to-gateway-istio-mutual", _egress_task(subset_tls=True), "SM0135", [], "",
     NOW),
    ("schema-invalid-server", base_with(gateway("gw", server(hosts=["*"]))), "SM0150",
     ["Gateway test/gw"], "server must have TLS settings for HTTPS/TLS protocols", NOW),
    ("schema-valid", BASE, "SM0150", [], "", NOW),
    ("port-required", mesh(service("two", ports=TWO_PORTS), vs("two", ["two"], [],
                                                                  http_to="two")),
     "SM0151", ["VirtualService test/two"], "has ports 8000, 9000", NOW),
    ("port-given", mesh(service("two", ports=TWO_PORTS), PORTED_VS), "SM0151", [], "", NOW),
    ("ingress-route-without-subset", base_with(*SUBSET_ROUTING),
     "SM0152", ["VirtualService test/httpbin"], "VirtualService test/by-subset", NOW),
    ("ingress-route-with-subset", base_with(*SUBSET_ROUTING, GATEWAY_SUBSET_VS), "SM0152", [],
     "", NOW),
    ("internal-gateway-reference",
     base_with(vs("httpbin", ["httpbin.example.com"],
                  ["istio-system/gw~istio-autogenerated-k8s-gateway~https"])),
     "SM0153", ["VirtualService test/httpbin"], "Kubernetes Gateway API", NOW),
    ("gateway-reference", BASE, "SM0153", [], "", NOW),
    ("subset-not-defined", base_with(SUBSET_ROUTING[0]), "SM0154",
     ["VirtualService test/by-subset"], "subset v1 of httpbin is defined by no", NOW),
    ("subset-defined", base_with(*SUBSET_ROUTING), "SM0154", [], "", NOW),
]


@pytest.mark.parametrize(("manifests", "code", "refs", "fragment", "now"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_analyzer(manifests: list[dict[str, Any]], code: str, refs: list[str], fragment: str,
                  now: datetime) -> None:
    for m in check_case(manifests, code, refs, fragment, now):
        istio = BY_CODE[code].istio_code
        assert m.line().startswith(f"{m.level} [{istio or code}] ({m.ref}"), m.line()
        assert m.line().endswith(f" [{code}]") == bool(istio)


def test_every_new_code_has_a_firing_and_a_quiet_case() -> None:
    codes = {c for c in BY_CODE if "SM0117" <= c < "SM0160"}  # Kiali's: test_kiali_checks
    assert {c[2] for c in CASES if c[3]} == codes
    assert {c[2] for c in CASES if not c[3]} == codes


def test_sound_mesh_is_clean() -> None:
    assert [m.line() for m in run(MESH)] == []
    strict = [m.line() for m in run(mesh(STRICT, dest_rule("httpbin", "httpbin",
                                                           mode="ISTIO_MUTUAL")))]
    assert strict == []


def test_expiry_boundary() -> None:
    """Exactly 30 days before expiry is not yet "within 30 days"."""
    from datetime import timedelta
    at = EXPIRES - timedelta(days=30)
    assert not [m for m in run(BASE, at) if m.code == "SM0128"]
    assert [m for m in run(BASE, at + timedelta(seconds=1)) if m.code == "SM0128"]


def test_every_code_is_documented_with_its_istio_code_and_level() -> None:
    from pathlib import Path
    doc = (Path(__file__).resolve().parents[2] / "docs" / "analyze-codes.md").read_text()
    rows = {cells[1]: cells for line in doc.splitlines() if line.startswith("| SM")
            for cells in [[c.strip() for c in line.split("|")]]}
    assert set(rows) == set(BY_CODE)
    for code, a in BY_CODE.items():
        assert rows[code][2] == (a.istio_code or ""), code
        assert rows[code][3] == a.level and rows[code][4] == a.pitfall, code
