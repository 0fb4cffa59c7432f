"""Each analyzer on minimal manifests: proven to fire (with the resource named) and not to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sailmesh.analysis.catalogue import ANALYZERS, analyze
from sailmesh.analysis.context import build_context, layer, with_builtin_gateways
from sailmesh.analysis.messages import Message
from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.kinds import KINDS
from sailmesh.resources.loader import load_text
from tests.analysis.manifests import (
    BASE,
    HTTPBIN,
    NAMESPACE,
    OPERATOR,
    SIMPLE,
    gateway,
    pem,
    secret,
    server,
    text,
    tls_secret,
    vs,
)

NOW = datetime(2025, 6, 1, tzinfo=UTC)


class Raw(dict):  # type: ignore[type-arg]
    """A manifest the loader's validation would refuse but the store can still hold (it reads
    stored files with the model only), e.g. a credentialName in `ns/name` form."""


def run(docs: list[dict[str, Any]], now: datetime = NOW) -> list[Message]:
    """Analyze as `sailctl analyze -f` does: read tolerantly, problems become messages."""
    loaded = load_text(text(*(d for d in docs if not isinstance(d, Raw))), "in.yaml",
                       tolerant=True)
    resources = [*loaded.resources,
                 *(KINDS[d["kind"]].model_validate(d) for d in docs if isinstance(d, Raw))]
    snapshot = Snapshot.of(with_builtin_gateways(layer([], resources, now)))
    return analyze(build_context(snapshot, now, input_problems=loaded.errors))


def base_with(*replace: dict[str, Any]) -> list[dict[str, Any]]:
    """BASE with documents of the same kind/name replaced, others added."""
    new = {_key(d): d for d in replace}
    out = [new.pop(_key(d), d) for d in BASE]
    return out + list(new.values())


def _key(doc: dict[str, Any]) -> tuple[str, str | None]:
    return doc["kind"], doc.get("metadata", {}).get("name")


GW = "Gateway test/gw"
CA = pem("example.com.crt")
MUTUAL = server(hosts=["*"], mode="MUTUAL", credentialName="httpbin-cred")
PASSTHROUGH = server(protocol="TLS", hosts=["httpbin.example.com"], mode="PASSTHROUGH")
CUSTOM_GW = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "my-gw", "namespace": "test"},
    "spec": {"selector": {"matchLabels": {"app": "my-gw"}},
             "template": {"metadata": {"labels": {"app": "my-gw"}},
                          "spec": {"containers": [{"name": "istio-proxy",
                                                   "image": "docker.io/istio/proxyv2",
                                                   "args": ["proxy", "router"]}]}}}}

# (id, manifests, code, resources the code must name (empty: must not fire), text, now)
CASES: list[tuple[str, list[dict[str, Any]], str, list[str], str, datetime]] = [
    ("clean-secret", BASE, "SM0101", [], "", NOW),
    ("secret-in-gateway-ns",
     base_with(gateway("gw", server(mode="SIMPLE", credentialName="c")), tls_secret("c", "test")),
     "SM0101", [GW], "Secret test/c exists in the Gateway's namespace test, but not in the "
     "gateway workload's namespace istio-system", NOW),
    ("secret-missing-everywhere",
     base_with(gateway("gw", server(mode="SIMPLE", credentialName="nope"))),
     "SM0101", [GW], "Secret istio-system/nope not found", NOW),
    ("secret-in-custom-gateway-ns",
     base_with(CUSTOM_GW, tls_secret("c", "test"),
               gateway("gw", server(mode="SIMPLE", credentialName="c"), selector={"app": "my-gw"})),
     "SM0101", [], "", NOW),
    ("ns-slash-name-other-ns",
     base_with(Raw(gateway("gw", server(mode="SIMPLE", credentialName="test/httpbin-cred")))),
     "SM0102", [GW], "names namespace test", NOW),
    ("ns-slash-name-workload-ns",
     base_with(Raw(gateway("gw", server(mode="SIMPLE",
                                        credentialName="istio-system/httpbin-cred")))),
     "SM0102", [], "", NOW),
    ("sound-credential", BASE, "SM0103", [], "", NOW),
    ("wrong-keys", base_with(secret("httpbin-cred", **{"cert.pem": "x", "key.pem": "y"})),
     "SM0103", [GW], "found: cert.pem, key.pem", NOW),
    ("corrupt-pem", base_with(secret("httpbin-cred", **{"tls.crt": "garbage", "tls.key": "x"})),
     "SM0103", [GW], "does not parse as PEM", NOW),
    ("key-mismatch", base_with(tls_secret("httpbin-cred", key_host="example.com")),
     "SM0103", [GW], "private key does not match", NOW),
    ("valid-now", BASE, "SM0104", [], "", NOW),
    ("expired", base_with(tls_secret("httpbin-cred", host="expired.example.com")),
     "SM0104", [GW], "expired at 2001-01-01", NOW),
    ("not-yet-valid", BASE, "SM0104", [GW], "not valid before 2024-01-01",
     datetime(2020, 1, 1, tzinfo=UTC)),
    ("mutual-no-ca", base_with(gateway("gw", MUTUAL)), "SM0105", [GW],
     "neither Secret istio-system/httpbin-cred-cacert exists", NOW),
    ("mutual-cacert-secret-without-ca",
     base_with(gateway("gw", MUTUAL), secret("httpbin-cred-cacert", **{"tls.crt": "x"})),
     "SM0105", [GW], "httpbin-cred-cacert exists", NOW),
    ("mutual-ca-in-secret",
     base_with(gateway("gw", MUTUAL), tls_secret("httpbin-cred", **{"ca.crt": CA})),
     "SM0105", [], "", NOW),
    ("mutual-cacert-secret",
     base_with(gateway("gw", MUTUAL), secret("httpbin-cred-cacert", cacert=CA)),
     "SM0105", [], "", NOW),
    ("star-host", BASE, "SM0106", [], "", NOW),
    ("host-specific-only",
     base_with(gateway("gw", server(hosts=["httpbin.example.com"], mode="SIMPLE",
                                    credentialName="httpbin-cred"))),
     "SM0106", [GW], "clients that send no SNI", NOW),
    ("one-user-per-credential", BASE, "SM0107", [], "", NOW),
    ("credential-on-two-gateways",
     base_with(gateway("gw", server(hosts=["a.example.com"], mode="SIMPLE",
                                    credentialName="httpbin-cred")),
               gateway("gw2", server(hosts=["b.example.com"], mode="SIMPLE",
                                     credentialName="httpbin-cred"))),
     "SM0107", [GW, "Gateway test/gw2"], "HTTP/2 connection", NOW),
    ("distinct-hosts",
     base_with(gateway("gw", server(hosts=["a.example.com"], mode="SIMPLE",
                                    credentialName="httpbin-cred")),
               gateway("gw2", server(hosts=["b.example.com"], mode="SIMPLE",
                                     credentialName="httpbin-cred"))),
     "SM0108", [], "", NOW),
    ("same-host-two-gateways",
     base_with(gateway("gw", server(hosts=["a.example.com"], mode="SIMPLE",
                                    credentialName="httpbin-cred")),
               gateway("gw2", server(hosts=["a.example.com"], mode="SIMPLE",
                                     credentialName="httpbin-cred"))),
     "SM0108", [GW, "Gateway test/gw2"], "port 443, hosts a.example.com", NOW),
    ("http-routes-on-terminating", BASE, "SM0109", [], "", NOW),
    ("tls-routes-on-terminating",
     base_with(vs("httpbin", ["httpbin.example.com"], ["gw"], http_to=None,
                  tls_sni=["httpbin.example.com"])),
     "SM0109", ["VirtualService test/httpbin"], "terminates TLS", NOW),
    ("http-routes-on-passthrough", base_with(gateway("gw", PASSTHROUGH)),
     "SM0109", ["VirtualService test/httpbin"], "passes TLS through", NOW),
    ("tls-routes-on-passthrough",
     base_with(gateway("gw", PASSTHROUGH),
               vs("httpbin", ["httpbin.example.com"], ["gw"], http_to=None,
                  tls_sni=["httpbin.example.com"])),
     "SM0109", [], "", NOW),
    ("tls-with-mode",
     base_with(gateway("gw", server(protocol="TLS", mode="SIMPLE", credentialName="httpbin-cred"))),
     "SM0110", [], "", NOW),
    ("tls-without-mode",
     base_with(gateway("gw", server(protocol="TLS", credentialName="httpbin-cred"))),
     "SM0110", [GW], "defaults to PASSTHROUGH", NOW),
    ("tls10-with-ciphers",
     base_with(gateway("gw", SIMPLE | {"tls": SIMPLE["tls"] | {
         "minProtocolVersion": "TLSV1_0", "cipherSuites": ["ECDHE-RSA-AES128-SHA"]}})),
     "SM0111", [], "", NOW),
    ("tls10-without-ciphers",
     base_with(gateway("gw", SIMPLE | {"tls": SIMPLE["tls"] | {"minProtocolVersion": "TLSV1_1"}})),
     "SM0111", [GW], "minimum TLSV1_1 without cipherSuites", NOW),
    ("no-mesh-mtls", BASE, "SM0112", [], "", NOW),
    ("mesh-mtls-set", base_with(OPERATOR), "SM0112",
     ["IstioOperator istio-system/installed-state"], "does not change the TLS versions", NOW),
    ("one-vs-per-host", BASE, "SM0113", [], "", NOW),
    ("two-vs-one-host",
     base_with(vs("a-newer", ["httpbin.example.com"], ["gw"])),
     "SM0113", ["VirtualService test/a-newer", "VirtualService test/httpbin"],
     "VirtualService test/httpbin, then VirtualService test/a-newer", NOW),
    ("vs-gateway-exists", BASE, "SM0114", [], "", NOW),
    ("vs-gateway-missing", base_with(vs("httpbin", ["httpbin.example.com"], ["gw", "nope"])),
     "SM0114", ["VirtualService test/httpbin"], "Gateway test/nope does not exist", NOW),
    ("destination-known", BASE, "SM0115", [], "", NOW),
    ("destination-unknown",
     base_with(vs("httpbin", ["httpbin.example.com"], ["gw"], http_to="nope")),
     "SM0115", ["VirtualService test/httpbin"], "nope.test.svc.cluster.local", NOW),
    ("destination-service-entry",
     base_with(vs("httpbin", ["httpbin.example.com"], ["gw"], http_to="api.example.org"),
               {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
                "metadata": {"name": "api", "namespace": "test"},
                "spec": {"hosts": ["api.example.org"], "ports": [
                    {"number": 443, "name": "https", "protocol": "HTTPS"}],
                    "resolution": "DNS"}}),
     "SM0115", [], "", NOW),
    ("selector-matches", BASE, "SM0116", [], "", NOW),
    ("selector-matches-custom", base_with(CUSTOM_GW, gateway("gw", SIMPLE, selector={"app": "my-gw"})),
     "SM0116", [], "", NOW),
    ("selector-matches-nothing", base_with(gateway("gw", SIMPLE, selector={"istio": "nope"})),
     "SM0116", [GW], "matches no gateway workload", NOW),
]


@pytest.mark.parametrize(("manifests", "code", "refs", "fragment", "now"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_analyzer(manifests: list[dict[str, Any]], code: str, refs: list[str], fragment: str,
                  now: datetime) -> None:
    check_case(manifests, code, refs, fragment, now)


def check_case(manifests: list[dict[str, Any]], code: str, refs: list[str], fragment: str,
               now: datetime) -> list[Message]:
    """A case-table row: `code` names exactly `refs`, each message containing `fragment`."""
    found = [m for m in run(manifests, now) if m.code == code]
    assert sorted(m.ref for m in found) == sorted(refs), [m.line() for m in found]
    for m in found:
        assert fragment in m.message, m.line()
    return found


def test_every_code_has_a_firing_and_a_quiet_case() -> None:
    """Codes up to SM0116 here; later ones in test_mesh_analyzers."""
    fires = {c[2] for c in CASES if c[3]}
    quiet = {c[2] for c in CASES if not c[3]}
    codes = {a.code for a in ANALYZERS if a.code <= "SM0116"}
    assert fires == codes and quiet == codes


def test_base_is_clean() -> None:
    assert [m.line() for m in run(BASE)] == []


def test_table_is_sound() -> None:
    codes = [a.code for a in ANALYZERS]
    assert len(codes) == len(set(codes)) and codes == sorted(codes)
    for a in ANALYZERS:
        assert a.fix and a.level in ("Error", "Warning", "Info")
        assert a.pitfall == "" or a.pitfall.startswith("#")


def test_message_line_is_istioctl_style() -> None:
    [m] = [m for m in run(base_with(gateway("gw", SIMPLE, selector={"istio": "nope"})))
           if m.code == "SM0116"]
    assert m.line().startswith("Error [IST0101] (Gateway test/gw) spec.selector: selector ")
    assert m.line().endswith(" [SM0116]")
    assert m.located("gw.yaml:4").line().startswith("Error [IST0101] (Gateway test/gw gw.yaml:4) ")
    assert m.namespace == "test"


def test_namespace_filter() -> None:
    resources = load_text(text(*base_with(OPERATOR))).resources
    ctx = build_context(Snapshot.of(with_builtin_gateways(layer([], resources, NOW))), NOW)
    assert [m.code for m in analyze(ctx, ["test"])] == []
    assert [m.code for m in analyze(ctx, ["istio-system"])] == ["SM0112"]


def test_files_layer_over_stored_keeping_creation_time() -> None:
    stored = load_text(text(NAMESPACE, HTTPBIN)).resources
    stored = [r.model_copy(update={"metadata": r.metadata.model_copy(
        update={"creation_timestamp": "2024-01-01T00:00:00.000000Z"})}) for r in stored]
    files = load_text(text(HTTPBIN, vs("a", ["h"], ["gw"]), vs("b", ["h"], ["gw"]))).resources
    out = {r.name: r.metadata.creation_timestamp for r in layer(stored, files, NOW)}
    assert out["httpbin"] == "2024-01-01T00:00:00.000000Z"
    assert out["a"] < out["b"]  # file order is creation order
