"""istio.io's security tasks, run as istio.io's own tests run them (instance sct): each step's
commands typed with kubectl/istioctl as on the page, compared with the page's output.

Reproduced (facts from istio.io content/en/docs/tasks/security/…/snips.sh and test.sh):
- authentication/authn-policy: httpbin and curl injected with `istioctl kube-inject` in foo
  and bar, without sidecars in legacy. Auto mutual TLS (httpbin.foo sees curl.foo's
  identity in X-Forwarded-Client-Cert, httpbin.legacy sees none); PeerAuthentication
  STRICT mesh-wide, then namespace-wide in foo, then for the httpbin workload of bar, with
  port 8080 (the container port) DISABLE, and a workload DISABLE overriding foo's
  namespace STRICT. Plain clients (curl.legacy) get curl's exit code 56 where mutual TLS is
  required. Then httpbin behind the ingress gateway (Gateway and VirtualService): 200.
  Not reproduced: the end-user authentication steps (RequestAuthentication,
  AuthorizationPolicy with requestPrincipals): sailmesh has neither kind, and applying
  them is refused.
- tls-configuration/workload-min-tls-version: meshConfig.meshMTLS.minProtocolVersion
  TLSV1_3 from an IstioOperator file; from sleep's istio-proxy container, openssl
  s_client to httpbin.foo:8000 negotiates TLSv1.3 with `-tls1_3` and fails with `-tls1_2`
  ("Cipher is (NONE)").
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.istio_docs import rolled_out, run, task_mesh, verify_lines, verify_same
from tests.e2e.mesh import Mesh

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    with task_mesh("sct") as m:
        yield m


# --- security/authentication/authn-policy -------------------------------------------------

SETUP = """
kubectl create ns foo
kubectl apply -f <(istioctl kube-inject -f samples/httpbin/httpbin.yaml) -n foo
kubectl apply -f <(istioctl kube-inject -f samples/curl/curl.yaml) -n foo
kubectl create ns bar
kubectl apply -f <(istioctl kube-inject -f samples/httpbin/httpbin.yaml) -n bar
kubectl apply -f <(istioctl kube-inject -f samples/curl/curl.yaml) -n bar
kubectl create ns legacy
kubectl apply -f samples/httpbin/httpbin.yaml -n legacy
kubectl apply -f samples/curl/curl.yaml -n legacy"""
ALL_PAIRS = ('for from in "foo" "bar" "legacy"; do for to in "foo" "bar" "legacy"; do kubectl exec'
             ' "$(kubectl get pod -l app=curl -n ${from} -o jsonpath={.items..metadata.name})" -c curl'
             ' -n ${from} -- curl "http://httpbin.${to}:8000/ip" -s -o /dev/null'
             ' -w "curl.${from} to httpbin.${to}: %{http_code}\\n"; done; done')
REFUSED = "000\ncommand terminated with exit code 56"


def _pairs(refused: tuple[str, ...] = ()) -> str:
    """The reachability table: every pair 200, except the refused ones (curl exit 56)."""
    lines = []
    for src in ("foo", "bar", "legacy"):
        for dst in ("foo", "bar", "legacy"):
            code = REFUSED if f"{src}>{dst}" in refused else "200"
            lines.append(f"curl.{src} to httpbin.{dst}: {code}")
    return "\n".join(lines)


def _peer_authentication(ns: str, name: str, spec: str, *, piped: bool = False) -> str:
    doc = f"""apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: "{name}"
  namespace: "{ns}"
spec:
{spec}
EOF"""
    if piped:
        return f"cat <<EOF | kubectl apply -n {ns} -f -\n{doc}"
    return f"kubectl apply -f - <<EOF\n{doc}"


STRICT = "  mtls:\n    mode: STRICT"
WORKLOAD = "  selector:\n    matchLabels:\n      app: httpbin\n"
XFCC = ('kubectl exec "$(kubectl get pod -l app=curl -n foo -o jsonpath={.items..metadata.name})" -c curl'
        " -n foo -- curl -s http://httpbin.foo:8000/headers -s"
        """ | jq '.headers["X-Forwarded-Client-Cert"][0]' | sed 's/Hash=[a-z0-9]*;/Hash=<redacted>;/'""")
GATEWAY = """kubectl apply -f - <<EOF
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: httpbin-gateway
  namespace: foo
spec:
  selector:
    istio: ingressgateway # use Istio default gateway implementation
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - "*"
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
  namespace: foo
spec:
  hosts:
  - "*"
  gateways:
  - httpbin-gateway
  http:
  - route:
    - destination:
        port:
          number: 8000
        host: httpbin.foo.svc.cluster.local
EOF"""
# istio.io's _set_ingress_environment_variables: the ingress Service's load-balancer address
# and its `http2` port.
INGRESS = """export INGRESS_HOST=$(kubectl -n istio-system get service istio-ingressgateway -o jsonpath='{.status.loadBalancer.ingress[0].ip}')
export INGRESS_PORT=$(kubectl -n istio-system get service istio-ingressgateway -o jsonpath='{.spec.ports[?(@.name=="http2")].port}')
"""
JWT_RULE = """kubectl apply -f - <<EOF
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: "jwt-example"
  namespace: istio-system
spec:
  selector:
    matchLabels:
      istio: ingressgateway
  jwtRules:
  - issuer: "testing@secure.istio.io"
    jwksUri: "https://raw.githubusercontent.com/istio/istio/master/security/tools/jwt/samples/jwks.json"
EOF"""


def test_authn_policy(mesh: Mesh) -> None:
    run(mesh, "istioctl install --set profile=default -y")
    run(mesh, SETUP)
    for ns in ("foo", "bar", "legacy"):
        rolled_out(mesh, ns, "httpbin", "curl")
    verify_same(mesh, 'kubectl exec "$(kubectl get pod -l app=curl -n bar -o jsonpath={.items..metadata.name})"'
                      ' -c curl -n bar -- curl http://httpbin.foo:8000/ip -s -o /dev/null -w "%{http_code}\\n"',
                "200")
    verify_same(mesh, ALL_PAIRS.replace('curl "http', 'curl -s "http'), _pairs())
    assert run(mesh, "kubectl get peerauthentication --all-namespaces").strip() == "No resources found"
    assert run(mesh, 'kubectl get destinationrules.networking.istio.io --all-namespaces -o yaml'
                     ' | grep "host:"').strip() == ""

    # Auto mutual TLS: the sidecars speak mutual TLS to each other (the server's sidecar
    # adds X-Forwarded-Client-Cert), plain text to a workload without one.
    verify_same(mesh, XFCC, '"By=spiffe://cluster.local/ns/foo/sa/httpbin;Hash=<redacted>;'
                            'Subject=\\"\\";URI=spiffe://cluster.local/ns/foo/sa/curl"')
    assert run(mesh, 'kubectl exec "$(kubectl get pod -l app=curl -n foo -o jsonpath={.items..metadata.name})"'
                     " -c curl -n foo -- curl http://httpbin.legacy:8000/headers -s"
                     " | grep X-Forwarded-Client-Cert").strip() == ""

    # Mesh-wide STRICT (root namespace): only the client without a sidecar is refused.
    run(mesh, _peer_authentication("istio-system", "default", STRICT))
    verify_same(mesh, ALL_PAIRS, _pairs(("legacy>foo", "legacy>bar")))
    run(mesh, "kubectl delete peerauthentication -n istio-system default")

    # Namespace-wide STRICT in foo.
    run(mesh, _peer_authentication("foo", "default", STRICT))
    verify_same(mesh, ALL_PAIRS, _pairs(("legacy>foo",)))

    # Workload STRICT for httpbin in bar, then with its container port 8080 DISABLE.
    run(mesh, _peer_authentication("bar", "httpbin", WORKLOAD + STRICT, piped=True))
    verify_same(mesh, ALL_PAIRS, _pairs(("legacy>foo", "legacy>bar")))
    run(mesh, _peer_authentication(
        "bar", "httpbin", WORKLOAD + STRICT + "\n  portLevelMtls:\n    8080:\n      mode: DISABLE",
        piped=True))
    verify_same(mesh, ALL_PAIRS, _pairs(("legacy>foo",)))

    # Policy precedence: the workload's DISABLE wins over foo's namespace-wide STRICT.
    run(mesh, _peer_authentication("foo", "overwrite-example", WORKLOAD + "  mtls:\n    mode: DISABLE",
                                   piped=True))
    verify_same(mesh, 'kubectl exec "$(kubectl get pod -l app=curl -n legacy -o jsonpath={.items..metadata.name})"'
                      ' -c curl -n legacy -- curl http://httpbin.foo:8000/ip -s -o /dev/null -w "%{http_code}\\n"',
                "200")
    out = run(mesh, "kubectl delete peerauthentication default overwrite-example -n foo\n"
                    "kubectl delete peerauthentication httpbin -n bar")
    assert out.count("peerauthentication.security.istio.io") == 3, out

    # End-user authentication: the ingress gateway in front of httpbin.foo.
    run(mesh, GATEWAY)
    verify_same(mesh, INGRESS + 'curl "$INGRESS_HOST:$INGRESS_PORT/headers" -s -o /dev/null -w "%{http_code}\\n"',
                "200")
    # RequestAuthentication is not a kind sailmesh has: refused, nothing changes.
    proc = mesh.sh("eval \"$(sailctl env --aliases)\"; " + JWT_RULE, check=False)
    assert proc.returncode != 0, proc.stdout
    verify_same(mesh, INGRESS + 'curl --header "Authorization: Bearer deadbeef" "$INGRESS_HOST:$INGRESS_PORT/headers"'
                                ' -s -o /dev/null -w "%{http_code}\\n"', "200")
    out = run(mesh, "kubectl delete ns foo bar legacy")
    assert 'namespace "legacy" deleted' in out, out


# --- security/tls-configuration/workload-min-tls-version -----------------------------------

MIN_TLS_INSTALL = """cat <<EOF > ./istio.yaml
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  meshConfig:
    meshMTLS:
      minProtocolVersion: TLSV1_3
EOF
echo y | istioctl install --set values.pilot.env.PILOT_ENABLE_CONFIG_DISTRIBUTION_TRACKING=true -f ./istio.yaml"""
SLEEP_FOO = '"$(kubectl get pod -l app=sleep -n foo -o jsonpath={.items..metadata.name})"'


def test_workload_min_tls_version(mesh: Mesh) -> None:
    out = run(mesh, MIN_TLS_INSTALL)
    assert "Installation complete" in out, out
    rolled_out(mesh, "istio-system", "istiod")
    run(mesh, """kubectl create ns foo
kubectl apply -f <(istioctl kube-inject -f samples/httpbin/httpbin.yaml) -n foo
kubectl apply -f <(istioctl kube-inject -f samples/sleep/sleep.yaml) -n foo""")
    rolled_out(mesh, "foo", "httpbin", "sleep")
    verify_same(mesh, f"kubectl exec {SLEEP_FOO} -c sleep -n foo -- curl http://httpbin.foo:8000/ip -sS"
                      ' -o /dev/null -w "%{http_code}\\n"', "200")
    # openssl from the proxy's container is not captured: it reaches httpbin's sidecar
    # directly, offering the mesh's ALPN.
    verify_lines(mesh, f"kubectl exec {SLEEP_FOO} -c istio-proxy -n foo -- openssl s_client -alpn istio"
                       ' -tls1_3 -connect httpbin.foo:8000 | grep "TLSv1.3"', "TLSv1.3")
    verify_lines(mesh, f"kubectl exec {SLEEP_FOO} -c istio-proxy -n foo -- openssl s_client -alpn istio"
                       ' -tls1_2 -connect httpbin.foo:8000 | grep "Cipher is (NONE)"', "Cipher is (NONE)")
    out = run(mesh, """kubectl delete -f samples/httpbin/httpbin.yaml -n foo
kubectl delete -f samples/sleep/sleep.yaml -n foo
kubectl delete ns foo""")
    assert 'namespace "foo" deleted' in out, out
