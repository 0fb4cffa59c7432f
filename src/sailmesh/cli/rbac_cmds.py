"""kubectl's `create role`, `create clusterrole`, `create rolebinding` and
`create clusterrolebinding`: the objects kubectl builds from its flags, stored through
`submit` (`config_cmds._created_object`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from sailmesh.cli.common import namespace_option
from sailmesh.cli.output import fail
from sailmesh.resources.kinds import KINDS, RESOURCE_NAMES

Submit = Callable[[dict[str, Any], str | None, str, str | None], None]
RBAC = "rbac.authorization.k8s.io/v1"

_dry_run = click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
_output = click.option("-o", "--output", default=None)


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _rules(verbs: tuple[str, ...], resources: tuple[str, ...],
           resource_names: tuple[str, ...]) -> list[dict[str, Any]]:
    """kubectl's rule building: each resource name (any spelling kubectl accepts:
    `secret`, `secrets`, `deploy`) becomes its plural in its API group; one rule per group."""
    if not _split(verbs):
        fail("at least one verb must be specified")
    if not _split(resources):
        fail("at least one resource must be specified")
    groups: dict[str, list[str]] = {}
    for name in _split(resources):
        plural, _, group = name.partition(".")
        kind = RESOURCE_NAMES.get(plural.lower())
        if kind is None:
            fail(f'the server doesn\'t have a resource type "{plural}"')
        cls = KINDS[kind]
        api_group = group or (cls.API_VERSIONS[0].rpartition("/")[0])
        groups.setdefault(api_group, []).append(cls.NAMES[0])
    rules = []
    for api_group, plurals in groups.items():
        rule: dict[str, Any] = {"apiGroups": [api_group], "resources": plurals,
                                "verbs": _split(verbs)}
        if resource_names:
            rule["resourceNames"] = _split(resource_names)
        rules.append(rule)
    return rules


def _subjects(users: tuple[str, ...], groups: tuple[str, ...],
              service_accounts: tuple[str, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    out += [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": u} for u in users]
    out += [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": g} for g in groups]
    for sa in service_accounts:
        ns, sep, name = sa.partition(":")
        if not sep or not ns or not name:
            fail(f"serviceaccount must be <namespace>:<name>, got {sa!r}")
        out.append({"kind": "ServiceAccount", "name": name, "namespace": ns})
    return out


def rbac_commands(submit: Submit) -> list[click.Command]:
    """The four `create` subcommands, storing through `submit`."""

    def role_command(kind: str) -> click.Command:
        @click.command(kind.lower())
        @click.argument("name")
        @click.option("--verb", "verbs", multiple=True)
        @click.option("--resource", "resources", multiple=True)
        @click.option("--resource-name", "resource_names", multiple=True)
        @namespace_option
        @_dry_run
        @_output
        def create_role(name: str, verbs: tuple[str, ...], resources: tuple[str, ...],
                        resource_names: tuple[str, ...], namespace: str | None, dry_run: str,
                        output: str | None) -> None:
            obj = {"apiVersion": RBAC, "kind": kind, "metadata": {"name": name},
                   "rules": _rules(verbs, resources, resource_names)}
            submit(obj, namespace if kind == "Role" else None, dry_run, output)
        create_role.help = f"Create a {kind} with one rule per API group (kubectl create)."
        return create_role

    def binding_command(kind: str) -> click.Command:
        @click.command(kind.lower())
        @click.argument("name")
        @click.option("--role", default=None)
        @click.option("--clusterrole", default=None)
        @click.option("--user", "users", multiple=True)
        @click.option("--group", "groups", multiple=True)
        @click.option("--serviceaccount", "service_accounts", multiple=True)
        @namespace_option
        @_dry_run
        @_output
        def create_binding(name: str, role: str | None, clusterrole: str | None,
                           users: tuple[str, ...], groups: tuple[str, ...],
                           service_accounts: tuple[str, ...], namespace: str | None,
                           dry_run: str, output: str | None) -> None:
            if (role is None) == (clusterrole is None) or (role and kind != "RoleBinding"):
                fail("exactly one of clusterrole or role must be specified"
                     if kind == "RoleBinding" else "--clusterrole is required")
            ref_kind, ref_name = ("Role", role) if role else ("ClusterRole", clusterrole)
            obj = {"apiVersion": RBAC, "kind": kind, "metadata": {"name": name},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind,
                               "name": ref_name},
                   "subjects": _subjects(users, groups, service_accounts)}
            submit(obj, namespace if kind == "RoleBinding" else None, dry_run, output)
        create_binding.help = f"Create a {kind} for users, groups or service accounts."
        return create_binding

    return [role_command("Role"), role_command("ClusterRole"),
            binding_command("RoleBinding"), binding_command("ClusterRoleBinding")]


__all__ = ["rbac_commands"]
