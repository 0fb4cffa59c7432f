"""Translations kept from one push to the next: a change re-translates only the proxies
it can reach.

Owns: deciding, per proxy, whether its last translation still holds for a new model.
Must not know: how a translation is built (see `translate`), how pods run, xDS.

Theory of operation:
1. The memo remembers the last push's model and, per node, the proxy and its `ProxyConfig`.
2. For the next model it lists the resources that changed (added, removed or edited,
   compared by value). Anything beyond the resources — workloads, ClusterIPs, the mesh
   config, the pod's own record — changed: every proxy is translated again.
3. A sidecar keeps its last translation when every changed resource (its old and its new
   version) is one a sidecar in its namespace cannot read: a Gateway, a VirtualService
   bound only to gateways or not exported to the namespace, a DestinationRule not exported
   to it. Everything else counts as read (conservative: Services, ServiceEntries, policies,
   Secrets …). Gateways (routers) are translated again on any change.
4. A sidecar whose translation depends on the clock or on its own files (a DestinationRule
   anywhere originates TLS: certificate files and expiry are checked) is always translated
   again.
5. Results shared by the proxies of a push (`MeshModel.shared`) are carried to the next
   model when what they read did not change (`CARRIED`): the mesh's EDS clusters, a
   sidecar's inbound listener and clusters and its outbound listeners routed by Host
   alone (they read no routing rule: routes come over RDS), and one host's
   clusters as one namespace sees them — keyed by the DestinationRules that apply,
   so carried only while none of those changed, no PeerAuthentication, Service or other
   resource they could read changed (only VirtualServices, Gateways and DestinationRules
   did), the model's context is the same and no rule reads the clock. A changed rule's
   entries are dropped; a host that another rule now applies to gets a new key.
The results are identical to a full translation; tests/control/test_memo.py compares both
over a sequence of changes.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from sailmesh.ca import IssuedCert
from sailmesh.model.indexes import mesh_bound
from sailmesh.model.mesh import MeshModel
from sailmesh.model.proxy import Proxy
from sailmesh.model.services import exported_to
from sailmesh.resources.base import Resource
from sailmesh.resources.networking import (
    ClientTLSSettings,
    DestinationRule,
    Gateway,
    TrafficPolicy,
    VirtualService,
)
from sailmesh.translate import ProxyConfig
from sailmesh.translate.identity import identity_secrets

# TLS modes whose clusters name files the proxy must be able to read, checked at `now`.
ORIGINATION_MODES = frozenset({"SIMPLE", "MUTUAL"})
# Kinds of shared results carried from one push to the next, and where their key names the
# DestinationRules they read (None: they read the model's context alone).
CARRIED: dict[str, int | None] = {
    "mesh-clusters": None, "service-clusters": 4, "sidecar-inbound": None,
    "virtual-outbound": None, "passthrough-cluster": None, "outbound-http-listener": None}
# The kinds of resources whose changes no carried result reads beyond the rules its key
# names.
CARRY_THROUGH = (VirtualService, Gateway, DestinationRule)


@dataclass(frozen=True)
class _Kept:
    proxy: Proxy
    config: ProxyConfig


class TranslationMemo:
    """Last push's translations, by node id. Owned by one planner caller (the daemon)."""

    def __init__(self) -> None:
        self._model: MeshModel | None = None
        self._kept: dict[str, _Kept] = {}
        self._changed: list[Resource] = []
        self._all_stale = True
        self._clock_bound = True
        self._secrets: dict[str, tuple[IssuedCert, Mapping[str, Message]]] = {}

    def start(self, model: MeshModel) -> None:
        """Compare `model` with the last push's before any `lookup` for it."""
        last, self._model = self._model, model
        self._all_stale = last is None or not _same_context(last, model)
        self._changed = [] if self._all_stale or last is None else _changed(last, model)
        self._clock_bound = any(_originates(dr) for dr in model.snapshot.of_kind(DestinationRule))
        if (last is not None and not self._all_stale and not self._clock_bound
                and all(isinstance(r, CARRY_THROUGH) for r in self._changed)):
            model.carry(_carried(last, {r.ref for r in self._changed
                                        if isinstance(r, DestinationRule)}))

    def lookup(self, node_id: str, proxy: Proxy) -> ProxyConfig | None:
        """The last translation of `node_id` when it still holds for the current model."""
        kept = self._kept.get(node_id)
        if (kept is None or self._all_stale or kept.proxy != proxy
                or kept.proxy.kind != "sidecar" or self._clock_bound):
            return None
        if all(_unread_by_sidecar(r, proxy.namespace) for r in self._changed):
            return kept.config
        return None

    def keep(self, translations: dict[str, tuple[Proxy, ProxyConfig]]) -> None:
        """The translations of the current push (nodes that failed are left out)."""
        self._kept = {n: _Kept(p, c) for n, (p, c) in translations.items()}
        self._secrets = {n: s for n, s in self._secrets.items() if n in translations}

    def identity_secrets(self, node_id: str, cert: IssuedCert) -> Mapping[str, Message]:
        """The node's identity secrets (`default`, `ROOTCA`) for `cert`: the very messages
        of the last push while the certificate is the same object (so they are not packed
        and compared again). Contract: never mutated."""
        last = self._secrets.get(node_id)
        if last is None or last[0] is not cert:
            last = self._secrets[node_id] = (cert, identity_secrets(
                cert.cert_chain_pem, cert.key_pem, cert.root_pem))
        return last[1]


def _same_context(a: MeshModel, b: MeshModel) -> bool:
    return (a.workloads == b.workloads and a.mesh == b.mesh and a.pod_hosts == b.pod_hosts
            and a.services == b.services and a.endpoints == b.endpoints
            and a.identities == b.identities
            and a.other_services == b.other_services and a.other_endpoints == b.other_endpoints)


def _carried(last: MeshModel, changed_rules: set[str]) -> dict[Hashable, Any]:
    """The last model's shared results of the `CARRIED` kinds that read none of
    `changed_rules` (refs of DestinationRules changed, added or removed)."""
    out: dict[Hashable, Any] = {}
    for key, result in last.shared_results().items():
        if not isinstance(key, tuple) or key[0] not in CARRIED:
            continue
        at = CARRIED[key[0]]
        if at is None or not changed_rules.intersection(key[at]):
            out[key] = result
    return out


def _changed(a: MeshModel, b: MeshModel) -> list[Resource]:
    """Every version (old and new) of the resources that differ between two snapshots."""
    old = {r.key: r for r in a.snapshot}
    new = {r.key: r for r in b.snapshot}
    out: list[Resource] = []
    for key in old.keys() | new.keys():
        before, after = old.get(key), new.get(key)
        if before is after or before == after:
            continue
        out += [r for r in (before, after) if r is not None]
    return out


def _unread_by_sidecar(r: Resource, namespace: str) -> bool:
    if isinstance(r, Gateway):
        return True
    if isinstance(r, VirtualService):
        return not mesh_bound(r) or not exported_to(r.spec.export_to, r.namespace, namespace)
    if isinstance(r, DestinationRule):
        return not exported_to(r.spec.export_to, r.namespace, namespace)
    return False


def _originates(dr: DestinationRule) -> bool:
    policies = [dr.spec.traffic_policy, *(s.traffic_policy for s in dr.spec.subsets)]
    return any(_tls_originates(t) for p in policies if p is not None for t in _tls_of(p))


def _tls_of(policy: TrafficPolicy) -> Iterable[ClientTLSSettings | None]:
    yield policy.tls
    yield from (p.tls for p in policy.port_level_settings)


def _tls_originates(tls: ClientTLSSettings | None) -> bool:
    return tls is not None and (tls.mode in ORIGINATION_MODES or bool(tls.credential_name))
