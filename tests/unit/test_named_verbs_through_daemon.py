"""`delete KIND NAME...|-l|--all`, `create namespace|secret|configmap`, `label` and
`annotate` through the running daemon (meshd's write operation, as kubectl through the API
server) and without one: the same command and the same stored state give the same stdout,
stderr and exit code, and kubectl's lines: `namespace "foo" deleted`, `Error from server
(NotFound): virtualservices.networking.istio.io "x" not found`, `namespace/foo labeled`,
`'a' already has a value (b), and --overwrite is false`.

Each case runs in two homes kept in the same state: one served by meshd's real operation
on the control socket (tests/unit/daemon_stand_in.py), one where no mesh runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.daemon_stand_in import FakeMeshd, meshd
from tests.unit.test_file_verbs_through_daemon import CM, VS, files, run, stored

__all__ = ["files", "meshd"]  # the fixtures

VS_GONE = 'virtualservice.networking.istio.io "web" deleted\n'
VS_MISSING = 'Error from server (NotFound): virtualservices.networking.istio.io "{}" not found\n'


def served(meshd: FakeMeshd, op: str) -> int:
    return meshd.writes.count(op)


def test_delete_by_name_through_the_daemon(meshd: FakeMeshd, files: Path) -> None:
    run(meshd, files, "apply", "-f", "-", stdin=VS + "---\n" + CM)
    syncs = meshd.syncs
    for spelling in (["virtualservice", "web"], ["vs/web"], ["virtualservices.networking.istio.io", "web"]):
        gone = run(meshd, files, "delete", *spelling)
        assert (gone.stdout, gone.stderr, gone.exit_code) == (VS_GONE, "", 0), spelling
        assert stored(meshd, files) == ["ConfigMap default/cm"]
        run(meshd, files, "apply", "-f", "-", stdin=VS)
    assert served(meshd, "delete_named") == 3 and meshd.syncs == syncs + 6


def test_delete_of_a_missing_name_is_not_found_and_deletes_none(
        meshd: FakeMeshd, files: Path) -> None:
    run(meshd, files, "apply", "-f", "-", stdin=VS)
    syncs = meshd.syncs
    missing = run(meshd, files, "delete", "vs", "x")
    assert (missing.stdout, missing.stderr, missing.exit_code) == ("", VS_MISSING.format("x"), 1)
    partly = run(meshd, files, "delete", "vs", "web", "x", "y")
    assert (partly.stdout, partly.exit_code) == ("", 1)
    assert partly.stderr == VS_MISSING.format("x") + VS_MISSING.format("y")
    assert stored(meshd, files) == ["VirtualService default/web"] and meshd.syncs == syncs
    some = run(meshd, files, "delete", "vs", "web", "x", "--ignore-not-found")
    assert (some.stdout, some.stderr, some.exit_code) == (VS_GONE, "", 0)
    nothing = run(meshd, files, "delete", "vs", "x", "--ignore-not-found=true")
    assert (nothing.stdout, nothing.stderr, nothing.exit_code) == ("", "", 0)
    assert served(meshd, "delete_named") == 4


def test_delete_by_selector_and_all(meshd: FakeMeshd, files: Path) -> None:
    labelled = CM.replace("{name: cm}", "{name: cm, labels: {app: x}}")
    other = CM.replace("{name: cm}", "{name: other}")
    run(meshd, files, "apply", "-f", "-", stdin=VS + "---\n" + labelled + "---\n" + other)
    picked = run(meshd, files, "delete", "configmap", "-l", "app=x")
    assert (picked.stdout, picked.stderr, picked.exit_code) == ('configmap "cm" deleted\n', "", 0)
    none = run(meshd, files, "delete", "cm", "-l", "app=x")
    assert (none.stdout, none.stderr, none.exit_code) == (
        "", "No resources found in default namespace.\n", 0)
    every = run(meshd, files, "delete", "vs,cm", "--all")
    assert every.stdout == VS_GONE + 'configmap "other" deleted\n' and every.exit_code == 0
    assert stored(meshd, files) == []


def test_delete_namespace_by_name_deletes_what_it_holds(meshd: FakeMeshd, files: Path) -> None:
    run(meshd, files, "create", "namespace", "test")
    run(meshd, files, "apply", "-n", "test", "-f", "-", stdin=CM)
    gone = run(meshd, files, "delete", "namespace", "test")
    assert (gone.stdout, gone.exit_code) == ('namespace "test" deleted\n', 0)
    assert stored(meshd, files) == []


@pytest.mark.parametrize(("args", "err"), [
    (["nosuchkind", "x"], 'error: the server doesn\'t have a resource type "nosuchkind"\n'),
    (["vs"], "error: resource(s) were provided, but no name was specified\n"),
    (["rs,vs", "web"], "error: rs are not stored objects: they belong to the running mesh\n"),
])
def test_delete_refused_changes_nothing(meshd: FakeMeshd, files: Path, args: list[str],
                                        err: str) -> None:
    run(meshd, files, "apply", "-f", "-", stdin=VS)
    refused = run(meshd, files, "delete", *args)
    assert (refused.stdout, refused.stderr, refused.exit_code) == ("", err, 1)
    assert stored(meshd, files) == ["VirtualService default/web"]


def test_delete_by_name_dry_runs(meshd: FakeMeshd, files: Path) -> None:
    run(meshd, files, "apply", "-f", "-", stdin=VS)
    syncs = meshd.syncs
    server = run(meshd, files, "delete", "vs", "web", "--dry-run=server")
    assert (server.stdout, server.exit_code) == (
        'virtualservice.networking.istio.io "web" deleted (server dry run)\n', 0)
    client = run(meshd, files, "delete", "vs", "web", "--dry-run=client")
    assert client.stdout == 'virtualservice.networking.istio.io "web" deleted (dry run)\n'
    missing = run(meshd, files, "delete", "vs", "x", "--dry-run=server")
    assert (missing.stderr, missing.exit_code) == (VS_MISSING.format("x"), 1)
    assert stored(meshd, files) == ["VirtualService default/web"] and meshd.syncs == syncs
    assert served(meshd, "delete_named") == 2  # a client dry run asks no server


def test_create_kinds_through_the_daemon(meshd: FakeMeshd, files: Path) -> None:
    cases = [
        (["create", "namespace", "foo"], "namespace/foo created\n"),
        (["create", "secret", "generic", "s", "--from-literal=a=b"], "secret/s created\n"),
        (["create", "configmap", "c", "--from-literal=a=b"], "configmap/c created\n"),
    ]
    for args, out in cases:
        made = run(meshd, files, *args)
        assert (made.stdout, made.stderr, made.exit_code) == (out, "", 0), args
    assert served(meshd, "create_object") == 3 and meshd.syncs == 3
    assert stored(meshd, files) == ["ConfigMap default/c", "Namespace foo", "Secret default/s"]
    again = run(meshd, files, "create", "cm", "c", "--from-literal=a=other")
    assert (again.stdout, again.stderr, again.exit_code) == (
        "", 'Error from server (AlreadyExists): configmaps "c" already exists\n', 1)
    assert meshd.store.get("ConfigMap", "default", "c").data == {"a": "b"}


def test_create_kind_with_bad_input_changes_nothing(meshd: FakeMeshd, files: Path) -> None:
    bad = run(meshd, files, "create", "namespace", "Not_A_Name")
    assert bad.exit_code == 1 and bad.stdout == "" and "Not_A_Name" in bad.stderr
    outside = run(meshd, files, "create", "cm", "c", "-n", "nowhere", "--from-literal=a=b")
    assert outside.exit_code == 1 and 'namespaces "nowhere" not found' in outside.stderr
    assert stored(meshd, files) == [] and meshd.syncs == 0


def test_label_and_overwrite(meshd: FakeMeshd, files: Path) -> None:
    run(meshd, files, "create", "namespace", "foo")
    cases = [
        (["label", "namespace", "foo", "team=blue"], "namespace/foo labeled\n", "", 0),
        (["label", "ns/foo", "team=blue"], "namespace/foo labeled\n", "", 0),
        (["label", "ns", "foo", "team=red"], "",
         "error: 'team' already has a value (blue), and --overwrite is false\n", 1),
        (["label", "ns", "foo", "team=red", "--overwrite"], "namespace/foo labeled\n", "", 0),
        (["label", "ns", "foo", "team-", "tier=1"], "namespace/foo labeled\n", "", 0),
        (["label", "ns", "bar", "team=blue"], "",
         'Error from server (NotFound): namespaces "bar" not found\n', 1),
        (["label", "ns", "foo"], "", "error: at least one label update is required\n", 1),
        (["label", "ns", "foo", "team"], "", "error: invalid label spec: team\n", 1),
        (["label", "ns", "foo", "x=y", "--dry-run=server"],
         "namespace/foo labeled (server dry run)\n", "", 0),
        (["label", "ns", "foo", "x=y", "--dry-run=client"], "namespace/foo labeled (dry run)\n", "", 0),
    ]
    for args, out, err, code in cases:
        result = run(meshd, files, *args)
        assert (result.stdout, result.stderr, result.exit_code) == (out, err, code), args
    assert meshd.store.get("Namespace", "", "foo").metadata.labels == {"tier": "1"}
    assert served(meshd, "label") == 9 and meshd.syncs == 5  # client dry run: here


def test_annotate(meshd: FakeMeshd, files: Path) -> None:
    run(meshd, files, "apply", "-f", "-", stdin=VS)
    cases = [
        (["annotate", "vs", "web", "owner=a"], f"{VS_LINE} annotated\n", "", 0),
        (["annotate", "vs/web", "owner=a"], f"{VS_LINE} annotated (no change)\n", "", 0),
        (["annotate", "vs", "web", "owner=b"], "",
         "error: 'owner' already has a value (a), and --overwrite is false\n", 1),
        (["annotate", "vs", "web", "owner=b", "--overwrite"], f"{VS_LINE} annotated\n", "", 0),
        (["annotate", "vs", "x", "owner=b"], "", VS_MISSING.format("x"), 1),
    ]
    for args, out, err, code in cases:
        result = run(meshd, files, *args)
        assert (result.stdout, result.stderr, result.exit_code) == (out, err, code), args
    assert meshd.store.get("VirtualService", "default", "web").metadata.annotations == {"owner": "b"}
    assert served(meshd, "annotate") == 5


VS_LINE = "virtualservice.networking.istio.io/web"
