"""LoadBalancer Services: which loopback addresses and ports reach a gateway pod."""

from __future__ import annotations

from sailmesh.model.services import LoadBalancerBinding, load_balancer_bindings
from sailmesh.resources.core import Service
from sailmesh.resources.loader import load_text

SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  type: LoadBalancer
  selector: {istio: ingressgateway}
  ports:
  - {name: http2, port: 80, targetPort: 8080}
  - {name: https, port: 443, targetPort: https}
  - {name: dns, port: 53, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: internal, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports: [{port: 81, targetPort: 8081}]
---
apiVersion: v1
kind: Service
metadata: {name: other, namespace: istio-system}
spec:
  type: LoadBalancer
  selector: {istio: other}
  ports: [{port: 82}]
"""


def test_bindings_of_the_load_balancers_selecting_the_pod() -> None:
    services = [r for r in load_text(SERVICES, "s.yaml", None).resources if isinstance(r, Service)]
    addresses = {("istio-system", "istio-ingressgateway"): "127.0.0.2",
                 ("istio-system", "other"): "127.0.0.3"}
    got = load_balancer_bindings(services, addresses, "istio-system",
                                 {"istio": "ingressgateway", "app": "x"}, {"https": 8443})
    # ClusterIP Services, other pods' Services and UDP ports bind nothing.
    assert got == (LoadBalancerBinding("127.0.0.2", 80, 8080),
                   LoadBalancerBinding("127.0.0.2", 443, 8443))
    assert load_balancer_bindings(services, addresses, "default",
                                  {"istio": "ingressgateway"}, {}) == ()
