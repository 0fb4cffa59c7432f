"""Istio networking kinds: Gateway, VirtualService, DestinationRule, ServiceEntry.

Field names and enums follow istio/api (networking/v1alpha3 … v1). Cross-field rules that
Istio's validation webhook enforces live in `resources.validation`, not here.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from sailmesh.resources.base import PortNumber, Resource, Spec

NETWORKING_VERSIONS = (
    "networking.istio.io/v1alpha3",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1",
)

TLSVersion = Literal["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"]
ServerTLSMode = Literal[
    "PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"
]
ClientTLSMode = Literal["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"]
PortProtocol = Literal["HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "TCP", "TLS", "UDP"]


# --- Gateway -----------------------------------------------------------------------------


class GatewayPort(Spec):
    number: PortNumber
    protocol: str
    name: str | None = None
    target_port: PortNumber | None = None


class ServerTLSSettings(Spec):
    https_redirect: bool = False
    mode: ServerTLSMode = "PASSTHROUGH"
    server_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None
    ca_crl: str | None = None
    credential_name: str | None = None
    credential_names: list[str] | None = None
    tls_certificates: list[dict[str, Any]] | None = None
    subject_alt_names: list[str] = Field(default_factory=list)
    verify_certificate_spki: list[str] = Field(default_factory=list)
    verify_certificate_hash: list[str] = Field(default_factory=list)
    min_protocol_version: TLSVersion = "TLS_AUTO"
    max_protocol_version: TLSVersion = "TLS_AUTO"
    cipher_suites: list[str] = Field(default_factory=list)


class Server(Spec):
    port: GatewayPort
    bind: str | None = None
    hosts: list[str] = Field(min_length=1)
    tls: ServerTLSSettings | None = None
    default_endpoint: str | None = None
    name: str | None = None


class GatewaySpec(Spec):
    selector: dict[str, str] = Field(default_factory=dict)
    servers: list[Server] = Field(default_factory=list)  # at least one: validation's rule


class Gateway(Resource):
    KIND: ClassVar[str] = "Gateway"
    API_VERSIONS: ClassVar[tuple[str, ...]] = NETWORKING_VERSIONS
    NAMES: ClassVar[tuple[str, ...]] = ("gateways", "gateway", "gw")
    spec: GatewaySpec


# --- VirtualService ----------------------------------------------------------------------


class StringMatch(Spec):
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None


class HTTPMatchRequest(Spec):
    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[str, StringMatch] = Field(default_factory=dict)
    port: PortNumber | None = None
    source_labels: dict[str, str] = Field(default_factory=dict)
    gateways: list[str] = Field(default_factory=list)
    query_params: dict[str, StringMatch] = Field(default_factory=dict)
    ignore_uri_case: bool = False
    without_headers: dict[str, StringMatch] = Field(default_factory=dict)
    source_namespace: str | None = None
    stat_prefix: str | None = None


class PortSelector(Spec):
    number: PortNumber


class Destination(Spec):
    host: str
    subset: str | None = None
    port: PortSelector | None = None


class HTTPRouteDestination(Spec):
    destination: Destination
    weight: int | None = None
    headers: dict[str, Any] | None = None


class HTTPRewrite(Spec):
    uri: str | None = None
    authority: str | None = None
    uri_regex_rewrite: dict[str, str] | None = None


class HTTPRedirect(Spec):
    uri: str | None = None
    authority: str | None = None
    port: PortNumber | None = None
    derive_port: str | None = None
    scheme: str | None = None
    redirect_code: int | None = None


class HTTPDirectResponse(Spec):
    status: int
    body: dict[str, str] | None = None


class HTTPRoute(Spec):
    name: str | None = None
    match: list[HTTPMatchRequest] = Field(default_factory=list)
    route: list[HTTPRouteDestination] = Field(default_factory=list)
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    delegate: dict[str, str] | None = None
    rewrite: HTTPRewrite | None = None
    timeout: str | None = None
    retries: dict[str, Any] | None = None
    fault: dict[str, Any] | None = None
    mirror: Destination | None = None
    mirrors: list[dict[str, Any]] | None = None
    mirror_percentage: dict[str, Any] | None = None
    cors_policy: dict[str, Any] | None = None
    headers: dict[str, Any] | None = None


class TLSMatchAttributes(Spec):
    sni_hosts: list[str] = Field(min_length=1)
    destination_subnets: list[str] = Field(default_factory=list)
    port: PortNumber | None = None
    source_labels: dict[str, str] = Field(default_factory=dict)
    gateways: list[str] = Field(default_factory=list)
    source_namespace: str | None = None


class RouteDestination(Spec):
    destination: Destination
    weight: int | None = None


class TLSRoute(Spec):
    match: list[TLSMatchAttributes] = Field(min_length=1)
    route: list[RouteDestination] = Field(default_factory=list)


class L4MatchAttributes(Spec):
    destination_subnets: list[str] = Field(default_factory=list)
    port: PortNumber | None = None
    source_labels: dict[str, str] = Field(default_factory=dict)
    gateways: list[str] = Field(default_factory=list)
    source_namespace: str | None = None


class TCPRoute(Spec):
    match: list[L4MatchAttributes] = Field(default_factory=list)
    route: list[RouteDestination] = Field(default_factory=list)


class VirtualServiceSpec(Spec):
    hosts: list[str] = Field(default_factory=list)
    gateways: list[str] = Field(default_factory=list)
    http: list[HTTPRoute] = Field(default_factory=list)
    tls: list[TLSRoute] = Field(default_factory=list)
    tcp: list[TCPRoute] = Field(default_factory=list)
    export_to: list[str] = Field(default_factory=list)


class VirtualService(Resource):
    KIND: ClassVar[str] = "VirtualService"
    API_VERSIONS: ClassVar[tuple[str, ...]] = NETWORKING_VERSIONS
    NAMES: ClassVar[tuple[str, ...]] = ("virtualservices", "virtualservice", "vs")
    spec: VirtualServiceSpec


# --- DestinationRule ---------------------------------------------------------------------


class ClientTLSSettings(Spec):
    mode: ClientTLSMode = "DISABLE"
    client_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None
    ca_crl: str | None = None
    credential_name: str | None = None
    subject_alt_names: list[str] = Field(default_factory=list)
    sni: str | None = None
    insecure_skip_verify: bool | None = None


class PortTrafficPolicy(Spec):
    port: PortSelector | None = None
    load_balancer: dict[str, Any] | None = None
    connection_pool: dict[str, Any] | None = None
    outlier_detection: dict[str, Any] | None = None
    tls: ClientTLSSettings | None = None


class TrafficPolicy(Spec):
    load_balancer: dict[str, Any] | None = None
    connection_pool: dict[str, Any] | None = None
    outlier_detection: dict[str, Any] | None = None
    tls: ClientTLSSettings | None = None
    port_level_settings: list[PortTrafficPolicy] = Field(default_factory=list)
    tunnel: dict[str, Any] | None = None
    proxy_protocol: dict[str, Any] | None = None


class Subset(Spec):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    traffic_policy: TrafficPolicy | None = None


class DestinationRuleSpec(Spec):
    host: str
    traffic_policy: TrafficPolicy | None = None
    subsets: list[Subset] = Field(default_factory=list)
    export_to: list[str] = Field(default_factory=list)
    workload_selector: dict[str, Any] | None = None


class DestinationRule(Resource):
    KIND: ClassVar[str] = "DestinationRule"
    API_VERSIONS: ClassVar[tuple[str, ...]] = NETWORKING_VERSIONS
    NAMES: ClassVar[tuple[str, ...]] = ("destinationrules", "destinationrule", "dr")
    spec: DestinationRuleSpec


# --- ServiceEntry ------------------------------------------------------------------------


class ServiceEntryPort(Spec):
    number: PortNumber
    protocol: str | None = None
    name: str | None = None
    target_port: PortNumber | None = None


class WorkloadEntrySpec(Spec):
    address: str | None = None
    ports: dict[str, int] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    network: str | None = None
    locality: str | None = None
    weight: int | None = None
    service_account: str | None = None


class ServiceEntrySpec(Spec):
    hosts: list[str] = Field(min_length=1)
    addresses: list[str] = Field(default_factory=list)
    ports: list[ServiceEntryPort] = Field(default_factory=list)
    location: Literal["MESH_EXTERNAL", "MESH_INTERNAL"] = "MESH_EXTERNAL"
    resolution: Literal["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"] = "NONE"
    endpoints: list[WorkloadEntrySpec] = Field(default_factory=list)
    workload_selector: dict[str, Any] | None = None
    export_to: list[str] = Field(default_factory=list)
    subject_alt_names: list[str] = Field(default_factory=list)


class ServiceEntry(Resource):
    KIND: ClassVar[str] = "ServiceEntry"
    API_VERSIONS: ClassVar[tuple[str, ...]] = NETWORKING_VERSIONS
    NAMES: ClassVar[tuple[str, ...]] = ("serviceentries", "serviceentry", "se")
    spec: ServiceEntrySpec
