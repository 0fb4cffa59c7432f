"""Single-resource rules, as Istio's validation webhook and the Kubernetes API server apply them.

Owns: every check that needs more than one field of one object (TLS mode vs. credentials,
host syntax, unique names, weights). Each finding names its field path in YAML spelling
(`spec.servers[0].tls.mode`); the loader turns that path into a file line.
Must not know: files, other resources (cross-object checks belong to `analysis/`), Envoy.
Rules cite their origin; where sailmesh is stricter or only approximates, it says so.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from typing import Any

from sailmesh.resources import kube_rules, names
from sailmesh.resources.base import Resource
from sailmesh.resources.core import ConfigMap, Deployment, Namespace, Secret, Service
from sailmesh.resources.durations import duration_seconds
from sailmesh.resources.errors import Findings, Problem
from sailmesh.resources.gateway_rules import check_gateway
from sailmesh.resources.networking import (
    ClientTLSSettings,
    DestinationRule,
    Gateway,
    ServiceEntry,
    StringMatch,
    TrafficPolicy,
    VirtualService,
)
from sailmesh.resources.openshift import Route, check_route
from sailmesh.resources.operator import IstioOperator
from sailmesh.resources.security import PeerAuthentication
from sailmesh.resources.sidecar import Sidecar, check_sidecar

# RE2 (Envoy's safe_regex) has no lookaround and no backreferences; Python's `re` has both,
# so these are refused explicitly before `re.compile` approximates the rest of RE2.
_RE2_UNSUPPORTED = re.compile(r"\(\?<?[=!]|\\[1-9]")


def validate(resource: Resource) -> list[Problem]:
    """Every rule for this resource's kind; problems carry field paths, not lines."""
    found = Findings(resource.ref)
    _metadata(resource, found)
    rule = _RULES.get(type(resource))
    if rule is not None:
        rule(resource, found)
    return found.items


# --- metadata (Kubernetes apimachinery) ---------------------------------------------------


def _metadata(resource: Resource, f: Findings) -> None:
    # Service names become DNS labels and Namespace names path segments, hence the
    # stricter grammars for those two kinds (as in the Kubernetes API server).
    check = {Service: names.dns1035_label, Namespace: names.dns1123_label}.get(
        type(resource), names.dns1123_subdomain
    )
    problem = check(resource.name)
    if problem:
        f.error("metadata.name", f'Invalid value: "{resource.name}": {problem}')
    if resource.NAMESPACED and (problem := names.dns1123_label(resource.namespace)):
        f.error("metadata.namespace", f'Invalid value: "{resource.namespace}": {problem}')
    kube_rules.check_labels(resource.metadata.labels, "metadata.labels", f)
    kube_rules.check_annotations(resource.metadata.annotations, "metadata.annotations", f)


# --- VirtualService -----------------------------------------------------------------------


def _virtual_service(vs: VirtualService, f: Findings) -> None:
    spec = vs.spec
    if not spec.hosts and (spec.gateways or spec.tls or spec.tcp):
        # Istio treats a VirtualService without hosts as a delegate, and a delegate may
        # only carry http routes.
        f.error(
            "spec.hosts",
            "virtual service must have at least one host",
            "only a delegate VirtualService (http routes only, no gateways) may omit hosts",
        )
    mesh_bound = not spec.gateways or "mesh" in spec.gateways
    for j, host in enumerate(spec.hosts):
        if "/" in host:
            f.error(f"spec.hosts[{j}]", f'invalid host "{host}": a namespace prefix is not allowed')
        elif problem := names.wildcard_host(host):
            f.error(f"spec.hosts[{j}]", problem)
        elif host == "*" and mesh_bound:
            f.error(
                f"spec.hosts[{j}]",
                "wildcard host * is not allowed for virtual services bound to the mesh gateway",
            )
    _gateway_refs(spec.gateways, "spec.gateways", f)
    for i, route in enumerate(spec.http):
        at = f"spec.http[{i}]"
        for j, match in enumerate(route.match):
            for field in ("uri", "scheme", "method", "authority"):
                value = getattr(match, field)
                if value is not None:
                    _string_match(value, f"{at}.match[{j}].{field}", True, f)
            for field in ("headers", "queryParams", "withoutHeaders"):
                for key, value in getattr(match, _snake(field)).items():
                    _string_match(value, f"{at}.match[{j}].{field}[{key}]", False, f)
            _gateway_refs(match.gateways, f"{at}.match[{j}].gateways", f)
        if not (route.route or route.redirect or route.direct_response or route.delegate):
            f.error(at, "HTTP route, redirect, direct response or delegate is required")
        if route.timeout is not None:
            _duration(route.timeout, f"{at}.timeout", f)
        _destinations(route.route, at, f)
    for i, tls_route in enumerate(spec.tls):
        at = f"spec.tls[{i}]"
        for j, tls_match in enumerate(tls_route.match):
            for k, sni in enumerate(tls_match.sni_hosts):
                if spec.hosts and not any(names.host_within(sni, h) for h in spec.hosts):
                    f.error(
                        f"{at}.match[{j}].sniHosts[{k}]",
                        f'sniHost "{sni}" is not covered by any host of the VirtualService',
                        "hosts are " + ", ".join(spec.hosts),
                    )
            _gateway_refs(tls_match.gateways, f"{at}.match[{j}].gateways", f)
        if not tls_route.route:
            f.error(f"{at}.route", "TLS route is required")
        _destinations(tls_route.route, at, f)
    for i, tcp_route in enumerate(spec.tcp):
        if not tcp_route.route:
            f.error(f"spec.tcp[{i}].route", "TCP route is required")
        _destinations(tcp_route.route, f"spec.tcp[{i}]", f)


def _duration(text: str, at: str, f: Findings) -> None:
    # Istio's webhook (ValidateDuration) parses every duration field as a Go duration.
    try:
        duration_seconds(text)
    except ValueError as exc:
        f.error(at, str(exc))


def _snake(camel: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)


def _gateway_refs(refs: Sequence[str], at: str, f: Findings) -> None:
    for j, ref in enumerate(refs):
        if ref == "mesh":
            continue
        parts = ref.split("/")
        bad = len(parts) > 2 or (len(parts) == 2 and names.dns1123_label(parts[0]))
        if bad or names.dns1123_subdomain(parts[-1]):
            f.error(
                f"{at}[{j}]",
                f'invalid gateway name "{ref}"',
                'use "name" (same namespace), "namespace/name" or "mesh"',
            )


def _string_match(match: StringMatch, at: str, required: bool, f: Findings) -> None:
    kinds = [k for k in ("exact", "prefix", "regex") if getattr(match, k) is not None]
    if len(kinds) > 1:
        f.error(at, "only one of exact, prefix or regex may be set, got " + " and ".join(kinds))
    elif not kinds and required:
        f.error(at, "one of exact, prefix or regex must be set")
    if match.regex is not None:
        # Approximation: Envoy uses RE2; Python's `re` accepts a superset of RE2's syntax
        # except for the constructs refused just above.
        if _RE2_UNSUPPORTED.search(match.regex):
            f.error(f"{at}.regex", "RE2 does not support lookaround or backreferences")
        else:
            try:
                re.compile(match.regex)
            except re.error as exc:
                f.error(f"{at}.regex", f'invalid regex "{match.regex}": {exc}')


def _destinations(routes: Sequence[Any], at: str, f: Findings) -> None:
    for k, dest in enumerate(routes):
        if not dest.destination.host:
            f.error(f"{at}.route[{k}].destination.host", "destination host is required")
        if dest.weight is not None and not 0 <= dest.weight <= 100:
            f.error(f"{at}.route[{k}].weight", "weight must be in range 0..100")
    if len(routes) > 1:
        total = sum(d.weight or 0 for d in routes)
        if total != 100:
            f.error(f"{at}.route", f"total destination weight {total} != 100")


# --- DestinationRule ----------------------------------------------------------------------


def _destination_rule(dr: DestinationRule, f: Findings) -> None:
    if problem := names.wildcard_host(dr.spec.host):
        f.error("spec.host", problem)
    _traffic_policy(dr.spec.traffic_policy, "spec.trafficPolicy", f)
    seen: set[str] = set()
    for i, subset in enumerate(dr.spec.subsets):
        at = f"spec.subsets[{i}]"
        if subset.name in seen:
            f.error(f"{at}.name", f"duplicate subset names: {subset.name}")
        seen.add(subset.name)
        if problem := names.dns1123_label(subset.name):
            f.error(f"{at}.name", f'Invalid value: "{subset.name}": {problem}')
        _traffic_policy(subset.traffic_policy, f"{at}.trafficPolicy", f)


def _traffic_policy(policy: TrafficPolicy | None, at: str, f: Findings) -> None:
    if policy is None:
        return
    _client_tls(policy.tls, f"{at}.tls", f)
    for k, port_policy in enumerate(policy.port_level_settings):
        if port_policy.port is None:
            f.error(f"{at}.portLevelSettings[{k}].port", "portTrafficPolicy must have valid port")
        _client_tls(port_policy.tls, f"{at}.portLevelSettings[{k}].tls", f)


def _client_tls(tls: ClientTLSSettings | None, at: str, f: Findings) -> None:
    if tls is None:
        return
    files = {
        "clientCertificate": tls.client_certificate,
        "privateKey": tls.private_key,
        "caCertificates": tls.ca_certificates,
        "caCrl": tls.ca_crl,
    }
    set_files = [name for name, value in files.items() if value]
    if tls.mode == "ISTIO_MUTUAL":
        for field in [*set_files, *(["credentialName"] if tls.credential_name else [])]:
            f.error(
                f"{at}.{field}",
                f"ISTIO_MUTUAL TLS cannot have associated {field}",
                "ISTIO_MUTUAL uses the mesh certificates; use MUTUAL to present your own",
            )
        return
    if tls.insecure_skip_verify and (tls.ca_certificates or tls.subject_alt_names):
        f.error(
            f"{at}.insecureSkipVerify",
            "cannot specify caCertificates or subjectAltNames when insecureSkipVerify is true",
        )
    if tls.mode not in ("SIMPLE", "MUTUAL"):
        return
    if tls.insecure_skip_verify and not (tls.ca_certificates or tls.subject_alt_names):
        f.warning(
            f"{at}.insecureSkipVerify",
            "the server certificate is not verified: anyone between the proxy and the "
            "server can impersonate it",
            "give caCertificates or credentialName (and subjectAltNames) instead",
        )
    if tls.credential_name:
        for field in set_files:
            f.error(
                f"{at}.{field}",
                "cannot specify client certificates or CA certificate or CA CRL if credentialName is set",
            )
        return
    if tls.mode == "MUTUAL" or tls.client_certificate or tls.private_key:
        # A client certificate is useless without its key and the other way round.
        if not tls.client_certificate:
            f.error(f"{at}.clientCertificate", "client certificate required for mutual tls")
        if not tls.private_key:
            f.error(f"{at}.privateKey", "private key required for mutual tls")


# --- IstioOperator ------------------------------------------------------------------------


def _istio_operator(iop: IstioOperator, f: Findings) -> None:
    _duration(iop.spec.mesh_config.protocol_detection_timeout,
              "spec.meshConfig.protocolDetectionTimeout", f)


# --- PeerAuthentication, ServiceEntry -----------------------------------------------------


def _peer_authentication(pa: PeerAuthentication, f: Findings) -> None:
    spec = pa.spec
    if spec.port_level_mtls and (spec.selector is None or not spec.selector.match_labels):
        f.error(
            "spec.portLevelMtls",
            "portLevelMtls requires a workload selector",
            "Istio rejects port-level mTLS in namespace- or mesh-wide policies; add"
            " selector.matchLabels (ports are container ports)",
        )
    for port in spec.port_level_mtls:
        if not 1 <= port <= 65535:
            f.error(f"spec.portLevelMtls[{port}]", "port must be in range 1..65535")


def _service_entry(se: ServiceEntry, f: Findings) -> None:
    """istio/pkg/config/validation ValidateServiceEntry, the rules that matter locally."""
    spec = se.spec
    for j, host in enumerate(spec.hosts):
        if problem := names.wildcard_host(host):
            f.error(f"spec.hosts[{j}]", problem)
        elif host.startswith("*") and spec.resolution in ("DNS", "DNS_ROUND_ROBIN") and not (
                spec.endpoints):
            f.error(f"spec.hosts[{j}]", f"wildcard host {host} cannot be resolved by "
                    f"{spec.resolution}", "use resolution NONE, or give endpoints")
    for j, address in enumerate(spec.addresses):
        try:
            net = ipaddress.ip_network(address, strict=False)
        except ValueError:
            f.error(f"spec.addresses[{j}]", f"invalid address {address}",
                    "an IP address or a CIDR range (10.0.0.0/16)")
            continue
        if net.num_addresses > 1 and spec.resolution in ("DNS", "DNS_ROUND_ROBIN"):
            f.error(f"spec.addresses[{j}]", f"CIDR address {address} is allowed only with "
                    "resolution NONE or STATIC")
    numbers: set[int] = set()
    port_names: set[str] = set()
    for i, port in enumerate(spec.ports):
        if port.number in numbers:
            f.error(f"spec.ports[{i}].number", f"port number {port.number} is not unique")
        numbers.add(port.number)
        if port.name and port.name in port_names:
            f.error(f"spec.ports[{i}].name", f"port name {port.name} is not unique")
        if port.name:
            port_names.add(port.name)
        if port.protocol and port.protocol.upper() not in _SE_PROTOCOLS:
            f.error(f"spec.ports[{i}].protocol", f"unsupported protocol {port.protocol}",
                    "one of " + ", ".join(sorted(_SE_PROTOCOLS)))
    if spec.workload_selector and spec.endpoints:
        f.error("spec.endpoints", "only one of workloadSelector or endpoints may be set")
    if spec.resolution == "NONE" and spec.endpoints:
        f.error("spec.endpoints", "no endpoints should be provided for resolution NONE")
    if spec.resolution == "DNS_ROUND_ROBIN" and len(spec.endpoints) > 1:
        f.error("spec.endpoints", "resolution DNS_ROUND_ROBIN takes at most one endpoint")
    if spec.resolution == "STATIC" and not spec.endpoints and not spec.workload_selector:
        f.warning("spec.endpoints", "resolution STATIC without endpoints or "
                  "workloadSelector: the host has no endpoints, requests to it fail with 503")
    for i, ep in enumerate(spec.endpoints):
        for name in ep.ports:
            if name not in port_names:
                f.error(f"spec.endpoints[{i}].ports[{name}]",
                        f"endpoint port {name} is not a port name of this ServiceEntry")


# istio/api ServicePort protocols a ServiceEntry may declare.
_SE_PROTOCOLS = frozenset({"HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "TCP", "TLS",
                           "UDP"})


_RULES: dict[type[Resource], Callable[[Any, Findings], None]] = {
    Gateway: check_gateway,
    VirtualService: _virtual_service,
    DestinationRule: _destination_rule,
    ServiceEntry: _service_entry,
    PeerAuthentication: _peer_authentication,
    Sidecar: check_sidecar,
    Service: kube_rules.check_service,
    Deployment: kube_rules.check_deployment,
    Secret: kube_rules.check_secret,
    ConfigMap: kube_rules.check_config_map,
    Route: check_route,
    IstioOperator: _istio_operator,
}

__all__ = ["validate"]
