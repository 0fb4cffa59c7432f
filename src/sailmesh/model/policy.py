"""Which security policy applies: PeerAuthentication (server side) and DestinationRule TLS
(client side), resolved the way Istio resolves them.

Owns: the precedence rules — mesh → namespace → workload → port for PeerAuthentication;
client namespace → service namespace → root namespace for DestinationRules, with
`portLevelSettings` and subsets. Must not know: Envoy, IO, clocks. Results name the
resource they came from so that callers can explain a decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from sailmesh.model.hosts import fqdn
from sailmesh.model.mesh import MeshModel
from sailmesh.model.services import exported_to
from sailmesh.model.snapshot import Snapshot
from sailmesh.model.workloads import Workload, selector_matches
from sailmesh.resources.networking import ClientTLSSettings, DestinationRule, TrafficPolicy
from sailmesh.resources.security import PeerAuthentication

PeerMode = Literal["STRICT", "PERMISSIVE", "DISABLE"]
ClientMode = Literal["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL", "AUTO"]
# Istio: with no PeerAuthentication at all a sidecar accepts both mTLS and plaintext.
DEFAULT_PEER_MODE: PeerMode = "PERMISSIVE"


@dataclass(frozen=True)
class Resolved:
    mode: PeerMode
    source: str  # "PeerAuthentication ns/name" or "default"


@dataclass(frozen=True)
class ClientTLS:
    """The client TLS a sidecar uses towards (host, port, subset).

    `settings` None means no applying DestinationRule sets `tls`: mode is then "AUTO"
    (auto mTLS, meshConfig.enableAutoMtls) or "DISABLE" when auto mTLS is off.
    """

    mode: ClientMode
    settings: ClientTLSSettings | None
    source: str  # "DestinationRule ns/name" or "default"


# --- PeerAuthentication ----------------------------------------------------------------------


def effective_peer_auth(snapshot_or_model: Snapshot | MeshModel, workload: Workload, port: int,
                        root_ns: str = "istio-system") -> Resolved:
    """The mTLS mode of `workload` on container port `port`.

    Istio (pilot authn `ComposePeerAuthentication`): start PERMISSIVE; a mesh policy (root
    namespace, no selector) overrides, then a namespace policy (no selector), then a
    workload policy (selector matching the pod), then that workload policy's
    `portLevelMtls` entry for the *container* port. A mode of UNSET inherits the level
    above. Among several policies at one level the oldest wins.
    """
    mesh, namespace, workload_pa = _peer_policies(snapshot_or_model, workload, root_ns)
    result = Resolved(DEFAULT_PEER_MODE, "default")
    for pa in (mesh, namespace, workload_pa):
        if pa is not None and pa.spec.mtls is not None and pa.spec.mtls.mode != "UNSET":
            result = Resolved(pa.spec.mtls.mode, pa.ref)
    # Istio: portLevelMtls is honoured only on a policy with a workload selector.
    if workload_pa is not None:
        port_mtls = workload_pa.spec.port_level_mtls.get(port)
        if port_mtls is not None and port_mtls.mode != "UNSET":
            result = Resolved(port_mtls.mode, workload_pa.ref)
    return result


def port_level_mtls_ports(snapshot_or_model: Snapshot | MeshModel, workload: Workload,
                          root_ns: str = "istio-system") -> tuple[int, ...]:
    """The ports named by `portLevelMtls` of the workload policy that applies to `workload`
    (Istio builds an inbound passthrough chain of their own for those that no Service
    declares)."""
    workload_pa = _peer_policies(snapshot_or_model, workload, root_ns)[2]
    return tuple(sorted(workload_pa.spec.port_level_mtls)) if workload_pa else ()


def _peer_policies(snapshot_or_model: Snapshot | MeshModel, workload: Workload, root_ns: str,
                   ) -> tuple[PeerAuthentication | None, PeerAuthentication | None,
                              PeerAuthentication | None]:
    """The mesh, namespace and workload PeerAuthentication of `workload` (oldest wins)."""
    if isinstance(snapshot_or_model, MeshModel):
        # Only the root's and the workload's namespace matter; each list is oldest first.
        by_ns = snapshot_or_model.indexes.peer_auth_by_namespace
        policies = [*by_ns.get(root_ns, ())]
        if workload.namespace != root_ns:
            policies += by_ns.get(workload.namespace, ())
    else:
        policies = snapshot_or_model.of_kind(PeerAuthentication)  # oldest first

    def selector(pa: PeerAuthentication) -> dict[str, str]:
        return pa.spec.selector.match_labels if pa.spec.selector else {}

    mesh = next((pa for pa in policies
                 if pa.namespace == root_ns and not selector(pa)), None)
    namespace = next((pa for pa in policies if pa.namespace == workload.namespace
                      and pa.namespace != root_ns and not selector(pa)), None)
    # A selector policy applies only in its own namespace (Istio ignores selector policies
    # of the root namespace for workloads elsewhere: it is namespace-scoped like any other).
    workload_pa = next((pa for pa in policies if pa.namespace == workload.namespace
                        and selector(pa) and selector_matches(selector(pa), workload.labels)),
                       None)
    return mesh, namespace, workload_pa


# --- DestinationRule TLS ---------------------------------------------------------------------


def effective_client_tls(model: MeshModel, client_ns: str, host_fqdn: str, port: int,
                         subset: str | None = None,
                         client_labels: Mapping[str, str] | None = None) -> ClientTLS:
    """The TLS a client in `client_ns` uses for `host_fqdn:port` (optionally a subset).

    Istio: the DestinationRule is looked up in the client's namespace, then the service's
    namespace, then the root namespace — the first hit wins; rules of different namespaces
    are not merged.
    `portLevelSettings` for the port replace the top-level policy as a whole; a subset's
    policy overrides the result (its own port-level entry first).
    """
    dr = applying_destination_rule(model, client_ns, host_fqdn, client_labels)
    return client_tls_of(model, dr, port, subset)


def client_tls_of(model: MeshModel, dr: DestinationRule | None, port: int,
                  subset: str | None = None) -> ClientTLS:
    """The TLS that applying rule `dr` (None: none applies) sets for `port` and `subset`;
    for callers that already looked the rule up (see `effective_client_tls`)."""
    auto: ClientMode = "AUTO" if model.mesh.enable_auto_mtls else "DISABLE"
    if dr is None:
        return ClientTLS(auto, None, "default")
    tls = _policy_tls(dr.spec.traffic_policy, port)
    if subset is not None:
        sub = next((s for s in dr.spec.subsets if s.name == subset), None)
        if sub is not None and sub.traffic_policy is not None:
            tls = _policy_tls(sub.traffic_policy, port) or tls
    if tls is None:
        return ClientTLS(auto, None, dr.ref)
    return ClientTLS(tls.mode, tls, dr.ref)


def applying_destination_rule(model: MeshModel, client_ns: str, host_fqdn: str,
                              client_labels: Mapping[str, str] | None = None,
                              ) -> DestinationRule | None:
    """`client_labels`: the client pod's labels, for rules with a `workloadSelector`.

    Istio: a rule with a workloadSelector applies only to the pods it selects in its own
    namespace, and there it comes before the namespace's rules without selector. Rules of
    different namespaces are never merged; rules of one namespace for the same host are
    (see `merged_rule`). The result carries the oldest rule's name.
    """
    return merged_rule(destination_rule_sources(model, client_ns, host_fqdn, client_labels))


def destination_rule_sources(model: MeshModel, client_ns: str, host_fqdn: str,
                             client_labels: Mapping[str, str] | None = None,
                             ) -> tuple[DestinationRule, ...]:
    """The rules that make up the applying DestinationRule: the winner, then the later
    rules of its namespace that add something to it (new subsets, or the trafficPolicy the
    winner lacks). Empty when no rule applies."""
    # Asked per client and host: shared by the model.
    return model.shared(("dr-sources", client_ns, host_fqdn,
                         client_label_key(model, client_ns, client_labels)),
                        lambda: _rule_sources(model, client_ns, host_fqdn, client_labels))


def client_label_key(model: MeshModel, client_ns: str,
                     client_labels: Mapping[str, str] | None) -> tuple[tuple[str, str], ...] | None:
    """What of a client's labels the choice of DestinationRules reads: nothing, unless a
    rule of its namespace selects workloads; then all of them (sorted)."""
    selecting = model.shared(("dr-selecting-namespaces",), lambda: frozenset(
        dr.namespace for dr in model.snapshot.of_kind(DestinationRule) if _selector(dr)))
    return (tuple(sorted(client_labels.items()))
            if client_labels is not None and client_ns in selecting else None)


def _rule_sources(model: MeshModel, client_ns: str, host_fqdn: str,
                  client_labels: Mapping[str, str] | None) -> tuple[DestinationRule, ...]:
    rules = [dr for dr in model.indexes.destination_rules_for(host_fqdn)
             if exported_to(dr.spec.export_to, dr.namespace, client_ns)]
    if not rules:
        return ()  # most hosts of a large mesh: decided without looking further
    service_ns = _service_namespace(host_fqdn) or _entry_namespace(model, host_fqdn)
    root_ns = model.mesh.root_namespace
    selected = [dr for dr in rules if dr.namespace == client_ns and _selects(dr, client_labels)]
    rules = [dr for dr in rules if not _selector(dr)]
    for ns in dict.fromkeys(n for n in (client_ns, service_ns, root_ns) if n):
        candidates = [dr for dr in rules if dr.namespace == ns]
        if ns == client_ns and selected:
            candidates = selected
        if candidates:
            # Istio: an exact host beats a wildcard; then the oldest wins.
            exact = [dr for dr in candidates if fqdn(dr.spec.host, dr.namespace) == host_fqdn]
            winner, *rest = exact or candidates
            host = fqdn(winner.spec.host, winner.namespace)
            out = [winner]
            names = {s.name for s in winner.spec.subsets}
            policy = winner.spec.traffic_policy is not None
            for dr in rest:
                if fqdn(dr.spec.host, dr.namespace) != host or _selector(dr) != _selector(winner):
                    continue
                new = {s.name for s in dr.spec.subsets} - names
                if new or (not policy and dr.spec.traffic_policy is not None):
                    out.append(dr)
                names |= new
                policy = policy or dr.spec.traffic_policy is not None
            return tuple(out)
    return ()


def merged_rule(rules: Sequence[DestinationRule]) -> DestinationRule | None:
    """The one rule `destination_rule_sources` make up (None when there are none).

    Istio merges the rules of one namespace for the same host (and the same selector):
    the oldest is the base, later rules add subsets whose names are new, and lend their
    top-level trafficPolicy only when the base has none. (Two Istio tasks applied together,
    each with its own rule for the egress gateway and its own subset, rely on this.)"""
    if len(rules) <= 1:
        return rules[0] if rules else None
    first, *later = rules
    subsets = list(first.spec.subsets)
    names = {s.name for s in subsets}
    policy = first.spec.traffic_policy
    for dr in later:
        subsets += [s for s in dr.spec.subsets if s.name not in names]
        names |= {s.name for s in dr.spec.subsets}
        policy = policy or dr.spec.traffic_policy
    spec = first.spec.model_copy(update={"subsets": subsets, "traffic_policy": policy})
    return first.model_copy(update={"spec": spec})


def _policy_tls(policy: TrafficPolicy | None, port: int) -> ClientTLSSettings | None:
    if policy is None:
        return None
    for pls in policy.port_level_settings:
        if pls.port is not None and pls.port.number == port:
            return pls.tls  # replaces the top level whole, even when it has no `tls`
    return policy.tls


def _selector(dr: DestinationRule) -> dict[str, str]:
    ws = dr.spec.workload_selector or {}
    return {str(k): str(v) for k, v in (ws.get("matchLabels") or {}).items()}


def _selects(dr: DestinationRule, labels: Mapping[str, str] | None) -> bool:
    wanted = _selector(dr)
    return bool(wanted) and labels is not None and selector_matches(wanted, labels)


def _entry_namespace(model: MeshModel, host: str) -> str | None:
    """A ServiceEntry host's "service namespace" is the namespace of its ServiceEntry."""
    svc = model.services.get(host)
    return svc.namespace if svc is not None else None


def _service_namespace(host_fqdn: str) -> str | None:
    parts = host_fqdn.split(".")
    if len(parts) >= 3 and ".".join(parts[2:]).startswith("svc."):
        return parts[1]
    return None
