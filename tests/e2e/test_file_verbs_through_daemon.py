"""`create -f`, `replace -f`, `delete -f` and `--dry-run=server` through the running daemon
(as kubectl through the API server), on a real mesh with real Envoy and curl, spelled as the
tutorials do (`kubectl`, `oc`): each change is served when the command returns; the
server's errors are kubectl's; a dry run and a bad file change nothing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.e2e.mesh import Mesh
from tests.e2e.test_apply_through_daemon import GATEWAY, route

VS = "virtualservice.networking.istio.io"
VSS = "virtualservices.networking.istio.io"  # the server's errors name the plural


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    m = Mesh.start("fv")
    try:
        (m.work / "gateway.yaml").write_text(GATEWAY)
        yield m
    finally:
        m.stop()


def kubectl(mesh: Mesh, args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A line of a tutorial, with `kubectl`/`oc` as `sailctl env --aliases` defines them."""
    return mesh.sh(f'eval "$(sailctl env --aliases)"; {args}', check=check)


def served(mesh: Mesh) -> tuple[str, str]:
    """The gateway's status code and body for web.example.com."""
    out = mesh.curl("-w", "\n%{http_code}", "-H", "Host: web.example.com", "http://127.0.0.1:8080/")
    body, _, code = out.stdout.rpartition("\n")
    return code, body


def seen_by_daemon(mesh: Mesh, verb: str) -> list[str]:
    log = (mesh.home / "run" / "meshd.log").read_text()
    return [line for line in log.splitlines() if f"{verb} of " in line or f"{verb} (" in line]


def stored_route(mesh: Mesh) -> str:
    return mesh.sailctl("get", "virtualservice", "web", "-o", "yaml").stdout


def test_create_through_the_daemon_then_already_exists(mesh: Mesh) -> None:
    (mesh.work / "route.yaml").write_text(route("one"))
    out = kubectl(mesh, "kubectl create -f gateway.yaml -f route.yaml")
    assert out.stdout == f"gateway.networking.istio.io/web created\n{VS}/web created\n", out.stderr
    assert served(mesh) == ("200", "one")  # served when create returns: no waiting loop
    assert "exit 0" in seen_by_daemon(mesh, "create")[-1]
    again = kubectl(mesh, "oc create -f route.yaml", check=False)
    assert (again.returncode, again.stdout) == (1, "")
    assert again.stderr == ('Error from server (AlreadyExists): error when creating "route.yaml": '
                            f'{VSS} "web" already exists\n')
    assert "exit 1" in seen_by_daemon(mesh, "create")[-1]
    assert served(mesh) == ("200", "one")


def test_server_dry_run_checks_the_live_state_and_changes_nothing(mesh: Mesh) -> None:
    before = stored_route(mesh)
    (mesh.work / "next.yaml").write_text(route("two"))
    out = kubectl(mesh, "kubectl apply -f next.yaml --dry-run=server")
    assert out.stdout == f"{VS}/web configured (server dry run)\n", out.stderr
    out = kubectl(mesh, "kubectl create -f next.yaml --dry-run=server", check=False)
    assert out.returncode == 1 and f'{VSS} "web" already exists' in out.stderr
    assert "(server dry run)" in seen_by_daemon(mesh, "create")[-1]  # the daemon answered
    assert stored_route(mesh) == before and served(mesh) == ("200", "one")


def test_replace_through_the_daemon_is_served_when_it_returns(mesh: Mesh) -> None:
    (mesh.work / "route.yaml").write_text(route("two"))
    out = kubectl(mesh, "kubectl replace -f route.yaml")
    assert out.stdout == f"{VS}/web replaced\n", out.stderr
    assert served(mesh) == ("200", "two")
    (mesh.work / "other.yaml").write_text(route("x").replace("name: web,", "name: other,"))
    missing = kubectl(mesh, "kubectl replace -f other.yaml", check=False)
    assert missing.returncode == 1 and missing.stderr == (
        'Error from server (NotFound): error when replacing "other.yaml": '
        f'{VSS} "other" not found\n')


@pytest.mark.parametrize("verb", ["create", "replace", "delete"])
def test_a_bad_file_changes_nothing(mesh: Mesh, verb: str) -> None:
    before = stored_route(mesh)
    (mesh.work / "bad.yaml").write_text(GATEWAY + "---\n" + route("three").replace(
        "directResponse", "directResponze"))
    out = kubectl(mesh, f"kubectl {verb} -f bad.yaml", check=False)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("error: bad.yaml:16: VirtualService default/web: "
                                 "spec.http[0].directResponze: unknown field"), out.stderr
    assert "exit 1" in seen_by_daemon(mesh, verb)[-1]
    assert stored_route(mesh) == before and served(mesh) == ("200", "two")


def test_delete_through_the_daemon_then_not_found(mesh: Mesh) -> None:
    out = kubectl(mesh, "kubectl delete -f route.yaml")
    assert out.stdout == f'{VS} "web" deleted\n', out.stderr
    assert served(mesh)[0] == "404"  # the route is gone when delete returns
    again = kubectl(mesh, "kubectl delete -f route.yaml", check=False)
    assert (again.returncode, again.stdout) == (1, "")
    assert again.stderr == ('Error from server (NotFound): error when deleting "route.yaml": '
                            f'{VSS} "web" not found\n')
    quiet = kubectl(mesh, "kubectl delete -f route.yaml --ignore-not-found=true")
    assert (quiet.stdout, quiet.stderr) == ("", "")
    assert "exit 0" in seen_by_daemon(mesh, "delete")[-1]
    gone = mesh.sailctl("get", "virtualservice", "web", check=False)
    assert gone.returncode == 1 and "NotFound" in gone.stderr


def test_named_verbs_through_the_daemon(mesh: Mesh) -> None:
    """`kubectl label|annotate|delete KIND NAME` and `create namespace`: answered by the
    daemon (its log names each request), kubectl's lines and errors, the deletion served
    when it returns."""
    (mesh.work / "route.yaml").write_text(route("four"))
    kubectl(mesh, "kubectl apply -f route.yaml")
    assert served(mesh) == ("200", "four")
    out = kubectl(mesh, "kubectl label vs web team=blue")
    assert out.stdout == f"{VS}/web labeled\n", out.stderr
    refused = kubectl(mesh, "oc label virtualservice/web team=red", check=False)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == "error: 'team' already has a value (blue), and --overwrite is false\n"
    out = kubectl(mesh, "kubectl annotate vs web note=x")
    assert out.stdout == f"{VS}/web annotated\n", out.stderr
    meta = mesh.sailctl("get", "vs", "web", "-o", "jsonpath={.metadata.labels.team}"
                        "/{.metadata.annotations.note}").stdout
    assert meta == "blue/x"
    out = kubectl(mesh, "kubectl create namespace fv-extra && kubectl delete namespace fv-extra")
    assert out.stdout == 'namespace/fv-extra created\nnamespace "fv-extra" deleted\n', out.stderr
    out = kubectl(mesh, "kubectl delete virtualservice web")
    assert out.stdout == f'{VS} "web" deleted\n', out.stderr
    assert served(mesh)[0] == "404"  # the route is gone when delete returns
    again = kubectl(mesh, "kubectl delete vs web", check=False)
    assert (again.returncode, again.stdout, again.stderr) == (
        1, "", f'Error from server (NotFound): {VSS} "web" not found\n')
    log = (mesh.home / "run" / "meshd.log").read_text()
    for said in ("label: VirtualService default/web, exit 0", "label: nothing stored, exit 1",
                 "annotate: VirtualService default/web, exit 0", "create_object: Namespace fv-extra,",
                 "delete_named: Namespace fv-extra,", "delete_named: nothing stored, exit 1"):
        assert said in log, said
