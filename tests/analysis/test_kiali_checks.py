"""Kiali's DestinationRule / PeerAuthentication validations under our codes (SM0160 on):
each with a firing and a quiet case on minimal manifests, auto mTLS on and off."""

from __future__ import annotations

from typing import Any

import pytest

from sailmesh.analysis.catalogue import BY_CODE
from tests.analysis.manifests import dest_rule, peer_auth, service_entry
from tests.analysis.test_analyzers import NOW, check_case
from tests.analysis.test_mesh_analyzers import mesh

AUTO_MTLS_OFF = {"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator",
                 "metadata": {"name": "installed-state", "namespace": "istio-system"},
                 "spec": {"meshConfig": {"enableAutoMtls": False}}}
MESH_WIDE = dest_rule("default", "*.local", ns="istio-system", mode="ISTIO_MUTUAL")
MESH_WIDE_DISABLE = dest_rule("default", "*.local", ns="istio-system", mode="DISABLE")
NS_WIDE = dest_rule("test-wide", "*.test.svc.cluster.local", mode="ISTIO_MUTUAL")
NS_WIDE_DISABLE = dest_rule("test-wide", "*.test.svc.cluster.local", mode="DISABLE")
MESH_STRICT = peer_auth("default", ns="istio-system")
MESH_DISABLE = peer_auth("default", ns="istio-system", mode="DISABLE")
NS_STRICT = peer_auth("default")
NS_PERMISSIVE = peer_auth("default", mode="PERMISSIVE")
NS_DISABLE = peer_auth("default", mode="DISABLE")
DR = "DestinationRule test/httpbin"


def subsets(dr: dict[str, Any], *labels: dict[str, str]) -> dict[str, Any]:
    dr["spec"]["subsets"] = [{"name": f"v{i + 1}", "labels": lab} for i, lab in enumerate(labels)]
    return dr


def sidecar(*hosts: str) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
            "metadata": {"name": "default", "namespace": "test"},
            "spec": {"egress": [{"hosts": list(hosts)}]}}


CASES: list[tuple[str, list[dict[str, Any]], str, list[str], str]] = [
    ("same-host-no-subsets", mesh(dest_rule("httpbin", "httpbin"),
                                  dest_rule("httpbin-2", "httpbin.test.svc.cluster.local")),
     "SM0160", [DR, "DestinationRule test/httpbin-2"], "also DestinationRule test/httpbin"),
    ("same-host-distinct-subsets",
     mesh(subsets(dest_rule("httpbin", "httpbin"), {"app": "httpbin"}),
          {**subsets(dest_rule("httpbin-2", "httpbin"), {"app": "httpbin"}, {"app": "httpbin"}),
           "spec": {"host": "httpbin", "subsets": [{"name": "v2", "labels": {"app": "httpbin"}}]}},
          MESH_WIDE), "SM0160", [], ""),
    ("host-not-in-registry", mesh(dest_rule("nope", "nope")), "SM0161",
     ["DestinationRule test/nope"], "nope.test.svc.cluster.local"),
    ("host-is-a-service-or-entry",
     mesh(dest_rule("httpbin", "httpbin"), dest_rule("api", "api.example.com"),
          service_entry("api", ["api.example.com"],
                        [{"number": 443, "name": "https", "protocol": "HTTPS"}])),
     "SM0161", [], ""),
    ("subset-selects-no-pod", mesh(subsets(dest_rule("httpbin", "httpbin"), {"version": "v9"})),
     "SM0162", [DR], "subset v1 (version=v9) selects none of the workloads"),
    ("subset-selects-pods", mesh(subsets(dest_rule("httpbin", "httpbin"), {"app": "httpbin"})),
     "SM0162", [], ""),
    ("rule-hides-namespace-mtls", mesh(NS_WIDE, dest_rule("httpbin", "httpbin")), "SM0163",
     [DR], "replaces the ISTIO_MUTUAL of DestinationRule test/test-wide"),
    ("rule-keeps-mtls", mesh(NS_WIDE, dest_rule("httpbin", "httpbin", mode="ISTIO_MUTUAL")),
     "SM0163", [], ""),
    ("mesh-rule-no-policy", mesh(AUTO_MTLS_OFF, MESH_WIDE), "SM0164",
     ["DestinationRule istio-system/default"], "no PeerAuthentication without selector"),
    ("mesh-rule-auto-mtls", mesh(MESH_WIDE), "SM0164", [], ""),
    ("namespace-rule-no-policy", mesh(AUTO_MTLS_OFF, NS_WIDE), "SM0165",
     ["DestinationRule test/test-wide"], "auto mTLS off"),
    ("namespace-rule-with-policy", mesh(AUTO_MTLS_OFF, NS_WIDE, NS_PERMISSIVE), "SM0165", [],
     ""),
    ("namespace-disable-to-strict", mesh(NS_WIDE_DISABLE, NS_STRICT), "SM0166",
     ["DestinationRule test/test-wide"], "namespace test is STRICT"),
    ("namespace-disable-to-permissive", mesh(NS_WIDE_DISABLE, NS_PERMISSIVE), "SM0166", [], ""),
    ("mesh-disable-to-mesh-strict", mesh(MESH_WIDE_DISABLE, MESH_STRICT), "SM0167",
     ["DestinationRule istio-system/default"], "mesh-wide PeerAuthentication"),
    ("namespace-disable-own-policy-permissive",
     mesh(NS_WIDE_DISABLE, MESH_STRICT, NS_PERMISSIVE), "SM0167", [], ""),
    ("strict-auto-mtls-off", mesh(AUTO_MTLS_OFF, NS_STRICT), "SM0168",
     ["PeerAuthentication test/default"], "clients send plaintext"),
    ("strict-auto-mtls-on", mesh(NS_STRICT), "SM0168", [], ""),
    ("namespace-disable-mtls-rule", mesh(NS_DISABLE, NS_WIDE), "SM0169",
     ["PeerAuthentication test/default"], "DestinationRule test/test-wide sends ISTIO_MUTUAL"),
    ("namespace-disable-disable-rule", mesh(NS_DISABLE, NS_WIDE_DISABLE, MESH_WIDE), "SM0169",
     [], ""),
    ("mesh-disable-mtls-rule", mesh(MESH_DISABLE, MESH_WIDE), "SM0170",
     ["PeerAuthentication istio-system/default"], "sends ISTIO_MUTUAL to every host"),
    ("mesh-disable-no-rule", mesh(MESH_DISABLE), "SM0170", [], ""),
    ("sidecar-egress-host-unknown", mesh(sidecar("test/nope.test.svc.cluster.local")),
     "SM0175", ["Sidecar test/default"], "imports nothing"),
    ("sidecar-egress-host-known", mesh(sidecar("./httpbin.test.svc.cluster.local", "*/*.local")),
     "SM0175", [], ""),
]


@pytest.mark.parametrize(("manifests", "code", "refs", "fragment"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_kiali_check(manifests: list[dict[str, Any]], code: str, refs: list[str],
                     fragment: str) -> None:
    for m in check_case(manifests, code, refs, fragment, NOW):
        kia = BY_CODE[code].kiali_code
        assert m.line().startswith(f"{m.level} [{code}] ({m.ref}")
        assert m.line().endswith(f" [{kia}]"), m.line()


def test_every_kiali_code_has_a_firing_and_a_quiet_case() -> None:
    codes = {c for c, a in BY_CODE.items() if a.kiali_code}
    assert codes == {c for c in BY_CODE if "SM0160" <= c <= "SM0170" or c == "SM0175"}
    assert {c[2] for c in CASES if c[3]} == codes == {c[2] for c in CASES if not c[3]}


def test_suppress_by_kiali_code() -> None:
    from sailmesh.analysis.messages import Suppression, suppress
    from tests.analysis.test_analyzers import run
    found = [m for m in run(mesh(MESH_DISABLE, MESH_WIDE), NOW) if m.code == "SM0170"]
    assert found and not suppress(found, [Suppression.parse("KIA0506=PeerAuthentication *")])


