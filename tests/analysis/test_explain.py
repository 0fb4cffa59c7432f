"""`x tls-check` verdicts and `x describe` summaries on the model, without a running mesh."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sailmesh.analysis.context import AnalysisContext, build_context, layer, with_builtin_gateways
from sailmesh.analysis.explain import explain
from sailmesh.analysis.hop import ExplainError, find_destination, find_source
from sailmesh.analysis.live import client_side, server_side
from sailmesh.analysis.summary import service_summary, workload_summary
from sailmesh.cli.x_cmds import x
from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.loader import load_text
from sailmesh.store import Store
from tests.analysis.manifests import (
    MESH,
    deployment,
    dest_rule,
    namespace,
    peer_auth,
    service,
    service_entry,
    text,
)

NOW = datetime(2025, 6, 1, tzinfo=UTC)
HTTPBIN = "httpbin.test.svc.cluster.local"
NO_SIDECAR = deployment("httpbin", inject=False)
PA_STRICT = peer_auth("default")
PA_DISABLE = peer_auth("httpbin", mode="DISABLE", selector={"app": "httpbin"})
DR = {m: dest_rule("httpbin", "httpbin", mode=m) for m in ("DISABLE", "ISTIO_MUTUAL", "SIMPLE")}
SE_HTTPS = service_entry("api", ["api.example.com"],
                         [{"number": 443, "name": "https", "protocol": "HTTPS"}])
SE_ORIGINATE = service_entry("api", ["api.example.com"],
                             [{"number": 80, "name": "http", "protocol": "HTTP",
                               "targetPort": 443}])
DR_API = dest_rule("api", "api.example.com", mode="SIMPLE",
                   caCertificates="/etc/ssl/certs/ca-certificates.crt")
# The offline stand-in that makes the external hosts resolve in pods (docs/egress.md).
STAND_IN = {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "outside", "namespace": "external", "annotations": {
                "sailmesh.io/external-hosts": "api.example.com,api.example.net,edition.cnn.com"}},
            "spec": {"ports": [{"name": "https", "port": 443}]}}
SE_NOWHERE = service_entry("nowhere", ["nowhere.example"],
                           [{"number": 80, "name": "http", "protocol": "HTTP"}])


def sidecar_resource(*hosts: str, mode: str | None = None,
                     labels: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"egress": [{"hosts": list(hosts)}]}
    if mode:
        spec["outboundTrafficPolicy"] = {"mode": mode}
    if labels:
        spec["workloadSelector"] = {"labels": labels}
    return {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
            "metadata": {"name": "default", "namespace": "test"}, "spec": spec}


def ctx_of(*extra: dict[str, Any]) -> AnalysisContext:
    new = {(d["kind"], d["metadata"]["name"]): d for d in extra}
    docs = [new.pop((d["kind"], d["metadata"]["name"]), d) for d in [*MESH, STAND_IN]]
    docs += list(new.values())
    resources = load_text(text(*docs)).resources
    return build_context(Snapshot.of(with_builtin_gateways(layer([], resources, NOW))), NOW)


# (id, extra manifests, source, destination, verdict, client sends, error fragment)
HOPS: list[tuple[str, list[dict[str, Any]], str | None, str, str, str, str]] = [
    ("auto-mtls", [], "deploy/sleep", "httpbin", "works", "mesh mTLS (carrying plaintext)", ""),
    ("auto-mtls-strict", [PA_STRICT], "sleep", "httpbin", "works", "mesh mTLS", ""),
    ("auto-plaintext-to-no-sidecar", [NO_SIDECAR], "sleep", "httpbin", "works", "plaintext", ""),
    ("auto-plaintext-to-disable", [PA_DISABLE], None, "httpbin:8000", "works", "plaintext", ""),
    ("dr-disable-to-strict", [PA_STRICT, DR["DISABLE"]], "sleep", "httpbin", "fails",
     "plaintext", "reset reason: connection termination"),
    ("dr-disable-to-permissive", [DR["DISABLE"]], "sleep", "httpbin", "works", "plaintext", ""),
    ("dr-istio-mutual-to-no-sidecar", [NO_SIDECAR, DR["ISTIO_MUTUAL"]], "sleep", "httpbin",
     "fails", "mesh mTLS", "WRONG_VERSION_NUMBER"),
    ("dr-istio-mutual-to-disable", [PA_DISABLE, DR["ISTIO_MUTUAL"]], "sleep", "httpbin",
     "fails", "mesh mTLS", "WRONG_VERSION_NUMBER"),
    # Originated TLS offers no mesh ALPN: a PERMISSIVE HTTP port has no chain for it, a
    # STRICT one answers with the mesh certificate.
    ("dr-simple-to-sidecar", [DR["SIMPLE"]], "sleep", "httpbin", "fails",
     "TLS originated by the client proxy", "reset reason: connection termination"),
    ("dr-simple-to-strict-sidecar", [PA_STRICT, DR["SIMPLE"]], "sleep", "httpbin", "fails",
     "TLS originated by the client proxy", "CERTIFICATE_VERIFY_FAILED"),
    ("dr-simple-to-disable-plain-app", [PA_DISABLE, DR["SIMPLE"]], "sleep", "httpbin", "fails",
     "TLS originated by the client proxy", "WRONG_VERSION_NUMBER"),
    ("outside-to-strict", [PA_STRICT], "outside", "httpbin.test", "fails", "plaintext",
     "Connection reset by peer"),
    ("outside-to-permissive", [], "outside", HTTPBIN, "works", "plaintext", ""),
    ("no-sidecar-client-to-strict", [PA_STRICT, deployment("sleep", ports=(80,), inject=False)],
     "sleep", "httpbin", "fails", "plaintext", "Connection reset by peer"),
    ("ingress-auto-mtls", [PA_STRICT], "ingress", "svc/httpbin", "works", "mesh mTLS", ""),
    ("double-tls", [SE_HTTPS, dest_rule("api", "api.example.com", mode="SIMPLE")], "sleep",
     "api.example.com", "fails", "TLS originated by the client proxy (carrying TLS)",
     "WRONG_VERSION_NUMBER"),
    ("app-tls-passthrough", [SE_HTTPS], "sleep", "api.example.com:443", "works", "TLS", ""),
    ("origination", [SE_ORIGINATE, DR_API], "sleep", "api.example.com", "works",
     "TLS originated by the client proxy", ""),
    ("no-origination", [SE_ORIGINATE], "sleep", "api.example.com", "fails", "plaintext",
     "400 Bad Request"),
    # The client's Sidecar resource decides what its proxy knows: an imported host gets
    # auto mTLS; one not imported passes through untouched (ALLOW_ANY: plaintext, refused
    # by a STRICT server) or is blocked (REGISTRY_ONLY: 502 from block_all).
    ("sidecar-imports-host", [sidecar_resource("./*")], "sleep", "httpbin", "works",
     "mesh mTLS (carrying plaintext)", ""),
    ("sidecar-passthrough", [sidecar_resource("istio-system/*")], "sleep", "httpbin", "works",
     "plaintext", ""),
    ("sidecar-passthrough-to-strict", [PA_STRICT, sidecar_resource("istio-system/*")], "sleep",
     "httpbin", "fails", "plaintext", "reset reason: connection termination"),
    ("sidecar-registry-only", [sidecar_resource("istio-system/*", mode="REGISTRY_ONLY")],
     "sleep", "httpbin", "fails", "plaintext", "502 (route block_all"),
    ("sidecar-selector-elsewhere", [sidecar_resource("istio-system/*", labels={"app": "web"})],
     "sleep", "httpbin", "works", "mesh mTLS", ""),
    # A DNS entry whose host resolves in no pod: Envoy's cluster is empty (503 UH).
    ("dns-entry-resolving-nowhere", [SE_NOWHERE], "sleep", "nowhere.example", "fails",
     "plaintext", "503 no healthy upstream"),
]


@pytest.mark.parametrize(("extra", "source", "dest", "verdict", "sends", "error"),
                         [h[1:] for h in HOPS], ids=[h[0] for h in HOPS])
def test_hop(extra: list[dict[str, Any]], source: str | None, dest: str, verdict: str,
             sends: str, error: str) -> None:
    ctx = ctx_of(*extra)
    hop = explain(ctx, find_source(ctx, source, "test"), find_destination(ctx, dest, "test"))
    assert hop.verdict == verdict, hop.as_dict()
    [server] = hop.servers
    assert server.sends.startswith(sends), server.sends
    assert error in (server.error or ""), server.error
    assert (server.error is None) == (verdict == "works")


def test_client_explains_winner_and_losers() -> None:
    ctx = ctx_of(namespace("other"), DR["ISTIO_MUTUAL"],
                 dest_rule("late", "httpbin", mode="DISABLE"),
                 dest_rule("elsewhere", HTTPBIN, ns="other", mode="DISABLE"))
    hop = explain(ctx, find_source(ctx, "sleep", "test"), find_destination(ctx, "httpbin", "test"))
    assert hop.client.policy == "DestinationRule test/httpbin"
    assert hop.client.sni == f"outbound_.8000_._.{HTTPBIN}"
    assert hop.client.certificate == "spiffe://cluster.local/ns/test/sa/default"
    others = "\n".join(hop.client.other_rules)
    assert "DestinationRule test/late: DestinationRule test/httpbin in the same namespace wins" in others
    assert "DestinationRule other/elsewhere: namespace other is not looked in" in others


def test_a_workload_selector_rule_applies_to_the_pods_it_selects() -> None:
    selected = {**dest_rule("sleep-only", "httpbin", mode="DISABLE"),
                "spec": {"host": "httpbin", "workloadSelector": {"matchLabels": {"app": "sleep"}},
                         "trafficPolicy": {"tls": {"mode": "DISABLE"}}}}
    ctx = ctx_of(PA_STRICT, selected, deployment("curl"))
    dest = find_destination(ctx, "httpbin", "test")
    hop = explain(ctx, find_source(ctx, "deploy/sleep", "test"), dest)
    assert hop.client.mode == "DISABLE" and hop.verdict == "fails"
    assert "its workloadSelector selects it" in "\n".join(hop.client.reasons)
    other = explain(ctx, find_source(ctx, "deploy/curl", "test"), dest)
    assert other.client.mode == "AUTO" and other.verdict == "works"
    assert any("workloadSelector (app=sleep) does not select" in r
               for r in other.client.other_rules), other.client.other_rules
    anyone = explain(ctx, find_source(ctx, None, "test"), dest)
    assert any("name the source pod" in r for r in anyone.client.other_rules)


def test_port_level_policy_decides_the_server() -> None:
    pa = peer_auth("httpbin", mode="STRICT", selector={"app": "httpbin"}, ports={8080: "DISABLE"})
    ctx = ctx_of(pa)
    hop = explain(ctx, find_source(ctx, None, "test"), find_destination(ctx, "httpbin", "test"))
    [server] = hop.servers
    assert (server.mode, server.policy, server.sends) == ("DISABLE", "PeerAuthentication test/httpbin",
                                                          "plaintext")


@pytest.mark.parametrize(("source", "dest", "fragment"), [
    ("nope", "httpbin", 'workload "nope" not found in namespace "test" (workloads: httpbin, sleep)'),
    ("svc/x", "httpbin", "cannot use svc/ as a source"),
    (None, "httpbin:9", "Service test/httpbin has no port 9 (ports: 8000)"),
    (None, "unknown.example.org", "is neither a Service nor a ServiceEntry host"),
    (None, "httpbin:x", "port 'x' is not a number"),
])
def test_resolution_errors(source: str | None, dest: str, fragment: str) -> None:
    ctx = ctx_of(service("multi", ports=((80, 80, "http"), (443, 443, "https"))))
    with pytest.raises(ExplainError) as exc:
        find_destination(ctx, dest, "test")
        find_source(ctx, source, "test")
    assert fragment in str(exc.value)


def test_multi_port_service_needs_a_port() -> None:
    ctx = ctx_of(service("multi", ports=((80, 80, "http"), (443, 443, "https"))))
    with pytest.raises(ExplainError, match="has ports 80, 443; give one as multi:PORT"):
        find_destination(ctx, "multi", "test")


def test_describe_summaries() -> None:
    ctx = ctx_of(PA_STRICT, DR["ISTIO_MUTUAL"], namespace("other"),
                 dest_rule("elsewhere", HTTPBIN, ns="other", mode="DISABLE"))
    svc = ctx.model.services[HTTPBIN]
    data = service_summary(ctx, svc)
    [port] = data["ports"]
    assert port["endpoints"] == [{"workload": "Deployment test/httpbin", "containerPort": 8080,
                                  "mtls": "STRICT", "policy": "PeerAuthentication test/default"}]
    rules = {r["rule"]: r for r in data["destinationRules"]}
    assert rules["DestinationRule test/httpbin"]["appliesTo"] == [
        "istio-system", "openshift-ingress", "test", "(other namespaces)"]
    assert rules["DestinationRule other/elsewhere"]["appliesTo"] == []
    [w] = [w for w in ctx.workloads if w.name == "httpbin"]
    summary = workload_summary(ctx, w)
    assert summary["sidecar"] and summary["identity"].endswith("/ns/test/sa/default")
    assert [s["service"] for s in summary["services"]] == ["Service test/httpbin"]


def test_live_readers_on_config_dump_shapes() -> None:
    tls = {"name": "envoy.transport_sockets.tls", "typed_config": {
        "sni": "outbound_.8000_._.h", "common_tls_context": {
            "tls_certificate_sds_secret_configs": [{"name": "default"}]}}}
    dump = {"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
         "dynamic_active_clusters": [
             {"cluster": {"name": "outbound|8000||h", "transport_socket": tls}},
             {"cluster": {"name": "outbound|80||p"}},
             {"cluster": {"name": "outbound|80||a", "transport_socket_matches": [
                 {"name": "tlsMode-istio", "transport_socket": tls},
                 {"name": "tlsMode-disabled"}]}}]},
        {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
         "dynamic_listeners": [{"active_state": {"listener": {
             "name": "virtualInbound", "filter_chains": [
                 {"filter_chain_match": {"destination_port": 8080, "transport_protocol": "tls"},
                  "transport_socket": tls},
                 {"filter_chain_match": {"destination_port": 8080}},
                 {"filter_chain_match": {"destination_port": 9090, "transport_protocol": "tls"},
                  "transport_socket": tls}]}}}]}]}
    assert client_side(dump, "outbound|8000||h").kind == "mTLS"
    assert client_side(dump, "outbound|80||p").kind == "plaintext"
    assert client_side(dump, "outbound|80||a").kind == "auto"
    assert client_side(dump, "outbound|1||none") is None
    assert server_side(dump, 8080).kind == "PERMISSIVE"
    assert server_side(dump, 9090).kind == "STRICT"
    assert server_side(dump, 1) is None


def test_cli_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAILMESH_HOME", str(tmp_path))
    docs = [*MESH, PA_STRICT, DR["DISABLE"]]
    Store(tmp_path).apply(load_text(text(*docs)).resources)
    runner = CliRunner()
    out = runner.invoke(x, ["tls-check", "-n", "test", "deploy/sleep", "httpbin"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0].split() == ["SOURCE", "DESTINATION", "SERVER", "CLIENT",
                                                  "SENDS", "SERVER", "ACCEPTS", "VERDICT"]
    assert "FAILS" in out.output and "Verdict: fails" in out.output
    assert "Client (Deployment test/sleep): DISABLE [DestinationRule test/httpbin]" in out.output
    data = json.loads(runner.invoke(x, ["tls-check", "-n", "test", "sleep", "httpbin",
                                        "-o", "json"]).output)
    assert data["verdict"] == "fails" and data["live"] is None
    assert data["servers"][0]["policy"] == "PeerAuthentication test/default"
    described = runner.invoke(x, ["describe", "-n", "test", "svc", "httpbin"])
    assert "Deployment test/httpbin port 8080: mTLS STRICT [PeerAuthentication test/default]" in (
        described.output)
    pod = runner.invoke(x, ["describe", "-n", "test", "pod", "deploy/httpbin"])
    assert pod.output.startswith("Workload: Deployment test/httpbin\n   Sidecar: yes")
    missing = runner.invoke(x, ["describe", "-n", "test", "svc", "nope"])
    assert missing.exit_code == 1 and 'services "nope" not found' in missing.output


def _in_test_namespace(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**d, "metadata": {**d["metadata"], "namespace": "test"}} for d in docs]


def test_a_mesh_route_to_the_egress_gateway_is_followed() -> None:
    """Istio's egress-gateway TLS origination task: tls-check follows the VirtualService to
    the gateway's subset, judges the gateway's ISTIO_MUTUAL server, and names the next hop,
    whose own check (from the gateway) sees the terminated HTTP being originated."""
    from tests.e2e.test_egress import _egress_gateway
    docs = _in_test_namespace(_egress_gateway("cnn", "edition.cnn.com", "istio-egressgateway",
                                              {"mode": "SIMPLE", "credentialName": "cnn-ca"}))
    ctx = ctx_of(*docs)
    hop = explain(ctx, find_source(ctx, "sleep", "test"),
                  find_destination(ctx, "edition.cnn.com:80", "test"))
    assert hop.verdict == "works", hop.as_dict()
    assert (hop.destination.host, hop.destination.port, hop.destination.subset) == (
        "istio-egressgateway.istio-system.svc.cluster.local", 80, "cnn")
    assert "VirtualService test/direct-cnn-through-egress-gateway http[0]" in hop.route[0]
    assert hop.client.mode == "ISTIO_MUTUAL" and hop.client.sni == "edition.cnn.com"
    [gateway] = hop.servers
    assert gateway.gateway and gateway.accepts == "mesh mTLS only (ISTIO_MUTUAL)"
    assert gateway.next_hop is not None
    assert gateway.next_hop.endswith("next hop: sailctl x tls-check egress edition.cnn.com:443")
    onward = explain(ctx, find_source(ctx, "egress", "test"),
                     find_destination(ctx, "edition.cnn.com:443", "test"))
    assert onward.verdict == "works" and onward.client.mode == "SIMPLE"
    assert onward.client.reasons[0] == "the gateway sends the HTTP it terminated"
    # Without the ISTIO_MUTUAL subset policy, auto mTLS sends plaintext to the gateway (no
    # tlsMode label), which its ISTIO_MUTUAL server refuses.
    plain = [d for d in docs if d["metadata"]["name"] != "egressgateway-for-cnn"]
    plain.append({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                  "metadata": {"name": "egressgateway-for-cnn", "namespace": "test"},
                  "spec": {"host": "istio-egressgateway.istio-system.svc.cluster.local",
                           "subsets": [{"name": "cnn"}]}})
    ctx = ctx_of(*plain)
    hop = explain(ctx, find_source(ctx, "sleep", "test"),
                  find_destination(ctx, "edition.cnn.com:80", "test"))
    assert hop.verdict == "fails" and "no tlsMode=istio label" in " ".join(
        hop.servers[0].reasons)


def test_a_tls_route_to_a_passthrough_gateway_is_followed() -> None:
    from tests.e2e.test_egress import _egress_gateway_passthrough
    ctx = ctx_of(*_in_test_namespace(_egress_gateway_passthrough()))
    hop = explain(ctx, find_source(ctx, "sleep", "test"),
                  find_destination(ctx, "api.example.net:443", "test"))
    assert hop.verdict == "works", hop.as_dict()
    assert hop.destination.subset == "api" and "tls[0]" in hop.route[0]
    [gateway] = hop.servers
    assert gateway.accepts == "TLS it passes through by SNI"
    assert gateway.sends == "TLS"  # the application's own, untouched
    onward = explain(ctx, find_source(ctx, "egress", "test"),
                     find_destination(ctx, "api.example.net:443", "test"))
    assert onward.verdict == "works" and onward.servers[0].sends == "TLS"


def test_a_host_defined_in_two_namespaces_is_judged_as_each_client_sees_it() -> None:
    """The Service is kept to its namespace; namespace other defines its name by a
    ServiceEntry with another port: each client's hop uses the definition its proxy uses."""
    private = service("httpbin")
    private["metadata"]["annotations"] = {"networking.istio.io/exportTo": "."}
    entry = service_entry("httpbin-alias", [HTTPBIN],
                          [{"number": 80, "name": "http", "protocol": "HTTP",
                            "targetPort": 8000}], ns="other", resolution="DNS",
                          exportTo=["."])
    ctx = ctx_of(private, namespace("other"), deployment("client", ns="other", ports=(80,)),
                 entry)
    here = explain(ctx, find_source(ctx, "sleep", "test"),
                   find_destination(ctx, f"{HTTPBIN}:8000", "test"))
    assert (here.destination.ref, here.verdict) == ("Service test/httpbin", "works")
    assert here.servers[0].sends.startswith("mesh mTLS")
    source = find_source(ctx, "client", "other")
    there = explain(ctx, source, find_destination(ctx, f"{HTTPBIN}:80", "other"))
    assert (there.destination.ref, there.verdict) == ("ServiceEntry other/httpbin-alias",
                                                      "works")
    assert there.servers[0].sends.startswith("plaintext")
    with pytest.raises(ExplainError, match="declares ports 80"):
        find_destination(ctx, f"{HTTPBIN}:8000", "other")
    # The route analyzers see the entry's port from namespace other.
    assert ctx.model.service(HTTPBIN, "other").source == "ServiceEntry other/httpbin-alias"
    assert ctx.model.service(HTTPBIN, "istio-system") is None


def test_a_credential_the_sidecar_may_not_read_fails_the_hop_and_is_reported() -> None:
    """MUTUAL origination from credentialName: istiod serves the client key only when the
    pod's service account may list Secrets in its namespace (tls-check and analyze say so,
    naming the DestinationRule's field); a Role and RoleBinding make it work."""
    from sailmesh.analysis.catalogue import analyze

    rule = dest_rule("api", "api.example.com", mode="MUTUAL", credentialName="client")
    rule["spec"]["workloadSelector"] = {"matchLabels": {"app": "sleep"}}
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "client", "namespace": "test"},
              "stringData": {"tls.crt": "x", "tls.key": "y", "ca.crt": "z"}}
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "read", "namespace": "test"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "read", "namespace": "test"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                           "name": "read"},
               "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "test"}]}
    denied = ctx_of(SE_ORIGINATE, rule, secret)
    hop = explain(denied, find_source(denied, "sleep", "test"),
                  find_destination(denied, "api.example.com", "test"))
    assert hop.verdict == "fails", hop.as_dict()
    assert "may not read Secret test/client" in (hop.client.left_out or "")
    assert "503" in (hop.servers[0].error or "")
    [found] = [m for m in analyze(denied) if m.code == "SM0171"]
    assert (found.ref, found.field) == ("DestinationRule test/api",
                                        "spec.trafficPolicy.tls.credentialName")
    assert "ServiceAccount test/default" in found.message
    granted = ctx_of(SE_ORIGINATE, rule, secret, role, binding)
    hop = explain(granted, find_source(granted, "sleep", "test"),
                  find_destination(granted, "api.example.com", "test"))
    assert hop.client.left_out is None and hop.verdict == "works", hop.as_dict()
    assert not [m for m in analyze(granted) if m.code == "SM0171"]
