"""The seed manifests and examples analyze clean, apart from the warnings they are meant to
get. Each scenario is applied as its tutorial applies it: its own files, its own namespace,
and the Secrets its `kubectl create secret` commands make."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sailmesh.analysis.catalogue import analyze
from sailmesh.analysis.context import build_context, layer, with_builtin_gateways
from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.loader import load_paths, load_text
from tests.analysis.manifests import pem, text, tls_secret

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "tests" / "unit" / "seed_manifests"
EXAMPLES = ROOT / "examples"
NOW = datetime(2025, 6, 1, tzinfo=UTC)
CA = pem("example.com.crt")
SNI_INFO = {("SM0106", "Gateway test/sni-gateway")}  # host-specific servers only: by design

# (id, [(paths, -n namespace)], secrets made by the tutorial's commands, expected (code, ref))
SCENARIOS: list[tuple[str, list[tuple[list[Path], str | None]], list[dict[str, Any]],
                      set[tuple[str, str]]]] = [
    ("seed01-ingress-and-egress", [(sorted(SEEDS.glob("01-*.yaml")), None)],
     [tls_secret("httpbin-credential")],
     # Intended: the tutorial's ServiceEntry declares 443 HTTPS *and* its rule originates TLS
     # (double TLS), and the rule has no CA of its own.
     {("SM0124", "DestinationRule default/tls-app"),
      ("SM0129", "DestinationRule default/tls-app")}),
    ("seed02-sni", [([SEEDS / f"02-{n}.yaml" for n in (
        "gateway-sni-gateway", "service-deployment-helloworld", "service-deployment-httpbin",
        "virtualservice-virtualservice-httpbin")], "test")],
     [tls_secret("httpbin-secret"), tls_secret("helloworld-secret",
                                               host="helloworld.example.com")], SNI_INFO),
    ("seed02-mutual", [([SEEDS / f"02-{n}.yaml" for n in (
        "gateway-manual-gateway", "service-deployment-httpbin",
        "virtualservice-manual-httpbin")], "test")],
     [tls_secret("httpbin-mutual-secret", **{"ca.crt": CA})],
     {("SM0106", "Gateway test/manual-gateway")}),
    ("seed02-passthrough", [([SEEDS / f"02-{n}.yaml" for n in (
        "configmap-nginx-config", "deployment-nginx-deployment", "gateway-paasthrough-gateway",
        "service-nginx-service", "virtualservice-paasthrough-httpbin")], "test")],
     [], {("SM0106", "Gateway test/paasthrough-gateway")}),
    ("seed02-operator", [([SEEDS / "02-istiooperator-installed-state.yaml"], None),
                         ([SEEDS / "02-gateway-sni-gateway.yaml"], "test")],
     [tls_secret("httpbin-secret"), tls_secret("helloworld-secret",
                                               host="helloworld.example.com")],
     {("SM0112", "IstioOperator istio-system/installed-state"), *SNI_INFO}),
    ("examples-sni", [(sorted((EXAMPLES / "sni-gateway").glob("*.yaml")), "test")],
     [tls_secret("httpbin-secret"), tls_secret("helloworld-secret",
                                               host="helloworld.example.com")], SNI_INFO),
    ("examples-mutual", [(sorted((EXAMPLES / "mutual-gateway").glob("*.yaml")), "test"),
                         ([EXAMPLES / "sni-gateway" / "httpbin.yaml"], "test")],
     [tls_secret("httpbin-mutual-secret", **{"ca.crt": CA})],
     {("SM0106", "Gateway test/manual-gateway")}),
    ("examples-passthrough", [(sorted((EXAMPLES / "passthrough-gateway").glob("*.yaml")),
                               "test")], [], {("SM0106", "Gateway test/paasthrough-gateway")}),
]


@pytest.mark.parametrize(("inputs", "secrets", "expected"), [s[1:] for s in SCENARIOS],
                         ids=[s[0] for s in SCENARIOS])
def test_scenario_analyzes_clean(inputs: list[tuple[list[Path], str | None]],
                                 secrets: list[dict[str, Any]],
                                 expected: set[tuple[str, str]]) -> None:
    resources = []
    for paths, ns in inputs:
        assert paths and all(p.exists() for p in paths), paths
        resources += load_paths([str(p) for p in paths], ns).resources
    if secrets:
        resources += load_text(text(*secrets)).resources
    ctx = build_context(Snapshot.of(with_builtin_gateways(layer([], resources, NOW))), NOW)
    found = {(m.code, m.ref) for m in analyze(ctx)}
    assert found == expected, [m.line() for m in analyze(ctx)]
