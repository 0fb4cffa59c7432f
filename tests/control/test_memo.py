"""Translations kept across pushes: a change re-translates only the proxies it can reach,
and what is published is exactly what a full translation would publish.
"""

from __future__ import annotations

import random
from collections import ChainMap
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from google.protobuf.message import Message
from tests.control.test_push import NOW, RealCaIdentities
from tests.translate.cases_io import load_resources

from sailmesh.control import TranslationMemo, plan_push
from sailmesh.control import push as push_module
from sailmesh.control.push import ProxyPod, Push
from sailmesh.model.mesh import build_model
from sailmesh.model.proxy import Proxy
from sailmesh.model.snapshot import Snapshot
from sailmesh.model.workloads import Workload
from sailmesh.resources.loader import load_text
from sailmesh.translate import client_tls, translate_proxy, type_urls
from sailmesh.xds.cache import Packer, SharedLayers
from sailmesh.xds.cache import Snapshot as XdsSnapshot

BASE = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: a}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: b}
spec:
  selector: {app: api}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""

# The pieces a change switches on and off (by name) in the property test below.
PIECES: dict[str, str] = {
    "vs-a-local": """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: a}
spec:
  hosts: [web]
  exportTo: ["."]
  http: [{directResponse: {status: 200, body: {string: "%(k)s"}}}]
""",
    "vs-a-everywhere": """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web-all, namespace: a}
spec:
  hosts: [web.a.svc.cluster.local]
  http: [{route: [{destination: {host: web.a.svc.cluster.local}}], timeout: "%(k)ss"}]
""",
    "vs-a-to-b": """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api-from-a, namespace: a}
spec:
  hosts: [api.b.svc.cluster.local]
  exportTo: [b]
  http: [{directResponse: {status: 503, body: {string: "%(k)s"}}}]
""",
    "vs-gateway-only": """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web-in, namespace: a}
spec:
  hosts: ["*"]
  gateways: [web-gw]
  http: [{route: [{destination: {host: web}}], timeout: "%(k)ss"}]
""",
    "gateway": """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: web-gw, namespace: a}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
""",
    "dr-b-local": """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: b}
spec:
  host: api
  exportTo: ["."]
  subsets: [{name: v%(k)s, labels: {version: v%(k)s}}]
""",
    "dr-a-everywhere": """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: a}
spec:
  host: web.a.svc.cluster.local
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
  subsets: [{name: v%(k)s, labels: {version: v%(k)s}}]
""",
    "dr-originates": """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api-tls, namespace: a}
spec:
  host: api.b.svc.cluster.local
  exportTo: ["."]
  trafficPolicy: {tls: {mode: SIMPLE, sni: "api-%(k)s"}}
""",
    "peer-auth-b": """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: b}
spec: {mtls: {mode: STRICT}}
""",
    "peer-auth-a-off": """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: plaintext, namespace: a}
spec: {mtls: {mode: DISABLE}}
""",
    "service-a": """
apiVersion: v1
kind: Service
metadata: {name: extra-%(k)s, namespace: a}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
""",
}


def _workloads(api_ready: bool = True) -> list[Workload]:
    mtls = {"security.istio.io/tlsMode": "istio"}
    return [Workload("a", "web-0", {"app": "web", **mtls}, "10.88.0.2", "web", True),
            Workload("b", "api-0", {"app": "api", **mtls}, "10.88.0.3", "api", api_ready),
            Workload("istio-system", "gw-0", {"istio": "ingressgateway"}, "10.88.0.4", "gw",
                     True)]


def _pods(workloads: list[Workload]) -> list[ProxyPod]:
    out = []
    for w in workloads:
        kind = "router" if w.namespace == "istio-system" else "sidecar"
        proxy = Proxy(kind, w.namespace, w.name, w.labels, w.ip)
        out.append(ProxyPod(proxy.node_id, proxy, w.service_account))
    return out


def _model(pieces: dict[str, str], api_ready: bool = True):  # type: ignore[no-untyped-def]
    text = "---".join([BASE, *(PIECES[name] % {"k": k} for name, k in pieces.items())])
    workloads = _workloads(api_ready)
    return build_model(Snapshot.of(load_text(text, "input.yaml").resources), workloads), \
        _pods(workloads)


def _published(push: Push) -> dict[str, object]:
    """Everything a push hands to the xDS server, as bytes (certificates left out: each
    push may sign anew)."""
    return {node: (n.state, _serialized(n.resources))
            for node, n in sorted(push.nodes.items())} | {"diagnostics": push.diagnostics}


def _serialized(resources: Mapping[str, Mapping[str, Message]]) -> dict[str, object]:
    return {t: {name: m.SerializeToString(deterministic=True) for name, m in sorted(rs.items())
                if name not in ("default", "ROOTCA")}
            for t, rs in sorted(resources.items())}


@pytest.fixture
def translations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Node ids translated, in order."""
    calls: list[str] = []
    real = push_module.translate_proxy

    def counting(model, proxy, *, now):  # type: ignore[no-untyped-def]
        calls.append(proxy.node_id)
        return real(model, proxy, now=now)

    monkeypatch.setattr(push_module, "translate_proxy", counting)
    return calls


A, B, GW = "sidecar~web-0.a", "sidecar~api-0.b", "router~gw-0.istio-system"
WEB, API = "web.a.svc.cluster.local", "api.b.svc.cluster.local"


def _push_twice(before: dict[str, str], after: dict[str, str], calls: list[str],
                **after_model: bool) -> Push:
    memo, ids = TranslationMemo(), RealCaIdentities()
    plan_push(*_model(before), ids, now=NOW, memo=memo)
    calls.clear()
    return plan_push(*_model(after, **after_model), ids, now=NOW, memo=memo)


@pytest.mark.parametrize(("change", "translated"), [
    # A VirtualService of namespace a exported only to a: b's sidecar is not translated.
    ("vs-a-local", [A, GW]),
    # A DestinationRule of b exported only to b: a's sidecar is not translated.
    ("dr-b-local", [B, GW]),
    # Bound to a gateway only, or a Gateway: no sidecar reads them.
    ("vs-gateway-only", [GW]),
    ("gateway", [GW]),
    # Exported everywhere: every proxy.
    ("vs-a-everywhere", [A, B, GW]),
    ("dr-a-everywhere", [A, B, GW]),
    # Exported to b from a: only b (and the gateway).
    ("vs-a-to-b", [B, GW]),
])
def test_a_change_translates_only_the_proxies_that_read_it(
        change: str, translated: list[str], translations: list[str]) -> None:
    _push_twice({change: "1"}, {change: "2"}, translations)
    assert translations == translated


def test_a_change_of_namespace_a_keeps_b_sidecar_and_publishes_what_a_full_push_would(
        translations: list[str]) -> None:
    incremental = _push_twice({"vs-a-local": "1"}, {"vs-a-local": "2"}, translations)
    assert B not in translations
    full = plan_push(*_model({"vs-a-local": "2"}), RealCaIdentities(), now=NOW)
    assert _published(incremental) == _published(full)


def test_nothing_is_kept_when_workloads_change_or_a_rule_originates_tls(
        translations: list[str]) -> None:
    _push_twice({"vs-a-local": "1"}, {"vs-a-local": "1"}, translations, api_ready=False)
    assert translations == [A, B, GW]
    # Origination checks certificate files at `now`: such sidecars are translated each push.
    _push_twice({"dr-originates": "1", "vs-a-local": "1"},
                {"dr-originates": "1", "vs-a-local": "2"}, translations)
    assert translations == [A, B, GW]


@pytest.fixture
def host_builds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(host, client namespace) of every host's clusters built, in order."""
    calls: list[tuple[str, str]] = []
    real = client_tls._host_clusters

    def counting(model, svc, client_ns, *args):  # type: ignore[no-untyped-def]
        calls.append((svc.fqdn, client_ns))
        return real(model, svc, client_ns, *args)

    monkeypatch.setattr(client_tls, "_host_clusters", counting)
    return calls


def test_a_change_rebuilds_only_the_clusters_of_the_hosts_it_touches(
        host_builds: list[tuple[str, str]]) -> None:
    memo, ids = TranslationMemo(), RealCaIdentities()
    plan_push(*_model({"vs-a-everywhere": "1", "dr-a-everywhere": "1"}), ids, now=NOW,
              memo=memo)
    assert host_builds  # the first push builds every host's clusters for every namespace
    # A VirtualService: no cluster reads it.
    host_builds.clear()
    plan_push(*_model({"vs-a-everywhere": "2", "dr-a-everywhere": "1"}), ids, now=NOW,
              memo=memo)
    assert host_builds == []
    # A DestinationRule of web: web's clusters, as each namespace's clients see them.
    host_builds.clear()
    plan_push(*_model({"vs-a-everywhere": "2", "dr-a-everywhere": "2"}), ids, now=NOW,
              memo=memo)
    assert sorted(set(host_builds)) == [(WEB, "a"), (WEB, "b"), (WEB, "istio-system")]
    # A PeerAuthentication (endpoints' auto mTLS labels): every host again.
    host_builds.clear()
    plan_push(*_model({"vs-a-everywhere": "2", "dr-a-everywhere": "2", "peer-auth-b": "1"}),
              ids, now=NOW, memo=memo)
    assert {h for h, _ in host_builds} == {WEB, API}


def test_sidecars_of_one_namespace_share_clusters_only_where_the_same_rules_apply() -> None:
    """A rule of namespace a selecting web's pods: web-0 sees its subsets, cron-0 (same
    namespace, other labels) does not; each gets what translating it alone gives."""
    text = BASE + """---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api-for-web, namespace: a}
spec:
  host: api.b.svc.cluster.local
  workloadSelector: {matchLabels: {app: web}}
  subsets: [{name: v1, labels: {version: v1}}]
"""
    workloads = [*_workloads(), Workload("a", "cron-0", {"app": "cron"}, "10.88.0.9", "cron",
                                         True)]
    snapshot = Snapshot.of(load_text(text, "input.yaml").resources)
    pods = _pods(workloads)
    push = plan_push(build_model(snapshot, workloads), pods, RealCaIdentities(), now=NOW)
    for pod in pods:
        alone = translate_proxy(build_model(snapshot, workloads), pod.proxy, now=NOW)
        assert _serialized(push.nodes[pod.node_id].resources) == _serialized(
            alone.by_type_url()), pod.node_id
    subset = "outbound|80|v1|api.b.svc.cluster.local"
    assert subset in push.nodes[A].resources[type_urls.CLUSTER]
    assert subset not in push.nodes["sidecar~cron-0.a"].resources[type_urls.CLUSTER]


def test_sidecars_of_one_view_hand_over_the_very_same_service_clusters() -> None:
    """Two sidecars of namespace a, one service account, that the same rules apply to: their
    services' clusters and endpoints are one mapping (the shared layer the xDS snapshots
    build once); their own clusters (inbound) are their own."""
    workloads = [*_workloads(), Workload("a", "cron-0", {"app": "cron"}, "10.88.0.9", "web",
                                         True)]
    snapshot = Snapshot.of(load_text(BASE, "input.yaml").resources)
    push = plan_push(build_model(snapshot, workloads), _pods(workloads), RealCaIdentities(),
                     now=NOW)
    web, cron = (push.nodes[n].resources for n in (A, "sidecar~cron-0.a"))
    for type_url in (type_urls.CLUSTER, type_urls.ENDPOINT):
        layers = [web[type_url], cron[type_url]]
        assert all(isinstance(m, ChainMap) for m in layers)
        assert layers[0].maps[1] is layers[1].maps[1]
        assert f"outbound|80||{API}" in layers[0].maps[1]
    assert web[type_urls.CLUSTER].maps[0] is not cron[type_urls.CLUSTER].maps[0]


def test_clusters_that_check_certificates_at_now_are_built_again_at_each_push() -> None:
    """A DestinationRule originating TLS with a client certificate: its expiry is checked at
    each push's clock, so nothing built at the last push is reused."""
    text = BASE + """---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api-mtls, namespace: a}
spec:
  host: api.b.svc.cluster.local
  workloadSelector: {matchLabels: {app: web}}
  trafficPolicy: {tls: {mode: MUTUAL, credentialName: client}}
---
apiVersion: v1
kind: Secret
metadata: {name: client, namespace: a}
stringData: {tls.crt: "@expired.example.com.crt", tls.key: "@expired.example.com.key",
             ca.crt: "@example.com.crt"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-secrets, namespace: a}
rules: [{apiGroups: [""], resources: [secrets], verbs: [list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: web-reads-secrets, namespace: a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-secrets}
subjects: [{kind: ServiceAccount, name: web, namespace: a}]
"""
    valid, expired = datetime(2000, 6, 1, tzinfo=UTC), datetime(2001, 6, 1, tzinfo=UTC)
    workloads = _workloads()
    memo, ids = TranslationMemo(), RealCaIdentities()
    plan_push(build_model(load_resources(text), workloads), _pods(workloads), ids, now=valid,
              memo=memo)
    changed = load_resources("---".join([text, PIECES["vs-a-everywhere"] % {"k": "2"}]))
    incremental = plan_push(build_model(changed, workloads), _pods(workloads), ids,
                            now=expired, memo=memo)
    full = plan_push(build_model(changed, workloads), _pods(workloads), ids, now=expired)
    assert "CR0304" in {d.code for d in full.diagnostics}
    assert _published(incremental) == _published(full)


def test_incremental_pushes_equal_full_pushes_over_a_sequence_of_changes(
        translations: list[str], host_builds: list[tuple[str, str]]) -> None:
    rng = random.Random(11)
    memo, ids = TranslationMemo(), RealCaIdentities()
    pieces: dict[str, str] = {}
    kept = reused = 0
    packer, last = Packer(), {}  # the xDS side: snapshots built from the node's last one
    for step in range(40):
        # Each step adds, edits or removes one or two pieces, now and then a pod goes unready.
        for name in rng.sample(sorted(set(PIECES) - {"dr-originates"}), rng.choice((1, 1, 2))):
            if name in pieces and rng.random() < 0.5:
                del pieces[name]
            else:
                pieces[name] = str(step)
        # A rule that originates TLS, for a few steps: every sidecar is translated then.
        if step in (30, 31):
            pieces["dr-originates"] = str(step)
        if step == 34:
            del pieces["dr-originates"]
        api_ready = rng.random() > 0.1
        translations.clear()
        host_builds.clear()
        incremental = plan_push(*_model(pieces, api_ready), ids, now=NOW, memo=memo)
        kept += 3 - len(translations)
        built = len(host_builds)
        host_builds.clear()
        full = plan_push(*_model(pieces, api_ready), ids, now=NOW)
        reused += len(host_builds) - built
        assert _published(incremental) == _published(full), f"step {step}: {pieces}"
        # Built from layers and from the last snapshot, as a fresh flat build.
        shared: SharedLayers = {}
        for node, planned in incremental.nodes.items():
            packer.start(node)
            last[node] = XdsSnapshot.build(planned.resources, packer, last.get(node), shared)
            flat = {t: dict(m) for t, m in planned.resources.items()}
            assert last[node].version == XdsSnapshot.build(flat).version, f"step {step} {node}"
    # The sequence did exercise kept translations and hosts' clusters kept from a push.
    assert kept > 15
    assert reused > 40
