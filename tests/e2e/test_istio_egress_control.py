"""istio.io's traffic-management/egress/egress-control task, run as istio.io's own test runs
it (instance egc): each step's commands typed with kubectl/istioctl as on the page,
compared with the page's output.

The external sites are the offline stand-ins of examples/offline-internet/ (www.google.com
and edition.cnn.com over HTTPS with certificates every pod trusts as public ones,
httpbin.org running httpbin over HTTP), applied before the task.

Reproduced (facts from istio.io content/en/docs/tasks/traffic-management/egress/
egress-control/snips.sh and test.sh):
- ALLOW_ANY (the default, not in the `istio` ConfigMap): HTTPS to www.google.com and
  edition.cnn.com passes through: `HTTP/2 200` twice.
- REGISTRY_ONLY (`istioctl install --set meshConfig.outboundTrafficPolicy.mode=…`): the same
  requests fail, curl's exit code 35 (the handshake meets a closed connection).
- ServiceEntry httpbin-ext (HTTP, DNS): httpbin.org/headers answers through the sidecar,
  which adds the page's `"X-Envoy-Decorator-Operation": "httpbin.org:80/*"` (the route's
  tracing operation, sent upstream by an outbound listener with tracing on, as Istio
  configures it by default); the proxy's access log names
  `outbound|80||httpbin.org`. ServiceEntry google (HTTPS): `HTTP/2 200`, logged as
  `outbound|443||www.google.com`.
- A VirtualService with `timeout: 3s` for httpbin.org: `/delay/5` answers 200 without it,
  504 with it.
Not reproduced: the Gateway API variant (HTTPRoute with a ServiceEntry parent; sailmesh has
no Gateway API), the cloud-provider IP range lookups, and `values.global.proxy.includeIPRanges`
(sailmesh captures all outbound traffic; the setting is accepted and has no effect).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.istio_docs import rolled_out, run, task_mesh, verify_elided, verify_lines, verify_same
from tests.e2e.mesh import EXAMPLES, Mesh

pytestmark = pytest.mark.e2e

SITES = ("edition.cnn.com", "www.google.com", "httpbin.org")


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    with task_mesh("egc") as m:
        for site in SITES:
            run(m, f"kubectl apply -f {EXAMPLES / 'offline-internet' / site}.yaml")
        rolled_out(m, "offline-internet", "edition-cnn-com", "www-google-com", "httpbin-org")
        yield m


SOURCE_POD = "export SOURCE_POD=$(kubectl get pod -l app=sleep -o jsonpath='{.items..metadata.name}')\n"
BOTH_SITES = ('kubectl exec "$SOURCE_POD" -c sleep -- curl -s{S}I https://www.google.com | grep  "HTTP/";'
              ' kubectl exec "$SOURCE_POD" -c sleep -- curl -sI https://edition.cnn.com | grep "HTTP/"')
HTTPBIN_EXT = """kubectl apply -f - <<EOF
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: httpbin-ext
spec:
  hosts:
  - httpbin.org
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: DNS
  location: MESH_EXTERNAL
EOF"""
GOOGLE = """kubectl apply -f - <<EOF
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: google
spec:
  hosts:
  - www.google.com
  ports:
  - number: 443
    name: https
    protocol: HTTPS
  resolution: DNS
  location: MESH_EXTERNAL
EOF"""
TIMEOUT = """kubectl apply -f - <<EOF
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: httpbin-ext
spec:
  hosts:
  - httpbin.org
  http:
  - timeout: 3s
    route:
    - destination:
        host: httpbin.org
      weight: 100
EOF"""
DELAY = ('kubectl exec "$SOURCE_POD" -c sleep -- time curl -o /dev/null -sS -w "%{http_code}\\n"'
         " http://httpbin.org/delay/5")


def test_egress_control(mesh: Mesh) -> None:
    run(mesh, "istioctl install --set profile=demo -y")
    rolled_out(mesh, "istio-system", "istiod")
    run(mesh, "kubectl label namespace default istio-injection=enabled --overwrite")
    run(mesh, "kubectl apply -f samples/sleep/sleep.yaml")
    rolled_out(mesh, "default", "sleep")

    # Envoy passthrough to external services (ALLOW_ANY).
    assert "REGISTRY_ONLY" not in run(mesh, "kubectl get configmap istio -n istio-system -o yaml")
    verify_same(mesh, SOURCE_POD + BOTH_SITES.format(S="S"), "HTTP/2 200\nHTTP/2 200")

    # Blocking by default.
    run(mesh, "istioctl install --set profile=demo --set meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY -y")
    rolled_out(mesh, "istio-system", "istiod")
    verify_same(mesh, SOURCE_POD + BOTH_SITES.format(S=""),
                "command terminated with exit code 35\ncommand terminated with exit code 35")

    # Access an external HTTP service.
    run(mesh, HTTPBIN_EXT)
    verify_elided(mesh, SOURCE_POD + 'kubectl exec "$SOURCE_POD" -c sleep -- curl -sS http://httpbin.org/headers', """\
{
  "headers": {
    "Accept": "*/*",
    "Host": "httpbin.org",
    ...
    "X-Envoy-Decorator-Operation": "httpbin.org:80/*",
    ...
  }
}
""")
    verify_lines(mesh, SOURCE_POD + 'kubectl logs "$SOURCE_POD" -c istio-proxy | tail', "outbound|80||httpbin.org")

    # Access an external HTTPS service.
    run(mesh, GOOGLE)
    verify_same(mesh, SOURCE_POD + 'kubectl exec "$SOURCE_POD" -c sleep -- curl -sSI https://www.google.com | grep  "HTTP/"',
                "HTTP/2 200")
    verify_lines(mesh, SOURCE_POD + 'kubectl logs "$SOURCE_POD" -c istio-proxy | tail', "outbound|443||www.google.com")

    # Manage traffic to external services: a 3 s timeout on httpbin.org.
    # (The page's check is the first line; `time`'s report goes to stderr.)
    assert run(mesh, SOURCE_POD + DELAY + " 2>/dev/null", timeout=60).strip() == "200"
    run(mesh, TIMEOUT)
    verify_same(mesh, SOURCE_POD + DELAY + " 2>/dev/null", "504")

    out = run(mesh, "kubectl delete serviceentry httpbin-ext google\n"
                    "kubectl delete virtualservice httpbin-ext --ignore-not-found=true")
    assert 'serviceentry.networking.istio.io "google" deleted' in out, out
    assert 'virtualservice.networking.istio.io "httpbin-ext" deleted' in out, out
    # With the entries gone REGISTRY_ONLY blocks httpbin.org again (Envoy's 502 for an
    # unknown host on a known HTTP port).
    verify_lines(mesh, SOURCE_POD + 'kubectl exec "$SOURCE_POD" -c sleep -- curl -s -o /dev/null -w "%{http_code}\\n"'
                                    " http://httpbin.org/headers", "502")
    out = run(mesh, "kubectl delete -f samples/sleep/sleep.yaml")
    assert 'deployment.apps "sleep" deleted' in out, out
