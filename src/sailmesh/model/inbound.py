"""Istio's sidecar inbound rules: which filter chains a pod's ports get, and which one a
connection lands on.

Owns: the inbound protocol of a port (declared HTTP → HTTP connection manager; TCP, TLS
and HTTPS → bytes; no protocol → sniffed), the chain table by protocol and mTLS mode
(Istio's `filterchain_options.go`), the mesh's ALPN values that tell mesh mTLS apart from
an application's own TLS, the passthrough chains for ports no Service declares, and
`pick`, the chain a connection lands on. Translation builds its chains from this table and
`x tls-check` predicts with `pick`, so the two cannot drift. Must not know: Envoy
messages, IO.

Envoy's chain selection, as `pick` follows it (listener FilterChainMatch, no backtracking):
1. destination port: the chains of that port, else the port-less (passthrough) chains;
2. transport protocol: `tls` when the TLS inspector runs on that port and sees TLS, else
   `raw_buffer` (the inspector runs only on ports where some chain matches `tls`);
3. application protocols: the client's ALPN offer for TLS; for plaintext, `http/1.1` or
   `h2c` when the HTTP inspector runs there (ports with such a chain, and every port
   without chains of its own) and sees HTTP; chains without ALPN match anything left.
No chain at some step: the connection is closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sailmesh.model.mesh import MeshModel
from sailmesh.model.policy import effective_peer_auth, port_level_mtls_ports
from sailmesh.model.services import ServicePort
from sailmesh.model.workloads import Workload

Protocol = Literal["HTTP", "TCP", "AUTO"]
Transport = Literal["tls", "raw_buffer"]

# What Istio's client sidecars offer on ISTIO_MUTUAL connections: HTTP traffic (the
# `istio.alpn` filter's override by upstream protocol) and anything else (the cluster's
# default, with metadata exchange).
MTLS_HTTP_ALPNS = ("istio-http/1.0", "istio-http/1.1", "istio-h2")
MTLS_TCP_ALPNS = ("istio-peer-exchange", "istio")
ALL_ISTIO_MTLS_ALPNS = ("istio", "istio-peer-exchange", *MTLS_HTTP_ALPNS)
# What the HTTP inspector reports for plaintext HTTP (HTTP/1.0 is off by default in Istio).
PLAINTEXT_HTTP_ALPNS = ("http/1.1", "h2c")
# What the inbound mTLS server contexts advertise (HTTP chains; TCP chains add
# metadata exchange).
SERVER_HTTP_ALPNS = ("h2", "http/1.1")
SERVER_TCP_ALPNS = ("istio-peer-exchange", "h2", "http/1.1")
INBOUND_PASSTHROUGH_CLUSTER = "InboundPassthroughCluster"


def mesh_client_alpn(http: bool, http2: bool = False) -> tuple[str, ...]:
    """The ALPN a client sidecar offers on mesh mTLS: `istio-http/1.1` (or `istio-h2`) and
    `istio` for HTTP it proxies, `istio-peer-exchange` and `istio` for bytes."""
    if not http:
        return MTLS_TCP_ALPNS
    return ("istio-h2" if http2 else "istio-http/1.1", "istio")


@dataclass(frozen=True)
class ChainOption:
    """One inbound filter chain of a port: what it matches and what it does."""

    l7: Literal["HTTP", "TCP"]  # HTTP connection manager, or tcp_proxy
    transport: Transport
    alpns: tuple[str, ...] = ()  # empty: any
    mtls: bool = False  # terminates mesh mTLS (workload certificate, client cert required)


_MTLS_HTTP = ChainOption("HTTP", "tls", MTLS_HTTP_ALPNS, mtls=True)
_PLAIN_HTTP = ChainOption("HTTP", "raw_buffer", PLAINTEXT_HTTP_ALPNS)
_PLAIN_TCP = ChainOption("TCP", "raw_buffer")

# Istio's chain table (pilot `getFilterChainMatchOptions`), by (protocol, mode).
CHAIN_OPTIONS: dict[tuple[Protocol, str], tuple[ChainOption, ...]] = {
    ("HTTP", "STRICT"): (ChainOption("HTTP", "tls", mtls=True),),
    ("HTTP", "PERMISSIVE"): (ChainOption("HTTP", "tls", ALL_ISTIO_MTLS_ALPNS, mtls=True),
                             ChainOption("HTTP", "raw_buffer")),
    ("HTTP", "DISABLE"): (ChainOption("HTTP", "raw_buffer"),),
    ("TCP", "STRICT"): (ChainOption("TCP", "tls", mtls=True),),
    # The last chain: TLS without the mesh's ALPN is the application's own, passed on.
    ("TCP", "PERMISSIVE"): (ChainOption("TCP", "tls", ALL_ISTIO_MTLS_ALPNS, mtls=True),
                            _PLAIN_TCP, ChainOption("TCP", "tls")),
    ("TCP", "DISABLE"): (_PLAIN_TCP,),
    ("AUTO", "STRICT"): (_MTLS_HTTP, ChainOption("TCP", "tls", mtls=True)),
    ("AUTO", "PERMISSIVE"): (_MTLS_HTTP, _PLAIN_HTTP,
                             ChainOption("TCP", "tls", MTLS_TCP_ALPNS, mtls=True),
                             _PLAIN_TCP, ChainOption("TCP", "tls")),
    ("AUTO", "DISABLE"): (_PLAIN_HTTP, _PLAIN_TCP),
}


def port_protocol(sp: ServicePort) -> Protocol:
    """Istio's inbound protocol of a Service port: HTTP, TCP (TCP, TLS, HTTPS, databases),
    or AUTO (sniffed)."""
    if sp.mesh_protocol == "HTTP":
        return "AUTO" if sp.sniffed else "HTTP"
    return "TCP"


@dataclass(frozen=True)
class InboundPort:
    """The chains of one container port (`port` 0: every port without chains of its own)."""

    port: int
    protocol: Protocol
    mode: str  # STRICT / PERMISSIVE / DISABLE
    policy: str  # "PeerAuthentication ns/name" or "default"
    service: str | None = None  # the Service that declares it; None: passthrough
    http2: bool = False  # declared HTTP/2 (`http2`, `grpc`, …): the app is spoken h2 to

    @property
    def passthrough(self) -> bool:
        return self.service is None

    @property
    def cluster(self) -> str:
        return INBOUND_PASSTHROUGH_CLUSTER if self.passthrough else f"inbound|{self.port}||"

    @property
    def options(self) -> tuple[ChainOption, ...]:
        return CHAIN_OPTIONS[(self.protocol, self.mode)]


def inbound_ports(model: MeshModel, workload: Workload) -> list[InboundPort]:
    """The pod's inbound chains: one set per target port of the Services selecting it (the
    first Service to declare a port decides its protocol), then the passthrough set (the
    workload's mode) and one per `portLevelMtls` port no Service declares (that port's
    mode), as Istio builds them. Container ports alone declare nothing."""
    root = model.mesh.root_namespace
    declared: dict[int, tuple[Protocol, str, bool]] = {}
    for svc in model.selecting_services.selecting(workload.namespace, workload.labels):
        for sp in svc.ports:
            if sp.mesh_protocol == "UDP":
                continue
            target = _target_port(sp, workload)
            if target is not None and target not in declared:
                declared[target] = (port_protocol(sp), svc.fqdn, sp.http2)
    out = []
    for port in sorted(declared):
        peer = effective_peer_auth(model, workload, port, root)
        protocol, service, http2 = declared[port]
        out.append(InboundPort(port, protocol, peer.mode, peer.source, service, http2))
    passthrough_ports = [0, *(p for p in port_level_mtls_ports(model, workload, root)
                              if p not in declared)]
    for port in passthrough_ports:
        peer = effective_peer_auth(model, workload, port, root)
        out.append(InboundPort(port, "AUTO", peer.mode, peer.source))
    return out


def _target_port(sp: ServicePort, workload: Workload) -> int | None:
    target = sp.target_port
    if target is None:
        return sp.port
    if isinstance(target, int) or target.isdigit():
        return int(target)
    return workload.container_ports.get(target)


@dataclass(frozen=True)
class Arrival:
    """What reaches the pod's sidecar: TLS (with the client's ALPN offer) or plaintext
    (HTTP or other bytes)."""

    tls: bool
    alpn: tuple[str, ...] = ()
    http: bool = False


@dataclass(frozen=True)
class Picked:
    port: InboundPort
    option: ChainOption


def inspectors(ports: list[InboundPort], dest_port: int) -> tuple[bool, bool]:
    """(TLS inspector, HTTP inspector) on `dest_port`, as Istio enables them per port."""
    own = [p for p in ports if p.port == dest_port and dest_port != 0]
    chains = [o for p in (own or [p for p in ports if p.port == 0]) for o in p.options]
    tls = any(o.transport == "tls" for o in chains)
    http = any(a in PLAINTEXT_HTTP_ALPNS for o in chains for a in o.alpns) if own else True
    return tls, http


def pick(ports: list[InboundPort], dest_port: int, arrival: Arrival) -> Picked | None:
    """The chain a connection to `dest_port` lands on, or None (the sidecar closes it)."""
    own = [p for p in ports if p.port == dest_port]
    candidates = [(p, o) for p in (own or [p for p in ports if p.port == 0])
                  for o in p.options]
    tls_on, http_on = inspectors(ports, dest_port)
    transport = "tls" if arrival.tls and tls_on else "raw_buffer"
    if transport == "tls":
        detected = arrival.alpn
    else:
        detected = ("http/1.1",) if arrival.http and not arrival.tls and http_on else ()
    level = [(p, o) for p, o in candidates if o.transport == transport]
    exact = [(p, o) for p, o in level if set(o.alpns) & set(detected)]
    found = exact or [(p, o) for p, o in level if not o.alpns]
    return Picked(*found[0]) if found else None


__all__ = [
    "ALL_ISTIO_MTLS_ALPNS", "CHAIN_OPTIONS", "INBOUND_PASSTHROUGH_CLUSTER", "MTLS_HTTP_ALPNS",
    "MTLS_TCP_ALPNS", "PLAINTEXT_HTTP_ALPNS", "SERVER_HTTP_ALPNS", "SERVER_TCP_ALPNS",
    "Arrival", "ChainOption", "InboundPort", "Picked", "inbound_ports", "inspectors",
    "mesh_client_alpn", "pick", "port_protocol",
]
