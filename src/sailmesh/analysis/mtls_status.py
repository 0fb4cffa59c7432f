"""Kiali's mTLS status of each namespace and of the whole mesh, from PeerAuthentication and
DestinationRule with auto mTLS (Kiali business/tls.go, as facts):

- mesh-wide: a PeerAuthentication without selector in the root namespace with STRICT,
  and (auto mTLS off only) a DestinationRule for `*.local` or `*` with ISTIO_MUTUAL.
  Both → MTLS_ENABLED; one, with auto mTLS off → MTLS_PARTIALLY_ENABLED; else
  MTLS_NOT_ENABLED (with auto mTLS on, only the PeerAuthentication decides).
- a namespace: its selector-less PeerAuthentication's mode and the mode of a
  DestinationRule for `*.<ns>.svc.cluster.local`; with auto mTLS on, STRICT/PERMISSIVE
  → ENABLED unless the rule says SIMPLE/DISABLE (→ DISABLED); DISABLE → DISABLED unless
  the rule says (ISTIO_)MUTUAL or nothing (→ PARTIALLY_ENABLED); neither → NOT_ENABLED;
  anything else PARTIALLY_ENABLED. With auto mTLS off: STRICT + ISTIO_MUTUAL → ENABLED,
  (DISABLE|PERMISSIVE) + (DISABLE|SIMPLE) → DISABLED, neither → NOT_ENABLED, else
  PARTIALLY_ENABLED. Kiali's page then shows a NOT_ENABLED namespace as ENABLED when the
  mesh is ENABLED; `effective` is that figure.
Must not know: HTTP, rendering.
"""

from __future__ import annotations

from dataclasses import dataclass

from sailmesh.model.mesh import MeshModel
from sailmesh.resources.core import Namespace
from sailmesh.resources.networking import DestinationRule
from sailmesh.resources.security import PeerAuthentication

ENABLED = "MTLS_ENABLED"
PARTIALLY = "MTLS_PARTIALLY_ENABLED"
NOT_ENABLED = "MTLS_NOT_ENABLED"
DISABLED = "MTLS_DISABLED"


@dataclass(frozen=True)
class NamespaceMTLS:
    namespace: str
    status: str
    effective: str  # as Kiali's namespace page shows it, mesh-wide status considered
    peer_authentication: str  # "PeerAuthentication ns/name (STRICT)" or ""
    destination_rule: str  # "DestinationRule ns/name (ISTIO_MUTUAL)" or ""


def mesh_status(model: MeshModel) -> str:
    strict = any(_pa_mode(pa) == "STRICT" for pa in _namespace_wide_pas(model, model.mesh.root_namespace))
    if model.mesh.enable_auto_mtls:
        return ENABLED if strict else NOT_ENABLED
    rule = any(dr.spec.host in ("*.local", "*") and _dr_mode(dr) == "ISTIO_MUTUAL"
               for dr in model.snapshot.of_kind(DestinationRule))
    return ENABLED if strict and rule else PARTIALLY if strict or rule else NOT_ENABLED


def namespace_status(model: MeshModel, namespace: str, mesh: str | None = None) -> NamespaceMTLS:
    pa_mode, pa_ref = "", ""
    if namespace != model.mesh.root_namespace:  # Kiali: root-namespace policies are mesh-wide
        for pa in _namespace_wide_pas(model, namespace):
            pa_mode, pa_ref = _pa_mode(pa), f"PeerAuthentication {pa.namespace}/{pa.name}"
            break
    dr_mode, dr_ref = "", ""
    for dr in model.snapshot.of_kind(DestinationRule):
        if dr.spec.host in (f"*.{namespace}.svc.cluster.local", f"*.{namespace}.svc") and _dr_mode(dr):
            dr_mode, dr_ref = _dr_mode(dr), f"DestinationRule {dr.namespace}/{dr.name}"
            break
    status = _final(dr_mode, pa_mode, model.mesh.enable_auto_mtls)
    mesh = mesh if mesh is not None else mesh_status(model)
    effective = ENABLED if mesh == ENABLED and status == NOT_ENABLED else status
    return NamespaceMTLS(namespace, status, effective,
                         f"{pa_ref} ({pa_mode})" if pa_ref else "",
                         f"{dr_ref} ({dr_mode})" if dr_ref else "")


def namespaces(model: MeshModel) -> list[str]:
    names = {ns.name for ns in model.snapshot.of_kind(Namespace)}
    names |= {r.namespace for r in model.snapshot.resources if r.namespace}
    return sorted(names | {"default", model.mesh.root_namespace})


def _final(dr: str, pa: str, auto: bool) -> str:
    if auto:
        if pa in ("STRICT", "PERMISSIVE"):
            return DISABLED if dr in ("SIMPLE", "DISABLE") else ENABLED
        if pa == "DISABLE":
            return PARTIALLY if dr in ("ISTIO_MUTUAL", "MUTUAL", "") else DISABLED
        return NOT_ENABLED if not dr else PARTIALLY
    if pa == "STRICT" and dr == "ISTIO_MUTUAL":
        return ENABLED
    if pa in ("DISABLE", "PERMISSIVE") and dr in ("DISABLE", "SIMPLE"):
        return DISABLED
    return NOT_ENABLED if not dr and not pa else PARTIALLY


def _namespace_wide_pas(model: MeshModel, namespace: str) -> list[PeerAuthentication]:
    return [pa for pa in model.snapshot.of_kind(PeerAuthentication)
            if pa.namespace == namespace and not (pa.spec.selector and pa.spec.selector.match_labels)
            and _pa_mode(pa)]


def _pa_mode(pa: PeerAuthentication) -> str:
    mode = pa.spec.mtls.mode if pa.spec.mtls else "UNSET"
    return "" if mode == "UNSET" else mode


def _dr_mode(dr: DestinationRule) -> str:
    tp = dr.spec.traffic_policy
    return tp.tls.mode if tp is not None and tp.tls is not None else ""


__all__ = ["DISABLED", "ENABLED", "NOT_ENABLED", "PARTIALLY", "NamespaceMTLS", "mesh_status",
           "namespace_status", "namespaces"]
