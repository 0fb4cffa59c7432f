"""Sidecar resource checks: Istio's sidecar analyzers and Kiali's egress-host check.

Owns: IST0111 (several Sidecars without workload selector in one namespace: which one
applies is decided by age alone), IST0110 (Sidecars whose selectors pick the same pod),
IST0101 for a selector that picks no pod of its namespace, and Kiali's KIA1004 (an egress
host that imports nothing). Which Sidecar a proxy really takes is `model.sidecar_scope`'s
rule; these checks only point at configurations that make it surprising.
Must not know: output, the clock, Envoy.

Istio facts (pkg/config/analysis/analyzers/sidecar, 1.31): pods are matched in the
Sidecar's own namespace only; a Sidecar with a selector without labels is left out of
both selector checks; names are listed in the message as Go prints a string slice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from sailmesh.analysis.context import AnalysisContext
from sailmesh.analysis.messages import Finding
from sailmesh.model.indexes import mesh_bound
from sailmesh.model.sidecar_scope import SidecarScope, imports_virtual_service
from sailmesh.model.workloads import selector_matches
from sailmesh.resources.networking import VirtualService
from sailmesh.resources.sidecar import (
    CURRENT_NAMESPACE,
    NO_NAMESPACE,
    Sidecar,
    split_egress_host,
)


def _names(sidecars: list[Sidecar]) -> str:
    return "[" + " ".join(sc.name for sc in sidecars) + "]"


def multiple_defaults(ctx: AnalysisContext) -> Iterator[Finding]:
    """Istio IST0111 (MultipleSidecarsWithoutWorkloadSelectors)."""
    by_namespace: dict[str, list[Sidecar]] = defaultdict(list)
    for sc in ctx.snapshot.of_kind(Sidecar):
        if sc.is_default:
            by_namespace[sc.namespace].append(sc)
    for ns, listed in sorted(by_namespace.items()):
        if len(listed) < 2:
            continue
        for sc in listed:
            yield Finding(sc.ref, "spec.workloadSelector",
                          f"The Sidecars {_names(listed)} in namespace \"{ns}\" have no "
                          "workload selector, which can lead to undefined behavior. "
                          f"(sailmesh applies the oldest, {listed[0].name}.)")


def _selecting(ctx: AnalysisContext) -> Iterator[Sidecar]:
    for sc in ctx.snapshot.of_kind(Sidecar):
        if not sc.is_default:
            yield sc


def selector_not_found(ctx: AnalysisContext) -> Iterator[Finding]:
    """Istio IST0101 (ReferencedResourceNotFound) for a selector that picks no pod."""
    for sc in _selecting(ctx):
        labels = sc.spec.workload_selector.labels  # type: ignore[union-attr]
        if any(w.namespace == sc.namespace and selector_matches(labels, w.labels)
               for w in ctx.workloads):
            continue
        text = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        yield Finding(sc.ref, "spec.workloadSelector.labels",
                      f'Referenced selector not found: "{text}" (no pod of namespace '
                      f'{sc.namespace} has these labels; this Sidecar applies to nothing)')


def conflicting_selectors(ctx: AnalysisContext) -> Iterator[Finding]:
    """Istio IST0110 (ConflictingSidecarWorkloadSelectors): one message per Sidecar and
    pod that several Sidecars select."""
    selecting = list(_selecting(ctx))
    for w in ctx.workloads:
        picked = [sc for sc in selecting if sc.namespace == w.namespace
                  and selector_matches(sc.spec.workload_selector.labels,  # type: ignore[union-attr]
                                       w.labels)]
        if len(picked) < 2:
            continue
        for sc in picked:
            yield Finding(sc.ref, "metadata.name",
                          f"The Sidecars {_names(picked)} in namespace \"{w.namespace}\" "
                          f"select the same workload pod \"{w.name}\", which can lead to "
                          f"undefined behavior. (sailmesh applies the oldest, "
                          f"{picked[0].name}.)")


def egress_host_imports_nothing(ctx: AnalysisContext) -> Iterator[Finding]:
    """Kiali KIA1004: an egress host no Service, ServiceEntry or mesh VirtualService
    matches (by the import rule of the running mesh, `SidecarScope.imports_host`)."""
    model = ctx.model
    known = [*model.services.values(), *model.other_services.values()]
    mesh_vs = [vs for vs in ctx.snapshot.of_kind(VirtualService) if mesh_bound(vs)]
    for sc in ctx.snapshot.of_kind(Sidecar):
        for i, egress in enumerate(sc.spec.egress):
            for j, host in enumerate(egress.hosts):
                ns, name = split_egress_host(host)
                if name == "*" or ns == NO_NAMESPACE:
                    continue
                one = SidecarScope(sc.namespace, sc.ref, (
                    (sc.namespace if ns == CURRENT_NAMESPACE else ns, name.lower()),))
                if any(one.imports_host(s.namespace, s.hostname or s.fqdn) for s in known):
                    continue
                if any(imports_virtual_service(one, vs) for vs in mesh_vs):
                    continue
                yield Finding(sc.ref, f"spec.egress[{i}].hosts[{j}]",
                              f"egress host {host} matches no Service, ServiceEntry or "
                              "VirtualService: it imports nothing")
