"""kubectl's flag placement: -n/-A anywhere before `--`."""

import click
import pytest

from sailmesh.cli.common import bool_flag_values, hoist_global_flags

CASES = [
    (["-n", "test", "apply", "-f", "-"], ["apply", "-f", "-", "-n", "test"]),
    (["apply", "-n", "test", "-f", "-"], ["apply", "-f", "-", "-n", "test"]),
    (["create", "-n", "istio-system", "secret", "tls", "s", "--key=k"],
     ["create", "secret", "tls", "s", "--key=k", "-n", "istio-system"]),
    (["--namespace=test", "get", "vs"], ["get", "vs", "--namespace=test"]),
    (["-ntest", "get", "gw"], ["get", "gw", "-ntest"]),
    (["get", "vs", "-A"], ["get", "vs", "-A"]),
    (["exec", "-n", "test", "deploy/x", "--", "curl", "-n", "5"],
     ["exec", "deploy/x", "-n", "test", "--", "curl", "-n", "5"]),
    (["get", "pods"], ["get", "pods"]),
]


@pytest.mark.parametrize(("argv", "expected"), CASES)
def test_hoist(argv: list[str], expected: list[str]) -> None:
    assert hoist_global_flags(argv) == expected


# kubectl's boolean flags take an optional =VALUE (Go's ParseBool).
BOOL_CASES = [
    (["--ignore-not-found=true", "svc", "x"], ["--ignore-not-found", "svc", "x"]),
    (["--ignore-not-found=True", "svc"], ["--ignore-not-found", "svc"]),
    (["--ignore-not-found=false", "svc"], ["svc"]),
    (["--ignore-not-found", "svc", "x"], ["--ignore-not-found", "svc", "x"]),
    (["--wait=false", "svc", "x"], ["--no-wait", "svc", "x"]),
    (["--wait=1", "svc"], ["--wait", "svc"]),
    (["-f", "x.yaml", "--", "--ignore-not-found=true"], ["-f", "x.yaml", "--", "--ignore-not-found=true"]),
]


@pytest.mark.parametrize(("args", "expected"), BOOL_CASES)
def test_bool_flag_values_on_delete(args: list[str], expected: list[str]) -> None:
    from sailmesh.cli.file_cmds import delete
    assert bool_flag_values(delete, args) == expected


def test_a_bool_flag_value_that_is_not_a_bool_is_kubectls_error() -> None:
    from sailmesh.cli.file_cmds import delete
    with pytest.raises(click.UsageError, match='invalid argument "maybe" for "--ignore-not-found"'):
        bool_flag_values(delete, ["--ignore-not-found=maybe"])


def test_the_cli_accepts_ignore_not_found_true() -> None:
    from click.testing import CliRunner

    from sailmesh.cli.main import cli
    result = CliRunner().invoke(cli, ["get", "--ignore-not-found=true", "--help"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["get", "--show-labels=maybe", "pods"])
    assert result.exit_code == 2 and "ParseBool" in result.output
