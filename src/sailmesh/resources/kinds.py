"""The table of accepted kinds: kind name → model class, and kubectl's resource names."""

from __future__ import annotations

from sailmesh.resources.base import Resource
from sailmesh.resources.core import (
    ConfigMap,
    Deployment,
    Namespace,
    Secret,
    Service,
    ServiceAccount,
)
from sailmesh.resources.networking import DestinationRule, Gateway, ServiceEntry, VirtualService
from sailmesh.resources.openshift import Route
from sailmesh.resources.operator import IstioOperator
from sailmesh.resources.rbac import ClusterRole, ClusterRoleBinding, Role, RoleBinding
from sailmesh.resources.security import PeerAuthentication
from sailmesh.resources.sidecar import Sidecar

KINDS: dict[str, type[Resource]] = {
    cls.KIND: cls
    for cls in (
        Namespace,
        ServiceAccount,
        Service,
        Deployment,
        ConfigMap,
        Secret,
        Gateway,
        VirtualService,
        DestinationRule,
        ServiceEntry,
        PeerAuthentication,
        Sidecar,
        IstioOperator,
        Route,
        Role,
        ClusterRole,
        RoleBinding,
        ClusterRoleBinding,
    )
}

# Every name `sailctl get/delete` accepts ("svc", "gateways", "vs", ...) → kind.
RESOURCE_NAMES: dict[str, str] = {
    name: kind for kind, cls in KINDS.items() for name in (*cls.NAMES, kind.lower())
}


def stored_kind(name: str) -> str | None:
    """kubectl's resource names (`svc`, `gateways`, `virtualservices.networking.istio.io`)
    → the stored kind, or None."""
    return RESOURCE_NAMES.get(name.lower().split(".")[0])
