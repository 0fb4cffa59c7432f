"""kubectl's flag placement: -n/-A anywhere before `--`."""

import pytest

from sailmesh.cli.common import hoist_global_flags

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
