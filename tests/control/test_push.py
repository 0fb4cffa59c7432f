"""Push planner playbooks: inputs (manifests, pods, identities, now) → the exact Push.

Covers the rules of `sailmesh.control.push`: one proxy's failure keeps only that proxy on
its last good config, identities join every proxy's resources, a CA problem fails closed.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sailmesh.ca import CAError, CertificateAuthority, IssuedCert, issue_workload_cert, spiffe_id
from sailmesh.control import ProxyPod, plan_push
from sailmesh.control import push as push_module
from sailmesh.model.mesh import build_model
from sailmesh.model.proxy import Proxy
from sailmesh.model.snapshot import Snapshot
from sailmesh.model.workloads import Workload
from sailmesh.resources.loader import load_text
from sailmesh.translate import type_urls

NOW = datetime(2026, 1, 1, tzinfo=UTC)
GW_LABELS = {"istio": "ingressgateway"}
WEB_LABELS = {"app": "web", "security.istio.io/tlsMode": "istio"}

# Istio's TLS passthrough task with a second VirtualService claiming the same SNI host: the
# second one loses (first wins) and says so; it used to crash the whole push.
PASSTHROUGH_TWICE = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mygateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    tls: {mode: PASSTHROUGH}
    hosts: [nginx.example.com]
---
apiVersion: v1
kind: Service
metadata: {name: my-nginx, namespace: default}
spec:
  selector: {run: my-nginx}
  ports: [{port: 443, name: https, protocol: TCP}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: nginx, namespace: default, creationTimestamp: "2026-01-01T00:00:01Z"}
spec:
  hosts: [nginx.example.com]
  gateways: [mygateway]
  tls:
  - match: [{port: 443, sniHosts: [nginx.example.com]}]
    route: [{destination: {host: my-nginx, port: {number: 443}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: nginx-again, namespace: default, creationTimestamp: "2026-01-01T00:00:02Z"}
spec:
  hosts: [nginx.example.com]
  gateways: [mygateway]
  tls:
  - match: [{port: 443, sniHosts: [nginx.example.com]}]
    route: [{destination: {host: my-nginx, port: {number: 443}}}]
"""


class RealCaIdentities:
    """A real CA issuing real workload certificates; `broken` pods get a CAError."""

    def __init__(self, broken: frozenset[tuple[str, str]] = frozenset()) -> None:
        self.ca = CertificateAuthority.self_signed("cluster.local", "ecdsa-p256", NOW)
        self.broken = broken

    def certificate(self, pod: tuple[str, str], service_account: str,
                    now: datetime) -> IssuedCert:
        if pod in self.broken:
            raise CAError("no CA configured yet")
        return issue_workload_cert(self.ca, spiffe_id=spiffe_id("cluster.local", pod[0],
                                                                service_account), now=now)


def _pods() -> tuple[list[Workload], list[ProxyPod]]:
    workloads = [Workload("istio-system", "gw-0", GW_LABELS, "10.88.0.2", "gw", True),
                 Workload("default", "web-0", WEB_LABELS, "10.88.0.3", "web", True)]
    pods = [ProxyPod(f"{kind}~{w.name}.{w.namespace}",
                     Proxy(kind, w.namespace, w.name, w.labels, w.ip), w.service_account)
            for kind, w in (("router", workloads[0]), ("sidecar", workloads[1]))]
    return workloads, pods


def _model(text: str):
    workloads, pods = _pods()
    snap = Snapshot.of(load_text(text, "input.yaml").resources)
    return build_model(snap, workloads), pods


def test_same_sni_hosts_twice_on_passthrough_is_a_warning_not_a_crash() -> None:
    model, pods = _model(PASSTHROUGH_TWICE)
    push = plan_push(model, pods, RealCaIdentities(), now=NOW)
    assert {n: p.state for n, p in push.nodes.items()} == {
        "router~gw-0.istio-system": "fresh", "sidecar~web-0.default": "fresh"}
    gw = push.nodes["router~gw-0.istio-system"].resources
    chains = gw[type_urls.LISTENER]["0.0.0.0_443"].filter_chains
    assert [list(c.filter_chain_match.server_names) for c in chains] == [["nginx.example.com"]]
    conflicts = [d for d in push.diagnostics if d.code == "GW0101"]
    assert [(d.severity, d.ref) for d in conflicts] == [("warning", "Gateway default/mygateway")]
    assert "VirtualService default/nginx-again tls[0].match[0] is ignored" in conflicts[0].message


def test_a_proxy_that_cannot_be_translated_keeps_its_config_and_the_others_get_theirs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    model, pods = _model(PASSTHROUGH_TWICE)
    real = push_module.translate_proxy

    def failing_for_gateways(model, proxy, *, now):  # type: ignore[no-untyped-def]
        if proxy.kind == "router":
            raise AttributeError("module has no attribute 'X'")
        return real(model, proxy, now=now)

    monkeypatch.setattr(push_module, "translate_proxy", failing_for_gateways)
    push = plan_push(model, pods, RealCaIdentities(), now=NOW)
    gw, web = push.nodes["router~gw-0.istio-system"], push.nodes["sidecar~web-0.default"]
    assert (gw.state, dict(gw.resources)) == ("kept", {})
    assert web.state == "fresh" and web.resources[type_urls.LISTENER]
    assert push.kept() == ["router~gw-0.istio-system"]
    failed = [d for d in push.diagnostics if d.code == "TR0502"]
    assert [(d.severity, d.ref) for d in failed] == [
        ("error", "Pod istio-system/gw-0 (gateway)")]
    assert failed[0].message == (
        "its configuration could not be built (configured by Gateway default/mygateway): "
        "AttributeError: module has no attribute 'X'; it keeps its last good configuration")


def test_every_proxy_gets_its_own_identity_and_a_ca_failure_fails_closed() -> None:
    model, pods = _model(PASSTHROUGH_TWICE)
    push = plan_push(model, pods, RealCaIdentities(broken=frozenset({("default", "web-0")})),
                     now=NOW)
    gw, web = push.nodes["router~gw-0.istio-system"], push.nodes["sidecar~web-0.default"]
    assert gw.state == "fresh"
    assert {"default", "ROOTCA"} <= set(gw.resources[type_urls.SECRET])
    assert web.state == "no-identity"
    assert not {"default", "ROOTCA"} & set(web.resources[type_urls.SECRET])
    assert [(d.code, d.ref, d.message) for d in push.diagnostics if d.code == "CA0002"] == [
        ("CA0002", "Pod default/web-0", "no workload certificate: no CA configured yet")]
