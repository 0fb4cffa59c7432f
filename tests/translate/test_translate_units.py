"""Unit tests of the gateway translation rules: hosts, route order, credentials,
diagnostics, endpoints, and request simulations over the seed's SNI gateway."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cases_io import CASES, NOW, load_case, load_resources
from envoy.config.route.v3 import route_components_pb2 as rc
from simulate import Outcome, simulate

from sailmesh.model.credentials import check_certificate
from sailmesh.model.hosts import fqdn, intersect, matches, split_server_host
from sailmesh.model.mesh import build_model
from sailmesh.model.proxy import Proxy
from sailmesh.model.snapshot import Snapshot
from sailmesh.model.workloads import Workload
from sailmesh.resources.core import Secret
from sailmesh.resources.networking import Gateway
from sailmesh.translate import ProxyConfig, translate_proxy
from sailmesh.translate.http_route import parse_duration
from sailmesh.translate.routes import sort_catch_all_last, vhost_domains

GW_POD = Workload("istio-system", "gw-0", {"istio": "ingressgateway"}, "10.88.0.2", "gw", True)
PROXY = Proxy("router", "istio-system", "gw-0", {"istio": "ingressgateway"}, "10.88.0.2")
CERTS = CASES.parent / "certs"


def _translate(yaml_text: str, proxy: Proxy = PROXY, now: datetime = NOW) -> ProxyConfig:
    model = build_model(load_resources(yaml_text), [GW_POD])
    return translate_proxy(model, proxy, now=now)


def _codes(config: ProxyConfig) -> list[str]:
    return [d.code for d in config.diagnostics]


GATEWAY = """
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata: {{name: gw, namespace: test}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
    - port: {{number: 443, name: https, protocol: HTTPS}}
      tls: {{mode: {mode}, credentialName: {credential}}}
      hosts: [httpbin.example.com]
"""


def _secret(name: str, namespace: str = "istio-system", **files: str) -> str:
    data = ", ".join(f'"{k.replace("_", ".")}": "@{v}"' for k, v in files.items())
    return (f"---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, "
            f"namespace: {namespace}}}\nstringData: {{{data}}}\n")


# --- hosts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("httpbin.example.com", "httpbin.example.com", "httpbin.example.com"),
    ("httpbin.example.com", "*.example.com", "httpbin.example.com"),
    ("*.example.com", "a.b.example.com", "a.b.example.com"),
    ("*", "httpbin.example.com", "httpbin.example.com"),
    ("*.example.com", "*.shop.example.com", "*.shop.example.com"),
    ("*.example.com", "*", "*.example.com"),
    ("httpbin.example.com", "helloworld.example.com", None),
    ("example.com", "*.example.com", None),  # a wildcard needs at least one label
    ("*.example.org", "*.example.com", None),
])
def test_host_intersection_keeps_the_more_specific_name(a: str, b: str,
                                                        expected: str | None) -> None:
    assert intersect(a, b) == expected
    assert intersect(b, a) == expected


def test_host_resolution_and_server_host_namespaces() -> None:
    assert fqdn("httpbin", "test") == "httpbin.test.svc.cluster.local"
    assert fqdn("httpbin.test.svc", "x") == "httpbin.test.svc.cluster.local"
    assert fqdn("httpbin.example.com", "test") == "httpbin.example.com"
    assert split_server_host("./a.example.com", "test") == ("test", "a.example.com")
    assert split_server_host("*/a.example.com", "test") == ("*", "a.example.com")
    assert split_server_host("a.example.com", "test") == ("*", "a.example.com")
    assert not matches("*", "a.example.com")


def test_vhost_domains_follow_istio() -> None:
    assert vhost_domains("a.example.com", 443) == ["a.example.com", "a.example.com:*"]
    assert vhost_domains("*.example.com", 443) == ["*.example.com", "*.example.com:443"]
    assert vhost_domains("*", 80) == ["*"]


# --- routes ----------------------------------------------------------------------------------


def test_catch_all_routes_move_last_keeping_order() -> None:
    def route(name: str, prefix: str, header: bool = False) -> rc.Route:
        r = rc.Route(name=name, match=rc.RouteMatch(prefix=prefix))
        if header:
            r.match.headers.add(name="x", present_match=True)
        return r

    routes = [route("a", "/"), route("b", "/x"), route("c", "/", header=True), route("d", "/")]
    assert [r.name for r in sort_catch_all_last(routes)] == ["b", "c", "a", "d"]


@pytest.mark.parametrize(("text", "seconds", "nanos"), [
    ("0s", 0, 0), ("2.5s", 2, 500_000_000), ("250ms", 0, 250_000_000), ("1m30s", 90, 0)])
def test_durations(text: str, seconds: int, nanos: int) -> None:
    d = parse_duration(text)
    assert (d.seconds, d.nanos) == (seconds, nanos)
    with pytest.raises(ValueError):
        parse_duration("5 seconds")


# --- simulation over the seed's SNI gateway ---------------------------------------------------


@pytest.fixture(scope="module")
def sni() -> ProxyConfig:
    return load_case(CASES / "sni-gateway").translate()


@pytest.mark.parametrize(("port", "sni_name", "host", "path", "expected"), [
    (8443, "httpbin.example.com", "httpbin.example.com:8443", "/status/418",
     Outcome("https.443.https-httpbin.sni-gateway.test",
             "outbound|80||httpbin.test.svc.cluster.local")),
    (8443, "helloworld.example.com", "helloworld.example.com:8443", "/hello",
     Outcome("https.443.https-helloworld.sni-gateway.test",
             "outbound|5000||helloworld.test.svc.cluster.local")),
    # The helloworld VirtualService matches only /hello exactly: anything else is a 404.
    (8443, "helloworld.example.com", "helloworld.example.com", "/hello/x",
     Outcome("https.443.https-helloworld.sni-gateway.test", status=404)),
    (8080, None, "httpbin.example.com:8080", "/status/418",
     Outcome("http.8080", "outbound|80||httpbin.test.svc.cluster.local")),
    # helloworld is not served in plaintext; an unknown SNI has no chain at all.
    (8080, None, "helloworld.example.com", "/hello", Outcome("http.8080", status=404)),
    (8443, "other.example.com", "other.example.com", "/", Outcome(error="no filter chain")),
])
def test_sni_gateway_requests(sni: ProxyConfig, port: int, sni_name: str | None, host: str,
                              path: str, expected: Outcome) -> None:
    assert simulate(sni, port, sni=sni_name, host=host, path=path) == expected


def test_host_binding_and_resource_types(sni: ProxyConfig) -> None:
    extra = sni.listeners["0.0.0.0_8443"].additional_addresses[0].address.socket_address
    assert (extra.address, extra.port_value, extra.network_namespace_filepath) == (
        "127.0.0.1", 8443, "/proc/1/ns/net")
    by_type = sni.by_type_url()
    assert set(by_type["type.googleapis.com/envoy.config.listener.v3.Listener"]) == {
        "0.0.0.0_8080", "0.0.0.0_8443"}
    assert set(by_type["type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"]
               ) == {"kubernetes://httpbin-secret", "kubernetes://helloworld-secret"}
    no_bind = load_case(CASES / "missing-secret").translate()
    assert not no_bind.listeners["0.0.0.0_8443"].additional_addresses


def test_missing_secret_keeps_other_hosts_serving() -> None:
    config = load_case(CASES / "missing-secret").translate()
    chains = config.listeners["0.0.0.0_8443"].filter_chains
    assert [list(c.filter_chain_match.server_names) for c in chains] == [["httpbin.example.com"]]
    assert "https.443.https-helloworld.sni-gateway.test" not in config.routes
    assert list(config.secrets) == ["kubernetes://httpbin-secret"]  # only referenced ones
    assert _codes(config) == ["CR0301"]


def test_passthrough_routes_by_sni_and_keeps_plaintext() -> None:
    config = load_case(CASES / "passthrough").translate()
    assert simulate(config, 8443, sni="httpbin.example.com", host="", path="/") == Outcome(
        cluster="outbound|443||nginx-service.test.svc.cluster.local")
    assert simulate(config, 8080, sni=None, host="httpbin.example.com", path="/") == Outcome(
        "http.8080", "outbound|80||nginx-service.test.svc.cluster.local")
    assert config.secrets == {}


# --- credentials -----------------------------------------------------------------------------


def test_credential_is_read_in_the_gateway_workload_namespace() -> None:
    # The Secret sits in the Gateway's namespace (test): Istio does not look there.
    text = GATEWAY.format(mode="SIMPLE", credential="httpbin-secret") + _secret(
        "httpbin-secret", "test", tls_crt="httpbin.example.com.crt",
        tls_key="httpbin.example.com.key")
    config = _translate(text)
    assert config.listeners == {}
    (diag,) = config.diagnostics
    assert (diag.severity, diag.code, diag.ref) == ("error", "CR0301", "Gateway test/gw")
    assert "Secret istio-system/httpbin-secret not found" in diag.message
    assert "gateway workload's namespace istio-system" in diag.message


def test_generic_keys_win_and_cacert_secret_is_preferred() -> None:
    text = GATEWAY.format(mode="MUTUAL", credential="cred") + _secret(
        "cred", cert="httpbin.example.com.crt", key="httpbin.example.com.key",
        tls_crt="helloworld.example.com.crt", tls_key="helloworld.example.com.key",
        ca_crt="helloworld.example.com.crt") + _secret("cred-cacert", cacert="example.com.crt")
    config = _translate(text)
    assert config.diagnostics == ()
    served = config.secrets["kubernetes://cred"].tls_certificate.certificate_chain.inline_bytes
    assert served == (CERTS / "httpbin.example.com.crt").read_bytes()
    ca = config.secrets["kubernetes://cred-cacert"].validation_context.trusted_ca.inline_bytes
    assert ca == (CERTS / "example.com.crt").read_bytes()


def test_mutual_without_ca_omits_the_chain() -> None:
    text = GATEWAY.format(mode="MUTUAL", credential="cred") + _secret(
        "cred", tls_crt="httpbin.example.com.crt", tls_key="httpbin.example.com.key")
    config = _translate(text)
    assert config.listeners == {} and config.secrets == {}
    assert _codes(config) == ["CR0306"]


def test_key_that_does_not_match_the_certificate_is_an_error() -> None:
    text = GATEWAY.format(mode="SIMPLE", credential="cred") + _secret(
        "cred", tls_crt="httpbin.example.com.crt", tls_key="helloworld.example.com.key")
    config = _translate(text)
    assert config.listeners == {}
    assert _codes(config) == ["CR0303"]
    assert "does not match certificate" in config.diagnostics[0].message


def test_certificate_validity_uses_the_given_clock() -> None:
    crt = (CERTS / "httpbin.example.com.crt").read_bytes()
    key = (CERTS / "httpbin.example.com.key").read_bytes()
    assert check_certificate(crt, key, NOW) == []
    [(severity, message)] = check_certificate(crt, key, datetime(2200, 1, 1, tzinfo=UTC))
    assert severity == "warning" and "expired" in message
    [(severity, _)] = check_certificate(crt, key, datetime(2020, 1, 1, tzinfo=UTC))
    assert severity == "warning"
    [(severity, _)] = check_certificate(b"not a pem", key, NOW)
    assert severity == "error"


def test_cross_namespace_credential_is_refused() -> None:
    # The loader already rejects this; the translation must still refuse it on its own.
    gw = Gateway.model_validate({
        "apiVersion": "networking.istio.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "test"},
        "spec": {"selector": {"istio": "ingressgateway"}, "servers": [{
            "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
            "tls": {"mode": "SIMPLE", "credentialName": "test/cred"},
            "hosts": ["a.example.com"]}]}})
    secret = Secret.model_validate({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cred", "namespace": "test"},
        "stringData": {"tls.crt": (CERTS / "httpbin.example.com.crt").read_text(),
                       "tls.key": (CERTS / "httpbin.example.com.key").read_text()}})
    model = build_model(Snapshot.of([gw, secret]), [GW_POD])
    config = translate_proxy(model, PROXY, now=NOW)
    assert config.listeners == {} and _codes(config) == ["CR0305"]


# --- merging and diagnostics -----------------------------------------------------------------


def test_conflicting_gateways_warn_naming_both() -> None:
    config = load_case(CASES / "gateway-conflict").translate()
    conflict = next(d for d in config.diagnostics if d.code == "GW0101")
    assert conflict.ref == "Gateway test/second"
    assert "Gateway test/first" in conflict.message
    names = [list(c.filter_chain_match.server_names)
             for c in config.listeners["0.0.0.0_8443"].filter_chains]
    assert names == [["httpbin.example.com"], ["expired.example.com"]]
    assert {"VS0201", "VS0202", "CR0304"} <= set(_codes(config))
    model = load_case(CASES / "gateway-conflict").model
    assert "GW0101" in [d.code for d in model.diagnostics]


def test_plaintext_and_tls_on_one_port_conflict() -> None:
    text = """
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata: {name: gw, namespace: test}
spec:
  selector: {istio: ingressgateway}
  servers:
    - port: {number: 80, name: http, protocol: HTTP}
      hosts: [a.example.com]
    - port: {number: 80, name: tls, protocol: TLS}
      tls: {mode: PASSTHROUGH}
      hosts: [b.example.com]
"""
    config = _translate(text)
    assert _codes(config) == ["GW0101"]
    assert len(config.listeners["0.0.0.0_80"].filter_chains) == 1
    # Nothing binds to the plaintext server: its route config answers 404 for everything.
    vhosts = config.routes["http.80"].virtual_hosts
    assert [v.name for v in vhosts] == ["blackhole:80"]


def test_endpoints_only_ready_pods_with_resolvable_ports() -> None:
    model = load_case(CASES / "route-features").model
    endpoints = model.endpoints[("httpbin.test.svc.cluster.local", 80)]
    # httpbin-2 has no container port named `web`, as in Kubernetes it gets no endpoint.
    assert [(e.ip, e.port) for e in endpoints] == [("10.88.0.3", 8080)]
    sni = load_case(CASES / "sni-gateway").model
    assert [e.ip for e in sni.endpoints[("helloworld.test.svc.cluster.local", 5000)]] == [
        "10.88.0.4"]  # the not-ready replica is left out


def test_gateway_ports_map_through_the_gateway_service() -> None:
    case = load_case(CASES / "route-features")
    assert case.model.gateway_port_map(case.proxy) == {80: 8080}  # named targetPort
    istio_mutual = load_case(CASES / "istio-mutual")
    assert set(istio_mutual.translate().listeners) == {"0.0.0.0_8443", "0.0.0.0_15443"}


def test_node_id_names_kind_pod_and_namespace() -> None:
    # The daemon writes it into the bootstrap before the pod has an address: no IP in it.
    assert PROXY.node_id == "router~gw-0.istio-system"


# Lets ServiceAccount test/web list Secrets in test (istiod's check before it serves a
# sidecar the key of a credentialName).
GRANT_WEB = """apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-secrets, namespace: test}
rules: [{apiGroups: [""], resources: [secrets], verbs: [list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: web-reads-secrets, namespace: test}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-secrets}
subjects: [{kind: ServiceAccount, name: web, namespace: test}]
"""


def test_sidecar_origination_checks_the_client_certificate_at_now() -> None:
    """A sidecar's MUTUAL origination (DestinationRule with workloadSelector + credentialName)
    is checked at the translation clock as a gateway's is: an expired client certificate is
    reported (CR0304) and still served."""
    web = Workload("test", "web-0", {"app": "web"}, "10.88.0.5", "web", True)
    text = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: test}
spec:
  hosts: [ext.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ext, namespace: test}
spec:
  host: ext.example.com
  workloadSelector: {matchLabels: {app: web}}
  trafficPolicy:
    tls: {mode: MUTUAL, credentialName: client}
---
""" + GRANT_WEB + _secret("client", "test", tls_crt="expired.example.com.crt",
                          tls_key="expired.example.com.key", ca_crt="example.com.crt")
    model = build_model(load_resources(text), [web])
    proxy = Proxy("sidecar", "test", "web-0", {"app": "web"}, "10.88.0.5")
    config = translate_proxy(model, proxy, now=NOW)
    assert "CR0304" in _codes(config)
    assert "kubernetes://client" in config.secrets
    assert "outbound|443||ext.example.com" in config.clusters


@pytest.mark.parametrize(("mode", "grant", "served"), [
    ("MUTUAL", False, False),
    ("MUTUAL", True, True),
    # SIMPLE names only the CA (`-cacert`), which istiod serves without a check.
    ("SIMPLE", False, True),
])
def test_sidecar_credential_needs_the_right_to_list_secrets(mode: str, grant: bool,
                                                           served: bool) -> None:
    """Istio serves a sidecar the certificate and key of a credentialName only when its
    service account may list Secrets in its namespace; otherwise the cluster is left out
    (503) and the DestinationRule's field is named. Sidecars of another service account in
    the same namespace, selected by the same rule, are judged on their own."""
    text = f"""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: ext, namespace: test}}
spec:
  hosts: [ext.example.com]
  ports: [{{number: 443, name: tls, protocol: TLS}}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: ext, namespace: test}}
spec:
  host: ext.example.com
  workloadSelector: {{matchLabels: {{app: web}}}}
  trafficPolicy:
    tls: {{mode: {mode}, credentialName: client}}
---
""" + (GRANT_WEB if grant else "") + _secret("client", "test", tls_crt="client.example.com.crt",
                                             tls_key="client.example.com.key",
                                             ca_crt="example.com.crt")
    web = Workload("test", "web-0", {"app": "web"}, "10.88.0.5", "web", True)
    other = Workload("test", "web-1", {"app": "web"}, "10.88.0.6", "batch", True)
    model = build_model(load_resources(text), [web, other])
    cluster = "outbound|443||ext.example.com"
    for pod, allowed in ((web, served), (other, mode == "SIMPLE")):
        proxy = Proxy("sidecar", "test", pod.name, {"app": "web"}, pod.ip)
        config = translate_proxy(model, proxy, now=NOW)
        assert (cluster in config.clusters) is allowed, pod.name
        assert ("kubernetes://client" in config.secrets) is (allowed and mode == "MUTUAL")
        denied = [d for d in config.diagnostics if d.code == "CR0308"]
        assert bool(denied) is not allowed, pod.name
        for d in denied:
            assert (d.ref, d.field) == ("DestinationRule test/ext",
                                        "spec.trafficPolicy.tls.credentialName")
            assert f"ServiceAccount test/{pod.service_account}" in d.message
