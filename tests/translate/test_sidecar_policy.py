"""Case tables for `model.policy`: PeerAuthentication and DestinationRule TLS precedence."""

from __future__ import annotations

import pytest
from cases_io import load_resources

from sailmesh.model.mesh import build_model
from sailmesh.model.policy import (
    applying_destination_rule,
    destination_rule_sources,
    effective_client_tls,
    effective_peer_auth,
)
from sailmesh.model.workloads import Workload

POD = Workload("test", "httpbin-1", {"app": "httpbin"}, "10.0.0.3", "httpbin", True,
               {"http": 8080, "admin": 9090})
SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: test}
spec: {ports: [{name: http, port: 8000, targetPort: 8080}, {name: grpc, port: 9000}],
       selector: {app: httpbin}}
"""


def pa(ns: str, name: str, at: str, mode: str | None = None,
       selector: dict[str, str] | None = None, ports: dict[int, str] | None = None) -> str:
    spec: list[str] = []
    if mode:
        spec.append(f"mtls: {{mode: {mode}}}")
    if selector:
        spec.append(f"selector: {{matchLabels: {selector}}}")
    if ports:
        spec.append("portLevelMtls: {" + ", ".join(f"{p}: {{mode: {m}}}"
                                                    for p, m in ports.items()) + "}")
    return ("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
            f"metadata: {{name: {name}, namespace: {ns}, creationTimestamp: "
            f"'2026-01-01T00:0{at}:00Z'}}\nspec: {{{', '.join(spec)}}}\n---\n")


MESH_STRICT = pa("istio-system", "mesh", "1", "STRICT")
NS_DISABLE = pa("test", "ns", "2", "DISABLE")
WL = {"app": "httpbin"}

PEER_CASES = [
    # (id, policies, port, mode, source)
    ("nothing-permissive", "", 8080, "PERMISSIVE", "default"),
    ("mesh-strict", MESH_STRICT, 8080, "STRICT", "PeerAuthentication istio-system/mesh"),
    ("namespace-beats-mesh", MESH_STRICT + NS_DISABLE, 8080, "DISABLE",
     "PeerAuthentication test/ns"),
    ("namespace-unset-inherits", MESH_STRICT + pa("test", "ns", "2", "UNSET"), 8080, "STRICT",
     "PeerAuthentication istio-system/mesh"),
    ("workload-beats-namespace", NS_DISABLE + pa("test", "wl", "3", "STRICT", WL), 8080,
     "STRICT", "PeerAuthentication test/wl"),
    ("selector-not-matching", NS_DISABLE + pa("test", "wl", "3", "STRICT", {"app": "x"}), 8080,
     "DISABLE", "PeerAuthentication test/ns"),
    ("other-namespace-ignored", pa("prod", "ns", "2", "STRICT"), 8080, "PERMISSIVE", "default"),
    ("port-level-by-container-port", MESH_STRICT + pa("test", "wl", "3", None, WL,
                                                       {8080: "DISABLE"}), 8080, "DISABLE",
     "PeerAuthentication test/wl"),
    ("port-level-other-port-inherits", MESH_STRICT + pa("test", "wl", "3", None, WL,
                                                         {8080: "DISABLE"}), 9090, "STRICT",
     "PeerAuthentication istio-system/mesh"),
    ("port-level-unset-inherits-workload", pa("test", "wl", "3", "STRICT", WL, {8080: "UNSET"}),
     8080, "STRICT", "PeerAuthentication test/wl"),
    ("service-port-is-not-container-port", pa("test", "wl", "3", "STRICT", WL,
                                               {8000: "DISABLE"}), 8080, "STRICT",
     "PeerAuthentication test/wl"),
    ("oldest-namespace-policy-wins", pa("test", "new", "5", "DISABLE")
     + pa("test", "old", "1", "STRICT"), 8080, "STRICT", "PeerAuthentication test/old"),
    ("oldest-mesh-policy-wins", pa("istio-system", "b", "4", "DISABLE") + MESH_STRICT, 8080,
     "STRICT", "PeerAuthentication istio-system/mesh"),
]


@pytest.mark.parametrize(("policies", "port", "mode", "source"),
                         [c[1:] for c in PEER_CASES], ids=[c[0] for c in PEER_CASES])
def test_effective_peer_auth(policies: str, port: int, mode: str, source: str) -> None:
    model = build_model(load_resources(policies + SERVICE), [POD])
    got = effective_peer_auth(model, POD, port)
    assert (got.mode, got.source) == (mode, source)
    assert effective_peer_auth(model.snapshot, POD, port) == got


def dr(ns: str, name: str, host: str, body: str, at: str = "1") -> str:
    return ("apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\n"
            f"metadata: {{name: {name}, namespace: {ns}, creationTimestamp: "
            f"'2026-01-01T00:0{at}:00Z'}}\nspec:\n  host: '{host}'\n{body}---\n")


TOP_MUTUAL = "  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n"
TOP_DISABLE = "  trafficPolicy: {tls: {mode: DISABLE}}\n"
HOST = "httpbin.test.svc.cluster.local"
PORT_LEVEL = ("  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n    portLevelSettings:\n"
              "      - port: {number: 9000}\n        loadBalancer: {simple: ROUND_ROBIN}\n"
              "      - port: {number: 8000}\n        tls: {mode: SIMPLE, sni: a.example}\n")
SUBSETS = ("  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n  subsets:\n"
           "    - name: v1\n      labels: {version: v1}\n"
           "      trafficPolicy: {tls: {mode: DISABLE}}\n"
           "    - name: v2\n      labels: {version: v2}\n")

CLIENT_CASES = [
    # (id, rules, client ns, port, subset, mode, source)
    ("no-rule-auto", "", "test", 8000, None, "AUTO", "default"),
    ("service-ns", dr("test", "a", "httpbin", TOP_MUTUAL), "prod", 8000, None, "ISTIO_MUTUAL",
     "DestinationRule test/a"),
    ("client-ns-beats-service-ns", dr("test", "a", "httpbin", TOP_MUTUAL)
     + dr("prod", "b", HOST, TOP_DISABLE), "prod", 8000, None, "DISABLE",
     "DestinationRule prod/b"),
    ("service-ns-beats-root", dr("istio-system", "r", "*.svc.cluster.local", TOP_DISABLE)
     + dr("test", "a", "httpbin", TOP_MUTUAL), "prod", 8000, None, "ISTIO_MUTUAL",
     "DestinationRule test/a"),
    ("root-ns-wildcard", dr("istio-system", "r", "*.svc.cluster.local", TOP_DISABLE), "prod",
     8000, None, "DISABLE", "DestinationRule istio-system/r"),
    ("short-host-is-own-namespace", dr("prod", "b", "httpbin", TOP_DISABLE), "prod", 8000, None,
     "AUTO", "default"),
    ("exported-elsewhere-invisible", dr("test", "a", "httpbin",
                                        TOP_MUTUAL + "  exportTo: ['.']\n"), "prod", 8000, None,
     "AUTO", "default"),
    ("not-merged-first-wins-no-tls", dr("prod", "b", HOST, "  trafficPolicy: {}\n")
     + dr("test", "a", "httpbin", TOP_MUTUAL), "prod", 8000, None, "AUTO",
     "DestinationRule prod/b"),
    ("port-level-replaces", dr("test", "a", "httpbin", PORT_LEVEL), "test", 8000, None, "SIMPLE",
     "DestinationRule test/a"),
    ("port-level-without-tls-is-auto", dr("test", "a", "httpbin", PORT_LEVEL), "test", 9000,
     None, "AUTO", "DestinationRule test/a"),
    ("subset-overrides", dr("test", "a", "httpbin", SUBSETS), "test", 8000, "v1", "DISABLE",
     "DestinationRule test/a"),
    ("subset-without-tls-inherits", dr("test", "a", "httpbin", SUBSETS), "test", 8000, "v2",
     "ISTIO_MUTUAL", "DestinationRule test/a"),
]


@pytest.mark.parametrize(("rules", "client_ns", "port", "subset", "mode", "source"),
                         [c[1:] for c in CLIENT_CASES], ids=[c[0] for c in CLIENT_CASES])
def test_effective_client_tls(rules: str, client_ns: str, port: int, subset: str | None,
                              mode: str, source: str) -> None:
    model = build_model(load_resources(rules + SERVICE), [POD])
    got = effective_client_tls(model, client_ns, HOST, port, subset)
    assert (got.mode, got.source) == (mode, source)
    assert (got.settings is None) == (mode == "AUTO")


def test_auto_mtls_off_means_plaintext() -> None:
    iop = ("apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata: {name: i, "
           "namespace: istio-system}\nspec: {meshConfig: {enableAutoMtls: false}}\n---\n")
    model = build_model(load_resources(iop + SERVICE), [POD])
    got = effective_client_tls(model, "test", HOST, 8000)
    assert (got.mode, got.settings, got.source) == ("DISABLE", None, "default")


def _dr(name: str, at: str, body: str, ns: str = "test") -> str:
    return ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
            f"metadata: {{name: {name}, namespace: {ns}, creationTimestamp: "
            f"'2026-01-01T00:0{at}:00Z'}}\nspec: {{host: httpbin, {body}}}\n---\n")


def test_rules_of_one_namespace_for_one_host_merge_as_in_istio() -> None:
    """Istio's mergeDestinationRule: the oldest is the base; later rules add subsets with new
    names and their trafficPolicy only when the base has none; other namespaces never."""
    text = SERVICE + "---\n" + (
        _dr("base", "1", "subsets: [{name: v1, labels: {version: v1}}]")
        + _dr("later", "2", "trafficPolicy: {tls: {mode: DISABLE}}, subsets: "
              "[{name: v1, labels: {version: other}}, {name: v2, labels: {version: v2}}]")
        + _dr("latest", "3", "trafficPolicy: {tls: {mode: SIMPLE}}")
        + _dr("elsewhere", "4", "subsets: [{name: v3, labels: {version: v3}}]", ns="prod"))
    model = build_model(load_resources(text), [POD])
    merged = applying_destination_rule(model, "test", "httpbin.test.svc.cluster.local")
    assert merged is not None and merged.ref == "DestinationRule test/base"
    assert [(s.name, s.labels) for s in merged.spec.subsets] == [
        ("v1", {"version": "v1"}), ("v2", {"version": "v2"})]
    assert merged.spec.traffic_policy is not None
    assert merged.spec.traffic_policy.tls is not None
    assert merged.spec.traffic_policy.tls.mode == "DISABLE"
    sources = destination_rule_sources(model, "test", "httpbin.test.svc.cluster.local")
    assert [dr.name for dr in sources] == ["base", "later"]  # `latest` adds nothing
    tls = effective_client_tls(model, "test", "httpbin.test.svc.cluster.local", 8000, "v2")
    assert tls.mode == "DISABLE"
