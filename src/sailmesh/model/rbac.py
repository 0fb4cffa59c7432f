"""Kubernetes RBAC, as far as the mesh asks it: may a ServiceAccount do a verb on a
resource in a namespace (a SubjectAccessReview without a resource name)?

Owns: matching Role/ClusterRole rules and RoleBinding/ClusterRoleBinding subjects, the
groups a ServiceAccount belongs to, the default ClusterRoles every cluster has, and the
answer with the object that decided it. Must not know: Envoy, IO, clocks, what asks.

Kubernetes facts (RBAC authorizer, reference/access-authn-authz/rbac):
- A RoleBinding grants its Role (same namespace) or ClusterRole within its namespace; a
  ClusterRoleBinding grants a ClusterRole everywhere.
- A ServiceAccount is user `system:serviceaccount:NS:NAME`, in groups
  `system:serviceaccounts`, `system:serviceaccounts:NS` and `system:authenticated`.
- A rule matches when its verbs, apiGroups and resources hold the asked ones or `*`; a rule
  with resourceNames never matches a request without a name (such as `list`).
- Every cluster has ClusterRoles cluster-admin (everything), admin and edit (which read
  Secrets) and view (which does not); they need not be in the store to be bound.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sailmesh.model.snapshot import Snapshot
from sailmesh.resources.rbac import (
    ClusterRole,
    ClusterRoleBinding,
    PolicyRule,
    Role,
    RoleBinding,
    Subject,
)

_WORKLOAD_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
# Kubernetes' default user-facing ClusterRoles, as far as Secrets go.
DEFAULT_CLUSTER_ROLES: dict[str, tuple[PolicyRule, ...]] = {
    "cluster-admin": (PolicyRule(verbs=["*"], api_groups=["*"], resources=["*"]),),
    "admin": (PolicyRule(verbs=_WORKLOAD_VERBS, api_groups=[""], resources=["secrets"]),),
    "edit": (PolicyRule(verbs=_WORKLOAD_VERBS, api_groups=[""], resources=["secrets"]),),
    "view": (),
}


@dataclass(frozen=True)
class Access:
    """The answer, and what decided it: the binding and role that grant it, or why none
    does (for messages)."""

    allowed: bool
    reason: str


def service_account_may(snapshot: Snapshot, namespace: str, service_account: str, verb: str,
                        resource: str, api_group: str = "") -> Access:
    """May ServiceAccount `namespace/service_account` `verb` `resource` in `namespace`?"""
    who = f"ServiceAccount {namespace}/{service_account}"
    for binding, role_ref, rules in _bindings(snapshot, namespace):
        if not any(_is(s, binding, namespace, service_account) for s in binding.subjects):
            continue
        if any(_grants(r, verb, resource, api_group) for r in rules):
            return Access(True, f"{binding.ref} binds {who} to {role_ref}, which allows "
                                f"{verb} on {resource}")
    return Access(False, f"no Role or ClusterRole bound to {who} allows {verb} on {resource} "
                         f"in namespace {namespace}")


def _bindings(snapshot: Snapshot, namespace: str
              ) -> Iterator[tuple[RoleBinding | ClusterRoleBinding, str, Sequence[PolicyRule]]]:
    for rb in snapshot.of_kind(RoleBinding):
        if rb.namespace != namespace:
            continue
        if rb.role_ref.kind == "Role":
            role = snapshot.get(Role, rb.namespace, rb.role_ref.name)
            if role is not None:
                yield rb, role.ref, role.rules
        elif rb.role_ref.kind == "ClusterRole":
            yield rb, f"ClusterRole {rb.role_ref.name}", _cluster_rules(snapshot,
                                                                        rb.role_ref.name)
    for crb in snapshot.of_kind(ClusterRoleBinding):
        if crb.role_ref.kind == "ClusterRole":
            yield crb, f"ClusterRole {crb.role_ref.name}", _cluster_rules(snapshot,
                                                                          crb.role_ref.name)


def _cluster_rules(snapshot: Snapshot, name: str) -> Sequence[PolicyRule]:
    role = snapshot.get(ClusterRole, "", name)
    if role is not None:
        return role.rules
    return DEFAULT_CLUSTER_ROLES.get(name, ())


def _is(subject: Subject, binding: RoleBinding | ClusterRoleBinding, namespace: str,
        service_account: str) -> bool:
    if subject.kind == "ServiceAccount":
        return (subject.name == service_account
                and (subject.namespace or binding.namespace) == namespace)
    if subject.kind == "User":
        return subject.name == f"system:serviceaccount:{namespace}:{service_account}"
    if subject.kind == "Group":
        return subject.name in ("system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                                "system:authenticated")
    return False


def _grants(rule: PolicyRule, verb: str, resource: str, api_group: str) -> bool:
    return (not rule.resource_names
            and any(v in (verb, "*") for v in rule.verbs)
            and any(g in (api_group, "*") for g in rule.api_groups)
            and any(r in (resource, "*") for r in rule.resources))
