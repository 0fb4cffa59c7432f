"""`sailctl analyze` end to end through click: store in a temp SAILMESH_HOME, files on top."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sailmesh.cli.analyze_cmd import analyze
from sailmesh.resources.loader import load_text
from sailmesh.store import Store
from tests.analysis.manifests import BASE, OPERATOR, gateway, server, text, tls_secret


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SAILMESH_HOME", str(tmp_path))
    return tmp_path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(analyze, list(args))


def write(path: Path, *docs: dict) -> str:
    path.write_text(text(*docs))
    return str(path)


def test_clean_files_offline(home: Path) -> None:
    result = invoke("-f", write(home / "in.yaml", *BASE))
    assert result.exit_code == 0, result.output
    assert result.output == ("\u2714 No validation issues found when analyzing namespaces: "
                             "istio-system, test.\n")
    only_test = invoke("-n", "test", "-f", write(home / "in.yaml", *BASE))
    assert only_test.output == "\u2714 No validation issues found when analyzing namespace: test.\n"


def test_error_sets_exit_status(home: Path) -> None:
    bad = gateway("gw", server(mode="SIMPLE", credentialName="c"))
    docs = [*BASE[:3], tls_secret("c", "test"), bad, BASE[4]]
    result = invoke("-f", write(home / "in.yaml", *docs))
    assert result.exit_code == 1
    assert result.output.startswith("Error [SM0101] (Gateway test/gw) spec.servers[0].tls."
                                    "credentialName: credentialName c: Secret istio-system/c "
                                    "not found")
    assert "Fix: create the Secret" in result.output


def test_files_layer_over_the_store(home: Path) -> None:
    Store(home).apply([r for r in load_text(text(*BASE)).resources if r.kind != "Secret"])
    stored_only = invoke("-n", "test")
    assert stored_only.exit_code == 1 and "[SM0101]" in stored_only.output
    assert not list((home / "resources").glob("Secret/*/*.yaml"))
    with_file = invoke("-n", "test", "-f", write(home / "s.yaml", BASE[2]))
    assert with_file.exit_code == 0, with_file.output
    assert not list((home / "resources").glob("Secret/*/*.yaml"))  # analyzed, never stored


def test_default_namespace_and_all_namespaces(home: Path) -> None:
    Store(home).apply(load_text(text(*BASE, OPERATOR)).resources)
    assert invoke().output == ("\u2714 No validation issues found when analyzing namespace: "
                               "default.\n")
    everywhere = invoke("-A")
    assert everywhere.exit_code == 0
    assert everywhere.output.startswith("Info [SM0112] (IstioOperator istio-system/installed-state)")


def test_json_output_and_now(home: Path) -> None:
    result = invoke("-f", write(home / "in.yaml", *BASE), "-o", "json", "--now", "2020-01-01T00:00:00Z")
    assert result.exit_code == 1
    [message] = json.loads(result.output)
    assert message["code"] == "SM0104" and message["origin"] == "Gateway test/gw"
    assert message["level"] == "Error" and message["pitfall"] == "#10"


def test_bad_input(home: Path) -> None:
    assert invoke("--now", "yesterday").exit_code == 2
    result = invoke("-f", write(home / "bad.yaml", {"kind": "Gateway"}))
    assert result.exit_code == 1 and "apiVersion not set" in result.output
