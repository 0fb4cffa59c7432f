"""Kubernetes RBAC as istiod asks it before serving a sidecar a credentialName's key: may
the proxy's service account `list` `secrets` in its namespace (`model.rbac`)?"""

from __future__ import annotations

import pytest

from sailmesh.model.rbac import service_account_may
from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.loader import load_text


def _role(kind: str, rules: str, ns: str = "app") -> str:
    where = f", namespace: {ns}" if kind == "Role" else ""
    return (f"apiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\n"
            f"metadata: {{name: reader{where}}}\nrules: [{rules}]\n---\n")


def _binding(kind: str, role_kind: str, subject: str, ns: str = "app",
             role: str = "reader") -> str:
    where = f", namespace: {ns}" if kind == "RoleBinding" else ""
    return (f"apiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\n"
            f"metadata: {{name: binding{where}}}\n"
            f"roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: {role_kind}, "
            f"name: {role}}}\nsubjects: [{subject}]\n---\n")


LIST = '{apiGroups: [""], resources: [secrets], verbs: [list]}'
SA = "{kind: ServiceAccount, name: curl, namespace: app}"

CASES = {
    # istio.io egress-tls-origination: kubectl create role / rolebinding.
    "role and rolebinding": (_role("Role", LIST) + _binding("RoleBinding", "Role", SA), True),
    "nothing bound": (_role("Role", LIST), False),
    "bound in another namespace": (
        _role("Role", LIST, "other") + _binding("RoleBinding", "Role", SA, "other"), False),
    "another service account": (_role("Role", LIST) + _binding(
        "RoleBinding", "Role", "{kind: ServiceAccount, name: sleep, namespace: app}"), False),
    "get only": (_role("Role", '{apiGroups: [""], resources: [secrets], verbs: [get]}')
                 + _binding("RoleBinding", "Role", SA), False),
    "resourceNames never match a list": (
        _role("Role", '{apiGroups: [""], resources: [secrets], verbs: [list], '
                      'resourceNames: [client-credential]}')
        + _binding("RoleBinding", "Role", SA), False),
    "another api group": (_role("Role", '{apiGroups: [apps], resources: [secrets], '
                                        'verbs: [list]}')
                          + _binding("RoleBinding", "Role", SA), False),
    "wildcards": (_role("Role", '{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}')
                  + _binding("RoleBinding", "Role", SA), True),
    "clusterrole by clusterrolebinding": (
        _role("ClusterRole", LIST) + _binding("ClusterRoleBinding", "ClusterRole", SA), True),
    "clusterrole by rolebinding": (
        _role("ClusterRole", LIST) + _binding("RoleBinding", "ClusterRole", SA), True),
    "default clusterrole edit": (
        _binding("RoleBinding", "ClusterRole", SA, role="edit"), True),
    "default clusterrole view": (
        _binding("RoleBinding", "ClusterRole", SA, role="view"), False),
    "the namespace's service accounts group": (_role("Role", LIST) + _binding(
        "RoleBinding", "Role", "{kind: Group, name: 'system:serviceaccounts:app'}"), True),
    "the service account as a user": (_role("Role", LIST) + _binding(
        "RoleBinding", "Role", "{kind: User, name: 'system:serviceaccount:app:curl'}"), True),
}


@pytest.mark.parametrize(("text", "allowed"), CASES.values(), ids=CASES.keys())
def test_may_the_service_account_list_secrets(text: str, allowed: bool) -> None:
    snapshot = Snapshot.of(load_text(text, "rbac.yaml").resources)
    access = service_account_may(snapshot, "app", "curl", "list", "secrets")
    assert access.allowed is allowed, access.reason
    assert ("binds ServiceAccount app/curl" in access.reason) is allowed, access.reason
