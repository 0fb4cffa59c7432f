"""The store: create/configure/unchanged outcomes, creation order, 0600 secrets, namespaces."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from sailmesh.resources.kinds import KINDS
from sailmesh.store import Store, StoreError


def obj(kind: str, name: str, ns: str | None = "default", **body: object):
    meta: dict[str, object] = {"name": name}
    if ns is not None and KINDS[kind].NAMESPACED:
        meta["namespace"] = ns
    api = KINDS[kind].API_VERSIONS[-1]
    return KINDS[kind].model_validate({"apiVersion": api, "kind": kind, "metadata": meta, **body})


def test_outcomes_and_creation_time_kept(tmp_path: Path) -> None:
    s = Store(tmp_path)
    cm = obj("ConfigMap", "a", data={"k": "v"})
    assert [o.change for o in s.apply([cm])] == ["created"]
    first = s.get("ConfigMap", "default", "a").metadata.creation_timestamp
    assert [o.change for o in s.apply([cm])] == ["unchanged"]
    time.sleep(0.01)
    assert [o.change for o in s.apply([obj("ConfigMap", "a", data={"k": "w"})])] == ["configured"]
    again = s.get("ConfigMap", "default", "a")
    assert again.metadata.creation_timestamp == first
    assert again.data == {"k": "w"}


def test_snapshot_orders_oldest_first(tmp_path: Path) -> None:
    s = Store(tmp_path)
    s.apply([obj("ConfigMap", "z")])
    time.sleep(0.01)
    s.apply([obj("ConfigMap", "a")])
    assert [r.name for r in s.snapshot()] == ["z", "a"]


def test_secrets_are_private(tmp_path: Path) -> None:
    s = Store(tmp_path)
    s.apply([obj("Secret", "tls", data={"tls.key": "a2V5", "tls.crt": "Y2VydA=="},
                 type="kubernetes.io/tls")])
    path = next((tmp_path / "resources" / "Secret").rglob("tls.yaml"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_missing_namespace_rejects_whole_batch(tmp_path: Path) -> None:
    s = Store(tmp_path)
    with pytest.raises(StoreError, match='namespaces "test" not found'):
        s.apply([obj("ConfigMap", "ok"), obj("ConfigMap", "x", ns="test")])
    assert s.list() == []
    s.apply([obj("Namespace", "test", ns=None), obj("ConfigMap", "x", ns="test")])
    assert {r.name for r in s.list()} == {"test", "x"}


def test_create_only_and_delete(tmp_path: Path) -> None:
    s = Store(tmp_path)
    s.apply([obj("ConfigMap", "a")], create_only=True)
    with pytest.raises(StoreError, match='ConfigMap "a" already exists in namespace "default"'):
        s.apply([obj("ConfigMap", "a")], create_only=True)
    with pytest.raises(StoreError, match='Secret "nope" not found in namespace "default"'):
        s.delete([("Secret", "default", "nope")])
    assert [o.change for o in s.delete([("ConfigMap", "default", "a")])] == ["deleted"]
    assert s.delete([("ConfigMap", "default", "a")], ignore_missing=True) == []


def test_deleting_namespace_deletes_its_objects(tmp_path: Path) -> None:
    s = Store(tmp_path)
    s.apply([obj("Namespace", "test", ns=None), obj("ConfigMap", "x", ns="test")])
    s.delete([("Namespace", "", "test")])
    assert s.list() == []


def test_snapshots_read_only_changed_files_and_version_as_a_fresh_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Store(tmp_path)
    s.apply([obj("ConfigMap", f"c{i}", data={"k": str(i)}) for i in range(5)]
            + [obj("Namespace", "b", ns=None), obj("ConfigMap", "x", ns="b")])
    first = s.snapshot()
    assert first.version == Store(tmp_path).snapshot().version
    parsed: list[str] = []
    real = KINDS["ConfigMap"].model_validate
    monkeypatch.setattr(KINDS["ConfigMap"], "model_validate",
                        lambda doc: parsed.append(doc["metadata"]["name"]) or real(doc))
    s.apply([obj("ConfigMap", "c2", data={"k": "changed"})])
    parsed.clear()
    second = s.snapshot()
    assert parsed == ["c2"]  # the other files' resources are kept
    assert second.version != first.version
    fresh = Store(tmp_path).snapshot()
    assert second.version == fresh.version and second.resources == fresh.resources
    # The list is in kind, namespace, name order, as the files lie.
    assert [(r.kind, r.namespace, r.name) for r in s.list()] == [
        ("ConfigMap", "b", "x"), *(("ConfigMap", "default", f"c{i}") for i in range(5)),
        ("Namespace", "", "b")]
