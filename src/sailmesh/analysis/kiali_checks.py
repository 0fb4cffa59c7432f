"""Kiali's DestinationRule and PeerAuthentication validations, which istioctl lacks: a
DestinationRule's TLS against the PeerAuthentication it meets, with auto mTLS counted.

Owns: checks of the same facts as Kiali's KIA0201-KIA0208 (DestinationRules: several for one
host and subset; a host or subset nothing provides; a rule that hides a mesh- or
namespace-wide ISTIO_MUTUAL rule; a mesh- or namespace-wide ISTIO_MUTUAL rule with no
PeerAuthentication enabling mTLS while auto mTLS is off; a mesh- or namespace-wide DISABLE
rule towards a STRICT PeerAuthentication) and KIA0501, KIA0505, KIA0506 (a namespace-wide
STRICT PeerAuthentication that no ISTIO_MUTUAL rule serves while auto mTLS is off; a
namespace- or mesh-wide DISABLE PeerAuthentication that an ISTIO_MUTUAL rule still sends
mTLS to). Must not know: output, clocks, the CLI.

Kiali's shapes (kiali/kiali kubernetes/istio.go): a mesh-wide rule has host `*.local`, a
namespace-wide rule `*.<its namespace>.svc.cluster.local`; a mesh-wide PeerAuthentication is
one without selector in the root namespace, a namespace-wide one has no selector. Rules of
different namespaces are not merged (Istio), so a more specific rule for a host replaces the
wildcard one's tls entirely.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sailmesh.analysis.context import AnalysisContext
from sailmesh.analysis.messages import Finding
from sailmesh.model.hosts import DOMAIN_SUFFIX, fqdn, intersect, matches
from sailmesh.model.workloads import selector_matches
from sailmesh.resources.networking import DestinationRule, ServiceEntry, VirtualService
from sailmesh.resources.security import PeerAuthentication

MESH_WIDE_HOST = "*.local"
MUTUAL = frozenset({"ISTIO_MUTUAL", "MUTUAL"})


def _namespace_host(namespace: str) -> str:
    return f"*.{namespace}.{DOMAIN_SUFFIX}"


def _mode(dr: DestinationRule) -> str | None:
    policy = dr.spec.traffic_policy
    return policy.tls.mode if policy is not None and policy.tls is not None else None


def _mesh_wide(dr: DestinationRule) -> bool:
    return dr.spec.host == MESH_WIDE_HOST


def _namespace_wide(dr: DestinationRule, namespace: str | None = None) -> bool:
    return dr.spec.host == _namespace_host(namespace or dr.namespace)


def _pa_mode(pa: PeerAuthentication) -> str | None:
    """The mode of a policy without selector (Kiali ignores selected ones here)."""
    if pa.spec.selector is not None and pa.spec.selector.match_labels:
        return None
    return pa.spec.mtls.mode if pa.spec.mtls is not None else None


def _wide_policies(ctx: AnalysisContext, namespace: str) -> list[str]:
    """Modes of the selector-less PeerAuthentications of `namespace`."""
    return [m for pa in ctx.snapshot.of_kind(PeerAuthentication)
            if pa.namespace == namespace and (m := _pa_mode(pa)) is not None]


def _auto_mtls(ctx: AnalysisContext) -> bool:
    return ctx.model.mesh.enable_auto_mtls


# --- KIA0201 ---------------------------------------------------------------------------------


def _subsets(dr: DestinationRule) -> set[str]:
    return {s.name for s in dr.spec.subsets} or {"~"}  # "~": the whole host


def multiple_rules_for_subset(ctx: AnalysisContext) -> Iterator[Finding]:
    """KIA0201: two rules for overlapping hosts name the same subset (or one names none);
    mesh- and namespace-wide ISTIO_MUTUAL rules are meant to coexist and are left out."""
    rules = [dr for dr in ctx.snapshot.of_kind(DestinationRule)
             if not ((_mesh_wide(dr) or _namespace_wide(dr)) and _mode(dr) == "ISTIO_MUTUAL")]
    for dr in rules:
        host = fqdn(dr.spec.host, dr.namespace)
        clashes = []
        for other in rules:
            if other is dr or not intersect(host, fqdn(other.spec.host, other.namespace)):
                continue
            mine, theirs = _subsets(dr), _subsets(other)
            if "~" in mine or "~" in theirs or mine & theirs:
                clashes.append(other.ref)
        if clashes:
            yield Finding(dr.ref, "spec.host",
                          f"more than one DestinationRule for host {dr.spec.host} and the same "
                          f"subsets: also {', '.join(clashes)}; only one of them applies to a "
                          "client (rules are not merged across namespaces).")


# --- KIA0202, KIA0203 ---------------------------------------------------------------------------


def _entry_hosts(ctx: AnalysisContext) -> list[str]:
    return [fqdn(h, se.namespace) for se in ctx.snapshot.of_kind(ServiceEntry)
            for h in se.spec.hosts]


def host_not_found(ctx: AnalysisContext) -> Iterator[Finding]:
    """KIA0202: a rule whose host no Service or ServiceEntry provides applies to nothing."""
    entries = _entry_hosts(ctx)
    for dr in ctx.snapshot.of_kind(DestinationRule):
        host = ctx.model.resolve_host(dr.spec.host, dr.namespace)
        if host.startswith("*") or host in ctx.model.services or any(
                matches(host, e) for e in entries):
            continue
        yield Finding(dr.ref, "spec.host",
                      f"host {dr.spec.host} ({host}) has no matching entry in the service "
                      "registry (Service or ServiceEntry); this rule applies to nothing.")


def subset_without_workload(ctx: AnalysisContext) -> Iterator[Finding]:
    """KIA0203: a subset whose labels select none of the host's workloads (or, for a
    ServiceEntry host, none of its endpoints): routes to it get 503 (no healthy upstream)."""
    referenced = {(ctx.model.resolve_host(r.destination.host, vs.namespace), r.destination.subset)
                  for vs in ctx.snapshot.of_kind(VirtualService) for h in vs.spec.http
                  for r in h.route if r.destination.subset}
    for dr in ctx.snapshot.of_kind(DestinationRule):
        host = ctx.model.resolve_host(dr.spec.host, dr.namespace)
        svc = ctx.model.services.get(host)
        if svc is None or host.startswith("*"):
            continue  # KIA0202 reports unknown hosts
        for i, subset in enumerate(dr.spec.subsets):
            if not subset.labels or _subset_selects(ctx, svc.source, svc.namespace,
                                                    svc.selector, subset.labels, host):
                continue
            used = ("; VirtualServices route to it, and those requests fail with 503"
                    if (host, subset.name) in referenced else "")
            labels = ", ".join(f"{k}={v}" for k, v in sorted(subset.labels.items()))
            yield Finding(dr.ref, f"spec.subsets[{i}].labels",
                          f"subset {subset.name} ({labels}) selects none of the workloads of "
                          f"{host}{used}.")


def _subset_selects(ctx: AnalysisContext, source: str | None, namespace: str,
                    selector: Mapping[str, str] | None, labels: dict[str, str],
                    host: str) -> bool:
    if source is not None:  # a ServiceEntry host: its endpoints' labels
        return any(selector_matches(labels, dict(ep.labels))
                   for (h, _), eps in ctx.model.endpoints.items() if h == host for ep in eps)
    if not selector:
        return True  # no selector: Kubernetes gives no endpoints to judge by
    return any(w.namespace == namespace and selector_matches(selector, w.labels)
               and selector_matches(labels, w.labels) for w in ctx.workloads)


# --- KIA0204 ---------------------------------------------------------------------------------


def hides_wide_mtls(ctx: AnalysisContext) -> Iterator[Finding]:
    """KIA0204: a rule without tls for a host that a mesh- or namespace-wide (or another
    host-wide) ISTIO_MUTUAL rule covers replaces that rule, tls included."""
    rules = ctx.snapshot.of_kind(DestinationRule)
    for dr in rules:
        if _mesh_wide(dr) or _namespace_wide(dr):
            continue
        policy = dr.spec.traffic_policy
        if policy is not None and (policy.tls is not None or any(
                p.tls is not None for p in policy.port_level_settings)):
            continue
        host = fqdn(dr.spec.host, dr.namespace)
        host_ns = host.split(".")[1] if host.endswith(DOMAIN_SUFFIX) else dr.namespace
        hidden = [o.ref for o in rules if o is not dr and _mode(o) == "ISTIO_MUTUAL" and (
            _mesh_wide(o) or o.spec.host == _namespace_host(host_ns)
            or fqdn(o.spec.host, o.namespace) == host)]
        if hidden:
            yield Finding(dr.ref, "spec.trafficPolicy",
                          f"this rule has no tls, and it replaces the ISTIO_MUTUAL of "
                          f"{', '.join(hidden)} for {dr.spec.host} (rules are not merged): "
                          "without auto mTLS the sidecars send plaintext there.")


# --- KIA0205 - KIA0208 ------------------------------------------------------------------------


def mesh_rule_without_policy(ctx: AnalysisContext) -> Iterator[Finding]:
    """KIA0205: a mesh-wide ISTIO_MUTUAL rule, auto mTLS off, no mesh-wide PeerAuthentication
    enabling mTLS: servers accept mTLS only by Istio's PERMISSIVE default."""
    root = ctx.root_namespace
    if _auto_mtls(ctx) or any(m in ("STRICT", "PERMISSIVE") for m in _wide_policies(ctx, root)):
        return
    for dr in ctx.snapshot.of_kind(DestinationRule):
        if _mesh_wide(dr) and _mode(dr) == "ISTIO_MUTUAL":
            yield Finding(dr.ref, "spec.trafficPolicy.tls.mode",
                          f"mesh-wide ISTIO_MUTUAL with auto mTLS off, and no PeerAuthentication "
                          f"without selector in {root} enables mTLS (STRICT or PERMISSIVE).")


def namespace_rule_without_policy(ctx: AnalysisContext) -> Iterator[Finding]:
    """KIA0206: the same for a namespace-wide rule (its namespace's or the mesh's policy)."""
    if _auto_mtls(ctx):
        return
    root = ctx.root_namespace
    for dr in ctx.snapshot.of_kind(DestinationRule):
        if not (_namespace_wide(dr) and _mode(dr) == "ISTIO_MUTUAL"):
            continue
        modes = _wide_policies(ctx, dr.namespace) + _wide_policies(ctx, root)
        if not any(m in ("STRICT", "PERMISSIVE") for m in modes):
            yield Finding(dr.ref, "spec.trafficPolicy.tls.mode",
                          f"namespace-wide ISTIO_MUTUAL with auto mTLS off, and no "
                          f"PeerAuthentication without selector in {dr.namespace} or {root} "
                          "enables mTLS (STRICT or PERMISSIVE).")


def namespace_disable_towards_strict(ctx: AnalysisContext) -> Iterator[Finding]:
    """KIA0207: a namespace-wide DISABLE rule in a namespace whose policy is STRICT."""
    for dr in ctx.snapshot.of_kind(DestinationRule):
        if _namespace_wide(dr) and _mode(dr) == "DISABLE" and "STRICT" in _first_enabling(
                _wide_policies(ctx, dr.namespace)):
            yield Finding(dr.ref, "spec.trafficPolicy.tls.mode",
                          f"namespace-wide DISABLE, but the PeerAuthentication of namespace "
                          f"{dr.namespace} is STRICT: sidecars there refuse the plaintext "
                          "this rule sends (it should be PERMISSIVE).")


def _first_enabling(modes: list[str]) -> list[str]:
    """The first mode that enables mTLS (Kiali stops at it), as a list."""
    return next(([m] for m in modes if m in ("STRICT", "PERMISSIVE")), [])


def disable_towards_mesh_strict(ctx: AnalysisContext) -> Iterator[Finding]:
    """KIA0208: a mesh-wide DISABLE rule while the mesh-wide policy is STRICT; or a
    namespace-wide one when its namespace has no policy of its own and the mesh's is."""
    root = ctx.root_namespace
    if "STRICT" not in _wide_policies(ctx, root):
        return
    for dr in ctx.snapshot.of_kind(DestinationRule):
        if _mode(dr) != "DISABLE":
            continue
        own = _wide_policies(ctx, dr.namespace)
        if _mesh_wide(dr) or (_namespace_wide(dr) and not _first_enabling(own)
                              and "DISABLE" not in own):
            yield Finding(dr.ref, "spec.trafficPolicy.tls.mode",
                          f"DISABLE, but the mesh-wide PeerAuthentication in {root} is STRICT: "
                          "sidecars refuse the plaintext this rule sends (PERMISSIVE needed).")


# --- KIA0501, KIA0505, KIA0506 -----------------------------------------------------------------


def strict_without_rule(ctx: AnalysisContext) -> Iterator[Finding]:
    """KIA0501: a namespace-wide STRICT policy while auto mTLS is off and no namespace- or
    mesh-wide rule sends ISTIO_MUTUAL: clients send plaintext and are refused."""
    if _auto_mtls(ctx):
        return
    rules = ctx.snapshot.of_kind(DestinationRule)
    for pa in ctx.snapshot.of_kind(PeerAuthentication):
        if pa.namespace == ctx.root_namespace or _pa_mode(pa) != "STRICT":
            continue
        if not any(_mode(dr) == "ISTIO_MUTUAL" and (_namespace_wide(dr, pa.namespace)
                                                    or _mesh_wide(dr)) for dr in rules):
            yield Finding(pa.ref, "spec.mtls",
                          f"STRICT for namespace {pa.namespace} with auto mTLS off, and no "
                          f"DestinationRule for {_namespace_host(pa.namespace)} or "
                          f"{MESH_WIDE_HOST} sends ISTIO_MUTUAL: clients send plaintext and "
                          "are refused.")


def namespace_disable_with_mtls_rule(ctx: AnalysisContext) -> Iterator[Finding]:
    """KIA0505: a namespace-wide DISABLE policy while a namespace-wide (or, without a DISABLE
    one, a mesh-wide) rule still sends mTLS there."""
    rules = ctx.snapshot.of_kind(DestinationRule)
    for pa in ctx.snapshot.of_kind(PeerAuthentication):
        if pa.namespace == ctx.root_namespace or _pa_mode(pa) != "DISABLE":
            continue
        own = [dr for dr in rules if _namespace_wide(dr, pa.namespace)]
        sending = [dr for dr in own if _mode(dr) in MUTUAL]
        if not sending and not any(_mode(dr) == "DISABLE" for dr in own):
            sending = [dr for dr in rules if _mesh_wide(dr) and _mode(dr) in MUTUAL]
        if sending:
            yield Finding(pa.ref, "spec.mtls",
                          f"DISABLE for namespace {pa.namespace}, but {sending[0].ref} sends "
                          f"{_mode(sending[0])} there: sidecars that take only plaintext refuse "
                          f"it (add a DestinationRule for {_namespace_host(pa.namespace)} with "
                          "tls mode DISABLE).")


def mesh_disable_with_mtls_rule(ctx: AnalysisContext) -> Iterator[Finding]:
    """KIA0506: a mesh-wide DISABLE policy while a mesh-wide rule still sends mTLS."""
    rules = [dr for dr in ctx.snapshot.of_kind(DestinationRule)
             if _mesh_wide(dr) and _mode(dr) in MUTUAL]
    for pa in ctx.snapshot.of_kind(PeerAuthentication):
        if pa.namespace == ctx.root_namespace and _pa_mode(pa) == "DISABLE" and rules:
            yield Finding(pa.ref, "spec.mtls",
                          f"mesh-wide DISABLE, but {rules[0].ref} sends {_mode(rules[0])} to "
                          "every host: sidecars that take only plaintext refuse it.")
