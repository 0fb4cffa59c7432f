"""The proxy containers meshd plans: each Envoy's bootstrap is written once, and again only
when it changed or its file went away."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sailmesh.meshd.paths import Home
from sailmesh.meshd.proxy_containers import ProxyContainers
from sailmesh.model.stats_inclusion import stats_inclusion

STATS = stats_inclusion()


def test_bootstraps_are_written_when_new_changed_or_gone(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.chown", lambda *a: None)  # any uid: the test need not be root
    containers = ProxyContainers(Home(tmp_path), node=None, openshift_router=None)  # type: ignore[arg-type]
    dumps: list[Any] = []
    real = json.dumps
    monkeypatch.setattr(json, "dumps", lambda doc, **kw: dumps.append(doc) or real(doc, **kw))
    plan = containers.sidecar_container("ns", "web-7d9c5-abcde", "web", STATS)
    config = Path(plan.binds[0][0]) / "envoy.json"
    first = json.loads(config.read_text())
    assert first["node"]["id"] == "sidecar~web-7d9c5-abcde.ns" and len(dumps) == 1
    containers.sidecar_container("ns", "web-7d9c5-abcde", "web", STATS)  # every sync asks again
    assert len(dumps) == 1
    containers.sidecar_container("ns", "web-7d9c5-abcde", "other", STATS)  # its metadata changed
    assert len(dumps) == 2
    assert json.loads(config.read_text())["node"]["metadata"]["SERVICE_ACCOUNT"] == "other"
    config.unlink()  # gone (the pod's directory was cleaned up): written again
    containers.sidecar_container("ns", "web-7d9c5-abcde", "other", STATS)
    assert config.exists() and len(dumps) == 3
    containers.keep_only(set())
    containers.sidecar_container("ns", "web-7d9c5-abcde", "other", STATS)
    assert len(dumps) == 4
