"""`x describe`: everything that touches one workload or Service, with the policy that wins.

Owns: the Istio-style summary as data — the Services and ports of a workload, the effective
PeerAuthentication per container port (and which resource decided it), the
DestinationRules for the host with the client namespaces where each one applies (and why
the others do not), VirtualServices that name or route to it, and the Gateways that expose
it with their TLS. Must not know: output, IO, Envoy.
"""

from __future__ import annotations

from typing import Any

from sailmesh.analysis.context import AnalysisContext
from sailmesh.analysis.explain import why_not_applied
from sailmesh.analysis.hop import service_port_tls
from sailmesh.analysis.workloads import MeshWorkload, selected_by, target_port
from sailmesh.model.hosts import fqdn, matches
from sailmesh.model.indexes import bound_gateways
from sailmesh.model.policy import (
    applying_destination_rule,
    destination_rule_sources,
    effective_peer_auth,
)
from sailmesh.model.services import MeshService
from sailmesh.resources.networking import DestinationRule, Gateway, VirtualService

OTHER = "(other namespaces)"


def workload_summary(ctx: AnalysisContext, w: MeshWorkload) -> dict[str, Any]:
    services = [s for s in ctx.model.services.values() if w in selected_by(ctx.workloads, s)]
    return {
        "workload": w.ref,
        "namespace": w.namespace,
        "labels": dict(w.labels),
        "sidecar": w.sidecar,
        "sidecarReason": w.sidecar_reason,
        "identity": w.identity(ctx.model.mesh.trust_domain),
        "services": [service_summary(ctx, s, only=w) for s in services],
    }


def service_summary(ctx: AnalysisContext, svc: MeshService,
                    only: MeshWorkload | None = None) -> dict[str, Any]:
    workloads = [w for w in selected_by(ctx.workloads, svc) if only is None or w == only]
    ports = []
    for sp in svc.ports:
        endpoints = []
        for w in workloads:
            cport = target_port(sp, w)
            if cport is None:
                endpoints.append({"workload": w.ref, "containerPort": None,
                                  "mtls": f"targetPort {sp.target_port} is not a named port "
                                          "of the pod", "policy": None})
                continue
            if not w.sidecar:
                endpoints.append({"workload": w.ref, "containerPort": cport,
                                  "mtls": "none (no sidecar)", "policy": w.sidecar_reason})
                continue
            peer = effective_peer_auth(ctx.model, w.as_policy_workload(), cport,
                                       ctx.root_namespace)
            endpoints.append({"workload": w.ref, "containerPort": cport, "mtls": peer.mode,
                              "policy": peer.source})
        ports.append({"name": sp.name, "port": sp.port, "targetPort": sp.target_port,
                      "appTLS": service_port_tls(ctx, svc, sp.port), "endpoints": endpoints})
    return {
        "service": f"Service {svc.namespace}/{svc.name}",
        "host": svc.fqdn,
        "ports": ports,
        "workloads": [{"workload": w.ref, "sidecar": w.sidecar, "why": w.sidecar_reason}
                      for w in workloads],
        "destinationRules": destination_rules(ctx, svc),
        "virtualServices": virtual_services(ctx, svc),
        "gateways": gateways(ctx, svc),
    }


def destination_rules(ctx: AnalysisContext, svc: MeshService) -> list[dict[str, Any]]:
    """Rules for the host, each with the client namespaces where it is the one that applies."""
    clients = [*sorted({w.namespace for w in ctx.workloads} | {svc.namespace}), ""]
    winners = {c: applying_destination_rule(ctx.model, c, svc.fqdn) for c in clients}
    sources = {c: destination_rule_sources(ctx.model, c, svc.fqdn) for c in clients}
    out = []
    for dr in ctx.snapshot.of_kind(DestinationRule):
        if not matches(svc.fqdn, fqdn(dr.spec.host, dr.namespace)):
            continue
        applies = [c or OTHER for c, srcs in sources.items() if any(dr is s for s in srcs)]
        entry: dict[str, Any] = {"rule": dr.ref, "host": dr.spec.host,
                                 "appliesTo": applies, "tls": _tls_modes(dr)}
        if not applies:
            entry["why"] = why_not_applied(dr, winners.get(dr.namespace) or winners[""],
                                           dr.namespace, svc.namespace, ctx.root_namespace)
        out.append(entry)
    return out


def _tls_modes(dr: DestinationRule) -> dict[str, str]:
    """Mode per scope: `*` for the top level, port numbers, `subset:NAME`."""
    policy = dr.spec.traffic_policy
    out: dict[str, str] = {}
    if policy is not None:
        if policy.tls is not None:
            out["*"] = policy.tls.mode
        for pls in policy.port_level_settings:
            if pls.port is not None:
                out[str(pls.port.number)] = pls.tls.mode if pls.tls else "(auto)"
    for s in dr.spec.subsets:
        if s.traffic_policy is not None and s.traffic_policy.tls is not None:
            out[f"subset:{s.name}"] = s.traffic_policy.tls.mode
    return out or {"*": "(auto mTLS)"}


def _routes_to(ctx: AnalysisContext, vs: VirtualService, host: str) -> bool:
    dests = [r.destination for h in vs.spec.http for r in h.route]
    dests += [r.destination for t in (*vs.spec.tls, *vs.spec.tcp) for r in t.route]
    return any(ctx.model.resolve_host(d.host, vs.namespace) == host for d in dests)


def virtual_services(ctx: AnalysisContext, svc: MeshService) -> list[dict[str, Any]]:
    out = []
    for vs in ctx.snapshot.of_kind(VirtualService):
        names = any(matches(svc.fqdn, ctx.model.resolve_host(h, vs.namespace))
                    for h in vs.spec.hosts)
        if names or _routes_to(ctx, vs, svc.fqdn):
            out.append({"virtualService": vs.ref, "hosts": list(vs.spec.hosts),
                        "gateways": list(vs.spec.gateways) or ["mesh"],
                        "routesHere": _routes_to(ctx, vs, svc.fqdn)})
    return out


def gateways(ctx: AnalysisContext, svc: MeshService) -> list[dict[str, Any]]:
    """Gateway servers whose VirtualServices route to the service, with their TLS."""
    by_key = {f"{g.namespace}/{g.name}": g for g in ctx.snapshot.of_kind(Gateway)}
    out = []
    for vs in ctx.snapshot.of_kind(VirtualService):
        if not _routes_to(ctx, vs, svc.fqdn):
            continue
        for key in bound_gateways(vs):
            gw = by_key.get(key)
            if gw is None:
                continue
            for s in gw.spec.servers:
                tls = s.tls
                out.append({"gateway": gw.ref, "virtualService": vs.ref,
                            "port": s.port.number, "protocol": s.port.protocol,
                            "hosts": list(s.hosts),
                            "tlsMode": tls.mode if tls else None,
                            "credentialName": tls.credential_name if tls else None,
                            "minProtocolVersion": tls.min_protocol_version if tls else None})
    return out
