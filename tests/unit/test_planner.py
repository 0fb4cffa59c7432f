"""The planner's Istio injection rules and pod shape, without running anything."""

from __future__ import annotations

import pytest

from sailmesh.meshd.planner import (
    PROXY_READY_PORT,
    PlannedPod,
    injection_wanted,
    plan_pods,
    service_rules,
)
from sailmesh.model.injection import TLS_MODE_LABEL
from sailmesh.model.snapshot import Snapshot
from sailmesh.model.stats_inclusion import StatsInclusion
from sailmesh.resources.core import Deployment
from sailmesh.resources.errors import ResourceError
from sailmesh.resources.loader import load_text
from sailmesh.runtime.plans import CapturePlan, ContainerPlan, PodPlan


def _snapshot(ns_labels: dict[str, str], pod_labels: dict[str, str], annotations: dict[str, str],
              mount_path: str | None = None) -> Snapshot:
    def flow(d: dict[str, str]) -> str:
        return "{" + ", ".join(f'"{k}": "{v}"' for k, v in d.items()) + "}"

    mount = ""
    volumes = ""
    if mount_path:
        mount = f"\n        volumeMounts: [{{name: cfg, mountPath: {mount_path}}}]"
        volumes = "\n      volumes: [{name: cfg, configMap: {name: cfg}}]"
    text = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: foo, labels: {flow(ns_labels)}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg, namespace: foo}}
data: {{a: b}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {flow({"app": "app", **pod_labels})}, annotations: {flow(annotations)}}}
    spec:
      serviceAccountName: robot
      containers:
      - name: app
        image: curlimages/curl
        command: [/bin/sleep, infinity]
        ports: [{{containerPort: 8080}}]{mount}{volumes}
"""
    return Snapshot.of(load_text(text, "test.yaml", None).resources)


def _router(ns: str, pod: str, stats: StatsInclusion) -> ContainerPlan:
    return ContainerPlan("istio-proxy", ("/bin/true",), {})


def _sidecar(ns: str, pod: str, sa: str, stats: StatsInclusion) -> ContainerPlan:
    # The stats the proxy keeps, where a test can read them.
    return ContainerPlan("istio-proxy", ("/usr/local/bin/envoy", sa),
                         {"STATS_PREFIXES": ",".join(stats.prefixes)}, run_as_uid=1337)


@pytest.mark.parametrize(("ns_labels", "pod_labels", "annotations", "injected"), [
    ({"istio-injection": "enabled"}, {}, {}, True),
    ({}, {}, {}, False),
    ({"istio-injection": "enabled"}, {}, {"sidecar.istio.io/inject": "false"}, False),
    ({"istio-injection": "enabled"}, {"sidecar.istio.io/inject": "false"}, {}, False),
    ({}, {"sidecar.istio.io/inject": "true"}, {}, True),
    ({"istio-injection": "disabled"}, {"sidecar.istio.io/inject": "true"}, {}, False),
])
def test_injection_rules(ns_labels: dict[str, str], pod_labels: dict[str, str],
                         annotations: dict[str, str], injected: bool) -> None:
    snap = _snapshot(ns_labels, pod_labels, annotations)
    (dep,) = snap.of_kind(Deployment)
    assert injection_wanted(snap, dep) is injected
    plan = plan_pods(snap, {}, [], _router, _sidecar)
    (pod,) = plan.pods
    assert pod.sidecar is injected
    names = [c.name for c in pod.plan.containers]
    if injected:
        assert names == ["app", "istio-proxy"]
        assert pod.plan.containers[1].argv[-1] == "robot"  # the service account is passed on
        assert pod.plan.labels[TLS_MODE_LABEL] == "istio"
        assert pod.plan.capture == CapturePlan()
        assert PROXY_READY_PORT in pod.plan.ready_ports
    else:
        assert names == ["app"] and pod.plan.capture is None
        assert TLS_MODE_LABEL not in pod.plan.labels


def test_no_sidecar_factory_means_no_injection() -> None:
    snap = _snapshot({"istio-injection": "enabled"}, {}, {})
    (pod,) = plan_pods(snap, {}, [], _router).pods
    assert not pod.sidecar and len(pod.plan.containers) == 1


def test_new_top_level_mount_path_blocks_the_pod_with_the_reason() -> None:
    plan = plan_pods(_snapshot({}, {}, {}, "/certs-sm-test"), {}, [], _router, _sidecar)
    assert not plan.pods
    (why,) = (b.message for b in plan.blocked.values())
    assert "needs a new top-level directory '/certs-sm-test'" in why and "/etc/certs-sm-test" in why
    ok = plan_pods(_snapshot({}, {}, {}, "/etc/certs"), {}, [], _router, _sidecar)
    assert len(ok.pods) == 1 and not ok.blocked


def _user_volume_snapshot(annotations: str, ns_labels: str = "{istio-injection: enabled}") -> Snapshot:
    text = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: foo, labels: {ns_labels}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: client, namespace: foo}}
stringData: {{tls.crt: CERT, tls.key: KEY}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg, namespace: foo}}
data: {{a: b}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata:
      labels: {{app: app}}
      annotations:
{annotations}
    spec:
      containers:
      - name: app
        image: curlimages/curl
        volumeMounts: [{{name: cfg, mountPath: /etc/app-cfg}}]
      volumes: [{{name: cfg, configMap: {{name: cfg}}}}]
"""
    return Snapshot.of(load_text(text, "test.yaml", None).resources)


@pytest.mark.parametrize("annotations", [
    # Istio's list form, with the `readonly` spelling of Istio's own examples.
    """        sidecar.istio.io/userVolume: '[{"name": "certs", "secret": {"secretName": "client"}}]'
        sidecar.istio.io/userVolumeMount: '[{"name": "certs", "mountPath": "/etc/client-certs", "readonly": true}]'""",
    # The map form (name → object).
    """        sidecar.istio.io/userVolume: '{"certs": {"secret": {"secretName": "client"}}}'
        sidecar.istio.io/userVolumeMount: '{"certs": {"mountPath": "/etc/client-certs", "readOnly": true}}'""",
])
def test_user_volume_mounts_reach_the_sidecar(annotations: str) -> None:
    (pod,) = plan_pods(_user_volume_snapshot(annotations), {}, [], _router, _sidecar).pods
    volumes = {v.mount_path: v for v in pod.plan.volumes}
    assert set(volumes) == {"/etc/app-cfg", "/etc/client-certs"}
    certs = volumes["/etc/client-certs"]
    assert certs.files == {"tls.crt": b"CERT", "tls.key": b"KEY"} and certs.read_only


def test_user_volume_mount_of_a_pod_volume_and_no_sidecar_no_mount() -> None:
    ann = """        sidecar.istio.io/userVolumeMount: '[{"name": "cfg", "mountPath": "/etc/proxy-cfg"}]'"""
    (pod,) = plan_pods(_user_volume_snapshot(ann), {}, [], _router, _sidecar).pods
    assert {v.mount_path for v in pod.plan.volumes} == {"/etc/app-cfg", "/etc/proxy-cfg"}
    (plain,) = plan_pods(_user_volume_snapshot(ann, "{}"), {}, [], _router, _sidecar).pods
    assert {v.mount_path for v in plain.plan.volumes} == {"/etc/app-cfg"}


@pytest.mark.parametrize(("annotations", "reason"), [
    ("""        sidecar.istio.io/userVolumeMount: '[{"name": "nope", "mountPath": "/etc/x"}]'""",
     "mount 'nope' names no volume"),
    ("""        sidecar.istio.io/userVolumeMount: '[{"name": "cfg"'""", "not valid JSON"),
    ("""        sidecar.istio.io/userVolume: '[{"name": "v", "secret": {"secretNam": "x"}}]'""",
     "volume 0 (v): secret.secretName: Field required"),
])
def test_bad_user_volumes_are_refused_at_apply(annotations: str, reason: str) -> None:
    with pytest.raises(ResourceError) as caught:
        _user_volume_snapshot(annotations)
    (problem,) = caught.value.errors
    assert problem.line == 25 and problem.ref == "Deployment foo/app"
    assert problem.field.startswith("spec.template.metadata.annotations[sidecar.istio.io/userVolume")
    assert reason in problem.message, problem.message


def test_a_user_volume_mount_over_an_app_mount_blocks_the_pod() -> None:
    ann = """        sidecar.istio.io/userVolume: '[{"name": "certs", "secret": {"secretName": "client"}}]'
        sidecar.istio.io/userVolumeMount: '[{"name": "certs", "mountPath": "/etc/app-cfg"}]'"""
    plan = plan_pods(_user_volume_snapshot(ann), {}, [], _router, _sidecar)
    assert not plan.pods
    (why,) = (b.message for b in plan.blocked.values())
    assert "'/etc/app-cfg' is already mounted from volume 'cfg'" in why, why


def _optional_volume_snapshot(volume: str, objects: str = "") -> Snapshot:
    text = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: foo}}
{objects}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: curl, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: curl}}}}
  template:
    metadata: {{labels: {{app: curl}}}}
    spec:
      containers:
      - name: curl
        image: curlimages/curl
        command: [/bin/sleep, infinity]
        volumeMounts: [{{name: v, mountPath: /etc/curl/tls}}]
      volumes: [{volume}]
"""
    return Snapshot.of(load_text(text, "test.yaml", None).resources)


_SECRET = """---
apiVersion: v1
kind: Secret
metadata: {name: curl-secret, namespace: foo}
stringData: {tls.crt: CERT, tls.key: KEY}"""
_CONFIGMAP = """---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: foo}
data: {a: b}"""


@pytest.mark.parametrize(("volume", "objects", "files", "blocked"), [
    # Istio's samples/curl/curl.yaml: the client-certificate Secret is optional.
    ("{name: v, secret: {secretName: curl-secret, optional: true}}", "", {}, None),
    ("{name: v, secret: {secretName: curl-secret, optional: true}}", _SECRET,
     {"tls.crt": b"CERT", "tls.key": b"KEY"}, None),
    ("{name: v, secret: {secretName: curl-secret}}", "", None, 'secret "curl-secret" not found'),
    ("{name: v, secret: {secretName: curl-secret, optional: false}}", "", None,
     'secret "curl-secret" not found'),
    ("{name: v, configMap: {name: cfg, optional: true}}", "", {}, None),
    ("{name: v, configMap: {name: cfg}}", "", None, 'configmap "cfg" not found'),
    # Optional items: a missing key is left out; without optional it keeps the pod down.
    ("{name: v, secret: {secretName: curl-secret, optional: true, items: "
     "[{key: tls.crt, path: cert.pem}, {key: ca.crt, path: ca.pem}]}}", _SECRET,
     {"cert.pem": b"CERT"}, None),
    ("{name: v, secret: {secretName: curl-secret, items: [{key: ca.crt, path: ca.pem}]}}",
     _SECRET, None, "key 'ca.crt' not found"),
    ("{name: v, configMap: {name: cfg, optional: true, items: [{key: a, path: x/a}]}}",
     _CONFIGMAP, {"x/a": b"b"}, None),
])
def test_optional_secret_and_configmap_volumes(volume: str, objects: str,
                                               files: dict[str, bytes] | None,
                                               blocked: str | None) -> None:
    plan = plan_pods(_optional_volume_snapshot(volume, objects), {}, [], _router, _sidecar)
    if blocked is not None:
        assert not plan.pods
        (why,) = (b.message for b in plan.blocked.values())
        assert blocked in why, why
        return
    (pod,) = plan.pods
    (mounted,) = pod.plan.volumes
    assert mounted.mount_path == "/etc/curl/tls" and dict(mounted.files) == files


def _image_snapshot(image: str, ns_labels: str = "{istio-injection: enabled}") -> Snapshot:
    text = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: foo, labels: {ns_labels}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web-v1, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web, version: v1}}}}
    spec:
      containers:
      - {{name: web, image: "{image}"}}
"""
    return Snapshot.of(load_text(text, "test.yaml", None).resources)


def test_an_image_without_local_equivalent_waits_as_the_kubelet_reports_it() -> None:
    plan = plan_pods(_image_snapshot("example.com/team/web:1.2"), {}, [], _router, _sidecar)
    assert not plan.pods
    ((ns, pod), blocked), = plan.blocked.items()
    assert ns == "foo" and pod.startswith("web-v1-")
    assert blocked.deployment == "web-v1"
    assert blocked.labels["app"] == "web" and blocked.labels["version"] == "v1"
    assert blocked.labels["pod-template-hash"] == pod.rsplit("-", 2)[-2]
    # The injected sidecar is part of the pod as Kubernetes shows it (0/2).
    assert blocked.containers == ("web", "istio-proxy")
    assert (blocked.container, blocked.reason) == ("web", "ImagePullBackOff")
    assert "'example.com/team/web:1.2' has no local equivalent" in blocked.message
    assert "command" in blocked.message  # says what to do
    assert [e[1:] for e in blocked.events()] == [
        ("Failed", f'Failed to pull image "example.com/team/web:1.2": {blocked.message}'),
        ("Failed", "Error: ErrImagePull"),
        ("BackOff", 'Back-off pulling image "example.com/team/web:1.2"'),
        ("Failed", "Error: ImagePullBackOff")]


def test_a_missing_volume_source_keeps_the_pod_creating() -> None:
    plan = plan_pods(_snapshot({}, {}, {}, "/certs-sm-test"), {}, [], _router, _sidecar)
    (blocked,) = plan.blocked.values()
    assert (blocked.container, blocked.reason) == ("", "ContainerCreating")
    assert blocked.containers == ("app",)
    assert [e[:2] for e in blocked.events()] == [("Warning", "FailedMount")]


def _projected_snapshot(sources: str) -> Snapshot:
    text = f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg, namespace: foo}}
data: {{a: "1", b: "2"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: creds, namespace: foo}}
stringData: {{tls.crt: CERT}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app, namespace: foo}}
spec:
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {{app: app, version: v1}}, annotations: {{team: blue}}}}
    spec:
      containers:
      - name: app
        image: curlimages/curl
        volumeMounts: [{{name: all, mountPath: /etc/all}}]
      volumes:
      - name: all
        projected:
          sources:
{sources}
"""
    return Snapshot.of(load_text(text, "test.yaml", None).resources)


def test_projected_volume_joins_its_sources_as_the_kubelet_does() -> None:
    snap = _projected_snapshot("""\
          - configMap: {name: cfg, items: [{key: a, path: conf/a.txt}]}
          - secret: {name: creds}
          - secret: {name: absent, optional: true}
          - downwardAPI:
              items:
              - {path: labels, fieldRef: {fieldPath: metadata.labels}}
              - {path: name, fieldRef: {fieldPath: metadata.name}}
              - {path: ns, fieldRef: {fieldPath: metadata.namespace}}
              - {path: team, fieldRef: {fieldPath: "metadata.annotations['team']"}}""")
    (pod,) = plan_pods(snap, {}, [], _router).pods
    (vol,) = pod.plan.volumes
    name = pod.plan.name
    assert vol.mount_path == "/etc/all"
    assert vol.files == {
        "conf/a.txt": b"1", "tls.crt": b"CERT", "name": name.encode(), "ns": b"foo",
        "labels": f'app="app"\npod-template-hash="{name.rsplit("-", 2)[-2]}"\nversion="v1"'.encode(),
        "team": b"blue"}


@pytest.mark.parametrize(("source", "reason"), [
    ("          - secret: {name: absent}", 'secret "absent" not found'),
    ("          - serviceAccountToken: {path: token, audience: istio-ca}",
     "signed by a Kubernetes API server"),
])
def test_projected_volume_that_cannot_be_filled_blocks_the_pod(source: str, reason: str) -> None:
    plan = plan_pods(_projected_snapshot(source), {}, [], _router)
    (blocked,) = plan.blocked.values()
    assert blocked.reason == "ContainerCreating" and reason in blocked.message, blocked.message


KUBE_PROXY_CASE = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: a}
spec:
  selector: {app: web, tier: front}
  ports: [{name: http, port: 80, targetPort: http}, {name: admin, port: 9000, targetPort: 9001}]
---
apiVersion: v1
kind: Service
metadata: {name: any-web, namespace: a}
spec:
  selector: {app: web}
  ports: [{port: 81, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: no-selector, namespace: a}
spec:
  ports: [{port: 82}]
"""


def _ready(ns: str, name: str, labels: dict[str, str], ip: str,
           ports: dict[str, int]) -> tuple[PlannedPod, str]:
    plan = PodPlan(namespace=ns, name=name, labels=labels, containers=())
    return PlannedPod(plan, name, "default", ports, router=False), ip


def test_service_rules_send_each_port_to_the_ready_pods_the_selector_selects() -> None:
    """kube-proxy: every selector label must match, in the Service's namespace only; a
    named targetPort resolves through each pod's own container ports (a pod without that
    port is left out)."""
    snap = Snapshot.of(load_text(KUBE_PROXY_CASE, "test.yaml", None).resources)
    vips = {("a", "web"): "10.96.0.1", ("a", "any-web"): "10.96.0.2",
            ("a", "no-selector"): "10.96.0.3"}
    ready = [_ready("a", "front-1", {"app": "web", "tier": "front"}, "10.88.0.2", {"http": 8080}),
             _ready("a", "front-2", {"tier": "front", "app": "web"}, "10.88.0.3", {"http": 8081}),
             _ready("a", "back", {"app": "web", "tier": "back"}, "10.88.0.4", {"http": 8080}),
             _ready("b", "other-ns", {"app": "web", "tier": "front"}, "10.88.0.5", {"http": 80}),
             _ready("a", "no-port", {"app": "web", "tier": "front"}, "10.88.0.6", {})]
    rules = {(r.vip, r.port): r.endpoints for r in service_rules(snap, vips, ready)}
    assert rules == {
        ("10.96.0.1", 80): (("10.88.0.2", 8080), ("10.88.0.3", 8081)),
        ("10.96.0.1", 9000): (("10.88.0.2", 9001), ("10.88.0.3", 9001), ("10.88.0.6", 9001)),
        ("10.96.0.2", 81): (("10.88.0.2", 8080), ("10.88.0.3", 8080), ("10.88.0.4", 8080),
                            ("10.88.0.6", 8080)),
    }


def test_pods_resolve_short_service_names_of_their_own_namespace_only() -> None:
    text = KUBE_PROXY_CASE + """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: a}
spec:
  replicas: 2
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec: {containers: [{name: c, image: curlimages/curl, command: [sleep, infinity]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: b}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec: {containers: [{name: c, image: curlimages/curl, command: [sleep, infinity]}]}
"""
    snap = Snapshot.of(load_text(text, "test.yaml", None).resources)
    plan = plan_pods(snap, {("a", "web"): "10.96.0.1"}, [], _router)
    hosts = {(p.plan.namespace, p.plan.name): dict(p.plan.hosts) for p in plan.pods}
    assert len(hosts) == 3
    for (ns, _), rows in hosts.items():
        short = ("web",) if ns == "a" else ()
        assert rows == {"10.96.0.1": (*short, "web.a", "web.a.svc", "web.a.svc.cluster.local")}


def test_the_proxy_keeps_the_stats_its_pod_asks_for() -> None:
    snap = _snapshot({"istio-injection": "enabled"}, {},
                     {"sidecar.istio.io/statsInclusionPrefixes": "listener"})
    (pod,) = plan_pods(snap, {}, [], _router, _sidecar).pods
    (proxy,) = (c for c in pod.plan.containers if c.name == "istio-proxy")
    assert proxy.env["STATS_PREFIXES"].split(",")[:2] == ["reporter=", "listener"]


def test_an_unreadable_proxy_config_annotation_blocks_the_pod() -> None:
    snap = _snapshot({"istio-injection": "enabled"}, {}, {"proxy.istio.io/config": "a: ["})
    plan = plan_pods(snap, {}, [], _router, _sidecar)
    assert not plan.pods
    (blocked,) = plan.blocked.values()
    assert blocked.reason == "CreateContainerConfigError" and blocked.container == "istio-proxy"
    assert "annotation proxy.istio.io/config: not valid YAML" in blocked.message
