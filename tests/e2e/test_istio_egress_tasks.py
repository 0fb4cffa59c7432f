"""istio.io's egress tasks, run as istio.io's own tests run them (instance etk): each step's
commands typed with kubectl/istioctl as on the page, compared with the page's output.

edition.cnn.com is the offline stand-in of examples/offline-internet/edition.cnn.com.yaml,
applied before the tasks: plain HTTP answers 301 to the same URL on https, HTTPS speaks
HTTP/2 with a certificate from the offline internet's root, which every pod trusts as a
public CA (so `curl https://edition.cnn.com` needs no --cacert, as on the page).

Reproduced (facts from istio.io content/en/docs/tasks/traffic-management/egress/…/snips.sh
and their test scripts):
- egress-tls-origination: a ServiceEntry for HTTP and HTTPS gives the site's 301 to https
  and then HTTP/2 200; with `targetPort: 443` and a DestinationRule with SIMPLE TLS on port
  80 the sidecar originates TLS (checked against the system roots): HTTP/1.1 200 at once,
  and HTTPS still HTTP/2 200.
- egress-gateway: HTTP through istio-egressgateway (the gateway's access log shows
  `GET /politics HTTP/2` 301 to outbound|80||edition.cnn.com; its identity is
  spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account, read with
  `istioctl pc secret -ojson | jq …`), then HTTPS passed through the gateway by SNI.
- egress-gateway-tls-origination: the sidecar sends plain HTTP over ISTIO_MUTUAL to the
  gateway, which originates TLS (HTTP/1.1 200; the gateway logs `GET /politics HTTP/2`);
  then mutual TLS origination to an nginx that requires a client certificate, the gateway
  presenting Secret istio-system/client-credential (`Welcome to nginx!`).
- security/cert-management/plugin-ca-cert: a root and an intermediate made with the openssl
  steps of Istio's tools/certs Makefile, plugged in as Secret istio-system/cacerts; the
  chain httpbin's sidecar presents (openssl s_client from sleep's istio-proxy container)
  is leaf, that intermediate, that root, and the leaf verifies against them.
Not reproduced: the Gateway API variants (sailmesh has no Gateway API) and the
Kubernetes NetworkPolicy part of egress-gateway (no NetworkPolicy; Istio's own test skips
its check too).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.e2e import mtls_server
from tests.e2e.istio_docs import (
    rolled_out,
    run,
    task_mesh,
    verify_elided,
    verify_lines,
    verify_same,
)
from tests.e2e.mesh import EXAMPLES, Mesh

pytestmark = pytest.mark.e2e

OFFLINE_CNN = EXAMPLES / "offline-internet" / "edition.cnn.com.yaml"


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    with task_mesh("etk") as m:
        run(m, f"kubectl apply -f {OFFLINE_CNN}")
        # Every task's "before you begin": sleep in default, with automatic injection.
        run(m, "kubectl label namespace default istio-injection=enabled --overwrite")
        run(m, "kubectl apply -f samples/sleep/sleep.yaml")
        rolled_out(m, "offline-internet", "edition-cnn-com")
        rolled_out(m, "default", "sleep")
        yield m


SOURCE_POD = "export SOURCE_POD=$(kubectl get pod -l app=sleep -o jsonpath={.items..metadata.name})\n"
CURL = 'kubectl exec "${SOURCE_POD}" -c sleep -- curl -sSL -o /dev/null -D - '

ORIGINATION_SIMPLE = """kubectl apply -f - <<EOF
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: edition-cnn-com
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
  - number: 443
    name: https-port
    protocol: HTTPS
  resolution: DNS
EOF"""
REDIRECTED = """\
HTTP/1.1 301 Moved Permanently
...
location: https://edition.cnn.com/politics
...

HTTP/2 200
...
"""
ORIGINATION = """kubectl apply -f - <<EOF
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: edition-cnn-com
spec:
  hosts:
  - edition.cnn.com
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
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: edition-cnn-com
spec:
  host: edition.cnn.com
  trafficPolicy:
    portLevelSettings:
    - port:
        number: 80
      tls:
        mode: SIMPLE # initiates HTTPS when accessing edition.cnn.com
EOF"""


def test_egress_tls_origination(mesh: Mesh) -> None:
    run(mesh, ORIGINATION_SIMPLE)
    verify_elided(mesh, SOURCE_POD + CURL + "http://edition.cnn.com/politics", REDIRECTED)

    run(mesh, ORIGINATION)
    verify_elided(mesh, SOURCE_POD + CURL + "http://edition.cnn.com/politics",
                  "HTTP/1.1 200 OK\n...\n")
    verify_elided(mesh, SOURCE_POD + CURL + "https://edition.cnn.com/politics",
                  "HTTP/2 200\n...\n")

    out = run(mesh, """
kubectl delete serviceentry edition-cnn-com
kubectl delete destinationrule edition-cnn-com""")
    assert out.splitlines() == ['serviceentry.networking.istio.io "edition-cnn-com" deleted',
                                'destinationrule.networking.istio.io "edition-cnn-com" deleted'], out


# --- egress-gateway -----------------------------------------------------------------------

CNN_HTTP_ENTRY = """kubectl apply -f - <<EOF
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: cnn
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
  - number: 443
    name: https
    protocol: HTTPS
  resolution: DNS
EOF"""
# The page prints `Content-Type: text/html; charset=utf-8` after `HTTP/2 200`: HTTP/2 sends
# header names in lower case (RFC 9113 §8.2.2) and curl prints them as received, after the
# site's `server` and `date`.
REDIRECTED_HTML = """\
...
HTTP/1.1 301 Moved Permanently
...
location: https://edition.cnn.com/politics
...

HTTP/2 200
...
content-type: text/html; charset=utf-8
...
"""
HTTP_GATEWAY = """kubectl apply -f - <<EOF
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - edition.cnn.com
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: egressgateway-for-cnn
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
EOF"""
HTTP_THROUGH_GATEWAY = """kubectl apply -f - <<EOF
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: direct-cnn-through-egress-gateway
spec:
  hosts:
  - edition.cnn.com
  gateways:
  - istio-egressgateway
  - mesh
  http:
  - match:
    - gateways:
      - mesh
      port: 80
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: cnn
        port:
          number: 80
      weight: 100
  - match:
    - gateways:
      - istio-egressgateway
      port: 80
    route:
    - destination:
        host: edition.cnn.com
        port:
          number: 80
      weight: 100
EOF"""
GATEWAY_SAN = ("""istioctl pc secret -n istio-system "$(kubectl get pod -l istio=egressgateway -n istio-system"""
               """ -o jsonpath='{.items[0].metadata.name}')" -ojson | jq '[.dynamicActiveSecrets[] |"""
               """ select(.name == "default")][0].secret.tlsCertificate.certificateChain.inlineBytes' -r"""
               """ | base64 -d | openssl x509 -text -noout | grep 'Subject Alternative Name' -A 1""")
CLEANUP_GATEWAY = """
kubectl delete serviceentry cnn
kubectl delete gateway istio-egressgateway
kubectl delete virtualservice direct-cnn-through-egress-gateway
kubectl delete destinationrule egressgateway-for-cnn"""
CNN_TLS_ENTRY = """kubectl apply -f - <<EOF
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: cnn
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 443
    name: tls
    protocol: TLS
  resolution: DNS
EOF"""
HTTPS_THROUGH_GATEWAY = """kubectl apply -f - <<EOF
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: 443
      name: tls
      protocol: TLS
    hosts:
    - edition.cnn.com
    tls:
      mode: PASSTHROUGH
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: egressgateway-for-cnn
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: direct-cnn-through-egress-gateway
spec:
  hosts:
  - edition.cnn.com
  gateways:
  - mesh
  - istio-egressgateway
  tls:
  - match:
    - gateways:
      - mesh
      port: 443
      sniHosts:
      - edition.cnn.com
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: cnn
        port:
          number: 443
  - match:
    - gateways:
      - istio-egressgateway
      port: 443
      sniHosts:
      - edition.cnn.com
    route:
    - destination:
        host: edition.cnn.com
        port:
          number: 443
      weight: 100
EOF"""
GATEWAY_LOG = "kubectl logs -l istio=egressgateway -c istio-proxy -n istio-system | tail"


def test_egress_gateway(mesh: Mesh) -> None:
    # The task's setup installs the demo profile, whose proxies log every request.
    run(mesh, "istioctl install --set profile=demo -y")
    out = run(mesh, "kubectl get pod -l istio=egressgateway -n istio-system")
    assert out.startswith("NAME") and " 1/1 " in out and "Running" in out, out

    # HTTP through the egress gateway.
    run(mesh, CNN_HTTP_ENTRY)
    verify_elided(mesh, SOURCE_POD + CURL + "http://edition.cnn.com/politics", REDIRECTED_HTML)
    run(mesh, HTTP_GATEWAY)
    run(mesh, HTTP_THROUGH_GATEWAY)
    verify_elided(mesh, SOURCE_POD + CURL + "http://edition.cnn.com/politics", REDIRECTED_HTML)
    # The sidecar reaches the gateway over HTTP/2 (its Service port is named http2); the
    # gateway sends the request on to edition.cnn.com:80, which redirects.
    log = verify_lines(mesh, GATEWAY_LOG, '"GET /politics HTTP/2" 301', "outbound|80||edition.cnn.com")
    assert '"edition.cnn.com"' in log, log
    verify_same(mesh, GATEWAY_SAN, """\
            X509v3 Subject Alternative Name: critical
                URI:spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account""")
    run(mesh, CLEANUP_GATEWAY)

    # HTTPS passed through the egress gateway by SNI.
    run(mesh, CNN_TLS_ENTRY)
    verify_elided(mesh, SOURCE_POD + CURL + "https://edition.cnn.com/politics",
                  "...\nHTTP/2 200\n...\ncontent-type: text/html; charset=utf-8\n...\n")
    before = run(mesh, "kubectl logs -l istio=egressgateway -n istio-system").count(
        "outbound|443||edition.cnn.com")
    run(mesh, HTTPS_THROUGH_GATEWAY)
    verify_elided(mesh, SOURCE_POD + CURL + "https://edition.cnn.com/politics",
                  "...\nHTTP/2 200\n...\ncontent-type: text/html; charset=utf-8\n...\n")
    # The gateway logs the passed-through connection with its SNI, no HTTP (`"- - -"`).
    log = verify_lines(mesh, "kubectl logs -l istio=egressgateway -n istio-system",
                       "outbound|443||edition.cnn.com")
    lines = [ln for ln in log.splitlines() if "outbound|443||edition.cnn.com" in ln]
    assert len(lines) > before and '"- - -"' in lines[-1], log
    run(mesh, CLEANUP_GATEWAY)


# --- egress-gateway-tls-origination ---------------------------------------------------------

CNN_ENTRY = CNN_HTTP_ENTRY.replace("name: http-port", "name: http")
TLS_ORIGINATION_GATEWAY = """kubectl apply -f - <<EOF
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: 80
      name: https-port-for-tls-origination
      protocol: HTTPS
    hosts:
    - edition.cnn.com
    tls:
      mode: ISTIO_MUTUAL
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: egressgateway-for-cnn
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
      portLevelSettings:
      - port:
          number: 80
        tls:
          mode: ISTIO_MUTUAL
          sni: edition.cnn.com
EOF"""
# The same routes as for HTTP, except that the gateway sends the request to port 443, plus
# the rule that makes it originate TLS there.
TLS_ORIGINATION_ROUTES = HTTP_THROUGH_GATEWAY.replace(
    "          number: 80\n      weight: 100\nEOF",
    "          number: 443\n      weight: 100\n" + """---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: originate-tls-for-edition-cnn-com
spec:
  host: edition.cnn.com
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
    portLevelSettings:
    - port:
        number: 443
      tls:
        mode: SIMPLE # initiates HTTPS for connections to edition.cnn.com
EOF""")


MTLS_ORIGINATION = """
kubectl create secret -n istio-system generic client-credential --from-file=tls.key=client.example.com.key \\
  --from-file=tls.crt=client.example.com.crt --from-file=ca.crt=example.com.crt
kubectl apply -f - <<EOF
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: 443
      name: https
      protocol: HTTPS
    hosts:
    - my-nginx.mesh-external.svc.cluster.local
    tls:
      mode: ISTIO_MUTUAL
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: egressgateway-for-nginx
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: nginx
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
      portLevelSettings:
      - port:
          number: 443
        tls:
          mode: ISTIO_MUTUAL
          sni: my-nginx.mesh-external.svc.cluster.local
EOF
kubectl apply -f - <<EOF
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: direct-nginx-through-egress-gateway
spec:
  hosts:
  - my-nginx.mesh-external.svc.cluster.local
  gateways:
  - istio-egressgateway
  - mesh
  http:
  - match:
    - gateways:
      - mesh
      port: 80
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: nginx
        port:
          number: 443
      weight: 100
  - match:
    - gateways:
      - istio-egressgateway
      port: 443
    route:
    - destination:
        host: my-nginx.mesh-external.svc.cluster.local
        port:
          number: 443
      weight: 100
EOF
kubectl apply -n istio-system -f - <<EOF
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: originate-mtls-for-nginx
spec:
  host: my-nginx.mesh-external.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
    portLevelSettings:
    - port:
        number: 443
      tls:
        mode: MUTUAL
        credentialName: client-credential # this must match the secret created earlier to hold client certs
        sni: my-nginx.mesh-external.svc.cluster.local
EOF"""
MTLS_CLEANUP = """
kubectl delete secret nginx-server-certs nginx-ca-certs -n mesh-external
kubectl delete secret client-credential -n istio-system
kubectl delete configmap nginx-configmap -n mesh-external
kubectl delete service my-nginx -n mesh-external
kubectl delete deployment my-nginx -n mesh-external
kubectl delete namespace mesh-external
kubectl delete gateway istio-egressgateway
kubectl delete virtualservice direct-nginx-through-egress-gateway
kubectl delete destinationrule -n istio-system originate-mtls-for-nginx
kubectl delete destinationrule egressgateway-for-nginx"""


def test_egress_gateway_tls_origination(mesh: Mesh) -> None:
    run(mesh, "istioctl install --set profile=demo -y")
    run(mesh, CNN_ENTRY)
    verify_elided(mesh, SOURCE_POD + CURL + "http://edition.cnn.com/politics", """\
HTTP/1.1 301 Moved Permanently
...
location: https://edition.cnn.com/politics
...
""")
    run(mesh, TLS_ORIGINATION_GATEWAY)
    run(mesh, TLS_ORIGINATION_ROUTES)
    verify_elided(mesh, SOURCE_POD + CURL + "http://edition.cnn.com/politics", "HTTP/1.1 200 OK\n...\n")
    verify_lines(mesh, GATEWAY_LOG, '"GET /politics HTTP/2" 200', "outbound|443||edition.cnn.com")
    run(mesh, """
kubectl delete gateway istio-egressgateway
kubectl delete serviceentry cnn
kubectl delete virtualservice direct-cnn-through-egress-gateway
kubectl delete destinationrule originate-tls-for-edition-cnn-com
kubectl delete destinationrule egressgateway-for-cnn""")

    # Mutual TLS origination: nginx requires a client certificate from example.com's CA,
    # which the egress gateway presents from Secret istio-system/client-credential.
    run(mesh, mtls_server.CERTS)
    run(mesh, mtls_server.server())
    rolled_out(mesh, "mesh-external", "my-nginx")
    run(mesh, MTLS_ORIGINATION)
    verify_elided(mesh, 'kubectl exec "$(kubectl get pod -l app=sleep -o jsonpath={.items..metadata.name})"'
                  " -c sleep -- curl -sS http://my-nginx.mesh-external.svc.cluster.local", """\
<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
...
""")
    verify_lines(mesh, "kubectl logs -l istio=egressgateway -n istio-system"
                 " | grep 'my-nginx.mesh-external.svc.cluster.local' | grep HTTP", "GET / HTTP/1.1")
    run(mesh, MTLS_CLEANUP)



# --- security/cert-management/plugin-ca-cert ------------------------------------------------

# What `make -f ../tools/certs/Makefile.selfsigned.mk root-ca` and `… cluster1-cacerts` run
# (Istio's tools/certs: a 4096-bit RSA root "O=Istio, CN=Root CA" for 3650 days; an
# intermediate "O=Istio, CN=Intermediate CA, L=cluster1" for 730 days with pathlen 0 and DNS
# SAN istiod.istio-system.svc; cert-chain.pem = ca-cert.pem + root-cert.pem), as openssl
# commands, from inside certs/ as on the page.
PLUGIN_CERTS = r"""
mkdir -p certs
pushd certs
cat > root-ca.conf <<EOF
[ req ]
encrypt_key = no
prompt = no
utf8 = yes
default_md = sha256
default_bits = 4096
req_extensions = req_ext
x509_extensions = req_ext
distinguished_name = req_dn
[ req_ext ]
subjectKeyIdentifier = hash
basicConstraints = critical, CA:true
keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign
[ req_dn ]
O = Istio
CN = Root CA
EOF
openssl genrsa -out root-key.pem 4096
openssl req -new -key root-key.pem -config root-ca.conf -out root-cert.csr
openssl x509 -req -days 3650 -signkey root-key.pem -extensions req_ext -extfile root-ca.conf -in root-cert.csr -out root-cert.pem
mkdir -p cluster1
cat > cluster1/intermediate.conf <<EOF
[ req ]
encrypt_key = no
prompt = no
utf8 = yes
default_md = sha256
default_bits = 4096
req_extensions = req_ext
x509_extensions = req_ext
distinguished_name = req_dn
[ req_ext ]
subjectKeyIdentifier = hash
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign
subjectAltName=@san
[ san ]
DNS.1 = istiod.istio-system.svc
[ req_dn ]
O = Istio
CN = Intermediate CA
L = cluster1
EOF
openssl genrsa -out cluster1/ca-key.pem 4096
openssl req -new -config cluster1/intermediate.conf -key cluster1/ca-key.pem -out cluster1/cluster-ca.csr
openssl x509 -req -days 730 -CA root-cert.pem -CAkey root-key.pem -CAcreateserial -extensions req_ext -extfile cluster1/intermediate.conf -in cluster1/cluster-ca.csr -out cluster1/ca-cert.pem
cat cluster1/ca-cert.pem root-cert.pem > cluster1/cert-chain.pem
cp root-cert.pem cluster1/
"""
PLUGIN_SECRET = """
kubectl create namespace istio-system
kubectl create secret generic cacerts -n istio-system \\
      --from-file=cluster1/ca-cert.pem \\
      --from-file=cluster1/ca-key.pem \\
      --from-file=cluster1/root-cert.pem \\
      --from-file=cluster1/cert-chain.pem
popd
"""
SHOW_CERTS = ('kubectl exec "$(kubectl get pod -l app=sleep -n foo -o jsonpath={.items..metadata.name})"'
              " -c istio-proxy -n foo -- openssl s_client -showcerts -connect httpbin.foo:8000"
              " > httpbin-proxy-cert.txt")
SPLIT_CERTS = r"""
sed -n '/-----BEGIN CERTIFICATE-----/{:start /-----END CERTIFICATE-----/!{N;b start};/.*/p}' httpbin-proxy-cert.txt > certs.pem
awk 'BEGIN {counter=0;} /BEGIN CERT/{counter++} { print > "proxy-cert-" counter ".pem"}' < certs.pem
"""


def test_plugin_ca_cert(mesh: Mesh) -> None:
    run(mesh, PLUGIN_CERTS)
    out = run(mesh, "cd certs\n" + PLUGIN_SECRET.replace("popd", "cd .."))
    # sailmesh's control plane is up before any task (Istio's test starts without it), so
    # istio-system already exists, as kubectl says; the Secret is created all the same.
    assert out.splitlines() == [
        'Error from server (AlreadyExists): namespaces "istio-system" already exists',
        "secret/cacerts created"], out
    run(mesh, "istioctl install --set values.pilot.env.PILOT_ENABLE_CONFIG_DISTRIBUTION_TRACKING=true"
              " --set profile=demo -y")
    run(mesh, """
kubectl create ns foo
kubectl apply -f <(istioctl kube-inject -f samples/httpbin/httpbin.yaml) -n foo
kubectl apply -f <(istioctl kube-inject -f samples/sleep/sleep.yaml) -n foo
kubectl apply -n foo -f - <<EOF
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata:
  name: "default"
spec:
  mtls:
    mode: STRICT
EOF""")
    rolled_out(mesh, "foo", "httpbin", "sleep")
    # The page waits 20 s for the new certificates to reach the proxies, then fetches the
    # chain (its output, and s_client's complaint about the missing client certificate, are
    # not compared) and splits it; here that is repeated until the root check holds.
    root_check = """
openssl x509 -in certs/cluster1/root-cert.pem -text -noout > /tmp/root-cert.crt.txt
openssl x509 -in ./proxy-cert-3.pem -text -noout > /tmp/pod-root-cert.crt.txt
diff -s /tmp/root-cert.crt.txt /tmp/pod-root-cert.crt.txt"""
    deadline = time.monotonic() + 40
    while True:
        run(mesh, SHOW_CERTS)
        run(mesh, SPLIT_CERTS)
        out = run(mesh, root_check)
        if out == "Files /tmp/root-cert.crt.txt and /tmp/pod-root-cert.crt.txt are identical\n":
            break
        assert time.monotonic() < deadline, out
        time.sleep(1)
    verify_same(mesh, """
openssl x509 -in certs/cluster1/ca-cert.pem -text -noout > /tmp/ca-cert.crt.txt
openssl x509 -in ./proxy-cert-2.pem -text -noout > /tmp/pod-cert-chain-ca.crt.txt
diff -s /tmp/ca-cert.crt.txt /tmp/pod-cert-chain-ca.crt.txt""",
                "Files /tmp/ca-cert.crt.txt and /tmp/pod-cert-chain-ca.crt.txt are identical")
    verify_same(mesh, "openssl verify -CAfile <(cat certs/cluster1/ca-cert.pem certs/cluster1/root-cert.pem)"
                      " ./proxy-cert-1.pem", "./proxy-cert-1.pem: OK")
    # The chain has exactly the three certificates the page splits (leaf, intermediate, root).
    assert not (mesh.work / "proxy-cert-4.pem").exists()

    out = run(mesh, """
rm -rf certs
kubectl delete secret cacerts -n istio-system
kubectl delete peerauthentication -n foo default
kubectl delete -f samples/sleep/sleep.yaml -n foo
kubectl delete -f samples/httpbin/httpbin.yaml -n foo
kubectl delete ns foo""")
    assert 'secret "cacerts" deleted' in out and 'namespace "foo" deleted' in out, out
