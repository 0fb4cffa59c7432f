"""Kubernetes RBAC kinds (rbac.authorization.k8s.io/v1): Role, ClusterRole, RoleBinding,
ClusterRoleBinding. Istio's pages create them for what istiod checks with a
SubjectAccessReview: a sidecar may use a DestinationRule's `credentialName` only when its
service account may `list` Secrets in its namespace (`model.credentials`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from sailmesh.resources.base import Resource, Spec

RBAC_VERSIONS = ("rbac.authorization.k8s.io/v1",)


class PolicyRule(Spec):
    verbs: list[str]
    api_groups: list[str] = Field(default_factory=list)
    resources: list[str] = Field(default_factory=list)
    resource_names: list[str] = Field(default_factory=list)
    non_resource_ur_ls: list[str] = Field(default_factory=list, alias="nonResourceURLs")


class Role(Resource):
    KIND: ClassVar[str] = "Role"
    API_VERSIONS: ClassVar[tuple[str, ...]] = RBAC_VERSIONS
    NAMES: ClassVar[tuple[str, ...]] = ("roles", "role")
    rules: list[PolicyRule] = Field(default_factory=list)


class ClusterRole(Resource):
    KIND: ClassVar[str] = "ClusterRole"
    API_VERSIONS: ClassVar[tuple[str, ...]] = RBAC_VERSIONS
    NAMESPACED: ClassVar[bool] = False
    NAMES: ClassVar[tuple[str, ...]] = ("clusterroles", "clusterrole")
    rules: list[PolicyRule] = Field(default_factory=list)


class RoleRef(Spec):
    api_group: str = "rbac.authorization.k8s.io"
    kind: str
    name: str


class Subject(Spec):
    kind: str
    name: str
    namespace: str | None = None
    api_group: str | None = None


class RoleBinding(Resource):
    KIND: ClassVar[str] = "RoleBinding"
    API_VERSIONS: ClassVar[tuple[str, ...]] = RBAC_VERSIONS
    NAMES: ClassVar[tuple[str, ...]] = ("rolebindings", "rolebinding")
    role_ref: RoleRef
    subjects: list[Subject] = Field(default_factory=list)


class ClusterRoleBinding(Resource):
    KIND: ClassVar[str] = "ClusterRoleBinding"
    API_VERSIONS: ClassVar[tuple[str, ...]] = RBAC_VERSIONS
    NAMESPACED: ClassVar[bool] = False
    NAMES: ClassVar[tuple[str, ...]] = ("clusterrolebindings", "clusterrolebinding")
    role_ref: RoleRef
    subjects: list[Subject] = Field(default_factory=list)


__all__ = ["ClusterRole", "ClusterRoleBinding", "PolicyRule", "Role", "RoleBinding", "Subject"]
