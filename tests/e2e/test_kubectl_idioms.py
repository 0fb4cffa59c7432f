"""kubectl's idioms as Istio's pages type them, through the drop-in names of
`eval "$(sailctl env --aliases)"`, against a running mesh (instance kc)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
import yaml

from tests.e2e.mesh import REPO, Mesh

pytestmark = pytest.mark.e2e

ALIASES = 'eval "$(sailctl env --aliases)"; '

APPS = """\
apiVersion: v1
kind: Service
metadata: {name: httpbin, labels: {app: httpbin}}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 8000, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: httpbin}
spec:
  selector: {matchLabels: {app: httpbin}}
  template:
    metadata: {labels: {app: httpbin}}
    spec:
      containers:
      - name: httpbin
        image: docker.io/kong/httpbin
        command: [gunicorn, -b, 0.0.0.0:8080, httpbin:app, -k, gevent]
        ports: [{containerPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: sleep}
spec:
  selector: {matchLabels: {app: sleep}}
  template:
    metadata: {labels: {app: sleep}}
    spec:
      containers: [{name: sleep, image: curlimages/curl, command: [/bin/sleep, infinity]}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: ["*"]
  gateways: [gw]
  http: [{route: [{destination: {host: httpbin, port: {number: 8000}}}]}]
"""


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("kc")
    try:
        m.sh(ALIASES + "kubectl create ns foo && kubectl label ns foo istio-injection=enabled")
        m.sh(ALIASES + "kubectl apply -n foo -f -", input=APPS)
        m.sh(ALIASES + "kubectl -n foo rollout status deployment httpbin --timeout=60s", timeout=90)
        m.sh(ALIASES + "kubectl -n foo wait --for=condition=Ready pod -l app=sleep --timeout=60s",
             timeout=90)
        yield m
    finally:
        m.stop()


def k(mesh: Mesh, cmd: str, check: bool = True) -> tuple[int, str, str]:
    proc = mesh.sh(ALIASES + cmd, check=check, timeout=90)
    return proc.returncode, proc.stdout, proc.stderr


def test_aliases_are_shell_functions_of_this_shell_only(mesh: Mesh) -> None:
    _, out, _ = k(mesh, "type -t kubectl istioctl oc")
    assert out.split() == ["function", "function", "function"]
    # Not in a shell that did not evaluate them.
    assert "sailctl" not in mesh.sh("type kubectl 2>&1 || true").stdout


def test_jsonpath_of_the_istio_pages(mesh: Mesh) -> None:
    _, name, _ = k(mesh, "kubectl get pod -l app=sleep -n foo -o jsonpath={.items..metadata.name}")
    assert re.fullmatch(r"sleep-[0-9a-f]{10}-[a-z0-9]{5}", name), name
    _, port, _ = k(mesh, "kubectl -n istio-system get service istio-ingressgateway"
                         " -o jsonpath='{.spec.ports[?(@.name==\"https\")].port}'")
    assert port == "443"
    _, lines, _ = k(mesh, "kubectl get pods -n foo -o jsonpath='{range .items[*]}{.metadata.name}"
                          "{\"\\t\"}{.status.phase}{\"\\n\"}{end}'")
    assert sorted(line.split("\t")[1] for line in lines.splitlines()) == ["Running", "Running"]
    _, ip, _ = k(mesh, f"kubectl get pod {name} -n foo -o jsonpath='{{.status.podIP}}'")
    assert ip.startswith("10.244.")


def test_output_formats(mesh: Mesh) -> None:
    _, out, _ = k(mesh, "kubectl get deploy -n foo -o name")
    assert out.split() == ["deployment.apps/httpbin", "deployment.apps/sleep"]
    _, out, _ = k(mesh, "kubectl get pods -n foo -o custom-columns=NAME:.metadata.name,"
                        "CONTAINERS:.spec.containers[*].name --no-headers")
    assert sorted(line.split()[1] for line in out.splitlines()) == ["httpbin,istio-proxy",
                                                                    "sleep,istio-proxy"]
    code, _, err = k(mesh, "kubectl get pods -n foo -o bogus", check=False)
    assert code == 1 and 'unable to match a printer suitable for the output format "bogus"' in err
    _, out, _ = k(mesh, "kubectl get deploy -n foo")
    assert out.splitlines()[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert out.splitlines()[1].split()[:4] == ["httpbin", "1/1", "1", "1"]
    _, out, _ = k(mesh, "kubectl get svc -n foo -o wide")
    assert out.splitlines()[0].split()[-1] == "SELECTOR" and "app=httpbin" in out
    doc = json.loads(k(mesh, "kubectl get pod -n foo -l app=httpbin -o json")[1])
    assert doc["kind"] == "List" and doc["items"][0]["status"]["phase"] == "Running"


def test_several_kinds_and_all(mesh: Mesh) -> None:
    code, out, err = k(mesh, "kubectl get gateway,virtualservice -n foo")
    assert code == 0, err
    tables = out.split("\n\n")
    assert tables[0].splitlines()[1].split()[0] == "gateway.networking.istio.io/gw"
    assert tables[1].splitlines()[0].split() == ["NAME", "GATEWAYS", "HOSTS", "AGE"]
    _, out, _ = k(mesh, "kubectl get all -n foo")
    names = [line.split()[0] for line in out.splitlines() if line and not line.startswith("NAME")]
    assert "service/httpbin" in names and "deployment.apps/sleep" in names
    assert any(n.startswith("pod/httpbin-") for n in names)
    assert any(n.startswith("replicaset.apps/httpbin-") for n in names)


def test_no_resources_found(mesh: Mesh) -> None:
    code, out, err = k(mesh, "kubectl get peerauthentication --all-namespaces")
    assert (code, out, err) == (0, "", "No resources found\n")
    code, out, err = k(mesh, "kubectl get destinationrule -n foo")
    assert (code, out, err) == (0, "", "No resources found in foo namespace.\n")
    code, _, err = k(mesh, "kubectl get vs nope -n foo", check=False)
    assert code == 1 and 'virtualservices.networking.istio.io "nope" not found' in err


def test_exec_container_and_exit_code(mesh: Mesh) -> None:
    _, out, _ = k(mesh, 'kubectl exec "$(kubectl get pod -l app=sleep -n foo -o jsonpath={.items..metadata.name})"'
                        ' -c sleep -n foo -- curl http://httpbin.foo:8000/ip -s -o /dev/null -w "%{http_code}\\n"')
    assert out == "200\n"
    code, _, err = k(mesh, "kubectl exec deploy/sleep -n foo -- curl -s http://nowhere.foo/", check=False)
    assert code == 6 and err.endswith("command terminated with exit code 6\n")
    _, out, _ = k(mesh, "kubectl exec deploy/sleep -n foo -c istio-proxy -- id -u")
    assert out.strip() == "1337"  # the proxy's user, as in Istio: not captured
    code, _, err = k(mesh, "kubectl exec deploy/sleep -n foo -c nope -- true", check=False)
    assert code == 1 and "container nope is not valid" in err


UNPULLABLE = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "example.com/acme/web:1.0", ports: [{containerPort: 80}]}]
"""


def test_an_image_without_local_equivalent_waits_as_on_kubernetes(mesh: Mesh) -> None:
    """Kubernetes accepts the Deployment (exit 0) and its pod waits in ImagePullBackOff;
    sailmesh says why in the same places: apply's warning, STATUS, describe's Events, and
    logs/exec answer as kubectl does for a container that never started."""
    proc = mesh.sh(ALIASES + "kubectl apply -n foo -f -", input=UNPULLABLE, check=False, timeout=90)
    code, out, err = proc.returncode, proc.stdout, proc.stderr
    assert (code, out) == (0, "deployment.apps/web created\n"), err
    assert err.startswith("warning: Deployment foo/web:"), err
    assert "'example.com/acme/web:1.0' has no local equivalent" in err
    try:
        _, out, _ = k(mesh, "kubectl get pods -n foo -l app=web --no-headers")
        name, ready, status = out.split()[:3]
        assert (ready, status) == ("0/2", "ImagePullBackOff"), out
        _, out, _ = k(mesh, "kubectl describe pod -n foo -l app=web")
        assert re.search(r"^ +Reason: +ImagePullBackOff$", out, re.M), out
        assert re.search(r'^  Warning  Failed +-     kubelet  Failed to pull image '
                         r'"example.com/acme/web:1.0": .*no local equivalent', out, re.M), out
        assert re.search(r"^  Normal   BackOff .*Back-off pulling image", out, re.M), out
        code, out, err = k(mesh, "kubectl logs deploy/web -n foo", check=False)
        assert code == 1 and out == ""
        first, why = err.splitlines()[:2]
        assert first == (f'Error from server (BadRequest): container "web" in pod "{name}" '
                         "is waiting to start: trying and failing to pull image")
        assert "has no local equivalent" in why and "command" in why
        code, out, err = k(mesh, f"kubectl exec {name} -n foo -- true", check=False)
        assert code == 1
        assert err.splitlines()[0] == 'error: unable to upgrade connection: container not found ("web")'
        assert "has no local equivalent" in err
        _, out, _ = k(mesh, "kubectl get deploy web -n foo --no-headers")
        assert out.split()[1:4] == ["0/1", "1", "0"]
    finally:
        k(mesh, "kubectl delete deploy web -n foo")


def test_logs_by_selector_and_container(mesh: Mesh) -> None:
    k(mesh, "kubectl exec deploy/sleep -n foo -- curl -s http://httpbin.foo:8000/status/418")
    _, out, _ = k(mesh, "kubectl logs -n foo -l app=httpbin -c httpbin --tail=50")
    assert "gunicorn" in out.lower() or "GET /status/418" in out
    _, out, _ = k(mesh, "kubectl logs -n foo deploy/httpbin --tail=1")
    assert len(out.splitlines()) <= 1


def test_describe(mesh: Mesh) -> None:
    _, out, _ = k(mesh, "kubectl describe pod -n foo -l app=httpbin")
    assert re.search(r"^Name:\s+httpbin-", out, re.M) and re.search(r"^Status:\s+Running", out, re.M)
    assert re.search(r"^  istio-proxy:", out, re.M)
    _, out, _ = k(mesh, "kubectl describe deploy httpbin -n foo")
    assert re.search(r"^Replicas:\s+1 desired \| 1 updated \| 1 total \| 1 available \| 0 unavailable", out, re.M)
    _, out, _ = k(mesh, "kubectl describe svc httpbin -n foo")
    assert re.search(r"^Endpoints:\s+10\.244\.\S+:8080", out, re.M)


def test_rollout_restart_replaces_pods(mesh: Mesh) -> None:
    _, old, _ = k(mesh, "kubectl get pod -n foo -l app=httpbin -o name")
    _, out, _ = k(mesh, "kubectl rollout restart deploy/httpbin -n foo")
    assert out == "deployment.apps/httpbin restarted\n"
    _, out, _ = k(mesh, "kubectl rollout status deploy/httpbin -n foo --timeout=60s")
    assert out.endswith('deployment "httpbin" successfully rolled out\n')
    _, new, _ = k(mesh, "kubectl get pod -n foo -l app=httpbin -o name")
    assert new and new != old
    _, out, _ = k(mesh, f"kubectl wait --for=delete {old.strip()} -n foo --timeout=10s")
    code, _, err = k(mesh, "kubectl wait --for=condition=Ready pod -l app=nothing -n foo --timeout=1s",
                     check=False)
    assert code == 1 and "no matching resources found" in err


def test_scale_annotate_patch(mesh: Mesh) -> None:
    assert k(mesh, "kubectl scale deploy/sleep -n foo --replicas=2")[1] == "deployment.apps/sleep scaled\n"
    k(mesh, "kubectl wait --for=condition=Available deploy/sleep -n foo --timeout=60s")
    _, out, _ = k(mesh, "kubectl get deploy sleep -n foo -o jsonpath={.status.readyReplicas}")
    assert out == "2"
    k(mesh, "kubectl patch deploy sleep -n foo --type merge -p '{\"spec\":{\"replicas\":1}}'")
    _, out, _ = k(mesh, "kubectl patch deploy sleep -n foo --type json"
                        " -p '[{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":1}]'")
    assert out == "deployment.apps/sleep patched (no change)\n"
    k(mesh, "kubectl annotate deploy sleep -n foo team=blue")
    code, _, err = k(mesh, "kubectl annotate deploy sleep -n foo team=red", check=False)
    assert code == 1 and "--overwrite is false" in err
    _, out, _ = k(mesh, "kubectl get deploy sleep -n foo -o custom-columns=R:.spec.replicas,A:.metadata.annotations")
    assert out.splitlines()[1].split() == ["1", "map[team:blue]"]


def test_delete_gateway_pod_by_label_restarts_it(mesh: Mesh) -> None:
    # Seed 04's `oc delete pod -l app=istio-ingressgateway -n istio-system`.
    _, old, _ = k(mesh, "oc get pod -n istio-system -l app=istio-ingressgateway -o name")
    code, out, err = k(mesh, "oc delete pod -l app=istio-ingressgateway -n istio-system")
    assert code == 0 and out == f'pod "{old.strip().removeprefix("pod/")}" deleted\n', err
    k(mesh, "oc -n istio-system rollout status deploy/istio-ingressgateway --timeout=60s")
    _, new, _ = k(mesh, "oc get pod -n istio-system -l app=istio-ingressgateway -o name")
    assert new.strip() and new != old
    assert mesh.sh("curl -s -o /dev/null -w '%{http_code}' --retry 20 --retry-all-errors --retry-delay 1"
                   " http://127.0.0.1:8080/status/200", timeout=60).stdout == "200"


def test_delete_several_namespaces_and_by_selector(mesh: Mesh) -> None:
    k(mesh, "kubectl create ns a1 && kubectl create ns a2")
    k(mesh, "kubectl create configmap c1 -n a1 --from-literal=x=1")
    k(mesh, "kubectl label cm c1 -n a1 tier=x")
    assert k(mesh, "kubectl delete cm -l tier=x -n a1")[1] == 'configmap "c1" deleted\n'
    assert k(mesh, "kubectl delete ns a1 a2")[1] == 'namespace "a1" deleted\nnamespace "a2" deleted\n'


def test_kube_inject_output_applies_with_a_sidecar(mesh: Mesh) -> None:
    # Istio's pages: `kubectl apply -f <(istioctl kube-inject -f samples/sleep/sleep.yaml)`
    # in a namespace without the injection label.
    sample = REPO / "tests/e2e/data/istio/samples/sleep/sleep.yaml"
    _, out, _ = k(mesh, f"istioctl kube-inject -f {sample}")
    docs = [d for d in yaml.safe_load_all(out) if d]
    dep = next(d for d in docs if d["kind"] == "Deployment")
    tmpl = dep["spec"]["template"]
    assert [c["name"] for c in tmpl["spec"]["containers"]] == ["sleep", "istio-proxy"]
    assert [c["name"] for c in tmpl["spec"]["initContainers"]] == ["istio-init"]
    assert tmpl["metadata"]["labels"]["security.istio.io/tlsMode"] == "istio"
    assert "sidecar.istio.io/status" in tmpl["metadata"]["annotations"]
    k(mesh, "kubectl create ns injected")
    k(mesh, f"kubectl apply -n injected -f <(istioctl kube-inject -f {sample})")
    k(mesh, "kubectl -n injected rollout status deploy/sleep --timeout=60s")
    _, out, _ = k(mesh, "kubectl get pod -n injected -l app=sleep"
                        " -o jsonpath='{.items[0].spec.containers[*].name} {.items[0].status.phase}'")
    assert out == "sleep istio-proxy Running"
    # The injected sidecar is a real one: mTLS to httpbin in foo works and is seen by it.
    _, out, _ = k(mesh, "kubectl exec -n injected deploy/sleep -c sleep -- curl -s http://httpbin.foo:8000/headers")
    assert "X-Forwarded-Client-Cert" in out and "ns/injected/sa/sleep" in out


def test_istioctl_install_version_and_proxy_status(mesh: Mesh) -> None:
    _, out, _ = k(mesh, "istioctl install --set profile=demo --set meshConfig.accessLogFile=/dev/stdout -y")
    assert out.splitlines()[-1] == "✔ Installation complete"
    _, out, _ = k(mesh, "kubectl get istiooperator installed-state -n istio-system"
                        " -o jsonpath='{.spec.profile} {.spec.meshConfig.accessLogFile}'")
    assert out == "demo /dev/stdout"
    code, _, err = k(mesh, "istioctl install --set profile=nosuch -y", check=False)
    assert code == 1 and 'could not find profile "nosuch"' in err
    _, out, _ = k(mesh, "istioctl version")
    assert re.search(r"^client version: 1\.\d+\.\d+", out, re.M)
    assert re.search(r"^data plane version: 1\.\d+\.\d+ \(\d+ proxies\)", out, re.M)
    _, out, _ = k(mesh, "istioctl proxy-status")
    rows = out.splitlines()
    assert rows[0].split()[:6] == ["NAME", "CLUSTER", "CDS", "LDS", "EDS", "RDS"]
    httpbin = next(r for r in rows if r.startswith("httpbin-"))
    assert httpbin.split()[1:6] == ["Kubernetes", "SYNCED", "SYNCED", "SYNCED", "SYNCED"]
