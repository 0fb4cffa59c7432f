"""Analyzers of client-side TLS towards external hosts: ServiceEntries and the
DestinationRules that originate TLS.

Owns: checks of pitfalls #20 (HTTPS sent to a ServiceEntry port declared HTTP), #21 (double
TLS: a TLS port and DR SIMPLE/MUTUAL), #22 (origination without `sni` when the Host header is
another name), #23 (DR credentialName Secret missing where it is read, or without a CA), #24
(ServiceEntries without addresses sharing a port with different protocols), mesh routes to
an egress gateway whose server cannot take what the sidecar sends, and Istio's
IST0128/IST0129 (no CA to verify the server) and IST0177 (one host and port, conflicting
protocols). Must not know: output, clocks, the CLI, Envoy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from sailmesh.analysis.context import AnalysisContext
from sailmesh.analysis.explain import explain
from sailmesh.analysis.hop import ExplainError, Source, find_destination, service_port_tls
from sailmesh.analysis.mesh_checks import tls_field
from sailmesh.analysis.messages import Finding
from sailmesh.model.credentials import CA_SUFFIX, denial_message, lookup_credential
from sailmesh.model.hosts import fqdn, matches
from sailmesh.model.indexes import bound_gateways, mesh_bound
from sailmesh.model.policy import effective_client_tls
from sailmesh.model.services import exports_meet
from sailmesh.model.workloads import selector_matches
from sailmesh.resources.core import Secret
from sailmesh.resources.networking import (
    ClientTLSSettings,
    DestinationRule,
    Gateway,
    ServiceEntry,
    TrafficPolicy,
    VirtualService,
)

ORIGINATING = frozenset({"SIMPLE", "MUTUAL"})
HTTP_FAMILY = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB"})
TLS_FAMILY = frozenset({"HTTPS", "TLS"})


def _protocol(p: str | None) -> str:
    return (p or "").upper()


def _class(protocol: str) -> str:
    return "HTTP" if protocol in HTTP_FAMILY else "TLS" if protocol in TLS_FAMILY else "TCP"


def _tls_sites(dr: DestinationRule) -> Iterator[tuple[str, int | None, ClientTLSSettings]]:
    """(field prefix, port or None for every port, settings) of each `tls` in a DR."""
    policies: list[tuple[str, TrafficPolicy | None]] = [("spec.trafficPolicy",
                                                          dr.spec.traffic_policy)]
    policies += [(f"spec.subsets[{i}].trafficPolicy", s.traffic_policy)
                 for i, s in enumerate(dr.spec.subsets)]
    for prefix, policy in policies:
        if policy is None:
            continue
        if policy.tls is not None:
            yield f"{prefix}.tls", None, policy.tls
        for i, pls in enumerate(policy.port_level_settings):
            if pls.tls is not None and pls.port is not None:
                yield f"{prefix}.portLevelSettings[{i}].tls", pls.port.number, pls.tls


# --- #20, #21 ------------------------------------------------------------------------------------


def https_to_http_port(ctx: AnalysisContext) -> Iterator[Finding]:
    """#20: a port 443 (or named https) declared HTTP: clients send TLS, the sidecar parses
    HTTP and answers 400 — unless a DestinationRule originates TLS on it (app speaks HTTP)."""
    for se in ctx.snapshot.of_kind(ServiceEntry):
        for i, port in enumerate(se.spec.ports):
            name = (port.name or "").lower()
            if _protocol(port.protocol) not in HTTP_FAMILY or not (
                    port.number == 443 or name.startswith(("https", "tls"))):
                continue
            hosts = [h for h in se.spec.hosts
                     if effective_client_tls(ctx.model, se.namespace, h, port.number).mode
                     not in ORIGINATING]
            if hosts:
                yield Finding(se.ref, f"spec.ports[{i}].protocol",
                              f"port {port.number} ({port.name or 'unnamed'}) is declared "
                              f"{port.protocol}, but clients of {', '.join(hosts)} send HTTPS "
                              "there; the sidecar parses it as HTTP and the request fails "
                              "(400, or `wrong version number` in the client).")


def _tls_targets(ctx: AnalysisContext, dr: DestinationRule) -> Iterator[tuple[str, int, str]]:
    """(host, port, what) of every port of the DR's host where the application sends TLS."""
    pattern = fqdn(dr.spec.host, dr.namespace)
    for se in ctx.snapshot.of_kind(ServiceEntry):
        for host in se.spec.hosts:
            if not matches(host, pattern):
                continue
            for port in se.spec.ports:
                if _protocol(port.protocol) in TLS_FAMILY:
                    yield host, port.number, f"{se.ref} port {port.number} ({port.protocol})"
    for host, svc in ctx.model.services.items():
        if matches(host, pattern):
            for sp in svc.ports:
                if service_port_tls(ctx, svc, sp.port):
                    yield host, sp.port, (f"Service {svc.namespace}/{svc.name} port {sp.port} "
                                          f"({sp.name})")


def double_tls(ctx: AnalysisContext) -> Iterator[Finding]:
    """#21: the app already speaks TLS on a TLS port; SIMPLE/MUTUAL wraps it once more."""
    for dr in ctx.snapshot.of_kind(DestinationRule):
        for host, port, what in _tls_targets(ctx, dr):
            tls = effective_client_tls(ctx.model, dr.namespace, host, port)
            if tls.source == dr.ref and tls.mode in ORIGINATING:
                yield Finding(dr.ref, tls_field(ctx, dr.ref, port),
                              f"tls.mode {tls.mode} originates TLS to {host}:{port}, but "
                              f"{what} carries the application's own TLS: the server gets TLS "
                              "inside TLS and the client sees `wrong version number`. Either "
                              "let the application send plain HTTP (declare the port HTTP, e.g. "
                              "80 with targetPort 443) or drop tls from this rule.")


# --- #22 ----------------------------------------------------------------------------------------


def origination_without_sni(ctx: AnalysisContext) -> Iterator[Finding]:
    """#22: without `sni` Envoy sends the Host header as SNI; a VirtualService that routes
    host A to destination B keeps Host A, so B's certificate does not match."""
    seen: set[tuple[str, str, str]] = set()
    for vs in ctx.snapshot.of_kind(VirtualService):
        clients = _vs_client_namespaces(ctx, vs)
        hosts = [fqdn(h, vs.namespace) for h in vs.spec.hosts]
        for i, route in enumerate(vs.spec.http):
            rewritten = route.rewrite.authority if route.rewrite else None
            for j, rd in enumerate(route.route):
                dest = ctx.model.resolve_host(rd.destination.host, vs.namespace)
                if rewritten or any(matches(dest, h) for h in hosts):
                    continue
                port = rd.destination.port.number if rd.destination.port else _only_port(
                    ctx, dest, vs.namespace)
                if port is None:
                    continue
                for ns in clients:
                    tls = effective_client_tls(ctx.model, ns, dest, port)
                    if tls.mode not in ORIGINATING or tls.settings is None or tls.settings.sni:
                        continue
                    key = (tls.source, vs.ref, dest)
                    if key in seen:
                        continue
                    seen.add(key)
                    yield Finding(tls.source, "spec.trafficPolicy.tls.sni",
                                  f"{vs.ref} (spec.http[{i}].route[{j}]) sends requests for "
                                  f"{', '.join(vs.spec.hosts)} to {dest}, and this rule "
                                  f"originates {tls.mode} TLS without sni: the SNI is taken "
                                  f"from the Host header ({vs.spec.hosts[0]}), so {dest}'s "
                                  "certificate does not match (CERTIFICATE_VERIFY_FAILED). Set "
                                  f"tls.sni: {dest}.")


def _vs_client_namespaces(ctx: AnalysisContext, vs: VirtualService) -> list[str]:
    """Where the proxies that use a VirtualService run: its own namespace for the mesh, the
    gateway workloads' namespaces for the gateways it binds."""
    out = {vs.namespace} if not vs.spec.gateways or "mesh" in vs.spec.gateways else set()
    gateways = {f"{g.namespace}/{g.name}": g for g in ctx.snapshot.of_kind(Gateway)}
    for key in bound_gateways(vs):
        gw = gateways.get(key)
        if gw is not None:
            out |= {w.namespace for w in ctx.workloads_of(gw)}
    return sorted(out)


def _only_port(ctx: AnalysisContext, host: str, namespace: str) -> int | None:
    svc = ctx.model.service(host, namespace) or ctx.model.services.get(host)
    if svc is not None:
        return svc.ports[0].port if len(svc.ports) == 1 else None
    for se in ctx.snapshot.of_kind(ServiceEntry):
        if any(matches(host, h) for h in se.spec.hosts) and len(se.spec.ports) == 1:
            return se.spec.ports[0].number
    return None


# --- #23 ----------------------------------------------------------------------------------------


def destination_rule_credential(ctx: AnalysisContext) -> Iterator[Finding]:
    """#23: a DR credentialName is read where the proxy runs: the gateway workloads'
    namespace (or the DR's own with a workloadSelector), never the DR's otherwise."""
    def lookup(ns: str, name: str) -> Secret | None:
        return ctx.snapshot.get(Secret, ns, name)

    for dr in ctx.snapshot.of_kind(DestinationRule):
        for prefix, _, tls in _tls_sites(dr):
            if not tls.credential_name or tls.mode not in ORIGINATING:
                continue
            for ns in _credential_namespaces(ctx, dr):
                cred = lookup_credential(tls.credential_name, ns, lookup)
                name, field = cred.name, f"{prefix}.credentialName"
                if cred.other_namespace is not None:
                    yield Finding(dr.ref, field,
                                  f"credentialName {tls.credential_name} names namespace "
                                  f"{cred.other_namespace}; Istio reads client credentials only "
                                  f"from the namespace of the proxy that uses them ({ns}).")
                    continue
                if cred.secret is None:
                    msg = (f"credentialName {name}: Secret {ns}/{name} not found where the "
                           f"proxy reads it (namespace {ns}); Envoy reports \"Secret is not "
                           "supplied\" and requests fail with 503.")
                    if ns != dr.namespace and lookup(dr.namespace, name):
                        msg += (f" Secret {dr.namespace}/{name} exists in the rule's namespace, "
                                "which is not where it is read.")
                    yield Finding(dr.ref, field, msg)
                    continue
                if cred.ca() is None:
                    yield Finding(dr.ref, field,
                                  f"credentialName {name}: neither Secret {ns}/{name} (keys "
                                  f"ca.crt or cacert) nor {ns}/{name}{CA_SUFFIX} holds a CA, so "
                                  f"the server certificate of {dr.spec.host} cannot be verified.")
                if tls.mode == "MUTUAL" and cred.cert_and_key() is None:
                    yield Finding(dr.ref, field,
                                  f"credentialName {name}: mode MUTUAL needs a client "
                                  f"certificate, but Secret {ns}/{name} has no tls.crt + tls.key "
                                  "(or cert + key).")


def sidecar_credential_not_authorized(ctx: AnalysisContext) -> Iterator[Finding]:
    """A MUTUAL credentialName whose certificate and key istiod does not serve the sidecars
    the rule selects: their service account may not list Secrets in their namespace
    (`model.credentials`); their cluster for the host is left out."""
    for dr in ctx.snapshot.of_kind(DestinationRule):
        selector = (dr.spec.workload_selector or {}).get("matchLabels") or {}
        pods = [w for w in ctx.workloads if w.namespace == dr.namespace and w.sidecar
                and not w.router and selector and selector_matches(selector, w.labels)]
        for prefix, _, tls in _tls_sites(dr):
            if tls.mode != "MUTUAL" or not tls.credential_name:
                continue
            for account in sorted({w.service_account for w in pods}):
                cred = lookup_credential(tls.credential_name, dr.namespace, ctx.model.secret,
                                         ctx.model.secret_access(dr.namespace, account))
                if cred.other_namespace is None and cred.denied:
                    who = ", ".join(w.ref for w in pods if w.service_account == account)
                    yield Finding(dr.ref, f"{prefix}.credentialName",
                                  denial_message(cred, who) + f"; requests to {dr.spec.host} "
                                  "fail with 503 (its cluster is left out).")


def _credential_namespaces(ctx: AnalysisContext, dr: DestinationRule) -> list[str]:
    selector = (dr.spec.workload_selector or {}).get("matchLabels") or {}
    if selector:
        return [dr.namespace]
    # Gateways that could send to this host: every gateway workload (egress ones first).
    namespaces = sorted({w.namespace for w in ctx.gateway_workloads
                         if selector_matches({"istio": "egressgateway"}, w.labels)}
                        or {w.namespace for w in ctx.gateway_workloads})
    return namespaces or [ctx.root_namespace]


# --- IST0128 / IST0129 ----------------------------------------------------------------------------


def _no_ca(ctx: AnalysisContext, port_level: bool) -> Iterator[Finding]:
    for dr in ctx.snapshot.of_kind(DestinationRule):
        for prefix, port, tls in _tls_sites(dr):
            if (port is not None) != port_level or tls.mode not in ORIGINATING:
                continue
            # istioctl: a credentialName counts only with a workloadSelector (the sidecars it
            # selects read it); without one, Istio warns even though gateways read its CA.
            if tls.ca_certificates or (tls.credential_name and dr.spec.workload_selector):
                continue
            at = f" at port number:{port}" if port is not None else ""
            how = ("insecureSkipVerify turns verification off" if tls.insecure_skip_verify
                   else "the proxy falls back to the system roots and checks no CA of yours")
            yield Finding(dr.ref, f"{prefix}.caCertificates",
                          f"DestinationRule {dr.namespace}/{dr.name} in namespace "
                          f"{dr.namespace} has TLS mode set to {tls.mode} but no caCertificates "
                          f"are set to validate server identity for host: "
                          f"{dr.spec.host}{at} ({how}).")


def no_ca_destination_level(ctx: AnalysisContext) -> Iterator[Finding]:
    """Istio IST0128: SIMPLE/MUTUAL without caCertificates (top level or subset)."""
    yield from _no_ca(ctx, port_level=False)


def no_ca_port_level(ctx: AnalysisContext) -> Iterator[Finding]:
    """Istio IST0129: the same in portLevelSettings."""
    yield from _no_ca(ctx, port_level=True)


# --- IST0177, #24 -------------------------------------------------------------------------------


def _entry_ports(ctx: AnalysisContext) -> Iterator[tuple[ServiceEntry, int, str, str]]:
    """(entry, port, host, protocol) for every host and port of every ServiceEntry."""
    for se in ctx.snapshot.of_kind(ServiceEntry):
        for i, port in enumerate(se.spec.ports):
            for host in se.spec.hosts:
                yield se, i, host, _protocol(port.protocol) or "TCP"


def conflicting_entry_protocols(ctx: AnalysisContext) -> Iterator[Finding]:
    """Istio IST0177: one host and port in ServiceEntries with different protocols that
    some namespace sees together (exportTo). One finding per ServiceEntry."""
    entries = list(_entry_ports(ctx))
    reported: set[str] = set()
    for se, i, host, protocol in entries:
        if se.ref in reported:
            continue
        port = se.spec.ports[i].number
        rivals = [(o, p) for o, j, h, p in entries
                  if o is not se and h == host and o.spec.ports[j].number == port and p != protocol
                  and exports_meet(se.spec.export_to, se.namespace, o.spec.export_to, o.namespace)]
        if rivals:
            reported.add(se.ref)
            names = ", ".join(sorted({f"{o.namespace}/{o.name}" for o, _ in rivals}
                                     | {f"{se.namespace}/{se.name}"}))
            protocols = ", ".join(sorted({protocol} | {p for _, p in rivals}))
            yield Finding(se.ref, f"spec.ports[{i}].protocol",
                          f"Multiple ServiceEntries ({names}) define the same host \"{host}\" "
                          f"and port {port} with conflicting protocols ({protocols}).")


def shared_port_protocols(ctx: AnalysisContext) -> Iterator[Finding]:
    """#24: without `addresses` every such ServiceEntry port is one 0.0.0.0:<port> listener
    on every sidecar; HTTP and TLS/TCP on it conflict and proxies keep stale listeners."""
    by_port: dict[int, dict[str, tuple[ServiceEntry, int, str, str]]] = defaultdict(dict)
    for se, i, host, protocol in _entry_ports(ctx):
        if not se.spec.addresses:
            by_port[se.spec.ports[i].number].setdefault(se.ref, (se, i, host, _class(protocol)))
    for port, entries in sorted(by_port.items()):
        classes = {c for _, _, _, c in entries.values()}
        hosts = {h for _, _, h, _ in entries.values()}
        if len(classes) < 2 or len(hosts) < 2:
            continue
        shown = "; ".join(f"{se.ref} ({c})" for se, _, _, c in entries.values())
        for se, i, _, _ in entries.values():
            yield Finding(se.ref, f"spec.ports[{i}]",
                          f"port {port} is used without addresses by ServiceEntries with "
                          f"different protocols ({shown}); sidecars get one listener for "
                          "0.0.0.0:" f"{port} and cannot serve both, so their listeners go "
                          "stale.")


def mesh_route_to_gateway_fails(ctx: AnalysisContext) -> Iterator[Finding]:
    """A VirtualService bound to `mesh` sends a host to a gateway (Istio's egress pattern)
    whose server cannot take what the sidecar sends: no ISTIO_MUTUAL towards an
    ISTIO_MUTUAL server (auto mTLS sends a gateway plaintext), an SNI no server carries, a
    port without a server. Judged by `x tls-check`'s own hop model."""
    for vs in ctx.snapshot.of_kind(VirtualService):
        if not mesh_bound(vs):
            continue
        for h in vs.spec.hosts:
            host = fqdn(h, vs.namespace)
            if host not in ctx.model.services:
                continue
            failures: dict[tuple[str, str], list[str]] = defaultdict(list)
            for ns in sorted({vs.namespace} | {w.namespace for w in ctx.workloads
                                               if w.sidecar}):
                svc = ctx.model.service(host, ns) or ctx.model.services[host]
                for sp in svc.ports:
                    try:
                        dest = find_destination(ctx, f"{host}:{sp.port}", vs.namespace, ns)
                    except ExplainError:
                        continue
                    hop = explain(ctx, Source("sidecar", ns), dest)
                    if hop.asked is None:
                        continue
                    for s in hop.servers:
                        if s.gateway and not s.works:
                            why = s.refuses or (s.reasons[-1] if s.reasons else "")
                            key = (f"{hop.route[0]}; the sidecar sends {s.sends} "
                                   f"({hop.client.mode}, {hop.client.policy}), but {s.target} "
                                   f"port {s.port} cannot take it: {why}", s.error or "")
                            failures[key].append(ns)
            for (what, error), namespaces in failures.items():
                clients = ", ".join(dict.fromkeys(namespaces))
                yield Finding(vs.ref, "spec.hosts",
                              f"{what}; sidecars in namespace {clients} get: {error}.")

