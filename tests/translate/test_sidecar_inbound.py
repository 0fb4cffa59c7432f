"""Sidecar inbound as Istio builds it, cell by cell: port declared or not; protocol HTTP,
HTTPS, TCP or unnamed; what the client sends (mesh mTLS with the mesh's ALPN, plaintext
HTTP, raw TCP, the application's own TLS with or without ALPN); PeerAuthentication STRICT,
PERMISSIVE or DISABLE at mesh, namespace, workload or port level. Each cell asserts the
chain Envoy picks on the generated `virtualInbound` (see `simulate.simulate_inbound`), and
that `model.inbound.pick` (what `x tls-check` predicts with) agrees.

The expectations are written out from Istio's chain table (pilot
`filterchain_options.go`), not computed from our own rules.
"""

from __future__ import annotations

import pytest
from cases_io import NOW, load_resources
from simulate import InboundOutcome, simulate_inbound

from sailmesh.model.inbound import Arrival, inbound_ports, pick
from sailmesh.model.mesh import MeshModel, build_model
from sailmesh.model.proxy import Proxy
from sailmesh.model.workloads import Workload
from sailmesh.translate import ProxyConfig, translate_proxy

APP = Workload("test", "app-1", {"app": "app", "security.istio.io/tlsMode": "istio"},
               "10.88.0.3", "app", True, {"web": 8080})
CLIENT = Workload("test", "client-1", {"app": "client", "security.istio.io/tlsMode": "istio"},
                  "10.88.0.4", "client", True)
SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: app, namespace: test, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  selector: {app: app}
  ports:
    - {name: http-web, port: 80, targetPort: web}
    - {name: https-web, port: 443, targetPort: 8443}
    - {name: tcp-echo, port: 9000, targetPort: 9000}
    - {name: custom, port: 7000, targetPort: 7070}  # no protocol in the name: sniffed
---
apiVersion: v1
kind: Service
metadata: {name: client, namespace: test, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  selector: {app: client}
  ports: [{name: http, port: 80}]
"""
# Port kind → the container port it lands on.
PORTS = {"http": 8080, "https": 8443, "tcp": 9000, "unnamed": 7070, "undeclared": 9001}
# What the client sends → the arrival at the server's sidecar.
SENDS = {
    "mesh-http": Arrival(tls=True, alpn=("istio-http/1.1", "istio")),
    "mesh-tcp": Arrival(tls=True, alpn=("istio-peer-exchange", "istio")),
    "http": Arrival(tls=False, http=True),
    "tcp": Arrival(tls=False),
    "tls-alpn": Arrival(tls=True, alpn=("h2", "http/1.1")),  # curl
    "tls": Arrival(tls=True),  # openssl s_client without -alpn
}
H, T = "HTTP", "TCP"
MH, MT = "mTLS HTTP", "mTLS TCP"  # the chain terminates mesh mTLS (a client cert required)
X = "closed"  # no chain: the sidecar closes the connection
# Istio's outcome by (protocol, mode) for sends in SENDS order.
EXPECTED: dict[tuple[str, str], tuple[str, ...]] = {
    ("http", "STRICT"): (MH, MH, X, X, MH, MH),
    ("http", "PERMISSIVE"): (MH, MH, H, H, X, X),
    ("http", "DISABLE"): (H, H, H, H, H, H),
    ("tcp", "STRICT"): (MT, MT, X, X, MT, MT),
    ("tcp", "PERMISSIVE"): (MT, MT, T, T, T, T),
    ("tcp", "DISABLE"): (T, T, T, T, T, T),
    ("auto", "STRICT"): (MH, MT, X, X, MT, MT),
    ("auto", "PERMISSIVE"): (MH, MT, H, T, T, T),
    ("auto", "DISABLE"): (T, T, H, T, T, T),
}
KIND_PROTOCOL = {"http": "http", "https": "tcp", "tcp": "tcp", "unnamed": "auto",
                 "undeclared": "auto"}
OPPOSITE = {"STRICT": "DISABLE", "PERMISSIVE": "STRICT", "DISABLE": "STRICT"}


def pa(ns: str, name: str, at: int, mode: str | None, *, workload: bool = False,
       port: tuple[int, str] | None = None) -> str:
    spec = [f"mtls: {{mode: {mode}}}"] if mode else []
    if workload:
        spec.append("selector: {matchLabels: {app: app}}")
    if port:
        spec.append(f"portLevelMtls: {{{port[0]}: {{mode: {port[1]}}}}}")
    return ("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
            f"metadata: {{name: {name}, namespace: {ns}, creationTimestamp: "
            f"'2026-01-01T00:0{at}:00Z'}}\nspec: {{{', '.join(spec)}}}\n---\n")


def policies(level: str, mode: str, port: int) -> str:
    """`mode` set at `level`, with the level above set to something else."""
    other = OPPOSITE[mode]
    if level == "mesh":
        return pa("istio-system", "default", 1, mode)
    if level == "namespace":
        return pa("istio-system", "default", 1, other) + pa("test", "ns", 2, mode)
    if level == "workload":
        return pa("test", "ns", 2, other) + pa("test", "wl", 3, mode, workload=True)
    return pa("test", "wl", 3, other, workload=True, port=(port, mode))


CELLS = [(level, mode, kind, send)
         for level in ("mesh", "namespace", "workload", "port")
         for mode in ("STRICT", "PERMISSIVE", "DISABLE")
         for kind in PORTS for send in SENDS]


def _expected(kind: str, mode: str, send: str, port: int) -> InboundOutcome:
    outcome = EXPECTED[(KIND_PROTOCOL[kind], mode)][list(SENDS).index(send)]
    if outcome == X:
        return InboundOutcome()
    cluster = "InboundPassthroughCluster" if kind == "undeclared" else f"inbound|{port}||"
    return InboundOutcome(None, outcome.split()[-1], outcome.startswith("mTLS"), cluster)


_configs: dict[tuple[str, str, int], tuple[MeshModel, ProxyConfig]] = {}


def _server(level: str, mode: str, port: int) -> tuple[MeshModel, ProxyConfig]:
    key = (level, mode, port)
    if key not in _configs:
        model = build_model(load_resources(policies(level, mode, port) + SERVICES),
                            [APP, CLIENT])
        proxy = Proxy("sidecar", APP.namespace, APP.name, APP.labels, APP.ip)
        _configs[key] = (model, translate_proxy(model, proxy, now=NOW))
    return _configs[key]


@pytest.mark.parametrize(("level", "mode", "kind", "send"), CELLS,
                         ids=["-".join(c) for c in CELLS])
def test_inbound_chain(level: str, mode: str, kind: str, send: str) -> None:
    port = PORTS[kind]
    model, config = _server(level, mode, port)
    arrival = SENDS[send]
    got = simulate_inbound(config, port, tls=arrival.tls, alpn=arrival.alpn,
                           http=arrival.http)
    want = _expected(kind, mode, send, port)
    assert (got.l7, got.mtls, got.cluster) == (want.l7, want.mtls, want.cluster), got.chain
    # The rule tls-check predicts with picks the same chain.
    picked = pick(inbound_ports(model, APP), port, arrival)
    assert (picked is None) == (got.chain is None)
    if picked is not None:
        assert (picked.option.l7, picked.option.mtls, picked.port.cluster) == (
            got.l7, got.mtls, got.cluster)


def test_client_offers_the_mesh_alpn_by_protocol() -> None:
    """A client sidecar's ISTIO_MUTUAL clusters offer what Istio's do: HTTP ports
    `istio-http/1.1, istio` (the override of Istio's istio.alpn filter), other ports
    `istio-peer-exchange, istio`."""
    from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

    model = build_model(load_resources(pa("istio-system", "default", 1, "STRICT") + SERVICES),
                        [APP, CLIENT])
    config = translate_proxy(model, Proxy("sidecar", "test", CLIENT.name, CLIENT.labels,
                                          CLIENT.ip), now=NOW)
    offered = {}
    for port in (80, 443, 9000):
        cluster = config.clusters[f"outbound|{port}||app.test.svc.cluster.local"]
        match = next(m for m in cluster.transport_socket_matches if m.name == "tlsMode-istio")
        ctx = tls_pb2.UpstreamTlsContext()
        match.transport_socket.typed_config.Unpack(ctx)
        offered[port] = tuple(ctx.common_tls_context.alpn_protocols)
    assert offered == {80: SENDS["mesh-http"].alpn, 443: SENDS["mesh-tcp"].alpn,
                       9000: SENDS["mesh-tcp"].alpn}


# --- x tls-check agrees with the chain Envoy picks ---------------------------------------------

DEPLOYMENTS = """
apiVersion: v1
kind: Namespace
metadata: {name: test, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: test}
spec:
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      serviceAccountName: app
      containers:
        - name: app
          image: docker.io/kong/httpbin
          command: [gunicorn, -b, "0.0.0.0:8080", "httpbin:app"]
          ports: [{name: web, containerPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: test}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec:
      serviceAccountName: client
      containers: [{name: client, image: curlimages/curl, command: [sleep, infinity]}]
---
"""
SERVICE_PORT = {"http": 80, "https": 443, "tcp": 9000, "unnamed": 7000}
TLS_CHECK_CELLS = [(level, mode, kind, source)
                   for level in ("mesh", "namespace", "workload", "port")
                   for mode in ("STRICT", "PERMISSIVE", "DISABLE")
                   for kind in SERVICE_PORT for source in ("deploy/client", "outside")]


def _sent(kind: str, mode: str, source: str) -> Arrival:
    """What really arrives: the client sidecar's auto mTLS (with the ALPN its cluster
    offers, see above) unless the port DISABLEs mTLS; else what the application sends —
    its own TLS on the https port, HTTP on HTTP and unnamed ports, bytes on tcp."""
    if source != "outside" and mode != "DISABLE":
        return SENDS["mesh-tcp" if kind in ("https", "tcp") else "mesh-http"]
    return SENDS["tls-alpn" if kind == "https" else "tcp" if kind == "tcp" else "http"]


@pytest.mark.parametrize(("level", "mode", "kind", "source"), TLS_CHECK_CELLS,
                         ids=["-".join(c) for c in TLS_CHECK_CELLS])
def test_tls_check_predicts_the_chain(level: str, mode: str, kind: str, source: str) -> None:
    from sailmesh.analysis.context import build_context, layer, with_builtin_gateways
    from sailmesh.analysis.explain import explain
    from sailmesh.analysis.hop import find_destination, find_source
    from sailmesh.model.snapshot import Snapshot

    port = PORTS[kind]
    _, config = _server(level, mode, port)
    arrival = _sent(kind, mode, source)
    got = simulate_inbound(config, port, tls=arrival.tls, alpn=arrival.alpn, http=arrival.http)
    envoy = "none" if got.chain is None else f"{got.l7}{' (mTLS)' if got.mtls else ''}"
    resources = load_resources(DEPLOYMENTS + policies(level, mode, port) + SERVICES)
    ctx = build_context(Snapshot.of(with_builtin_gateways(layer([], list(resources), NOW))),
                        NOW)
    hop = explain(ctx, find_source(ctx, source, "test"),
                  find_destination(ctx, f"app:{SERVICE_PORT[kind]}", "test"))
    [server] = hop.servers
    assert server.chain == envoy, hop.as_dict()
    # An mTLS chain works only for the mesh's own mTLS; no chain never works.
    if envoy == "none" or (got.mtls and arrival.alpn[-1:] != ("istio",)):
        assert hop.verdict == "fails", hop.as_dict()
