"""Istio's documentation tasks, run as istio.io's own tests run them: each step's commands
typed with kubectl/istioctl (the drop-in names of `sailctl env --aliases`), from a directory
that holds Istio's `samples/`, compared with the page's expected output (instance tk).

Reproduced (facts from istio.io content/en/docs/tasks/…/snips.sh and test.sh):
- security/authentication/mtls-migration: httpbin and sleep injected with
  `istioctl kube-inject` in foo and bar, sleep without sidecar in legacy; all six calls 200;
  no PeerAuthentication or DestinationRule ("No resources found"); STRICT in foo refuses
  legacy → foo with curl's exit 56 ("command terminated with exit code 56"); mesh-wide
  STRICT refuses legacy → bar too.
- traffic-management/ingress/secure-ingress (Istio API part): httpbin behind a SIMPLE TLS
  gateway, the teapot at /status/418; the credential swapped for a second CA; two hosts by
  SNI (helloworld v1); then MUTUAL, refusing a client without a certificate.
- traffic-management/ingress/ingress-sni-passthrough (Istio API part): nginx with its own
  certificate behind a PASSTHROUGH gateway; reached first from its istio-proxy container
  (uid 1337, not captured), then through the gateway with the client verifying nginx's
  certificate.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.istio_docs import (
    rolled_out,
    run,
    task_mesh,
    verify_failure,
    verify_lines,
    verify_same,
)
from tests.e2e.mesh import Mesh

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    with task_mesh("tk") as m:
        yield m


LOOP = ('for from in "foo" "bar" "legacy"; do for to in "foo" "bar"; do kubectl exec '
        '"$(kubectl get pod -l app=sleep -n ${from} -o jsonpath={.items..metadata.name})" -c sleep'
        ' -n ${from} -- curl http://httpbin.${to}:8000/ip -s -o /dev/null'
        ' -w "sleep.${from} to httpbin.${to}: %{http_code}\\n"; done; done')


MESHED = """\
sleep.foo to httpbin.foo: 200
sleep.foo to httpbin.bar: 200
sleep.bar to httpbin.foo: 200
sleep.bar to httpbin.bar: 200
"""
STRICT = """kubectl apply -n {ns} -f - <<EOF
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata:
  name: default
spec:
  mtls:
    mode: STRICT
EOF"""


def test_mtls_migration(mesh: Mesh) -> None:
    run(mesh, """
kubectl create ns foo
kubectl apply -f <(istioctl kube-inject -f samples/httpbin/httpbin.yaml) -n foo
kubectl apply -f <(istioctl kube-inject -f samples/sleep/sleep.yaml) -n foo
kubectl create ns bar
kubectl apply -f <(istioctl kube-inject -f samples/httpbin/httpbin.yaml) -n bar
kubectl apply -f <(istioctl kube-inject -f samples/sleep/sleep.yaml) -n bar
kubectl create ns legacy
kubectl apply -f samples/sleep/sleep.yaml -n legacy""")
    rolled_out(mesh, "foo", "httpbin", "sleep")
    rolled_out(mesh, "bar", "httpbin", "sleep")
    rolled_out(mesh, "legacy", "sleep")
    verify_same(mesh, LOOP, MESHED + """\
sleep.legacy to httpbin.foo: 200
sleep.legacy to httpbin.bar: 200""")
    assert run(mesh, "kubectl get peerauthentication --all-namespaces") == "No resources found\n"
    assert run(mesh, "kubectl get destinationrule --all-namespaces") == "No resources found\n"

    run(mesh, STRICT.format(ns="foo"))
    verify_same(mesh, LOOP, MESHED + """\
sleep.legacy to httpbin.foo: 000
command terminated with exit code 56
sleep.legacy to httpbin.bar: 200""")

    run(mesh, STRICT.format(ns="istio-system"))
    verify_same(mesh, LOOP, MESHED + """\
sleep.legacy to httpbin.foo: 000
command terminated with exit code 56
sleep.legacy to httpbin.bar: 000
command terminated with exit code 56""")

    out = run(mesh, """
kubectl delete peerauthentication -n foo default
kubectl delete peerauthentication -n istio-system default
kubectl delete ns foo bar legacy""")
    assert out.splitlines()[-3:] == ['namespace "foo" deleted', 'namespace "bar" deleted',
                                     'namespace "legacy" deleted'], out
    assert run(mesh, "kubectl get pods -n foo") == "No resources found in foo namespace.\n"



CURL_HTTPBIN = ('curl -v -HHost:httpbin.example.com --resolve "httpbin.example.com:$SECURE_INGRESS_PORT:$INGRESS_HOST"'
                ' --cacert {ca} {extra}"https://httpbin.example.com:$SECURE_INGRESS_PORT/status/418"')
TEAPOT = ("HTTP/2 418", "-=[ teapot ]=-")
CERTS = """
mkdir example_certs1
openssl req -x509 -sha256 -nodes -days 365 -newkey rsa:2048 -subj '/O=example Inc./CN=example.com' -keyout example_certs1/example.com.key -out example_certs1/example.com.crt
openssl req -out example_certs1/httpbin.example.com.csr -newkey rsa:2048 -nodes -keyout example_certs1/httpbin.example.com.key -subj "/CN=httpbin.example.com/O=httpbin organization"
openssl x509 -req -sha256 -days 365 -CA example_certs1/example.com.crt -CAkey example_certs1/example.com.key -set_serial 0 -in example_certs1/httpbin.example.com.csr -out example_certs1/httpbin.example.com.crt
mkdir example_certs2
openssl req -x509 -sha256 -nodes -days 365 -newkey rsa:2048 -subj '/O=example Inc./CN=example.com' -keyout example_certs2/example.com.key -out example_certs2/example.com.crt
openssl req -out example_certs2/httpbin.example.com.csr -newkey rsa:2048 -nodes -keyout example_certs2/httpbin.example.com.key -subj "/CN=httpbin.example.com/O=httpbin organization"
openssl x509 -req -sha256 -days 365 -CA example_certs2/example.com.crt -CAkey example_certs2/example.com.key -set_serial 0 -in example_certs2/httpbin.example.com.csr -out example_certs2/httpbin.example.com.crt
openssl req -out example_certs1/helloworld.example.com.csr -newkey rsa:2048 -nodes -keyout example_certs1/helloworld.example.com.key -subj "/CN=helloworld.example.com/O=helloworld organization"
openssl x509 -req -sha256 -days 365 -CA example_certs1/example.com.crt -CAkey example_certs1/example.com.key -set_serial 1 -in example_certs1/helloworld.example.com.csr -out example_certs1/helloworld.example.com.crt
openssl req -out example_certs1/client.example.com.csr -newkey rsa:2048 -nodes -keyout example_certs1/client.example.com.key -subj "/CN=client.example.com/O=client organization"
openssl x509 -req -sha256 -days 365 -CA example_certs1/example.com.crt -CAkey example_certs1/example.com.key -set_serial 1 -in example_certs1/client.example.com.csr -out example_certs1/client.example.com.crt
"""
SIMPLE_GATEWAY = """
kubectl create -n istio-system secret tls httpbin-credential \\
  --key=example_certs1/httpbin.example.com.key \\
  --cert=example_certs1/httpbin.example.com.crt
cat <<EOF | kubectl apply -f -
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: mygateway
spec:
  selector:
    istio: ingressgateway # use istio default ingress gateway
  servers:
  - port:
      number: 443
      name: https
      protocol: HTTPS
    tls:
      mode: SIMPLE
      credentialName: httpbin-credential # must be the same as secret
    hosts:
    - httpbin.example.com
EOF
cat <<EOF | kubectl apply -f -
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: httpbin
spec:
  hosts:
  - "httpbin.example.com"
  gateways:
  - mygateway
  http:
  - match:
    - uri:
        prefix: /status
    - uri:
        prefix: /delay
    route:
    - destination:
        port:
          number: 8000
        host: httpbin
EOF
"""
TWO_HOSTS = """
kubectl create -n istio-system secret tls helloworld-credential \\
  --key=example_certs1/helloworld.example.com.key \\
  --cert=example_certs1/helloworld.example.com.crt
cat <<EOF | kubectl apply -f -
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: mygateway
spec:
  selector:
    istio: ingressgateway # use istio default ingress gateway
  servers:
  - port:
      number: 443
      name: https-httpbin
      protocol: HTTPS
    tls:
      mode: SIMPLE
      credentialName: httpbin-credential
    hosts:
    - httpbin.example.com
  - port:
      number: 443
      name: https-helloworld
      protocol: HTTPS
    tls:
      mode: SIMPLE
      credentialName: helloworld-credential
    hosts:
    - helloworld.example.com
EOF
cat <<EOF | kubectl apply -f -
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: helloworld
spec:
  hosts:
  - helloworld.example.com
  gateways:
  - mygateway
  http:
  - match:
    - uri:
        exact: /hello
    route:
    - destination:
        host: helloworld
        port:
          number: 5000
EOF
"""
MUTUAL = """
kubectl -n istio-system delete secret httpbin-credential
kubectl create -n istio-system secret generic httpbin-credential \\
  --from-file=tls.key=example_certs1/httpbin.example.com.key \\
  --from-file=tls.crt=example_certs1/httpbin.example.com.crt \\
  --from-file=ca.crt=example_certs1/example.com.crt
cat <<EOF | kubectl apply -f -
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: mygateway
spec:
  selector:
    istio: ingressgateway # use istio default ingress gateway
  servers:
  - port:
      number: 443
      name: https
      protocol: HTTPS
    tls:
      mode: MUTUAL
      credentialName: httpbin-credential # must be the same as secret
    hosts:
    - httpbin.example.com
EOF
"""


def test_secure_ingress(mesh: Mesh) -> None:
    run(mesh, "kubectl label namespace default istio-injection=enabled --overwrite")
    run(mesh, "kubectl apply -f samples/httpbin/httpbin.yaml")
    rolled_out(mesh, "default", "httpbin")
    run(mesh, CERTS)
    run(mesh, SIMPLE_GATEWAY)
    verify_lines(mesh, CURL_HTTPBIN.format(ca="example_certs1/example.com.crt", extra=""), *TEAPOT)

    # The credential rotated to the second CA: its clients get through, the first CA's fail.
    run(mesh, """
kubectl -n istio-system delete secret httpbin-credential
kubectl create -n istio-system secret tls httpbin-credential \\
  --key=example_certs2/httpbin.example.com.key \\
  --cert=example_certs2/httpbin.example.com.crt""")
    verify_lines(mesh, CURL_HTTPBIN.format(ca="example_certs2/example.com.crt", extra=""), *TEAPOT)
    verify_failure(mesh, CURL_HTTPBIN.format(ca="example_certs1/example.com.crt", extra=""))

    # Two hosts on port 443, told apart by SNI; helloworld v1 only (`apply -l`).
    run(mesh, """
kubectl -n istio-system delete secret httpbin-credential
kubectl create -n istio-system secret tls httpbin-credential \\
  --key=example_certs1/httpbin.example.com.key \\
  --cert=example_certs1/httpbin.example.com.crt
kubectl apply -f samples/helloworld/helloworld.yaml -l service=helloworld
kubectl apply -f samples/helloworld/helloworld.yaml -l version=v1""")
    rolled_out(mesh, "default", "helloworld-v1")
    assert run(mesh, "kubectl get deploy helloworld-v2 --ignore-not-found") == ""
    run(mesh, TWO_HOSTS)
    verify_lines(mesh, 'curl -v -HHost:helloworld.example.com --resolve "helloworld.example.com:$SECURE_INGRESS_PORT:$INGRESS_HOST"'
                       ' --cacert example_certs1/example.com.crt "https://helloworld.example.com:$SECURE_INGRESS_PORT/hello"',
                 "HTTP/2 200", "Hello version: v1")
    verify_lines(mesh, CURL_HTTPBIN.format(ca="example_certs1/example.com.crt", extra=""), *TEAPOT)

    # Mutual TLS at the gateway: a client without a certificate is refused.
    run(mesh, MUTUAL)
    verify_failure(mesh, CURL_HTTPBIN.format(ca="example_certs1/example.com.crt", extra=""))
    verify_lines(mesh, CURL_HTTPBIN.format(
        ca="example_certs1/example.com.crt",
        extra="--cert example_certs1/client.example.com.crt --key example_certs1/client.example.com.key "),
        *TEAPOT)


NGINX = """
kubectl create secret tls nginx-server-certs \\
  --key example_certs/nginx.example.com.key \\
  --cert example_certs/nginx.example.com.crt
cat <<\\EOF > ./nginx.conf
events {
}

http {
  log_format main '$remote_addr - $remote_user [$time_local]  $status '
  '"$request" $body_bytes_sent "$http_referer" '
  '"$http_user_agent" "$http_x_forwarded_for"';
  access_log /var/log/nginx/access.log main;
  error_log  /var/log/nginx/error.log;

  server {
    listen 443 ssl;

    root /usr/share/nginx/html;
    index index.html;

    server_name nginx.example.com;
    ssl_certificate /etc/nginx-server-certs/tls.crt;
    ssl_certificate_key /etc/nginx-server-certs/tls.key;
  }
}
EOF
kubectl create configmap nginx-configmap --from-file=nginx.conf=./nginx.conf
cat <<EOF | kubectl apply -f -
apiVersion: v1
kind: Service
metadata:
  name: my-nginx
  labels:
    run: my-nginx
spec:
  ports:
  - port: 443
    protocol: TCP
  selector:
    run: my-nginx
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: my-nginx
spec:
  selector:
    matchLabels:
      run: my-nginx
  replicas: 1
  template:
    metadata:
      labels:
        run: my-nginx
        sidecar.istio.io/inject: "true"
    spec:
      containers:
      - name: my-nginx
        image: nginx
        ports:
        - containerPort: 443
        volumeMounts:
        - name: nginx-config
          mountPath: /etc/nginx
          readOnly: true
        - name: nginx-server-certs
          mountPath: /etc/nginx-server-certs
          readOnly: true
      volumes:
      - name: nginx-config
        configMap:
          name: nginx-configmap
      - name: nginx-server-certs
        secret:
          secretName: nginx-server-certs
EOF
"""
PASSTHROUGH = """
kubectl apply -f - <<EOF
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: mygateway
spec:
  selector:
    istio: ingressgateway # use istio default ingress gateway
  servers:
  - port:
      number: 443
      name: https
      protocol: HTTPS
    tls:
      mode: PASSTHROUGH
    hosts:
    - nginx.example.com
EOF
kubectl apply -f - <<EOF
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: nginx
spec:
  hosts:
  - nginx.example.com
  gateways:
  - mygateway
  tls:
  - match:
    - port: 443
      sniHosts:
      - nginx.example.com
    route:
    - destination:
        host: my-nginx
        port:
          number: 443
EOF
"""


def test_ingress_sni_passthrough(mesh: Mesh) -> None:
    run(mesh, """
mkdir example_certs
openssl req -x509 -sha256 -nodes -days 365 -newkey rsa:2048 -subj '/O=example Inc./CN=example.com' -keyout example_certs/example.com.key -out example_certs/example.com.crt
openssl req -out example_certs/nginx.example.com.csr -newkey rsa:2048 -nodes -keyout example_certs/nginx.example.com.key -subj "/CN=nginx.example.com/O=some organization"
openssl x509 -req -sha256 -days 365 -CA example_certs/example.com.crt -CAkey example_certs/example.com.key -set_serial 0 -in example_certs/nginx.example.com.csr -out example_certs/nginx.example.com.crt""")
    run(mesh, NGINX)
    rolled_out(mesh, "default", "my-nginx")
    # From the istio-proxy container (uid 1337, not captured) straight to nginx in the pod.
    verify_lines(mesh, 'kubectl exec "$(kubectl get pod  -l run=my-nginx -o jsonpath={.items..metadata.name})"'
                       " -c istio-proxy -- curl -sS -v -k --resolve nginx.example.com:443:127.0.0.1"
                       " https://nginx.example.com",
                 "subject: CN=nginx.example.com; O=some organization",
                 "issuer: O=example Inc.; CN=example.com", "< HTTP/1.1 200 OK",
                 "<title>Welcome to nginx!</title>")
    run(mesh, PASSTHROUGH)
    verify_lines(mesh, 'curl -v --resolve "nginx.example.com:$SECURE_INGRESS_PORT:$INGRESS_HOST"'
                       ' --cacert example_certs/example.com.crt "https://nginx.example.com:$SECURE_INGRESS_PORT"',
                 "subject: CN=nginx.example.com; O=some organization", "SSL certificate verify ok.",
                 "< HTTP/1.1 200 OK", "<title>Welcome to nginx!</title>")
    out = run(mesh, """
kubectl delete gateway mygateway
kubectl delete virtualservice nginx
kubectl delete secret nginx-server-certs
kubectl delete configmap nginx-configmap
kubectl delete service my-nginx
kubectl delete deployment my-nginx
rm ./nginx.conf""")
    assert 'deployment.apps "my-nginx" deleted' in out, out
