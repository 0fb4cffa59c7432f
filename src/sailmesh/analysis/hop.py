"""One hop as `sailctl x tls-check` and the mesh analyzers see it: its two ends (a source
and a destination, resolved from what a user typed), what each side does, and the result.

Owns: the shapes of a hop (`Source`, `Destination`, `ClientSide`, `ServerSide`, `Hop`);
resolving a source (a workload, a gateway, a generic sidecar of a namespace, or a client
outside the mesh) and a destination (Service or ServiceEntry host and port); whether the
application on a port speaks TLS (Istio's protocol selection). Must not know: how a hop is
judged (`explain`, `hop_verdict`), Envoy, IO, output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from sailmesh.analysis.context import AnalysisContext
from sailmesh.analysis.workloads import MeshWorkload
from sailmesh.model.hosts import matches
from sailmesh.model.inbound import InboundPort
from sailmesh.model.services import MeshService, exported_to
from sailmesh.resources.core import Service
from sailmesh.resources.networking import ServiceEntry, ServiceEntryPort

SourceKind = Literal["sidecar", "gateway", "no-sidecar", "outside"]
TLS_PROTOCOLS = frozenset({"HTTPS", "TLS"})
# What an application's own TLS client offers (curl's default).
CLIENT_APP_ALPN = ("h2", "http/1.1")
GATEWAY_ALIASES = {"ingress": "ingressgateway", "egress": "egressgateway"}


class ExplainError(ValueError):
    """A source or destination that cannot be resolved; the message says what exists."""


@dataclass(frozen=True)
class Source:
    kind: SourceKind
    namespace: str  # the client namespace for DestinationRule lookup ("" when outside)
    workload: MeshWorkload | None = None

    def describe(self) -> str:
        if self.kind == "outside":
            return "a client outside the mesh"
        if self.workload is None:
            return f"a sidecar in namespace {self.namespace}"
        return self.workload.ref

    @property
    def proxied(self) -> bool:
        return self.kind in ("sidecar", "gateway")


@dataclass(frozen=True)
class Destination:
    host: str  # FQDN or ServiceEntry host
    port: int
    service: MeshService | None = None
    entry: ServiceEntry | None = None
    entry_port: ServiceEntryPort | None = None
    subset: str | None = None  # a DestinationRule subset a route names
    # The registry's definition of the host the client uses (`MeshModel.service`): the
    # Service's, or the entry's (None for a wildcard entry host).
    definition: MeshService | None = None

    @property
    def ref(self) -> str:
        if self.service is not None:
            return f"Service {self.service.namespace}/{self.service.name}"
        assert self.entry is not None
        return self.entry.ref

    @property
    def namespace(self) -> str | None:
        return self.service.namespace if self.service is not None else None


@dataclass
class ClientSide:
    proxy: bool
    mode: str  # DestinationRule mode, "AUTO", or "NONE" (no client proxy)
    policy: str  # "DestinationRule ns/name", "auto mTLS", "no client proxy"
    app_tls: bool  # the application itself sends TLS
    sni: str | None = None
    certificate: str | None = None
    http: bool = True  # the destination port carries HTTP (the client proxies it as HTTP)
    reasons: list[str] = field(default_factory=list)
    other_rules: list[str] = field(default_factory=list)
    # Why the client proxy has no cluster for the hop (its credentialName is not served
    # to it): requests fail whatever the server accepts.
    left_out: str | None = None
    left_out_error: str | None = None  # what the user sees then, when not Envoy's 503 NC


@dataclass
class ServerSide:
    target: str  # "Deployment test/httpbin" or "external api.example.com"
    port: int  # container port (or the external port)
    sidecar: bool
    mode: str  # STRICT / PERMISSIVE / DISABLE, or "NONE" without a sidecar
    policy: str  # "PeerAuthentication ns/name", "default", "no sidecar", "external"
    accepts: str
    app_tls: bool  # the application or external server speaks TLS
    sends: str = ""  # what reaches this endpoint from the client proxy
    works: bool = False
    error: str | None = None
    reasons: list[str] = field(default_factory=list)
    # A gateway server (not a sidecar): what auto mTLS sends it depends on the endpoint's
    # tlsMode label, which gateways lack; `next_hop` is where the gateway sends it on.
    gateway: bool = False
    next_hop: str | None = None
    refuses: str | None = None  # why it takes no connection at all (no matching server)
    no_endpoints: str | None = None  # why the client proxy has nowhere to send it
    # A sidecar's inbound chains (`model.inbound`), which decide what it does with a hop,
    # and the one this hop lands on: "HTTP" / "TCP", "(mTLS)" when it terminates mesh
    # mTLS, or "none" (the sidecar closes the connection).
    chains: list[InboundPort] = field(default_factory=list, repr=False)
    chain: str | None = None


@dataclass
class Hop:
    source: Source
    destination: Destination  # where the connection goes (after the mesh's routes)
    client: ClientSide
    servers: list[ServerSide]
    asked: Destination | None = None  # what the application addressed, when routed away
    route: list[str] = field(default_factory=list)  # how a VirtualService routed it

    @property
    def verdict(self) -> str:
        if not self.servers:
            return "unknown"
        ok = [s.works for s in self.servers]
        return "works" if all(ok) else "fails" if not any(ok) else "partly fails"

    def as_dict(self) -> dict[str, object]:
        src = {"kind": self.source.kind, "namespace": self.source.namespace or None,
               "workload": self.source.workload.ref if self.source.workload else None,
               "description": self.source.describe()}
        dest = {"host": self.destination.host, "port": self.destination.port,
                "subset": self.destination.subset, "resource": self.destination.ref}
        out: dict[str, object] = {"source": src, "destination": dest}
        if self.asked is not None:
            out["asked"] = {"host": self.asked.host, "port": self.asked.port,
                            "resource": self.asked.ref}
        if self.route:
            out["route"] = list(self.route)
        servers = [{k: v for k, v in asdict(s).items() if k != "chains"} for s in self.servers]
        return {**out, "client": asdict(self.client), "servers": servers,
                "verdict": self.verdict}


# --- resolving the two ends ------------------------------------------------------------------


def find_source(ctx: AnalysisContext, spec: str | None, namespace: str) -> Source:
    """`None` (a sidecar of `namespace`), `outside`, `ingress`/`egress`, `deploy/NAME`,
    `pod/NAME` or a bare workload name in `namespace`."""
    if spec is None:
        return Source("sidecar", namespace)
    if spec == "outside":
        return Source("outside", "")
    if spec in GATEWAY_ALIASES:
        wanted = GATEWAY_ALIASES[spec]
        for w in ctx.workloads:
            if w.router and w.labels.get("istio") == wanted:
                return Source("gateway", w.namespace, w)
        raise ExplainError(f"no {spec} gateway workload (labels istio: {wanted})")
    kind, _, name = spec.rpartition("/")
    kinds = {"deploy": "Deployment", "deployment": "Deployment", "deployments": "Deployment",
             "pod": "Pod", "pods": "Pod", "po": "Pod", "": None}
    if kind not in kinds:
        raise ExplainError(f"cannot use {kind}/ as a source: give deploy/NAME, a pod, "
                           "ingress, egress or outside")
    found = [w for w in ctx.workloads if w.namespace == namespace and w.name == name
             and (kinds[kind] is None or w.kind == kinds[kind])]
    if not found:
        known = ", ".join(sorted(w.name for w in ctx.workloads if w.namespace == namespace))
        raise ExplainError(f'workload "{name}" not found in namespace "{namespace}"'
                           + (f" (workloads: {known})" if known else ""))
    w = found[0]
    if w.router:
        return Source("gateway", w.namespace, w)
    return Source("sidecar" if w.sidecar else "no-sidecar", w.namespace, w)


def find_destination(ctx: AnalysisContext, spec: str, namespace: str,
                     client_ns: str | None = None) -> Destination:
    """`NAME[.NS[.svc.cluster.local]][:PORT]`, `svc/NAME[:PORT]` or a ServiceEntry host,
    as a proxy in `client_ns` (default: `namespace`) sees it: of a host defined in several
    namespaces, the definition `MeshModel.service` gives it (the one its proxy uses)."""
    host, _, port_text = spec.removeprefix("svc/").removeprefix("service/").partition(":")
    port: int | None = None
    if port_text:
        if not port_text.isdigit():
            raise ExplainError(f"port {port_text!r} is not a number")
        port = int(port_text)
    model = ctx.model
    client = client_ns or namespace
    name = model.resolve_host(host, namespace)
    # A host no definition is exported to: the registry's first one, as before (its
    # proxy has no cluster for it; the route analyzers report exportTo).
    svc = model.service(name, client) or model.services.get(name)
    if svc is not None and svc.source is None:
        numbers = [p.port for p in svc.ports]
        if port is None:
            if len(numbers) != 1:
                raise ExplainError(f"Service {svc.namespace}/{svc.name} has ports "
                                   f"{', '.join(map(str, numbers)) or 'none'}; give one as "
                                   f"{host}:PORT")
            port = numbers[0]
        elif port not in numbers:
            raise ExplainError(f"Service {svc.namespace}/{svc.name} has no port {port} "
                               f"(ports: {', '.join(map(str, numbers))})")
        return Destination(svc.fqdn, port, service=svc, definition=svc)
    entries = [se for se in ctx.snapshot.of_kind(ServiceEntry)
               if any(matches(name if svc is not None else host, h) for h in se.spec.hosts)]
    if svc is not None:  # the entries that make up the definition the client uses
        entries = [se for se in entries if se.namespace == svc.namespace]
    else:
        entries = [se for se in entries if exported_to(se.spec.export_to, se.namespace, client)
                   ] or entries
    if not entries:
        raise ExplainError(f"{host} ({name}) is neither a Service nor a ServiceEntry host")
    ports = [(se, p) for se in entries for p in se.spec.ports]
    numbers = list(dict.fromkeys(p.number for _, p in ports))
    chosen = next(((se, p) for se, p in ports if p.number == port), None) if port else (
        ports[0] if len(numbers) == 1 else None)
    if chosen is None:
        shown = ", ".join(map(str, numbers)) or "none"
        raise ExplainError(f"{entries[0].ref} declares ports {shown} for {host}; give one as "
                           f"{host}:PORT")
    se, entry_port = chosen
    return Destination(svc.fqdn if svc is not None else host, entry_port.number, entry=se,
                       entry_port=entry_port, definition=svc)


# --- protocols --------------------------------------------------------------------------------


def service_port_tls(ctx: AnalysisContext, svc: MeshService, port: int) -> bool:
    """Does the application on this Service port speak TLS (Istio protocol selection)?"""
    res = ctx.snapshot.get(Service, svc.namespace, svc.name)
    sp = next((p for p in res.spec.ports if p.port == port), None) if res else None
    if sp is None:
        return False
    raw = (sp.app_protocol or (sp.name or "").split("-", 1)[0]).upper()
    return raw in TLS_PROTOCOLS


def entry_port_tls(port: ServiceEntryPort) -> tuple[bool, bool]:
    """(the application sends TLS, the external server expects TLS) for a ServiceEntry port.

    A port declared HTTP whose targetPort (or number) is 443 is the TLS origination shape:
    the app speaks plain HTTP and the server expects TLS.
    """
    protocol = (port.protocol or "").upper()
    app = protocol in TLS_PROTOCOLS
    server = app or (port.target_port or port.number) == 443
    return app, server


# --- the hop -------------------------------------------------------------------------------------
