"""`sailctl create|replace|delete -f` and `--dry-run=server` through the running daemon
(meshd's `-f` operations, as kubectl through the API server) and without one: the same
input and the same stored state give the same stdout, stderr and exit code, and kubectl's
lines: `Error from server (AlreadyExists|NotFound): error when <verb>ing "<file>": ...`,
`<type>.<group> "<name>" deleted`, `... created (server dry run)`.

Each case runs in two homes kept in the same state: one served by meshd's real operation
on the control socket (tests/unit/daemon_stand_in.py), one where no mesh runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from tests.unit.daemon_stand_in import FakeMeshd, both, meshd, same

from sailmesh.meshd import control
from sailmesh.meshd.paths import Home
from sailmesh.store import Store

__all__ = ["meshd"]  # the fixture

BAD_INPUTS = Path(__file__).parent / "bad_inputs"

VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: [web]
  http: [{route: [{destination: {host: web}}]}]
"""
CM = """apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {a: b}
"""
NS = """apiVersion: v1
kind: Namespace
metadata: {name: test}
"""
VS_LINE = "virtualservice.networking.istio.io/web"
VS_EXISTS = 'virtualservices.networking.istio.io "web" already exists'


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "both.yaml").write_text(VS + "---\n" + CM)
    (tmp_path / "vs.yaml").write_text(VS)
    (tmp_path / "changed.yaml").write_text(VS.replace("hosts: [web]", "hosts: [web, web.example]"))
    return tmp_path


def run(meshd: FakeMeshd, tmp_path: Path, *args: str, stdin: str | None = None) -> Result:
    """The command on both paths; they must agree. Returns the daemon's."""
    up, down = both(meshd, tmp_path, *args, stdin=stdin)
    same(up, down)
    return up


def stored(meshd: FakeMeshd, tmp_path: Path) -> list[str]:
    """What both homes store (the same, or the test fails)."""
    up = [r.ref for r in meshd.store.list()]
    assert up == [r.ref for r in Store(tmp_path / "down").list()]
    return up


def test_create_then_create_again_is_already_exists(meshd: FakeMeshd, files: Path) -> None:
    created = run(meshd, files, "create", "-f", str(files / "both.yaml"))
    assert (created.stdout, created.stderr, created.exit_code) == (
        f"{VS_LINE} created\nconfigmap/cm created\n", "", 0)
    assert meshd.syncs == 1
    again = run(meshd, files, "create", "-f", str(files / "both.yaml"))
    assert (again.stdout, again.exit_code) == ("", 1)
    where = f'error when creating "{files / "both.yaml"}"'
    assert again.stderr == (
        f"Error from server (AlreadyExists): {where}: {VS_EXISTS}\n"
        f'Error from server (AlreadyExists): {where}: configmaps "cm" already exists\n')
    assert meshd.syncs == 1


def test_create_of_one_existing_object_creates_none(meshd: FakeMeshd, files: Path) -> None:
    run(meshd, files, "create", "-f", str(files / "vs.yaml"))
    again = run(meshd, files, "create", "-f", str(files / "both.yaml"))
    assert again.exit_code == 1 and again.stdout == "" and VS_EXISTS in again.stderr
    assert "configmaps" not in again.stderr
    assert stored(meshd, files) == ["VirtualService default/web"]


def test_create_from_stdin_names_stdin(meshd: FakeMeshd, files: Path) -> None:
    run(meshd, files, "create", "-f", "-", stdin=VS)
    again = run(meshd, files, "create", "-f", "-", stdin=VS)
    assert again.stderr == (
        f'Error from server (AlreadyExists): error when creating "STDIN": {VS_EXISTS}\n')


def test_replace_existing_and_missing(meshd: FakeMeshd, files: Path) -> None:
    missing = run(meshd, files, "replace", "-f", str(files / "vs.yaml"))
    assert (missing.stdout, missing.exit_code) == ("", 1)
    assert missing.stderr == (
        f'Error from server (NotFound): error when replacing "{files / "vs.yaml"}": '
        'virtualservices.networking.istio.io "web" not found\n')
    assert stored(meshd, files) == [] and meshd.syncs == 0
    run(meshd, files, "create", "-f", str(files / "vs.yaml"))
    replaced = run(meshd, files, "replace", "-f", str(files / "changed.yaml"))
    assert (replaced.stdout, replaced.stderr, replaced.exit_code) == (f"{VS_LINE} replaced\n", "", 0)
    assert meshd.store.get("VirtualService", "default", "web").spec.hosts == ["web", "web.example"]
    partly = run(meshd, files, "replace", "-f", str(files / "both.yaml"))
    assert partly.exit_code == 1 and 'configmaps "cm" not found' in partly.stderr
    assert meshd.syncs == 2


def test_delete_existing_missing_and_ignore_not_found(meshd: FakeMeshd, files: Path) -> None:
    run(meshd, files, "create", "-f", str(files / "both.yaml"))
    deleted = run(meshd, files, "delete", "-f", str(files / "both.yaml"))
    assert (deleted.stdout, deleted.stderr, deleted.exit_code) == (
        'virtualservice.networking.istio.io "web" deleted\nconfigmap "cm" deleted\n', "", 0)
    assert stored(meshd, files) == [] and meshd.syncs == 2
    missing = run(meshd, files, "delete", "-f", str(files / "vs.yaml"))
    assert (missing.stdout, missing.exit_code) == ("", 1)
    assert missing.stderr == (
        f'Error from server (NotFound): error when deleting "{files / "vs.yaml"}": '
        'virtualservices.networking.istio.io "web" not found\n')
    ignored = run(meshd, files, "delete", "-f", str(files / "vs.yaml"), "--ignore-not-found=true")
    assert (ignored.stdout, ignored.stderr, ignored.exit_code) == ("", "", 0)
    assert meshd.syncs == 2


def test_delete_with_one_missing_object_deletes_none(meshd: FakeMeshd, files: Path) -> None:
    run(meshd, files, "create", "-f", str(files / "vs.yaml"))
    partly = run(meshd, files, "delete", "-f", str(files / "both.yaml"))
    assert partly.exit_code == 1 and partly.stdout == ""
    assert partly.stderr.endswith('configmaps "cm" not found\n') and "virtualservices" not in partly.stderr
    assert stored(meshd, files) == ["VirtualService default/web"]
    some = run(meshd, files, "delete", "-f", str(files / "both.yaml"), "--ignore-not-found")
    assert some.stdout == 'virtualservice.networking.istio.io "web" deleted\n' and some.exit_code == 0


def test_deleting_a_namespace_file_deletes_what_it_holds(meshd: FakeMeshd, files: Path) -> None:
    inside = CM.replace("{name: cm}", "{name: cm, namespace: test}")
    run(meshd, files, "apply", "-f", "-", stdin=NS + "---\n" + inside)
    gone = run(meshd, files, "delete", "-f", "-", stdin=NS)
    assert gone.stdout == 'namespace "test" deleted\n'
    assert stored(meshd, files) == []


@pytest.mark.parametrize("verb", ["create", "replace", "delete"])
@pytest.mark.parametrize("bad", ["05-unknown-field.yaml", "17-broken-yaml.yaml",
                                 "16-duplicate-object.yaml"])
def test_bad_files_change_nothing(meshd: FakeMeshd, files: Path, verb: str, bad: str) -> None:
    run(meshd, files, "create", "-f", str(files / "both.yaml"))
    refused = run(meshd, files, verb, "-f", str(BAD_INPUTS / bad))
    assert refused.exit_code == 1 and f"{BAD_INPUTS / bad}:" in refused.stderr
    assert refused.stdout == ""
    assert stored(meshd, files) == ["ConfigMap default/cm", "VirtualService default/web"]
    assert meshd.syncs == 1


@pytest.mark.parametrize("verb", ["apply", "create", "replace", "delete"])
def test_no_objects_is_kubectls_error(meshd: FakeMeshd, files: Path, verb: str) -> None:
    empty = run(meshd, files, verb, "-f", "-", stdin="# nothing\n")
    assert (empty.stdout, empty.stderr, empty.exit_code) == (
        "", f"error: no objects passed to {verb}\n", 1)


def test_missing_file(meshd: FakeMeshd, files: Path) -> None:
    gone = run(meshd, files, "delete", "-f", "/nonexistent/vs.yaml")
    assert gone.exit_code == 1 and 'the path "/nonexistent/vs.yaml" does not exist' in gone.stderr


def test_server_dry_run_checks_the_stored_objects_and_changes_nothing(
        meshd: FakeMeshd, files: Path) -> None:
    new = run(meshd, files, "apply", "-f", str(files / "both.yaml"), "--dry-run=server")
    assert (new.stdout, new.stderr, new.exit_code) == (
        f"{VS_LINE} created (server dry run)\nconfigmap/cm created (server dry run)\n", "", 0)
    assert stored(meshd, files) == [] and meshd.syncs == 0
    run(meshd, files, "create", "-f", str(files / "vs.yaml"))
    syncs = meshd.syncs
    cases = [
        (["apply", "-f", str(files / "vs.yaml")], f"{VS_LINE} unchanged (server dry run)\n", 0),
        (["apply", "-f", str(files / "changed.yaml")], f"{VS_LINE} configured (server dry run)\n", 0),
        (["replace", "-f", str(files / "changed.yaml")], f"{VS_LINE} replaced (server dry run)\n", 0),
        (["delete", "-f", str(files / "vs.yaml")],
         'virtualservice.networking.istio.io "web" deleted (server dry run)\n', 0),
        (["create", "-f", str(files / "vs.yaml")], "", 1),
        (["delete", "-f", str(files / "both.yaml")], "", 1),
    ]
    for args, out, code in cases:
        result = run(meshd, files, *args, "--dry-run=server")
        assert (result.stdout, result.exit_code) == (out, code), (args, result.output)
    refused = run(meshd, files, "create", "-f", str(files / "vs.yaml"), "--dry-run=server")
    assert refused.stderr == (f'Error from server (AlreadyExists): error when creating '
                              f'"{files / "vs.yaml"}": {VS_EXISTS}\n')
    assert stored(meshd, files) == ["VirtualService default/web"] and meshd.syncs == syncs
    assert meshd.store.get("VirtualService", "default", "web").spec.hosts == ["web"]


def test_client_dry_run_asks_no_server(meshd: FakeMeshd, files: Path) -> None:
    """kubectl's client dry run of create/replace/delete prints the objects' names without
    asking the server (an existing object is no error); apply's looks the object up."""
    run(meshd, files, "create", "-f", str(files / "vs.yaml"))
    syncs = meshd.syncs
    cases = [
        ("create", f"{VS_LINE} created (dry run)\n"),
        ("replace", f"{VS_LINE} replaced (dry run)\n"),
        ("delete", 'virtualservice.networking.istio.io "web" deleted (dry run)\n'),
        ("apply", f"{VS_LINE} unchanged (dry run)\n"),
    ]
    for verb, out in cases:
        result = run(meshd, files, verb, "-f", str(files / "vs.yaml"), "--dry-run=client")
        assert (result.stdout, result.stderr, result.exit_code) == (out, "", 0), verb
    assert stored(meshd, files) == ["VirtualService default/web"] and meshd.syncs == syncs


def test_the_daemon_refuses_a_client_dry_run(meshd: FakeMeshd) -> None:
    """A client dry run sent to the daemon is not taken as a real write."""
    with pytest.raises(control.ControlError, match="server dry runs only"):
        control.call(Home.from_env().control_socket, "create",
                     sources=[{"name": "STDIN", "text": VS}], dry_run="client")
    assert meshd.store.list() == []
