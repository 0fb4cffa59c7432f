"""istio.io's TLS tasks, run as istio.io's own tests run them (instance tl2): each step's
commands typed with kubectl/istioctl as on the page, compared with the page's output.

Reproduced (facts from istio.io content/en/docs/tasks/…/snips.sh and their test scripts):
- traffic-management/egress/egress-tls-origination, "Mutual TLS origination for egress
  traffic": nginx in mesh-external requires a client certificate from example.com's CA;
  its Service is exported to its own namespace only ("networking.istio.io/exportTo": "."),
  and a ServiceEntry in default declares the same host with an HTTP port 80 whose
  targetPort is 443. The curl pod's sidecar sees the ServiceEntry's definition of the host
  (Istio keeps one definition per host and namespace; a client sees those exported to it),
  and a DestinationRule with a workloadSelector originates mutual TLS with the client
  Secret of its own namespace (credentialName): `Welcome to nginx!`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e import mtls_server
from tests.e2e.istio_docs import (
    ALIASES,
    rolled_out,
    run,
    task_mesh,
    verify_elided,
    verify_lines,
    verify_same,
)
from tests.e2e.mesh import Mesh

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    with task_mesh("tl2") as m:
        # The pages' test scripts set Istio up with the demo profile (access logs on).
        run(m, "istioctl install --set profile=demo -y")
        # The pages' "before you begin": curl in default, with automatic injection.
        run(m, "kubectl label namespace default istio-injection=enabled --overwrite")
        run(m, "kubectl apply -f samples/curl/curl.yaml")
        rolled_out(m, "default", "curl")
        yield m


# --- traffic-management/egress/egress-tls-origination, mutual TLS at the sidecar ----------


CLIENT_CREDENTIAL = """
kubectl create secret generic client-credential --from-file=tls.key=client.example.com.key \\
  --from-file=tls.crt=client.example.com.crt --from-file=ca.crt=example.com.crt
kubectl create role client-credential-role --resource=secret --verb=list
kubectl create rolebinding client-credential-role-binding --role=client-credential-role --serviceaccount=default:curl
"""
SIDECAR_MTLS = """kubectl apply -f - <<EOF
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: originate-mtls-for-nginx
spec:
  hosts:
  - my-nginx.mesh-external.svc.cluster.local
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
    targetPort: 443
  - number: 443
    name: https-port
    protocol: HTTPS
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: originate-mtls-for-nginx
spec:
  workloadSelector:
    matchLabels:
      app: curl
  host: my-nginx.mesh-external.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
    portLevelSettings:
    - port:
        number: 80
      tls:
        mode: MUTUAL
        credentialName: client-credential # this must match the secret created earlier to hold client certs, and works only when DR has a workloadSelector
        sni: my-nginx.mesh-external.svc.cluster.local
        # subjectAltNames: # can be enabled if the certificate was generated with SAN as specified in previous section
        # - my-nginx.mesh-external.svc.cluster.local
EOF"""
CURL_NGINX = ('kubectl exec "$(kubectl get pod -l app=curl -o jsonpath={.items..metadata.name})"'
              " -c curl -- curl -sS http://my-nginx.mesh-external.svc.cluster.local")
MTLS_CLEANUP = """
kubectl delete secret nginx-server-certs nginx-ca-certs -n mesh-external
kubectl delete secret client-credential
kubectl delete rolebinding client-credential-role-binding
kubectl delete role client-credential-role
kubectl delete configmap nginx-configmap -n mesh-external
kubectl delete service my-nginx -n mesh-external
kubectl delete deployment my-nginx -n mesh-external
kubectl delete namespace mesh-external
kubectl delete serviceentry originate-mtls-for-nginx
kubectl delete destinationrule originate-mtls-for-nginx"""


def test_mutual_tls_origination_at_the_sidecar(mesh: Mesh) -> None:
    run(mesh, mtls_server.CERTS)
    run(mesh, mtls_server.server(mtls_server.EXPORTED_TO_OWN_NAMESPACE))
    rolled_out(mesh, "mesh-external", "my-nginx")
    out = run(mesh, CLIENT_CREDENTIAL)
    assert out.splitlines()[-3:] == [
        "secret/client-credential created", "role.rbac.authorization.k8s.io/client-credential-role created",
        "rolebinding.rbac.authorization.k8s.io/client-credential-role-binding created"], out
    run(mesh, SIDECAR_MTLS)

    # The page's `istioctl proxy-config secret deploy/curl | grep client-credential`: the
    # client's certificate and its CA, both active (serials and dates differ per run).
    secrets = verify_lines(mesh, "istioctl proxy-config secret deploy/curl | grep client-credential",
                           "kubernetes://client-credential ", "kubernetes://client-credential-cacert ")
    for line in secrets.splitlines():
        assert line.split()[1:5] == ["Cert", "Chain", "ACTIVE", "true"], secrets
    verify_elided(mesh, CURL_NGINX, """\
<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
...
""")
    verify_lines(mesh, "kubectl logs -l app=curl -c istio-proxy | grep 'my-nginx.mesh-external.svc.cluster.local'",
                 "GET / HTTP/1.1", "outbound|80||my-nginx.mesh-external.svc.cluster.local")

    # Without the ServiceEntry the host is the mesh-external Service alone, which default
    # does not see: the request passes through to the Service's address on port 80, where
    # nothing listens (Envoy's 503 text).
    run(mesh, "kubectl delete serviceentry originate-mtls-for-nginx")
    out = verify_lines(mesh, CURL_NGINX, "upstream connect error or disconnect/reset before headers")
    assert "Welcome to nginx!" not in out
    out = run(mesh, MTLS_CLEANUP)
    assert 'namespace "mesh-external" deleted' in out, out


def test_the_client_credential_is_served_only_once_the_role_grants_it(mesh: Mesh) -> None:
    """The same task without the page's Role and RoleBinding: istiod serves the curl
    sidecar the client key only when ServiceAccount default/curl may list Secrets in
    default. Until then the request fails closed (503), and tls-check and analyze say why,
    naming the DestinationRule's field; `kubectl create role/rolebinding` afterwards makes
    the running pod work, with no restart."""
    run(mesh, mtls_server.CERTS)
    run(mesh, mtls_server.server(mtls_server.EXPORTED_TO_OWN_NAMESPACE))
    rolled_out(mesh, "mesh-external", "my-nginx")
    lines = CLIENT_CREDENTIAL.strip().splitlines()  # the secret (2 lines), role, binding
    secret_only, role_and_binding = "\n".join(lines[:2]), "\n".join(lines[2:])
    assert "secret/client-credential created" in run(mesh, secret_only)
    run(mesh, SIDECAR_MTLS)
    pod = run(mesh, "kubectl get pod -l app=curl -o jsonpath={.items..metadata.name}").strip()
    status = CURL_NGINX + " -o /dev/null -w '%{http_code}'"
    verify_same(mesh, status, "503")
    out = run(mesh, "sailctl x tls-check deploy/curl my-nginx.mesh-external.svc.cluster.local:80")
    assert "fails" in out and "may not read Secret default/client-credential" in out, out
    assert "no Role or ClusterRole bound to ServiceAccount default/curl allows list" in out, out
    out = run(mesh, "istioctl analyze -n default")
    assert ("Error [SM0171] (DestinationRule default/originate-mtls-for-nginx) "
            "spec.trafficPolicy.portLevelSettings[0].tls.credentialName:") in out, out
    secrets = run(mesh, "istioctl proxy-config secret deploy/curl")
    assert "kubernetes://client-credential " not in secrets, secrets

    out = run(mesh, role_and_binding)
    assert "rolebinding.rbac.authorization.k8s.io/client-credential-role-binding created" in out
    verify_elided(mesh, CURL_NGINX, """\
<!DOCTYPE html>
...
<title>Welcome to nginx!</title>
...
""")
    assert run(mesh, "kubectl get pod -l app=curl -o jsonpath={.items..metadata.name}"
               ).strip() == pod
    assert "SM0171" not in run(mesh, "istioctl analyze -n default")
    out = run(mesh, MTLS_CLEANUP)
    assert 'namespace "mesh-external" deleted' in out, out


# --- tcp-echo: client-first TCP on declared and undeclared ports --------------------------

# One line to a tcp-echo address from the curl container, waiting 3 s for the answer
# (bash's /dev/tcp; `read` exits 142 on the timeout).
def _echo(target: str, port: int, line: str) -> str:
    return (f"kubectl exec deploy/curl -n tcp-echo -c curl -- bash -c 'exec 3<>/dev/tcp/{target}/{port};"
            f' echo {line} >&3; read -t 3 reply <&3; rc=$?; echo "$reply"; exit $rc\'')


def test_tcp_echo_on_declared_and_undeclared_ports(mesh: Mesh) -> None:
    """samples/tcp-echo/tcp-echo-services.yaml unchanged: ports 9000 and 9001 are declared
    (`tcp`, `tcp-other`), 9002 is not (the sample's test of the inbound passthrough chain).
    A connection to the pod's address leaves the client plain (PassthroughCluster); one to
    the Service name goes through the service's listener with mesh mutual TLS."""
    out = run(mesh, """kubectl create namespace tcp-echo
kubectl label namespace tcp-echo istio-injection=enabled
kubectl apply -f samples/curl/curl.yaml -n tcp-echo
kubectl apply -f samples/tcp-echo/tcp-echo-services.yaml -n tcp-echo""")
    assert "deployment.apps/tcp-echo-v1 created" in out, out
    rolled_out(mesh, "tcp-echo", "curl", "tcp-echo-v1", "tcp-echo-v2")
    ip = run(mesh, "kubectl get pod -n tcp-echo -l app=tcp-echo,version=v1"
                   " -o jsonpath={.items..status.podIP}").strip()
    assert ip.count(".") == 3, ip
    verify_same(mesh, _echo(ip, 9000, "hello-world"), "one hello-world")
    verify_same(mesh, _echo(ip, 9002, "hello-world"), "one hello-world")
    assert run(mesh, _echo("tcp-echo", 9001, "hello-world")).strip() in (
        "one hello-world", "two hello-world")

    # A first write shorter than a TLS record header (5 bytes): through the Service name
    # the client sidecar speaks mutual TLS, so the server's TLS inspector decides at once.
    assert run(mesh, _echo("tcp-echo", 9001, "x")).strip() in ("one x", "two x")
    # Plain to the pod's address, the server sidecar's TLS inspector waits for more bytes
    # before it can tell TLS from plaintext, and Istio's default protocolDetectionTimeout
    # (0s) sets no limit: no answer, on the declared port as on the undeclared one.
    for port in (9000, 9002):
        proc = mesh.sh(ALIASES + _echo(ip, port, "x"), check=False, timeout=60)
        assert proc.returncode == 142 and proc.stdout.strip() == "", proc.stdout
    # meshConfig.protocolDetectionTimeout bounds the wait; then the connection goes on as
    # plaintext and the short line is answered.
    run(mesh, "istioctl install --set profile=demo --set meshConfig.protocolDetectionTimeout=1s -y")
    verify_same(mesh, _echo(ip, 9000, "x"), "one x")
    verify_same(mesh, _echo(ip, 9002, "x"), "one x")
    run(mesh, "istioctl install --set profile=demo -y")

    # STRICT: the plain connection to the pod's address is refused by the server sidecar,
    # the Service name (mutual TLS) still answers.
    run(mesh, """kubectl apply -n tcp-echo -f - <<EOF
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
spec:
  mtls:
    mode: STRICT
EOF""")
    verify_lines(mesh, _echo(ip, 9002, "hello-world"), "Connection reset by peer")
    verify_lines(mesh, _echo(ip, 9000, "hello-world"), "Connection reset by peer")
    assert run(mesh, _echo("tcp-echo", 9000, "hello-world")).strip() in (
        "one hello-world", "two hello-world")
    out = run(mesh, "kubectl delete namespace tcp-echo")
    assert 'namespace "tcp-echo" deleted' in out, out
