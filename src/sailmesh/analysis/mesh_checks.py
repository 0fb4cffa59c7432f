"""Analyzers of sidecar-to-sidecar TLS: DestinationRules against PeerAuthentications and
sidecars, as `explain` resolves each hop.

Owns: checks of pitfalls #1 (DR DISABLE towards a STRICT port), #2 (DR ISTIO_MUTUAL towards a
workload without sidecar), #3 (a DestinationRule that applies to no client, with the rule
that wins), #4 (DR ISTIO_MUTUAL towards a port whose PeerAuthentication is DISABLE), #5
(portLevelMtls keyed by a Service port; portLevelMtls without a selector). Must not know:
output, clocks, the CLI, Envoy.

Every mesh pair is judged once by `explain.explain` (the same code `x tls-check` prints);
the analyzers only pick the failures that an explicit DestinationRule causes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from sailmesh.analysis.context import AnalysisContext
from sailmesh.analysis.explain import explain, why_not_applied
from sailmesh.analysis.hop import Destination, Hop, Source
from sailmesh.analysis.messages import Finding
from sailmesh.analysis.workloads import MeshWorkload, selected_by, target_port
from sailmesh.model.hosts import fqdn, matches
from sailmesh.model.policy import applying_destination_rule, destination_rule_sources
from sailmesh.model.workloads import selector_matches
from sailmesh.resources.networking import DestinationRule
from sailmesh.resources.security import PeerAuthentication


def client_namespaces(ctx: AnalysisContext, service_ns: str) -> list[str]:
    """Namespaces whose clients may call a service: every namespace with a sidecar or a
    gateway, and the service's own (a stand-in for namespaces without rules of their own)."""
    namespaces = {w.namespace for w in ctx.workloads if w.sidecar or w.router}
    return sorted(namespaces | {service_ns})


@dataclass(frozen=True)
class _Failure:
    dr: str
    dest: str
    port: int
    server: str
    container_port: int
    peer: str
    peer_source: str
    error: str


def _mesh_hops(ctx: AnalysisContext) -> Iterator[Hop]:
    """Every hop from a client namespace to the pods behind a host, by the definition of
    the host that namespace uses."""
    for host in sorted(ctx.model.services):
        first = ctx.model.services[host]
        for ns in client_namespaces(ctx, first.namespace):
            svc = ctx.model.service(host, ns) or first
            if not selected_by(ctx.workloads, svc):
                continue
            for sp in svc.ports:
                yield explain(ctx, Source("sidecar", ns),
                              Destination(host, sp.port, service=svc, definition=svc))


def _failures(ctx: AnalysisContext, mode: str, server_test: str) -> dict[_Failure, list[str]]:
    """Failing endpoints under an explicit DR `mode`, with the client namespaces affected.

    `server_test`: "STRICT", "DISABLE" (the endpoint's PeerAuthentication) or "NONE" (no
    sidecar)."""
    out: dict[_Failure, list[str]] = defaultdict(list)
    for hop in _mesh_hops(ctx):
        if hop.client.mode != mode or not hop.client.policy.startswith("DestinationRule "):
            continue
        for s in hop.servers:
            if s.works or s.mode != server_test:
                continue
            key = _Failure(hop.client.policy, hop.destination.ref, hop.destination.port,
                           s.target, s.port, s.mode, s.policy, s.error or "")
            out[key].append(hop.source.namespace)
    return out


def tls_field(ctx: AnalysisContext, ref: str, port: int) -> str:
    """The field of DestinationRule `ref` that sets tls for `port`."""
    kind_ns_name = ref.partition(" ")[2]
    ns, _, name = kind_ns_name.partition("/")
    dr = ctx.snapshot.get(DestinationRule, ns, name)
    policy = dr.spec.traffic_policy if dr else None
    if policy is not None:
        for i, pls in enumerate(policy.port_level_settings):
            if pls.port is not None and pls.port.number == port:
                return f"spec.trafficPolicy.portLevelSettings[{i}].tls.mode"
    return "spec.trafficPolicy.tls.mode"


def _report(ctx: AnalysisContext, failures: dict[_Failure, list[str]], what: str,
            server_what: str) -> Iterator[Finding]:
    for f, namespaces in failures.items():
        clients = ", ".join(dict.fromkeys(namespaces))
        server = server_what.format(f=f)
        yield Finding(f.dr, tls_field(ctx, f.dr, f.port),
                      f"{what} for {f.dest} port {f.port}, but {server}; clients in "
                      f"namespace {clients} get: {f.error}.")


def disable_to_strict(ctx: AnalysisContext) -> Iterator[Finding]:
    """#1: plaintext from the client sidecar, STRICT on the server's sidecar."""
    yield from _report(ctx, _failures(ctx, "DISABLE", "STRICT"), "tls.mode DISABLE",
                       "{f.server} accepts only mesh mTLS on container port "
                       "{f.container_port} ({f.peer_source} sets STRICT)")


def istio_mutual_without_sidecar(ctx: AnalysisContext) -> Iterator[Finding]:
    """#2: ISTIO_MUTUAL to a pod without sidecar; auto mTLS would have sent plaintext."""
    yield from _report(ctx, _failures(ctx, "ISTIO_MUTUAL", "NONE"), "tls.mode ISTIO_MUTUAL",
                       "{f.server} has no sidecar to terminate mesh mTLS")


def istio_mutual_to_disabled(ctx: AnalysisContext) -> Iterator[Finding]:
    """#4: ISTIO_MUTUAL to a port whose PeerAuthentication is DISABLE."""
    yield from _report(ctx, _failures(ctx, "ISTIO_MUTUAL", "DISABLE"), "tls.mode ISTIO_MUTUAL",
                       "{f.server} takes only plaintext on container port {f.container_port} "
                       "({f.peer_source} sets DISABLE)")


# --- #3: DestinationRules that never apply ------------------------------------------------------


def _targets(ctx: AnalysisContext, dr: DestinationRule) -> list[str]:
    """Known service hosts a DR's host names (a wildcard names every service it covers)."""
    pattern = fqdn(dr.spec.host, dr.namespace)
    return [h for h in sorted(ctx.model.services) if matches(h, pattern)]


def never_applied(ctx: AnalysisContext) -> Iterator[Finding]:
    """#3: rules of different namespaces are not merged; a DR applies only where it is found
    first, or where it adds subsets (or the missing trafficPolicy) to the rule that is.

    Clients: every namespace with a workload, plus "" (a namespace with no rules of its own,
    which sees the service's and the root namespace's rules).
    """
    root = ctx.root_namespace
    populated = {w.namespace for w in ctx.workloads}
    clients = sorted(populated | {""})
    for dr in ctx.snapshot.of_kind(DestinationRule):
        hosts = _targets(ctx, dr)
        if not hosts:
            continue  # an external host: its rule lookup has no service namespace to judge
        if any(any(src is dr for src in destination_rule_sources(ctx.model, c, h))
               for h in hosts for c in clients):
            continue
        host = hosts[0]
        svc_ns = ctx.model.services[host].namespace
        here = applying_destination_rule(ctx.model, dr.namespace, host)
        elsewhere = applying_destination_rule(ctx.model, "", host)
        if dr.namespace in (svc_ns, root) or dr.namespace in populated:
            why = why_not_applied(dr, here, dr.namespace, svc_ns, root)
        else:
            why = (f"it is in namespace {dr.namespace}, so it applies only to clients there "
                   f"(rules are looked up in the client's, the service's ({svc_ns}) and the "
                   f"root namespace), and no workload runs in {dr.namespace}")
        wins = (f"{elsewhere.ref} applies to clients in other namespaces" if elsewhere
                else "clients in other namespaces use auto mTLS (no rule)")
        if here is not None and here.ref != (elsewhere.ref if elsewhere else None) \
                and here.ref != dr.ref:
            wins = f"{here.ref} wins in namespace {dr.namespace}; {wins}"
        yield Finding(dr.ref, "spec.host",
                      f"this DestinationRule for {dr.spec.host} never applies: {why}. {wins}.")


# --- #5: portLevelMtls -------------------------------------------------------------------------


def _selected(ctx: AnalysisContext, pa: PeerAuthentication) -> list[MeshWorkload]:
    labels = pa.spec.selector.match_labels if pa.spec.selector else {}
    return [w for w in ctx.workloads if w.namespace == pa.namespace and not w.router
            and labels and selector_matches(labels, w.labels)]


def port_level_service_port(ctx: AnalysisContext) -> Iterator[Finding]:
    """#5: Istio keys portLevelMtls by the container port; a Service port silently misses."""
    for pa in ctx.snapshot.of_kind(PeerAuthentication):
        workloads = _selected(ctx, pa)
        for port in sorted(pa.spec.port_level_mtls):
            field = f"spec.portLevelMtls[{port}]"
            if any(port in w.ports for w in workloads):
                continue
            hint = _service_port_hint(ctx, workloads, port)
            if hint is not None:
                yield Finding(pa.ref, field, hint)
            elif any(w.ports for w in workloads):
                known = ", ".join(str(p) for p in sorted({p for w in workloads for p in w.ports}))
                yield Finding(pa.ref, field,
                              f"port {port} is no container port of the selected workloads "
                              f"(container ports: {known}); this entry is never used.")


def _service_port_hint(ctx: AnalysisContext, workloads: list[MeshWorkload],
                       port: int) -> str | None:
    for svc in ctx.model.services.values():
        for w in workloads:
            if w not in selected_by(ctx.workloads, svc):
                continue
            sp = svc.port(port)
            target = target_port(sp, w) if sp is not None else None
            if target is not None and target != port:
                return (f"port {port} is a port of Service {svc.namespace}/{svc.name}, which "
                        f"sends it to container port {target} of {w.ref}; portLevelMtls is "
                        f"keyed by container port, so this entry is never used.")
    return None


def port_level_without_selector(ctx: AnalysisContext) -> Iterator[Finding]:
    """#5: Istio honours portLevelMtls only on a policy with a workload selector."""
    for pa in ctx.snapshot.of_kind(PeerAuthentication):
        labels = pa.spec.selector.match_labels if pa.spec.selector else {}
        if pa.spec.port_level_mtls and not labels:
            yield Finding(pa.ref, "spec.portLevelMtls",
                          "portLevelMtls on a policy without a workload selector is ignored "
                          "(Istio refuses it): the ports keep the mesh or namespace mode.")
