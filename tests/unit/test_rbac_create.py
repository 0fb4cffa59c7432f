"""kubectl's `create role|clusterrole|rolebinding|clusterrolebinding`: the objects built
from the flags (as `--dry-run=client -o yaml` prints them) and kubectl's errors."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from sailmesh.cli.main import cli


def _created(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["create", *args, "--dry-run=client", "-o", "yaml"])
    assert result.exit_code == 0, result.output
    return yaml.safe_load(result.output)


def test_create_role_as_istio_pages_type_it() -> None:
    role = _created("role", "client-credential-role", "--resource=secret", "--verb=get,list,watch")
    assert role["apiVersion"] == "rbac.authorization.k8s.io/v1" and role["kind"] == "Role"
    assert role["metadata"] == {"name": "client-credential-role", "namespace": "default"}
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"],
                              "verbs": ["get", "list", "watch"]}]
    # Resources of other groups get their own rule, under their plural name.
    role = _created("role", "r", "-n", "foo", "--verb=list", "--resource=deploy,pods",
                    "--resource=destinationrules")
    assert role["metadata"]["namespace"] == "foo"
    assert role["rules"] == [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        {"apiGroups": ["networking.istio.io"], "resources": ["destinationrules"],
         "verbs": ["list"]},
    ]


def test_create_rolebinding_for_a_service_account() -> None:
    rb = _created("rolebinding", "client-credential-role-binding",
                  "--role=client-credential-role", "--serviceaccount=default:curl")
    assert rb["kind"] == "RoleBinding"
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                             "name": "client-credential-role"}
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "curl", "namespace": "default"}]
    crb = _created("clusterrolebinding", "admins", "--clusterrole=admin", "--user=alice")
    assert "namespace" not in crb["metadata"] and crb["roleRef"]["kind"] == "ClusterRole"
    assert crb["subjects"] == [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io",
                                "name": "alice"}]


def test_create_rbac_errors_as_kubectl() -> None:
    runner = CliRunner()
    for args, message in (
        (["role", "r", "--resource=secret"], "at least one verb must be specified"),
        (["role", "r", "--verb=list", "--resource=nosuch"],
         'the server doesn\'t have a resource type "nosuch"'),
        (["rolebinding", "b", "--serviceaccount=default:curl"],
         "exactly one of clusterrole or role must be specified"),
        (["rolebinding", "b", "--role=r", "--serviceaccount=curl"],
         "serviceaccount must be <namespace>:<name>"),
    ):
        result = runner.invoke(cli, ["create", *args, "--dry-run=client"])
        assert result.exit_code == 1 and message in result.output, (args, result.output)
