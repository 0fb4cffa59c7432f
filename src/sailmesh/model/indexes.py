"""Indexes over one snapshot, built once and shared by every proxy of a push.

Owns: how a VirtualService binds (to the sidecars, `mesh`, and to gateways), and the
lookups translation and analysis ask per proxy and service — DestinationRules by
host, mesh VirtualServices by host, VirtualServices by gateway, PeerAuthentications by
namespace — answered from dictionaries instead of scans of the snapshot. Each list keeps
the snapshot's creation order (oldest first), which Istio's "oldest wins" rules read.
Must not know: Envoy, IO. Istio's equivalent: pilot's PushContext indexes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sailmesh.model.hosts import fqdn, matches
from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.networking import DestinationRule, VirtualService
from sailmesh.resources.security import PeerAuthentication


@dataclass(frozen=True)
class SnapshotIndexes:
    # DestinationRules by the FQDN of their host; wildcard hosts (`*.example.com`, `*`) apart.
    rules_by_host: dict[str, list[DestinationRule]]
    wildcard_rules: list[DestinationRule]
    # VirtualServices bound to the sidecars (`mesh`), by each FQDN in their hosts.
    mesh_services_by_host: dict[str, list[VirtualService]]
    # VirtualServices by each `ns/name` gateway they bind to.
    services_by_gateway: dict[str, list[VirtualService]]
    peer_auth_by_namespace: dict[str, list[PeerAuthentication]]
    order: dict[int, int]  # id(resource) → its position in the snapshot

    def destination_rules_for(self, host_fqdn: str) -> list[DestinationRule]:
        """Rules whose host covers `host_fqdn`, oldest first."""
        exact = self.rules_by_host.get(host_fqdn, [])
        wild = [dr for dr in self.wildcard_rules
                if matches(host_fqdn, fqdn(dr.spec.host, dr.namespace))]
        return self._ordered(exact, wild) if wild else exact

    def _ordered(self, *groups: Sequence[DestinationRule]) -> list[DestinationRule]:
        return sorted((r for g in groups for r in g), key=lambda r: self.order[id(r)])


def mesh_bound(vs: VirtualService) -> bool:
    """Bound to the sidecars: no `gateways`, or `mesh` among them."""
    return not vs.spec.gateways or "mesh" in vs.spec.gateways


def bound_gateways(vs: VirtualService) -> tuple[str, ...]:
    """`ns/name` of each gateway a VirtualService binds to (`mesh` excluded).

    Istio: a bare name refers to the VirtualService's own namespace.
    """
    return tuple(g if "/" in g else f"{vs.namespace}/{g}"
                 for g in vs.spec.gateways if g != "mesh")


def build_indexes(snapshot: Snapshot) -> SnapshotIndexes:
    rules: defaultdict[str, list[DestinationRule]] = defaultdict(list)
    wildcard: list[DestinationRule] = []
    for dr in snapshot.of_kind(DestinationRule):
        host = fqdn(dr.spec.host, dr.namespace)
        (wildcard if host.startswith("*") else rules[host]).append(dr)
    mesh_vs: defaultdict[str, list[VirtualService]] = defaultdict(list)
    by_gateway: defaultdict[str, list[VirtualService]] = defaultdict(list)
    for vs in snapshot.of_kind(VirtualService):
        if mesh_bound(vs):
            for host in _unique(fqdn(h, vs.namespace) for h in vs.spec.hosts):
                mesh_vs[host].append(vs)
        for key in _unique(bound_gateways(vs)):
            by_gateway[key].append(vs)
    peer: defaultdict[str, list[PeerAuthentication]] = defaultdict(list)
    for pa in snapshot.of_kind(PeerAuthentication):
        peer[pa.namespace].append(pa)
    return SnapshotIndexes(dict(rules), wildcard, dict(mesh_vs), dict(by_gateway), dict(peer),
                           {id(r): i for i, r in enumerate(snapshot.resources)})


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
